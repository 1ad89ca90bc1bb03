// The TypeScript MCP SDK's client and step-up (MCP 2025-11-25): after signing in with the
// baseline scope it calls `echo`, which the gateway's policy gives only to tokens with
// `mcp:echo`; the 403 insufficient_scope challenge makes the SDK authorize again with the
// larger set, the consent page marks the new scope, and the call succeeds.
// Mode `no-refresh`: the client holds no refresh token (the SDK goes straight to authorizing).
// Mode `refresh`: it holds one, so the SDK first refreshes (typescript-sdk#2255); mcpgate,
// told of the step-up, answers that refresh invalid_grant, and the SDK authorizes.
// Usage: node ts_stepup.mjs <mcp-url> <user> <mode>. Prints one JSON line; exits 1 on failure.
import { Browser, walk } from "./browser.mjs";
import { connect, finishSignIn } from "./ts_common.mjs";

const [mcpUrl, user, mode] = process.argv.slice(2);
const seen = { mode, logins: 0, newMarked: [], refreshes: [] };
const browser = new Browser();

function expect(condition, what) {
  if (!condition) {
    console.error(`expectation failed: ${what}`);
    console.log(JSON.stringify(seen));
    process.exit(1);
  }
}

class Provider {
  redirectUrl = "http://127.0.0.1:47052/callback";
  clientMetadata = {
    client_name: "mcpgate step-up (TypeScript SDK)",
    redirect_uris: [this.redirectUrl],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
  };
  clientInformation() { return this.client; }
  saveClientInformation(client) { this.client = client; }
  tokens() { return this.stored; }
  saveTokens(tokens) {
    this.stored = mode === "no-refresh" ? { ...tokens, refresh_token: undefined } : tokens;
  }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") this.stored = undefined;
    if (scope === "all" || scope === "client") this.client = undefined;
  }
  async redirectToAuthorization(url) {
    seen.asked = url.searchParams.get("scope");
    const back = await walk(url, user, (u) => u.href.startsWith(this.redirectUrl), {
      browser,
      onPage: (page) => {
        for (const [, scope] of page.matchAll(/<code>([^<]+)<\/code> <strong class="new">new<\/strong>/g)) {
          seen.newMarked.push(scope);
        }
      },
    });
    seen.logins += 1;
    this.pendingCode = back.searchParams.get("code");
  }
}

// Every refresh the SDK makes, and what mcpgate answered.
async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const body = init?.body?.toString() ?? "";
  if (String(url).endsWith("/token") && body.includes("grant_type=refresh_token")) {
    const answer = await response.clone().json().catch(() => ({}));
    seen.refreshes.push({ status: response.status, error: answer.error ?? null });
  }
  return response;
}

const provider = new Provider();

const { client, transport } = await connect(mcpUrl, provider, expect, { name: "mcpgate-stepup-ts", fetch: recordingFetch });

/** Runs `action`; when the SDK turned to the browser, finishes that sign-in and runs it again. */
async function signingIn(action) {
  try {
    return await action();
  } catch (error) {
    await finishSignIn(transport, provider, expect, error);
    return await action();
  }
}

expect(seen.logins === 1, "one sign-in to connect");
seen.firstScope = provider.stored.scope;
expect(!provider.stored.scope.split(" ").includes("mcp:echo"), `the first grant is the baseline (${provider.stored.scope})`);
const tools = await client.listTools();
expect(tools.tools.some((t) => t.name === "echo"), "echo is listed: more scopes would allow it");

const result = await signingIn(() => client.callTool({ name: "echo", arguments: { text: "stepped up" } }));
seen.echo = result.content[0].text;
expect(seen.echo === "stepped up", "echo after the step-up");
expect(seen.logins === 2, `one more sign-in for the step-up (${seen.logins} in all)`);
seen.finalScope = provider.stored.scope;
expect(provider.stored.scope.split(" ").includes("mcp:echo"), `the new grant has mcp:echo (${provider.stored.scope})`);
expect(seen.newMarked.includes("mcp:echo"), "the consent page marked mcp:echo as new");
await client.close();
seen.ok = true;
console.log(JSON.stringify(seen));
