//! Verification keys and key sets: each key knows which algorithms it may verify, so that an
//! algorithm is always tied to the key's family (no `none`, no HMAC with a public key).

use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents, VerificationAlgorithm};
use aws_lc_rs::{hmac, signature::RsaParameters};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;

use super::InvalidToken;

/// Errors building a key from configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key material could not be parsed.
    #[error("cannot parse key: {0}")]
    Parse(String),
    /// The JWK names an algorithm that does not fit its key type, or none is supported.
    #[error("unsupported key: {0}")]
    Unsupported(&'static str),
}

/// Key material, parsed once: each allowed algorithm has its ready-to-use verifier, so that
/// verifying a signature never parses a key again (for RSA that parse, with its Montgomery
/// set-up, costs about as much as the verification itself).
enum Material {
    Public(Vec<(Algorithm, ParsedPublicKey)>),
    Hmac(Vec<(Algorithm, hmac::Key)>),
}

/// One key able to verify signatures under a fixed set of algorithms.
pub struct VerificationKey {
    kid: Option<String>,
    material: Material,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself stays out of the output: an HMAC key is a secret.
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The RSA algorithms: the first six of [`ASYMMETRIC_ALGS`].
const RSA_ALGS: &[Algorithm] = ASYMMETRIC_ALGS.split_at(6).0;
pub(crate) const HMAC_ALGS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
/// Every public-key algorithm a [`VerificationKey`] can verify.
pub(crate) const ASYMMETRIC_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn rsa_params(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// The verifier for a non-RSA public-key algorithm (JWS ECDSA signatures are fixed-size r‖s).
fn public_params(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        other => return rsa_params(other).map(|p| p as &'static dyn VerificationAlgorithm),
    })
}

fn hmac_params(alg: Algorithm) -> Option<hmac::Algorithm> {
    Some(match alg {
        Algorithm::HS256 => hmac::HMAC_SHA256,
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => return None,
    })
}

fn rejected(e: aws_lc_rs::error::KeyRejected) -> KeyError {
    KeyError::Parse(e.to_string())
}

/// The DER inside the first PEM block of `pem`.
fn pem_der(pem: &[u8]) -> Result<Vec<u8>, KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::Parse("PEM is not text".into()))?;
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .collect();
    if body.is_empty() {
        return Err(KeyError::Parse("no PEM block".into()));
    }
    STANDARD.decode(body).map_err(|e| KeyError::Parse(format!("PEM body: {e}")))
}

fn b64url(value: &str, what: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD.decode(value).map_err(|_| KeyError::Parse(format!("JWK {what} is not base64url")))
}

impl VerificationKey {
    /// A public key (SubjectPublicKeyInfo or PKCS#1 DER) for each of `algorithms`.
    fn public_der(kid: Option<String>, der: &[u8], algorithms: &[Algorithm]) -> Result<Self, KeyError> {
        let parsed = algorithms
            .iter()
            .map(|&alg| {
                let params = public_params(alg).ok_or(KeyError::Unsupported("algorithm"))?;
                Ok((alg, ParsedPublicKey::new(params, der).map_err(rejected)?))
            })
            .collect::<Result<_, KeyError>>()?;
        Ok(Self { kid, material: Material::Public(parsed) })
    }

    /// An RSA public key in PEM (PKCS#1 or SPKI); verifies RS256/384/512 and PS256/384/512.
    pub fn rsa_pem(kid: Option<String>, pem: &[u8]) -> Result<Self, KeyError> {
        Self::public_der(kid, &pem_der(pem)?, RSA_ALGS)
    }

    /// An EC public key in PEM, for `alg` (ES256 for P-256, ES384 for P-384).
    pub fn ec_pem(kid: Option<String>, pem: &[u8], alg: Algorithm) -> Result<Self, KeyError> {
        if !matches!(alg, Algorithm::ES256 | Algorithm::ES384) {
            return Err(KeyError::Unsupported("an EC key verifies ES256 or ES384 only"));
        }
        Self::public_der(kid, &pem_der(pem)?, &[alg])
    }

    /// An Ed25519 public key in PEM; verifies EdDSA.
    pub fn ed_pem(kid: Option<String>, pem: &[u8]) -> Result<Self, KeyError> {
        Self::public_der(kid, &pem_der(pem)?, &[Algorithm::EdDSA])
    }

    /// A shared HMAC secret; verifies HS256/384/512.
    pub fn hmac(kid: Option<String>, secret: &[u8]) -> Self {
        let keys = HMAC_ALGS
            .iter()
            .filter_map(|&alg| Some((alg, hmac::Key::new(hmac_params(alg)?, secret))))
            .collect();
        Self { kid, material: Material::Hmac(keys) }
    }

    /// A key from a JWK. Symmetric (`oct`) keys are accepted only when `allow_symmetric`:
    /// a JWKS fetched from a URL is public, so a secret key in it would be no secret.
    pub fn from_jwk(jwk: &Jwk, allow_symmetric: bool) -> Result<Self, KeyError> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err(KeyError::Unsupported("key is for encryption"));
        }
        let family: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => RSA_ALGS,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => return Err(KeyError::Unsupported("EC curve")),
            },
            AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
                EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
                _ => return Err(KeyError::Unsupported("OKP curve")),
            },
            AlgorithmParameters::OctetKey(_) if allow_symmetric => HMAC_ALGS,
            AlgorithmParameters::OctetKey(_) => {
                return Err(KeyError::Unsupported("symmetric key in a public key set"));
            }
            _ => return Err(KeyError::Unsupported("key type")),
        };
        // A JWK that names its algorithm may be used with that one only.
        let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
            None => family.to_vec(),
            Some(named) => {
                let named = key_algorithm(named).ok_or(KeyError::Unsupported("JWK alg"))?;
                if !family.contains(&named) {
                    return Err(KeyError::Unsupported("JWK alg does not fit its key type"));
                }
                vec![named]
            }
        };
        let kid = jwk.common.key_id.clone();
        let material = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let (n, e) = (b64url(&rsa.n, "n")?, b64url(&rsa.e, "e")?);
                // Refuse short keys when loading, not at each verification (JWA: ≥ 2048 bits).
                let modulus_bytes = n.iter().skip_while(|&&b| b == 0).count();
                if modulus_bytes < 256 {
                    return Err(KeyError::Unsupported("RSA key shorter than 2048 bits"));
                }
                let components = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
                let parsed = algorithms
                    .iter()
                    .filter_map(|&alg| rsa_params(alg).map(|p| (alg, p)))
                    .map(|(alg, params)| {
                        Ok((alg, components.to_parsed_public_key(params).map_err(rejected)?))
                    })
                    .collect::<Result<_, KeyError>>()?;
                Material::Public(parsed)
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                let (x, y) = (b64url(&ec.x, "x")?, b64url(&ec.y, "y")?);
                // The SEC1 uncompressed point: 0x04 ‖ x ‖ y.
                let point = [&[4u8][..], &x, &y].concat();
                return Self::public_der(kid, &point, &algorithms);
            }
            AlgorithmParameters::OctetKeyPair(okp) => {
                return Self::public_der(kid, &b64url(&okp.x, "x")?, &algorithms);
            }
            AlgorithmParameters::OctetKey(oct) => {
                let secret = b64url(&oct.value, "k")?;
                let keys = algorithms
                    .iter()
                    .filter_map(|&alg| Some((alg, hmac::Key::new(hmac_params(alg)?, &secret))))
                    .collect();
                Material::Hmac(keys)
            }
            _ => return Err(KeyError::Unsupported("key type")),
        };
        Ok(Self { kid, material })
    }

    /// The key id, when it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        let (public, hmac): (&[_], &[_]) = match &self.material {
            Material::Public(keys) => (keys, &[]),
            Material::Hmac(keys) => (&[], keys),
        };
        public.iter().map(|(a, _)| *a).chain(hmac.iter().map(|(a, _)| *a))
    }

    fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms().any(|a| a == alg)
    }

    /// Whether `signature` is this key's signature of `message` under `alg`.
    /// HMAC tags are compared in constant time by aws-lc.
    pub fn verifies(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Public(keys) => keys
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok()),
            Material::Hmac(keys) => keys
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, key)| hmac::verify(key, message, signature).is_ok()),
        }
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

    pub(super) fn push(&mut self, key: VerificationKey) {
        self.keys.push(Arc::new(key));
    }

    pub(super) fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
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
            .filter(|k| k.allows(alg))
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
        self.keys.iter().any(|k| matches!(k.material, Material::Hmac(_)))
    }
}
