//! `/metrics` in Prometheus text format: the library's measurements (token verifications, the
//! verified-token cache, identity-provider latency; see `mcpgate`'s `metrics` module) and the
//! gateway's own — every request by route and status with its latency to the response head,
//! and the upstream MCP server's latency:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `mcpgate_http_requests_total` | counter | `route`, `method` (`other` for a method HTTP does not define), `status` |
//! | `mcpgate_http_request_duration_seconds` | histogram | `route` |
//! | `mcpgate_upstream_mcp_duration_seconds` | histogram | `transport`: `http`, `stdio`; `outcome`: `answered`, `failed` |

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use axum::routing::get;
use http::Method;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

/// Latency buckets, in seconds: from half a millisecond (a cached verification) to ten seconds
/// (a slow provider or tool).
const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide recorder; `None` if one is installed already.
pub fn install() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?.install_recorder().ok()?;
    // Histograms are folded into their buckets by upkeep, which the caller must run.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

/// `GET /metrics`.
fn routes(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()) }
        }),
    )
}

/// `app` with `GET /metrics` and every request counted and timed by [`Track`].
pub fn serve(app: Router, handle: PrometheusHandle) -> Router {
    // A router layer, inside the routing, since the route's pattern is known only there.
    app.merge(routes(handle)).layer(TrackLayer(RequestMetrics::default()))
}

/// The handles of the request metrics, registered at the first request of each route, method
/// and status rather than at every request (each request made two registrations, and a
/// registration hashes its key and copies its label strings).
#[derive(Clone, Default)]
struct RequestMetrics(Arc<RwLock<HashMap<String, RouteMetrics>>>);

/// One route's handles.
struct RouteMetrics {
    duration: metrics::Histogram,
    requests: HashMap<(&'static str, u16), metrics::Counter>,
}

impl RequestMetrics {
    /// Counts one request to `route` and records how long it took to its response head.
    fn record(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        {
            let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(handles) = known.get(route)
                && let Some(requests) = handles.requests.get(&(method, status))
            {
                requests.increment(1);
                handles.duration.record(took.as_secs_f64());
                return;
            }
        }
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let handles = known.entry(route.to_owned()).or_insert_with(|| RouteMetrics {
            duration: metrics::histogram!("mcpgate_http_request_duration_seconds", "route" => route.to_owned()),
            requests: HashMap::new(),
        });
        handles
            .requests
            .entry((method, status))
            .or_insert_with(|| {
                metrics::counter!("mcpgate_http_requests_total", "route" => route.to_owned(), "method" => method, "status" => status.to_string())
            })
            .increment(1);
        handles.duration.record(took.as_secs_f64());
    }
}

/// The `method` label: one of the methods HTTP defines, or `other`, so that a client sending
/// made-up methods cannot grow the label set without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::PUT,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|known| *known == method).map_or("other", |known| known.as_str())
}

/// Counts and times every request by its route (the pattern, not the path, so the label set
/// stays small), method and status. A tower layer rather than `from_fn`: no boxed `Next` and
/// no boxed future on every request.
#[derive(Clone)]
struct TrackLayer(RequestMetrics);

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner, metrics: self.0.clone() }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone)]
struct Track<S> {
    inner: S,
    metrics: RequestMetrics,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = method_label(request.method());
        // Read before the request moves on; `MatchedPath` is an `Arc<str>` inside.
        let route = request.extensions().get::<MatchedPath>().cloned();
        let started = Instant::now();
        Tracked {
            inner: self.inner.call(request),
            record: Some(Record { metrics: self.metrics.clone(), route, method, started }),
        }
    }
}

/// What [`Tracked`] records when the response head is ready.
struct Record {
    metrics: RequestMetrics,
    route: Option<MatchedPath>,
    method: &'static str,
    started: Instant,
}

pin_project_lite::pin_project! {
    /// The future of [`Track`]: the inner one's, recorded when it is ready.
    struct Tracked<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F> Future for Tracked<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        if let Some(record) = this.record.take() {
            let route = record.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            record.metrics.record(route, record.method, response.status().as_u16(), record.started.elapsed());
        }
        Poll::Ready(Ok(response))
    }
}

/// How the gateway reaches an upstream MCP server (the `transport` label).
#[derive(Clone, Copy)]
pub enum Transport {
    /// Streamable HTTP.
    Http = 0,
    /// A child process's standard input and output.
    Stdio = 1,
}

/// Records one exchange with the upstream MCP server.
pub fn upstream_mcp(transport: Transport, took: Duration, answered: bool) {
    // Registered once, when the recorder is in place (it is installed before anything is
    // served): a registration a request cost two allocations and ≈ 1,500 instructions.
    static HISTOGRAMS: OnceLock<[[metrics::Histogram; 2]; 2]> = OnceLock::new();
    let histograms = HISTOGRAMS.get_or_init(|| {
        ["http", "stdio"].map(|transport| {
            ["answered", "failed"].map(|outcome| {
                metrics::histogram!("mcpgate_upstream_mcp_duration_seconds", "transport" => transport, "outcome" => outcome)
            })
        })
    });
    histograms[transport as usize][usize::from(!answered)].record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_method_and_status_with_made_up_methods_folded() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let requests = RequestMetrics::default();
        metrics::with_local_recorder(&recorder, || {
            for status in [200, 200, 401] {
                requests.record("/mcp", method_label(&Method::POST), status, Duration::from_millis(1));
            }
            let made_up = Method::from_bytes(b"BREW").unwrap();
            requests.record("unmatched", method_label(&made_up), 404, Duration::from_millis(1));
        });
        let text = handle.render();
        let count = |labels: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("mcpgate_http_requests_total{{{labels}}} ")))
                .map(str::to_owned)
        };
        assert_eq!(count(r#"route="/mcp",method="POST",status="200""#).as_deref(), Some("2"), "{text}");
        assert_eq!(count(r#"route="/mcp",method="POST",status="401""#).as_deref(), Some("1"), "{text}");
        assert_eq!(count(r#"route="unmatched",method="other",status="404""#).as_deref(), Some("1"), "{text}");
        assert!(!text.contains("BREW"), "{text}");
        assert!(text.contains(r#"mcpgate_http_request_duration_seconds_count{route="/mcp"} 3"#), "{text}");
    }

    #[tokio::test]
    async fn the_layer_counts_each_request_under_its_routes_pattern() {
        use tower::ServiceExt;
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // The test's runtime has one thread: the recorder is seen where the futures run.
        let _local = metrics::set_default_local_recorder(&recorder);
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(TrackLayer(RequestMetrics::default()));
        for path in ["/items/1", "/items/2", "/missing"] {
            let request = http::Request::get(path).body(axum::body::Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let text = handle.render();
        assert!(
            text.contains(r#"mcpgate_http_requests_total{route="/items/{id}",method="GET",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcpgate_http_requests_total{route="unmatched",method="GET",status="404"} 1"#),
            "{text}"
        );
    }
}
