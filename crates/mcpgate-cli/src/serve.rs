//! `mcpgate serve --config FILE`: the gateway. The configured authorization (mcpgate's OAuth
//! proxy, or tokens of an existing authorization server) in front of the upstream MCP server,
//! on one listener, until Ctrl-C or SIGTERM (in-flight requests finish).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mcpgate::audit::JsonLinesAudit;
use mcpgate::authz::{AuthServer, ConfiguredClient, SettingsError};
use mcpgate::client_address::TrustedProxies;
use mcpgate::crypto::Keyring;
use mcpgate::policy::{Policy, PolicyLayer};
use mcpgate::redirect::RedirectAllowList;
use mcpgate::resource::BearerLayer;
use mcpgate::resource::{AllowedOrigins, ProtectedResource};
use mcpgate::store::Store;
use mcpgate::verify::{
    API_KEY_PREFIX, ApiKeyVerifier, CachedVerifier, IntrospectionVerifier, JwtVerifier, ScopeClaim,
    TokenRouter, TokenVerifier,
};
use mcpgate::{OAuthProxy, ProxyBuildError};
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use tower::Layer as _;

use crate::boot::{LateApp, retry_with_backoff, waiting_app};
use crate::config::{AcceptKind, AuthMode, Config};
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

/// What guards the MCP endpoint: mcpgate's own authorization server, or an existing one's tokens.
enum Guard {
    Proxy(Box<OAuthProxy>),
    /// The resource, and its verifier: a cache of the authorization server's tokens, and the
    /// API keys when there are some.
    Resource(Box<ProtectedResource>, Arc<dyn TokenVerifier>),
}

impl Guard {
    fn protect<S>(&self, mcp: S) -> Router
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
            Guard::Proxy(proxy) => proxy.protect(mcp),
            // The verifier caches what may be cached (see `guard`).
            Guard::Resource(resource, verifier) => {
                resource.protect_with(BearerLayer::uncached(resource, verifier.clone()), mcp)
            }
        }
    }

    /// The protected resource (its metadata URL goes into step-up challenges).
    fn resource(&self) -> &ProtectedResource {
        match self {
            Guard::Proxy(proxy) => proxy.resource(),
            Guard::Resource(resource, _) => resource,
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

async fn guard(
    config: &Config,
    mcp_url: &str,
    policy: &Policy,
) -> Result<(Guard, Option<Arc<dyn Store>>), ServeError> {
    let public_url = config.public_url();
    let upstream = &config.upstream;
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
            let token_exchange = match &upstream.token_exchange {
                None => None,
                Some(exchange) => Some(exchange.to_exchange(&auth.provider).map_err(|(field, e)| {
                    config_error("upstream.token_exchange", format!("{field}: {e}"))
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
            let proxy = proxy
                .mcp_path(&config.server.mcp_path)
                .upstream(provider)
                .keyring(keyring)
                .store(store.clone())
                .scopes(auth.scopes.clone())
                .step_up_scopes(step_up_scopes(config, policy))
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
                    e => config_error("server.public_url", e),
                })?;
            Ok((Guard::Proxy(Box::new(proxy)), Some(store)))
        }
        AuthMode::Resource => {
            let resource_config = config
                .auth
                .resource
                .as_ref()
                .ok_or_else(|| config_error("auth.resource.jwks_uri", "is required"))?;
            if upstream.forward_provider_token {
                return Err(config_error(
                    "upstream.forward_provider_token",
                    "needs mode = \"proxy\" (only mcpgate's own grants hold provider tokens)",
                ));
            }
            let mut verifier = JwtVerifier::builder()
                .jwks_uri(resource_config.jwks_uri.clone())
                .issuer(resource_config.issuer.clone())
                .audience(resource_config.audience.clone().unwrap_or_else(|| mcp_url.to_owned()));
            if let Some(client_id) = &resource_config.client_id {
                verifier = verifier.client(client_id.clone());
            }
            if let Some(claim) = &resource_config.scope_claim {
                verifier = verifier.scope_claim(ScopeClaim::Named(claim.clone()));
            }
            let verifier = verifier.build().map_err(|e| config_error("auth.resource", e))?;
            let mut resource =
                ProtectedResource::new(mcp_url).map_err(|e| config_error("server.public_url", e))?;
            if let Some(origins) = &config.server.allowed_origins {
                let allowed = AllowedOrigins::for_resource(mcp_url)
                    .and_then(|o| o.only(origins))
                    .map_err(|e| config_error("server.allowed_origins", e))?;
                resource = resource.allowed_origins(allowed);
            }
            let servers = if resource_config.authorization_servers.is_empty() {
                vec![resource_config.issuer.clone()]
            } else {
                resource_config.authorization_servers.clone()
            };
            for server in servers {
                resource = resource.authorization_server(server);
            }
            for scope in config.auth.scopes.iter().chain(&step_up_scopes(config, policy)) {
                resource = resource.scope_supported(scope.clone());
            }
            resource = resource.challenge_scopes(config.auth.scopes.clone());
            resource = resource.scope_implications(
                config.scope_implications().map_err(|e| config_error("auth.scope_implications", e))?,
            );
            // Its own cache, so that API keys (never cached) can sit beside it in one router.
            let jwt: Arc<dyn TokenVerifier> = Arc::new(CachedVerifier::new(verifier));
            let verifier: Arc<dyn TokenVerifier> = match api_keys(&config.auth)? {
                None => jwt,
                Some(keys) => Arc::new(
                    TokenRouter::new()
                        .prefix(API_KEY_PREFIX, Arc::new(keys))
                        .issuer(resource_config.issuer.clone(), jwt),
                ),
            };
            Ok((Guard::Resource(Box::new(resource), verifier), None))
        }
    }
}

/// The scopes a policy rule requires that `auth.scopes` does not grant from the start: offered
/// on demand (else no client could step up to them).
fn step_up_scopes(config: &Config, policy: &Policy) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in policy.required_scopes() {
        if !config.auth.scopes.iter().any(|s| s == scope) && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

/// The policy layer: `[policy]` enforced and `[audit]` written, for `guard`'s resource; step-ups
/// noted at mcpgate's own authorization server, when it has one.
fn policy_layer(config: &Config, policy: Policy, guard: &Guard) -> Result<PolicyLayer, ServeError> {
    let mut layer =
        PolicyLayer::new(policy, guard.resource()).max_request_bytes(config.server.max_request_bytes);
    if let Some(server) = guard.auth_server() {
        layer = layer.step_up_notices(Arc::new(server.clone()));
    }
    if let Some(file) = &config.audit.file {
        let audit =
            JsonLinesAudit::open(file).map_err(|e| config_error("audit.file", format!("{file}: {e}")))?;
        layer = layer.audit(Arc::new(audit));
    }
    Ok(layer)
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
    stdio: Option<StdioUpstream>,
    upstream_name: String,
}

/// Builds the app: the guard (with its provider), the upstream, health, metrics, host check.
async fn build(config: &Config, metrics: Option<&PrometheusHandle>) -> Result<Built, ServeError> {
    let public_url = config.public_url();
    let mcp_url = format!("{public_url}{}", config.server.mcp_path);
    let upstream = &config.upstream;
    // Compiled once: the authorization server offers its scopes, the layer enforces it.
    let policy = config.policy().map_err(|e| config_error("policy.rules", e))?;
    let (guard, ready_store) = guard(config, &mcp_url, &policy).await?;
    let user_tokens = UserTokens::new(
        guard.auth_server().cloned(),
        upstream.forward_provider_token,
        upstream.token_exchange.is_some(),
    );
    let policy = policy_layer(config, policy, &guard)?;

    let mut stdio = None;
    let (app, upstream_name) = match (&upstream.url, &upstream.command) {
        (Some(url), _) => {
            let uri = url.parse().map_err(|e| config_error("upstream.url", e))?;
            let forwarding = Forwarding {
                identity: upstream.forward_identity,
                user_tokens: user_tokens.clone(),
                forwarded: ForwardedHeaders::new(&public_url, trusted_proxies(config)),
            };
            let proxy = McpProxy::new(uri, Duration::from_secs(5), Duration::from_secs(60), forwarding);
            // A declared length over the limit is refused at once (413); a longer streamed body is
            // cut off where it passes the limit.
            let limited = tower::ServiceBuilder::new()
                .layer(tower_http::limit::RequestBodyLimitLayer::new(config.server.max_request_bytes))
                .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
                .service(proxy);
            (guard.protect(policy.layer(limited)), url.clone())
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
            stdio = Some(handle);
            (guard.protect(policy.layer(service)), command.join(" "))
        }
        (None, None) => return Err(config_error("upstream", "give url or command")),
    };
    let app = with_operations(config, app.merge(crate::health::routes(ready_store)), metrics)?;
    Ok(Built { app, stdio, upstream_name })
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
    let mcp_url = format!("{}{}", config.public_url(), config.server.mcp_path);
    // Installed first, so that the provider's discovery is measured too.
    let metrics = if config.server.metrics { crate::metrics::install() } else { None };
    let first = build(&config, metrics.as_ref()).await;
    let listener = crate::listener::NoDelayListener::bind(config.server.listen).await.map_err(|e| {
        ServeError::Runtime(format!("server.listen: cannot listen on {}: {e}", config.server.listen))
    })?;
    let stdio: Arc<std::sync::Mutex<Option<StdioUpstream>>> = Arc::default();
    let app = match first {
        Ok(built) => {
            tracing::info!(mcp = %mcp_url, upstream = %built.upstream_name, "mcpgate listening on {}", config.server.listen);
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
    println!("MCP endpoint: {mcp_url}");
    let served = crate::listener::serve(listener, app, shutdown_signal()).await;
    let stdio = stdio.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(stdio) = stdio {
        stdio.shutdown().await;
    }
    served.map_err(|e| ServeError::Runtime(e.to_string()))
}

/// Retries [`build`] until the provider answers, then serves the built app through `late`.
async fn build_when_reachable(
    config: Config,
    metrics: Option<PrometheusHandle>,
    late: LateApp,
    stdio: Arc<std::sync::Mutex<Option<StdioUpstream>>>,
) {
    let built =
        retry_with_backoff("reaching the identity provider", || build(&config, metrics.as_ref())).await;
    tracing::info!(upstream = %built.upstream_name, "the identity provider answered: serving");
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
