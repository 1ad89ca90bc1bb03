//! The measurements mcpgate reports, through the [`metrics`] facade: they cost nothing until
//! the application installs a recorder (the `mcpgate` binary serves them at `/metrics` in
//! Prometheus format). One place names every metric:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `mcpgate_token_verifications_total` | counter | `outcome`: `valid`, `missing`, `invalid`, `insufficient_scope`, `bad_request`, `unavailable` |
//! | `mcpgate_verify_cache_total` | counter | `outcome`: `hit`, `miss` (hit ratio = hit / (hit + miss)) |
//! | `mcpgate_provider_request_duration_seconds` | histogram | `endpoint`: `token`, `revoke`, `userinfo`, `discovery`; `outcome`: `answered` (any HTTP status), `unreachable` |

/// Records one bearer-token check at the MCP endpoint, by its outcome label (the table above).
pub(crate) fn verification(outcome: &'static str) {
    metrics::counter!("mcpgate_token_verifications_total", "outcome" => outcome).increment(1);
}

/// Records whether a verification was answered from the verified-token cache.
pub(crate) fn verify_cache(hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!("mcpgate_verify_cache_total", "outcome" => outcome).increment(1);
}

/// Records one request to the upstream identity provider.
#[cfg(feature = "proxy")]
pub(crate) fn provider_request(endpoint: &'static str, took: std::time::Duration, ok: bool) {
    let outcome = if ok { "answered" } else { "unreachable" };
    metrics::histogram!("mcpgate_provider_request_duration_seconds", "endpoint" => endpoint, "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// Times `request` to the provider's `endpoint`.
#[cfg(feature = "proxy")]
pub(crate) async fn timed_provider_request<T, E>(
    endpoint: &'static str,
    request: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = request.await;
    provider_request(endpoint, started.elapsed(), result.is_ok());
    result
}
