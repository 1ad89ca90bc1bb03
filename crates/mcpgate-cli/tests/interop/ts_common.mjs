// What the TypeScript interop scripts share: connecting with the SDK and finishing the sign-ins
// it starts. A provider signs in inside `redirectToAuthorization` and leaves the code in
// `provider.pendingCode`; `expect(condition, what)` is the script's own failure report.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

/** After the SDK turned to the browser (`error`), hands it the code the sign-in got. */
export async function finishSignIn(transport, provider, expect, error) {
  expect(error instanceof UnauthorizedError && provider.pendingCode, `a sign-in, not: ${error}`);
  await transport.finishAuth(provider.pendingCode);
  provider.pendingCode = undefined;
}

/** Connects to `mcpUrl`, signing in when the server asks for it (a transport starts once, so a
 *  new one is made for the second attempt). `fetch` replaces the transport's, when given. */
export async function connect(mcpUrl, provider, expect, { name, fetch } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const options = fetch ? { authProvider: provider, fetch } : { authProvider: provider };
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), options);
    const client = new Client({ name, version: "1.0.0" });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (error) {
      await finishSignIn(transport, provider, expect, error);
    }
  }
  expect(false, "connected after signing in");
}
