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
    proxy_config_with(idp, &format!("scopes = [\"{scope}\"]"), dir)
}

/// [`proxy_config`] with `auth_keys` (`scopes` among them) in `[auth]`.
pub fn proxy_config_with(idp: &idp::TestIdp, auth_keys: &str, dir: &Path) -> String {
    format!(
        "[auth]\nclient_id = \"{client_id}\"\nclient_secret_env = \"TEST_IDP_SECRET\"\n{auth_keys}\n\n\
         [auth.oidc]\ndiscovery_url = \"{issuer}/.well-known/openid-configuration\"\n\n\
         [store]\nurl = \"sqlite://{db}\"\n",
        client_id = idp::CLIENT_ID,
        issuer = idp.issuer,
        db = dir.join("gateway.db").display(),
    )
}

/// Signs `user` in at the gateway `base` (whose provider is `idp`); the client id and access token.
pub async fn sign_in(base: &str, idp: &idp::TestIdp, user: &str) -> (String, String) {
    sign_in_asking(base, idp, user, None).await
}

/// [`sign_in`], asking for `scope` (else for none: the default grant).
pub async fn sign_in_asking(
    base: &str,
    idp: &idp::TestIdp,
    user: &str,
    scope: Option<&str>,
) -> (String, String) {
    let scope: Vec<(&str, &str)> = scope.map(|scope| ("scope", scope)).into_iter().collect();
    sign_in_with(base, idp, user, &scope).await
}

/// [`sign_in`] with `parameters` added to the authorization request (`scope`, `resource`).
pub async fn sign_in_with(
    base: &str,
    idp: &idp::TestIdp,
    user: &str,
    parameters: &[(&str, &str)],
) -> (String, String) {
    let redirect = "http://127.0.0.1:47031/callback";
    let client_id = oauth_client::register_public_client(base, redirect, "Gateway client").await;
    let (verifier, challenge) = mcpgate::crypto::pkce::new_pair();
    let mut authorize = oauth_client::authorize_url(base, &client_id, redirect, &challenge);
    authorize.query_pairs_mut().extend_pairs(parameters);
    let browser = idp::browser();
    let callback = idp::approve_and_log_in(&browser, &authorize, &idp.issuer, user).await;
    let back = browser.get(callback).send().await.unwrap();
    let code = oauth_client::code_in(&url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap());
    let verifier = secrecy::ExposeSecret::expose_secret(&verifier);
    let (_, _, tokens) = oauth_client::exchange_code(base, &client_id, redirect, &code, verifier).await;
    let access = tokens["access_token"].as_str().expect("an access token").to_owned();
    (client_id, access)
}

/// A user's way from an authorization URL to the client in a fresh browser, whatever the
/// provider: mcpgate's consent page is approved, the demo's login page or oidc-provider's login
/// and consent pages are filled in as `user`. Returns the URL under `redirect_uri` (the
/// client's) that the browser is sent to at last, not requested.
pub async fn browse_to_client(authorize_url: &url::Url, user: &str, redirect_uri: &str) -> url::Url {
    let browser = idp::browser();
    let mut response = browser.get(authorize_url.clone()).send().await.unwrap();
    for _ in 0..20 {
        if response.status().is_redirection() {
            let next = response.url().join(response.headers()["location"].to_str().unwrap()).unwrap();
            if next.as_str().starts_with(redirect_uri) {
                return next;
            }
            response = browser.get(next).send().await.unwrap();
            continue;
        }
        let page_url = response.url().clone();
        assert_eq!(response.status(), 200, "a page at {page_url}");
        let html = response.text().await.unwrap();
        let action = html
            .split("<form")
            .nth(1)
            .and_then(|form| form.split('>').next().and_then(|tag| tag.split_once("action=\"")))
            .and_then(|(_, rest)| rest.split_once('"').map(|(action, _)| action.replace("&amp;", "&")))
            .unwrap_or_default();
        let mut form: Vec<(String, String)> = html
            .split("<input type=\"hidden\" name=\"")
            .skip(1)
            .filter_map(|rest| {
                let (name, rest) = rest.split_once('"')?;
                let value = rest.strip_prefix(" value=\"")?.split_once('"')?.0;
                Some((name.to_owned(), value.replace("&quot;", "\"").replace("&amp;", "&")))
            })
            .collect();
        let has = |form: &[(String, String)], name: &str, value: Option<&str>| {
            form.iter().any(|(n, v)| n == name && value.is_none_or(|value| v == value))
        };
        if has(&form, "csrf", None) {
            form.push(("decision".into(), "approve".into())); // mcpgate's consent page
        } else if has(&form, "code_challenge", None) {
            form.push(("user".into(), user.to_owned())); // the demo's login page
        } else if has(&form, "prompt", Some("login")) {
            form.push(("login".into(), user.to_owned())); // oidc-provider's login page
            form.push(("password".into(), "any".into()));
        }
        response = browser.post(page_url.join(&action).unwrap()).form(&form).send().await.unwrap();
    }
    panic!("the sign-in did not reach the client in 20 steps");
}
