//! Session binding (A11): an MCP session belongs to the identity that created it. A request
//! that presents a session id created by another identity — or one this layer never saw
//! created — is answered as if the session did not exist (404), so that session ids are
//! neither shareable nor probeable, and an honest client simply starts a new session.
//!
//! Sits inside the [`BearerLayer`](super::BearerLayer): it reads the verified [`Principal`]
//! from the request extensions.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::{Method, Request, StatusCode};
use moka::sync::Cache;
use serde_json::json;
use tower::{Layer, Service};

use crate::Principal;

/// The MCP Streamable HTTP session header.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Who a session belongs to: the same user through the same client, from the same issuer.
#[derive(Clone, PartialEq, Eq, Debug)]
struct SessionOwner {
    issuer: Option<String>,
    subject: String,
    client_id: Option<String>,
}

impl From<&Principal> for SessionOwner {
    fn from(p: &Principal) -> Self {
        Self {
            issuer: p.issuer().map(str::to_owned),
            subject: p.subject().to_owned(),
            client_id: p.client_id().map(str::to_owned),
        }
    }
}

/// Binds MCP session ids to the identity that created them.
#[derive(Clone)]
pub struct SessionBindingLayer {
    owners: Cache<String, SessionOwner>,
}

impl std::fmt::Debug for SessionBindingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBindingLayer").field("sessions", &self.owners.entry_count()).finish()
    }
}

impl Default for SessionBindingLayer {
    /// Up to 100,000 sessions, each forgotten after 24 hours without a request.
    fn default() -> Self {
        Self::new(100_000, Duration::from_secs(24 * 3600))
    }
}

impl SessionBindingLayer {
    /// Remembers up to `capacity` sessions, each until `idle` passes without a request.
    pub fn new(capacity: u64, idle: Duration) -> Self {
        Self { owners: Cache::builder().max_capacity(capacity).time_to_idle(idle).build() }
    }
}

impl<S> Layer<S> for SessionBindingLayer {
    type Service = SessionBinding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBinding { inner, owners: self.owners.clone() }
    }
}

/// The service made by [`SessionBindingLayer`].
#[derive(Clone)]
pub struct SessionBinding<S> {
    inner: S,
    owners: Cache<String, SessionOwner>,
}

impl<S> std::fmt::Debug for SessionBinding<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBinding").finish_non_exhaustive()
    }
}

fn session_not_found() -> Response {
    let body =
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32001, "message": "Session not found"}});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

impl<S, B> Service<Request<B>> for SessionBinding<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut inner = super::take_ready(&mut self.inner);
        let owners = self.owners.clone();
        Box::pin(async move {
            // Without a principal there is no one to bind to: the bearer layer must be outside.
            // Its owner is made only when a session is involved (not on a stateless request).
            let Some(principal) = request.extensions().get::<Principal>().cloned() else {
                return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            };
            let presented =
                request.headers().get(SESSION_HEADER).map(|v| v.to_str().map(str::to_owned)).transpose();
            let presented = match presented {
                Ok(presented) => presented,
                Err(_) => return Ok(session_not_found()),
            };
            if let Some(id) = &presented
                && owners.get(id).is_none_or(|bound| bound != SessionOwner::from(&principal))
            {
                tracing::debug!("refused a session id not created by this identity");
                return Ok(session_not_found());
            }
            let ends_session = request.method() == Method::DELETE;
            let response = inner.call(request).await?.into_response();
            match presented {
                Some(id) if ends_session && response.status().is_success() => owners.invalidate(&id),
                Some(_) => {}
                None => {
                    let created = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok());
                    if let Some(id) = created {
                        owners.insert(id.to_owned(), SessionOwner::from(&principal));
                    }
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    /// Creates session "s-1" on a request without one; echoes 200 otherwise.
    async fn upstream(request: Request<Body>) -> Result<Response, Infallible> {
        let mut response = StatusCode::OK.into_response();
        if !request.headers().contains_key(SESSION_HEADER) {
            response.headers_mut().insert(SESSION_HEADER, "s-1".parse().unwrap());
        }
        Ok(response)
    }

    fn request(who: Option<&str>, session: Option<&str>, method: Method) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri("/mcp");
        if let Some(session) = session {
            builder = builder.header(SESSION_HEADER, session);
        }
        let mut request = builder.body(Body::empty()).unwrap();
        if let Some(who) = who {
            request.extensions_mut().insert(Principal::new(who).with_client_id("c"));
        }
        request
    }

    #[tokio::test]
    async fn a_session_answers_only_its_creator() {
        let layer = SessionBindingLayer::default();
        let svc = layer.layer(tower::service_fn(upstream));
        let status = |r: Response| r.status();

        let created = svc.clone().oneshot(request(Some("alice"), None, Method::POST)).await.unwrap();
        assert_eq!(created.headers()[SESSION_HEADER], "s-1");
        let alice = svc.clone().oneshot(request(Some("alice"), Some("s-1"), Method::POST)).await.unwrap();
        assert_eq!(status(alice), StatusCode::OK);
        let bob = svc.clone().oneshot(request(Some("bob"), Some("s-1"), Method::POST)).await.unwrap();
        assert_eq!(status(bob), StatusCode::NOT_FOUND);
        let unknown = svc.clone().oneshot(request(Some("alice"), Some("s-9"), Method::GET)).await.unwrap();
        assert_eq!(status(unknown), StatusCode::NOT_FOUND);

        // Deleting ends the binding.
        let deleted = svc.clone().oneshot(request(Some("alice"), Some("s-1"), Method::DELETE)).await.unwrap();
        assert_eq!(status(deleted), StatusCode::OK);
        let after = svc.clone().oneshot(request(Some("alice"), Some("s-1"), Method::POST)).await.unwrap();
        assert_eq!(status(after), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_same_user_through_another_client_is_another_owner() {
        let svc = SessionBindingLayer::default().layer(tower::service_fn(upstream));
        svc.clone().oneshot(request(Some("alice"), None, Method::POST)).await.unwrap();
        let mut other = request(None, Some("s-1"), Method::POST);
        other.extensions_mut().insert(Principal::new("alice").with_client_id("other-client"));
        assert_eq!(svc.clone().oneshot(other).await.unwrap().status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn without_a_principal_nothing_passes() {
        let svc = SessionBindingLayer::default().layer(tower::service_fn(upstream));
        let response = svc.oneshot(request(None, None, Method::POST)).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
