//! Machine clients that authenticate by their keys (`private_key_jwt`, RFC 7523): keys inline
//! (`jwks`) or at a URL (`jwks_uri`), the assertion's checks (signature, issuer and subject,
//! audience, lifetime, `jti`), a replay refused by another instance sharing the store, and
//! what the metadata says.

use super::*;
use mcpgate::authz::ClientKeys;
use mcpgate_test_support::{JwksServer, TestKey, jwks, now, with};

const ASSERTION_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

fn keyed(client_id: &str, keys: ClientKeys) -> ConfiguredClient {
    ConfiguredClient { keys: Some(keys), ..machine(client_id, None, None) }
}

fn inline(client_id: &str, key: &TestKey) -> ConfiguredClient {
    keyed(client_id, ClientKeys::Jwks(jwks(&[key])))
}

/// Good assertion claims of `client_id` for our token endpoint, with a fresh `jti`.
fn claims(client_id: &str) -> Value {
    json!({
        "iss": client_id, "sub": client_id, "aud": format!("{ISSUER}/token"),
        "exp": now() + 120, "iat": now(), "jti": format!("jti-{}", rand_id()),
    })
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn form(assertion: &str, extra: &str) -> String {
    format!(
        "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion={assertion}{extra}"
    )
}

async fn token(server: &AuthServer, assertion: &str, extra: &str) -> (StatusCode, Value) {
    json_of(post(server, "/token", None, &form(assertion, extra)).await).await
}

#[tokio::test]
async fn a_client_with_inline_keys_gets_a_token_by_a_signed_assertion() {
    let key = TestKey::rsa("ci-1");
    let server = server_with(vec![inline("ci-keys", &key)]).await.unwrap();
    // Without a client_id (the assertion names it), with one, and with our issuer as audience.
    let by_issuer = with(claims("ci-keys"), "aud", json!(ISSUER));
    for (claims, extra) in
        [(claims("ci-keys"), ""), (claims("ci-keys"), "&client_id=ci-keys"), (by_issuer, "")]
    {
        let (status, body) = token(&server, &key.sign(&claims), extra).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("refresh_token").is_none());
        let principal = verified(&server, &body["access_token"]).await.unwrap();
        assert_eq!((principal.subject(), principal.client_kind()), ("ci-keys", ClientKind::Machine));
    }
}

#[tokio::test]
async fn each_check_of_the_assertion_refuses_with_invalid_client() {
    let key = TestKey::rsa("ci-1");
    let server =
        server_with(vec![inline("ci-keys", &key), machine("ci", Some("ci-secret"), None)]).await.unwrap();
    let good = claims("ci-keys");
    // Each refused for its own reason, which its author is told.
    let cases = [
        (TestKey::rsa2("ci-1").sign(&good), "invalid token: bad signature"),
        (key.sign(&with(good.clone(), "iss", json!("ci"))), "invalid token: issuer not accepted"),
        (key.sign(&with(good.clone(), "sub", json!("alice"))), "sub must be the client id"),
        (
            key.sign(&with(good.clone(), "aud", json!("https://other.example/token"))),
            "invalid token: audience not accepted",
        ),
        (key.sign(&with(good.clone(), "exp", json!(now() - 3600))), "invalid token: token expired"),
        (key.sign(&with(good.clone(), "exp", Value::Null)), "invalid token: token has no expiry"),
        (key.sign(&with(good.clone(), "exp", json!(now() + 86_400))), "it must expire within an hour"),
        (key.sign(&with(good.clone(), "jti", Value::Null)), "a jti is required"),
        ("not.a.jwt".to_owned(), "invalid token: malformed token"),
    ];
    for (assertion, reason) in cases {
        let (status, body) = token(&server, &assertion, "&client_id=ci-keys").await;
        assert_eq!(
            (status, body["error"].as_str(), body["error_description"].as_str()),
            (
                StatusCode::UNAUTHORIZED,
                Some("invalid_client"),
                Some(format!("client assertion refused: {reason}").as_str())
            ),
        );
    }
    // A secret where keys are due, and an assertion where a secret is.
    let (status, body) =
        json_of(post(&server, "/token", Some(("ci-keys", "x")), "grant_type=client_credentials").await).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let (status, body) = token(&server, &key.sign(&claims("ci")), "&client_id=ci").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    // Two ways at once, or half of the assertion's parameters: a malformed request.
    let both =
        post(&server, "/token", Some(("ci", "ci-secret")), &form(&key.sign(&claims("ci-keys")), "")).await;
    assert_eq!(json_of(both).await.1["error"], "invalid_request");
    let half = format!("grant_type=client_credentials&client_assertion={}", key.sign(&claims("ci-keys")));
    assert_eq!(json_of(post(&server, "/token", None, &half).await).await.1["error"], "invalid_request");
    let other_type = form(&key.sign(&claims("ci-keys")), "").replace("jwt-bearer", "saml2-bearer");
    let (status, _) = json_of(post(&server, "/token", None, &other_type).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_assertion_is_accepted_once_across_instances() {
    let key = TestKey::ec256("ci-ec");
    let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
    let first = server_on(store.clone(), vec![inline("ci-keys", &key)]).unwrap();
    let second = server_on(store, vec![inline("ci-keys", &key)]).unwrap();
    let assertion = key.sign(&claims("ci-keys"));
    assert_eq!(token(&first, &assertion, "").await.0, StatusCode::OK);
    for server in [&first, &second] {
        let (status, body) = token(server, &assertion, "").await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
        assert_eq!(body["error_description"], "client assertion refused: already used");
    }
    // A new assertion (a new jti) of the same client is fine.
    assert_eq!(token(&second, &key.sign(&claims("ci-keys")), "").await.0, StatusCode::OK);
}

#[tokio::test]
async fn keys_at_a_url_are_fetched_once_and_serve_revocation_too() {
    let key = TestKey::ed25519("ed");
    let published = JwksServer::start(jwks(&[&key])).await;
    let server =
        server_with(vec![keyed("ci-remote", ClientKeys::JwksUri(published.url.clone()))]).await.unwrap();
    assert_eq!(published.fetches(), 0, "fetched when first needed");
    assert_eq!(token(&server, &key.sign(&claims("ci-remote")), "").await.0, StatusCode::OK);
    let (status, body) = token(&server, &key.sign(&claims("ci-remote")), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(published.fetches(), 1, "kept between assertions");
    // Revocation authenticates the same way.
    let revoke = format!(
        "token={}&client_assertion_type={ASSERTION_TYPE}&client_assertion={}",
        body["access_token"].as_str().unwrap(),
        key.sign(&claims("ci-remote"))
    );
    assert_eq!(post(&server, "/revoke", None, &revoke).await.status(), StatusCode::OK);
    assert!(verified(&server, &body["access_token"]).await.is_err(), "revoked");
}

#[tokio::test]
async fn keys_are_checked_at_start_and_advertised() {
    let key = TestKey::rsa("k");
    let symmetric =
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "h"}]});
    for client in [
        ConfiguredClient { client_secret: Some(SecretString::from("s")), ..inline("both", &key) },
        keyed("hmac", ClientKeys::Jwks(symmetric)),
        keyed("plain-http", ClientKeys::JwksUri("http://keys.example/jwks.json".into())),
    ] {
        let error = server_with(vec![client]).await.unwrap_err();
        assert!(matches!(error, SettingsError::BadClient { .. }), "{error}");
    }
    let metadata = |server: AuthServer| async move {
        let request = Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
        json_of(server.router().oneshot(request).await.unwrap()).await.1
    };
    let with_keys = metadata(server_with(vec![inline("ci-keys", &key)]).await.unwrap()).await;
    assert_eq!(
        with_keys["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_post", "client_secret_basic", "private_key_jwt"])
    );
    let algs = with_keys["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap().clone();
    assert!(algs.contains(&json!("RS256")) && algs.contains(&json!("EdDSA")), "{algs:?}");
    assert!(!algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")), "no symmetric algorithm");
    let without = metadata(server().await).await;
    assert!(without.get("token_endpoint_auth_signing_alg_values_supported").is_none());
    assert!(
        !without["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    // Registration cannot claim the method: keys are the operator's to configure.
    let registration =
        json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "private_key_jwt"});
    let request = Request::post("/register").body(Body::from(registration.to_string())).unwrap();
    let (status, body) = json_of(server().await.router().oneshot(request).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")));
}
