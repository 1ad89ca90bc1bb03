//! `/authorize` and the consent step (C1–C5), in process: what is refused with a page, what is
//! sent back to the client, and what reaches the provider.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};
use mcpgate::authz::{AuthServer, AuthServerSettings};
use mcpgate::crypto::{Keyring, RootSecret, pkce};
use mcpgate::redirect::RedirectAllowList;
use mcpgate::store::{self, Store};
use mcpgate::upstream::Upstream;
use serde_json::{Value, json};
use tower::ServiceExt;

const ISSUER: &str = "https://auth.example.com";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";
const IDP_AUTHORIZE: &str = "https://idp.example/authorize";

struct Fixture {
    server: AuthServer,
    client_id: String,
}

fn upstream() -> Upstream {
    common::authz::unreachable_upstream(IDP_AUTHORIZE)
}

async fn body_text(response: Response<Body>) -> String {
    String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

impl Fixture {
    async fn start() -> Self {
        let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
        let settings = AuthServerSettings {
            issuer: ISSUER.into(),
            resource: RESOURCE.into(),
            scopes_supported: vec!["mcp:read".into(), "mcp:write".into()],
            allowed_redirects: RedirectAllowList::any(),
            callback_path: "/auth/callback".into(),
            refresh_grace: std::time::Duration::from_secs(10),
        };
        let keyring = Keyring::new(RootSecret::from_bytes(vec![7; 32]).unwrap(), vec![]);
        let server = AuthServer::new(settings, store, &keyring, upstream()).unwrap();
        let registration = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                                  "client_name": "<script>alert('pwn')</script> Tool"});
        let response = server
            .router()
            .oneshot(Request::post("/register").body(Body::from(registration.to_string())).unwrap())
            .await
            .unwrap();
        let registered: Value = serde_json::from_str(&body_text(response).await).unwrap();
        Self { server, client_id: registered["client_id"].as_str().unwrap().to_owned() }
    }

    async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.server.router().oneshot(request).await.unwrap()
    }

    fn params(&self, challenge: &str) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "client-state-1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("scope", "mcp:read"),
            ("resource", RESOURCE),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    async fn authorize(&self, params: &[(String, String)]) -> Response<Body> {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        self.send(Request::get(format!("/authorize?{query}")).body(Body::empty()).unwrap()).await
    }
}

fn with(params: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<_> = params.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(value) = value {
        out.push((name.to_owned(), value.to_owned()));
    }
    out
}

fn location(response: &Response<Body>) -> url::Url {
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

fn cookie_pair(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_get_a_page_never_a_redirect() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    let good = f.params(&challenge);
    for params in [
        with(&good, "client_id", Some("unknown-client")),
        with(&good, "client_id", None),
        with(&good, "redirect_uri", Some("http://127.0.0.1:33418/elsewhere")),
        with(&good, "redirect_uri", Some("https://evil.example/callback")),
        // Even with other errors present, the redirect URI is judged first.
        with(&with(&good, "redirect_uri", Some("https://evil.example/cb")), "code_challenge", None),
    ] {
        let response = f.authorize(&params).await;
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
    // With one registered URI, leaving it out is unambiguous.
    let response = f.authorize(&with(&good, "redirect_uri", None)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn request_errors_go_back_to_the_client_with_state_and_iss() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    let good = f.params(&challenge);
    let cases = [
        (with(&good, "code_challenge", None), "invalid_request"),
        (with(&good, "code_challenge_method", Some("plain")), "invalid_request"),
        (with(&good, "code_challenge_method", None), "invalid_request"),
        (with(&good, "code_challenge", Some("too-short")), "invalid_request"),
        (with(&good, "resource", Some("https://other.example.com/mcp")), "invalid_target"),
        (with(&good, "scope", Some("admin root")), "invalid_scope"),
        (with(&good, "response_type", Some("token")), "unsupported_response_type"),
    ];
    for (params, error) in cases {
        let response = f.authorize(&params).await;
        assert_eq!(response.status(), 303, "{error}");
        let target = location(&response);
        assert!(target.as_str().starts_with(REDIRECT), "{target}");
        let q = query(&target);
        assert_eq!(q["error"], error);
        assert_eq!(q["state"], "client-state-1");
        assert_eq!(q["iss"], ISSUER);
    }
}

#[tokio::test]
async fn the_consent_page_names_the_client_escaped_and_refuses_framing() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    let response = f.authorize(&f.params(&challenge)).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("form-action 'self' https://idp.example http://127.0.0.1:33418"), "{csp}");
    assert!(cookie_pair(&response, "__Host-mcpgate-csrf").is_some());
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Secure")
    );
    let html = body_text(response).await;
    assert!(html.contains("&lt;script&gt;alert(&#x27;pwn&#x27;)&lt;/script&gt; Tool"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("127.0.0.1:33418"), "the redirect host is shown");
    assert!(html.contains("<code>mcp:read</code>"));
    assert!(!html.contains("mcp:write"), "only what was asked");
}

#[tokio::test]
async fn consent_needs_the_browser_that_saw_the_page() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    let page = f.authorize(&f.params(&challenge)).await;
    let cookie = cookie_pair(&page, "__Host-mcpgate-csrf").unwrap();
    let html = body_text(page).await;
    let (transaction, csrf) = (hidden(&html, "transaction"), hidden(&html, "csrf"));
    let post = |cookie: Option<&str>, csrf: &str, decision: &str| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("transaction", transaction.as_str()), ("csrf", csrf), ("decision", decision)])
            .finish();
        let mut request =
            Request::post("/consent").header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.body(Body::from(body)).unwrap()
    };
    assert_eq!(f.send(post(None, &csrf, "approve")).await.status(), 403, "no cookie");
    assert_eq!(f.send(post(Some("__Host-mcpgate-csrf=forged"), &csrf, "approve")).await.status(), 403);
    assert_eq!(f.send(post(Some(&cookie), "forged-token", "approve")).await.status(), 403);

    let approved = f.send(post(Some(&cookie), &csrf, "approve")).await;
    assert_eq!(approved.status(), 303);
    let upstream = location(&approved);
    assert!(upstream.as_str().starts_with(IDP_AUTHORIZE));
    let q = query(&upstream);
    assert_eq!(q["state"], transaction, "the transaction id is the upstream state");
    assert_eq!(q["client_id"], "mcpgate-at-idp");
    assert_eq!(q["redirect_uri"], format!("{ISSUER}/auth/callback"));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_ne!(q["code_challenge"], challenge, "the client's challenge never leaves mcpgate");
    assert!(!q.contains_key("resource"), "resource is not forwarded upstream");
    assert!(cookie_pair(&approved, "__Host-mcpgate-bind").is_some(), "approval binds the browser");
}

#[tokio::test]
async fn denial_sends_access_denied_and_ends_the_transaction() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    let page = f.authorize(&f.params(&challenge)).await;
    let cookie = cookie_pair(&page, "__Host-mcpgate-csrf").unwrap();
    let html = body_text(page).await;
    let form = |decision: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("transaction", hidden(&html, "transaction").as_str()),
                ("csrf", hidden(&html, "csrf").as_str()),
                ("decision", decision),
            ])
            .finish()
    };
    let request = |decision: &str| {
        Request::post("/consent")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie.as_str())
            .body(Body::from(form(decision)))
            .unwrap()
    };
    let denied = f.send(request("deny")).await;
    assert_eq!(denied.status(), 303);
    let q = query(&location(&denied));
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str(), q["iss"].as_str()),
        ("access_denied", "client-state-1", ISSUER)
    );
    let late = f.send(request("approve")).await;
    assert_eq!(late.status(), 400, "a denied transaction cannot be approved afterwards");
}

#[tokio::test]
async fn authorize_also_accepts_post() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    let body =
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(f.params(&challenge)).finish();
    let request = Request::post("/authorize")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(f.send(request).await.status(), 200);
}
