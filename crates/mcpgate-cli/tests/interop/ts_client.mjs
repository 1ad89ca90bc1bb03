// The TypeScript MCP SDK's client against mcpgate (the demo, or the gateway in front of an
// OpenID provider), its browser steps driven by a small cookie-jar HTTP client: discovery from
// the 401, dynamic registration, consent, the provider's login,
// the code exchange, tools, `whoami`; then a refresh (the access token made stale), then the
// grant revoked server-side: the client gets a 401, signs in again once, and works again.
// With INTEROP_CLIENT_METADATA_URL set, the client offers that URL (its client ID metadata
// document) instead of registering.
// Usage: node ts_client.mjs <mcp-url> <user>. Prints one JSON line with what it saw; exits 1
// on the first failed expectation.
import { walk } from "./browser.mjs";
import { connect, finishSignIn } from "./ts_common.mjs";

const [mcpUrl, user] = process.argv.slice(2);
const seen = { logins: 0, tokenRequests: 0 };

function expect(condition, what) {
  if (!condition) {
    console.error(`expectation failed: ${what}`);
    console.log(JSON.stringify(seen));
    process.exit(1);
  }
}

/** Signs in through the browser; the code the client gets. */
async function signIn(authorizationUrl, redirectUrl) {
  const back = await walk(authorizationUrl, user, (url) => url.href.startsWith(redirectUrl));
  seen.logins += 1;
  return back.searchParams.get("code");
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
  clientMetadataUrl = process.env.INTEROP_CLIENT_METADATA_URL;
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
const connectSigningIn = () => connect(mcpUrl, provider, expect, { name: "mcpgate-interop-ts" });

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
    await finishSignIn(transport, provider, expect, error);
    await client.close();
    const again = await connectSigningIn();
    return { ...again, me: await whoami(again.client) };
  }
}

let { client, transport } = await connectSigningIn();
const tools = await client.listTools();
seen.tools = tools.tools.map((t) => t.name).sort();
seen.clientId = provider.client.client_id;
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
