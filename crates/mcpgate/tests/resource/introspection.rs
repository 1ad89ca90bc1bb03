//! `IntrospectionVerifier` against an RFC 7662 endpoint emulated with wiremock (A9), wrapped in
//! the verified-token cache as deployed.

use mcpgate_test_support as common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::now;
use mcpgate::verify::{
    CachedVerifier, ClientAuthMethod, IntrospectionVerifier, InvalidToken, TokenVerifier, VerifyError,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "s3cr:et/+&=";

fn active(exp_in: u64) -> Value {
    json!({"active": true, "sub": "alice", "client_id": "c1", "scope": "read write",
           "aud": "https://mcp.test/mcp", "iss": "https://as.test", "exp": now() + exp_in})
}

fn verifier(server: &MockServer, auth: ClientAuthMethod) -> IntrospectionVerifier {
    IntrospectionVerifier::builder(
        format!("{}/introspect", server.uri()),
        "rs-client",
        SecretString::from(SECRET),
    )
    .auth_method(auth)
    .issuer("https://as.test")
    .audience("https://mcp.test/mcp")
    .build()
}

async fn calls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn client_secret_basic_sends_form_encoded_credentials() {
    let server = MockServer::start().await;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded, then Basic-encoded.
    let expected = format!("Basic {}", STANDARD.encode("rs-client:s3cr%3Aet%2F%2B%26%3D"));
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .and(header("authorization", expected.as_str()))
        .and(body_string_contains("token=opaque-1"))
        .and(body_string_contains("token_type_hint=access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(active(300)))
        .expect(1)
        .mount(&server)
        .await;
    let p = verifier(&server, ClientAuthMethod::ClientSecretBasic).verify("opaque-1").await.unwrap();
    assert_eq!(p.subject(), "alice");
    assert_eq!(p.client_id(), Some("c1"));
    assert_eq!(p.scopes(), ["read", "write"]);
}

#[tokio::test]
async fn client_secret_post_sends_credentials_in_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .and(body_string_contains("client_id=rs-client"))
        .and(body_string_contains("client_secret=s3cr%3Aet%2F%2B%26%3D"))
        .respond_with(ResponseTemplate::new(200).set_body_json(active(300)))
        .expect(1)
        .mount(&server)
        .await;
    let v = verifier(&server, ClientAuthMethod::ClientSecretPost);
    assert_eq!(v.verify("opaque-2").await.unwrap().subject(), "alice");
    let request = &server.received_requests().await.unwrap()[0];
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn inactive_tokens_are_refused_and_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"active": false})))
        .mount(&server)
        .await;
    let v = CachedVerifier::new(verifier(&server, ClientAuthMethod::ClientSecretBasic));
    for _ in 0..2 {
        assert_eq!(v.verify("revoked").await, Err(VerifyError::Invalid(InvalidToken::Inactive)));
    }
    assert_eq!(calls(&server).await, 2);
}

#[tokio::test]
async fn errors_are_unavailable_and_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let v = CachedVerifier::new(verifier(&server, ClientAuthMethod::ClientSecretBasic));
    for _ in 0..2 {
        assert!(matches!(v.verify("t").await, Err(VerifyError::Unavailable(_))));
    }
    assert_eq!(calls(&server).await, 2);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&server)
        .await;
    assert!(matches!(
        verifier(&server, ClientAuthMethod::ClientSecretBasic).verify("t").await,
        Err(VerifyError::Unavailable(_))
    ));
}

#[tokio::test]
async fn active_results_are_cached_no_longer_than_the_token_lives() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(active(2)))
        .mount(&server)
        .await;
    let v = CachedVerifier::new(verifier(&server, ClientAuthMethod::ClientSecretBasic));
    v.verify("short-lived").await.unwrap();
    v.verify("short-lived").await.unwrap();
    assert_eq!(calls(&server).await, 1, "second use served from the cache");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Past its exp the cached answer is gone; the AS is asked again.
    let _ = v.verify("short-lived").await;
    assert_eq!(calls(&server).await, 2);
}

#[tokio::test]
async fn active_results_are_cached_no_longer_than_the_configured_bound() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(active(3600)))
        .mount(&server)
        .await;
    let inner =
        IntrospectionVerifier::builder(format!("{}/introspect", server.uri()), "rs", SecretString::from("x"))
            .cache_ttl(Duration::from_millis(500))
            .build();
    let v = CachedVerifier::new(inner);
    v.verify("long-lived").await.unwrap();
    v.verify("long-lived").await.unwrap();
    assert_eq!(calls(&server).await, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    v.verify("long-lived").await.unwrap();
    assert_eq!(calls(&server).await, 2, "re-asked after the bound though the token lives on");
}

#[tokio::test]
async fn claim_rules_apply_to_introspection_answers() {
    let server = MockServer::start().await;
    let mut answer = active(300);
    answer["aud"] = json!("https://elsewhere.test/mcp");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&server)
        .await;
    let v = verifier(&server, ClientAuthMethod::ClientSecretBasic);
    assert_eq!(v.verify("t").await, Err(VerifyError::Invalid(InvalidToken::WrongAudience)));

    let server = MockServer::start().await;
    let answer = json!({"active": true, "username": "bob", "exp": now() - 3600});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&server)
        .await;
    let inner = IntrospectionVerifier::builder(server.uri(), "rs", SecretString::from("x")).build();
    assert_eq!(inner.verify("t").await, Err(VerifyError::Invalid(InvalidToken::Expired)));

    let server = MockServer::start().await;
    let answer = json!({"active": true, "username": "bob"});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&server)
        .await;
    let inner = IntrospectionVerifier::builder(server.uri(), "rs", SecretString::from("x")).build();
    assert_eq!(inner.verify("t").await.unwrap().subject(), "bob", "username stands in for a missing sub");
}
