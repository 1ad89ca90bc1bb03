//! The gateway's configuration: one TOML file (documented key by key in
//! `mcpgate.example.toml`), every key overridable by an environment variable named after its
//! path (`MCPGATE_SERVER__LISTEN` for `server.listen`), secrets only by reference (`*_env`,
//! `*_file`).
//!
//! Every problem names its key and where it came from — the file's line, or the environment
//! variable — so `mcpgate check` can point at it.

mod policy;

use std::collections::HashMap;
use std::net::SocketAddr;

use mcpgate::authz::{AllowedUsers, ConsentMode, GrantType, MetadataDocumentPolicy, Registration};
use mcpgate::client_address::{BadNetwork, TrustedProxies};
use mcpgate::resource::AllowedOrigins;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[upstream]`: the MCP server behind the gateway.
    pub upstream: UpstreamConfig,
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
#[derive(Debug, Clone, Deserialize)]
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
    /// The upstream provider (proxy mode): one of [`PROVIDERS`].
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
    pub oidc: Option<OidcConfig>,
    /// `[auth.github]`.
    pub github: Option<GitHubConfig>,
    /// `[auth.google]`.
    pub google: Option<GoogleConfig>,
    /// `[auth.azure]` (Microsoft Entra ID).
    pub azure: Option<AzureConfig>,
    /// `[auth.auth0]`.
    pub auth0: Option<Auth0Config>,
    /// `[auth.keycloak]`.
    pub keycloak: Option<KeycloakConfig>,
    /// `[auth.okta]`.
    pub okta: Option<OktaConfig>,
    /// `[auth.cognito]`.
    pub cognito: Option<CognitoConfig>,
    /// `[auth.gitlab]`.
    pub gitlab: Option<BaseUrlConfig>,
    /// `[auth.discord]`.
    pub discord: Option<BaseUrlConfig>,
    /// `[auth.workos]`: WorkOS AuthKit (`base_url`, the AuthKit domain).
    pub workos: Option<BaseUrlConfig>,
    /// `[auth.resource]`.
    pub resource: Option<ResourceAuthConfig>,
}

fn default_unconfirmed_client_ttl_secs() -> u64 {
    24 * 3600
}

fn default_provider() -> String {
    "oidc".into()
}

/// The providers `auth.provider` may name; each but `oidc` reads `[auth.<name>]`.
pub const PROVIDERS: &[&str] = &[
    "oidc", "github", "google", "azure", "auth0", "keycloak", "okta", "cognito", "gitlab", "discord",
    "workos",
];

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

/// `[auth.google]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// Only accounts of this Google Workspace domain (checked on the id_token's `hd`).
    pub hosted_domain: Option<String>,
    /// Where Google's accounts service is (a test double); default accounts.google.com.
    pub base_url: Option<String>,
}

/// `[auth.azure]`: Microsoft Entra ID.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// `common` (default), `organizations`, `consumers`, or a tenant id or domain.
    pub tenant: Option<String>,
    /// The authority host (sovereign clouds, B2C's b2clogin host); default
    /// `https://login.microsoftonline.com`.
    pub base_url: Option<String>,
    /// An Azure AD B2C user flow (`B2C_1_signupsignin`).
    pub b2c_policy: Option<String>,
    /// Ask Entra for the clients' scopes as this app's API scopes (`api://<client-id>/…`).
    #[serde(default)]
    pub api_scopes: bool,
    /// The API's identifier URI, when not `api://<client-id>`.
    pub api_identifier: Option<String>,
}

/// `[auth.auth0]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth0Config {
    /// The tenant's URL (`https://acme.us.auth0.com`, or a custom domain).
    pub base_url: String,
    /// The API identifier tokens are asked for.
    pub audience: Option<String>,
}

/// `[auth.keycloak]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakConfig {
    /// The server's URL.
    pub base_url: String,
    /// The realm.
    pub realm: String,
}

/// `[auth.okta]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// The org's URL (`https://acme.okta.com`).
    pub base_url: String,
    /// The custom authorization server (default `default`); `""` for the org server.
    pub authorization_server: Option<String>,
}

/// `[auth.cognito]`: a user pool by region and id, or its issuer URL as `base_url`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CognitoConfig {
    /// The pool's region.
    pub region: Option<String>,
    /// The pool's id.
    pub user_pool_id: Option<String>,
    /// The pool's issuer URL, instead of region and id.
    pub base_url: Option<String>,
}

/// A provider section with only a base URL (`[auth.gitlab]`: a self-managed instance;
/// `[auth.discord]`: a test double).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseUrlConfig {
    /// Where the provider is.
    pub base_url: Option<String>,
}

/// `[auth.github]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// A GitHub Enterprise Server URL; default github.com.
    pub base_url: Option<String>,
    /// Read the user's organisations (asks for `read:org`); on by itself when
    /// `allowed_users.groups` names organisations.
    #[serde(default)]
    pub organisations: bool,
}

impl AuthConfig {
    /// Whether the `[auth.<provider>]` section is present.
    pub fn has_section(&self, provider: &str) -> bool {
        match provider {
            "oidc" => self.oidc.is_some(),
            "github" => self.github.is_some(),
            "google" => self.google.is_some(),
            "azure" => self.azure.is_some(),
            "auth0" => self.auth0.is_some(),
            "keycloak" => self.keycloak.is_some(),
            "okta" => self.okta.is_some(),
            "cognito" => self.cognito.is_some(),
            "gitlab" => self.gitlab.is_some(),
            "discord" => self.discord.is_some(),
            "workos" => self.workos.is_some(),
            _ => false,
        }
    }

    /// The URLs the chosen provider's section gives, by key.
    /// Why `consent = "off"` would let strangers get codes silently, if it would: anyone can
    /// bring a client (open registration, or metadata documents) and its redirect URI may be
    /// something other than a loopback listener.
    fn unguarded_consent_off(&self) -> Option<String> {
        if self.consent != ConsentMode::Off {
            return None;
        }
        let mut open = Vec::new();
        if self.registration == Registration::Open {
            open.push("auth.registration is \"open\"");
        }
        if self.client_metadata_documents.enabled {
            open.push("auth.client_metadata_documents.enabled is true");
        }
        let loopback_only = self.allowed_redirect_uris.as_ref().is_some_and(|patterns| {
            patterns.iter().all(|p| {
                ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                    .iter()
                    .any(|prefix| p.starts_with(prefix))
            })
        });
        if open.is_empty() || loopback_only {
            return None;
        }
        Some(format!(
            "\"off\" skips the consent page while {} and auth.allowed_redirect_uris allows redirects \
             beyond loopback: anyone could get an authorization code for a signed-in user sent to \
             their own site. Set registration = \"off\" (with [[auth.clients]]) and disable metadata \
             documents, or limit allowed_redirect_uris to loopback, or ask for consent",
            open.join(" and ")
        ))
    }

    fn provider_urls(&self) -> Vec<(&'static str, &str)> {
        fn url(value: Option<&String>) -> Option<&str> {
            value.map(String::as_str)
        }
        let found: Vec<(&'static str, Option<&str>)> = match self.provider.as_str() {
            "github" => vec![("base_url", url(self.github.as_ref().and_then(|s| s.base_url.as_ref())))],
            "google" => vec![("base_url", url(self.google.as_ref().and_then(|s| s.base_url.as_ref())))],
            "azure" => vec![("base_url", url(self.azure.as_ref().and_then(|s| s.base_url.as_ref())))],
            "auth0" => vec![("base_url", self.auth0.as_ref().map(|s| s.base_url.as_str()))],
            "keycloak" => vec![("base_url", self.keycloak.as_ref().map(|s| s.base_url.as_str()))],
            "okta" => vec![("base_url", self.okta.as_ref().map(|s| s.base_url.as_str()))],
            "cognito" => vec![("base_url", url(self.cognito.as_ref().and_then(|s| s.base_url.as_ref())))],
            "gitlab" => vec![("base_url", url(self.gitlab.as_ref().and_then(|s| s.base_url.as_ref())))],
            "discord" => vec![("base_url", url(self.discord.as_ref().and_then(|s| s.base_url.as_ref())))],
            "workos" => vec![("base_url", url(self.workos.as_ref().and_then(|s| s.base_url.as_ref())))],
            _ => Vec::new(),
        };
        found.into_iter().filter_map(|(key, value)| Some((key, value?))).collect()
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
        if !parsed.is_empty() && !parsed.contains(&GrantType::AuthorizationCode) {
            return Err("must include authorization_code".into());
        }
        Ok(parsed)
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
    /// Its redirect URIs (https, loopback http, private-use schemes).
    pub redirect_uris: Vec<String>,
    /// The name the consent page shows.
    pub name: Option<String>,
    /// The scopes it may have; absent: every supported scope.
    pub scopes: Option<Vec<String>>,
    /// `authorization_code` (required) and `refresh_token`; absent: both.
    #[serde(default)]
    pub grant_types: Vec<String>,
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

/// `[auth.oidc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's discovery document.
    pub discovery_url: String,
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
    /// `memory://`, `sqlite://PATH` (default `sqlite://.mcpgate/mcpgate.db`) or `redis://…`.
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

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the file (1-based).
    Line(usize),
    /// An environment variable.
    Env(String),
    /// Neither: a key that is missing, or the file as a whole.
    File,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it concerns (`auth.oidc.discovery_url`), empty for the file as a whole.
    pub key: String,
    /// Where.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Origin::Line(line) => write!(f, "line {line}: ")?,
            Origin::Env(var) => write!(f, "{var}: ")?,
            Origin::File => {}
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// A configuration file with the environment's overrides applied, keeping track of where
/// each key came from.
pub struct Source {
    text: String,
    env: HashMap<String, String>,
}

/// The sections every configuration needs, and what each says.
const REQUIRED_SECTIONS: [(&str, &str); 2] = [
    ("upstream", "the MCP server behind the gateway (url = \"http://…/mcp\" or command = [\"…\"])"),
    (
        "auth",
        "how callers sign in (client_id, client_secret_env and the provider's section; or mode = \"resource\")",
    ),
];

/// The prefix of override variables; `__` separates the path's parts.
const ENV_PREFIX: &str = "MCPGATE_";

impl Source {
    /// The file's text and the process environment.
    pub fn new(text: String, environment: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { text, env: environment.into_iter().collect() }
    }

    /// Parses, applies overrides and checks; every problem found, or the configuration.
    pub fn load(&self) -> Result<Config, Vec<Problem>> {
        let mut table: toml::Table = match toml::from_str(&self.text) {
            Ok(table) => table,
            Err(e) => {
                let origin = e.span().map(|s| Origin::Line(self.line_of(s.start))).unwrap_or(Origin::File);
                return Err(vec![Problem { key: String::new(), origin, message: e.message().to_owned() }]);
            }
        };
        let overridden = self.apply_overrides(&mut table)?;
        let missing: Vec<Problem> = REQUIRED_SECTIONS
            .iter()
            .filter(|(name, _)| !table.contains_key(*name))
            .map(|(name, what)| Problem {
                key: (*name).to_owned(),
                origin: Origin::File,
                message: format!("the [{name}] section is missing: {what}"),
            })
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            vec![self.problem_at(&path, e.inner().message(), &overridden)]
        })?;
        let problems = validate(&config);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems
                .into_iter()
                .map(|(key, message)| self.problem_at(&key, &message, &overridden))
                .collect())
        }
    }

    /// Applies `MCPGATE_A__B=value` as `a.b = value`: `true`/`false` as booleans, `[...]` as a
    /// TOML array, anything else as a string. Returns which keys came from which variable.
    fn apply_overrides(&self, table: &mut toml::Table) -> Result<HashMap<String, String>, Vec<Problem>> {
        let mut overridden = HashMap::new();
        let mut problems = Vec::new();
        let mut vars: Vec<_> =
            self.env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__")).collect();
        vars.sort();
        for (var, raw) in vars {
            let path: Vec<String> =
                var[ENV_PREFIX.len()..].split("__").map(str::to_ascii_lowercase).collect();
            let key = path.join(".");
            let value = match raw.trim() {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                array if array.starts_with('[') => {
                    match toml::from_str::<toml::Table>(&format!("v = {array}")) {
                        Ok(mut parsed) => parsed.remove("v").unwrap_or(toml::Value::Array(Vec::new())),
                        Err(e) => {
                            let message = format!("not a TOML array: {}", e.message());
                            problems.push(Problem { key, origin: Origin::Env(var.clone()), message });
                            continue;
                        }
                    }
                }
                _ => toml::Value::String(raw.clone()),
            };
            if insert_at(table, &path, value).is_err() {
                let message = "overrides a key whose parent is not a table".to_owned();
                problems.push(Problem { key, origin: Origin::Env(var.clone()), message });
                continue;
            }
            overridden.insert(key, var.clone());
        }
        if problems.is_empty() { Ok(overridden) } else { Err(problems) }
    }

    /// A problem at `key` (a dotted path, possibly empty), located in the environment or the
    /// file; for a missing key, its table's line.
    fn problem_at(&self, key: &str, message: &str, overridden: &HashMap<String, String>) -> Problem {
        // For a missing field the path ends at its table; make the key say which field.
        let field = between_backticks(message);
        let key = if key == "." { "" } else { key };
        let full_key = match field {
            Some(field) if message.starts_with("missing field") => {
                if key.is_empty() {
                    field.to_owned()
                } else {
                    format!("{key}.{field}")
                }
            }
            _ => key.to_owned(),
        };
        let mut message = message.to_owned();
        if message.starts_with("unknown field")
            && field.is_some_and(|f| f.contains("secret") && !f.ends_with("_env") && !f.ends_with("_file"))
        {
            message =
                format!("{message} (secrets are given by reference: use the key's `_env` or `_file` form)");
        }
        let origin = match overridden.get(&full_key).or_else(|| overridden.get(key)) {
            Some(var) => Origin::Env(var.clone()),
            None => {
                self.locate(&full_key).or_else(|| self.locate(key)).map(Origin::Line).unwrap_or(Origin::File)
            }
        };
        Problem { key: full_key, origin, message }
    }

    /// The line where `key` (dotted) is written in the file, if it is.
    fn locate(&self, key: &str) -> Option<usize> {
        let root = toml::de::DeTable::parse(&self.text).ok()?;
        let mut table = root.get_ref();
        let mut span = None;
        for part in key.split('.').filter(|p| !p.is_empty()) {
            let (name, value) = table.iter().find(|(name, _)| name.get_ref().as_ref() == part)?;
            span = Some(name.span());
            match value.get_ref() {
                toml::de::DeValue::Table(inner) => table = inner,
                _ => break,
            }
        }
        span.map(|s| self.line_of(s.start))
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
    }
}

/// Sets `value` at `path` in `table`, making the tables on the way; `Err` when a part of the
/// way is not a table.
fn insert_at(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            match table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
                toml::Value::Table(inner) => insert_at(inner, rest, value),
                _ => Err(()),
            }
        }
    }
}

fn between_backticks(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

/// The checks beyond the types: (key, message) for each problem.
fn validate(config: &Config) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: &str| problems.push((key.to_owned(), message.to_owned()));

    if !config.server.mcp_path.starts_with('/') {
        problem("server.mcp_path", "must start with /");
    }
    if let Some(url) = &config.server.public_url
        && let Err(why) = check_public_url(url)
    {
        problem("server.public_url", &why);
    }
    let upstream = &config.upstream;
    match (&upstream.url, &upstream.command) {
        (Some(_), Some(_)) => problem("upstream", "give either url or command, not both"),
        (None, None) => {
            problem("upstream", "give url (a Streamable HTTP server) or command (a stdio server)");
        }
        (Some(url), None) => {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                problem("upstream.url", "must be an http or https URL");
            }
        }
        (None, Some(command)) => {
            if command.first().is_none_or(|program| program.trim().is_empty()) {
                problem("upstream.command", "must name a program: [\"program\", \"arg\", …]");
            }
        }
    }
    if upstream.per_session && upstream.command.is_none() {
        problem("upstream.per_session", "applies only to a stdio command");
    }
    if upstream.command.is_some() && upstream.forward_provider_token && !upstream.per_session {
        problem(
            "upstream.forward_provider_token",
            "a stdio server gets the provider token in its environment, so it needs per_session = true",
        );
    }
    if upstream.max_children == 0 {
        problem("upstream.max_children", "must be at least 1");
    }
    if let Err(e) = config.trusted_proxies() {
        problem("server.trusted_proxies", &e.to_string());
    }
    if let Some(origins) = &config.server.allowed_origins
        && let Err(e) = AllowedOrigins::for_resource(&config.public_url()).and_then(|o| o.only(origins))
    {
        problem("server.allowed_origins", &e.to_string());
    }
    if let Err(e) = crate::host_check::AllowedHosts::new(
        &config.public_url(),
        &config.server.allowed_hosts,
        TrustedProxies::none(),
    ) {
        problem("server.allowed_hosts", &e);
    }
    if config.server.max_request_bytes < 1024 {
        problem("server.max_request_bytes", "must be at least 1024");
    }
    if let Err(e) = config.scope_implications() {
        problem("auth.scope_implications", &e);
    } else if let Err(e) = config.policy() {
        problem("policy.rules", &e);
    }

    let auth = &config.auth;
    match auth.mode {
        AuthMode::Proxy => {
            if auth.client_id.as_deref().is_none_or(str::is_empty) {
                problem("auth.client_id", "is required in proxy mode (our client id at the provider)");
            }
            match (&auth.client_secret_env, &auth.client_secret_file) {
                (None, None) => {
                    problem("auth.client_secret_env", "is required in proxy mode (or client_secret_file)");
                }
                (Some(_), Some(_)) => problem(
                    "auth.client_secret_env",
                    "give client_secret_env or client_secret_file, not both",
                ),
                _ => {}
            }
            match auth.provider.as_str() {
                "oidc" => match &auth.oidc {
                    None => problem("auth.oidc.discovery_url", "is required for provider = \"oidc\""),
                    Some(oidc) if url::Url::parse(&oidc.discovery_url).is_err() => {
                        problem("auth.oidc.discovery_url", "is not a URL");
                    }
                    Some(_) => {}
                },
                name if PROVIDERS.contains(&name) => {
                    for (key, url) in auth.provider_urls() {
                        if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                            problem(&format!("auth.{name}.{key}"), "must be an http(s) URL");
                        }
                    }
                    if name == "cognito"
                        && let Some(cognito) = &auth.cognito
                        && cognito.base_url.is_none()
                        && (cognito.region.is_none() || cognito.user_pool_id.is_none())
                    {
                        problem(
                            "auth.cognito",
                            "give region and user_pool_id (or base_url, the pool's issuer)",
                        );
                    }
                    if name == "workos" && auth.workos.as_ref().is_none_or(|w| w.base_url.is_none()) {
                        problem("auth.workos.base_url", "is required (the AuthKit domain)");
                    }
                    if !auth.has_section(name) && matches!(name, "auth0" | "keycloak" | "okta" | "cognito") {
                        problem(&format!("auth.{name}"), &format!("is required for provider = \"{name}\""));
                    }
                }
                other => problem(
                    "auth.provider",
                    &format!("unknown provider {other:?} (known: {})", PROVIDERS.join(", ")),
                ),
            }
            for section in PROVIDERS.iter().copied().filter(|s| auth.has_section(s)) {
                if auth.provider != section {
                    problem(&format!("auth.{section}"), &format!("applies only to provider = \"{section}\""));
                }
            }
            if auth.resource.is_some() {
                problem("auth.resource", "applies only to mode = \"resource\"");
            }
            if auth.unconfirmed_client_ttl_secs == 0 {
                problem("auth.unconfirmed_client_ttl_secs", "must be at least 1");
            }
            for (i, client) in auth.clients.iter().enumerate() {
                let key = |field: &str| format!("auth.clients[{i}].{field}");
                if client.client_id.trim().is_empty() {
                    problem(&key("client_id"), "must not be empty");
                }
                if client.client_secret_env.is_some() && client.client_secret_file.is_some() {
                    problem(
                        &key("client_secret_env"),
                        "give client_secret_env or client_secret_file, not both",
                    );
                }
                if client.redirect_uris.is_empty() {
                    problem(&key("redirect_uris"), "at least one redirect URI is required");
                }
                if let Err(e) = client.grant_types() {
                    problem(&key("grant_types"), &e);
                }
                if auth.clients[..i].iter().any(|other| other.client_id == client.client_id) {
                    problem(&key("client_id"), "another client has this id");
                }
            }
            if let Some(why) = auth.unguarded_consent_off() {
                problem("auth.consent", &why);
            }
        }
        AuthMode::Resource => match &auth.resource {
            None => problem(
                "auth.resource.jwks_uri",
                "is required in resource mode ([auth.resource] jwks_uri, issuer)",
            ),
            Some(resource) => {
                if url::Url::parse(&resource.jwks_uri).is_err() {
                    problem("auth.resource.jwks_uri", "is not a URL");
                }
                if resource.issuer.is_empty() {
                    problem("auth.resource.issuer", "must not be empty");
                }
            }
        },
    }
    let store = &config.store.url;
    if !["memory://", "sqlite://", "redis://", "rediss://"].iter().any(|scheme| store.starts_with(scheme)) {
        problem("store.url", "must be memory://, sqlite://PATH or redis://HOST:PORT");
    }
    if config.secrets.secret_env.is_empty() && config.secrets.secret_file.is_none() {
        problem("secrets.secret_env", "name the variable holding the root secret (or give secret_file)");
    }
    problems
}

/// The public URL is our issuer: https, or http on a loopback host; no query or fragment.
fn check_public_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must be https (http only on a loopback host)".into()),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:9000"

[upstream]
url = "http://127.0.0.1:3000/mcp"

[auth]
client_id = "abc"
client_secret_env = "IDP_SECRET"
scopes = ["mcp:read"]
consent = "remember"

[auth.oidc]
discovery_url = "https://accounts.example.com/.well-known/openid-configuration"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        Source::new(text.to_owned(), env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).load()
    }

    fn only_problem(text: &str, env: &[(&str, &str)]) -> Problem {
        let problems = load(text, env).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.into_iter().next().unwrap()
    }

    #[test]
    fn the_annotated_example_file_is_a_valid_configuration() {
        let example = include_str!("../../../mcpgate.example.toml");
        let config = load(example, &[]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.auth.client_secret_env.as_deref(), Some("MCPGATE_IDP_SECRET"));
        assert_eq!(config.public_url(), "http://127.0.0.1:8000");
    }

    #[test]
    fn a_good_file_loads_with_defaults() {
        let config = load(GOOD, &[]).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.server.mcp_path, "/mcp");
        assert_eq!(config.public_url(), "http://127.0.0.1:9000");
        assert_eq!(config.auth.consent, ConsentMode::Remember);
        assert_eq!(config.store.url, "sqlite://.mcpgate/mcpgate.db");
        assert_eq!(config.secrets.secret_env, "MCPGATE_SECRET");
        assert!(config.upstream.forward_identity && !config.upstream.forward_provider_token);
    }

    #[test]
    fn unknown_keys_wrong_types_and_missing_keys_name_the_key_and_line() {
        let unknown =
            only_problem(&GOOD.replace("consent = \"remember\"", "consent = \"remember\"\ncolour = 1"), &[]);
        assert_eq!((unknown.key.as_str(), &unknown.origin), ("auth.colour", &Origin::Line(13)), "{unknown}");

        let wrong = only_problem(&GOOD.replace("scopes = [\"mcp:read\"]", "scopes = \"mcp:read\""), &[]);
        assert_eq!((wrong.key.as_str(), &wrong.origin), ("auth.scopes", &Origin::Line(11)), "{wrong}");
        assert!(wrong.message.contains("sequence") || wrong.message.contains("array"), "{wrong}");

        let bad_mode = only_problem(&GOOD.replace("\"remember\"", "\"sometimes\""), &[]);
        assert_eq!(bad_mode.key, "auth.consent");
        assert!(bad_mode.message.contains("always, remember or off"), "{bad_mode}");

        let missing = only_problem("[auth]\nclient_id = \"x\"\n", &[]);
        assert_eq!(missing.key, "upstream", "{missing}");
        assert!(missing.message.contains("the [upstream] section is missing"), "{missing}");
        let empty = Source::new(String::new(), std::iter::empty()).load().unwrap_err();
        let keys: Vec<&str> = empty.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["upstream", "auth"], "an empty file names both sections");
        let missing_field = only_problem(
            "[upstream]\nurl = \"http://127.0.0.1:1/mcp\"\n[auth]\nmode = \"resource\"\n[auth.resource]\nissuer = \"x\"\n",
            &[],
        );
        assert_eq!(missing_field.key, "auth.resource.jwks_uri", "{missing_field}");

        let syntax = only_problem("[server\nlisten = 1", &[]);
        assert_eq!(syntax.origin, Origin::Line(1), "{syntax}");
    }

    #[test]
    fn a_provider_s_section_and_the_allow_list_are_read_and_checked() {
        let github = GOOD.replace(
            "consent = \"remember\"\n\n[auth.oidc]\ndiscovery_url = \"https://accounts.example.com/.well-known/openid-configuration\"",
            "provider = \"github\"\n\n[auth.github]\nbase_url = \"https://ghe.example.com\"\n\n\
             [auth.allowed_users]\nemail_domains = [\"example.com\"]\ngroups = [\"acme\"]",
        );
        let config = load(&github, &[]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.auth.github.unwrap().base_url.as_deref(), Some("https://ghe.example.com"));
        let allowed = AllowedUsers::from(&config.auth.allowed_users);
        assert_eq!(
            (allowed.email_domains, allowed.groups),
            (vec!["example.com".into()], vec!["acme".into()])
        );

        let problems = load(&GOOD.replace("consent", "provider = \"gitbucket\"\nconsent"), &[]).unwrap_err();
        let unknown = problems.iter().find(|p| p.key == "auth.provider").expect("the provider named");
        assert!(unknown.message.contains("github"), "the known ones are listed: {unknown}");
        let stray = load(&github.replace("provider = \"github\"", "provider = \"oidc\""), &[]).unwrap_err();
        let keys: Vec<&str> = stray.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["auth.oidc.discovery_url", "auth.github"]);
        let misplaced =
            load(&format!("{GOOD}\n[auth.github]\nbase_url = \"https://ghe.example.com\"\n"), &[])
                .unwrap_err();
        assert!(misplaced.iter().any(|p| p.key == "auth.github"), "{misplaced:?}");
        let bad_url = only_problem(&github.replace("https://ghe.example.com", "ghe.example.com"), &[]);
        assert_eq!(bad_url.key, "auth.github.base_url");
    }

    #[test]
    fn inline_secrets_are_refused_with_the_way_to_give_them() {
        let inline = only_problem(
            &GOOD.replace("client_secret_env = \"IDP_SECRET\"", "client_secret = \"hunter2\""),
            &[],
        );
        assert_eq!(inline.key, "auth.client_secret");
        assert!(inline.message.contains("_env"), "{inline}");
        assert!(!inline.to_string().contains("hunter2"), "the secret is not repeated");
    }

    #[test]
    fn environment_variables_override_any_key_and_are_named_in_problems() {
        let config = load(
            GOOD,
            &[
                ("MCPGATE_SERVER__LISTEN", "0.0.0.0:8443"),
                ("MCPGATE_AUTH__SCOPES", "[\"a\", \"b\"]"),
                ("MCPGATE_UPSTREAM__FORWARD_PROVIDER_TOKEN", "true"),
                (
                    "MCPGATE_AUTH__OIDC__DISCOVERY_URL",
                    "https://other.example/.well-known/openid-configuration",
                ),
                ("MCPGATE_SECRET", "not-an-override"),
            ],
        )
        .unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(config.auth.scopes, ["a", "b"]);
        assert!(config.upstream.forward_provider_token);
        assert!(config.auth.oidc.unwrap().discovery_url.starts_with("https://other.example"));

        let bad = only_problem(GOOD, &[("MCPGATE_SERVER__LISTEN", "not an address")]);
        assert_eq!(
            (bad.key.as_str(), &bad.origin),
            ("server.listen", &Origin::Env("MCPGATE_SERVER__LISTEN".into()))
        );
        let unknown = only_problem(GOOD, &[("MCPGATE_AUTH__COLOUR", "x")]);
        assert_eq!(unknown.origin, Origin::Env("MCPGATE_AUTH__COLOUR".into()), "{unknown}");
    }

    #[test]
    fn semantic_problems_are_all_reported_at_their_keys() {
        let text = r#"
[server]
public_url = "http://mcp.example.com"
mcp_path = "mcp"

[upstream]
url = "http://127.0.0.1:3000/mcp"
command = ["server"]

[auth]
provider = "oidc"

[store]
url = "postgres://db"
"#;
        let problems = load(text, &[]).unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.mcp_path",
                "server.public_url",
                "upstream",
                "auth.client_id",
                "auth.client_secret_env",
                "auth.oidc.discovery_url",
                "store.url"
            ],
            "{problems:?}"
        );
        assert_eq!(problems[1].origin, Origin::Line(3));
        assert_eq!(problems[6].origin, Origin::Line(14));
    }
}
