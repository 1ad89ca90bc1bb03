//! The measurements mcpgate reports, through the [`metrics`] facade: they cost nothing until
//! the application installs a recorder (the `mcpgate` binary serves them at `/metrics` in
//! Prometheus format). One place names every metric:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `mcpgate_token_verifications_total` | counter | `outcome`: `valid`, `missing`, `invalid`, `insufficient_scope`, `bad_request`, `unavailable` |
//! | `mcpgate_verify_cache_total` | counter | `outcome`: `hit`, `miss` (hit ratio = hit / (hit + miss)) |
//! | `mcpgate_provider_request_duration_seconds` | histogram | `endpoint`: `token`, `revoke`, `userinfo`, `discovery`; `outcome`: `answered` (any HTTP status), `unreachable` |

/// Counters of one metric by one label whose values are known: registered at the first
/// increment (when the application's recorder is in place), not at every one. A registration
/// hashes the key and copies its labels: ≈ 1,500 instructions and two allocations a time.
pub(crate) struct LabelledCounters<const N: usize> {
    name: &'static str,
    label: &'static str,
    values: [&'static str; N],
    handles: std::sync::OnceLock<[metrics::Counter; N]>,
}

impl<const N: usize> LabelledCounters<N> {
    /// The counters of `name` by `label`, one for each of `values`.
    pub(crate) const fn new(name: &'static str, label: &'static str, values: [&'static str; N]) -> Self {
        Self { name, label, values, handles: std::sync::OnceLock::new() }
    }

    /// Adds one to the counter of `value` (registered on the spot if it is not one of those known).
    pub(crate) fn increment(&self, value: &'static str) {
        let handles =
            self.handles.get_or_init(|| self.values.map(|v| metrics::counter!(self.name, self.label => v)));
        match self.values.iter().position(|v| *v == value) {
            Some(at) => handles[at].increment(1),
            None => metrics::counter!(self.name, self.label => value).increment(1),
        }
    }
}

/// Records one bearer-token check at the MCP endpoint, by its outcome label (the table above).
pub(crate) fn verification(outcome: &'static str) {
    static COUNTERS: LabelledCounters<6> = LabelledCounters::new(
        "mcpgate_token_verifications_total",
        "outcome",
        ["valid", "missing", "invalid", "insufficient_scope", "bad_request", "unavailable"],
    );
    COUNTERS.increment(outcome);
}

/// Records whether a verification was answered from the verified-token cache.
pub(crate) fn verify_cache(hit: bool) {
    static COUNTERS: LabelledCounters<2> =
        LabelledCounters::new("mcpgate_verify_cache_total", "outcome", ["hit", "miss"]);
    COUNTERS.increment(if hit { "hit" } else { "miss" });
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
