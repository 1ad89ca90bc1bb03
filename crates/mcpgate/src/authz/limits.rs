//! Rate limits on the endpoints strangers can call in bulk (E3): registration, authorization
//! and the token endpoint, per client address. Over the limit: 429 with `Retry-After` — an
//! OAuth-shaped JSON error for the API endpoints, a page for the browser's `/authorize`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::failure::Failure;
use crate::client_address::TrustedProxies;
use crate::ratelimit::{Admission, ClientRateLimit, RateLimit};

/// The limits per client address; `None` turns one off.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// `/register` (default: 20 a minute, 10 at once).
    pub register: Option<RateLimit>,
    /// `/authorize` and the consent form (default: 120 a minute, 30 at once).
    pub authorize: Option<RateLimit>,
    /// `/token` and `/revoke` (default: 600 a minute, 60 at once).
    pub token: Option<RateLimit>,
    /// Behind reverse proxies: their networks. A request whose peer is one of them is counted
    /// under the client address its `X-Forwarded-For` names (see [`crate::client_address`]);
    /// any other peer is the client, whatever it writes. Empty by default.
    pub trusted_proxies: TrustedProxies,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            register: Some(RateLimit::per_minute(20, 10)),
            authorize: Some(RateLimit::per_minute(120, 30)),
            token: Some(RateLimit::per_minute(600, 60)),
            trusted_proxies: TrustedProxies::none(),
        }
    }
}

impl RateLimits {
    /// No limits (benchmarks; deployments that limit in front of mcpgate).
    pub fn off() -> Self {
        Self { register: None, authorize: None, token: None, trusted_proxies: TrustedProxies::none() }
    }
}

/// The limiters of the three groups of endpoints.
pub(crate) struct EndpointLimits {
    pub register: Option<EndpointLimit>,
    pub authorize: Option<EndpointLimit>,
    pub token: Option<EndpointLimit>,
}

impl EndpointLimits {
    pub(crate) fn new(limits: &RateLimits) -> Self {
        let make = |limit: Option<RateLimit>, audience| {
            limit.map(|limit| EndpointLimit::new(limit, audience, limits.trusted_proxies.clone()))
        };
        Self {
            register: make(limits.register, Audience::Client),
            authorize: make(limits.authorize, Audience::Browser),
            token: make(limits.token, Audience::Client),
        }
    }
}

/// How a refusal is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// A browser: an HTML page.
    Browser,
    /// An OAuth client: JSON.
    Client,
}

/// One endpoint's limiter, for [`enforce`].
#[derive(Clone)]
pub(crate) struct EndpointLimit {
    limit: ClientRateLimit,
    audience: Audience,
}

impl EndpointLimit {
    pub(crate) fn new(limit: RateLimit, audience: Audience, trusted_proxies: TrustedProxies) -> Self {
        Self { limit: ClientRateLimit::new(limit, trusted_proxies), audience }
    }
}

/// Middleware: admits the request or answers 429.
///
/// A server run without connection info (`into_make_service_with_connect_info`) has no client
/// addresses: its requests are not limited — one bucket for everyone would let one client lock
/// out all — and a warning says so, once.
pub(crate) async fn enforce(State(limit): State<EndpointLimit>, request: Request, next: Next) -> Response {
    match limit.limit.check(&request) {
        Admission::Admitted => next.run(request).await,
        Admission::UnknownClient => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "rate limits are off: the server runs without connection info, so client addresses \
                     are unknown (serve with into_make_service_with_connect_info::<SocketAddr>())"
                );
            });
            next.run(request).await
        }
        Admission::TooMany { retry_after_secs } => {
            let browser = limit.audience == Audience::Browser;
            Failure::TooMany { browser, retry_after: retry_after_secs }.into_response()
        }
    }
}
