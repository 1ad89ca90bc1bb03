"""The Python MCP SDK's client (`mcp` 2.3.0) and step-up (MCP 2025-11-25): signed in with the
baseline scope, it calls `echo`, which the gateway's policy gives only to tokens with `mcp:echo`;
on the 403 insufficient_scope challenge the SDK authorizes again with the union of its scopes
and the challenge's (SEP-2350), the consent page marks the new scope, and the call succeeds.
Usage: python py_stepup.py <mcp-url> <user>. Prints one JSON line; exits 1 on failure."""

import asyncio
import html
import json
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp import ClientSession
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

from interop_common import Storage, hidden_inputs

MCP_URL, USER = sys.argv[1], sys.argv[2]
REDIRECT = "http://127.0.0.1:47062/callback"
seen = {"logins": 0, "new_marked": [], "asked": []}


def expect(condition, what):
    if not condition:
        print(f"expectation failed: {what}", file=sys.stderr)
        print(json.dumps(seen))
        sys.exit(1)



async def sign_in(browser, authorization_url):
    """The user's walk from the authorization URL to the client, in `browser` (its cookies kept
    between sign-ins, as a real browser's are)."""
    seen["asked"].append(parse_qs(urlparse(authorization_url).query).get("scope", [""])[0])
    response = await browser.get(authorization_url)
    for _ in range(20):
        if 300 <= response.status_code < 400:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT):
                seen["logins"] += 1
                return location
            response = await browser.get(location)
            continue
        expect(response.status_code == 200, f"a page (got {response.status_code} at {response.url})")
        seen["new_marked"] += re.findall(r'<code>([^<]+)</code> <strong class="new">new</strong>', response.text)
        action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        action = urljoin(str(response.url), html.unescape(action.group(1)) if action else "")
        fields = hidden_inputs(response.text)
        if "csrf" in fields:
            fields["decision"] = "approve"
        elif fields.get("prompt") == "login":
            fields.update(login=USER, password="any")
        response = await browser.post(action, data=fields)
    expect(False, "the sign-in ended at the client within 20 steps")



async def main():
    storage = Storage()
    redirected = {}
    async with httpx2.AsyncClient(follow_redirects=False) as browser:

        async def redirect_handler(url):
            redirected["to"] = await sign_in(browser, url)

        async def callback_handler():
            query = parse_qs(urlparse(redirected.pop("to")).query)
            return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0],
                                           iss=query.get("iss", [None])[0])

        provider = OAuthClientProvider(
            server_url=MCP_URL,
            client_metadata=OAuthClientMetadata(
                client_name="mcpgate step-up (Python SDK)",
                redirect_uris=[REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )
        async with httpx2.AsyncClient(auth=provider) as http:
            async with streamable_http_client(MCP_URL, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    seen["first_scope"] = storage.tokens.scope
                    expect("mcp:echo" not in (storage.tokens.scope or "").split(), "the first grant is the baseline")
                    tools = await session.list_tools()
                    expect("echo" in [t.name for t in tools.tools], "echo is listed: more scopes would allow it")
                    result = await session.call_tool("echo", {"text": "stepped up"})
                    seen["echo"] = result.content[0].text
                    expect(seen["echo"] == "stepped up", "echo after the step-up")
    seen["final_scope"] = storage.tokens.scope
    expect("mcp:echo" in (storage.tokens.scope or "").split(), "the new grant has mcp:echo")
    expect(seen["logins"] == 2, f"one more sign-in for the step-up ({seen['logins']} in all)")
    expect("mcp:echo" in seen["new_marked"], "the consent page marked mcp:echo as new")
    seen["ok"] = True
    print(json.dumps(seen))


asyncio.run(main())
