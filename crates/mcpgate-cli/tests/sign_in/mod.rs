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

/// A user's way through `mcpgate demo`'s pages in a fresh browser: opens `authorize_url`,
/// approves the consent page, signs in on the development login page as `user`, and follows
/// mcpgate's callback. Returns where the browser is sent at last: the client's redirect URI.
pub async fn demo_sign_in(authorize_url: &url::Url, user: &str) -> url::Url {
    let location = |response: &reqwest::Response| {
        response.url().join(response.headers()["location"].to_str().unwrap()).unwrap()
    };
    let browser = idp::browser();
    let page = browser.get(authorize_url.clone()).send().await.unwrap().text().await.unwrap();
    let approved = browser
        .post(authorize_url.join("/consent").unwrap())
        .form(&[
            ("transaction", idp::hidden_input(&page, "transaction")),
            ("csrf", idp::hidden_input(&page, "csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    let login_url = location(&approved);
    assert!(login_url.path().starts_with("/dev-idp/authorize"), "{login_url}");
    let login = browser.get(login_url.clone()).send().await.unwrap().text().await.unwrap();
    let signed_in = browser
        .post(login_url)
        .form(&[
            ("user", user.to_owned()),
            ("redirect_uri", idp::hidden_input(&login, "redirect_uri")),
            ("state", idp::hidden_input(&login, "state")),
            ("code_challenge", idp::hidden_input(&login, "code_challenge")),
        ])
        .send()
        .await
        .unwrap();
    let back = browser.get(location(&signed_in)).send().await.unwrap();
    location(&back)
}
