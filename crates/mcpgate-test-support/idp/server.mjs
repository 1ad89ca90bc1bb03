// A real OpenID provider for mcpgate's integration tests: oidc-provider on 127.0.0.1, with one
// confidential client, PKCE required, rotating refresh tokens, revocation and introspection,
// and oidc-provider's development login form (any login, any password).
//
// Configuration through the environment:
//   IDP_PORT           port to listen on (0: any free port)
//   IDP_CLIENT_ID      the client mcpgate is (default "mcpgate")
//   IDP_CLIENT_SECRET  its secret (default "mcpgate-test-secret")
//   IDP_REDIRECT_URIS  space-separated callback URLs of that client
//   IDP_ACCESS_TOKEN_TTL  access-token lifetime in seconds (default 600)
// On start it prints one line: `issuer=<url>`.
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';
import http from 'node:http';

const port = Number(process.env.IDP_PORT ?? 0);
const clientId = process.env.IDP_CLIENT_ID ?? 'mcpgate';
const clientSecret = process.env.IDP_CLIENT_SECRET ?? 'mcpgate-test-secret';
const redirectUris = (process.env.IDP_REDIRECT_URIS ?? 'http://127.0.0.1:1/auth/callback').split(/\s+/).filter(Boolean);

// Bind first, so the issuer can name the port actually taken.
const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['mcpgate-test-cookie-key-0123456789'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  // A refresh token whenever the client may use the grant, not only with offline_access.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.test`, email_verified: true, name: `User ${id}` }),
  }),
  ttl: { AccessToken: Number(process.env.IDP_ACCESS_TOKEN_TTL ?? 600), AuthorizationCode: 60, IdToken: 600, RefreshToken: 86400, Interaction: 600, Session: 3600, Grant: 86400 },
});

server.on('request', provider.callback());
console.log(`issuer=${issuer}`);
