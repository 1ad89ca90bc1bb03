//! Operations endpoints: `/healthz` (the process answers) and `/readyz` (it can serve: its store
//! is reachable), for load balancers and orchestrators.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use mcpgate::store::Store;

/// The routes, checking `store` for readiness when there is one.
pub fn routes(store: Option<Arc<dyn Store>>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/readyz",
        get(move || {
            let store = store.clone();
            async move {
                match store {
                    None => (StatusCode::OK, "ready").into_response(),
                    Some(store) => match store.ping().await {
                        Ok(()) => (StatusCode::OK, "ready").into_response(),
                        Err(e) => {
                            tracing::warn!(error = %e, "not ready: the store is unreachable");
                            (StatusCode::SERVICE_UNAVAILABLE, "the store is unreachable").into_response()
                        }
                    },
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mcpgate::store::{Collection, StoreError, Version, Versioned};
    use tower::ServiceExt;

    use super::*;

    async fn status(router: Router, path: &str) -> StatusCode {
        let request = http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn ready_while_the_store_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = mcpgate::store::SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        assert_eq!(status(routes(Some(store.clone())), "/readyz").await, StatusCode::OK);
        assert_eq!(status(routes(None), "/readyz").await, StatusCode::OK);
        assert_eq!(status(routes(None), "/healthz").await, StatusCode::OK);
        // A store that does not answer: alive, not ready.
        let router = routes(Some(Arc::new(Unreachable)));
        assert_eq!(status(router.clone(), "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(router, "/healthz").await, StatusCode::OK);
    }

    /// A store whose every call fails as an unreachable one does.
    struct Unreachable;

    fn down<T>() -> Result<T, StoreError> {
        Err(StoreError::Unavailable("unreachable".into()))
    }

    #[async_trait::async_trait]
    impl Store for Unreachable {
        async fn get(&self, _: Collection, _: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError> {
            down()
        }
        async fn put(
            &self,
            _: Collection,
            _: &str,
            _: &[u8],
            _: Option<Duration>,
        ) -> Result<Version, StoreError> {
            down()
        }
        async fn put_if_absent(
            &self,
            _: Collection,
            _: &str,
            _: &[u8],
            _: Option<Duration>,
        ) -> Result<Option<Version>, StoreError> {
            down()
        }
        async fn delete(&self, _: Collection, _: &str) -> Result<bool, StoreError> {
            down()
        }
        async fn delete_if_version(&self, _: Collection, _: &str, _: Version) -> Result<bool, StoreError> {
            down()
        }
        async fn take(&self, _: Collection, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            down()
        }
        async fn compare_and_swap(
            &self,
            _: Collection,
            _: &str,
            _: Version,
            _: &[u8],
            _: Option<Duration>,
        ) -> Result<Option<Version>, StoreError> {
            down()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            down()
        }
    }
}
