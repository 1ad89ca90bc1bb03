//! Rate limits on the endpoints strangers can call in bulk (E3): registration, authorization
//! and the token endpoint, per client address. Over the limit: 429 with `Retry-After` — an
//! OAuth-shaped JSON error for the API endpoints, a page for the browser's `/authorize`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};

use super::pages::error_page;
use crate::ratelimit::{RateLimit, RateLimiter};

/// The limits per client address; `None` turns one off.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// `/register` (default: 20 a minute, 10 at once).
    pub register: Option<RateLimit>,
    /// `/authorize` and the consent form (default: 120 a minute, 30 at once).
    pub authorize: Option<RateLimit>,
    /// `/token` and `/revoke` (default: 600 a minute, 60 at once).
    pub token: Option<RateLimit>,
    /// Behind a reverse proxy: the header it puts the client's address in (its last value is
    /// used, the one the proxy added). Without it, the peer address of the connection is the
    /// client — which behind a proxy is the proxy, so set this there.
    pub client_ip_header: Option<HeaderName>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            register: Some(RateLimit::per_minute(20, 10)),
            authorize: Some(RateLimit::per_minute(120, 30)),
            token: Some(RateLimit::per_minute(600, 60)),
            client_ip_header: None,
        }
    }
}

impl RateLimits {
    /// No limits (benchmarks; deployments that limit in front of mcpgate).
    pub fn off() -> Self {
        Self { register: None, authorize: None, token: None, client_ip_header: None }
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
            limit.map(|limit| EndpointLimit::new(limit, audience, limits.client_ip_header.clone()))
        };
        Self {
            register: make(limits.register, Audience::Client),
            authorize: make(limits.authorize, Audience::Browser),
            token: make(limits.token, Audience::Client),
        }
    }
}

/// How a refusal is shown.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Audience {
    /// A browser: an HTML page.
    Browser,
    /// An OAuth client: JSON.
    Client,
}

/// One endpoint's limiter, for [`enforce`].
#[derive(Clone)]
pub(crate) struct EndpointLimit {
    limiter: Arc<RateLimiter>,
    audience: Audience,
    client_ip_header: Option<HeaderName>,
}

impl EndpointLimit {
    pub(crate) fn new(limit: RateLimit, audience: Audience, client_ip_header: Option<HeaderName>) -> Self {
        Self { limiter: Arc::new(RateLimiter::new(limit, 100_000)), audience, client_ip_header }
    }

    /// Who is asking: the proxy's header when configured, else the connection's peer.
    fn client_key(&self, request: &Request) -> String {
        let from_header = self.client_ip_header.as_ref().and_then(|name| {
            let last = request.headers().get_all(name).iter().next_back()?.to_str().ok()?;
            last.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        let peer = || request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        match from_header.or_else(peer) {
            Some(ip) => ip.to_string(),
            // Served without connection info (in-process): one shared bucket.
            None => "unknown".to_owned(),
        }
    }
}

/// Middleware: admits the request or answers 429.
pub(crate) async fn enforce(State(limit): State<EndpointLimit>, request: Request, next: Next) -> Response {
    let Err(wait) = limit.limiter.check(&limit.client_key(&request)) else {
        return next.run(request).await;
    };
    let mut response = match limit.audience {
        Audience::Browser => {
            error_page(StatusCode::TOO_MANY_REQUESTS, "Too many requests. Wait a moment and try again.")
        }
        Audience::Client => {
            let body = serde_json::json!({"error": "temporarily_unavailable", "error_description": "too many requests"});
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
        }
    };
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
