//! `FixedVerifier`: a fixed table of tokens for development and tests (FastMCP's
//! `StaticTokenVerifier`). Tokens are held only as digests, so lookups never compare secrets
//! byte by byte.

use std::collections::HashMap;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{InvalidToken, TokenDigest, TokenVerifier, VerifyError};
use crate::Principal;

/// Accepts exactly the tokens it was given, each mapped to its principal.
#[derive(Debug, Default)]
pub struct FixedVerifier {
    tokens: HashMap<TokenDigest, Principal>,
}

impl FixedVerifier {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token`, which will verify as `principal`.
    #[must_use]
    pub fn with_token(mut self, token: &SecretString, principal: Principal) -> Self {
        self.tokens.insert(TokenDigest::of(token.expose_secret()), principal);
        self
    }
}

#[async_trait]
impl TokenVerifier for FixedVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.tokens.get(&TokenDigest::of(token)).cloned().ok_or(InvalidToken::Unknown.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn knows_only_its_tokens() {
        let v = FixedVerifier::new().with_token(&SecretString::from("dev-token"), Principal::new("dev"));
        assert_eq!(v.verify("dev-token").await.expect("known").subject(), "dev");
        assert_eq!(v.verify("dev-token2").await, Err(VerifyError::Invalid(InvalidToken::Unknown)));
        assert_eq!(v.verify("").await, Err(VerifyError::Invalid(InvalidToken::Unknown)));
    }
}
