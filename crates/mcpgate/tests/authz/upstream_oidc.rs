//! The upstream OAuth client against the real test IdP (discovery, authorization URL, code
//! exchange, id_token identity with nonce, refresh, revocation) and against emulated failures.

use mcpgate_test_support as common;

use std::time::Duration;

use common::idp::{CLIENT_ID, CLIENT_SECRET, TestIdp, browser, log_in};
use mcpgate::OutboundTimeouts;
use mcpgate::crypto::pkce;
use mcpgate::upstream::{
    AuthorizeRequest, IdentitySource, ScopeMapper, Upstream, UpstreamConfig, UpstreamError, discover,
};
use mcpgate::verify::ClientAuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CALLBACK: &str = "http://127.0.0.1:9/auth/callback";

async fn upstream_for(idp: &TestIdp) -> Upstream {
    let discovery = discover(&format!("{}/.well-known/openid-configuration", idp.issuer)).await.unwrap();
    let config = discovery
        .upstream_config(CLIENT_ID, SecretString::from(CLIENT_SECRET), vec!["email".into(), "profile".into()])
        .unwrap();
    Upstream::new(config)
}

/// Logs `user` in through the upstream's authorization URL; the code, and the verifier.
async fn code_for(idp: &TestIdp, upstream: &Upstream, user: &str, nonce: &str) -> (String, SecretString) {
    let (verifier, challenge) = pkce::new_pair();
    let request = AuthorizeRequest {
        redirect_uri: CALLBACK,
        state: "txn-1",
        code_challenge: &challenge,
        nonce,
        scopes: &[],
    };
    let url = upstream.authorization_url(&request).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["nonce"], nonce);
    assert!(query["scope"].split(' ').any(|s| s == "openid"));
    let callback = log_in(&browser(), &idp.issuer, url.as_str(), user).await;
    let params: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "txn-1");
    (params["code"].clone(), verifier)
}

#[tokio::test]
async fn login_exchange_identity_refresh_and_revoke_against_a_real_idp() {
    let idp = TestIdp::start(&[CALLBACK]);
    let upstream = upstream_for(&idp).await;
    let (code, verifier) = code_for(&idp, &upstream, "alice", "nonce-123").await;
    let tokens = upstream.exchange_code(&code, CALLBACK, &verifier).await.unwrap();
    assert!(tokens.expires_at.is_some());
    let identity = upstream.identity(&tokens, "nonce-123").await.unwrap();
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.email.as_deref(), Some("alice@example.test"));
    assert_eq!(identity.name.as_deref(), Some("User alice"));

    // The same tokens with another nonce: not this login.
    assert!(matches!(upstream.identity(&tokens, "nonce-other").await, Err(UpstreamError::Invalid(_))));
    let first = tokens.refresh_token.clone().unwrap();
    let refreshed = upstream.refresh(&first).await.unwrap();
    let second = refreshed.refresh_token.clone().unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret(), "the IdP rotates refresh tokens");
    assert!(upstream.revoke(&second, "refresh_token").await.unwrap());
    assert!(matches!(
        upstream.refresh(&second).await,
        Err(UpstreamError::Rejected { error, .. }) if error == "invalid_grant"
    ));
    // A code is single use at the IdP (a replay also revokes what the code gave, which is why
    // this comes last).
    assert!(matches!(
        upstream.exchange_code(&code, CALLBACK, &verifier).await,
        Err(UpstreamError::Rejected { error, .. }) if error == "invalid_grant"
    ));
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_by_the_idp() {
    let idp = TestIdp::start(&[CALLBACK]);
    let upstream = upstream_for(&idp).await;
    let (code, _) = code_for(&idp, &upstream, "bob", "n").await;
    let (other_verifier, _) = pkce::new_pair();
    assert!(matches!(
        upstream.exchange_code(&code, CALLBACK, &other_verifier).await,
        Err(UpstreamError::Rejected { error, .. }) if error == "invalid_grant"
    ));
}

#[tokio::test]
async fn discovery_must_name_the_issuer_it_was_fetched_from() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a",
            "token_endpoint": "https://evil.example/t", "jwks_uri": "https://evil.example/j"
        })))
        .mount(&server)
        .await;
    let url = format!("{}/.well-known/openid-configuration", server.uri());
    assert!(matches!(discover(&url).await, Err(UpstreamError::Invalid(_))));
    assert!(matches!(
        discover("http://127.0.0.1:1/.well-known/openid-configuration").await,
        Err(UpstreamError::Unavailable(_))
    ));
}

fn plain_config(token_endpoint: String, timeouts: OutboundTimeouts) -> UpstreamConfig {
    UpstreamConfig {
        authorization_endpoint: "https://provider.example/authorize".into(),
        token_endpoint,
        revocation_endpoint: None,
        client_id: "id".into(),
        client_secret: SecretString::from("secret"),
        client_auth: ClientAuthMethod::ClientSecretPost,
        scopes: vec!["read:user".into()],
        extra_authorize_params: vec![("prompt".into(), "consent".into())],
        identity: IdentitySource::UserInfo {
            url: "https://provider.example/user".into(),
            subject_claim: "id".into(),
        },
        timeouts,
    }
}

#[tokio::test]
async fn errors_in_a_200_are_refusals_and_slow_or_dead_providers_are_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"error": "bad_verification_code", "error_description": "expired"})),
        )
        .mount(&server)
        .await;
    let upstream =
        Upstream::new(plain_config(format!("{}/token", server.uri()), OutboundTimeouts::default()));
    let verifier = SecretString::from("v".repeat(43));
    assert!(matches!(
        upstream.exchange_code("c", CALLBACK, &verifier).await,
        Err(UpstreamError::Rejected { error, .. }) if error == "bad_verification_code"
    ));

    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)).set_body_json(json!({})))
        .mount(&slow)
        .await;
    let short = OutboundTimeouts { connect: Duration::from_millis(500), total: Duration::from_millis(500) };
    let upstream = Upstream::new(plain_config(format!("{}/token", slow.uri()), short));
    let started = std::time::Instant::now();
    assert!(matches!(
        upstream.exchange_code("c", CALLBACK, &verifier).await,
        Err(UpstreamError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(2), "a timeout, not a hang");

    let dead = Upstream::new(plain_config("http://127.0.0.1:1/token".into(), short));
    assert!(matches!(dead.exchange_code("c", CALLBACK, &verifier).await, Err(UpstreamError::Unavailable(_))));

    let authorize = Upstream::new(plain_config("http://127.0.0.1:1/token".into(), short))
        .authorization_url(&AuthorizeRequest {
            redirect_uri: CALLBACK,
            state: "s",
            code_challenge: "c",
            nonce: "n",
            scopes: &["mcp:read".into()],
        })
        .unwrap();
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["prompt"], "consent", "provider extras are added");
    assert!(!query.contains_key("nonce"), "no nonce for a provider without id_tokens");
    assert!(!query.contains_key("resource"), "resource is never forwarded by default");
    assert_eq!(query["scope"], "read:user", "without a mapper the client's scopes stay here");
}

#[test]
fn a_scope_mapper_asks_the_provider_for_the_clients_scopes_its_way() {
    // Entra's way: custom API scopes prefixed with the application id URI; others dropped.
    let mapper: ScopeMapper =
        std::sync::Arc::new(|scope: &str| scope.strip_prefix("mcp:").map(|s| format!("api://app-id/{s}")));
    let upstream =
        Upstream::new(plain_config("http://127.0.0.1:1/token".into(), OutboundTimeouts::default()))
            .with_scope_mapper(mapper);
    let granted = ["mcp:read".to_owned(), "mcp:write".to_owned(), "other".to_owned(), "mcp:read".to_owned()];
    let url = upstream
        .authorization_url(&AuthorizeRequest {
            redirect_uri: CALLBACK,
            state: "s",
            code_challenge: "c",
            nonce: "n",
            scopes: &granted,
        })
        .unwrap();
    let scope = url.query_pairs().find(|(k, _)| k == "scope").unwrap().1.into_owned();
    assert_eq!(scope, "read:user api://app-id/read api://app-id/write");
}

#[tokio::test]
async fn identity_can_come_from_the_token_response_with_its_tokens_removed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "access_token": "bot-token", "token_type": "bot",
            "authed_user": {"id": "U123", "scope": "identity.basic", "access_token": "user-token"},
            "team": {"id": "T9", "name": "Example"}})))
        .mount(&server)
        .await;
    let mut config = plain_config(format!("{}/token", server.uri()), OutboundTimeouts::default());
    config.identity = IdentitySource::TokenResponse { subject_pointer: "/authed_user/id".into() };
    let upstream = Upstream::new(config);
    let verifier = SecretString::from("v".repeat(43));
    let tokens = upstream.exchange_code("c", CALLBACK, &verifier).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "bot-token");
    let identity = upstream.identity(&tokens, "n").await.unwrap();
    assert_eq!(identity.subject, "U123");
    assert_eq!(identity.claims["team"]["name"], "Example");
    let claims = serde_json::to_string(&identity.claims).unwrap();
    assert!(!claims.contains("access_token"), "no token among the claims: {claims}");
    assert!(!claims.contains("user-token") && !claims.contains("bot-token"));

    let mut config = plain_config(format!("{}/token", server.uri()), OutboundTimeouts::default());
    config.identity = IdentitySource::TokenResponse { subject_pointer: "/user/id".into() };
    let upstream = Upstream::new(config);
    let tokens = upstream.exchange_code("c", CALLBACK, &verifier).await.unwrap();
    assert!(matches!(upstream.identity(&tokens, "n").await, Err(UpstreamError::Invalid(_))));
}
