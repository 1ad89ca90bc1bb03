//! The protected resource over real HTTP (A1–A6, A10): the demo rmcp server behind the bearer
//! layer, reached by rmcp's own Streamable HTTP client and by raw requests.

use mcpgate_test_support as common;

use std::sync::Arc;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::verify::{JwksCache, JwksCacheConfig, JwtVerifier, TokenVerifier};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

struct Fixture {
    key: TestKey,
    jwks: JwksServer,
    resource: String,
    http: reqwest::Client,
}

impl Fixture {
    async fn start(required_scopes: &[&str]) -> Self {
        let key = TestKey::rsa("k1");
        let jwks = JwksServer::start(jwks(&[&key, &TestKey::ec256("k2")])).await;
        let jwks_url = jwks.url.clone();
        let resource = spawn_protected_demo(required_scopes, |resource| {
            let verifier = JwtVerifier::builder()
                .jwks_cache(Arc::new(JwksCache::new(jwks_url, JwksCacheConfig::default())))
                .issuer(ISSUER)
                .audience(resource)
                .build()
                .unwrap();
            Arc::new(verifier) as Arc<dyn TokenVerifier>
        })
        .await;
        Self { key, jwks, resource, http: reqwest::Client::new() }
    }

    fn origin(&self) -> &str {
        self.resource.strip_suffix("/mcp").unwrap()
    }

    fn token(&self) -> String {
        self.key.sign(&claims_for(&self.resource))
    }

    fn token_with(&self, field: &str, value: Value) -> String {
        self.key.sign(&with(claims_for(&self.resource), field, value))
    }

    async fn post(&self, token: Option<&str>) -> reqwest::Response {
        self.post_in_session(token, None).await
    }

    async fn post_in_session(&self, token: Option<&str>, session: Option<&str>) -> reqwest::Response {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}});
        let mut request = self
            .http
            .post(&self.resource)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.origin())
    }
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers().get("www-authenticate").expect("a challenge").to_str().unwrap().to_owned()
}

/// Asserts a 401 `invalid_token` with the given description, quoted values and a JSON body.
async fn assert_invalid_token(response: reqwest::Response, description: &str, metadata_url: &str) {
    assert_eq!(response.status(), 401, "{description}");
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{metadata_url}""#
        )
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "invalid_token", "error_description": description}));
}

#[tokio::test]
async fn an_mcp_client_with_a_valid_token_calls_tools_that_see_its_identity() {
    let f = Fixture::start(&["mcp:read"]).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(f.resource.clone()).auth_header(f.token()),
    );
    let client = ClientConfig::default().serve(transport).await.expect("initialize through the layer");
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["echo", "whoami"]);

    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    let text = &result.content[0].as_text().expect("text").text;
    let identity: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        identity,
        json!({"subject": "alice", "client_id": "client-1", "scopes": ["mcp:read", "mcp:write"]})
    );

    let args = json!({"text": "hello"}).as_object().cloned().unwrap();
    let result = client.call_tool(CallToolRequestParams::new("echo").with_arguments(args)).await.unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "hello");
    client.cancel().await.unwrap();
    assert_eq!(f.jwks.fetches(), 1, "every request after the first verified from cache");
}

#[tokio::test]
async fn no_token_gets_the_discovery_challenge_on_every_method() {
    let f = Fixture::start(&["mcp:read", "mcp:write"]).await;
    let expected = format!(r#"Bearer scope="mcp:read mcp:write", resource_metadata="{}""#, f.metadata_url());
    for method in [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::DELETE] {
        let response = f.http.request(method.clone(), &f.resource).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method}");
        assert_eq!(challenge(&response), expected, "{method}");
        assert!(!challenge(&response).contains("error="), "no error code without a token");
    }
    // Another scheme is not a bearer token.
    let response = f.http.get(&f.resource).basic_auth("u", Some("p")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(challenge(&response), expected);
}

#[tokio::test]
async fn a_refused_request_whose_body_was_not_read_says_the_connection_closes() {
    // hyper closes a connection whose request body went unread; the answer must say so, or a
    // client sends its next request on it (the metadata lookup after a 401) and loses it.
    let f = Fixture::start(&[]).await;
    let refused = f.post(None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    let refused = f.post(Some("not-a-token")).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers().get("connection").map(|v| v.to_str().unwrap()), Some("close"));
    // Without a body the connection stays open for the next request.
    let refused = f.http.get(&f.resource).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("connection").is_none());
}

#[tokio::test]
async fn bad_tokens_get_invalid_token_with_a_reason() {
    let f = Fixture::start(&[]).await;
    let m = f.metadata_url();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused =
        jsonwebtoken::encode(&header, &claims_for(&f.resource), &EncodingKey::from_secret(public_pem::RSA))
            .unwrap();
    let payload = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(br#"{"alg":"none","typ":"JWT"}"#),
            e.encode(serde_json::to_vec(&claims_for(&f.resource)).unwrap())
        )
    };
    let good = f.token();
    let flip = good.len() - 10;
    let swapped = if &good[flip..=flip] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &good[..flip], &good[flip + 1..]);
    let cases = [
        (f.token_with("exp", json!(now() - 3600)), "token expired"),
        (f.token_with("nbf", json!(now() + 3600)), "token not yet valid"),
        (f.token_with("iss", json!("https://evil.test")), "issuer not accepted"),
        (f.token_with("aud", json!("https://other.test/mcp")), "audience not accepted"),
        (confused, "algorithm not allowed"),
        (payload, "algorithm not allowed"),
        (tampered, "bad signature"),
        (TestKey::rsa2("nope").sign(&claims_for(&f.resource)), "unknown signing key"),
        ("x".repeat(20), "malformed token"),
    ];
    for (token, description) in cases {
        assert_invalid_token(f.post(Some(&token)).await, description, &m).await;
    }
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused_though_well_signed() {
    let f = Fixture::start(&[]).await;
    let other = f.key.sign(&claims_for("http://127.0.0.1:1/mcp"));
    assert_invalid_token(f.post(Some(&other)).await, "audience not accepted", &f.metadata_url()).await;
    assert_eq!(f.post(Some(&f.token())).await.status(), 200);
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_with_the_scope_needed() {
    let f = Fixture::start(&["mcp:admin"]).await;
    let response = f.post(Some(&f.token())).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer error="insufficient_scope", error_description="insufficient scope", scope="mcp:admin", resource_metadata="{}""#,
            f.metadata_url()
        )
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

#[tokio::test]
async fn a_token_in_the_query_string_is_refused() {
    let f = Fixture::start(&[]).await;
    let token = f.token();
    for url in [format!("{}?access_token={token}", f.resource)] {
        let response = f.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert!(challenge(&response).starts_with(r#"Bearer error="invalid_request""#));
        // Even alongside a good header.
        let response = f.http.post(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 400);
    }
}

#[tokio::test]
async fn metadata_is_served_at_both_paths_with_open_cors() {
    let f = Fixture::start(&["mcp:read"]).await;
    for url in [f.metadata_url(), format!("{}/.well-known/oauth-protected-resource", f.origin())] {
        let response = f.http.get(&url).header("origin", "https://app.example").send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": f.resource,
                "authorization_servers": [ISSUER],
                "scopes_supported": ["mcp:read"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
    // A CORS preflight from a browser client is answered.
    let response = f
        .http
        .request(reqwest::Method::OPTIONS, f.metadata_url())
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn an_unreachable_idp_without_cached_keys_is_a_503_not_a_401() {
    let f = Fixture::start(&[]).await;
    f.jwks.set_down(true);
    let response = f.post(Some(&f.token())).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    assert!(response.headers().get("www-authenticate").is_none(), "the client must not re-authenticate");
}

#[tokio::test]
async fn a_session_is_refused_to_another_identity() {
    let f = Fixture::start(&[]).await;
    let alice = f.token();
    let bob = f.token_with("sub", json!("bob"));
    let created = f.post(Some(&alice)).await;
    assert_eq!(created.status(), 200);
    let session = created.headers()["mcp-session-id"].to_str().unwrap().to_owned();

    let stolen = f.post_in_session(Some(&bob), Some(&session)).await;
    assert_eq!(stolen.status(), 404, "bob may not use alice's session");
    let other_client = f.token_with("client_id", json!("client-2"));
    assert_eq!(f.post_in_session(Some(&other_client), Some(&session)).await.status(), 404);
    // Alice's session still works for her (a second initialize in it is rmcp's to judge, but
    // it is not refused as someone else's).
    assert_ne!(f.post_in_session(Some(&alice), Some(&session)).await.status(), 404);
}
