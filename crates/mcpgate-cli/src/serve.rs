//! `mcpgate serve --config FILE`: the gateway. The configured authorization (mcpgate's OAuth
//! proxy, or tokens of an existing authorization server) in front of the upstream MCP server,
//! on one listener, until Ctrl-C or SIGTERM (in-flight requests finish).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mcpgate::audit::{AuditSink, JsonLinesAudit};
use mcpgate::authz::{AuthServer, ConfiguredClient, SettingsError};
use mcpgate::client_address::TrustedProxies;
use mcpgate::crypto::Keyring;
use mcpgate::policy::{Policy, PolicyLayer};
use mcpgate::redirect::RedirectAllowList;
use mcpgate::resource::BearerLayer;
use mcpgate::resource::{AllowedOrigins, ProtectedResource};
use mcpgate::store::Store;
use mcpgate::verify::{
    API_KEY_PREFIX, ApiKeyVerifier, CachedVerifier, IntrospectionVerifier, JwksCache, JwksCacheConfig,
    JwtVerifier, ScopeClaim, TokenRouter, TokenVerifier,
};
use mcpgate::{OAuthProxy, ProxyBuildError};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use tower::Layer as _;

use crate::boot::{LateApp, retry_with_backoff, waiting_app};
use crate::config::{AcceptKind, AuthMode, Config, Route};
use crate::exit::{BAD_CONFIG, RUNTIME_FAILURE, ServeError, config_error};
use crate::gateway::{Forwarding, McpProxy};
use crate::headers::ForwardedHeaders;
use crate::host_check::AllowedHosts;
use crate::stdio::{StdioSettings, StdioUpstream};
use crate::user_tokens::UserTokens;

/// Runs the gateway configured by `path`.
pub fn run(path: &Path, log_format: crate::LogFormat) -> ExitCode {
    let config = match crate::check::load(path) {
        Ok(config) => config,
        Err(problems) => {
            for problem in problems {
                eprintln!("{}: {problem}", path.display());
            }
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let runtime = match crate::server_runtime(log_format) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ServeError::Config { .. }) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(BAD_CONFIG)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(RUNTIME_FAILURE)
        }
    }
}

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
enum Guard {
    Proxy(Box<OAuthProxy>),
    Resource(Box<ResourceGuard>),
}

/// Resource mode: tokens of an existing authorization server, and the API keys.
struct ResourceGuard {
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
    fn router(&self) -> Router {
        match self {
            Guard::Proxy(proxy) => proxy.auth_server().router(),
            Guard::Resource(_) => Router::new(),
        }
    }

    /// The issuers a route's metadata names.
    fn authorization_servers(&self) -> Vec<String> {
        match self {
            Guard::Proxy(proxy) => vec![proxy.auth_server().issuer().to_owned()],
            Guard::Resource(guard) if guard.config.authorization_servers.is_empty() => {
                vec![guard.config.issuer.clone()]
            }
            Guard::Resource(guard) => guard.config.authorization_servers.clone(),
        }
    }

    /// `mcp` behind the bearer layer at `resource`, taking only tokens for it.
    fn protect<S>(&self, resource: &ProtectedResource, mcp: S) -> Result<Router, ServeError>
    where
        S: tower::Service<http::Request<axum::body::Body>, Error = std::convert::Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
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
    fn auth_server(&self) -> Option<&AuthServer> {
        match self {
            Guard::Proxy(proxy) => Some(proxy.auth_server()),
            Guard::Resource(..) => None,
        }
    }
}

/// A protected route as the guard needs it: where it is, its scopes and its step-up scopes.
struct GuardedRoute<'a> {
    route: &'a Route<'a>,
    step_ups: &'a [String],
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

async fn guard(
    config: &Config,
    routes: &[GuardedRoute<'_>],
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
            let store = mcpgate::store::open(&config.store.url)
                .await
                .map_err(|e| ServeError::Runtime(format!("store.url: {e}")))?;
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
                    settings.rate_limits.trusted_proxies = trusted_proxies(config);
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

/// The scopes `policy` requires that `scopes` (the route's) does not grant from the start:
/// offered on demand (else no client could step up to them).
fn step_up_scopes(scopes: &[String], policy: &Policy) -> Vec<String> {
    let mut step_ups: Vec<String> = Vec::new();
    for scope in policy.required_scopes() {
        if !scopes.iter().any(|s| s == scope) && !step_ups.iter().any(|s| s == scope) {
            step_ups.push(scope.to_owned());
        }
    }
    step_ups
}

/// The protected resource a route is: at `url`, naming `servers`, offering its scopes and
/// step-ups, its challenge naming its scopes; its metadata at the root too when it is the only
/// protected route.
fn route_resource(
    config: &Config,
    route: &Route<'_>,
    url: &str,
    servers: &[String],
    step_ups: &[String],
    alone: bool,
) -> Result<ProtectedResource, ServeError> {
    let mut resource = ProtectedResource::new(url).map_err(|e| config_error("server.public_url", e))?;
    if let Some(origins) = &config.server.allowed_origins {
        let allowed = AllowedOrigins::for_resource(url)
            .and_then(|o| o.only(origins))
            .map_err(|e| config_error("server.allowed_origins", e))?;
        resource = resource.allowed_origins(allowed);
    }
    for server in servers {
        resource = resource.authorization_server(server.clone());
    }
    for scope in route.scopes.iter().chain(step_ups) {
        resource = resource.scope_supported(scope.clone());
    }
    if let Some(name) = route.name {
        resource = resource.resource_name(name);
    }
    let baseline = route.scopes.iter().filter(|s| *s != "offline_access").cloned();
    Ok(resource
        .challenge_scopes(baseline.collect::<Vec<_>>())
        .scope_implications(
            config.scope_implications().map_err(|e| config_error("auth.scope_implications", e))?,
        )
        .metadata_at_root(alone))
}

/// A route's policy layer: its policy enforced for `resource` and written to `audit`; step-ups
/// noted at mcpgate's own authorization server, when it has one.
fn policy_layer(
    config: &Config,
    policy: Policy,
    resource: &ProtectedResource,
    server: Option<&AuthServer>,
    audit: Option<Arc<dyn AuditSink>>,
) -> PolicyLayer {
    let mut layer = PolicyLayer::new(policy, resource).max_request_bytes(config.server.max_request_bytes);
    if let Some(server) = server {
        layer = layer.step_up_notices(Arc::new(server.clone()));
    }
    if let Some(audit) = audit {
        layer = layer.audit(audit);
    }
    layer
}

/// `server.trusted_proxies` (checked when the configuration was loaded).
fn trusted_proxies(config: &Config) -> TrustedProxies {
    config.trusted_proxies().unwrap_or_default()
}

/// The environment variables a child must not inherit: mcpgate's own secrets and settings.
fn withheld_env(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|n| n.starts_with("MCPGATE_"))
        .collect();
    names.push(config.secrets.secret_env.clone());
    names.extend(config.auth.client_secret_env.clone());
    names
}

/// The gateway's app, built from the configuration.
struct Built {
    app: Router,
    stdio: Vec<StdioUpstream>,
    /// What each route serves, for the log.
    upstreams: String,
}

/// Builds the app: the guard (with its provider), every route with its upstream, health,
/// metrics, host check.
async fn build(config: &Config, metrics: Option<&PrometheusHandle>) -> Result<Built, ServeError> {
    let public_url = config.public_url();
    let implications = config.scope_implications().map_err(|e| config_error("auth.scope_implications", e))?;
    let routes = config.routes();
    // Compiled once: the authorization server offers its scopes, the layer enforces it.
    let policies = routes
        .iter()
        .map(|route| {
            let key = match route.key.as_str() {
                "upstream" => "policy.rules".to_owned(),
                key => format!("{key}.policy.rules"),
            };
            route.policy.compile(implications.clone()).map_err(|e| config_error(key.clone(), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let step_ups: Vec<Vec<String>> =
        routes.iter().zip(&policies).map(|(route, policy)| step_up_scopes(route.scopes, policy)).collect();
    let guarded: Vec<GuardedRoute<'_>> = routes
        .iter()
        .zip(&step_ups)
        .filter(|(route, _)| !route.is_public())
        .map(|(route, step_ups)| GuardedRoute { route, step_ups })
        .collect();
    let (guard, ready_store) = match guarded.is_empty() {
        true => (None, None),
        false => {
            let (guard, store) = guard(config, &guarded).await?;
            (Some(guard), store)
        }
    };
    let audit: Option<Arc<dyn AuditSink>> = match &config.audit.file {
        None => None,
        Some(file) => Some(Arc::new(
            JsonLinesAudit::open(file).map_err(|e| config_error("audit.file", format!("{file}: {e}")))?,
        )),
    };
    let servers = guard.as_ref().map(Guard::authorization_servers).unwrap_or_default();
    let mut app = guard.as_ref().map(Guard::router).unwrap_or_default();
    let mut stdio = Vec::new();
    let mut upstreams = Vec::new();
    for ((route, policy), step_ups) in routes.iter().zip(policies).zip(&step_ups) {
        let url = format!("{public_url}{}", route.path);
        let resource = route_resource(config, route, &url, &servers, step_ups, guarded.len() == 1)?;
        let server = guard.as_ref().and_then(Guard::auth_server);
        let policy = policy_layer(config, policy, &resource, server, audit.clone());
        let upstream = route.upstream;
        let user_tokens = UserTokens::new(
            server.cloned(),
            upstream.forward_provider_token,
            upstream.token_exchange.is_some(),
        );
        let mount = |service| mount(config, guard.as_ref(), route, &resource, service);
        let served = match (&upstream.url, &upstream.command) {
            (Some(upstream_url), _) => {
                let uri = upstream_url.parse().map_err(|e| config_error(format!("{}.url", route.key), e))?;
                let forwarding = Forwarding {
                    identity: upstream.forward_identity,
                    user_tokens,
                    forwarded: ForwardedHeaders::new(&public_url, trusted_proxies(config)),
                };
                let proxy = McpProxy::new(uri, Duration::from_secs(5), Duration::from_secs(60), forwarding);
                // A declared length over the limit is refused at once (413); a longer streamed body is
                // cut off where it passes the limit.
                let limited = tower::ServiceBuilder::new()
                    .layer(tower_http::limit::RequestBodyLimitLayer::new(config.server.max_request_bytes))
                    .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
                    .service(proxy);
                upstreams.push(format!("{} → {upstream_url}", route.path));
                mount(RouteService::new(policy.layer(limited)))?
            }
            (None, Some(command)) => {
                let host = url::Url::parse(&public_url).ok().and_then(|u| u.host_str().map(str::to_owned));
                let settings = StdioSettings {
                    command: command.clone(),
                    per_session: upstream.per_session,
                    max_children: upstream.max_children,
                    withheld_env: withheld_env(config),
                    identity: upstream.forward_identity,
                    user_tokens,
                    allowed_hosts: host.into_iter().chain(["localhost".into(), "127.0.0.1".into()]).collect(),
                    max_request_bytes: config.server.max_request_bytes,
                };
                let (handle, service) = StdioUpstream::new(settings);
                stdio.push(handle);
                upstreams.push(format!("{} → {}", route.path, command.join(" ")));
                mount(RouteService::new(policy.layer(service)))?
            }
            (None, None) => return Err(config_error(route.key.clone(), "give url or command")),
        };
        app = app.merge(served);
    }
    let app = with_operations(config, app.merge(crate::health::routes(ready_store)), metrics)?;
    Ok(Built { app, stdio, upstreams: upstreams.join(", ") })
}

/// One route's service, whatever its upstream: what [`mount`] puts behind its guards.
type RouteService = tower::util::BoxCloneSyncService<
    http::Request<axum::body::Body>,
    axum::response::Response,
    std::convert::Infallible,
>;

/// `service` at `route`'s path: behind the guard's bearer layer, or public.
fn mount(
    config: &Config,
    guard: Option<&Guard>,
    route: &Route<'_>,
    resource: &ProtectedResource,
    service: RouteService,
) -> Result<Router, ServeError> {
    if route.is_public() {
        return Ok(crate::public_route::serve(resource, route.rate_limit, trusted_proxies(config), service));
    }
    match guard {
        Some(guard) => guard.protect(resource, service),
        None => Err(config_error(route.key.clone(), "a protected route needs [auth]")),
    }
}

/// `app` with `/metrics` (and request metrics) when on, behind the `Host` check.
fn with_operations(
    config: &Config,
    mut app: Router,
    metrics: Option<&PrometheusHandle>,
) -> Result<Router, ServeError> {
    if let Some(handle) = metrics {
        app = app
            .merge(crate::metrics::routes(handle.clone()))
            .layer(axum::middleware::from_fn(crate::metrics::track));
    }
    let hosts =
        AllowedHosts::new(&config.public_url(), &config.server.allowed_hosts, trusted_proxies(config))
            .map_err(|e| config_error("server.allowed_hosts", e))?;
    Ok(app.layer(hosts.layer()))
}

async fn serve(config: Config) -> Result<(), ServeError> {
    let endpoints: Vec<String> =
        config.routes().iter().map(|route| format!("{}{}", config.public_url(), route.path)).collect();
    // Installed first, so that the provider's discovery is measured too.
    let metrics = if config.server.metrics { crate::metrics::install() } else { None };
    let first = build(&config, metrics.as_ref()).await;
    let listener = crate::listener::NoDelayListener::bind(config.server.listen).await.map_err(|e| {
        ServeError::Runtime(format!("server.listen: cannot listen on {}: {e}", config.server.listen))
    })?;
    let stdio: Arc<std::sync::Mutex<Vec<StdioUpstream>>> = Arc::default();
    let app = match first {
        Ok(built) => {
            tracing::info!(routes = %built.upstreams, "mcpgate listening on {}", config.server.listen);
            *stdio.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = built.stdio;
            built.app
        }
        Err(ServeError::ProviderUnavailable(why)) => {
            tracing::warn!(
                error = %why,
                "mcpgate listening on {}, answering 503 until its identity provider is reachable",
                config.server.listen
            );
            let late = LateApp::new(with_operations(&config, waiting_app(), metrics.as_ref())?);
            tokio::spawn(build_when_reachable(config.clone(), metrics.clone(), late.clone(), stdio.clone()));
            late.router()
        }
        Err(e) => return Err(e),
    };
    for endpoint in &endpoints {
        println!("MCP endpoint: {endpoint}");
    }
    let served = crate::listener::serve(listener, app, shutdown_signal()).await;
    let children = std::mem::take(&mut *stdio.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for child in children {
        child.shutdown().await;
    }
    served.map_err(|e| ServeError::Runtime(e.to_string()))
}

/// Retries [`build`] until the provider answers, then serves the built app through `late`.
async fn build_when_reachable(
    config: Config,
    metrics: Option<PrometheusHandle>,
    late: LateApp,
    stdio: Arc<std::sync::Mutex<Vec<StdioUpstream>>>,
) {
    let built =
        retry_with_backoff("reaching the identity provider", || build(&config, metrics.as_ref())).await;
    tracing::info!(routes = %built.upstreams, "the identity provider answered: serving");
    *stdio.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = built.stdio;
    late.replace(built.app);
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
