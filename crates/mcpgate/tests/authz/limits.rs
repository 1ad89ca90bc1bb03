//! Rate limits on registration, authorization and tokens (E3): per client address, 429 with
//! `Retry-After` — JSON for API clients, a page for browsers — and one client's excess never
//! limits another.

use mcpgate_test_support as common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use mcpgate::authz::RateLimit;
use mcpgate::authz::{AuthServer, AuthServerSettings, RateLimits};
use mcpgate::crypto::{Keyring, RootSecret};
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

/// `request` with `body`, from one fixed peer.
fn from_peer(request: http::request::Builder, body: Body) -> Request<Body> {
    let mut request = request.body(body).unwrap();
    request.extensions_mut().insert(ConnectInfo("192.0.2.77:1000".parse::<SocketAddr>().unwrap()));
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
async fn behind_a_trusted_proxy_its_forwarded_for_names_the_client() {
    let limits = RateLimits {
        register: two_at_once(),
        trusted_proxies: mcpgate::client_address::TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        ..RateLimits::default()
    };
    let server = server(limits).await;
    let call = |peer: &'static str, forwarded: &'static str| {
        let server = server.clone();
        async move { server.router().oneshot(register_from(peer, Some(forwarded))).await.unwrap() }
    };
    // The right-most address is the one the proxy added; what the client wrote before it is ignored.
    for spoof in ["1.1.1.1, 203.0.113.5", "2.2.2.2, 203.0.113.5"] {
        assert_eq!(call("10.0.0.2:443", spoof).await.status(), 201);
    }
    assert_eq!(call("10.0.0.2:443", "3.3.3.3, 203.0.113.5").await.status(), 429);
    assert_eq!(
        call("10.0.0.2:443", "203.0.113.6").await.status(),
        201,
        "a different client behind the same proxy"
    );
    // A peer that is not a trusted proxy is the client, whatever it forwards: once past its
    // limit, a fresh X-Forwarded-For does not buy it another bucket.
    assert_eq!(call("198.51.100.1:1", "203.0.113.50").await.status(), 201);
    assert_eq!(call("198.51.100.1:1", "203.0.113.51").await.status(), 201);
    assert_eq!(call("198.51.100.1:1", "203.0.113.52").await.status(), 429);
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64_and_no_connect_info_is_not_one_shared_bucket() {
    let server = server(RateLimits { register: two_at_once(), ..RateLimits::default() }).await;
    let call = |request: Request<Body>| {
        let server = server.clone();
        async move { server.router().oneshot(request).await.unwrap().status() }
    };
    // Addresses of one /64 are one client.
    assert_eq!(call(register_from("[2001:db8:5:6::1]:1", None)).await, 201);
    assert_eq!(call(register_from("[2001:db8:5:6:ffff::2]:1", None)).await, 201);
    assert_eq!(call(register_from("[2001:db8:5:6:1:2:3:4]:1", None)).await, 429);
    assert_eq!(call(register_from("[2001:db8:5:7::1]:1", None)).await, 201, "the next /64 is someone else");
    // Without connection info nobody can be told apart: not limited (and a warning logged),
    // rather than everyone sharing one bucket that one client could empty.
    for _ in 0..5 {
        let mut anonymous = register_from("192.0.2.200:1", None);
        anonymous.extensions_mut().remove::<ConnectInfo<SocketAddr>>();
        assert_eq!(call(anonymous).await, 201);
    }
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
                .oneshot(from_peer(Request::get("/authorize?client_id=x"), Body::empty()))
                .await
                .unwrap(),
        );
    }
    let refused = last.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(refused.headers().contains_key("retry-after"));

    let token = || {
        from_peer(
            Request::post("/token").header("content-type", "application/x-www-form-urlencoded"),
            Body::from("grant_type=refresh_token&refresh_token=x&client_id=y"),
        )
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
