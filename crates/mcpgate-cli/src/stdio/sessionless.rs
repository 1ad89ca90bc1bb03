//! Sessionless callers (MCP 2026-07-28: no `initialize`, every request self-contained) of a
//! stdio upstream. The child behind them is one the gateway started and initialized itself,
//! claiming no client capabilities: the shared child, or — with `per_session` — one child per
//! caller, keyed by subject and client (and by the issuer and kind of its credential, as
//! subjects of different issuers may coincide), started at the caller's first request with its
//! identity in the environment, and stopped after [`IDLE`] without a request.
//!
//! What a 2026-07-28 request carries for the lifecycle (`io.modelcontextprotocol/…` keys of
//! `_meta`) is the client's conversation with the gateway, not with a child initialized under
//! an older revision: it is taken out before the request goes on, and a result the child wrote
//! without the now-required `resultType` is completed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use mcpgate::Principal;
use rmcp::model::{ErrorData, InitializeResult, ProtocolVersion, RequestMetaObject};

use super::Inner;
use super::child::Child;

/// How long a caller's child lives without a request (as long as an idle legacy session).
pub(crate) const IDLE: Duration = Duration::from_secs(5 * 60);
/// How often idle children are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The `_meta` keys of the 2026-07-28 per-request lifecycle.
const LIFECYCLE_KEYS: [&str; 4] = [
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
    "io.modelcontextprotocol/logLevel",
];

/// Whether a request with `meta` is sessionless: it declares a revision without `initialize`.
pub(crate) fn is_sessionless(meta: &RequestMetaObject) -> bool {
    meta.protocol_version().is_some_and(|version| !version.has_initialize())
}

/// `meta` as a child initialized under an older revision gets it.
pub(crate) fn for_legacy_child(mut meta: RequestMetaObject) -> RequestMetaObject {
    for key in LIFECYCLE_KEYS {
        meta.0.0.remove(key);
    }
    meta
}

/// A 2026-07-28 result: `resultType` is required, and an older child does not write it.
pub(crate) fn complete_result(mut result: serde_json::Value) -> serde_json::Value {
    if let Some(object) = result.as_object_mut()
        && !object.contains_key("resultType")
    {
        object.insert("resultType".into(), "complete".into());
    }
    result
}

/// Who a caller is, for its own child: the kind and issuer of its credential, its subject and
/// its client. Two issuers may both have a user `12345`; each gets its own process (with its own
/// identity and tokens in the environment).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CallerKey {
    kind: &'static str,
    issuer: Option<String>,
    subject: String,
    client_id: Option<String>,
}

impl CallerKey {
    fn of(principal: Option<&Principal>) -> Self {
        let anonymous = Principal::anonymous();
        let caller = principal.unwrap_or(&anonymous);
        Self {
            kind: caller.client_kind().as_str(),
            issuer: caller.issuer().map(str::to_owned),
            subject: caller.subject().to_owned(),
            client_id: caller.client_id().map(str::to_owned),
        }
    }
}

/// One caller's child (or the start of it, under the slot's lock).
#[derive(Default)]
struct Slot {
    child: tokio::sync::Mutex<Option<(Arc<Child>, InitializeResult)>>,
    last_used: Mutex<Option<Instant>>,
}

impl Slot {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    fn idle_since(&self, now: Instant) -> Duration {
        let last = *self.last_used.lock().unwrap_or_else(PoisonError::into_inner);
        last.map_or(Duration::ZERO, |last| now.saturating_duration_since(last))
    }
}

/// The children of sessionless callers (`per_session = true`), one per caller.
#[derive(Default)]
pub(crate) struct CallerChildren {
    slots: Mutex<HashMap<CallerKey, Arc<Slot>>>,
}

impl CallerChildren {
    fn slot(&self, key: CallerKey) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key).or_default().clone()
    }

    /// Stops the children idle for `idle` or longer (dropped here; requests in flight hold
    /// theirs until they end).
    pub(crate) fn sweep(&self, idle: Duration) {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // A slot whose child is starting is locked: it is not idle.
        slots.retain(|_, slot| slot.child.try_lock().is_err() || slot.idle_since(now) < idle);
    }

    /// How many callers have a child.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Sweeps `upstream`'s idle callers' children until it is gone or shut down.
pub(crate) async fn reap_idle(upstream: Weak<Inner>, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
        let Some(upstream) = upstream.upgrade() else { return };
        upstream.callers.sweep(IDLE);
    }
}

impl Inner {
    /// The child a sessionless request of `principal` goes to, with what it said at
    /// `initialize`: the caller's own (`per_session`), else the shared one.
    pub(crate) async fn sessionless_child(
        &self,
        principal: Option<&Principal>,
    ) -> Result<(Arc<Child>, InitializeResult), ErrorData> {
        if !self.per_session() {
            return self.shared_child(ProtocolVersion::LATEST_WITH_INITIALIZE).await;
        }
        let slot = self.callers.slot(CallerKey::of(principal));
        slot.touch();
        let mut child = slot.child.lock().await;
        if let Some((running, info)) = child.as_ref()
            && !running.exited().is_cancelled()
        {
            return Ok((running.clone(), info.clone()));
        }
        let started = Arc::new(self.start_child(principal).await?);
        let info = self.initialize_for_gateway(&started, ProtocolVersion::LATEST_WITH_INITIALIZE).await?;
        *child = Some((started.clone(), info.clone()));
        Ok((started, info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lifecycle_keys_stay_with_the_gateway_and_results_are_completed() {
        let mut meta = RequestMetaObject::new();
        meta.set_protocol_version(ProtocolVersion::V_2026_07_28);
        meta.0.0.insert("io.modelcontextprotocol/clientCapabilities".into(), serde_json::json!({}));
        meta.0.0.insert("io.modelcontextprotocol/related-task".into(), serde_json::json!({"taskId": "t"}));
        meta.set_progress_token(rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(3)));
        assert!(is_sessionless(&meta));
        let legacy = for_legacy_child(meta);
        assert!(!is_sessionless(&legacy));
        let keys: Vec<&String> = legacy.0.0.keys().collect();
        assert_eq!(keys.len(), 2, "the progress token and the task stay: {keys:?}");

        assert_eq!(complete_result(serde_json::json!({"content": []}))["resultType"], "complete");
        let asked = complete_result(serde_json::json!({"resultType": "input_required"}));
        assert_eq!(asked["resultType"], "input_required", "what the child said stands");
    }

    #[test]
    fn only_idle_slots_are_swept() {
        let callers = CallerChildren::default();
        callers.slot(CallerKey::of(Some(&Principal::new("alice")))).touch();
        let bob = callers.slot(CallerKey::of(Some(&Principal::new("bob").with_client_id("c"))));
        bob.touch();
        *bob.last_used.lock().unwrap() = Some(Instant::now() - Duration::from_secs(600));
        callers.sweep(IDLE);
        assert_eq!(callers.len(), 1, "bob's was idle, alice's not");
    }

    #[test]
    fn callers_are_told_apart_by_issuer_kind_subject_and_client() {
        let ours = Principal::new("12345").with_issuer("https://gw.example").with_client_id("c");
        let theirs = Principal::new("12345").with_issuer("https://corp.example").with_client_id("c");
        assert_ne!(CallerKey::of(Some(&ours)), CallerKey::of(Some(&theirs)), "same subject, other issuer");
        assert_ne!(CallerKey::of(Some(&ours)), CallerKey::of(Some(&ours.clone().with_client_id("d"))));
        assert_ne!(CallerKey::of(Some(&Principal::new(""))), CallerKey::of(None), "a user is not anonymous");
        assert_eq!(CallerKey::of(Some(&ours)), CallerKey::of(Some(&ours.clone())));
    }
}
