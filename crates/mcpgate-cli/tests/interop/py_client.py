"""The Python MCP SDK's client (`mcp` from PyPI) against mcpgate (the demo, or the gateway in
front of an OpenID provider), its browser steps driven by an HTTP client with a cookie jar:
discovery from the 401, dynamic registration, consent, the provider's login, the code exchange, tools, `whoami`; then a refresh (the access token's
lifetime made over), then the grant revoked server-side: the client signs in once more
and carries on. With INTEROP_CLIENT_METADATA_URL set, the client offers that URL (its client ID
metadata document) instead of registering. Usage: python py_client.py <mcp-url> <user>. Prints one JSON line with what it
saw; exits 1 on the first failed expectation."""

import asyncio
import html
import json
import os
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
REDIRECT = "http://127.0.0.1:47061/callback"
seen = {"logins": 0}


def expect(condition, what):
    if not condition:
        print(f"expectation failed: {what}", file=sys.stderr)
        print(json.dumps(seen))
        sys.exit(1)



async def sign_in(authorization_url):
    """Follows an authorization URL as a user would: approves mcpgate's consent page, then signs
    in on the provider's pages (the demo's dev login, or oidc-provider's login and consent),
    until the browser is sent to the client's redirect URI; returns that URL."""
    async with httpx2.AsyncClient(follow_redirects=False) as browser:
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
            action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            action = urljoin(str(response.url), html.unescape(action.group(1)) if action else "")
            fields = hidden_inputs(response.text)
            if "csrf" in fields:  # mcpgate's consent page
                fields["decision"] = "approve"
            elif "code_challenge" in fields:  # the demo's login page
                fields["user"] = USER
            elif fields.get("prompt") == "login":  # oidc-provider's login page
                fields.update(login=USER, password="any")
            response = await browser.post(action, data=fields)
    expect(False, "the sign-in ended at the client within 20 steps")



async def main():
    storage = Storage()
    redirected = {}

    async def redirect_handler(url):
        redirected["to"] = await sign_in(url)

    async def callback_handler():
        query = parse_qs(urlparse(redirected.pop("to")).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0],
                                       iss=query.get("iss", [None])[0])

    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(
            client_name="mcpgate interop (Python SDK)",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        client_metadata_url=os.environ.get("INTEROP_CLIENT_METADATA_URL"),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    async def whoami(session):
        result = await session.call_tool("whoami", {})
        return json.loads(result.content[0].text)

    async with httpx2.AsyncClient(auth=provider) as http:
        async with streamable_http_client(MCP_URL, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                seen["tools"] = sorted(t.name for t in tools.tools)
                seen["client_id"] = storage.client.client_id
                me = await whoami(session)
                seen["subject"] = me["subject"]
                expect(me["subject"] == USER, f"whoami is {USER}")
                expect(seen["logins"] == 1, "one sign-in")

                # The access token's lifetime over: this SDK refreshes before its next request
                # (on a 401 instead, it signs in anew).
                refresh_token = storage.tokens.refresh_token
                access_token = storage.tokens.access_token
                expect(refresh_token, "a refresh token was issued")
                provider.context.token_expiry_time = 1.0
                me = await whoami(session)
                expect(me["subject"] == USER, "whoami after the refresh")
                seen["refreshed"] = (storage.tokens.refresh_token != refresh_token
                                     and storage.tokens.access_token != access_token)
                expect(seen["refreshed"], "the SDK refreshed (a new refresh token, a new access token)")
                expect(seen["logins"] == 1, "no sign-in for a refresh")

                # The grant revoked server-side (RFC 7009, by the client's refresh token).
                revoked = await httpx2.AsyncClient().post(
                    urljoin(MCP_URL, "/revoke"),
                    data={"token": storage.tokens.refresh_token, "client_id": storage.client.client_id},
                )
                expect(revoked.status_code == 200, f"revocation answered {revoked.status_code}")
                before = seen["logins"]
                me = await whoami(session)
                expect(me["subject"] == USER, "whoami after signing in again")
                expect(seen["logins"] == before + 1, f"exactly one more sign-in ({seen['logins']} in all)")
    seen["ok"] = True
    print(json.dumps(seen))


asyncio.run(main())
