//! The configuration's shape: one type per section of the file, with its defaults. What the
//! types cannot say is checked in [`super::validation`]; where values come from, in
//! [`super::sources`].

use std::net::SocketAddr;

use mcpgate::authz::{
    AllowedUsers, ClientKeys, ConsentMode, EnterpriseIdp, GrantType, JWT_BEARER, MetadataDocumentPolicy,
    Registration,
};
use mcpgate::client_address::{BadNetwork, TrustedProxies};
use mcpgate::upstream::{ExchangeFlow, TokenExchange, Upstream};
use mcpgate::verify::{ApiKey, ApiKeyDigest};
use secrecy::SecretString;
use serde::Deserialize;

use super::policy;
use crate::exit::{ServeError, config_error};
use crate::providers::{
    Auth0Section, AzureSection, BaseUrlSection, CognitoSection, GitHubSection, GoogleSection,
    KeycloakSection, OidcSection, OktaSection, Provider,
};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[upstream]`: the MCP server behind the gateway at `server.mcp_path` (or none, when
    /// `[[routes]]` name them all).
    pub upstream: Option<UpstreamConfig>,
    /// `[[routes]]`: more MCP servers, each at its own path.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[secrets]`.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// `[policy]`: who may call which tool.
    #[serde(default)]
    pub policy: policy::PolicyConfig,
    /// `[audit]`: the record of every MCP operation.
    #[serde(default)]
    pub audit: policy::AuditConfig,
}

/// `[server]`: where the gateway listens and how it is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public URL clients reach (the issuer); default `http://<listen>`.
    pub public_url: Option<String>,
    /// Where the MCP endpoint is served.
    #[serde(default = "default_mcp_path")]
    pub mcp_path: String,
    /// The largest request body accepted on the MCP endpoint, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Serve `/metrics` (Prometheus text format) on the listener.
    #[serde(default = "yes")]
    pub metrics: bool,
    /// Reverse proxies in front of the gateway (addresses or CIDR blocks): only a connection
    /// from one of them has its `X-Forwarded-For` believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Browser origins allowed to call the MCP endpoint besides `public_url`'s own (patterns:
    /// `https://app.example.com`, `http://localhost:*`, `https://*.example.com`; `*` for any).
    /// Default: loopback origins on any port.
    pub allowed_origins: Option<Vec<String>>,
    /// Host names the gateway answers to besides `public_url`'s (`host` or `host:port`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            mcp_path: default_mcp_path(),
            max_request_bytes: default_max_request_bytes(),
            metrics: true,
            trusted_proxies: Vec::new(),
            allowed_origins: None,
            allowed_hosts: Vec::new(),
        }
    }
}

fn default_max_request_bytes() -> usize {
    4 * 1024 * 1024
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

fn default_mcp_path() -> String {
    "/mcp".into()
}

fn yes() -> bool {
    true
}

fn default_max_children() -> usize {
    32
}

/// `[upstream]`: an MCP server over Streamable HTTP (`url`), or a stdio command.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The upstream's Streamable HTTP endpoint.
    pub url: Option<String>,
    /// A stdio MCP server to start: program and arguments.
    pub command: Option<Vec<String>>,
    /// With `command`: one child per MCP session (else one shared child).
    #[serde(default)]
    pub per_session: bool,
    /// With `command`: at most this many child processes at once.
    #[serde(default = "default_max_children")]
    pub max_children: usize,
    /// Send the caller's identity as `X-Mcpgate-*` headers.
    #[serde(default = "yes")]
    pub forward_identity: bool,
    /// Send the user's provider access token as `X-Mcpgate-Provider-Token`.
    #[serde(default)]
    pub forward_provider_token: bool,
    /// `[upstream.token_exchange]`: send a token made for a downstream API as
    /// `X-Mcpgate-Downstream-Token`, exchanged from the user's provider token.
    pub token_exchange: Option<TokenExchangeConfig>,
}

/// How a route's callers are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAuth {
    /// By `[auth]`: a bearer token (or API key) for this route, refused at the others.
    #[default]
    Oauth,
    /// Not at all: a public route. Still Origin-checked, rate-limited, policy-checked (the
    /// caller is anonymous) and audited; credentials a client sends are neither read nor
    /// passed on.
    None,
}

/// `rate_limit` of a route: requests per client address.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests a minute.
    pub per_minute: u32,
    /// Requests at once after a quiet period.
    pub burst: u32,
}

impl From<RateLimitConfig> for mcpgate::authz::RateLimit {
    fn from(limit: RateLimitConfig) -> Self {
        mcpgate::authz::RateLimit::per_minute(limit.per_minute, limit.burst)
    }
}

/// `[[routes]]`: one MCP server behind the gateway.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConfig {
    /// Where it is served (`/github/mcp`): also its resource URL's path.
    pub path: String,
    /// `oauth` (default) or `none` (a public route).
    #[serde(default)]
    pub auth: RouteAuth,
    /// The scopes its tokens carry (its metadata and challenge name them); default
    /// `auth.scopes`.
    pub scopes: Option<Vec<String>>,
    /// A name for people (`resource_name` in its metadata).
    pub name: Option<String>,
    /// `[routes.policy]`: its own policy, in place of the top-level `[policy]`.
    pub policy: Option<policy::PolicyConfig>,
    /// Requests per client address (public routes; default 600 a minute, 60 at once).
    pub rate_limit: Option<RateLimitConfig>,
    /// Its upstream and forwarding: the keys of `[upstream]` (`url` or `command`, …).
    #[serde(flatten)]
    pub upstream: UpstreamConfig,
    /// Keys neither of the above knows: reported as unknown (serde cannot deny them through a
    /// flattened table, so they are collected here — after `upstream` took its own).
    #[serde(flatten)]
    pub unknown: toml::Table,
}

/// `[upstream.token_exchange]` (proxy mode): what the user's provider token is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeConfig {
    /// The downstream API, as the provider names it (RFC 8693 `audience`).
    pub audience: Option<String>,
    /// The scopes wanted for it (Entra: `api://<app>/.default`).
    pub scope: Option<String>,
    /// `token_exchange` (RFC 8693) or `on_behalf_of` (Microsoft Entra); default: `on_behalf_of`
    /// for `provider = "azure"`, else `token_exchange`.
    pub flow: Option<String>,
    /// Where to exchange; default: the provider's token endpoint (from its discovery document).
    pub endpoint: Option<String>,
}

impl TokenExchangeConfig {
    /// The library's exchange, for `provider` (the `auth.provider` name).
    pub fn to_exchange(&self, provider: &str) -> Result<TokenExchange, (&'static str, String)> {
        let flow = match self.flow.as_deref() {
            None if provider == "azure" => ExchangeFlow::OnBehalfOf,
            None | Some("token_exchange") => ExchangeFlow::TokenExchange,
            Some("on_behalf_of") => ExchangeFlow::OnBehalfOf,
            Some(other) => return Err(("flow", format!("{other:?}: use token_exchange or on_behalf_of"))),
        };
        if self.audience.is_none() && self.scope.is_none() {
            return Err(("audience", "give audience, scope or both: what the token is for".into()));
        }
        if flow == ExchangeFlow::OnBehalfOf && self.scope.is_none() {
            return Err(("scope", "on_behalf_of names the API by scope (api://<app>/.default)".into()));
        }
        Ok(TokenExchange {
            flow,
            audience: self.audience.clone(),
            scope: self.scope.clone(),
            endpoint: self.endpoint.clone(),
        })
    }
}

/// Who issues the tokens the gateway accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// mcpgate's own authorization server, proxying a provider.
    #[default]
    Proxy,
    /// Tokens from an existing authorization server, verified against its keys.
    Resource,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `proxy` (default) or `resource`.
    #[serde(default)]
    pub mode: AuthMode,
    /// The upstream provider (proxy mode): one of [`Provider::NAMES`].
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Our client id at the provider.
    pub client_id: Option<String>,
    /// The environment variable holding our client secret at the provider.
    pub client_secret_env: Option<String>,
    /// Or the file holding it.
    pub client_secret_file: Option<String>,
    /// The scopes clients may ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes that stand for others (`"mcp:admin" = ["mcp:write"]`), for required scopes and
    /// the policy alike.
    #[serde(default)]
    pub scope_implications: policy::ScopeImplicationsConfig,
    /// `always` (default), `remember` or `off`.
    #[serde(default, deserialize_with = "from_name")]
    pub consent: ConsentMode,
    /// `open` (default: clients register themselves, RFC 7591) or `off` (only `[[auth.clients]]`
    /// and, when accepted, metadata documents).
    #[serde(default, deserialize_with = "from_name")]
    pub registration: Registration,
    /// `[[auth.clients]]`: clients the operator registers.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// `[[auth.api_keys]]`: API keys accepted as bearer tokens at the MCP endpoint.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// `[[auth.accept]]` (proxy mode): other issuers whose tokens the MCP endpoint accepts too.
    #[serde(default)]
    pub accept: Vec<AcceptConfig>,
    /// `[[auth.enterprise_idps]]` (proxy mode): identity providers whose identity assertions
    /// (ID-JAG, SEP-990) clients of the jwt-bearer grant redeem at `/token`.
    #[serde(default)]
    pub enterprise_idps: Vec<EnterpriseIdpConfig>,
    /// Seconds a registered client is kept while no sign-in through it has completed.
    #[serde(default = "default_unconfirmed_client_ttl_secs")]
    pub unconfirmed_client_ttl_secs: u64,
    /// Redirect-URI patterns registration accepts; absent: any the client-type rules accept.
    pub allowed_redirect_uris: Option<Vec<String>>,
    /// `[auth.client_metadata_documents]`: clients identified by the URL of their metadata.
    #[serde(default)]
    pub client_metadata_documents: MetadataDocumentsConfig,
    /// `[auth.allowed_users]`: who may sign in (default: everyone the provider signs in).
    #[serde(default)]
    pub allowed_users: AllowedUsersConfig,
    /// `[auth.oidc]`.
    pub oidc: Option<OidcSection>,
    /// `[auth.github]`.
    pub github: Option<GitHubSection>,
    /// `[auth.google]`.
    pub google: Option<GoogleSection>,
    /// `[auth.azure]` (Microsoft Entra ID).
    pub azure: Option<AzureSection>,
    /// `[auth.auth0]`.
    pub auth0: Option<Auth0Section>,
    /// `[auth.keycloak]`.
    pub keycloak: Option<KeycloakSection>,
    /// `[auth.okta]`.
    pub okta: Option<OktaSection>,
    /// `[auth.cognito]`.
    pub cognito: Option<CognitoSection>,
    /// `[auth.gitlab]`.
    pub gitlab: Option<BaseUrlSection>,
    /// `[auth.discord]`.
    pub discord: Option<BaseUrlSection>,
    /// `[auth.workos]`: WorkOS AuthKit (`base_url`, the AuthKit domain).
    pub workos: Option<BaseUrlSection>,
    /// `[auth.resource]`.
    pub resource: Option<ResourceAuthConfig>,
}

fn default_unconfirmed_client_ttl_secs() -> u64 {
    24 * 3600
}

fn default_provider() -> String {
    "oidc".into()
}

/// `[auth.allowed_users]`: a user may sign in when any list names them; all empty, everyone may.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedUsersConfig {
    /// Provider user ids (GitHub's numeric id, an OIDC `sub`).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Email addresses (verified by the provider).
    #[serde(default)]
    pub emails: Vec<String>,
    /// Email domains (of verified addresses).
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Groups (GitHub: organisation logins).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl From<&AllowedUsersConfig> for AllowedUsers {
    fn from(config: &AllowedUsersConfig) -> Self {
        Self {
            subjects: config.ids.clone(),
            emails: config.emails.clone(),
            email_domains: config.email_domains.clone(),
            groups: config.groups.clone(),
        }
    }
}

impl AuthConfig {
    /// The provider `auth.provider` names with its section, checked; or what is wrong.
    pub fn chosen_provider(&self) -> Result<Provider, Vec<(String, String)>> {
        Provider::chosen(&self.provider, self.provider_sections())
    }

    /// The chosen provider as the library's upstream, where we are `client_id` with
    /// `client_secret` (for `serve`, and for `check` to see that it can be built).
    pub async fn upstream(&self, client_secret: SecretString) -> Result<Upstream, ServeError> {
        let provider = self.chosen_provider().map_err(|problems| {
            let why: Vec<String> =
                problems.into_iter().map(|(key, message)| format!("{key}: {message}")).collect();
            config_error("auth.provider", why.join("; "))
        })?;
        let id = self.client_id.clone().unwrap_or_default();
        // An allow-list by group needs the groups (GitHub: the organisations).
        provider.upstream(id, client_secret, !self.allowed_users.groups.is_empty()).await
    }

    /// Every `[auth.<provider>]` section present, as the provider it configures.
    fn provider_sections(&self) -> Vec<Provider> {
        [
            self.oidc.clone().map(Provider::Oidc),
            self.github.clone().map(Provider::GitHub),
            self.google.clone().map(Provider::Google),
            self.azure.clone().map(Provider::Azure),
            self.auth0.clone().map(Provider::Auth0),
            self.keycloak.clone().map(Provider::Keycloak),
            self.okta.clone().map(Provider::Okta),
            self.cognito.clone().map(Provider::Cognito),
            self.gitlab.clone().map(Provider::GitLab),
            self.discord.clone().map(Provider::Discord),
            self.workos.clone().map(Provider::WorkOs),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A setting written as its name (`consent = "remember"`), with its own message when unknown.
fn from_name<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let name = String::deserialize(deserializer)?;
    name.parse().map_err(serde::de::Error::custom)
}

impl ClientConfig {
    /// `grant_types`, parsed; empty for the default.
    pub fn grant_types(&self) -> Result<Vec<GrantType>, String> {
        let parsed = self
            .grant_types
            .iter()
            .map(|name| GrantType::parse(name).ok_or_else(|| format!("unknown grant type {name:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let signs_in = parsed.contains(&GrantType::AuthorizationCode);
        let without_sign_in = [GrantType::ClientCredentials, GrantType::JwtBearer];
        if !parsed.is_empty() && !signs_in && !parsed.iter().any(|g| without_sign_in.contains(g)) {
            return Err(format!("must include authorization_code, client_credentials or {JWT_BEARER}"));
        }
        if !parsed.is_empty() && !signs_in && parsed.contains(&GrantType::RefreshToken) {
            return Err("refresh_token comes with authorization_code only".into());
        }
        Ok(parsed)
    }

    /// Its keys (`jwks` or `jwks_uri`), if it authenticates by them.
    pub fn keys(&self) -> Result<Option<ClientKeys>, String> {
        match (&self.jwks, &self.jwks_uri) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err("give jwks or jwks_uri, not both".into()),
            (Some(serde_json::Value::String(text)), None) => serde_json::from_str(text)
                .map(|document| Some(ClientKeys::Jwks(document)))
                .map_err(|e| format!("is not a JWKS document: {e}")),
            (Some(document), None) => Ok(Some(ClientKeys::Jwks(document.clone()))),
            (None, Some(url)) => Ok(Some(ClientKeys::JwksUri(url.clone()))),
        }
    }

    /// Whether it has a secret (by reference).
    pub fn has_secret(&self) -> bool {
        self.client_secret_env.is_some() || self.client_secret_file.is_some()
    }

    /// Whether people sign in through it in a browser (the default grants, or
    /// `authorization_code`), so that it needs redirect URIs.
    pub fn signs_in(&self) -> bool {
        // By name, so that a mistake elsewhere in the list is reported once, at grant_types.
        self.grant_types.is_empty() || self.grant_types.iter().any(|g| g == "authorization_code")
    }
}

/// One `[[auth.clients]]` entry: a client the operator registered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Its id.
    pub client_id: String,
    /// A confidential client's secret, by reference (one of the two); neither: a public client.
    pub client_secret_env: Option<String>,
    /// See `client_secret_env`.
    pub client_secret_file: Option<String>,
    /// Its public keys, for a client that authenticates by `private_key_jwt` instead of a
    /// secret: a JWKS document, as a table (`{ keys = [...] }`) or as JSON text.
    pub jwks: Option<serde_json::Value>,
    /// Where its public keys are published instead (https, or http on loopback).
    pub jwks_uri: Option<String>,
    /// Its redirect URIs (https, loopback http, private-use schemes); none for a machine client.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The name the consent page shows.
    pub name: Option<String>,
    /// The scopes it may have; absent: every supported scope.
    pub scopes: Option<Vec<String>>,
    /// `authorization_code` and `refresh_token` (a client people sign in through),
    /// `client_credentials` (a machine client, which needs a secret or keys); absent: the
    /// first two.
    #[serde(default)]
    pub grant_types: Vec<String>,
}

/// One `[[auth.api_keys]]` entry: a key `mcpgate apikey` made, by its digest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Its name: requests with it are `api_key:<name>` to the policy, the upstream and the audit.
    pub name: String,
    /// The digest `mcpgate apikey` printed on its second line (`sha256:…`); never the key.
    pub digest: String,
    /// The scopes a request with it has.
    pub scopes: Vec<String>,
    /// When it stops working: a TOML date-time with an offset (`2027-01-31T18:00:00Z`), or a
    /// date (`2027-01-31`: the start of that day, UTC).
    pub expires: Option<toml::value::Datetime>,
}

impl ApiKeyConfig {
    /// The library's key: digest read, `expires` as seconds since the epoch. The message of
    /// an error names the field at fault first (`digest: …`).
    pub fn to_api_key(&self) -> Result<ApiKey, (&'static str, String)> {
        let digest = ApiKeyDigest::parse(&self.digest).map_err(|e| ("digest", e.to_string()))?;
        let expires_at = self.expires.as_ref().map(unix_time).transpose().map_err(|e| ("expires", e))?;
        Ok(ApiKey { name: self.name.clone(), digest, scopes: self.scopes.clone(), expires_at })
    }
}

/// A TOML date-time with an offset, or a date, as seconds since the epoch.
fn unix_time(at: &toml::value::Datetime) -> Result<u64, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{at}: {e}");
    let date = at.date.ok_or_else(|| format!("{at}: give a date"))?;
    let month = time::Month::try_from(date.month).map_err(|e| bad(&e))?;
    let date = time::Date::from_calendar_date(i32::from(date.year), month, date.day).map_err(|e| bad(&e))?;
    let clock = match at.time {
        None => time::Time::MIDNIGHT,
        Some(t) => {
            time::Time::from_hms_nano(t.hour, t.minute, t.second.unwrap_or(0), t.nanosecond.unwrap_or(0))
                .map_err(|e| bad(&e))?
        }
    };
    let offset = match (at.time, at.offset) {
        (None, _) => time::UtcOffset::UTC,
        (Some(_), None) => return Err(format!("{at}: give an offset (Z for UTC)")),
        (Some(_), Some(toml::value::Offset::Z)) => time::UtcOffset::UTC,
        (Some(_), Some(toml::value::Offset::Custom { minutes })) => {
            time::UtcOffset::from_whole_seconds(i32::from(minutes) * 60).map_err(|e| bad(&e))?
        }
    };
    let seconds = time::PrimitiveDateTime::new(date, clock).assume_offset(offset).unix_timestamp();
    u64::try_from(seconds).map_err(|_| format!("{at}: before 1970"))
}

/// `[auth.client_metadata_documents]`: client ID metadata documents (a client whose id is
/// the https URL of a JSON document describing it, fetched by the gateway).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataDocumentsConfig {
    /// Accept such clients (advertised in the authorization server metadata). Default: yes.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fetch documents from loopback and private addresses, and over plain http. For tests and
    /// local development only: it lets any client make the gateway fetch from inside its network.
    #[serde(default)]
    pub allow_private_addresses: bool,
}

impl Default for MetadataDocumentsConfig {
    fn default() -> Self {
        Self { enabled: true, allow_private_addresses: false }
    }
}

impl From<MetadataDocumentsConfig> for MetadataDocumentPolicy {
    fn from(config: MetadataDocumentsConfig) -> Self {
        Self { enabled: config.enabled, allow_private_addresses: config.allow_private_addresses }
    }
}

/// One `[[auth.accept]]` entry: another authorization server whose tokens are accepted beside
/// mcpgate's own, verified by its keys (`jwks_uri`) or by RFC 7662 introspection
/// (`introspection_url`). A JWT goes to the entry of the issuer it names and to no other; an
/// opaque token to the introspection entry without an issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptConfig {
    /// The issuer (`iss`) of its tokens: required with `jwks_uri`; with `introspection_url`,
    /// JWTs naming it are introspected (leave it out for opaque tokens).
    pub issuer: Option<String>,
    /// Its signing keys.
    pub jwks_uri: Option<String>,
    /// The audience its tokens must carry (required with `jwks_uri`): this gateway's MCP URL or
    /// the name the issuer knows it by.
    pub audience: Option<String>,
    /// The claim holding the scopes, when not `scope`/`scp`.
    pub scope_claim: Option<String>,
    /// Its RFC 7662 introspection endpoint.
    pub introspection_url: Option<String>,
    /// The client id mcpgate introspects as.
    pub client_id: Option<String>,
    /// That client's secret, by reference (one of the two).
    pub client_secret_env: Option<String>,
    /// See `client_secret_env`.
    pub client_secret_file: Option<String>,
}

impl AcceptConfig {
    /// What checks its tokens.
    pub fn kind(&self) -> Result<AcceptKind<'_>, (&'static str, &'static str)> {
        match (&self.jwks_uri, &self.introspection_url) {
            (Some(jwks_uri), None) => {
                let issuer = self.issuer.as_deref().ok_or(("issuer", "is required with jwks_uri"))?;
                let audience = self.audience.as_deref().ok_or(("audience", "is required with jwks_uri"))?;
                if self.client_id.is_some()
                    || self.client_secret_env.is_some()
                    || self.client_secret_file.is_some()
                {
                    return Err(("client_id", "applies only with introspection_url"));
                }
                Ok(AcceptKind::Jwt { issuer, jwks_uri, audience })
            }
            (None, Some(url)) => {
                let client_id =
                    self.client_id.as_deref().ok_or(("client_id", "is required with introspection_url"))?;
                match (&self.client_secret_env, &self.client_secret_file) {
                    (None, None) => Err((
                        "client_secret_env",
                        "is required with introspection_url (or client_secret_file)",
                    )),
                    (Some(_), Some(_)) => {
                        Err(("client_secret_env", "give client_secret_env or client_secret_file, not both"))
                    }
                    _ => Ok(AcceptKind::Introspection { url, client_id }),
                }
            }
            (Some(_), Some(_)) => Err(("jwks_uri", "give jwks_uri or introspection_url, not both")),
            (None, None) => Err(("jwks_uri", "give jwks_uri (JWTs) or introspection_url (RFC 7662)")),
        }
    }
}

/// How an `[[auth.accept]]` entry's tokens are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptKind<'a> {
    /// JWTs of `issuer`, signed by the keys at `jwks_uri`, for `audience`.
    Jwt {
        /// `issuer`.
        issuer: &'a str,
        /// `jwks_uri`.
        jwks_uri: &'a str,
        /// `audience`.
        audience: &'a str,
    },
    /// Tokens introspected at `url` as `client_id`.
    Introspection {
        /// `introspection_url`.
        url: &'a str,
        /// `client_id`.
        client_id: &'a str,
    },
}

/// One `[[auth.enterprise_idps]]` entry: an enterprise identity provider trusted to sign users
/// in by identity assertions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnterpriseIdpConfig {
    /// Its issuer (`iss` of its assertions).
    pub issuer: String,
    /// Its signing keys.
    pub jwks_uri: String,
    /// The `[[auth.clients]]` that may redeem its assertions; absent: every client of the
    /// jwt-bearer grant.
    #[serde(default)]
    pub allowed_clients: Vec<String>,
}

impl From<&EnterpriseIdpConfig> for EnterpriseIdp {
    fn from(config: &EnterpriseIdpConfig) -> Self {
        Self {
            issuer: config.issuer.clone(),
            jwks_uri: config.jwks_uri.clone(),
            allowed_clients: config.allowed_clients.clone(),
        }
    }
}

/// `[auth.resource]` (resource mode).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceAuthConfig {
    /// The authorization server's JWKS.
    pub jwks_uri: String,
    /// Its issuer (`iss`).
    pub issuer: String,
    /// The audience tokens must carry; default: the MCP URL.
    pub audience: Option<String>,
    /// Authorization servers named in the resource metadata; default: the issuer.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Also accept tokens issued to this client (their `azp` or `client_id`) whatever their
    /// audience: Keycloak and AWS Cognito access tokens name the client, not the API.
    pub client_id: Option<String>,
    /// The claim holding the scopes, when not `scope`/`scp` (Auth0 RBAC: `permissions`).
    pub scope_claim: Option<String>,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory://`, `sqlite://PATH` (default `sqlite://.mcpgate/mcpgate.db`), `redis://…` or
    /// `redis+cluster://…`.
    #[serde(default = "default_store")]
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { url: default_store() }
    }
}

fn default_store() -> String {
    "sqlite://.mcpgate/mcpgate.db".into()
}

/// `[secrets]`: where the root secret comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// The environment variable holding it (default `MCPGATE_SECRET`).
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
    /// Or a file holding it.
    pub secret_file: Option<String>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { secret_env: default_secret_env(), secret_file: None }
    }
}

fn default_secret_env() -> String {
    "MCPGATE_SECRET".into()
}

impl Config {
    /// The public URL: `server.public_url`, else `http://<listen>`.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.listen),
        }
    }

    /// `server.trusted_proxies`, parsed.
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, BadNetwork> {
        TrustedProxies::parse(&self.server.trusted_proxies)
    }
}
