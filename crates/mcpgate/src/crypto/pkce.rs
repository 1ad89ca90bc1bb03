//! PKCE (RFC 7636) with S256 only: verifiers, challenges, and the constant-time check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{constant_time_eq, random_token};

/// Whether `verifier` has RFC 7636 §4.1 syntax: 43–128 characters of `[A-Za-z0-9-._~]`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` has the syntax of an S256 challenge: 43 characters of base64url.
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 challenge of `verifier`: BASE64URL(SHA256(verifier)).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is well-formed and matches `challenge`, compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_valid_verifier(verifier) && constant_time_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes())
}

/// A fresh verifier (43 characters, 256 bits) and its S256 challenge, for our own requests to an
/// upstream provider.
pub fn new_pair() -> (SecretString, String) {
    let verifier = random_token();
    let challenge = s256_challenge(verifier.expose_secret());
    (verifier, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256_challenge(verifier), challenge);
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge));
        assert!(!verify_s256("short", &s256_challenge("short")), "too short a verifier");
        assert!(is_valid_s256_challenge(challenge));
        assert!(!is_valid_s256_challenge("plain-text-challenge"));
    }

    #[test]
    fn new_pairs_verify() {
        let (verifier, challenge) = new_pair();
        assert!(verify_s256(verifier.expose_secret(), &challenge));
    }
}
