//! Token verification cost: uncached JWT verification per algorithm, the verified-token cache
//! hit, and a bare RSA-2048 signature check (aws-lc-rs) as the floor to compare RS256 against;
//! an API key; and what `TokenRouter` adds in front of a cache hit, with one issuer (no payload
//! read) and with two (the unverified `iss` read).
//! Commands and results: BENCHMARKS.md.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::verify::{
    API_KEY_PREFIX, ApiKey, ApiKeyVerifier, CachedVerifier, JwtVerifier, TokenRouter, TokenVerifier,
    VerificationKey, new_api_key,
};
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::Arc;

const AUD: &str = "https://mcp.example.com/mcp";
const ISS: &str = "https://idp.example.com";

fn claims() -> serde_json::Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    // A typical IdP access token: about 700 bytes once signed with RS256.
    json!({
        "iss": ISS, "sub": "auth0|5f7c8ec7c33c6c004bbafe82", "aud": [AUD, "https://idp.example.com/userinfo"],
        "azp": "8Xz3kPq7Lm2Nf9Rt", "client_id": "8Xz3kPq7Lm2Nf9Rt", "scope": "openid profile email mcp:read mcp:write",
        "iat": now, "exp": now + 3600, "jti": "c5b1f1a0-52c3-4f6e-9a57-4a1d7e0e2b9d",
        "email": "alice@example.com", "name": "Alice Example",
    })
}

fn signed(alg: Algorithm, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims(), key).unwrap()
}

fn verifier(key: VerificationKey) -> JwtVerifier {
    JwtVerifier::builder().key(key).issuer(ISS).audience(AUD).build().unwrap()
}

fn verification(c: &mut Criterion) {
    let rsa = EncodingKey::from_rsa_pem(include_bytes!("../../mcpgate-test-support/keys/rsa.pem")).unwrap();
    let ec = EncodingKey::from_ec_pem(include_bytes!("../../mcpgate-test-support/keys/ec256.pem")).unwrap();
    let ed = EncodingKey::from_ed_pem(include_bytes!("../../mcpgate-test-support/keys/ed25519.pem")).unwrap();
    let rsa_pub = include_bytes!("../../mcpgate-test-support/keys/rsa.pub.pem");
    let cases = [
        (
            "RS256",
            signed(Algorithm::RS256, &rsa),
            VerificationKey::rsa_pem(Some("k1".into()), rsa_pub).unwrap(),
        ),
        (
            "ES256",
            signed(Algorithm::ES256, &ec),
            VerificationKey::ec_pem(
                Some("k1".into()),
                include_bytes!("../../mcpgate-test-support/keys/ec256.pub.pem"),
                Algorithm::ES256,
            )
            .unwrap(),
        ),
        (
            "EdDSA",
            signed(Algorithm::EdDSA, &ed),
            VerificationKey::ed_pem(
                Some("k1".into()),
                include_bytes!("../../mcpgate-test-support/keys/ed25519.pub.pem"),
            )
            .unwrap(),
        ),
    ];
    let secret = b"a shared secret of thirty-two bytes or more";
    let cases = cases.into_iter().chain([(
        "HS256",
        signed(Algorithm::HS256, &EncodingKey::from_secret(secret)),
        VerificationKey::hmac(Some("k1".into()), secret),
    )]);
    let mut group = c.benchmark_group("verify_uncached");
    for (name, token, key) in cases {
        let v = verifier(key);
        assert!(block_on(v.verify(&token)).is_ok());
        group.bench_function(name, |b| b.iter(|| block_on(v.verify(black_box(&token))).unwrap()));
    }
    group.finish();

    let token = signed(Algorithm::RS256, &rsa);
    let cached = CachedVerifier::new(verifier(VerificationKey::rsa_pem(Some("k1".into()), rsa_pub).unwrap()));
    block_on(cached.verify(&token)).unwrap();
    c.bench_function("verify_cache_hit_RS256", |b| {
        b.iter(|| block_on(cached.verify(black_box(&token))).unwrap());
    });

    // The same cache hit behind a router: API keys by prefix, then one issuer (no payload is
    // read) or two (the unverified `iss` picks the verifier).
    let (key, digest) = new_api_key();
    let keys = || {
        let key = ApiKey {
            name: "ci".into(),
            digest: digest.clone(),
            scopes: vec!["mcp:read".into()],
            expires_at: None,
        };
        Arc::new(ApiKeyVerifier::new(vec![key]).unwrap())
    };
    let cached: Arc<dyn TokenVerifier> = Arc::new(cached);
    let one = TokenRouter::new().prefix(API_KEY_PREFIX, keys()).issuer(ISS, cached.clone());
    let two = TokenRouter::new()
        .prefix(API_KEY_PREFIX, keys())
        .issuer(ISS, cached.clone())
        .issuer("https://other.example.com", cached.clone());
    for (name, router) in [("router_one_issuer_cache_hit", &one), ("router_two_issuers_cache_hit", &two)] {
        assert!(block_on(router.verify(&token)).is_ok());
        c.bench_function(name, |b| b.iter(|| block_on(router.verify(black_box(&token))).unwrap()));
    }
    let keys = keys();
    let key = key.expose_secret().to_owned();
    assert!(block_on(keys.verify(&key)).is_ok());
    c.bench_function("api_key_verify", |b| b.iter(|| block_on(keys.verify(black_box(&key))).unwrap()));

    // The floor: one RSA-2048 PKCS#1 v1.5 SHA-256 verification of the same signing input with
    // an already-parsed key: what any JWT verifier must pay at the least.
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
    let der = pem_body(rsa_pub);
    let public =
        aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, der)
            .unwrap();
    public.verify_sig(signing_input.as_bytes(), &signature).unwrap();
    c.bench_function("rsa2048_verify_floor", |b| {
        b.iter(|| public.verify_sig(black_box(signing_input.as_bytes()), black_box(&signature)).unwrap());
    });
}

/// The DER inside a PEM block.
fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()
}

criterion_group!(benches, verification);
criterion_main!(benches);
