//! `JwtVerifier` and the JWKS cache against a JWKS server on loopback (A6–A8).

use mcpgate_test_support as common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::verify::{
    InvalidToken, JwksCache, JwksCacheConfig, JwtVerifier, ScopeClaim, TokenVerifier, VerificationKey,
    VerifyError,
};
use serde_json::json;

const AUD: &str = "https://mcp.test/mcp";

fn verifier_for(jwks: &JwksServer, config: JwksCacheConfig) -> JwtVerifier {
    let cache = Arc::new(JwksCache::new(jwks.url.clone(), config));
    JwtVerifier::builder().jwks_cache(cache).issuer(ISSUER).audience(AUD).build().unwrap()
}

fn quick_config() -> JwksCacheConfig {
    JwksCacheConfig {
        unknown_kid_cooldown: Duration::from_millis(300),
        failure_backoff: Duration::from_millis(200),
        ..JwksCacheConfig::default()
    }
}

fn invalid(reason: InvalidToken) -> Result<String, VerifyError> {
    Err(VerifyError::Invalid(reason))
}

async fn subject(v: &JwtVerifier, token: &str) -> Result<String, VerifyError> {
    v.verify(token).await.map(|p| p.subject().to_owned())
}

#[tokio::test]
async fn every_asymmetric_algorithm_verifies_from_a_jwks() {
    let keys = [
        TestKey::rsa("rs256"),
        TestKey::rsa("rs384").with_alg(Algorithm::RS384),
        TestKey::rsa("rs512").with_alg(Algorithm::RS512),
        TestKey::rsa("ps256").with_alg(Algorithm::PS256),
        TestKey::rsa("ps384").with_alg(Algorithm::PS384),
        TestKey::rsa("ps512").with_alg(Algorithm::PS512),
        TestKey::ec256("es256"),
        TestKey::ec384("es384"),
        TestKey::ed25519("eddsa"),
    ];
    let server = JwksServer::start(jwks(&keys.iter().collect::<Vec<_>>())).await;
    let v = verifier_for(&server, JwksCacheConfig::default());
    for key in &keys {
        let principal =
            v.verify(&key.sign(&claims_for(AUD))).await.unwrap_or_else(|e| panic!("{}: {e}", key.kid));
        assert_eq!(principal.subject(), "alice");
        assert_eq!(principal.client_id(), Some("client-1"));
        assert_eq!(principal.scopes(), ["mcp:read", "mcp:write"]);
        assert_eq!(principal.issuer(), Some(ISSUER));
        assert_eq!(principal.audience(), [AUD]);
    }
    assert_eq!(server.fetches(), 1, "one fetch serves every key");
}

#[tokio::test]
async fn keys_given_directly_as_pem_and_hmac() {
    let rsa = TestKey::rsa("r");
    let ec = TestKey::ec256("e");
    let ed = TestKey::ed25519("d");
    let v = JwtVerifier::builder()
        .key(VerificationKey::rsa_pem(Some("r".into()), public_pem::RSA).unwrap())
        .key(VerificationKey::ec_pem(Some("e".into()), public_pem::EC256, Algorithm::ES256).unwrap())
        .key(VerificationKey::ed_pem(Some("d".into()), public_pem::ED25519).unwrap())
        .issuer(ISSUER)
        .audience(AUD)
        .build()
        .unwrap();
    for key in [&rsa, &ec, &ed] {
        assert_eq!(subject(&v, &key.sign(&claims_for(AUD))).await, Ok("alice".into()));
    }

    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let secret = b"a shared secret of at least thirty-two bytes";
        let v = JwtVerifier::builder()
            .key(VerificationKey::hmac(None, secret))
            .issuer(ISSUER)
            .audience(AUD)
            .build()
            .unwrap();
        let token =
            jsonwebtoken::encode(&Header::new(alg), &claims_for(AUD), &EncodingKey::from_secret(secret))
                .unwrap();
        assert_eq!(subject(&v, &token).await, Ok("alice".into()), "{alg:?}");
        let forged =
            jsonwebtoken::encode(&Header::new(alg), &claims_for(AUD), &EncodingKey::from_secret(b"other"))
                .unwrap();
        assert_eq!(subject(&v, &forged).await, invalid(InvalidToken::BadSignature));
    }
}

#[tokio::test]
async fn refuses_bad_tokens_with_the_right_reason() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let v = verifier_for(&server, JwksCacheConfig::default());
    let good = claims_for(AUD);

    let cases = [
        ("expired", key.sign(&with(good.clone(), "exp", json!(now() - 120))), InvalidToken::Expired),
        ("no exp", key.sign(&with(good.clone(), "exp", json!(null))), InvalidToken::MissingExpiry),
        ("future nbf", key.sign(&with(good.clone(), "nbf", json!(now() + 600))), InvalidToken::NotYetValid),
        (
            "wrong issuer",
            key.sign(&with(good.clone(), "iss", json!("https://evil.test"))),
            InvalidToken::WrongIssuer,
        ),
        (
            "wrong audience",
            key.sign(&with(good.clone(), "aud", json!("https://other.test/mcp"))),
            InvalidToken::WrongAudience,
        ),
        ("no subject", key.sign(&with(good.clone(), "sub", json!(null))), InvalidToken::MissingSubject),
        ("garbage", "not-a-jwt".to_owned(), InvalidToken::Malformed),
        ("bad header", "e30.e30.e30".to_owned(), InvalidToken::Malformed),
    ];
    for (name, token, reason) in cases {
        assert_eq!(subject(&v, &token).await, invalid(reason), "{name}");
    }
}

#[tokio::test]
async fn refuses_none_hmac_confusion_tampering_and_unknown_kids() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let v = verifier_for(&server, JwksCacheConfig::default());
    let good = key.sign(&claims_for(AUD));
    assert_eq!(subject(&v, &good).await, Ok("alice".into()));

    // alg: none, with and without a kid.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(AUD)).unwrap());
    for header in [json!({"alg": "none"}), json!({"alg": "none", "kid": "k1"}), json!({"alg": "None"})] {
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        assert_eq!(
            subject(&v, &format!("{header}.{payload}.")).await,
            invalid(InvalidToken::AlgorithmNotAllowed)
        );
    }

    // HS256 "signed" with the RSA public key's bytes, naming the RSA key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused =
        jsonwebtoken::encode(&header, &claims_for(AUD), &EncodingKey::from_secret(public_pem::RSA)).unwrap();
    assert_eq!(subject(&v, &confused).await, invalid(InvalidToken::AlgorithmNotAllowed));

    // The right key family, the wrong algorithm for this JWK (it says RS256).
    let ps = TestKey::rsa("k1").with_alg(Algorithm::PS256).sign(&claims_for(AUD));
    assert_eq!(subject(&v, &ps).await, invalid(InvalidToken::AlgorithmNotAllowed));

    // Tampered payload and tampered signature.
    let parts: Vec<&str> = good.split('.').collect();
    let other_payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&with(claims_for(AUD), "sub", json!("mallory"))).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    assert_eq!(subject(&v, &tampered).await, invalid(InvalidToken::BadSignature));
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(subject(&v, &tampered).await, invalid(InvalidToken::BadSignature));

    // Signed by a key the JWKS does not have, under a kid it does not have.
    let stranger = TestKey::rsa2("k-unknown").sign(&claims_for(AUD));
    assert_eq!(subject(&v, &stranger).await, invalid(InvalidToken::UnknownKey));
    // ... and under the kid it does have.
    let impostor = TestKey::rsa2("k1").sign(&claims_for(AUD));
    assert_eq!(subject(&v, &impostor).await, invalid(InvalidToken::BadSignature));
}

#[tokio::test]
async fn algorithm_allow_list_narrows_what_keys_allow() {
    let key = TestKey::ec256("e");
    let server = JwksServer::start(jwks(&[&key])).await;
    let v = JwtVerifier::builder()
        .jwks_uri(server.url.clone())
        .algorithms([Algorithm::RS256])
        .issuer(ISSUER)
        .audience(AUD)
        .build()
        .unwrap();
    assert_eq!(subject(&v, &key.sign(&claims_for(AUD))).await, invalid(InvalidToken::AlgorithmNotAllowed));
    assert_eq!(server.fetches(), 0, "a refused algorithm costs no fetch");
}

#[tokio::test]
async fn scopes_from_scp_or_a_configured_claim() {
    let key = TestKey::ed25519("d");
    let server = JwksServer::start(jwks(&[&key])).await;
    let v = verifier_for(&server, JwksCacheConfig::default());
    let scp = with(with(claims_for(AUD), "scope", json!(null)), "scp", json!(["a", "b"]));
    assert_eq!(v.verify(&key.sign(&scp)).await.unwrap().scopes(), ["a", "b"]);

    let v = JwtVerifier::builder()
        .jwks_uri(server.url.clone())
        .issuer(ISSUER)
        .audience(AUD)
        .scope_claim(ScopeClaim::Named("permissions".into()))
        .build()
        .unwrap();
    let perms = with(claims_for(AUD), "permissions", json!(["read:files"]));
    assert_eq!(v.verify(&key.sign(&perms)).await.unwrap().scopes(), ["read:files"]);
}

#[test]
fn an_audience_is_required_unless_waived() {
    let key = || VerificationKey::hmac(None, b"0123456789abcdef0123456789abcdef");
    assert!(JwtVerifier::builder().key(key()).issuer(ISSUER).build().is_err());
    assert!(JwtVerifier::builder().key(key()).insecure_any_audience().build().is_ok());
    assert!(JwtVerifier::builder().audience(AUD).build().is_err(), "no keys");
}

#[tokio::test]
async fn key_rotation_is_picked_up_with_one_fetch() {
    let old = TestKey::rsa("2026-01");
    let new = TestKey::ec256("2026-02");
    let server = JwksServer::start(jwks(&[&old])).await;
    let v = verifier_for(&server, quick_config());
    assert_eq!(subject(&v, &old.sign(&claims_for(AUD))).await, Ok("alice".into()));
    assert_eq!(server.fetches(), 1);

    server.set_document(jwks(&[&old, &new]));
    tokio::time::sleep(Duration::from_millis(350)).await; // past the unknown-kid cool-down
    for _ in 0..20 {
        assert_eq!(subject(&v, &new.sign(&claims_for(AUD))).await, Ok("alice".into()));
    }
    assert_eq!(subject(&v, &old.sign(&claims_for(AUD))).await, Ok("alice".into()));
    assert_eq!(server.fetches(), 2, "the new kid caused exactly one refetch");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let config = JwksCacheConfig { unknown_kid_cooldown: Duration::from_secs(1), ..quick_config() };
    let v = Arc::new(verifier_for(&server, config));
    assert_eq!(subject(&v, &key.sign(&claims_for(AUD))).await, Ok("alice".into()));
    tokio::time::sleep(Duration::from_millis(1050)).await;

    // Tokens naming random kids; their signature is never reached, so it need not be real.
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(AUD)).unwrap());
    let burst = |round: usize| {
        let v = v.clone();
        let tokens: Vec<String> = (0..1000)
            .map(|i| {
                let header = json!({"alg": "RS256", "kid": format!("random-{round}-{i}")});
                let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
                format!("{header}.{payload}.c2lnbmF0dXJl")
            })
            .collect();
        async move {
            let tasks: Vec<_> = tokens
                .into_iter()
                .map(|t| {
                    let v = v.clone();
                    tokio::spawn(async move { v.verify(&t).await })
                })
                .collect();
            for task in tasks {
                assert_eq!(task.await.unwrap(), Err(VerifyError::Invalid(InvalidToken::UnknownKey)));
            }
        }
    };
    burst(1).await;
    assert_eq!(server.fetches(), 2, "1,000 unknown kids at once: one refetch");
    burst(2).await;
    assert_eq!(server.fetches(), 2, "within the cool-down: no refetch");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    burst(3).await;
    assert_eq!(server.fetches(), 3, "after the cool-down: one more");
}

#[tokio::test]
async fn cached_keys_keep_serving_while_the_idp_is_down() {
    let key = TestKey::ec384("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control("max-age=0");
    let config = JwksCacheConfig { min_ttl: Duration::from_millis(100), ..quick_config() };
    let v = Arc::new(verifier_for(&server, config));
    assert_eq!(subject(&v, &key.sign(&claims_for(AUD))).await, Ok("alice".into()));

    server.set_down(true);
    tokio::time::sleep(Duration::from_millis(150)).await; // the set is now stale
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (v, t) = (v.clone(), key.sign(&claims_for(AUD)));
            tokio::spawn(async move { v.verify(&t).await.map(|p| p.subject().to_owned()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok("alice".into()));
    }
    assert_eq!(server.fetches(), 2, "one refresh attempt, then the stale set is served during the back-off");

    server.set_down(false);
    tokio::time::sleep(Duration::from_millis(250)).await; // past the back-off
    assert_eq!(subject(&v, &key.sign(&claims_for(AUD))).await, Ok("alice".into()));
    assert_eq!(server.fetches(), 3, "refreshed once the IdP is back");
}

#[tokio::test]
async fn without_any_keys_the_verifier_is_unavailable_not_refusing() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_down(true);
    let v = verifier_for(&server, quick_config());
    assert!(matches!(v.verify(&key.sign(&claims_for(AUD))).await, Err(VerifyError::Unavailable(_))));
    // Within the back-off the IdP is not asked again.
    assert!(matches!(v.verify(&key.sign(&claims_for(AUD))).await, Err(VerifyError::Unavailable(_))));
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn cache_control_sets_freshness_within_bounds() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control("public, max-age=1");
    let config = JwksCacheConfig { min_ttl: Duration::ZERO, ..JwksCacheConfig::default() };
    let v = verifier_for(&server, config);
    let token = key.sign(&claims_for(AUD));
    v.verify(&token).await.unwrap();
    v.verify(&token).await.unwrap();
    assert_eq!(server.fetches(), 1, "fresh for max-age");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    v.verify(&token).await.unwrap();
    assert_eq!(server.fetches(), 2, "refetched once stale");

    // A very long max-age is cut to max_ttl.
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control("max-age=31536000");
    let config = JwksCacheConfig {
        max_ttl: Duration::from_millis(300),
        min_ttl: Duration::ZERO,
        ..JwksCacheConfig::default()
    };
    let v = verifier_for(&server, config);
    v.verify(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    v.verify(&token).await.unwrap();
    assert_eq!(server.fetches(), 2, "max_ttl bounds a long max-age");
}

#[tokio::test]
async fn a_jwks_with_only_unusable_keys_does_not_replace_good_ones() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control("max-age=0");
    let config = JwksCacheConfig {
        min_ttl: Duration::from_millis(50),
        failure_backoff: Duration::ZERO,
        ..quick_config()
    };
    let v = verifier_for(&server, config);
    v.verify(&key.sign(&claims_for(AUD))).await.unwrap();
    // A symmetric key in a public JWKS is never used, and an empty set is not adopted.
    server.set_document(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(subject(&v, &key.sign(&claims_for(AUD))).await, Ok("alice".into()));
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn keys_given_directly_as_jwks() {
    let rsa = TestKey::rsa("r1");
    let rsa_jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(rsa.jwk()).unwrap();
    let secret = b"0123456789abcdef0123456789abcdef";
    let oct: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
        "kty": "oct", "kid": "h1", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret)
    }))
    .unwrap();
    assert!(VerificationKey::from_jwk(&oct, false).is_err(), "a symmetric JWK only when allowed");
    let v = JwtVerifier::builder()
        .key(VerificationKey::from_jwk(&rsa_jwk, false).unwrap())
        .key(VerificationKey::from_jwk(&oct, true).unwrap())
        .issuer(ISSUER)
        .audience(AUD)
        .build()
        .unwrap();
    assert_eq!(subject(&v, &rsa.sign(&claims_for(AUD))).await, Ok("alice".into()));
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("h1".into());
    let hs = jsonwebtoken::encode(&header, &claims_for(AUD), &EncodingKey::from_secret(secret)).unwrap();
    assert_eq!(subject(&v, &hs).await, Ok("alice".into()));
    // The oct JWK says HS256: HS512 under it is refused.
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some("h1".into());
    let hs512 = jsonwebtoken::encode(&header, &claims_for(AUD), &EncodingKey::from_secret(secret)).unwrap();
    assert_eq!(subject(&v, &hs512).await, invalid(InvalidToken::AlgorithmNotAllowed));
}

#[tokio::test]
async fn tokens_with_critical_header_extensions_are_refused() {
    let key = TestKey::rsa("k1");
    let v = JwtVerifier::builder()
        .key(VerificationKey::rsa_pem(Some("k1".into()), public_pem::RSA).unwrap())
        .issuer(ISSUER)
        .audience(AUD)
        .build()
        .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    header.extras.insert("crit", json!(["b64"]));
    header.extras.insert("b64", json!(false));
    let token = jsonwebtoken::encode(&header, &claims_for(AUD), &key.encoding).unwrap();
    assert_eq!(subject(&v, &token).await, invalid(InvalidToken::Malformed));
}

#[test]
fn bad_key_material_is_an_error_not_a_panic() {
    assert!(VerificationKey::rsa_pem(None, b"not a pem").is_err());
    assert!(
        VerificationKey::rsa_pem(None, b"-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").is_err()
    );
    assert!(VerificationKey::ec_pem(None, public_pem::RSA, Algorithm::ES256).is_err());
    assert!(VerificationKey::ed_pem(None, public_pem::EC256).is_err());
    let bad_rsa: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"})).unwrap();
    assert!(VerificationKey::from_jwk(&bad_rsa, false).is_err());
    let bad_ec: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"})).unwrap();
    assert!(VerificationKey::from_jwk(&bad_ec, false).is_err());
}

/// Random and mangled tokens never panic the verifier and are never accepted.
#[tokio::test]
async fn arbitrary_input_is_refused_without_panicking() {
    let key = TestKey::rsa("k1");
    let v = JwtVerifier::builder()
        .key(VerificationKey::rsa_pem(Some("k1".into()), public_pem::RSA).unwrap())
        .issuer(ISSUER)
        .audience(AUD)
        .build()
        .unwrap();
    let good = key.sign(&claims_for(AUD));
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const ALPHABET: &[u8] = b"ABCabc012-_.=+/ {}\":,\\\0\xff";
    for round in 0..5_000 {
        let token = match round % 3 {
            // Random bytes from an alphabet rich in separators and JSON punctuation.
            0 => {
                let len = (next() % 200) as usize;
                (0..len)
                    .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
                    .collect::<String>()
            }
            // A good token with one byte changed.
            1 => {
                let mut bytes = good.clone().into_bytes();
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = ALPHABET[(next() % 15) as usize];
                String::from_utf8(bytes).unwrap()
            }
            // Well-formed base64 segments of random JSON-ish content.
            _ => {
                let part = |n: u64| {
                    URL_SAFE_NO_PAD.encode((0..n % 64).map(|i| (i * 37 % 251) as u8).collect::<Vec<_>>())
                };
                format!("{}.{}.{}", part(next()), part(next()), part(next()))
            }
        };
        if token == good {
            continue;
        }
        assert!(v.verify(&token).await.is_err(), "accepted {token:?}");
    }
}
