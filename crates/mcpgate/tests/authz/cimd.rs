//! Client ID metadata documents (B5), in process, with the documents served by wiremock on
//! loopback (so these tests allow private addresses, the explicit test setting; the default
//! refusing them is tested too): the document is the client, its redirect URIs the only ones,
//! its `client_id` must be its URL, it is cached, and bad documents get a page.

use mcpgate_test_support as common;

use std::sync::Arc;

use axum::body::Body;
use http::{Request, Response};
use mcpgate::authz::{AuthServer, AuthServerSettings, MetadataDocumentPolicy};
use mcpgate::crypto::{Keyring, RootSecret, pkce};
use mcpgate::redirect::RedirectAllowList;
use mcpgate::store::{self, Store};
use serde_json::{Value, json};
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ISSUER: &str = "https://auth.example.com";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";

async fn server_with(policy: MetadataDocumentPolicy, allowed: RedirectAllowList) -> AuthServer {
    let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
    let mut settings = AuthServerSettings::new(ISSUER, "https://mcp.example.com/mcp");
    settings.metadata_documents = policy;
    settings.allowed_redirects = allowed;
    let keyring = Keyring::new(RootSecret::from_bytes(vec![5; 32]).unwrap(), vec![]);
    AuthServer::new(settings, store, &keyring, common::authz::unreachable_upstream("https://idp.example/a"))
        .unwrap()
}

fn lax() -> MetadataDocumentPolicy {
    MetadataDocumentPolicy { enabled: true, allow_private_addresses: true }
}

async fn authorize(server: &AuthServer, client_id: &str, redirect_uri: &str) -> (u16, String) {
    let (_, challenge) = pkce::new_pair();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let response: Response<Body> = server
        .router()
        .oneshot(Request::get(format!("/authorize?{query}")).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(response.headers().get("location").is_none(), "never a redirect for a bad client");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn metadata(server: &AuthServer) -> Value {
    let response = server
        .router()
        .oneshot(Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap())
        .await
        .unwrap();
    serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap()
}

/// Serves `document` at `/clients/<name>.json`; returns that URL.
async fn serve(mock: &MockServer, name: &str, document: impl FnOnce(&str) -> Value, cache: &str) -> String {
    let url = format!("{}/clients/{name}.json", mock.uri());
    Mock::given(method("GET"))
        .and(path(format!("/clients/{name}.json")))
        .respond_with(
            ResponseTemplate::new(200).insert_header("cache-control", cache).set_body_json(document(&url)),
        )
        .mount(mock)
        .await;
    url
}

fn good(url: &str) -> Value {
    json!({"client_id": url, "client_name": "Doc Client", "redirect_uris": [REDIRECT],
           "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"})
}

#[tokio::test]
async fn the_document_is_the_client_and_is_cached() {
    let mock = MockServer::start().await;
    let server = server_with(lax(), RedirectAllowList::any()).await;
    let url = serve(&mock, "good", good, "max-age=600").await;

    let (status, page) = authorize(&server, &url, REDIRECT).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Doc Client"), "the consent page names it");
    // Only the document's redirect URIs.
    let (status, page) = authorize(&server, &url, "http://127.0.0.1:33418/elsewhere").await;
    assert_eq!(status, 400, "{page}");
    // Fetched once for all of that (Cache-Control: max-age=600).
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
    let accept = &mock.received_requests().await.unwrap()[0].headers["accept"];
    assert_eq!(accept, "application/json");

    // A public client: /revoke authenticates it by its URL alone.
    let revoke = Request::post("/revoke")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("token", "unknown"), ("client_id", url.as_str())])
                .finish(),
        ))
        .unwrap();
    assert_eq!(server.router().oneshot(revoke).await.unwrap().status(), 200);

    // The metadata says documents are accepted.
    let metadata = metadata(&server).await;
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
}

#[tokio::test]
async fn unusable_documents_get_a_page_that_says_why() {
    let mock = MockServer::start().await;
    let server = server_with(lax(), RedirectAllowList::only(["http://127.0.0.1:*"])).await;
    let cases: Vec<(String, &str)> = vec![
        (serve(&mock, "other-id", |_| json!({"client_id": "https://elsewhere.example/c.json", "redirect_uris": [REDIRECT]}), "").await,
         "its client_id is not exactly its URL"),
        (serve(&mock, "secret", |u| json!({"client_id": u, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}), "").await,
         "token_endpoint_auth_method must be none"),
        (serve(&mock, "no-redirects", |u| json!({"client_id": u}), "").await, "redirect_uris is required"),
        (serve(&mock, "js", |u| json!({"client_id": u, "redirect_uris": ["javascript:alert(1)"]}), "").await,
         "invalid"),
        // The operator's allow-list applies to documents as to registration.
        (serve(&mock, "outside", |u| json!({"client_id": u, "redirect_uris": ["https://app.example.com/cb"]}), "").await,
         "invalid"),
        (serve(&mock, "huge", |u| json!({"client_id": u, "redirect_uris": [REDIRECT], "client_name": "x".repeat(6000)}), "").await,
         "could not be fetched"),
    ];
    for (url, why) in cases {
        let (status, page) = authorize(&server, &url, REDIRECT).await;
        assert_eq!(status, 400, "{url}");
        assert!(page.contains(why), "{url}: {page}");
    }

    // Redirects are not followed; error statuses and non-JSON are failures.
    for (name, response) in [
        ("moved", ResponseTemplate::new(302).insert_header("location", "https://evil.example/c.json")),
        ("gone", ResponseTemplate::new(404)),
        ("html", ResponseTemplate::new(200).set_body_string("<html>")),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/{name}.json")))
            .respond_with(response)
            .mount(&mock)
            .await;
        let (status, _) = authorize(&server, &format!("{}/{name}.json", mock.uri()), REDIRECT).await;
        assert_eq!(status, 400, "{name}");
    }
    // A failure is remembered briefly: asking again does not fetch again.
    let before = mock.received_requests().await.unwrap().len();
    authorize(&server, &format!("{}/gone.json", mock.uri()), REDIRECT).await;
    assert_eq!(mock.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn by_default_private_addresses_and_plain_http_are_never_fetched() {
    let mock = MockServer::start().await;
    let server = server_with(MetadataDocumentPolicy::default(), RedirectAllowList::any()).await;
    let port = mock.address().port();
    let plain = serve(&mock, "c", good, "").await;
    // Plain http is not a metadata document URL at all: an unknown client.
    let (status, page) = authorize(&server, &plain, REDIRECT).await;
    assert_eq!(status, 400);
    assert!(page.contains("not registered"), "{page}");
    // An IP literal inside the network is refused before any request; a name resolving there
    // is refused by the resolver.
    for url in [
        format!("https://127.0.0.1:{port}/clients/c.json"),
        format!("https://localhost:{port}/clients/c.json"),
    ] {
        let (status, page) = authorize(&server, &url, REDIRECT).await;
        assert_eq!(status, 400);
        assert!(page.contains("not a public address"), "{url}: {page}");
    }
    assert!(mock.received_requests().await.unwrap().is_empty(), "nothing reached the private address");
}

#[tokio::test]
async fn documents_can_be_turned_off() {
    let server = server_with(
        MetadataDocumentPolicy { enabled: false, allow_private_addresses: false },
        RedirectAllowList::any(),
    )
    .await;
    let (status, page) = authorize(&server, "https://client.example/c.json", REDIRECT).await;
    assert_eq!(status, 400);
    assert!(page.contains("not registered"));
    let metadata = metadata(&server).await;
    assert_eq!(metadata["client_id_metadata_document_supported"], false);
}
