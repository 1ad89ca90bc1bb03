//! `private_key_jwt` (D2, RFC 7523 §2.2 and §3, OIDC Core §9): a configured client proves who it
//! is with a short-lived JWT signed by its private key — `iss` and `sub` its client id, `aud`
//! our issuer or token endpoint, `exp` within an hour, a `jti` accepted once across
//! instances — verified against the public keys the operator configured for it.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use super::SettingsError;
use super::client::{ClientKeys, ConfiguredClient};
use super::spent_assertions::{SpentAssertions, Unspendable};
use crate::clock::Clock;
use crate::store::StoreError;
use crate::verify::{JwtVerifier, KeySet, TokenVerifier, VerifyError, unverified_issuer};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a client assertion was refused. Each is `invalid_client` (RFC 7523 §3.2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AssertionError {
    /// The client has no keys configured.
    #[error("the client has no keys for private_key_jwt")]
    NoKeys,
    /// The signature, issuer, audience or time checks failed.
    #[error("client assertion refused: {0}")]
    Invalid(VerifyError),
    /// `sub` is not the client id.
    #[error("client assertion refused: sub must be the client id")]
    WrongSubject,
    /// No `jti`, too long a life, or used before.
    #[error("client assertion refused: {0}")]
    Unspendable(Unspendable),
    /// The store failed recording it.
    #[error(transparent)]
    Store(StoreError),
}

impl From<Unspendable> for AssertionError {
    fn from(e: Unspendable) -> Self {
        match e {
            Unspendable::Store(e) => Self::Store(e),
            e => Self::Unspendable(e),
        }
    }
}

/// The configured clients' keys, and the assertion ids already used.
pub(crate) struct ClientAssertions {
    verifiers: HashMap<String, JwtVerifier>,
    spent: SpentAssertions,
}

impl ClientAssertions {
    /// A verifier per configured client with keys: asymmetric algorithms only (a JWKS never
    /// yields an HMAC key), issuer the client id, audience our issuer or token endpoint.
    pub(crate) fn new(
        clients: &[ConfiguredClient],
        issuer: &str,
        spent: SpentAssertions,
        clock: &Clock,
    ) -> Result<Self, SettingsError> {
        let mut verifiers = HashMap::new();
        for client in clients {
            let Some(keys) = &client.keys else { continue };
            let bad =
                |reason: String| SettingsError::BadClient { client_id: client.client_id.clone(), reason };
            let builder = JwtVerifier::builder()
                .issuer(&client.client_id)
                .audience(issuer)
                .audience(format!("{issuer}/token"))
                .clock(clock.clone());
            let builder = match keys {
                ClientKeys::Jwks(document) => {
                    let set = KeySet::from_jwks_json(document.to_string().as_bytes())
                        .map_err(|e| bad(format!("jwks: {e}")))?;
                    if set.is_empty() {
                        return Err(bad("jwks holds no usable signing key".into()));
                    }
                    builder.key_set(set)
                }
                ClientKeys::JwksUri(url) => {
                    if !crate::http_client::is_secure_url(url) {
                        return Err(bad(format!("jwks_uri {url:?} must be https (http on loopback only)")));
                    }
                    builder.jwks_uri(url)
                }
            };
            let verifier = builder.build().map_err(|e| bad(e.to_string()))?;
            verifiers.insert(client.client_id.clone(), verifier);
        }
        Ok(Self { verifiers, spent })
    }

    /// Whether any configured client authenticates by its keys.
    pub(crate) fn any(&self) -> bool {
        !self.verifiers.is_empty()
    }

    /// The client an assertion says it comes from (`iss`), read without verifying anything:
    /// only to choose whose keys verify it, for a request that names no `client_id`.
    pub(crate) fn claimed_client(assertion: &SecretString) -> Option<String> {
        unverified_issuer(assertion.expose_secret())
    }

    /// Verifies `assertion` as `client_id`'s, and spends its `jti`.
    pub(crate) async fn verify(
        &self,
        client_id: &str,
        assertion: &SecretString,
    ) -> Result<(), AssertionError> {
        let verifier = self.verifiers.get(client_id).ok_or(AssertionError::NoKeys)?;
        let claims = verifier.verify(assertion.expose_secret()).await.map_err(AssertionError::Invalid)?;
        if claims.subject() != client_id {
            return Err(AssertionError::WrongSubject);
        }
        self.spent.spend(client_id, &claims, verifier.rules().leeway).await?;
        Ok(())
    }
}
