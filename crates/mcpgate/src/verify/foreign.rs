//! [`ForeignTokens`]: another issuer's tokens accepted beside mcpgate's own, stripped of the
//! claims only mcpgate's tokens may carry ([`RESERVED_CLAIMS`]). An outside token saying
//! `client_kind: machine` or naming a `gid` must not pass for a machine client, nor reach the
//! provider tokens or revocation of one of our grants.

use std::time::Duration;

use async_trait::async_trait;

use super::{TokenVerifier, VerifyError};
use crate::{Principal, RESERVED_CLAIMS};

/// Wraps the verifier of another issuer's tokens.
#[derive(Debug)]
pub struct ForeignTokens<V>(pub V);

#[async_trait]
impl<V: TokenVerifier> TokenVerifier for ForeignTokens<V> {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let principal = self.0.verify(token).await?;
        Ok(RESERVED_CLAIMS.iter().fold(principal, |p, claim| p.without_claim(claim)))
    }

    fn max_cache_ttl(&self) -> Option<Duration> {
        self.0.max_cache_ttl()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;
    use crate::ClientKind;
    use crate::verify::FixedVerifier;

    #[tokio::test]
    async fn an_outside_token_cannot_claim_mcpgate_s_own_claims() {
        let claims =
            json!({"client_kind": "machine", "gid": "someone-elses-grant", "email": "a@corp.example"});
        let principal = Principal::new("alice").with_claims(claims.as_object().unwrap().clone());
        let token = SecretString::from("t");
        let foreign = ForeignTokens(FixedVerifier::new().with_token(&token, principal));
        let seen = foreign.verify("t").await.unwrap();
        assert_eq!(seen.client_kind(), ClientKind::User);
        assert_eq!(seen.claim("gid"), None);
        assert_eq!(seen.email(), Some("a@corp.example"), "other claims are kept");
    }
}
