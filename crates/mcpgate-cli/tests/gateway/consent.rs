//! The consent page against cookie planting and cross-origin posts (finding 3), and remembered
//! consent bound to the exact redirect URI (finding 4).

use mcpgate::crypto::pkce;

use super::gateway::{start_demo, start_gateway};
use super::idp::{self, hidden_input};
use super::oauth_client::{authorize_url, register_public_client};
use super::process::free_port;
use super::sign_in::{PROXY_ENV, proxy_config};

/// The value of the `name` cookie a response sets.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
}

#[tokio::test]
async fn a_planted_csrf_cookie_is_replaced_and_consent_posted_from_another_origin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _demo = start_demo(dir.path(), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client_id = register_public_client(&base, "http://127.0.0.1:47100/cb", "Attacker's app").await;
    let (_, challenge) = pkce::new_pair();
    let authorize = authorize_url(&base, &client_id, "http://127.0.0.1:47100/cb", &challenge);

    // A page on another loopback port planted mcpgate-csrf (cookies do not keep ports apart),
    // then had the consent page of its own client shown with it.
    let planted = "A".repeat(43);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(authorize).header("cookie", format!("mcpgate-csrf={planted}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let genuine = set_cookie(&page, "mcpgate-csrf").expect("the page sets its CSRF cookie");
    assert!(!genuine.starts_with(&planted), "the planted value was adopted: {genuine}");
    let html = page.text().await.unwrap();
    let (transaction, csrf) = (hidden_input(&html, "transaction"), hidden_input(&html, "csrf"));

    let post = |cookie: &str, headers: &[(&str, &str)]| {
        let mut request = http
            .post(format!("{base}/consent"))
            .header("cookie", format!("mcpgate-csrf={cookie}"))
            .form(&[("transaction", transaction.as_str()), ("csrf", csrf.as_str()), ("decision", "approve")]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // The victim's browser, carrying the planted cookie, made to post the attacker's form.
    assert_eq!(post(&planted, &[]).await, 403, "a planted cookie approves nothing");
    // Even with a cookie mcpgate minted, a form posted from another origin is refused.
    let other_port = format!("http://127.0.0.1:{}", port + 1);
    assert_eq!(post(&genuine, &[("origin", &other_port)]).await, 403);
    assert_eq!(post(&genuine, &[("origin", "null")]).await, 403);
    assert_eq!(post(&genuine, &[("sec-fetch-site", "same-site")]).await, 403);
    assert_eq!(post(&genuine, &[("sec-fetch-site", "cross-site")]).await, 403);
    // Refusals lose nothing: the page's own post, as a browser sends it, still goes through.
    assert_eq!(post(&genuine, &[("origin", &base), ("sec-fetch-site", "same-origin")]).await, 303);
}

#[tokio::test]
async fn remembered_consent_covers_only_the_exact_redirect_uri_it_was_given_for() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = idp::TestIdp::start(&[&format!("{base}/auth/callback")]);
    let dir = tempfile::tempdir().unwrap();
    let upstream = "http://127.0.0.1:9/mcp";
    let auth = proxy_config(&idp, "mcp:read", dir.path()).replacen(
        "[auth]\n",
        "[auth]\nconsent = \"remember\"\n",
        1,
    );
    let config =
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\nurl = \"{upstream}\"\n\n{auth}");
    let _gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;

    // A native app, approved once for its listener on port 47120.
    let approved_uri = "http://127.0.0.1:47120/cb";
    let client_id = register_public_client(&base, approved_uri, "Mail-linked app").await;
    let (_, challenge) = pkce::new_pair();
    let browser = idp::browser();
    idp::approve(&browser, &authorize_url(&base, &client_id, approved_uri, &challenge)).await;

    // Links opened from a mail client arrive with Sec-Fetch-Site: none.
    let open = |redirect_uri: &str| {
        let url = authorize_url(&base, &client_id, redirect_uri, &challenge);
        let request = browser.get(url).header("sec-fetch-site", "none");
        async move { request.send().await.unwrap() }
    };
    let same = open(approved_uri).await;
    assert_eq!(same.status(), 303, "the approval is remembered for its redirect URI");
    assert!(same.headers()["location"].to_str().unwrap().starts_with(&idp.issuer));
    // Another loopback port may be another program listening: ask again.
    let other_port = open("http://127.0.0.1:47999/cb").await;
    assert_eq!(other_port.status(), 200, "consent is asked for another port");
    assert!(other_port.text().await.unwrap().contains("Allow access?"));
}
