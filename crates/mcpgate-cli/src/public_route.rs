//! A public route (`auth = "none"`): served without a token, yet behind the same guards as the
//! others but the bearer layer — the `Origin` check (DNS rebinding), a rate limit per client
//! address, the route's policy (the caller is [`Principal::anonymous`]) and the audit trail.
//! Credentials a client sends are not read; the proxy drops them before the upstream.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use mcpgate::Principal;
use mcpgate::authz::RateLimit;
use mcpgate::client_address::TrustedProxies;
use mcpgate::ratelimit::{Admission, ClientRateLimit};
use mcpgate::resource::ProtectedResource;

use crate::guard::McpService;

/// `service` at `resource`'s path, public: Origin-checked, rate-limited by `limit` per client
/// address (behind `trusted_proxies`, the address they forward), every caller anonymous.
pub fn serve<S: McpService>(
    resource: &ProtectedResource,
    limit: RateLimit,
    trusted_proxies: TrustedProxies,
    service: S,
) -> Router {
    let limit = ClientRateLimit::new(limit, trusted_proxies);
    let guarded = tower::ServiceBuilder::new()
        .layer(resource.origin_layer())
        .layer(axum::middleware::from_fn_with_state(limit, anonymous))
        .service(service);
    Router::new().route_service(resource.path(), guarded)
}

/// Admits the request as [`Principal::anonymous`], or answers 429 with `Retry-After`.
async fn anonymous(State(limit): State<ClientRateLimit>, mut request: Request, next: Next) -> Response {
    // Without connection info (in-process tests) there is no address to count by.
    if let Admission::TooMany { retry_after_secs } = limit.check(&request) {
        let mut response =
            crate::gateway::json_rpc_error(StatusCode::TOO_MANY_REQUESTS, "too many requests: slow down");
        response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        return response;
    }
    request.extensions_mut().insert(Principal::anonymous());
    next.run(request).await
}
