//! Our access tokens (D3): compact JWS signed with EdDSA under a key derived from the root
//! secret, so every instance with the secret signs and verifies alike; the public keys of the
//! current and earlier secrets are published as the JWKS, so tokens survive a rotation.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::crypto::Keyring;
use crate::verify::{JwtConfigError, JwtVerifier, VerificationKey};

/// One signing key and its published form.
struct SigningKey {
    pair: Ed25519KeyPair,
    kid: String,
    jwk: Value,
}

/// Signs our access tokens; knows every key to publish and verify with.
pub(crate) struct TokenSigner {
    keys: Vec<SigningKey>,
}

fn signing_key(seed: &[u8]) -> Option<SigningKey> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).ok()?;
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    // RFC 7638 thumbprint: the required members, sorted, no whitespace.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
    Some(SigningKey { pair, kid, jwk })
}

impl TokenSigner {
    pub(crate) fn new(keyring: &Keyring) -> Self {
        let keys =
            keyring.signing_seeds().iter().filter_map(|seed| signing_key(seed.expose_secret())).collect();
        Self { keys }
    }

    /// Signs `claims` with the current key.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let key = &self.keys[0];
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.pair.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// A verifier of our tokens for any of `resources`, with the keys in memory (no fetch).
    pub(crate) fn verifier(
        &self,
        issuer: &str,
        resources: &[String],
        clock: &crate::clock::Clock,
    ) -> Result<JwtVerifier, JwtConfigError> {
        let mut builder = JwtVerifier::builder().issuer(issuer).clock(clock.clone());
        for resource in resources {
            builder = builder.audience(resource);
        }
        for key in &self.keys {
            if let Ok(jwk) = serde_json::from_value(key.jwk.clone())
                && let Ok(key) = VerificationKey::from_jwk(&jwk, false)
            {
                builder = builder.key(key);
            }
        }
        builder.build()
    }
}
