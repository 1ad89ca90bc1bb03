// The TypeScript MCP SDK's client against mcpgate (the demo, or the gateway in front of an
// OpenID provider), its browser steps driven by a small cookie-jar HTTP client: discovery from
// the 401, dynamic registration, consent, the provider's login,
// the code exchange, tools, `whoami`; then a refresh (the access token made stale), then the
// grant revoked server-side: the client gets a 401, signs in again once, and works again.
// Usage: node ts_client.mjs <mcp-url> <user>. Prints one JSON line with what it saw; exits 1
// on the first failed expectation.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [mcpUrl, user] = process.argv.slice(2);
const seen = { logins: 0, tokenRequests: 0 };

function expect(condition, what) {
  if (!condition) {
    console.error(`expectation failed: ${what}`);
    console.log(JSON.stringify(seen));
    process.exit(1);
  }
}

/** A browser enough for mcpgate's pages: a cookie jar, manual redirects, hidden form inputs. */
class Browser {
  cookies = new Map();

  async request(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const response = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair, ...attributes] = cookie.split(";");
      const [name, value] = [pair.slice(0, pair.indexOf("=")).trim(), pair.slice(pair.indexOf("=") + 1).trim()];
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  static location(response) {
    return new URL(response.headers.get("location"), response.url);
  }

  static hiddenInputs(html) {
    const inputs = {};
    for (const [, name, value] of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
      inputs[name] = value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">").replace(/&amp;/g, "&");
    }
    return inputs;
  }

  post(url, fields) {
    return this.request(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

/** Follows an authorization URL as a user would: approves mcpgate's consent page, then signs in
 *  on the provider's pages (the demo's dev login, or oidc-provider's login and consent), until
 *  the browser is sent to the client's redirect URI; returns the code. */
async function signIn(authorizationUrl, redirectUrl) {
  const browser = new Browser();
  let response = await browser.request(authorizationUrl);
  for (let step = 0; step < 20; step++) {
    if (response.status >= 300 && response.status < 400) {
      const next = Browser.location(response);
      if (next.href.startsWith(redirectUrl)) {
        seen.logins += 1;
        return next.searchParams.get("code");
      }
      response = await browser.request(next);
      continue;
    }
    expect(response.status === 200, `a page (got ${response.status} at ${response.url})`);
    const page = await response.text();
    const action = new URL((page.match(/<form[^>]*action="([^"]+)"/)?.[1] ?? "").replace(/&amp;/g, "&"), response.url);
    const fields = Browser.hiddenInputs(page);
    if ("csrf" in fields) fields.decision = "approve"; // mcpgate's consent page
    else if ("code_challenge" in fields) fields.user = user; // the demo's login page
    else if (fields.prompt === "login") Object.assign(fields, { login: user, password: "any" }); // oidc-provider
    response = await browser.post(action, fields);
  }
  expect(false, "the sign-in ended at the client within 20 steps");
}

/** The SDK's OAuth client provider, with storage in memory and the browser above. */
class Provider {
  redirectUrl = "http://127.0.0.1:47051/callback";
  clientMetadata = {
    client_name: "mcpgate interop (TypeScript SDK)",
    redirect_uris: [this.redirectUrl],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
  };
  pendingCode = undefined;
  clientInformation() { return this.client; }
  saveClientInformation(client) { this.client = client; }
  tokens() { return this.stored; }
  saveTokens(tokens) { seen.tokenRequests += 1; this.stored = tokens; }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") this.stored = undefined;
    if (scope === "all" || scope === "client") this.client = undefined;
  }
  async redirectToAuthorization(url) { this.pendingCode = await signIn(url, this.redirectUrl); }
}

const provider = new Provider();

/** Connects, signing in when the server asks for it. */
async function connect() {
  for (let attempt = 0; attempt < 2; attempt++) {
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    const client = new Client({ name: "mcpgate-interop-ts", version: "1.0.0" });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (error) {
      expect(error instanceof UnauthorizedError && provider.pendingCode, `a sign-in, not: ${error}`);
      await transport.finishAuth(provider.pendingCode);
      provider.pendingCode = undefined;
    }
  }
  expect(false, "connected after signing in");
}

async function whoami(client) {
  const result = await client.callTool({ name: "whoami", arguments: {} });
  return JSON.parse(result.content[0].text);
}

/** Calls whoami; if the server turned the client away and it signed in again, finishes that
 *  sign-in and reconnects (a client that lost its grant starts a new session). */
async function whoamiRecovering({ client, transport }) {
  try {
    return { client, transport, me: await whoami(client) };
  } catch (error) {
    expect(error instanceof UnauthorizedError && provider.pendingCode, `a sign-in, not: ${error}`);
    await transport.finishAuth(provider.pendingCode);
    provider.pendingCode = undefined;
    await client.close();
    const again = await connect();
    return { ...again, me: await whoami(again.client) };
  }
}

let { client, transport } = await connect();
const tools = await client.listTools();
seen.tools = tools.tools.map((t) => t.name).sort();
let me = await whoami(client);
seen.subject = me.subject;
expect(me.subject === user, `whoami is ${user}`);
expect(seen.logins === 1, "one sign-in");

// A stale access token: the SDK refreshes on the 401 and retries.
const refreshToken = provider.stored.refresh_token;
expect(refreshToken, "a refresh token was issued");
provider.stored = { ...provider.stored, access_token: "stale-token" };
me = await whoami(client);
expect(me.subject === user, "whoami after the refresh");
seen.refreshed = provider.stored.refresh_token !== refreshToken && provider.stored.access_token !== "stale-token";
expect(seen.refreshed, "the SDK refreshed (a new refresh token, a new access token)");
expect(seen.logins === 1, "no sign-in for a refresh");

// The grant revoked server-side (RFC 7009, by the client's refresh token).
const revoke = await fetch(new URL("/revoke", mcpUrl), {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ token: provider.stored.refresh_token, client_id: provider.client.client_id }),
});
expect(revoke.status === 200, `revocation answered ${revoke.status}`);
({ client, transport, me } = await whoamiRecovering({ client, transport }));
expect(me.subject === user, "whoami after signing in again");
expect(seen.logins === 2, `exactly one more sign-in after the revocation (${seen.logins} in all)`);
await client.close();
seen.ok = true;
console.log(JSON.stringify(seen));
