//! The OAuth client towards the upstream identity provider: building its authorization URL,
//! exchanging its code, refreshing and revoking its tokens, establishing who logged in, and
//! exchanging a user's token for one made for a downstream API.
//!
//! [`Upstream`] is the one flow; a provider is configuration ([`UpstreamConfig`]) plus an
//! [`IdentitySource`] — OpenID Connect's id_token, or a user-info API — never a copy of the flow.

mod exchange;
mod oidc;
pub mod providers;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use exchange::{ExchangeFlow, TokenExchange};
pub(crate) use oidc::fetch_discovery;
pub use oidc::{OidcDiscovery, discover};

use crate::crypto::constant_time_eq;
use crate::http_client::{OutboundTimeouts, outbound_client, send_bounded};
use crate::metrics::timed_provider_request;
use crate::verify::{ClientAuthMethod, JwtVerifier, TokenVerifier, VerifyError};

const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why an upstream call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The provider refused (an OAuth error such as `invalid_grant`): terminal for this grant.
    #[error("provider refused: {error}")]
    Rejected {
        /// The OAuth error code.
        error: String,
        /// Its description, if any.
        description: Option<String>,
    },
    /// The provider could not be reached, timed out or failed (5xx): worth retrying.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something unusable (malformed JSON, an id_token that fails
    /// verification, a nonce that does not match).
    #[error("provider response unusable: {0}")]
    Invalid(String),
}

/// Tokens issued by the provider. They are sealed before they reach any store.
#[derive(Debug, Clone)]
pub struct UpstreamTokens {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when the provider issued one.
    pub refresh_token: Option<SecretString>,
    /// Expiry of the access token, seconds since the epoch.
    pub expires_at: Option<u64>,
    /// The id_token (OpenID Connect), as received.
    pub id_token: Option<SecretString>,
    /// The scope granted, when the provider says.
    pub scope: Option<String>,
    /// The rest of the token response (its tokens removed): some providers name the user here.
    pub response: Map<String, Value>,
}

/// Who logged in at the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamIdentity {
    /// The provider's stable user id.
    pub subject: String,
    /// Email, when known.
    pub email: Option<String>,
    /// Whether the provider says it verified that email (`email_verified`). Allow-lists by
    /// email or domain trust only verified addresses.
    pub email_verified: bool,
    /// Display name, when known.
    pub name: Option<String>,
    /// The user's handle at the provider (`preferred_username`, GitHub's `login`), when known.
    pub username: Option<String>,
    /// The groups or organisations the provider reports (`groups`; GitHub's organisations).
    pub groups: Vec<String>,
    /// Every claim the provider gave.
    pub claims: Map<String, Value>,
}

/// A further call to the provider's user API whose answer adds claims (GitHub's verified
/// emails and organisations), made with the user's access token after identity is
/// established.
#[derive(Clone)]
pub struct ClaimsCall {
    /// The endpoint (GET).
    pub url: String,
    /// Turns the answer into claims under the standard names (`email`, `groups`, …); they
    /// replace what the identity source said.
    pub map: fn(&Value) -> Map<String, Value>,
    /// Whether to go on without these claims when the provider refuses the call (403/404: a
    /// scope that was not granted) rather than fail the sign-in.
    pub optional: bool,
}

impl std::fmt::Debug for ClaimsCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimsCall").field("url", &self.url).field("optional", &self.optional).finish()
    }
}

/// Renames a provider's own claims to the standard ones, in place (Discord's `verified` is
/// `email_verified`).
pub type ClaimsNormalizer = fn(&mut Map<String, Value>);

/// A condition the identity's claims must meet (Google's hosted domain); the error says why
/// they do not.
pub type ClaimsCheck = std::sync::Arc<dyn Fn(&Map<String, Value>) -> Result<(), String> + Send + Sync>;

/// How identity is established after the code exchange.
pub enum IdentitySource {
    /// OpenID Connect: the id_token, verified against the provider's keys (signature, `iss`,
    /// `aud` = our client id, `exp`), and its `nonce`; then, when a user-info endpoint is given,
    /// the claims it adds (OIDC providers may keep email and name out of the id_token).
    IdToken {
        /// Verifies id_tokens.
        verifier: Box<JwtVerifier>,
        /// The user-info endpoint, if its claims are wanted.
        userinfo: Option<String>,
    },
    /// A user-info endpoint called with the access token (plain OAuth 2.0 providers).
    UserInfo {
        /// The endpoint.
        url: String,
        /// The member holding the user id (`sub`, `id`, …).
        subject_claim: String,
    },
    /// The token response itself, for providers that name the user there (Slack's
    /// `authed_user.id`, Dropbox's `account_id`); its members become the claims.
    TokenResponse {
        /// A JSON pointer (RFC 6901) to the user id, e.g. `/authed_user/id`.
        subject_pointer: String,
    },
}

// Its checks are closures: the variant is what there is to show.
impl std::fmt::Debug for IdentitySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::IdToken { .. } => "IdToken",
            Self::UserInfo { .. } => "UserInfo",
            Self::TokenResponse { .. } => "TokenResponse",
        };
        f.debug_struct(name).finish_non_exhaustive()
    }
}

/// Maps a scope a client was granted to the scope asked of the provider (`None` drops it).
pub type ScopeMapper = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A provider's endpoints and our registration there.
pub struct UpstreamConfig {
    /// Where the user is sent to log in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// Where tokens are revoked, when the provider supports it.
    pub revocation_endpoint: Option<String>,
    /// Our client id there.
    pub client_id: String,
    /// Our client secret there.
    pub client_secret: SecretString,
    /// How we authenticate at its token endpoint.
    pub client_auth: ClientAuthMethod,
    /// Scopes we ask for.
    pub scopes: Vec<String>,
    /// Extra authorization parameters (`access_type=offline`, `prompt=consent`, `audience`…).
    pub extra_authorize_params: Vec<(String, String)>,
    /// How identity is established.
    pub identity: IdentitySource,
    /// Timeouts of every call.
    pub timeouts: OutboundTimeouts,
}

// Never the client secret.
impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("token_endpoint", &self.token_endpoint)
            .finish_non_exhaustive()
    }
}

/// The parameters of one authorization request towards the provider.
#[derive(Debug)]
pub struct AuthorizeRequest<'a> {
    /// Our callback URL registered at the provider.
    pub redirect_uri: &'a str,
    /// The transaction id, single use.
    pub state: &'a str,
    /// Our own PKCE challenge (never the client's).
    pub code_challenge: &'a str,
    /// The OIDC nonce.
    pub nonce: &'a str,
    /// The scopes the client was granted (asked of the provider only through a scope mapper).
    pub scopes: &'a [String],
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<Value>,
    id_token: Option<String>,
    scope: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// Every other member (where some providers name the user).
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The OAuth client towards one provider.
pub struct Upstream {
    config: UpstreamConfig,
    http: reqwest::Client,
    scope_mapper: Option<ScopeMapper>,
    claims_calls: Vec<ClaimsCall>,
    normalizer: Option<ClaimsNormalizer>,
    claims_checks: Vec<ClaimsCheck>,
    identity_at_refresh: bool,
    token_deletion: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authorization_endpoint", &self.config.authorization_endpoint)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// Removes every member that holds a token, at any depth.
fn strip_tokens(members: &mut Map<String, Value>) {
    members.retain(|name, _| !matches!(name.as_str(), "access_token" | "refresh_token" | "id_token"));
    for value in members.values_mut() {
        if let Value::Object(inner) = value {
            strip_tokens(inner);
        }
    }
}

fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Upstream {
    /// A client for the provider described by `config`.
    pub fn new(config: UpstreamConfig) -> Self {
        let http = outbound_client(config.timeouts);
        Self {
            config,
            http,
            scope_mapper: None,
            claims_calls: Vec::new(),
            normalizer: None,
            claims_checks: Vec::new(),
            identity_at_refresh: false,
            token_deletion: None,
        }
    }

    /// Revokes access tokens by `DELETE <url>` with our client's Basic credentials and
    /// `{"access_token": …}` (GitHub's `/applications/{client_id}/token`), instead of RFC 7009.
    pub fn with_token_deletion_endpoint(mut self, url: String) -> Self {
        self.token_deletion = Some(url);
        self
    }

    /// Refuses identities whose claims fail `check` (the sign-in fails).
    pub fn with_claims_check(mut self, check: ClaimsCheck) -> Self {
        self.claims_checks.push(check);
        self
    }

    /// Adds a user-API call whose answer adds claims at every identity check.
    pub fn with_claims_call(mut self, call: ClaimsCall) -> Self {
        self.claims_calls.push(call);
        self
    }

    /// Renames the provider's claims to the standard ones before identity is read from them.
    pub fn with_claims_normalizer(mut self, normalizer: ClaimsNormalizer) -> Self {
        self.normalizer = Some(normalizer);
        self
    }

    /// Checks identity again at every refresh of our tokens, through the user API with the
    /// user's provider token (for providers whose identity comes from a user API: GitHub's
    /// tokens may be revoked, or the user leave an organisation, without any refresh at GitHub).
    pub fn with_identity_at_refresh(mut self) -> Self {
        self.identity_at_refresh = true;
        self
    }

    /// Asks the provider, beside the configured scopes, for the scopes each client was granted,
    /// mapped by `mapper` (a provider hook: Entra wants custom API scopes as
    /// `api://<client-id>/<scope>`). Without it the provider is asked for the configured scopes
    /// only.
    pub fn with_scope_mapper(mut self, mapper: ScopeMapper) -> Self {
        self.scope_mapper = Some(mapper);
        self
    }

    /// The scopes asked of the provider for a client granted `granted`: the configured ones,
    /// then the mapped grants, each once.
    fn upstream_scopes(&self, granted: &[String]) -> Vec<String> {
        let mut scopes = self.config.scopes.clone();
        if let Some(mapper) = &self.scope_mapper {
            for scope in granted.iter().filter_map(|s| mapper(s)) {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        scopes
    }

    /// The provider's authorization endpoint.
    pub fn authorization_endpoint(&self) -> &str {
        &self.config.authorization_endpoint
    }

    /// The URL to send the user's browser to.
    pub fn authorization_url(&self, request: &AuthorizeRequest<'_>) -> Result<url::Url, UpstreamError> {
        let mut url = url::Url::parse(&self.config.authorization_endpoint)
            .map_err(|e| UpstreamError::Invalid(format!("authorization endpoint: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("state", request.state)
                .append_pair("code_challenge", request.code_challenge)
                .append_pair("code_challenge_method", "S256");
            let scopes = self.upstream_scopes(request.scopes);
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
            if matches!(self.config.identity, IdentitySource::IdToken { .. }) {
                query.append_pair("nonce", request.nonce);
            }
            for (name, value) in &self.config.extra_authorize_params {
                query.append_pair(name, value);
            }
        }
        Ok(url)
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<UpstreamTokens, UpstreamError> {
        self.token_call_at(&self.config.token_endpoint, form).await
    }

    /// A token request to `endpoint` with our client's credentials, the answer read as a token
    /// response (an OAuth error in it is `Rejected`).
    async fn token_call_at(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<UpstreamTokens, UpstreamError> {
        let mut form = form.to_vec();
        let request = self.http.post(endpoint).header(http::header::ACCEPT, "application/json");
        let request = match self.config.client_auth {
            ClientAuthMethod::ClientSecretBasic => self.with_client_credentials(request),
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", self.config.client_secret.expose_secret()));
                request
            }
        };
        let response = timed_provider_request("token", send_bounded(request.form(&form), MAX_RESPONSE_BYTES))
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if response.status.is_server_error() {
            return Err(UpstreamError::Unavailable(format!("token endpoint answered {}", response.status)));
        }
        let mut parsed: TokenResponse = serde_json::from_slice(&response.body).map_err(|_| {
            UpstreamError::Invalid(format!("token endpoint answered {} without JSON", response.status))
        })?;
        // What stays in the clear response is what is not a token (nested ones too: Slack
        // puts the user's token inside `authed_user`).
        strip_tokens(&mut parsed.rest);
        // Some providers (GitHub) report errors with a 200: the body decides.
        if let Some(error) = parsed.error {
            return Err(UpstreamError::Rejected { error, description: parsed.error_description });
        }
        let access_token = parsed.access_token.filter(|_| response.status.is_success()).ok_or_else(|| {
            UpstreamError::Invalid(format!("token endpoint answered {} without a token", response.status))
        })?;
        let expires_in = parsed.expires_in.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        Ok(UpstreamTokens {
            access_token: access_token.into(),
            refresh_token: parsed.refresh_token.map(Into::into),
            // The provider counts `expires_in` from its answer: by the system clock.
            expires_at: expires_in.map(|secs| crate::clock::Clock::system().unix_now().saturating_add(secs)),
            id_token: parsed.id_token.map(Into::into),
            scope: parsed.scope,
            response: parsed.rest,
        })
    }

    /// Exchanges the provider's code, with our PKCE verifier.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &SecretString,
    ) -> Result<UpstreamTokens, UpstreamError> {
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier.expose_secret()),
        ])
        .await
    }

    /// Refreshes the provider's tokens. A provider that does not rotate keeps the old refresh
    /// token, which is carried over.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<UpstreamTokens, UpstreamError> {
        let mut tokens = self
            .token_call(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose_secret())])
            .await?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.clone());
        }
        Ok(tokens)
    }

    /// `request` with our client's credentials in HTTP Basic (RFC 6749 §2.3.1: each part
    /// form-urlencoded first).
    fn with_client_credentials(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(
            form_urlencode(&self.config.client_id),
            Some(form_urlencode(self.config.client_secret.expose_secret())),
        )
    }

    /// Revokes a token at the provider, when it has a revocation endpoint (RFC 7009, or a
    /// token-deletion endpoint). Returns whether a revocation was sent and accepted.
    pub async fn revoke(&self, token: &SecretString, hint: &str) -> Result<bool, UpstreamError> {
        let request = match (&self.token_deletion, &self.config.revocation_endpoint) {
            // Only access tokens can be deleted this way.
            (Some(_), _) if hint != "access_token" => return Ok(false),
            (Some(url), _) => self
                .with_client_credentials(self.http.delete(url))
                .header(http::header::ACCEPT, "application/json")
                .json(&serde_json::json!({"access_token": token.expose_secret()})),
            (None, Some(endpoint)) => self
                .with_client_credentials(self.http.post(endpoint))
                .form(&[("token", token.expose_secret()), ("token_type_hint", hint)]),
            (None, None) => return Ok(false),
        };
        let response = timed_provider_request("revoke", send_bounded(request, MAX_RESPONSE_BYTES))
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        Ok(response.status.is_success())
    }

    /// Who logged in, from the tokens of a code exchange whose request carried `nonce`.
    pub async fn identity(
        &self,
        tokens: &UpstreamTokens,
        nonce: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let (subject, claims) = match &self.config.identity {
            IdentitySource::IdToken { verifier, userinfo } => {
                let id_token =
                    tokens.id_token.as_ref().ok_or_else(|| UpstreamError::Invalid("no id_token".into()))?;
                let principal = verifier.verify(id_token.expose_secret()).await.map_err(|e| match e {
                    VerifyError::Unavailable(why) => UpstreamError::Unavailable(why),
                    VerifyError::Invalid(reason) => UpstreamError::Invalid(format!("id_token: {reason}")),
                })?;
                let mut claims = principal.claims().clone();
                let sent_nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
                if !constant_time_eq(sent_nonce.as_bytes(), nonce.as_bytes()) {
                    return Err(UpstreamError::Invalid("id_token nonce does not match".into()));
                }
                // OIDC Core 3.1.3.7: with several audiences, azp must be us.
                if principal.audience().len() > 1
                    && claims.get("azp").and_then(Value::as_str) != Some(self.config.client_id.as_str())
                {
                    return Err(UpstreamError::Invalid("id_token azp is not this client".into()));
                }
                if let Some(url) = userinfo {
                    let extra = self.user_info(url, &tokens.access_token).await?;
                    // OIDC Core 5.3.2: user info about someone else is discarded.
                    if extra.get("sub").and_then(Value::as_str) != Some(principal.subject()) {
                        return Err(UpstreamError::Invalid("user info is about another subject".into()));
                    }
                    for (name, value) in extra {
                        claims.entry(name).or_insert(value);
                    }
                }
                (principal.subject().to_owned(), claims)
            }
            IdentitySource::UserInfo { url, subject_claim } => {
                let claims = self.user_info(url, &tokens.access_token).await?;
                (subject_in(&claims, subject_claim)?, claims)
            }
            IdentitySource::TokenResponse { subject_pointer } => {
                let claims = tokens.response.clone();
                let subject = match Value::Object(claims.clone()).pointer(subject_pointer) {
                    Some(Value::String(s)) if !s.is_empty() => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => {
                        return Err(UpstreamError::Invalid(format!(
                            "the token response has no user id at {subject_pointer}"
                        )));
                    }
                };
                (subject, claims)
            }
        };
        self.complete_identity(subject, claims, &tokens.access_token).await
    }

    /// Who the holder of `access_token` is now, for providers checked again at refresh (see
    /// [`with_identity_at_refresh`](Self::with_identity_at_refresh)); `None` for the others.
    /// A token the provider no longer accepts is [`UpstreamError::Rejected`].
    pub async fn identity_now(
        &self,
        access_token: &SecretString,
    ) -> Result<Option<UpstreamIdentity>, UpstreamError> {
        let IdentitySource::UserInfo { url, subject_claim } = &self.config.identity else { return Ok(None) };
        if !self.identity_at_refresh {
            return Ok(None);
        }
        let claims = self.user_info(url, access_token).await?;
        let subject = subject_in(&claims, subject_claim)?;
        self.complete_identity(subject, claims, access_token).await.map(Some)
    }

    /// The identity claims completed by the provider's further calls and normalized.
    async fn complete_identity(
        &self,
        subject: String,
        mut claims: Map<String, Value>,
        access_token: &SecretString,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        for call in &self.claims_calls {
            match self.user_api_all_pages(&call.url, access_token).await {
                Ok(answer) => claims.extend((call.map)(&answer)),
                Err(UpstreamError::Invalid(_)) if call.optional => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(normalize) = self.normalizer {
            normalize(&mut claims);
        }
        for check in &self.claims_checks {
            check(&claims).map_err(UpstreamError::Invalid)?;
        }
        Ok(UpstreamIdentity::from_claims(subject, claims))
    }

    /// A user-API answer that must be a JSON object.
    async fn user_info(
        &self,
        url: &str,
        access_token: &SecretString,
    ) -> Result<Map<String, Value>, UpstreamError> {
        match self.user_api(url, access_token).await? {
            Value::Object(claims) => Ok(claims),
            _ => Err(UpstreamError::Invalid("user info is not a JSON object".into())),
        }
    }

    /// GET `url` with the user's access token: a token refused (401) is
    /// [`UpstreamError::Rejected`], other refusals are [`UpstreamError::Invalid`].
    async fn user_api(&self, url: &str, access_token: &SecretString) -> Result<Value, UpstreamError> {
        self.user_api_page(url, access_token).await.map(|(answer, _)| answer)
    }

    /// [`user_api`](Self::user_api) for a list answer split in pages (GitHub's `Link: <…>;
    /// rel="next"`): the pages' items together, at most [`MAX_PAGES`] pages, following only
    /// links on the first URL's origin (the user's token goes nowhere else).
    async fn user_api_all_pages(
        &self,
        url: &str,
        access_token: &SecretString,
    ) -> Result<Value, UpstreamError> {
        let (first, mut next) = self.user_api_page(url, access_token).await?;
        let Value::Array(mut items) = first else { return Ok(first) };
        let origin = url::Url::parse(url).map(|u| u.origin()).ok();
        for _ in 1..MAX_PAGES {
            let Some(page_url) =
                next.take().filter(|n| url::Url::parse(n).ok().map(|u| u.origin()) == origin)
            else {
                break;
            };
            let (page, after) = self.user_api_page(&page_url, access_token).await?;
            match page {
                Value::Array(more) => items.extend(more),
                _ => break,
            }
            next = after;
        }
        Ok(Value::Array(items))
    }

    /// One page: the answer, and the next page's URL if the `Link` header names one.
    async fn user_api_page(
        &self,
        url: &str,
        access_token: &SecretString,
    ) -> Result<(Value, Option<String>), UpstreamError> {
        let request = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .header(http::header::ACCEPT, "application/json");
        let response = timed_provider_request("userinfo", send_bounded(request, MAX_RESPONSE_BYTES))
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if response.status.is_server_error() {
            return Err(UpstreamError::Unavailable(format!("user info answered {}", response.status)));
        }
        if response.status == http::StatusCode::UNAUTHORIZED {
            return Err(UpstreamError::Rejected {
                error: "invalid_token".into(),
                description: Some("the provider no longer accepts the user's token".into()),
            });
        }
        if !response.status.is_success() {
            return Err(UpstreamError::Invalid(format!("user info answered {}", response.status)));
        }
        let next = response.headers.get(http::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
        let answer = serde_json::from_slice(&response.body)
            .map_err(|_| UpstreamError::Invalid("user info is not JSON".into()))?;
        Ok((answer, next))
    }
}

/// Pages of a user-API list read at most (GitHub: 100 items a page).
const MAX_PAGES: usize = 10;

/// The `rel="next"` target of a `Link` header (RFC 8288), as GitHub writes it.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let is_next = params.split(';').any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// The user id in `claims[name]` (a string, or a number as GitHub and Discord send it).
fn subject_in(claims: &Map<String, Value>, name: &str) -> Result<String, UpstreamError> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(UpstreamError::Invalid(format!("user info has no {name}"))),
    }
}

impl UpstreamIdentity {
    /// The identity in standard claims: `email` and `email_verified` (a boolean, or the string
    /// `"true"` as Cognito sends it), `name`, `preferred_username` (else `login`, `username`),
    /// `groups` (its strings).
    pub fn from_claims(subject: String, claims: Map<String, Value>) -> Self {
        let text = |name: &str| {
            claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        let email_verified = match claims.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            Some(Value::String(verified)) => verified == "true",
            _ => false,
        };
        let groups = match claims.get("groups") {
            Some(Value::Array(groups)) => {
                groups.iter().filter_map(Value::as_str).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        UpstreamIdentity {
            subject,
            email: text("email"),
            email_verified,
            name: text("name"),
            username: text("preferred_username").or_else(|| text("login")).or_else(|| text("username")),
            groups,
            claims,
        }
    }
}

/// Timeouts used when none are configured: upstream calls are on a user's login path.
pub fn default_timeouts() -> OutboundTimeouts {
    OutboundTimeouts { connect: Duration::from_secs(5), total: Duration::from_secs(15) }
}

#[cfg(test)]
mod link_tests {
    use super::next_link;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let header = r#"<https://api.github.com/user/orgs?page=2>; rel="next", <https://api.github.com/user/orgs?page=5>; rel="last""#;
        assert_eq!(next_link(header).as_deref(), Some("https://api.github.com/user/orgs?page=2"));
        assert_eq!(next_link(r#"<https://api.github.com/user/orgs?page=1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
