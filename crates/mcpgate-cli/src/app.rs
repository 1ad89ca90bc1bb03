//! The gateway's app, built from its configuration: the guard, every route with its upstream
//! (HTTP or stdio), its resource, policy and audit, and health, metrics and the `Host` check
//! around them. What a rebuild (SIGHUP) should not lose — the store, the stdio upstreams of
//! unchanged routes with their sessions and processes — is [`Kept`] from one build to the next.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mcpgate::audit::{AuditSink, JsonLinesAudit};
use mcpgate::authz::AuthServer;
use mcpgate::client_address::TrustedProxies;
use mcpgate::policy::{Policy, PolicyLayer};
use mcpgate::resource::{AllowedOrigins, ProtectedResource};
use mcpgate::scope::ScopeImplications;
use mcpgate::store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::Layer as _;

use crate::config::{Config, Route, UpstreamConfig};
use crate::exit::{ServeError, config_error};
use crate::gateway::{Forwarding, McpProxy};
use crate::guard::{Guard, GuardedRoute, McpService, guard};
use crate::headers::ForwardedHeaders;
use crate::host_check::{AllowedHosts, HostCheck};
use crate::stdio::{StdioService, StdioSettings, StdioUpstream};
use crate::user_tokens::UserTokens;

/// What outlives a rebuild when the configuration keeps it: the store (same URL), and the stdio
/// upstream of each route whose path and upstream settings — and the gateway settings its
/// processes see — are unchanged: its sessions and processes go on (with the new configuration's
/// source of user tokens).
#[derive(Clone, Default)]
pub(crate) struct Kept {
    store: Option<(String, Arc<dyn Store>)>,
    stdio: Vec<KeptStdio>,
}

#[derive(Clone)]
struct KeptStdio {
    made_of: StdioMadeOf,
    handle: StdioUpstream,
    service: StdioService,
}

/// Everything a stdio upstream was made from but the user tokens (renewed in place): the same
/// again means the same upstream.
#[derive(Clone, PartialEq)]
struct StdioMadeOf {
    path: String,
    upstream: UpstreamConfig,
    withheld_env: Vec<String>,
    allowed_hosts: Vec<String>,
    max_request_bytes: usize,
}

impl Kept {
    /// The stdio upstreams here and not in `next`: to stop once their requests are done.
    pub(crate) fn dropped_by(&self, next: &Kept) -> Vec<StdioUpstream> {
        self.stdio
            .iter()
            .filter(|old| !next.stdio.iter().any(|new| new.handle.same(&old.handle)))
            .map(|old| old.handle.clone())
            .collect()
    }

    /// Every stdio upstream, to stop at shutdown.
    pub(crate) fn stdio(&self) -> Vec<StdioUpstream> {
        self.stdio.iter().map(|kept| kept.handle.clone()).collect()
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
    implications: &ScopeImplications,
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
        .scope_implications(implications.clone())
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
pub(crate) struct Built {
    pub app: Served,
    /// What the next build may keep.
    pub kept: Kept,
    /// What each route serves, for the log.
    pub upstreams: String,
}

/// Builds the app: the guard (with its provider), every route with its upstream, health,
/// metrics, host check; reusing what `previous` kept where the configuration allows.
pub(crate) async fn build(
    config: &Config,
    metrics: Option<&PrometheusHandle>,
    previous: &Kept,
) -> Result<Built, ServeError> {
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
    let kept_store =
        previous.store.as_ref().filter(|(url, _)| *url == config.store.url).map(|(_, store)| store);
    let (guard, ready_store) = match guarded.is_empty() {
        true => (None, None),
        false => {
            let (guard, store) = guard(config, &guarded, kept_store).await?;
            (Some(guard), store)
        }
    };
    let mut kept =
        Kept { store: ready_store.clone().map(|store| (config.store.url.clone(), store)), stdio: Vec::new() };
    let audit: Option<Arc<dyn AuditSink>> = match &config.audit.file {
        None => None,
        Some(file) => Some(Arc::new(
            JsonLinesAudit::open(file).map_err(|e| config_error("audit.file", format!("{file}: {e}")))?,
        )),
    };
    let servers = guard.as_ref().map(Guard::authorization_servers).unwrap_or_default();
    let mut app = guard.as_ref().map(Guard::router).unwrap_or_default();
    let mut upstreams = Vec::new();
    for ((route, policy), step_ups) in routes.iter().zip(policies).zip(&step_ups) {
        let url = format!("{public_url}{}", route.path);
        let resource =
            route_resource(config, route, &url, &servers, step_ups, &implications, guarded.len() == 1)?;
        let server = guard.as_ref().and_then(Guard::auth_server);
        let policy = policy_layer(config, policy, &resource, server, audit.clone());
        let upstream = route.upstream;
        let user_tokens = UserTokens::new(
            server.cloned(),
            upstream.forward_provider_token,
            upstream.token_exchange.is_some(),
        );
        let served = match (&upstream.url, &upstream.command) {
            (Some(upstream_url), _) => {
                let uri = upstream_url.parse().map_err(|e| config_error(format!("{}.url", route.key), e))?;
                let forwarding = Forwarding {
                    identity: upstream.forward_identity,
                    user_tokens,
                    forwarded: ForwardedHeaders::new(&public_url, trusted_proxies(config)),
                };
                let proxy = McpProxy::new(uri, Duration::from_secs(5), Duration::from_secs(60), forwarding)
                    .map_err(|e| config_error(format!("{}.url", route.key), e))?;
                // A declared length over the limit is refused at once (413); a longer streamed body is
                // cut off where it passes the limit.
                let limited = tower::ServiceBuilder::new()
                    .layer(tower_http::limit::RequestBodyLimitLayer::new(config.server.max_request_bytes))
                    .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
                    .service(proxy);
                upstreams.push(format!("{} → {upstream_url}", route.path));
                mount(config, guard.as_ref(), route, &resource, policy.layer(limited))?
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
                let made_of = StdioMadeOf {
                    path: route.path.to_owned(),
                    upstream: upstream.clone(),
                    withheld_env: settings.withheld_env.clone(),
                    allowed_hosts: settings.allowed_hosts.clone(),
                    max_request_bytes: settings.max_request_bytes,
                };
                let (handle, service) = match previous.stdio.iter().find(|k| k.made_of == made_of) {
                    Some(k) => {
                        k.handle.renew_user_tokens(settings.user_tokens);
                        (k.handle.clone(), k.service.clone())
                    }
                    None => StdioUpstream::new(settings),
                };
                kept.stdio.push(KeptStdio { made_of, handle, service: service.clone() });
                upstreams.push(format!("{} → {}", route.path, command.join(" ")));
                mount(config, guard.as_ref(), route, &resource, policy.layer(service))?
            }
            (None, None) => return Err(config_error(route.key.clone(), "give url or command")),
        };
        app = app.merge(served);
    }
    let app = with_operations(config, app.merge(crate::health::routes(ready_store)), metrics)?;
    Ok(Built { app, kept, upstreams: upstreams.join(", ") })
}

/// `service` at `route`'s path: behind the guard's bearer layer, or public.
fn mount<S: McpService>(
    config: &Config,
    guard: Option<&Guard>,
    route: &Route<'_>,
    resource: &ProtectedResource,
    service: S,
) -> Result<Router, ServeError> {
    if route.is_public() {
        return Ok(crate::public_route::serve(resource, route.rate_limit, trusted_proxies(config), service));
    }
    match guard {
        Some(guard) => guard.protect(resource, service),
        None => Err(config_error(route.key.clone(), "a protected route needs [auth]")),
    }
}

/// What the listener serves: the routes behind the `Host` check. The check wraps the router
/// rather than each of its routes (`Router::layer`), which would clone one more boxed service
/// on every request.
pub(crate) type Served = HostCheck<Router>;

/// `app` with `/metrics` (and request metrics) when on, behind the `Host` check.
pub(crate) fn with_operations(
    config: &Config,
    mut app: Router,
    metrics: Option<&PrometheusHandle>,
) -> Result<Served, ServeError> {
    if let Some(handle) = metrics {
        app = crate::metrics::serve(app, handle.clone());
    }
    let hosts =
        AllowedHosts::new(&config.public_url(), &config.server.allowed_hosts, trusted_proxies(config))
            .map_err(|e| config_error("server.allowed_hosts", e))?;
    Ok(hosts.layer().layer(app))
}
