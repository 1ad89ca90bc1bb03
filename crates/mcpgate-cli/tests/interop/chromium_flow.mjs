// One sign-in in a real browser: headless Chromium (Debian's, driven by playwright-core) opens
// mcpgate's authorization URL, the user clicks Approve on the consent page and signs in on the
// demo's login page, and the browser lands on the client's redirect URI with a code — so the
// browser-binding cookie, the redirects and the pages' Content-Security-Policy hold in a browser.
// The client side (registration, PKCE, the code exchange, an MCP call) is done here in Node.
// Usage: node chromium_flow.mjs <mcp-url> <user> <screenshot.png>. Prints one JSON line.
import { createHash, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const [mcpUrl, user, screenshot] = process.argv.slice(2);
const base = new URL(mcpUrl).origin;
const redirectUri = "http://127.0.0.1:47081/callback";
const seen = { cspViolations: [] };

function expect(condition, what) {
  if (!condition) {
    console.error(`expectation failed: ${what}`);
    console.log(JSON.stringify(seen));
    process.exit(1);
  }
}

const registered = await (await fetch(`${base}/register`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ client_name: "Chromium interop", redirect_uris: [redirectUri],
    grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "none" }),
})).json();
const verifier = randomBytes(32).toString("base64url");
const state = randomBytes(16).toString("base64url");
const authorize = new URL(`${base}/authorize`);
authorize.search = new URLSearchParams({
  response_type: "code", client_id: registered.client_id, redirect_uri: redirectUri, state,
  code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256",
  resource: mcpUrl, scope: "mcp:tools",
}).toString();

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
let landed;
try {
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) seen.cspViolations.push(message.text());
  });
  // Nothing listens at the client's redirect URI: the browser's arrival there is the result.
  await page.route(`${redirectUri}**`, (route) => {
    landed = new URL(route.request().url());
    route.fulfill({ status: 200, contentType: "text/plain", body: "signed in" });
  });
  await page.goto(authorize.href);
  seen.consentTitle = await page.title();
  expect(await page.getByText("Chromium interop").count() > 0, "the consent page names the client");
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.getByRole("button", { name: "Approve" }).click();
  await page.waitForURL(/\/dev-idp\/authorize/);
  await page.getByLabel("User name").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  try {
    await page.waitForURL(`${redirectUri}**`, { timeout: 10000 });
  } catch (error) {
    seen.stuckAt = page.url();
    seen.stuckPage = (await page.content()).slice(0, 400);
    expect(false, `the browser did not reach the client: ${error.message.split("\n")[0]}`);
  }
  seen.cookies = (await page.context().cookies()).map((c) => c.name).sort();
} finally {
  await browser.close();
}

expect(landed, "the browser reached the client's redirect URI");
expect(landed.searchParams.get("state") === state, "the state came back");
const code = landed.searchParams.get("code");
expect(code, `a code (got ${landed})`);
const tokens = await (await fetch(`${base}/token`, {
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri,
    client_id: registered.client_id, code_verifier: verifier, resource: mcpUrl }).toString(),
})).json();
expect(tokens.access_token, `an access token (got ${JSON.stringify(tokens)})`);
const initialize = await fetch(mcpUrl, {
  method: "POST",
  headers: { authorization: `Bearer ${tokens.access_token}`, "content-type": "application/json",
    accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
    protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "chromium-interop", version: "1" } } }),
});
seen.mcpStatus = initialize.status;
expect(initialize.status === 200, `the MCP endpoint accepts the token (got ${initialize.status})`);
expect(seen.cspViolations.length === 0, "no Content-Security-Policy violation on mcpgate's pages");
seen.ok = true;
console.log(JSON.stringify(seen));
