//! An MCP client's OAuth sign-in at a proxy-mode gateway, the way a real one does it: dynamic
//! registration, PKCE, mcpgate's consent page and the test IdP's login form in a cookie-jar
//! browser, then the code exchange.

use std::path::Path;

use super::{idp, oauth_client};

/// The environment a proxy-mode gateway of [`proxy_config`] needs: its root secret and its
/// client secret at the test IdP.
pub const PROXY_ENV: [(&str, &str); 2] = [
    ("MCPGATE_SECRET", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA"),
    ("TEST_IDP_SECRET", idp::CLIENT_SECRET),
];

/// The `[auth]`, `[auth.oidc]` and `[store]` sections of a proxy-mode gateway whose provider is
/// `idp`, offering `scope`, its SQLite store in `dir`.
pub fn proxy_config(idp: &idp::TestIdp, scope: &str, dir: &Path) -> String {
    format!(
        "[auth]\nclient_id = \"{client_id}\"\nclient_secret_env = \"TEST_IDP_SECRET\"\nscopes = [\"{scope}\"]\n\n\
         [auth.oidc]\ndiscovery_url = \"{issuer}/.well-known/openid-configuration\"\n\n\
         [store]\nurl = \"sqlite://{db}\"\n",
        client_id = idp::CLIENT_ID,
        issuer = idp.issuer,
        db = dir.join("gateway.db").display(),
    )
}

/// Signs `user` in at the gateway `base` (whose provider is `idp`); the client id and access token.
pub async fn sign_in(base: &str, idp: &idp::TestIdp, user: &str) -> (String, String) {
    let redirect = "http://127.0.0.1:47031/callback";
    let client_id = oauth_client::register_public_client(base, redirect, "Gateway client").await;
    let (verifier, challenge) = mcpgate::crypto::pkce::new_pair();
    let authorize = oauth_client::authorize_url(base, &client_id, redirect, &challenge);
    let browser = idp::browser();
    let callback = idp::approve_and_log_in(&browser, &authorize, &idp.issuer, user).await;
    let back = browser.get(callback).send().await.unwrap();
    let code = oauth_client::code_in(&url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap());
    let verifier = secrecy::ExposeSecret::expose_secret(&verifier);
    let (_, _, tokens) = oauth_client::exchange_code(base, &client_id, redirect, &code, verifier).await;
    let access = tokens["access_token"].as_str().expect("an access token").to_owned();
    (client_id, access)
}
