//! Token verification: turning a bearer token into a [`Principal`], or a reason it is refused.
//!
//! [`TokenVerifier`] is the one interface; [`JwtVerifier`], [`IntrospectionVerifier`],
//! [`ApiKeyVerifier`], [`FixedVerifier`], [`TokenRouter`] (each token to the verifier of its
//! issuer) and [`VerifierChain`] implement it, and [`CachedVerifier`] wraps any of them so
//! that a token seen before costs a map lookup.

mod api_keys;
mod cache;
mod chain;
mod claims;
mod fixed;
mod foreign;
mod introspect;
mod jwks;
mod jwt;
mod keys;
mod router;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

pub use api_keys::{API_KEY_PREFIX, ApiKey, ApiKeyDigest, ApiKeyError, ApiKeyVerifier, new_api_key};
pub use cache::{CachedVerifier, NoRevalidation, Revalidate, TokenDigest};
pub use chain::VerifierChain;
pub use claims::{ClaimRules, ScopeClaim};
pub use fixed::FixedVerifier;
pub use foreign::ForeignTokens;
pub use introspect::{ClientAuthMethod, IntrospectionVerifier, IntrospectionVerifierBuilder};
pub use jwks::{JwksCache, JwksCacheConfig, JwksFetchError};
pub use jwt::{JwtConfigError, JwtVerifier, JwtVerifierBuilder};
#[cfg(feature = "proxy")]
pub(crate) use keys::ASYMMETRIC_ALGS;
pub use keys::{KeyError, KeySet, VerificationKey};
pub use router::TokenRouter;
#[cfg(feature = "proxy")]
pub(crate) use router::unverified_issuer;

use crate::Principal;

/// Checks bearer tokens.
///
/// Implementations must not panic on any input, must answer [`VerifyError::Invalid`] for a
/// token that is not acceptable, and [`VerifyError::Unavailable`] when they could not decide
/// (an identity provider that cannot be reached): the two lead to different HTTP answers.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token` and returns the identity it carries.
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError>;

    /// The longest a successful result may be reused without asking this verifier again, beyond
    /// the token's own expiry. `None`: until the token expires. Introspection answers with its
    /// configured bound, because the authorization server may revoke a token at any time; a
    /// [`CachedVerifier`] with zero, because it is the cache (and may revalidate each use).
    fn max_cache_ttl(&self) -> Option<Duration> {
        None
    }
}

// Written out rather than with `#[async_trait]`, which would box the inner verifier's (boxed)
// future once more on every request.
impl<V: TokenVerifier + ?Sized> TokenVerifier for std::sync::Arc<V> {
    fn verify<'life0, 'life1, 'async_trait>(
        &'life0 self,
        token: &'life1 str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, VerifyError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (**self).verify(token)
    }

    fn max_cache_ttl(&self) -> Option<Duration> {
        (**self).max_cache_ttl()
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not acceptable; the reason is safe to show to the client
    /// (it becomes the `error_description` of an `invalid_token` challenge).
    #[error("invalid token: {0}")]
    Invalid(InvalidToken),
    /// The verifier could not reach what it needs (JWKS, introspection endpoint) and has no
    /// cached answer; the client should retry later rather than re-authenticate.
    #[error("token verification unavailable: {0}")]
    Unavailable(String),
}

/// The reasons a token is refused, each with a short description for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// Not a well-formed token of the expected kind.
    #[error("malformed token")]
    Malformed,
    /// The algorithm in the header is not allowed for the key (or at all).
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No key with the token's `kid` is known.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `exp` is missing.
    #[error("token has no expiry")]
    MissingExpiry,
    /// `nbf` (or `iat`) is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not one of the accepted issuers.
    #[error("issuer not accepted")]
    WrongIssuer,
    /// `aud` does not name this resource.
    #[error("audience not accepted")]
    WrongAudience,
    /// The header's `typ` is not the one required (a JWT made for another purpose).
    #[error("token type not accepted")]
    WrongType,
    /// No subject could be found.
    #[error("token has no subject")]
    MissingSubject,
    /// The authorization server says the token is not active.
    #[error("token not active")]
    Inactive,
    /// No verifier in a chain knows this token.
    #[error("token not recognised")]
    Unknown,
    /// The grant behind the token was revoked.
    #[error("token revoked")]
    Revoked,
}

impl From<InvalidToken> for VerifyError {
    fn from(reason: InvalidToken) -> Self {
        VerifyError::Invalid(reason)
    }
}
