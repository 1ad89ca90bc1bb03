//! Starting while the identity provider is down: the gateway listens at once, answers
//! `/healthz` 200 and `/readyz` 503, answers every other route with a clear 503, and retries
//! building itself (its provider's discovery first) with backoff; once that succeeds the full
//! app takes over on the same listener — no restart.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, Request, StatusCode};

/// The first wait between attempts; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// What the 503 answers ask clients to wait, in seconds.
const RETRY_AFTER_SECS: u32 = 5;

/// The app served until the real one is built: health answers, everything else is 503.
pub fn waiting_app() -> Router {
    let not_ready = || async {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the identity provider is not reachable yet\n")
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(not_ready))
        .fallback(|| async { waiting_response() })
}

/// 503 in the OAuth error shape (it is what MCP clients parse), with `Retry-After`.
fn waiting_response() -> Response {
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": "mcpgate is starting: its identity provider is not reachable yet; try again shortly",
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An app that can be replaced while it serves: each request goes to the app current when it
/// arrived. It is the listener's service itself (no router around it).
#[derive(Clone)]
pub struct LateApp<S> {
    current: Arc<RwLock<S>>,
}

impl<S> LateApp<S> {
    /// Serving `initial` until [`replace`](Self::replace)d.
    pub fn new(initial: S) -> Self {
        Self { current: Arc::new(RwLock::new(initial)) }
    }

    /// Serves `app` from the next request on.
    pub fn replace(&self, app: S) {
        // A poisoned lock only means a panic elsewhere mid-write; the app in it is whole.
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = app;
    }
}

impl<S> tower::Service<Request<Body>> for LateApp<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let mut app = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        // The apps served are always ready (a router's `poll_ready`, and the layers around it
        // pass it on): called directly, no boxed future.
        app.call(request)
    }
}

/// Calls `attempt` until it succeeds, waiting 1 s, 2 s, 4 s … (at most 30 s) between tries;
/// each failure is logged with `what`.
pub async fn retry_with_backoff<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mut wait = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(wait).await;
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait.saturating_mul(2).min(MAX_BACKOFF), "{what} failed");
                wait = wait.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    use super::*;

    async fn get(app: &LateApp<Router>, path: &str) -> (StatusCode, Option<HeaderValue>) {
        let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        (response.status(), response.headers().get("retry-after").cloned())
    }

    #[tokio::test]
    async fn waiting_then_replaced_without_a_new_listener() {
        let late = LateApp::new(waiting_app());
        let app = late.clone();
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        let (status, retry_after) = get(&app, "/.well-known/oauth-authorization-server").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.unwrap(), "5");
        late.replace(Router::new().route("/readyz", axum::routing::get(|| async { "ready" })));
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK, "the same router now serves the new app");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_to_thirty_seconds() {
        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let value = retry_with_backoff("test", || {
            calls += 1;
            let n = calls;
            async move { if n < 8 { Err(format!("attempt {n}")) } else { Ok(n) } }
        })
        .await;
        assert_eq!(value, 8);
        // 1 + 2 + 4 + 8 + 16 + 30 + 30 + 30 seconds.
        assert_eq!(started.elapsed(), Duration::from_secs(121));
    }
}
