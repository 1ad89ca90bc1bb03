//! [`TokenRouter`] (D10): each token goes to the one verifier meant for it. A prefix picks it (API
//! keys), or the issuer a JWT names, or the verifier of opaque tokens. A [`VerifierChain`]
//! instead shows every token to every verifier. That sends one issuer's tokens to another's
//! introspection endpoint, and costs a failed verification per verifier passed.
//!
//! The issuer is read from the JWT's payload before anything is verified, only to choose the
//! verifier; that verifier then checks the signature and the issuer like any other.
//!
//! [`VerifierChain`]: super::VerifierChain

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{InvalidToken, TokenVerifier, VerifyError};
use crate::Principal;

/// Longest token whose issuer is read; a longer one is no JWT we accept.
const MAX_JWT_BYTES: usize = 16 * 1024;

/// Routes tokens to verifiers by prefix, then by issuer.
#[derive(Default)]
pub struct TokenRouter {
    prefixed: Vec<(String, Arc<dyn TokenVerifier>)>,
    issuers: HashMap<String, Arc<dyn TokenVerifier>>,
    opaque: Option<Arc<dyn TokenVerifier>>,
}

impl std::fmt::Debug for TokenRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRouter")
            .field("prefixes", &self.prefixed.iter().map(|(p, _)| p).collect::<Vec<_>>())
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .field("opaque", &self.opaque.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

/// The `iss` of a compact JWS, unverified; `None` for anything else. Only to choose which
/// verifier checks it.
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_JWT_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<IssuerOnly>(&payload).ok()?.iss
}

impl TokenRouter {
    /// A router with no routes (accepts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens beginning with `prefix` go to `verifier` (checked first, in the order given).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.prefixed.push((prefix.into(), verifier));
        self
    }

    /// JWTs whose `iss` is `issuer` go to `verifier`.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.issuers.insert(issuer.into(), verifier);
        self
    }

    /// Tokens that are not JWTs naming an issuer go to `verifier` (e.g. introspection).
    #[must_use]
    pub fn opaque(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.opaque = Some(verifier);
        self
    }

    /// Whether opaque tokens have a verifier.
    pub fn has_opaque(&self) -> bool {
        self.opaque.is_some()
    }

    /// Whether `issuer`'s tokens have a verifier.
    pub fn has_issuer(&self, issuer: &str) -> bool {
        self.issuers.contains_key(issuer)
    }

    fn route(&self, token: &str) -> Result<&Arc<dyn TokenVerifier>, InvalidToken> {
        if let Some((_, verifier)) =
            self.prefixed.iter().find(|(prefix, _)| token.starts_with(prefix.as_str()))
        {
            return Ok(verifier);
        }
        // One issuer and nothing else: it decides, and no payload is read for the choice.
        if self.opaque.is_none() && self.issuers.len() == 1 {
            return self.issuers.values().next().ok_or(InvalidToken::Unknown);
        }
        match unverified_issuer(token) {
            Some(issuer) => self.issuers.get(&issuer).ok_or(InvalidToken::WrongIssuer),
            None => self.opaque.as_ref().ok_or(InvalidToken::Unknown),
        }
    }
}

#[async_trait]
impl TokenVerifier for TokenRouter {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.route(token)?.verify(token).await
    }

    /// The shortest of the routes': a cache around the router keeps no answer longer than the
    /// verifier that gave it would.
    fn max_cache_ttl(&self) -> Option<Duration> {
        let routes = self.prefixed.iter().map(|(_, v)| v).chain(self.issuers.values()).chain(&self.opaque);
        routes.filter_map(|v| v.max_cache_ttl()).min()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;
    use crate::verify::FixedVerifier;

    /// A verifier accepting one token as `subject`.
    fn accepting(token: &str, subject: &str) -> Arc<dyn TokenVerifier> {
        Arc::new(
            FixedVerifier::new().with_token(&SecretString::from(token.to_owned()), Principal::new(subject)),
        )
    }

    fn jwt(claims: serde_json::Value) -> String {
        format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[tokio::test]
    async fn each_token_reaches_only_the_verifier_meant_for_it() {
        let ours = jwt(json!({"iss": "https://us"}));
        let theirs = jwt(json!({"iss": "https://them"}));
        let router = TokenRouter::new()
            .prefix("mcpgate_", accepting("mcpgate_k", "api_key:ci"))
            .issuer("https://us", accepting(&ours, "alice"))
            // It would accept our token too: it must never be shown it.
            .issuer("https://them", accepting(&theirs, "bob"))
            .opaque(accepting("opaque-1", "carol"));
        assert_eq!(router.verify("mcpgate_k").await.unwrap().subject(), "api_key:ci");
        assert_eq!(router.verify(&ours).await.unwrap().subject(), "alice");
        assert_eq!(router.verify(&theirs).await.unwrap().subject(), "bob");
        assert_eq!(router.verify("opaque-1").await.unwrap().subject(), "carol");
        let unlisted = jwt(json!({"iss": "https://elsewhere"}));
        assert_eq!(router.verify(&unlisted).await, Err(InvalidToken::WrongIssuer.into()));
        // A prefix claims its tokens: an unknown key is not tried elsewhere.
        assert!(router.verify("mcpgate_other").await.is_err());
    }

    #[tokio::test]
    async fn without_opaque_tokens_a_non_jwt_is_unknown_and_a_lone_issuer_decides() {
        let ours = jwt(json!({"iss": "https://us"}));
        let two = TokenRouter::new()
            .issuer("https://us", accepting(&ours, "alice"))
            .issuer("https://them", accepting("x", "bob"));
        assert_eq!(two.verify("opaque").await, Err(InvalidToken::Unknown.into()));
        for odd in ["", "a.b", "a.b.c.d", "..", "a.!!.c", &format!("{}.x", "a".repeat(MAX_JWT_BYTES))] {
            assert!(two.verify(odd).await.is_err(), "{odd:?}");
        }
        let one = TokenRouter::new().issuer("https://us", accepting("opaque-ours", "alice"));
        assert_eq!(one.verify("opaque-ours").await.unwrap().subject(), "alice");
    }
}
