//! `IntrospectionVerifier`: opaque tokens checked at the authorization server's RFC 7662
//! introspection endpoint (A9). Results are meant to be cached by [`super::CachedVerifier`],
//! which keys them by digest, bounds them by the token's `exp` and by [`max_cache_ttl`]
//! (the AS may revoke at any time), and never caches errors or inactive answers.
//!
//! [`max_cache_ttl`]: TokenVerifier::max_cache_ttl

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{ClaimRules, InvalidToken, ScopeClaim, TokenVerifier, VerifyError};
use crate::Principal;
use crate::http_client::{OutboundTimeouts, outbound_client, send_bounded};

const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How mcpgate authenticates to the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Verifies opaque tokens by asking the authorization server.
pub struct IntrospectionVerifier {
    endpoint: String,
    client_id: String,
    client_secret: SecretString,
    auth: ClientAuthMethod,
    rules: ClaimRules,
    cache_ttl: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Builds an [`IntrospectionVerifier`].
pub struct IntrospectionVerifierBuilder {
    verifier: IntrospectionVerifier,
    timeouts: OutboundTimeouts,
}

impl std::fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder").finish_non_exhaustive()
    }
}

impl IntrospectionVerifierBuilder {
    /// How to authenticate to the endpoint (default HTTP Basic).
    #[must_use]
    pub fn auth_method(mut self, auth: ClientAuthMethod) -> Self {
        self.verifier.auth = auth;
        self
    }

    /// Adds an accepted issuer; when any is set, `iss` must be present and one of them.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.verifier.rules.issuers.push(issuer.into());
        self
    }

    /// Adds an accepted audience; when any is set, `aud` must name one of them.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.verifier.rules.audiences.push(audience.into());
        self
    }

    /// Whether the answer must carry `exp` (default no: RFC 7662 makes it optional).
    #[must_use]
    pub fn require_expiry(mut self, required: bool) -> Self {
        self.verifier.rules.require_expiry = required;
        self
    }

    /// Where scopes are read from (default `scope`).
    #[must_use]
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.verifier.rules.scope_claim = claim;
        self
    }

    /// Longest time an answer may be reused (default 60 s; never past the token's `exp`).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.verifier.cache_ttl = ttl;
        self
    }

    /// Timeouts of the introspection call.
    #[must_use]
    pub fn timeouts(mut self, timeouts: OutboundTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Builds the verifier.
    pub fn build(mut self) -> IntrospectionVerifier {
        self.verifier.http = outbound_client(self.timeouts);
        self.verifier
    }
}

impl IntrospectionVerifier {
    /// Starts a builder for the endpoint at `endpoint`, authenticating as `client_id`.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> IntrospectionVerifierBuilder {
        let rules = ClaimRules { require_expiry: false, ..ClaimRules::default() };
        IntrospectionVerifierBuilder {
            verifier: IntrospectionVerifier {
                endpoint: endpoint.into(),
                client_id: client_id.into(),
                client_secret,
                auth: ClientAuthMethod::default(),
                rules,
                cache_ttl: Duration::from_secs(60),
                http: reqwest::Client::new(),
            },
            timeouts: OutboundTimeouts::default(),
        }
    }

    fn request(&self, token: &str) -> reqwest::RequestBuilder {
        let mut form = vec![("token", token), ("token_type_hint", "access_token")];
        let request = self.http.post(&self.endpoint).header(http::header::ACCEPT, "application/json");
        match self.auth {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
                let id = form_urlencode(&self.client_id);
                let secret = form_urlencode(self.client_secret.expose_secret());
                request.basic_auth(id, Some(secret)).form(&form)
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", self.client_secret.expose_secret()));
                request.form(&form)
            }
        }
    }
}

fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[async_trait]
impl TokenVerifier for IntrospectionVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        if token.is_empty() || token.len() > 16 * 1024 {
            return Err(InvalidToken::Malformed.into());
        }
        let response = send_bounded(self.request(token), MAX_RESPONSE_BYTES).await.map_err(|e| {
            tracing::warn!(endpoint = %self.endpoint, reason = %e, "introspection failed");
            VerifyError::Unavailable("introspection endpoint unreachable".into())
        })?;
        if !response.status.is_success() {
            tracing::warn!(endpoint = %self.endpoint, status = %response.status, "introspection refused");
            return Err(VerifyError::Unavailable(format!("introspection answered {}", response.status)));
        }
        let mut claims: Map<String, Value> = serde_json::from_slice(&response.body)
            .map_err(|_| VerifyError::Unavailable("introspection answer is not a JSON object".into()))?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(InvalidToken::Inactive.into());
        }
        // RFC 7662 makes `sub` optional; `username` is the human-readable fallback.
        if !claims.contains_key("sub")
            && let Some(username) = claims.get("username").cloned()
        {
            claims.insert("sub".into(), username);
        }
        Ok(self.rules.principal(claims, self.rules.clock.unix_now())?)
    }

    fn max_cache_ttl(&self) -> Option<Duration> {
        Some(self.cache_ttl)
    }
}
