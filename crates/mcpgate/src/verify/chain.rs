//! `VerifierChain`: several verifiers tried in order (e.g. our own JWTs, then an external
//! IdP's); the first that accepts the token wins.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{InvalidToken, TokenVerifier, VerifyError};
use crate::Principal;

/// Tries each verifier in turn.
#[derive(Default)]
pub struct VerifierChain {
    verifiers: Vec<Arc<dyn TokenVerifier>>,
}

impl std::fmt::Debug for VerifierChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierChain").field("len", &self.verifiers.len()).finish()
    }
}

impl VerifierChain {
    /// An empty chain (accepts nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a verifier.
    #[must_use]
    pub fn with(mut self, verifier: impl TokenVerifier) -> Self {
        self.verifiers.push(Arc::new(verifier));
        self
    }
}

#[async_trait]
impl TokenVerifier for VerifierChain {
    /// The first acceptance wins. When none accepts: unavailable if any verifier could not
    /// decide (the token may be good), else the most telling refusal — a specific reason
    /// (expired, wrong audience) over "malformed" or "not recognised" from verifiers the token
    /// was never meant for.
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let mut refusal = InvalidToken::Unknown;
        let mut unavailable = None;
        for verifier in &self.verifiers {
            match verifier.verify(token).await {
                Ok(principal) => return Ok(principal),
                Err(VerifyError::Unavailable(why)) => unavailable = Some(why),
                Err(VerifyError::Invalid(reason)) => {
                    if matches!(refusal, InvalidToken::Unknown | InvalidToken::Malformed) {
                        refusal = reason;
                    }
                }
            }
        }
        Err(unavailable.map_or(VerifyError::Invalid(refusal), VerifyError::Unavailable))
    }

    fn max_cache_ttl(&self) -> Option<Duration> {
        self.verifiers.iter().filter_map(|v| v.max_cache_ttl()).min()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::verify::FixedVerifier;

    struct Refuses(VerifyError);

    #[async_trait]
    impl TokenVerifier for Refuses {
        async fn verify(&self, _: &str) -> Result<Principal, VerifyError> {
            Err(self.0.clone())
        }
        fn max_cache_ttl(&self) -> Option<Duration> {
            Some(Duration::from_secs(7))
        }
    }

    #[tokio::test]
    async fn first_acceptance_wins_and_refusals_are_ranked() {
        let fixed = FixedVerifier::new().with_token(&SecretString::from("t"), Principal::new("bob"));
        let chain = VerifierChain::new().with(Refuses(InvalidToken::Malformed.into())).with(fixed);
        assert_eq!(chain.verify("t").await.expect("accepted").subject(), "bob");
        assert_eq!(chain.max_cache_ttl(), Some(Duration::from_secs(7)));

        let chain = VerifierChain::new()
            .with(Refuses(InvalidToken::Malformed.into()))
            .with(Refuses(InvalidToken::Expired.into()))
            .with(Refuses(InvalidToken::Unknown.into()));
        assert_eq!(chain.verify("t").await, Err(VerifyError::Invalid(InvalidToken::Expired)));

        let chain = VerifierChain::new()
            .with(Refuses(VerifyError::Unavailable("down".into())))
            .with(Refuses(InvalidToken::Expired.into()));
        assert_eq!(chain.verify("t").await, Err(VerifyError::Unavailable("down".into())));
    }
}
