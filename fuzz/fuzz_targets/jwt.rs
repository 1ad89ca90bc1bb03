//! JWTs (A7): any string given as a token, and structurally valid tokens with fuzzed headers and
//! claims but no valid signature, are refused without a panic; claims that do pass the claim
//! rules have a future `exp` (within the leeway) and the required audience and issuer.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcpgate::verify::{ClaimRules, JwtVerifier, TokenVerifier, VerificationKey};

const PUBLIC_KEY: &[u8] = include_bytes!("../../crates/mcpgate-test-support/keys/ec256.pub.pem");

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let key =
            VerificationKey::ec_pem(Some("k1".into()), PUBLIC_KEY, jsonwebtoken::Algorithm::ES256).unwrap();
        JwtVerifier::builder()
            .key(key)
            .issuer("https://as.example.com")
            .audience("https://mcp.example.com/mcp")
            .build()
            .unwrap()
    })
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // URL-safe base64 without padding, written out here to keep the target's dependencies few.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            let _ = out.write_char(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let verifier = verifier();
    let runtime = runtime();
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(runtime.block_on(verifier.verify(text)).is_err(), "a made-up token was accepted: {text:?}");
    }
    // Header and claims from the input, around a signature that cannot be right.
    let split = data.len() / 2;
    let token = format!("{}.{}.{}", b64(&data[..split]), b64(&data[split..]), b64(b"not a signature"));
    assert!(runtime.block_on(verifier.verify(&token)).is_err(), "an unsigned token was accepted");
    // The claim rules alone, on any JSON object.
    if let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(data) {
        let rules = ClaimRules {
            issuers: vec!["https://as.example.com".into()],
            audiences: vec!["https://mcp.example.com/mcp".into()],
            ..ClaimRules::default()
        };
        let now = 1_800_000_000;
        if let Ok(principal) = rules.principal(claims.clone(), now) {
            let exp = claims.get("exp").and_then(serde_json::Value::as_u64).expect("exp is required");
            assert!(exp + rules.leeway.as_secs() > now, "expired claims accepted");
            assert_eq!(claims.get("iss").and_then(serde_json::Value::as_str), Some("https://as.example.com"));
            let aud = &claims["aud"];
            assert!(
                aud == "https://mcp.example.com/mcp"
                    || aud.as_array().is_some_and(|a| a.iter().any(|v| v == "https://mcp.example.com/mcp")),
                "audience {aud}"
            );
            assert!(principal.expires_at().is_some(), "a principal without expiry");
        }
    }
});
