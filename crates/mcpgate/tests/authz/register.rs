//! Authorization-server metadata (B1) and dynamic client registration (B3, B4), in process.

use mcpgate_test_support as common;

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use mcpgate::authz::{AuthServer, AuthServerSettings, ClientRecord, RateLimits};
use mcpgate::crypto::{Keyring, RootSecret};
use mcpgate::redirect::RedirectAllowList;
use mcpgate::store::{self, Collection, Store, StoreExt};
use mcpgate::upstream::Upstream;
use serde_json::{Value, json};
use tower::ServiceExt;

const ISSUER: &str = "https://auth.example.com";

fn settings(issuer: &str, allowed: RedirectAllowList) -> AuthServerSettings {
    let mut settings = AuthServerSettings::new(issuer, "https://mcp.example.com/mcp");
    settings.scopes_supported = vec!["mcp:read".into(), "mcp:write".into()];
    settings.allowed_redirects = allowed;
    // These tests register many clients in a row; the limits have their own test.
    settings.rate_limits = RateLimits::off();
    settings
}

/// An upstream that is never called by these tests.
fn upstream() -> Upstream {
    common::authz::unreachable_upstream("https://idp.example/authorize")
}

fn keyring() -> Keyring {
    Keyring::new(RootSecret::from_bytes(vec![42; 32]).unwrap(), vec![])
}

async fn server_with(issuer: &str, allowed: RedirectAllowList) -> (AuthServer, Arc<dyn Store>) {
    let store = store::open("memory://").await.unwrap();
    (AuthServer::new(settings(issuer, allowed), store.clone(), &keyring(), upstream()).unwrap(), store)
}

async fn call(server: &AuthServer, request: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let response = server.router().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn register(server: &AuthServer, body: Value) -> (StatusCode, http::HeaderMap, Value) {
    let request = Request::post("/register")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    call(server, request).await
}

#[tokio::test]
async fn metadata_names_every_endpoint_and_capability() {
    let (server, _) = server_with(ISSUER, RedirectAllowList::any()).await;
    let (status, headers, doc) = call(
        &server,
        Request::get("/.well-known/oauth-authorization-server")
            .header("origin", "https://x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(doc["registration_endpoint"], format!("{ISSUER}/register"));
    assert_eq!(doc["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/jwks.json"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_post", "client_secret_basic"])
    );
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);

    let (status, _, alias) =
        call(&server, Request::get("/.well-known/openid-configuration").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(alias, doc, "the OIDC alias serves the same document");
}

#[tokio::test]
async fn an_issuer_with_a_path_gets_path_inserted_metadata_and_endpoints_under_it() {
    let issuer = "https://auth.example.com/tenant-a";
    let (server, _) = server_with(issuer, RedirectAllowList::any()).await;
    for path in [
        "/.well-known/oauth-authorization-server/tenant-a",
        "/.well-known/openid-configuration/tenant-a",
        "/tenant-a/.well-known/openid-configuration",
    ] {
        let (status, _, doc) = call(&server, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["registration_endpoint"], format!("{issuer}/register"));
    }
    let request = Request::post("/tenant-a/register")
        .body(Body::from(
            json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"})
                .to_string(),
        ))
        .unwrap();
    assert_eq!(call(&server, request).await.0, 201);
    // The MCP server is on another origin: the root document is not this issuer's to serve.
    let root = Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
    assert_eq!(call(&server, root).await.0, 404);
}

#[tokio::test]
async fn metadata_is_also_at_the_mcp_origin_root_for_2025_03_26_clients() {
    // Issuer under a path on the MCP server's own origin: older clients drop the MCP URL's path
    // and ask the origin's root.
    let issuer = "https://mcp.example.com/oauth";
    let mut settings = settings(issuer, RedirectAllowList::any());
    settings.resources = vec!["https://mcp.example.com/mcp".into()];
    let store: Arc<dyn Store> = Arc::new(store::MemoryStore::new());
    let server = AuthServer::new(settings, store, &keyring(), upstream()).unwrap();
    let root = Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
    let (status, _, doc) = call(&server, root).await;
    assert_eq!(status, 200);
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
}

#[test]
fn issuers_must_be_https_or_loopback_http_without_trailing_slash() {
    let ring = keyring();
    let store: Arc<dyn Store> = Arc::new(store::MemoryStore::new());
    for bad in
        ["http://auth.example.com", "https://auth.example.com/", "https://a.example/x?y=1", "not a url"]
    {
        assert!(
            AuthServer::new(settings(bad, RedirectAllowList::any()), store.clone(), &ring, upstream())
                .is_err(),
            "{bad}"
        );
    }
    assert!(
        AuthServer::new(
            settings("http://127.0.0.1:8000", RedirectAllowList::any()),
            store,
            &ring,
            upstream()
        )
        .is_ok()
    );
}

#[tokio::test]
async fn a_public_client_registers_without_a_secret() {
    let (server, store) = server_with(ISSUER, RedirectAllowList::any()).await;
    let (status, headers, body) = register(
        &server,
        json!({"redirect_uris": ["http://127.0.0.1:33418/callback"], "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "refresh_token"], "client_name": "Claude Code",
               "scope": "mcp:read offline_access admin", "unknown_member": [1, 2]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["redirect_uris"], json!(["http://127.0.0.1:33418/callback"]));
    assert_eq!(body["scope"], "mcp:read", "registration never widens the server's scopes");
    let client_id = body["client_id"].as_str().unwrap();
    assert_eq!(client_id.len(), 43);
    let record =
        store.get_json::<ClientRecord>(Collection::new("clients"), client_id).await.unwrap().unwrap();
    assert_eq!(record.value.client_name.as_deref(), Some("Claude Code"));
    assert!(record.value.secret_digest.is_none());
}

#[tokio::test]
async fn a_confidential_client_gets_a_secret_that_is_stored_only_as_a_digest() {
    let (server, store) = server_with(ISSUER, RedirectAllowList::any()).await;
    for (method, expected) in
        [(Some("client_secret_post"), "client_secret_post"), (None, "client_secret_basic")]
    {
        let mut request = json!({"redirect_uris": ["https://app.example.com/cb"], "application_type": "web"});
        if let Some(method) = method {
            request["token_endpoint_auth_method"] = json!(method);
        }
        let (status, _, body) = register(&server, request).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["token_endpoint_auth_method"], expected);
        assert_eq!(body["client_secret_expires_at"], 0);
        let secret = body["client_secret"].as_str().unwrap();
        assert_eq!(secret.len(), 43);
        let raw = store
            .get(Collection::new("clients"), body["client_id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        let stored = String::from_utf8(raw.value).unwrap();
        assert!(!stored.contains(secret), "the secret is not at rest in clear");
        let digest = keyring().digester().tag(secret.as_bytes()).to_base64();
        assert!(stored.contains(&digest), "its keyed digest is");
    }
}

#[tokio::test]
async fn bad_metadata_gets_the_rfc7591_error() {
    let (server, _) = server_with(ISSUER, RedirectAllowList::any()).await;
    let loopback = json!(["http://127.0.0.1:1/cb"]);
    let cases = [
        (json!({}), "invalid_redirect_uri"),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://evil.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb#x"]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": "http://127.0.0.1:1/cb"}), "invalid_client_metadata"),
        (
            json!({"redirect_uris": loopback, "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": loopback, "grant_types": ["implicit"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": loopback, "grant_types": ["refresh_token"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": loopback, "response_types": ["token"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": loopback, "application_type": "desktop"}), "invalid_client_metadata"),
        (json!({"redirect_uris": loopback, "client_name": "x".repeat(500)}), "invalid_client_metadata"),
        (json!([1, 2, 3]), "invalid_client_metadata"),
    ];
    for (request, code) in cases {
        let (status, headers, body) = register(&server, request.clone()).await;
        assert_eq!(status, 400, "{request}");
        assert_eq!(body["error"], code, "{request}: {body}");
        assert!(body["error_description"].is_string());
        assert_eq!(headers["cache-control"], "no-store");
    }
    let not_json = Request::post("/register").body(Body::from("client_name=x")).unwrap();
    let (status, _, body) = call(&server, not_json).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")));
    let huge = Request::post("/register").body(Body::from(vec![b' '; 100 * 1024])).unwrap();
    assert_eq!(call(&server, huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_operator_allow_list_narrows_registration() {
    let (server, _) = server_with(ISSUER, RedirectAllowList::only(["http://localhost:*"])).await;
    let ok = register(
        &server,
        json!({"redirect_uris": ["http://localhost:5173", "http://localhost:6274/oauth/callback"],
               "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(ok.0, 201);
    let refused = register(
        &server,
        json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(
        (refused.0, refused.2["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri"))
    );

    let (closed, _) = server_with(ISSUER, RedirectAllowList::only(Vec::<String>::new())).await;
    let refused = register(&closed, json!({"redirect_uris": ["http://localhost:5173"]})).await;
    assert_eq!(refused.2["error"], "invalid_redirect_uri", "an empty allow-list accepts nothing");
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let client_id = {
        let store = store::open(&url).await.unwrap();
        let server =
            AuthServer::new(settings(ISSUER, RedirectAllowList::any()), store, &keyring(), upstream())
                .unwrap();
        let (_, _, body) = register(&server, json!({"redirect_uris": ["http://127.0.0.1:7/cb"]})).await;
        body["client_id"].as_str().unwrap().to_owned()
    };
    let reopened = store::open(&url).await.unwrap();
    let record = reopened.get_json::<ClientRecord>(Collection::new("clients"), &client_id).await.unwrap();
    assert_eq!(record.unwrap().value.redirect_uris[0].as_str(), "http://127.0.0.1:7/cb");
}
