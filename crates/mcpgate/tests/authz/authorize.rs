//! `/authorize` and the consent step (C1–C5), in process: what is refused with a page, what is
//! sent back to the client, and what reaches the provider.

use mcpgate_test_support as common;

use common::idp::hidden_input;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};
use mcpgate::authz::{AuthServer, AuthServerSettings, ConfiguredClient, ConsentMode, SettingsError};
use mcpgate::crypto::{Keyring, RootSecret, pkce};
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
        Self::with_settings(|_| {}).await
    }

    async fn with_settings(change: impl FnOnce(&mut AuthServerSettings)) -> Self {
        let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
        let mut settings = AuthServerSettings::new(ISSUER, RESOURCE);
        settings.scopes_supported = vec!["mcp:read".into(), "mcp:write".into()];
        change(&mut settings);
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
        self.authorize_with(params, &[]).await
    }

    async fn authorize_with(&self, params: &[(String, String)], headers: &[(&str, &str)]) -> Response<Body> {
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let request = headers
            .iter()
            .fold(Request::get(format!("/authorize?{query}")), |r, (name, value)| r.header(*name, *value));
        self.send(request.body(Body::empty()).unwrap()).await
    }

    /// Approves the consent page `page` in the browser that saw it.
    async fn approve(&self, page: Response<Body>) -> Response<Body> {
        let cookie = cookie_pair(&page, "__Host-mcpgate-csrf").unwrap();
        let html = body_text(page).await;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("transaction", hidden_input(&html, "transaction").as_str()),
                ("csrf", hidden_input(&html, "csrf").as_str()),
                ("decision", "approve"),
            ])
            .finish();
        let request = Request::post("/consent")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
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

fn cookie_pair(response: &Response<Body>, name: &str) -> Option<String> {
    cookie_named(response, |n| n == name)
}

/// The binding cookie set by an approval (one name per transaction).
fn binding_cookie(response: &Response<Body>) -> Option<String> {
    cookie_named(response, |n| n.starts_with("__Host-mcpgate-bind-"))
}

fn cookie_named(response: &Response<Body>, wanted: impl Fn(&str) -> bool) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.split_once('=').is_some_and(|(name, _)| wanted(name)))
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
    let (transaction, csrf) = (hidden_input(&html, "transaction"), hidden_input(&html, "csrf"));
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
    assert!(binding_cookie(&approved).is_some(), "approval binds the browser");
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
                ("transaction", hidden_input(&html, "transaction").as_str()),
                ("csrf", hidden_input(&html, "csrf").as_str()),
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

/// Whether the response sends the browser straight to the provider, bound to it.
fn goes_upstream(response: &Response<Body>) -> bool {
    response.status() == 303
        && location(response).as_str().starts_with(IDP_AUTHORIZE)
        && binding_cookie(response).is_some()
}

#[tokio::test]
async fn remembered_consent_skips_the_page_only_for_that_client_its_scopes_and_a_direct_visit() {
    let f = Fixture::with_settings(|s| s.consent = ConsentMode::Remember).await;
    let (_, challenge) = pkce::new_pair();
    let params = f.params(&challenge);
    let page = f.authorize_with(&params, &[("sec-fetch-site", "none")]).await;
    assert_eq!(page.status(), 200, "nothing remembered yet");
    let approved = f.approve(page).await;
    assert!(goes_upstream(&approved));
    let remembered = cookie_pair(&approved, "__Host-mcpgate-consent").expect("approval is remembered");

    let direct = [("cookie", remembered.as_str()), ("sec-fetch-site", "none")];
    assert!(goes_upstream(&f.authorize_with(&params, &direct).await), "remembered: no page");
    let same_origin = [("cookie", remembered.as_str()), ("sec-fetch-site", "same-origin")];
    assert!(goes_upstream(&f.authorize_with(&params, &same_origin).await));

    // Started by another site, or by a browser that does not say: the page again.
    for site in [Some("cross-site"), Some("same-site"), None] {
        let mut headers = vec![("cookie", remembered.as_str())];
        headers.extend(site.map(|s| ("sec-fetch-site", s)));
        assert_eq!(f.authorize_with(&params, &headers).await.status(), 200, "{site:?}");
    }
    // A scope not approved before.
    let wider = with(&params, "scope", Some("mcp:read mcp:write"));
    assert_eq!(f.authorize_with(&wider, &direct).await.status(), 200);
    // A tampered cookie counts for nothing.
    let (payload, tag) = remembered.split_once('.').unwrap();
    let forged = format!("{}x.{tag}", payload);
    let forged = [("cookie", forged.as_str()), ("sec-fetch-site", "none")];
    assert_eq!(f.authorize_with(&params, &forged).await.status(), 200);
    // Another client was never approved.
    let other = Fixture { server: f.server.clone(), client_id: register(&f, "Other tool").await };
    assert_eq!(other.authorize_with(&other.params(&challenge), &direct).await.status(), 200);
}

async fn register(f: &Fixture, name: &str) -> String {
    let registration =
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": name});
    let response =
        f.send(Request::post("/register").body(Body::from(registration.to_string())).unwrap()).await;
    let registered: Value = serde_json::from_str(&body_text(response).await).unwrap();
    registered["client_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_always_mode_ignores_remembered_consent() {
    // One configured client and the same keys in both servers: only the mode differs.
    let fixture = |mode| {
        Fixture::with_settings(move |s| {
            s.consent = mode;
            s.clients = vec![configured("ops-tool", None, REDIRECT)];
        })
    };
    let remembering = fixture(ConsentMode::Remember).await;
    let remembering = Fixture { client_id: "ops-tool".into(), ..remembering };
    let (_, challenge) = pkce::new_pair();
    let page = remembering.authorize(&remembering.params(&challenge)).await;
    let remembered = cookie_pair(&remembering.approve(page).await, "__Host-mcpgate-consent").unwrap();
    let direct = [("cookie", remembered.as_str()), ("sec-fetch-site", "none")];
    assert!(goes_upstream(&remembering.authorize_with(&remembering.params(&challenge), &direct).await));

    let always = Fixture { client_id: "ops-tool".into(), ..fixture(ConsentMode::Always).await };
    assert_eq!(always.authorize_with(&always.params(&challenge), &direct).await.status(), 200);
}

#[tokio::test]
async fn consent_off_goes_straight_to_the_provider() {
    let f = Fixture::with_settings(|s| s.consent = ConsentMode::Off).await;
    let (_, challenge) = pkce::new_pair();
    let response = f.authorize(&f.params(&challenge)).await;
    assert!(goes_upstream(&response));
    assert_eq!(query(&location(&response))["client_id"], "mcpgate-at-idp");
}

#[test]
fn consent_modes_parse_from_their_names() {
    assert_eq!("always".parse::<ConsentMode>(), Ok(ConsentMode::Always));
    assert_eq!("remember".parse::<ConsentMode>(), Ok(ConsentMode::Remember));
    assert_eq!("off".parse::<ConsentMode>(), Ok(ConsentMode::Off));
    assert!("sometimes".parse::<ConsentMode>().is_err());
}

fn configured(client_id: &str, secret: Option<&str>, redirect: &str) -> ConfiguredClient {
    ConfiguredClient {
        client_id: client_id.into(),
        client_secret: secret.map(|s| secrecy::SecretString::from(s.to_owned())),
        keys: None,
        redirect_uris: vec![redirect.into()],
        client_name: Some("Operator's tool".into()),
        scope: Some("mcp:read".into()),
        grant_types: vec![],
    }
}

#[tokio::test]
async fn configured_clients_work_alongside_registered_ones() {
    let f = Fixture::with_settings(|s| {
        s.clients = vec![configured("ops-tool", Some("ops-secret"), "https://ops.example.com/cb")];
    })
    .await;
    let (_, challenge) = pkce::new_pair();
    // The registered client still works, and so does the configured one.
    assert_eq!(f.authorize(&f.params(&challenge)).await.status(), 200);
    let ops = Fixture { server: f.server.clone(), client_id: "ops-tool".into() };
    let params = with(&ops.params(&challenge), "redirect_uri", Some("https://ops.example.com/cb"));
    let page = ops.authorize(&params).await;
    assert_eq!(page.status(), 200);
    assert!(body_text(page).await.contains("Operator&#x27;s tool"));
    // Its registered redirect URI is the only one.
    assert_eq!(ops.authorize(&ops.params(&challenge)).await.status(), 400);

    // It authenticates with its configured secret (here at /revoke, which answers 200 to a
    // good client whatever the token).
    let revoke = |credentials: &str| {
        Request::post("/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {credentials}"))
            .body(Body::from("token=unknown"))
            .unwrap()
    };
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(f.send(revoke(&b64("ops-tool:ops-secret"))).await.status(), 200);
    assert_eq!(f.send(revoke(&b64("ops-tool:wrong"))).await.status(), 401);
}

#[tokio::test]
async fn unusable_configured_clients_are_refused_at_start() {
    let keyring = Keyring::new(RootSecret::from_bytes(vec![7; 32]).unwrap(), vec![]);
    for client in [
        configured("", None, "https://ops.example.com/cb"),
        configured("ops", None, "javascript:alert(1)"),
        configured("ops", None, "http://ops.example.com/cb"),
        ConfiguredClient { redirect_uris: vec![], ..configured("ops", None, "https://x.example/cb") },
    ] {
        let mut settings = AuthServerSettings::new(ISSUER, RESOURCE);
        settings.clients = vec![client];
        let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
        let error = AuthServer::new(settings, store, &keyring, upstream()).unwrap_err();
        assert!(matches!(error, SettingsError::BadClient { .. }), "{error}");
    }
}

#[tokio::test]
async fn sign_ins_started_side_by_side_in_one_browser_all_stay_valid() {
    let f = Fixture::start().await;
    let (_, challenge) = pkce::new_pair();
    // Two consent pages open at once: the second reuses the browser's secret.
    let first = f.authorize(&f.params(&challenge)).await;
    let cookie = cookie_pair(&first, "__Host-mcpgate-csrf").unwrap();
    let second = f.authorize_with(&f.params(&challenge), &[("cookie", cookie.as_str())]).await;
    assert_eq!(cookie_pair(&second, "__Host-mcpgate-csrf").as_deref(), Some(cookie.as_str()));
    let (first, second) = (body_text(first).await, body_text(second).await);
    let approve = |html: &str| {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("transaction", hidden_input(html, "transaction").as_str()),
                ("csrf", hidden_input(html, "csrf").as_str()),
                ("decision", "approve"),
            ])
            .finish();
        Request::post("/consent")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie.as_str())
            .body(Body::from(body))
            .unwrap()
    };
    let (a, b) = (f.send(approve(&first)).await, f.send(approve(&second)).await);
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (303, 303), "both forms are valid");
    let (a, b) = (binding_cookie(&a).unwrap(), binding_cookie(&b).unwrap());
    let name = |c: &str| c.split_once('=').unwrap().0.to_owned();
    assert_ne!(name(&a), name(&b), "each binding has its own cookie: neither overwrites the other");
}

#[tokio::test]
async fn with_several_resources_a_request_names_one_and_its_approval_is_for_that_one_only() {
    const SEARCH: &str = "https://mcp.example.com/search/mcp";
    let f = Fixture::with_settings(|s| {
        s.consent = ConsentMode::Remember;
        s.resources.push(SEARCH.into());
    })
    .await;
    let (_, challenge) = pkce::new_pair();
    // Naming none is refused back at the client: no token for a guess.
    let unnamed = f.authorize(&with(&f.params(&challenge), "resource", None)).await;
    let q = query(&location(&unnamed));
    assert_eq!(q["error"], "invalid_target");
    assert!(q["error_description"].contains("several"), "{q:?}");
    let other =
        f.authorize(&with(&f.params(&challenge), "resource", Some("https://mcp.example.com/other"))).await;
    assert_eq!(query(&location(&other))["error"], "invalid_target");

    // The consent page says which endpoint; its approval does not cover the other one.
    let search = with(&f.params(&challenge), "resource", Some(&format!("{SEARCH}/")));
    let page = f.authorize_with(&search, &[("sec-fetch-site", "none")]).await;
    assert_eq!(page.status(), 200);
    let html = body_text(page).await;
    assert!(html.contains(&format!("the MCP server at <code>{SEARCH}</code>")), "{html}");
    let page = f.authorize_with(&search, &[("sec-fetch-site", "none")]).await;
    let approved = f.approve(page).await;
    let remembered = cookie_pair(&approved, "__Host-mcpgate-consent").unwrap();
    let direct = [("cookie", remembered.as_str()), ("sec-fetch-site", "none")];
    assert!(goes_upstream(&f.authorize_with(&search, &direct).await), "remembered for search");
    assert_eq!(f.authorize_with(&f.params(&challenge), &direct).await.status(), 200, "not for the first");
}
