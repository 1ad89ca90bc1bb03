//! The user's tokens the gateway hands the MCP server with a call: the provider token
//! (`forward_provider_token`) and the downstream token (`[upstream.token_exchange]`), as
//! headers to an HTTP upstream or in a stdio child's environment. One home for the rule shared
//! by both: a caller without a sign-in grant here (a machine client, an API key, another
//! issuer's token) gets none, and nothing fails; a user whose token cannot be had fails the call.

use mcpgate::Principal;
use mcpgate::authz::{AuthServer, ProviderTokenError};
use secrecy::SecretString;

/// Which of the user's tokens go to the MCP server, from which authorization server.
#[derive(Clone)]
pub struct UserTokens {
    server: AuthServer,
    provider: bool,
    downstream: bool,
}

/// One token handed over: its header and its environment variable.
pub struct HandedToken {
    /// The header to an HTTP upstream.
    pub header: &'static str,
    /// The variable of a stdio child.
    pub env: &'static str,
    /// The token.
    pub value: SecretString,
}

impl UserTokens {
    /// The tokens of `server`'s grants to hand over: the provider token, the downstream token;
    /// `None` when neither is wanted.
    pub fn new(server: Option<AuthServer>, provider: bool, downstream: bool) -> Option<Self> {
        server.filter(|_| provider || downstream).map(|server| Self { server, provider, downstream })
    }

    /// The caller's tokens: none for a caller without a sign-in grant here.
    pub async fn for_caller(&self, principal: &Principal) -> Result<Vec<HandedToken>, ProviderTokenError> {
        let mut handed = Vec::new();
        if self.provider {
            let token = self.server.provider_token(principal).await;
            handed.extend(hand(token, "x-mcpgate-provider-token", "MCPGATE_PROVIDER_TOKEN")?);
        }
        if self.downstream {
            let token = self.server.downstream_token(principal).await;
            handed.extend(hand(token, "x-mcpgate-downstream-token", "MCPGATE_DOWNSTREAM_TOKEN")?);
        }
        Ok(handed)
    }
}

/// A token to hand over under `header` and `env`; none for a caller without a grant.
fn hand(
    token: Result<SecretString, ProviderTokenError>,
    header: &'static str,
    env: &'static str,
) -> Result<Option<HandedToken>, ProviderTokenError> {
    match token {
        Ok(value) => Ok(Some(HandedToken { header, env, value })),
        Err(ProviderTokenError::NoGrant) => Ok(None),
        Err(e) => Err(e),
    }
}
