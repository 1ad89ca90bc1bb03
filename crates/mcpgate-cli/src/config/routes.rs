//! `[[routes]]`: several MCP servers behind one gateway, each at its own path, with its own
//! upstream, scopes, policy and forwarding — and `[upstream]`, the one-server form, as the route
//! at `server.mcp_path`. [`Config::routes`] is the one list the rest of the gateway reads.

use mcpgate::authz::RateLimit;
use serde::Deserialize;

use super::policy::PolicyConfig;
use super::schema::{Config, UpstreamConfig};

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

impl From<RateLimitConfig> for RateLimit {
    fn from(limit: RateLimitConfig) -> Self {
        RateLimit::per_minute(limit.per_minute, limit.burst)
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
    pub policy: Option<PolicyConfig>,
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
