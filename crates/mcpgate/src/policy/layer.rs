//! The policy enforced where MCP requests pass: a tower layer in front of an MCP service (an
//! rmcp Streamable HTTP service, the gateway's proxy or its stdio bridge), inside the bearer
//! layer that put the caller's [`Principal`] in the request. For each POST it reads the one
//! JSON-RPC message ([`Message`]), refuses headers that contradict it (`Mcp-Method`,
//! `Mcp-Name`: 400, JSON-RPC `-32020`), asks the [`Policy`], and then:
//!
//! - denied: a JSON-RPC error ([`POLICY_DENIED`]); the service never sees the request;
//! - needs scopes: HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope",
//!   scope="<the token's scopes and the missing ones>", resource_metadata="…"`;
//! - allowed: passed on, and a list's answer (JSON, or the matching event of an SSE stream)
//!   filtered to what the caller may use. Answers replayed on the GET stream are filtered by
//!   their shape, since the request they answer was not seen here.
//!
//! Every operation is audited ([`crate::audit`]) with its decision, rule and latency.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde_json::json;
use tower::{Layer, Service};

use super::filter::{Filtered, ListKind, filter_list};
use super::message::Message;
use super::sse::EventRewriter;
use super::{Decision, Operation, Policy, Reason, Verdict};
use crate::Principal;
use crate::audit::{AuditEvent, AuditSink, CountOnly, rfc3339};
use crate::resource::ProtectedResource;

/// Told when a resource asked a caller to step up to more scopes: what an authorization server
/// implements (mcpgate's `authz::AuthServer` does) so that the refresh
/// that follows is refused once and the client authorizes again.
#[async_trait::async_trait]
pub trait StepUpNotice: Send + Sync {
    /// `caller` was answered `403 insufficient_scope` naming `scopes`.
    async fn step_up_asked(&self, caller: &Principal, scopes: &[String]);
}

/// The JSON-RPC error code of an operation the policy denies.
pub const POLICY_DENIED: i64 = -32003;
/// The JSON-RPC error code of headers that contradict the body (MCP 2026-07-28).
pub const HEADER_MISMATCH: i64 = -32020;
/// The largest request body read by default (the gateway passes its own limit).
const DEFAULT_MAX_REQUEST: usize = 4 * 1024 * 1024;
/// The largest JSON list answer filtered; a bigger one is refused rather than shown unfiltered.
const MAX_LIST_ANSWER: usize = 64 * 1024 * 1024;

/// Enforces a [`Policy`]; see the module documentation.
#[derive(Clone)]
pub struct PolicyLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    policy: Policy,
    resource: ProtectedResource,
    audit: Arc<dyn AuditSink>,
    max_request_bytes: usize,
    step_up: Option<Arc<dyn StepUpNotice>>,
}

impl std::fmt::Debug for PolicyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyLayer").field("policy", &self.shared.policy).finish_non_exhaustive()
    }
}

impl PolicyLayer {
    /// Enforces `policy` for `resource` (whose metadata URL step-up challenges name). Decisions
    /// are counted but not logged until [`Self::audit`] says where.
    pub fn new(policy: Policy, resource: &ProtectedResource) -> Self {
        Self {
            shared: Arc::new(Shared {
                policy,
                resource: resource.clone(),
                audit: Arc::new(CountOnly),
                max_request_bytes: DEFAULT_MAX_REQUEST,
                step_up: None,
            }),
        }
    }

    fn change(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        // A clone made before keeps its settings: this layer gets its own copy.
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Records every operation in `sink`.
    #[must_use]
    pub fn audit(self, sink: Arc<dyn AuditSink>) -> Self {
        self.change(|shared| shared.audit = sink)
    }

    /// Tells `notices` (the authorization server that issued the callers' tokens) of every
    /// step-up asked for, so that a client that refreshes before it re-authorizes is sent to
    /// authorize again rather than given the same token (see [`StepUpNotice`]).
    #[must_use]
    pub fn step_up_notices(self, notices: Arc<dyn StepUpNotice>) -> Self {
        self.change(|shared| shared.step_up = Some(notices))
    }

    /// Refuses request bodies larger than `bytes` (413).
    #[must_use]
    pub fn max_request_bytes(self, bytes: usize) -> Self {
        self.change(|shared| shared.max_request_bytes = bytes)
    }
}

impl<S> Layer<S> for PolicyLayer {
    type Service = PolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService { inner, shared: self.shared.clone() }
    }
}

/// The service made by [`PolicyLayer`].
#[derive(Clone)]
pub struct PolicyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for PolicyService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyService").finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for PolicyService<S>
where
    S: Service<Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = crate::resource::take_ready(&mut self.inner);
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.handle(inner, request).await) })
    }
}

/// A JSON-RPC error answer.
fn json_rpc_error(status: StatusCode, id: Option<&str>, code: i64, message: &str) -> Response {
    let id: serde_json::Value =
        id.and_then(|id| serde_json::from_str(id).ok()).unwrap_or(serde_json::Value::Null);
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The header among `Mcp-Method` and `Mcp-Name` that says something other than the body.
fn contradicting_header(headers: &HeaderMap, message: &Message) -> Option<&'static str> {
    let name = message.operation().and_then(|op| op.name());
    let checks = [("mcp-method", "Mcp-Method", message.method.as_deref()), ("mcp-name", "Mcp-Name", name)];
    checks.into_iter().find_map(|(header, shown, body)| {
        // Every line must agree: an intermediary may read any one of them.
        let mut values = headers.get_all(header).iter().peekable();
        let present = values.peek().is_some();
        let disagrees = values.any(|value| value.to_str().ok() != body);
        (present && disagrees).then_some(shown)
    })
}

/// The scopes to ask for: the token's, then the missing ones.
fn step_up_scopes(caller: &Principal, missing: &[String]) -> Vec<String> {
    let mut scopes = caller.scopes().to_vec();
    scopes.extend(missing.iter().filter(|m| !caller.has_scope(m)).cloned());
    scopes
}

impl Shared {
    fn record(
        &self,
        caller: &Principal,
        op: &Operation<'_>,
        verdict: Option<&Verdict>,
        started: Instant,
        status: Option<StatusCode>,
    ) {
        let decision = verdict.map_or("invalid", |v| v.decision.as_str());
        crate::audit::count_decision(decision);
        if !self.audit.wants_events() {
            return;
        }
        let name = |kind| op.target.filter(|t| t.kind == kind).map(|t| t.name.to_owned());
        let (decision, rule, reason) = match verdict {
            Some(v) => (
                v.decision.as_str(),
                v.rule.as_deref().map(str::to_owned),
                match &v.reason {
                    Reason::NotAllowListed => Some("not in the rule's allow lists".to_owned()),
                    Reason::ConditionFailed(e) => Some(format!("condition failed: {e}")),
                    Reason::Rule | Reason::Default => None,
                },
            ),
            None => ("invalid", None, Some("headers contradict the body".to_owned())),
        };
        self.audit.record(AuditEvent {
            time: rfc3339(SystemTime::now()),
            endpoint: self.resource.resource().to_owned(),
            subject: caller.subject().to_owned(),
            client_id: caller.client_id().map(str::to_owned),
            client_kind: caller.client_kind().as_str(),
            method: op.method.to_owned(),
            tool: name(super::TargetKind::Tool),
            prompt: name(super::TargetKind::Prompt),
            resource: name(super::TargetKind::Resource),
            decision,
            rule,
            reason,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            upstream_status: status.map(|s| s.as_u16()),
        });
    }

    /// Filters the list answer `message` to what `caller` may see: an entry is hidden only when
    /// denied (what more scopes would allow stays listed).
    fn filter_for(&self, caller: &Principal, message: &[u8], kind: Option<ListKind>) -> Filtered {
        let judge = self.policy.for_caller(caller);
        filter_list(message, kind, |op| judge.decide(op).decision != Decision::Deny)
    }

    async fn handle<S>(self: Arc<Self>, mut inner: S, request: Request<Body>) -> Response
    where
        S: Service<Request<Body>, Error = Infallible>,
        S::Response: IntoResponse,
    {
        let started = Instant::now();
        // Without a bearer layer in front, every caller is the same nobody.
        let caller = request.extensions().get::<Principal>().cloned().unwrap_or_else(|| Principal::new(""));
        if request.method() == Method::GET {
            let response = call(&mut inner, request).await;
            return match self.policy.allows_everything() {
                true => response,
                false => self.filter(response, caller, None, None).await,
            };
        }
        if request.method() != Method::POST {
            return call(&mut inner, request).await;
        }
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, self.max_request_bytes).await else {
            return json_rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                -32600,
                "the request body is too large",
            );
        };
        let message = match Message::parse(&bytes, self.policy.reads_arguments()) {
            Ok(message) => message,
            Err(e) => return json_rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
        };
        let id = message.id.as_deref();
        let op = message.operation();
        if let Some(header) = contradicting_header(&parts.headers, &message) {
            if let Some(op) = &op {
                self.record(&caller, op, None, started, None);
            }
            let text = format!("the {header} header does not match the request body");
            return json_rpc_error(StatusCode::BAD_REQUEST, id, HEADER_MISMATCH, &text);
        }
        // A response (to a request of the server) is no operation.
        let Some(op) = op else {
            return call(&mut inner, Request::from_parts(parts, Body::from(bytes))).await;
        };
        let verdict = self.policy.decide(&caller, &op);
        match &verdict.decision {
            Decision::Allow => {}
            Decision::Deny => {
                self.record(&caller, &op, Some(&verdict), started, None);
                let text = match &op.target {
                    Some(target) => format!("{} {:?} is not allowed for this caller", op.method, target.name),
                    None => format!("{} is not allowed for this caller", op.method),
                };
                let status = if id.is_some() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
                return json_rpc_error(status, id, POLICY_DENIED, &text);
            }
            Decision::StepUp(missing) => {
                self.record(&caller, &op, Some(&verdict), started, None);
                let scopes = step_up_scopes(&caller, missing);
                if let Some(notices) = &self.step_up {
                    notices.step_up_asked(&caller, &scopes).await;
                }
                return self.resource.insufficient_scope(&scopes);
            }
        }
        let list = ListKind::of_method(op.method);
        let is_request = id.is_some();
        // Without an audit log the decision is counted now; with one, its line waits for the
        // upstream's status.
        let logged = is_request && self.audit.wants_events();
        if is_request && !logged {
            self.record(&caller, &op, Some(&verdict), started, None);
        }
        let audited = logged.then(|| OwnedOperation::of(&op));
        let id = message.id.clone();
        let response = call(&mut inner, Request::from_parts(parts, Body::from(bytes))).await;
        if let Some(op) = audited {
            self.record(&caller, &op.borrow(), Some(&verdict), started, Some(response.status()));
        }
        match list {
            Some(kind) => self.filter(response, caller, Some(kind), id).await,
            None => response,
        }
    }

    /// Filters the list answers in `response`: the answer to request `id`, a `kind` list, or
    /// (`kind` unknown) any list answer by its shape.
    async fn filter(
        self: Arc<Self>,
        response: Response,
        caller: Principal,
        kind: Option<ListKind>,
        id: Option<String>,
    ) -> Response {
        if !response.status().is_success() {
            return response;
        }
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_sse = content_type.starts_with("text/event-stream");
        let is_json = content_type.starts_with("application/json");
        let (mut parts, body) = response.into_parts();
        if is_json {
            let Ok(bytes) = axum::body::to_bytes(body, MAX_LIST_ANSWER).await else {
                return json_rpc_error(
                    StatusCode::BAD_GATEWAY,
                    id.as_deref(),
                    -32603,
                    "the list answer is too large to filter",
                );
            };
            let bytes = match self.filter_for(&caller, &bytes, kind) {
                Filtered::Rewritten(filtered, _) => Bytes::from(filtered),
                Filtered::Untouched => bytes,
            };
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            return Response::from_parts(parts, Body::from(bytes));
        }
        if !is_sse {
            return Response::from_parts(parts, body);
        }
        let wanted: Option<serde_json::Value> = id.as_deref().and_then(|id| serde_json::from_str(id).ok());
        let shared = self.clone();
        let rewriter = EventRewriter::new(move |_event: &super::sse::Event<'_>, data: &[u8]| {
            // The answer to this request is judged as its kind of list; anything else by shape.
            let kind = kind.filter(|_| answers(data, wanted.as_ref()));
            match shared.filter_for(&caller, data, kind) {
                Filtered::Rewritten(filtered, _) => Some(filtered),
                Filtered::Untouched => None,
            }
        });
        parts.headers.remove(CONTENT_LENGTH);
        let stream = futures::stream::unfold(Some((body.into_data_stream(), rewriter)), |state| async move {
            let (mut body, mut rewriter) = state?;
            loop {
                match body.next().await {
                    Some(Ok(chunk)) => match rewriter.push(&chunk) {
                        Ok(out) if out.is_empty() => {}
                        Ok(out) => return Some((Ok::<_, Infallible>(out), Some((body, rewriter)))),
                        Err(e) => {
                            tracing::warn!(error = %e, "cut off an event stream");
                            return None;
                        }
                    },
                    // The upstream broke off: so does the stream (what is held back is unfinished).
                    Some(Err(_)) => return None,
                    None => {
                        let rest = rewriter.finish();
                        return (!rest.is_empty()).then_some((Ok(rest), None));
                    }
                }
            }
        });
        Response::from_parts(parts, Body::from_stream(stream))
    }
}

/// Whether the JSON-RPC message `data` answers the request `id`.
fn answers(data: &[u8], id: Option<&serde_json::Value>) -> bool {
    #[derive(serde::Deserialize)]
    struct Id {
        id: serde_json::Value,
    }
    id.is_some_and(|id| serde_json::from_slice::<Id>(data).is_ok_and(|m| &m.id == id))
}

async fn call<S>(inner: &mut S, request: Request<Body>) -> Response
where
    S: Service<Request<Body>, Error = Infallible>,
    S::Response: IntoResponse,
{
    match inner.call(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// An operation kept past the request it was read from (for the audit line after the answer).
struct OwnedOperation {
    method: String,
    target: Option<(super::TargetKind, String)>,
}

impl OwnedOperation {
    fn of(op: &Operation<'_>) -> Self {
        Self { method: op.method.to_owned(), target: op.target.map(|t| (t.kind, t.name.to_owned())) }
    }

    fn borrow(&self) -> Operation<'_> {
        Operation {
            method: &self.method,
            target: self.target.as_ref().map(|(kind, name)| super::Target { kind: *kind, name }),
            arguments: None,
        }
    }
}
