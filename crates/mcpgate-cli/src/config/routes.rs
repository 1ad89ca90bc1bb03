//! `[[routes]]`: several MCP servers behind one gateway, each at its own path, with its own
//! upstream, scopes, policy and forwarding — and `[upstream]`, the one-server form, as the route
//! at `server.mcp_path`. [`Config::routes`] is the one list the rest of the gateway reads.

use mcpgate::authz::RateLimit;

use super::policy::PolicyConfig;
use super::schema::{Config, RateLimitConfig, RouteAuth, UpstreamConfig};

/// One route as the gateway serves it, from `[[routes]]` or `[upstream]`.
#[derive(Debug, Clone)]
pub struct Route<'a> {
    /// Where problems with it are reported: `upstream` or `routes[N]`.
    pub key: String,
    /// Its path.
    pub path: &'a str,
    /// How callers are authenticated.
    pub auth: RouteAuth,
    /// Its scopes.
    pub scopes: &'a [String],
    /// Its name for people.
    pub name: Option<&'a str>,
    /// Its policy.
    pub policy: &'a PolicyConfig,
    /// Its requests per client address.
    pub rate_limit: RateLimit,
    /// Its upstream and forwarding.
    pub upstream: &'a UpstreamConfig,
}

impl Route<'_> {
    /// Whether it is served without authentication.
    pub fn is_public(&self) -> bool {
        self.auth == RouteAuth::None
    }
}

/// What a public route admits when it does not say.
const DEFAULT_RATE_LIMIT: RateLimitConfig = RateLimitConfig { per_minute: 600, burst: 60 };

impl Config {
    /// Every route: `[upstream]` (at `server.mcp_path`) first when there is one, then
    /// `[[routes]]` in order.
    pub fn routes(&self) -> Vec<Route<'_>> {
        let single = self.upstream.as_ref().map(|upstream| Route {
            key: "upstream".to_owned(),
            path: &self.server.mcp_path,
            auth: RouteAuth::Oauth,
            scopes: &self.auth.scopes,
            name: None,
            policy: &self.policy,
            rate_limit: DEFAULT_RATE_LIMIT.into(),
            upstream,
        });
        let listed = self.routes.iter().enumerate().map(|(i, route)| Route {
            key: format!("routes[{i}]"),
            path: &route.path,
            auth: route.auth,
            scopes: route.scopes.as_deref().unwrap_or(&self.auth.scopes),
            name: route.name.as_deref(),
            policy: route.policy.as_ref().unwrap_or(&self.policy),
            rate_limit: route.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT).into(),
            upstream: &route.upstream,
        });
        single.into_iter().chain(listed).collect()
    }
}
