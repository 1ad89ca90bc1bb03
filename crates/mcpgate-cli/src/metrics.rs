//! `/metrics` in Prometheus text format: the library's measurements (token verifications, the
//! verified-token cache, identity-provider latency; see `mcpgate`'s `metrics` module) and the
//! gateway's own — every request by route and status with its latency to the response head,
//! and the upstream MCP server's latency:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `mcpgate_http_requests_total` | counter | `route`, `method`, `status` |
//! | `mcpgate_http_request_duration_seconds` | histogram | `route` |
//! | `mcpgate_upstream_mcp_duration_seconds` | histogram | `transport`: `http`, `stdio`; `outcome`: `answered`, `failed` |

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
pub fn routes(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()) }
        }),
    )
}

/// Middleware counting and timing every request by its route (the pattern, not the path, so
/// the label set stays small).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await.into_response();
    let status = response.status().as_u16().to_string();
    metrics::counter!("mcpgate_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("mcpgate_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
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
