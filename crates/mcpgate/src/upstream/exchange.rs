//! Token exchange towards a downstream API: the user's provider access token traded at the
//! provider for a token made for that API — RFC 8693 token exchange (Keycloak, Okta, …), or
//! Microsoft Entra's on-behalf-of flow, which is its own grant (a jwt-bearer request with
//! `requested_token_use=on_behalf_of`). The MCP server then calls the API with a token whose
//! audience is that API, not with the user's token for the gateway's own client.

use secrecy::{ExposeSecret, SecretString};

use super::{Upstream, UpstreamError, UpstreamTokens};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Which grant the provider's exchange takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExchangeFlow {
    /// RFC 8693: `grant_type=…:token-exchange`, the user's token as `subject_token`.
    #[default]
    TokenExchange,
    /// Microsoft Entra's on-behalf-of flow: `grant_type=…:jwt-bearer`, the user's token as
    /// `assertion`, `requested_token_use=on_behalf_of`; the API named by `scope`
    /// (`api://…/.default`).
    OnBehalfOf,
}

/// What to exchange the user's provider token for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExchange {
    /// The grant the provider takes.
    pub flow: ExchangeFlow,
    /// The downstream API, as the provider names it (RFC 8693 `audience`).
    pub audience: Option<String>,
    /// The scopes wanted for it (space separated).
    pub scope: Option<String>,
    /// Where to exchange; `None` for the provider's token endpoint.
    pub endpoint: Option<String>,
}

impl Upstream {
    /// Exchanges `subject_token`, a user's access token from this provider, for a token for
    /// the downstream API `exchange` names, authenticating as our client.
    pub async fn exchange_token(
        &self,
        exchange: &TokenExchange,
        subject_token: &SecretString,
    ) -> Result<UpstreamTokens, UpstreamError> {
        let subject = subject_token.expose_secret();
        let mut form: Vec<(&str, &str)> = match exchange.flow {
            ExchangeFlow::TokenExchange => vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
            ],
            ExchangeFlow::OnBehalfOf => {
                vec![
                    ("grant_type", JWT_BEARER),
                    ("assertion", subject),
                    ("requested_token_use", "on_behalf_of"),
                ]
            }
        };
        if let Some(audience) = &exchange.audience {
            form.push(("audience", audience));
        }
        if let Some(scope) = &exchange.scope {
            form.push(("scope", scope));
        }
        let endpoint = exchange.endpoint.as_deref().unwrap_or(&self.config.token_endpoint);
        let mut tokens = self.token_call_at(endpoint, &form).await?;
        // A downstream token is used as it is: it is never refreshed by us, nor is its id_token read.
        tokens.refresh_token = None;
        tokens.id_token = None;
        Ok(tokens)
    }
}
