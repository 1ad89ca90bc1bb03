//! A public route (`auth = "none"`): served without a token, yet behind the same guards as the
//! others but the bearer layer — the `Origin` check (DNS rebinding), a rate limit per client
//! address, the route's policy (the caller is [`Principal::anonymous`]) and the audit trail.
//! Credentials a client sends are not read; the proxy drops them before the upstream.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use mcpgate::Principal;
use mcpgate::authz::RateLimit;
use mcpgate::client_address::{TrustedProxies, client_address, rate_limit_key};
use mcpgate::ratelimit::RateLimiter;
use mcpgate::resource::ProtectedResource;

use crate::guard::McpService;

/// The limiter of one public route.
#[derive(Clone)]
struct Limit {
    limiter: Arc<RateLimiter>,
    trusted_proxies: TrustedProxies,
}

/// `service` at `resource`'s path, public: Origin-checked, rate-limited by `limit` per client
/// address (behind `trusted_proxies`, the address they forward), every caller anonymous.
pub fn serve<S: McpService>(
    resource: &ProtectedResource,
    limit: RateLimit,
    trusted_proxies: TrustedProxies,
    service: S,
) -> Router {
    let limit = Limit { limiter: Arc::new(RateLimiter::new(limit, 100_000)), trusted_proxies };
    let guarded = tower::ServiceBuilder::new()
        .layer(resource.origin_layer())
        .layer(axum::middleware::from_fn_with_state(limit, anonymous))
        .service(service);
    Router::new().route_service(resource.path(), guarded)
}

/// Admits the request as [`Principal::anonymous`], or answers 429 with `Retry-After`.
async fn anonymous(State(limit): State<Limit>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    // Without connection info (in-process tests) there is no address to count by.
    if let Some(address) = client_address(&limit.trusted_proxies, peer, request.headers())
        && let Err(wait) = limit.limiter.check(&rate_limit_key(address))
    {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return too_many(seconds);
    }
    request.extensions_mut().insert(Principal::anonymous());
    next.run(request).await
}

/// 429 with a JSON-RPC-shaped body (the request's id is not read here).
fn too_many(retry_after: u64) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": null,
        "error": {"code": -32000, "message": "too many requests: slow down"},
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(http::header::RETRY_AFTER, value);
    }
    response
}
