//! Rate limits on registration, authorization and tokens (E3): per client address, 429 with
//! `Retry-After` — JSON for API clients, a page for browsers — and one client's excess never
//! limits another.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderName, Request};
use mcpgate::authz::{AuthServer, AuthServerSettings, RateLimits};
use mcpgate::crypto::{Keyring, RootSecret};
use mcpgate::ratelimit::RateLimit;
use mcpgate::store::{self, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn server(limits: RateLimits) -> AuthServer {
    let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
    let mut settings = AuthServerSettings::new("https://auth.example.com", "https://mcp.example.com/mcp");
    settings.rate_limits = limits;
    let keyring = Keyring::new(RootSecret::from_bytes(vec![4; 32]).unwrap(), vec![]);
    AuthServer::new(settings, store, &keyring, common::authz::unreachable_upstream("https://idp.example/a"))
        .unwrap()
}

fn register_from(peer: &str, forwarded: Option<&str>) -> Request<Body> {
    let body = json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"});
    let mut request = Request::post("/register").header("content-type", "application/json");
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let mut request = request.body(Body::from(body.to_string())).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    request
}

fn two_at_once() -> Option<RateLimit> {
    Some(RateLimit::per_minute(1, 2))
}

#[tokio::test]
async fn registration_past_the_limit_is_429_with_retry_after_per_peer() {
    let server = server(RateLimits { register: two_at_once(), ..RateLimits::default() }).await;
    let call = |peer: &'static str| {
        let server = server.clone();
        async move { server.router().oneshot(register_from(peer, None)).await.unwrap() }
    };
    assert_eq!(call("192.0.2.1:5000").await.status(), 201);
    assert_eq!(call("192.0.2.1:5001").await.status(), 201, "the port does not make another client");
    let refused = call("192.0.2.1:5002").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["cache-control"], "no-store");
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(refused.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Another address is not affected.
    assert_eq!(call("198.51.100.7:5000").await.status(), 201);
}

#[tokio::test]
async fn behind_a_proxy_the_configured_header_names_the_client() {
    let limits = RateLimits {
        register: two_at_once(),
        client_ip_header: Some(HeaderName::from_static("x-forwarded-for")),
        ..RateLimits::default()
    };
    let server = server(limits).await;
    let call = |forwarded: &'static str| {
        let server = server.clone();
        // Every request comes from the proxy's address.
        async move { server.router().oneshot(register_from("10.0.0.2:443", Some(forwarded))).await.unwrap() }
    };
    // The last value is the one the proxy added; what the client wrote before it is ignored.
    for spoof in ["1.1.1.1, 203.0.113.5", "2.2.2.2, 203.0.113.5"] {
        assert_eq!(call(spoof).await.status(), 201);
    }
    assert_eq!(call("3.3.3.3, 203.0.113.5").await.status(), 429);
    assert_eq!(call("203.0.113.6").await.status(), 201, "a different client behind the same proxy");
}

#[tokio::test]
async fn authorize_over_the_limit_gets_a_page_and_tokens_json() {
    let limits = RateLimits { authorize: two_at_once(), token: two_at_once(), ..RateLimits::default() };
    let server = server(limits).await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(
            server
                .router()
                .oneshot(Request::get("/authorize?client_id=x").body(Body::empty()).unwrap())
                .await
                .unwrap(),
        );
    }
    let refused = last.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(refused.headers().contains_key("retry-after"));

    let token = || {
        Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=refresh_token&refresh_token=x&client_id=y"))
            .unwrap()
    };
    assert_eq!(server.router().oneshot(token()).await.unwrap().status(), 401);
    assert_eq!(server.router().oneshot(token()).await.unwrap().status(), 401);
    let refused = server.router().oneshot(token()).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["content-type"], "application/json");
    // Registration has its own budget.
    let register = register_from("192.0.2.9:1", None);
    assert_eq!(server.router().oneshot(register).await.unwrap().status(), 201);
}
