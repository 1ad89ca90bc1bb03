//! One OAuth proxy in front of several MCP endpoints: each its own protected resource (its
//! metadata at its own path, its own challenge), tokens bound to one of them.

use axum::body::Body;
use http::{Request, StatusCode};
use mcpgate::crypto::{Keyring, RootSecret};
use mcpgate::resource::ProtectedResource;
use mcpgate::{OAuthProxy, Principal, ProxyBuildError};
use mcpgate_test_support as common;
use serde_json::Value;
use tower::ServiceExt;

use crate::machine::{json_of, machine};

const BASE: &str = "https://gw.example.com";

fn builder() -> mcpgate::OAuthProxyBuilder {
    OAuthProxy::builder(BASE)
        .upstream(common::authz::unreachable_upstream("https://idp.example/a"))
        .keyring(Keyring::new(RootSecret::from_bytes(vec![7; 32]).unwrap(), vec![]))
        .scopes(["mcp:read"])
        .configure(|s| s.clients = vec![machine("ci", Some("ci-secret"), None)])
}

async fn app() -> (OAuthProxy, axum::Router) {
    let proxy = builder()
        .store(mcpgate::store::open("memory://").await.unwrap())
        .mcp_path("/github/mcp")
        .resource_path("/search/mcp")
        .build()
        .unwrap();
    let whoami = |name: &'static str| {
        axum::routing::post(move |caller: Principal| async move { format!("{name}: {}", caller.subject()) })
    };
    let search = proxy.resources()[1].clone().challenge_scopes(["search:read"]);
    let app =
        proxy.protect(whoami("github")).merge(proxy.protect_resource(&search, whoami("search")).unwrap());
    (proxy, app)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn call(path: &str, token: Option<&str>) -> Request<Body> {
    let request = Request::post(path);
    let request = match token {
        Some(token) => request.header("authorization", format!("Bearer {token}")),
        None => request,
    };
    request.body(Body::empty()).unwrap()
}

async fn token_for(app: &axum::Router, path: &str) -> String {
    let form =
        format!("grant_type=client_credentials&client_id=ci&client_secret=ci-secret&resource={BASE}{path}");
    let request = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    let (status, body) = json_of(app.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_endpoint_has_its_metadata_and_challenge_and_takes_only_its_own_tokens() {
    let (_, app) = app().await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    for (path, scopes) in [("/github/mcp", "mcp:read"), ("/search/mcp", "search:read")] {
        let (status, _, body) =
            send(&app, get(&format!("/.well-known/oauth-protected-resource{path}"))).await;
        assert_eq!(status, StatusCode::OK);
        let metadata: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(metadata["resource"], format!("{BASE}{path}"));
        assert_eq!(metadata["authorization_servers"][0], BASE);
        let (status, headers, _) = send(&app, call(path, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{BASE}/.well-known/oauth-protected-resource{path}\""
            )),
            "{challenge}"
        );
        assert!(challenge.contains(&format!("scope=\"{scopes}\"")), "{challenge}");
    }
    // No endpoint owns the root document: a client reading it could not tell which it got.
    let (status, _, _) = send(&app, get("/.well-known/oauth-protected-resource")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let search = token_for(&app, "/search/mcp").await;
    let github = token_for(&app, "/github/mcp").await;
    assert_eq!(send(&app, call("/search/mcp", Some(&search))).await.2, "search: ci");
    assert_eq!(send(&app, call("/github/mcp", Some(&github))).await.2, "github: ci");
    let (status, headers, _) = send(&app, call("/github/mcp", Some(&search))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a search token at github");
    assert!(headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(send(&app, call("/search/mcp", Some(&github))).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_its_own_resources_are_protected_and_each_path_once() {
    let (proxy, _) = app().await;
    let stranger = ProtectedResource::new(&format!("{BASE}/elsewhere/mcp")).unwrap();
    let refused = proxy.protect_resource(&stranger, axum::routing::post(|| async { "" }));
    assert!(matches!(refused, Err(ProxyBuildError::UnknownResource(_))), "{refused:?}");
    let twice =
        builder().store(mcpgate::store::open("memory://").await.unwrap()).resource_path("/mcp").build();
    assert!(matches!(twice, Err(ProxyBuildError::PathTwice(p)) if p == "/mcp"));
    // Compared as canonical resource URLs: a trailing slash makes no other endpoint.
    let slashed =
        builder().store(mcpgate::store::open("memory://").await.unwrap()).resource_path("/mcp/").build();
    assert!(matches!(slashed, Err(ProxyBuildError::PathTwice(p)) if p == "/mcp/"));
}
