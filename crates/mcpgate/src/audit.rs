//! The audit trail: one JSON line per MCP operation — who, what, the decision and the rule
//! that made it, how long it took and what the upstream answered — and a counter by decision.
//! Lines are written by a thread of their own, so a slow disk never holds up a request; should
//! it fall far behind, events are dropped and counted (`mcpgate_audit_dropped_total`), never
//! queued without bound. Decisions are counted whatever the sink ([`count_decision`]). Nothing secret is recorded: no token, no session id, no arguments.
//!
//! The fields (an interface: documented in `docs/policy.md`):
//!
//! | field | |
//! |---|---|
//! | `time` | RFC 3339, UTC, milliseconds |
//! | `subject`, `client_id` | the caller (`client_id` `null` when the token names none) |
//! | `client_kind` | `user`, `machine` (a `client_credentials` client) or `api_key` |
//! | `method` | the JSON-RPC method |
//! | `tool`, `prompt`, `resource` | the one the operation names, when it names one |
//! | `decision` | `allow`, `deny`, `step_up`, or `invalid` (refused before the policy: a header contradicting the body) |
//! | `rule` | the deciding rule's id, or `#` and its position; `null` when the default decided |
//! | `reason` | why a denial happened, when it was not simply the rule's effect |
//! | `latency_ms` | until the answer's head, upstream included |
//! | `upstream_status` | the upstream's HTTP status; `null` when the request never reached it |

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many events may wait for the writer before new ones are dropped.
const QUEUE: usize = 65_536;

/// One audited MCP operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// When the operation was decided (RFC 3339, UTC).
    pub time: String,
    /// The MCP endpoint it was sent to (its resource URL): a gateway serves several.
    pub endpoint: String,
    /// The caller's subject.
    pub subject: String,
    /// The caller's OAuth client.
    pub client_id: Option<String>,
    /// What kind of caller: `user`, `machine`, `api_key` or `anonymous`.
    pub client_kind: &'static str,
    /// The JSON-RPC method.
    pub method: String,
    /// The tool the operation names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The prompt the operation names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The resource URI the operation names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `allow`, `deny`, `step_up` or `invalid`.
    pub decision: &'static str,
    /// The deciding rule.
    pub rule: Option<String>,
    /// Why, when it was not the rule's effect alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds until the answer's head.
    pub latency_ms: f64,
    /// The upstream's HTTP status, when the request reached it.
    pub upstream_status: Option<u16>,
}

/// RFC 3339 with milliseconds, UTC, for `time` (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Records `event` (without blocking).
    fn record(&self, event: AuditEvent);

    /// Whether this sink wants events at all (else they are not even made: an event is a
    /// dozen strings and a timestamp, on every request).
    fn wants_events(&self) -> bool {
        true
    }
}

/// Counts one decision in `mcpgate_policy_decisions_total` (every decision, whatever the sink).
pub fn count_decision(decision: &'static str) {
    static COUNTERS: crate::metrics::LabelledCounters<4> = crate::metrics::LabelledCounters::new(
        "mcpgate_policy_decisions_total",
        "decision",
        ["allow", "deny", "step_up", "invalid"],
    );
    COUNTERS.increment(decision);
}

/// Audit events as JSON lines, to a file (appended) or standard output.
pub struct JsonLinesAudit {
    queue: SyncSender<AuditEvent>,
}

impl std::fmt::Debug for JsonLinesAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesAudit").finish_non_exhaustive()
    }
}

impl JsonLinesAudit {
    /// Appends to `path`, or writes to standard output when `path` is `-`.
    pub fn open(path: &str) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match path {
            "-" => Box::new(std::io::stdout()),
            path => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        Ok(Self::to_writer(out))
    }

    /// Writes to `out`.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        let (queue, events) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("mcpgate-audit".into())
            .spawn(move || write_lines(events, out))
            .expect("the audit writer thread starts");
        Self { queue }
    }
}

/// The writer thread: each event a line, flushed whenever the queue runs empty.
fn write_lines(events: Receiver<AuditEvent>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(first) = events.recv() {
        let mut next = Some(first);
        while let Some(event) = next {
            let line = serde_json::to_writer(&mut out, &event).map_err(std::io::Error::from);
            if line.and_then(|()| out.write_all(b"\n")).is_err() {
                tracing::error!("cannot write the audit log");
            }
            next = events.try_recv().ok();
        }
        if out.flush().is_err() {
            tracing::error!("cannot write the audit log");
        }
    }
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, event: AuditEvent) {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("mcpgate_audit_dropped_total").increment(1);
            }
            Err(TrySendError::Disconnected(_)) => {
                metrics::counter!("mcpgate_audit_dropped_total").increment(1);
                tracing::error!("the audit writer stopped");
            }
        }
    }
}

/// No audit log (decisions are still counted, by [`count_decision`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountOnly;

impl AuditSink for CountOnly {
    fn record(&self, _: AuditEvent) {}

    fn wants_events(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_796_169_599)), "2026-12-01T23:59:59.000Z");
    }

    #[test]
    fn events_become_json_lines_in_order() {
        let path = tempfile::NamedTempFile::new().unwrap();
        let audit = JsonLinesAudit::open(path.path().to_str().unwrap()).unwrap();
        for (i, decision) in ["allow", "deny"].into_iter().enumerate() {
            audit.record(AuditEvent {
                time: rfc3339(SystemTime::now()),
                endpoint: "https://mcp.example.com/mcp".into(),
                subject: "alice".into(),
                client_id: None,
                client_kind: "user",
                method: "tools/call".into(),
                tool: Some(format!("t{i}")),
                prompt: None,
                resource: None,
                decision,
                rule: Some("#1".into()),
                reason: None,
                latency_ms: 1.5,
                upstream_status: Some(200),
            });
        }
        drop(audit);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let lines = loop {
            let text = std::fs::read_to_string(path.path()).unwrap();
            if text.lines().count() == 2 || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let events: Vec<serde_json::Value> =
            lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["tool"], "t0");
        assert_eq!(events[1]["decision"], "deny");
        assert!(events[0].get("prompt").is_none());
        assert_eq!(events[0]["client_id"], serde_json::Value::Null);
        assert_eq!(events[0]["client_kind"], "user");
    }
}
