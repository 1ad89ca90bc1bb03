//! What guards the protected routes: mcpgate's own authorization server (proxy mode: the
//! provider, the store, configured clients, API keys and other issuers), or an existing
//! authorization server's tokens (resource mode) — built once for every protected route, each
//! route's bearer layer taking only tokens for it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mcpgate::authz::{AuthServer, ConfiguredClient, SettingsError};
use mcpgate::crypto::Keyring;
use mcpgate::redirect::RedirectAllowList;
use mcpgate::resource::{BearerLayer, ProtectedResource};
use mcpgate::store::Store;
use mcpgate::verify::{
    API_KEY_PREFIX, ApiKeyVerifier, CachedVerifier, IntrospectionVerifier, JwksCache, JwksCacheConfig,
    JwtVerifier, ScopeClaim, TokenRouter, TokenVerifier,
};
use mcpgate::{OAuthProxy, ProxyBuildError};
use secrecy::SecretString;

use crate::config::{AcceptKind, AuthMode, Config, Route};
use crate::exit::{ServeError, config_error};

/// A secret from where the configuration says it is: an environment variable or a file.
fn read_secret(env: Option<&str>, file: Option<&str>, key: &'static str) -> Result<SecretString, ServeError> {
    let value = match (env, file) {
        (Some(var), _) => std::env::var(var).map_err(|_| config_error(key, format!("{var} is not set")))?,
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| config_error(key, format!("cannot read {file}: {e}")))?,
        (None, None) => return Err(config_error(key, "is required")),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(config_error(key, "the secret is empty"));
    }
    Ok(SecretString::from(value.to_owned()))
}

/// `[[auth.clients]]` as the library's configured clients, their secrets read.
fn configured_clients(auth: &crate::config::AuthConfig) -> Result<Vec<ConfiguredClient>, ServeError> {
    auth.clients
        .iter()
        .map(|client| {
            let client_secret = match (&client.client_secret_env, &client.client_secret_file) {
                (None, None) => None,
                (env, file) => {
                    Some(read_secret(env.as_deref(), file.as_deref(), "auth.clients.client_secret_env")?)
                }
            };
            Ok(ConfiguredClient {
                client_id: client.client_id.clone(),
                client_secret,
                keys: client.keys().map_err(|e| config_error("auth.clients.jwks", e))?,
                redirect_uris: client.redirect_uris.clone(),
                client_name: client.name.clone(),
                scope: client.scopes.as_ref().map(|scopes| scopes.join(" ")),
                grant_types: client.grant_types().map_err(|e| config_error("auth.clients.grant_types", e))?,
            })
        })
        .collect()
}

/// `[[auth.api_keys]]` (checked when the configuration was loaded), or `None` when there are none.
fn api_keys(auth: &crate::config::AuthConfig) -> Result<Option<ApiKeyVerifier>, ServeError> {
    if auth.api_keys.is_empty() {
        return Ok(None);
    }
    let keys = auth
        .api_keys
        .iter()
        .map(|entry| {
            entry.to_api_key().map_err(|(field, e)| config_error("auth.api_keys", format!("{field}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ApiKeyVerifier::new(keys).map(Some).map_err(|e| config_error("auth.api_keys", e))
}

/// `[[auth.accept]]` (checked when the configuration was loaded): each issuer's verifier, and
/// the introspection of opaque tokens.
fn accept_others(
    mut proxy: mcpgate::OAuthProxyBuilder,
    auth: &crate::config::AuthConfig,
) -> Result<mcpgate::OAuthProxyBuilder, ServeError> {
    for entry in &auth.accept {
        let kind = entry.kind().map_err(|(field, e)| config_error("auth.accept", format!("{field} {e}")))?;
        let scope_claim = entry.scope_claim.clone().map(ScopeClaim::Named);
        match kind {
            AcceptKind::Jwt { issuer, jwks_uri, audience } => {
                let mut verifier =
                    JwtVerifier::builder().jwks_uri(jwks_uri).issuer(issuer).audience(audience);
                if let Some(claim) = scope_claim {
                    verifier = verifier.scope_claim(claim);
                }
                let verifier = verifier.build().map_err(|e| config_error("auth.accept", e))?;
                proxy = proxy.accept_issuer(issuer, verifier);
            }
            AcceptKind::Introspection { url, client_id } => {
                let secret = read_secret(
                    entry.client_secret_env.as_deref(),
                    entry.client_secret_file.as_deref(),
                    "auth.accept.client_secret_env",
                )?;
                let mut verifier = IntrospectionVerifier::builder(url, client_id, secret);
                if let Some(claim) = scope_claim {
                    verifier = verifier.scope_claim(claim);
                }
                if let Some(audience) = &entry.audience {
                    verifier = verifier.audience(audience.clone());
                }
                proxy = match &entry.issuer {
                    Some(issuer) => proxy.accept_issuer(issuer, verifier.issuer(issuer.clone()).build()),
                    None => proxy.accept_opaque(verifier.build()),
                };
            }
        }
    }
    Ok(proxy)
}

/// What guards the protected routes: mcpgate's own authorization server, or an existing one's
/// tokens.
pub(crate) enum Guard {
    Proxy(Box<OAuthProxy>),
    Resource(Box<ResourceGuard>),
}

/// Resource mode: tokens of an existing authorization server, and the API keys.
pub(crate) struct ResourceGuard {
    config: crate::config::ResourceAuthConfig,
    /// The tokens' audience when `auth.resource.audience` fixes it (one protected route only);
    /// else each route's URL.
    audience: Option<String>,
    /// One key set for every route's verifier.
    jwks: Arc<JwksCache>,
    api_keys: Option<Arc<dyn TokenVerifier>>,
}

impl ResourceGuard {
    /// The verifier of the route at `url`: its own audience, its own cache of tokens.
    fn verifier(&self, url: &str) -> Result<Arc<dyn TokenVerifier>, ServeError> {
        let config = &self.config;
        let mut verifier = JwtVerifier::builder()
            .jwks_cache(self.jwks.clone())
            .issuer(config.issuer.clone())
            .audience(self.audience.clone().unwrap_or_else(|| url.to_owned()));
        if let Some(client_id) = &config.client_id {
            verifier = verifier.client(client_id.clone());
        }
        if let Some(claim) = &config.scope_claim {
            verifier = verifier.scope_claim(ScopeClaim::Named(claim.clone()));
        }
        let verifier = verifier.build().map_err(|e| config_error("auth.resource", e))?;
        // Its own cache, so that API keys (never cached) can sit beside it in one router.
        let jwt: Arc<dyn TokenVerifier> = Arc::new(CachedVerifier::new(verifier));
        Ok(match &self.api_keys {
            None => jwt,
            Some(keys) => Arc::new(
                TokenRouter::new().prefix(API_KEY_PREFIX, keys.clone()).issuer(config.issuer.clone(), jwt),
            ),
        })
    }
}

impl Guard {
    /// The authorization server's endpoints (proxy mode), to serve once beside the routes.
    pub(crate) fn router(&self) -> Router {
        match self {
            Guard::Proxy(proxy) => proxy.auth_server().router(),
            Guard::Resource(_) => Router::new(),
        }
    }

    /// The issuers a route's metadata names.
    pub(crate) fn authorization_servers(&self) -> Vec<String> {
        match self {
            Guard::Proxy(proxy) => vec![proxy.auth_server().issuer().to_owned()],
            Guard::Resource(guard) if guard.config.authorization_servers.is_empty() => {
                vec![guard.config.issuer.clone()]
            }
            Guard::Resource(guard) => guard.config.authorization_servers.clone(),
        }
    }

    /// `mcp` behind the bearer layer at `resource`, taking only tokens for it.
    pub(crate) fn protect<S: McpService>(
        &self,
        resource: &ProtectedResource,
        mcp: S,
    ) -> Result<Router, ServeError> {
        match self {
            Guard::Proxy(proxy) => {
                proxy.protect_resource(resource, mcp).map_err(|e| config_error("routes", e))
            }
            // The verifier caches what may be cached.
            Guard::Resource(guard) => Ok(resource
                .protect_with(BearerLayer::uncached(resource, guard.verifier(resource.resource())?), mcp)),
        }
    }

    /// Where `forward_provider_token` gets the user's provider tokens.
    pub(crate) fn auth_server(&self) -> Option<&AuthServer> {
        match self {
            Guard::Proxy(proxy) => Some(proxy.auth_server()),
            Guard::Resource(..) => None,
        }
    }
}

/// A route's MCP service, as the guards and the router take it: what every route's upstream
/// (HTTP or stdio, behind its policy) is.
pub(crate) trait McpService:
    tower::Service<
        http::Request<axum::body::Body>,
        Error = std::convert::Infallible,
        Response: axum::response::IntoResponse,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> McpService for S
where
    S: tower::Service<http::Request<axum::body::Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
}

/// A protected route as the guard needs it: where it is, its scopes and its step-up scopes.
pub(crate) struct GuardedRoute<'a> {
    pub route: &'a Route<'a>,
    pub step_ups: &'a [String],
}

/// Every scope of `routes` (and their step-ups), each once, in order.
fn scopes_of<'a>(lists: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in lists.flatten() {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}

/// The guard of `routes`; in proxy mode with its store (`kept` when its URL is unchanged).
pub(crate) async fn guard(
    config: &Config,
    routes: &[GuardedRoute<'_>],
    kept: Option<&Arc<dyn Store>>,
) -> Result<(Guard, Option<Arc<dyn Store>>), ServeError> {
    let public_url = config.public_url();
    match config.auth.mode {
        AuthMode::Proxy => {
            let auth = &config.auth;
            let secrets = &config.secrets;
            let keyring = match &secrets.secret_file {
                Some(file) => {
                    Keyring::from_file(Path::new(file)).map_err(|e| config_error("secrets.secret_file", e))?
                }
                None => Keyring::from_env(&secrets.secret_env)
                    .map_err(|e| config_error("secrets.secret_env", e))?,
            };
            let client_secret = read_secret(
                auth.client_secret_env.as_deref(),
                auth.client_secret_file.as_deref(),
                "auth.client_secret_env",
            )?;
            let clients = configured_clients(auth)?;
            // One downstream API per gateway (checked when the configuration was loaded).
            let exchange =
                routes.iter().find_map(|r| r.route.upstream.token_exchange.as_ref().map(|e| (r, e)));
            let token_exchange = match exchange {
                None => None,
                Some((r, exchange)) => Some(exchange.to_exchange(&auth.provider).map_err(|(field, e)| {
                    config_error(format!("{}.token_exchange", r.route.key), format!("{field}: {e}"))
                })?),
            };
            let provider = auth.upstream(client_secret).await?;
            let store = match kept {
                Some(store) => store.clone(),
                None => mcpgate::store::open(&config.store.url)
                    .await
                    .map_err(|e| ServeError::Runtime(format!("store.url: {e}")))?,
            };
            let allowed = match &auth.allowed_redirect_uris {
                None => RedirectAllowList::any(),
                Some(patterns) => RedirectAllowList::only(patterns.clone()),
            };
            if auth.client_metadata_documents.allow_private_addresses {
                tracing::warn!(
                    "auth.client_metadata_documents.allow_private_addresses is on: any client can make \
                     this gateway fetch from loopback and private addresses (for tests only)"
                );
            }
            let mut proxy = OAuthProxy::builder(&public_url);
            if let Some(origins) = &config.server.allowed_origins {
                proxy = proxy.allowed_origins(origins.clone());
            }
            if let Some(keys) = api_keys(auth)? {
                proxy = proxy.api_keys(keys);
            }
            proxy = accept_others(proxy, auth)?;
            // The first protected route at the MCP path, the others beside it.
            let (first, others) =
                routes.split_first().ok_or_else(|| config_error("routes", "none is protected"))?;
            proxy = proxy.mcp_path(first.route.path);
            for other in others {
                proxy = proxy.resource_path(other.route.path);
            }
            let proxy = proxy
                .upstream(provider)
                .keyring(keyring)
                .store(store.clone())
                .scopes(scopes_of(routes.iter().map(|r| r.route.scopes)))
                .step_up_scopes(scopes_of(routes.iter().map(|r| r.step_ups)))
                .scope_implications(
                    config.scope_implications().map_err(|e| config_error("auth.scope_implications", e))?,
                )
                .consent(auth.consent)
                .allowed_redirects(allowed)
                .configure(|settings| {
                    settings.registration = auth.registration;
                    settings.unconfirmed_client_ttl = Duration::from_secs(auth.unconfirmed_client_ttl_secs);
                    settings.clients = clients;
                    settings.enterprise_idps = auth.enterprise_idps.iter().map(Into::into).collect();
                    settings.token_exchange = token_exchange;
                    settings.rate_limits.trusted_proxies = config.trusted_proxies().unwrap_or_default();
                    settings.metadata_documents = auth.client_metadata_documents.into();
                    settings.allowed_users = (&auth.allowed_users).into();
                })
                .build()
                .map_err(|e| match e {
                    ProxyBuildError::Settings(e @ SettingsError::BadClient { .. }) => {
                        config_error("auth.clients", e)
                    }
                    ProxyBuildError::Settings(e @ SettingsError::BadEnterpriseIdp { .. }) => {
                        config_error("auth.enterprise_idps", e)
                    }
                    e @ (ProxyBuildError::IssuerTwice(_) | ProxyBuildError::OpaqueTwice) => {
                        config_error("auth.accept", e)
                    }
                    e @ ProxyBuildError::PathTwice(_) => config_error("routes", e),
                    e => config_error("server.public_url", e),
                })?;
            Ok((Guard::Proxy(Box::new(proxy)), Some(store)))
        }
        AuthMode::Resource => {
            let resource_config = config
                .auth
                .resource
                .clone()
                .ok_or_else(|| config_error("auth.resource.jwks_uri", "is required"))?;
            if let Some(route) = routes.iter().find(|r| r.route.upstream.forward_provider_token) {
                return Err(config_error(
                    format!("{}.forward_provider_token", route.route.key),
                    "needs mode = \"proxy\" (only mcpgate's own grants hold provider tokens)",
                ));
            }
            let jwks = Arc::new(JwksCache::new(resource_config.jwks_uri.clone(), JwksCacheConfig::default()));
            let api_keys = api_keys(&config.auth)?.map(|keys| Arc::new(keys) as Arc<dyn TokenVerifier>);
            let guard = ResourceGuard {
                audience: resource_config.audience.clone(),
                config: resource_config,
                jwks,
                api_keys,
            };
            Ok((Guard::Resource(Box::new(guard)), None))
        }
    }
}
