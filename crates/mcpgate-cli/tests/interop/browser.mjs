// A browser enough for mcpgate's pages and the providers the tests use, for the Node-based
// interop clients: a cookie jar, manual redirects, hidden form inputs; and a user's walk from an
// authorization URL to the client. Run as a program, it is the "browser" that mcp-remote opens:
// `node browser.mjs <authorization-url>` with INTEROP_USER set signs in and delivers the
// redirect to the client's local callback server (and appends the URL to $INTEROP_LOG if set).

/** A browser enough for mcpgate's pages: a cookie jar, manual redirects, hidden form inputs. */
export class Browser {
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

/** Follows an authorization URL as `user` would: approves mcpgate's consent page, then signs in
 *  on the provider's pages (the demo's dev login, or oidc-provider's login and consent), until
 *  the browser is sent where `isClient` says the client is; returns that URL (not requested).
 *  `browser` keeps cookies between walks (a fresh one by default); `onPage` sees every page. */
export async function walk(authorizationUrl, user, isClient, { browser = new Browser(), onPage } = {}) {
  let response = await browser.request(authorizationUrl);
  for (let step = 0; step < 20; step++) {
    if (response.status >= 300 && response.status < 400) {
      const next = Browser.location(response);
      if (isClient(next)) return next;
      response = await browser.request(next);
      continue;
    }
    if (response.status !== 200) throw new Error(`a page: got ${response.status} at ${response.url}`);
    const page = await response.text();
    onPage?.(page);
    const action = new URL((page.match(/<form[^>]*action="([^"]+)"/)?.[1] ?? "").replace(/&amp;/g, "&"), response.url);
    const fields = Browser.hiddenInputs(page);
    if ("csrf" in fields) fields.decision = "approve"; // mcpgate's consent page
    else if ("code_challenge" in fields) fields.user = user; // the demo's login page
    else if (fields.prompt === "login") Object.assign(fields, { login: user, password: "any" }); // oidc-provider
    response = await browser.post(action, fields);
  }
  throw new Error("the sign-in did not reach the client within 20 steps");
}

// As a program: sign in as $INTEROP_USER, then deliver the redirect to the client (the first
// address off the authorization server's origin that carries a `code` or an `error`: the
// provider's own pages carry neither, mcpgate's callback is on its origin).
if (import.meta.url === `file://${process.argv[1]}`) {
  const start = new URL(process.argv[2]);
  const isClient = (url) =>
    url.origin !== start.origin && (url.searchParams.has("code") || url.searchParams.has("error"));
  const back = await walk(start, process.env.INTEROP_USER, isClient);
  // mcp-remote's re-authorization opens the browser before its callback server listens; a
  // person is never faster than that, this walk can be: wait for the listener (up to 10 s).
  let delivered;
  for (let attempt = 0; !delivered; attempt++) {
    try {
      delivered = await fetch(back);
    } catch (error) {
      if (attempt >= 100 || error.cause?.code !== "ECONNREFUSED") throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  if (process.env.INTEROP_LOG) (await import("node:fs")).appendFileSync(process.env.INTEROP_LOG, `${start}\n`);
  process.exit(delivered.ok ? 0 : 1);
}

