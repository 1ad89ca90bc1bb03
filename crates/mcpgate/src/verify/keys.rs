//! Verification keys and key sets: each key knows which algorithms it may verify, so that an
//! algorithm is always tied to the key's family (no `none`, no HMAC with a public key).

use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::InvalidToken;

/// Errors building a key from configuration.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key material could not be parsed.
    #[error("cannot parse key: {0}")]
    Parse(String),
    /// The JWK names an algorithm that does not fit its key type, or none is supported.
    #[error("unsupported key: {0}")]
    Unsupported(&'static str),
}

/// One key able to verify signatures under a fixed set of algorithms.
pub struct VerificationKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself stays out of the output: an HMAC key is a secret.
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const HMAC_ALGS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

fn parse_err(e: jsonwebtoken::errors::Error) -> KeyError {
    KeyError::Parse(e.to_string())
}

impl VerificationKey {
    fn new(kid: Option<String>, key: DecodingKey, algorithms: Vec<Algorithm>) -> Self {
        Self { kid, key, algorithms }
    }

    /// An RSA public key in PEM (PKCS#1 or SPKI); verifies RS256/384/512 and PS256/384/512.
    pub fn rsa_pem(kid: Option<String>, pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(parse_err)?;
        Ok(Self::new(kid, key, RSA_ALGS.to_vec()))
    }

    /// An EC public key in PEM, for `alg` (ES256 for P-256, ES384 for P-384).
    pub fn ec_pem(kid: Option<String>, pem: &[u8], alg: Algorithm) -> Result<Self, KeyError> {
        if !matches!(alg, Algorithm::ES256 | Algorithm::ES384) {
            return Err(KeyError::Unsupported("an EC key verifies ES256 or ES384 only"));
        }
        let key = DecodingKey::from_ec_pem(pem).map_err(parse_err)?;
        Ok(Self::new(kid, key, vec![alg]))
    }

    /// An Ed25519 public key in PEM; verifies EdDSA.
    pub fn ed_pem(kid: Option<String>, pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_ed_pem(pem).map_err(parse_err)?;
        Ok(Self::new(kid, key, vec![Algorithm::EdDSA]))
    }

    /// A shared HMAC secret; verifies HS256/384/512.
    pub fn hmac(kid: Option<String>, secret: &[u8]) -> Self {
        Self::new(kid, DecodingKey::from_secret(secret), HMAC_ALGS.to_vec())
    }

    /// A key from a JWK. Symmetric (`oct`) keys are accepted only when `allow_symmetric`:
    /// a JWKS fetched from a URL is public, so a secret key in it would be no secret.
    pub fn from_jwk(jwk: &Jwk, allow_symmetric: bool) -> Result<Self, KeyError> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err(KeyError::Unsupported("key is for encryption"));
        }
        let family: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => RSA_ALGS.to_vec(),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return Err(KeyError::Unsupported("EC curve")),
            },
            AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
                EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
                _ => return Err(KeyError::Unsupported("OKP curve")),
            },
            AlgorithmParameters::OctetKey(_) if allow_symmetric => HMAC_ALGS.to_vec(),
            AlgorithmParameters::OctetKey(_) => {
                return Err(KeyError::Unsupported("symmetric key in a public key set"));
            }
            _ => return Err(KeyError::Unsupported("key type")),
        };
        // A JWK that names its algorithm may be used with that one only.
        let algorithms = match jwk.common.key_algorithm {
            None => family,
            Some(named) => {
                let named = key_algorithm(named).ok_or(KeyError::Unsupported("JWK alg"))?;
                if !family.contains(&named) {
                    return Err(KeyError::Unsupported("JWK alg does not fit its key type"));
                }
                vec![named]
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(parse_err)?;
        Ok(Self::new(jwk.common.key_id.clone(), key, algorithms))
    }

    /// The key id, when it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// A set of verification keys, as configured or as published at a JWKS URL.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerificationKey>>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// A key set from the given keys.
    pub fn new(keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        Self { keys: keys.into_iter().map(Arc::new).collect() }
    }

    /// Parses a JWKS document (RFC 7517 §5). Keys this crate cannot use (other key types,
    /// encryption keys, symmetric keys) are skipped rather than failing the whole set, because
    /// identity providers publish such keys beside their signing keys.
    pub fn from_jwks_json(body: &[u8]) -> Result<Self, KeyError> {
        let raw: RawJwks = serde_json::from_slice(body).map_err(|e| KeyError::Parse(e.to_string()))?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| VerificationKey::from_jwk(&jwk, false).ok());
        Ok(Self::new(keys))
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this id is present.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// The keys that may verify a token with header `kid` and `alg`.
    ///
    /// With a `kid`, only keys of that id are considered: none → [`InvalidToken::UnknownKey`],
    /// some but none allowing `alg` → [`InvalidToken::AlgorithmNotAllowed`]. Without a `kid`,
    /// every key allowing `alg`.
    pub fn candidates(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<&VerificationKey>, InvalidToken> {
        let mut named = false;
        let found: Vec<&VerificationKey> = self
            .keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => {
                    k.kid() == Some(kid) && {
                        named = true;
                        true
                    }
                }
                None => true,
            })
            .filter(|k| k.algorithms.contains(&alg))
            .map(Arc::as_ref)
            .collect();
        match (found.is_empty(), kid.is_some(), named) {
            (false, _, _) => Ok(found),
            (true, true, false) => Err(InvalidToken::UnknownKey),
            (true, _, _) => Err(InvalidToken::AlgorithmNotAllowed),
        }
    }
}

impl KeySet {
    /// Whether any key verifies HMAC algorithms (only ever true for configured secrets).
    pub(crate) fn allows_hmac(&self) -> bool {
        self.keys.iter().any(|k| k.algorithms.iter().any(|a| HMAC_ALGS.contains(a)))
    }
}
