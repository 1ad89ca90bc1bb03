//! Where what a child sends on its own goes. Progress notifications go to the session whose
//! request they report on (their tokens are rewritten on the way in, so sessions sharing one
//! child cannot collide); a request from the child (sampling, elicitation, roots) goes to the
//! client whose request is in flight, on that request's stream. Other notifications go to the
//! session of a per-session child. A child shared by many sessions cannot say whose its other
//! notifications are, so they never reach a session they may not belong to:
//! `notifications/resources/updated` goes to the sessions subscribed to that URI; the
//! `…/list_changed` notifications (no payload, about the server itself) go to every session;
//! everything else — log messages, task status, custom notifications — is dropped. When the
//! child exits, its sessions are ended.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rmcp::model::{
    CancelledNotificationParam, ClientResult, ErrorCode, ErrorData, GetExtensions, Notification,
    NumberOrString, ProgressToken, RequestId, ServerNotification, ServerRequest,
};
use rmcp::service::{OriginatingRequestId, Peer, PeerRequestOptions, RoleServer, ServiceError};
use rmcp::transport::streamable_http_server::session::SessionId;
use tokio_util::sync::CancellationToken;

/// Identifies one MCP session of a child (our numbering, stable before the session id is known).
pub(crate) type SessionKey = u64;

/// What to do with the sessions of a child that exited (end them, so their clients start anew).
pub(crate) type OnExit = Box<dyn Fn(Vec<SessionId>) + Send + Sync>;

/// The routing table of one child.
pub(crate) struct Routes {
    table: Mutex<Table>,
    on_exit: OnExit,
    /// Whether the child serves many sessions (`per_session = false`).
    shared: bool,
}

#[derive(Default)]
struct Table {
    sessions: HashMap<SessionKey, Session>,
    /// Requests sent to the child and not yet answered, by our id: whose they are.
    in_flight: HashMap<i64, (SessionKey, RequestId)>,
    /// Our progress token → the session and the token its client chose.
    progress: HashMap<ProgressToken, (SessionKey, ProgressToken)>,
    /// Requests of the child waiting for a client, so the child can cancel them.
    child_requests: HashMap<RequestId, CancellationToken>,
}

struct Session {
    peer: Peer<RoleServer>,
    id: Option<SessionId>,
    /// The resource URIs it subscribed to.
    subscriptions: HashSet<String>,
}

/// Who a child's notification (other than progress and cancellation) is for.
enum Audience {
    Everyone,
    SubscribersOf(String),
    NoOne,
}

impl Routes {
    /// An empty table for a child serving one session, or many (`shared`); `on_exit` receives
    /// the ids of the sessions when the child exits.
    pub(crate) fn new(shared: bool, on_exit: OnExit) -> Self {
        Self { table: Mutex::new(Table::default()), on_exit, shared }
    }

    /// Who `notification` is for, when the child is shared.
    fn shared_audience(notification: &ServerNotification) -> Audience {
        match notification {
            ServerNotification::ResourceUpdatedNotification(updated) => {
                Audience::SubscribersOf(updated.params.uri.clone())
            }
            ServerNotification::ResourceListChangedNotification(_)
            | ServerNotification::ToolListChangedNotification(_)
            | ServerNotification::PromptListChangedNotification(_) => Audience::Everyone,
            _ => Audience::NoOne,
        }
    }

    /// The session subscribed to `uri` (its subscription was accepted by the child).
    pub(crate) fn subscribe(&self, key: SessionKey, uri: &str) {
        if let Some(session) = self.lock().sessions.get_mut(&key) {
            session.subscriptions.insert(uri.to_owned());
        }
    }

    /// The session unsubscribes from `uri`; whether another session still is subscribed (then
    /// the child must keep sending its updates).
    pub(crate) fn unsubscribe(&self, key: SessionKey, uri: &str) -> bool {
        let mut table = self.lock();
        if let Some(session) = table.sessions.get_mut(&key) {
            session.subscriptions.remove(uri);
        }
        table.sessions.values().any(|s| s.subscriptions.contains(uri))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A session starts using the child.
    pub(crate) fn add_session(&self, key: SessionKey, peer: Peer<RoleServer>) {
        self.lock().sessions.insert(key, Session { peer, id: None, subscriptions: HashSet::new() });
    }

    /// The session's HTTP id, once a request has shown it.
    pub(crate) fn learn_session_id(&self, key: SessionKey, id: SessionId) {
        if let Some(session) = self.lock().sessions.get_mut(&key)
            && session.id.is_none()
        {
            session.id = Some(id);
        }
    }

    /// The session ended.
    pub(crate) fn remove_session(&self, key: SessionKey) {
        let mut table = self.lock();
        table.sessions.remove(&key);
        table.in_flight.retain(|_, (owner, _)| *owner != key);
        table.progress.retain(|_, (owner, _)| *owner != key);
    }

    /// Records request `id` (ours) of `key` as in flight; returns the progress token to send to the
    /// child in place of the client's.
    pub(crate) fn begin(
        &self,
        id: i64,
        key: SessionKey,
        client_request: RequestId,
        progress: Option<ProgressToken>,
    ) -> Option<ProgressToken> {
        let mut table = self.lock();
        table.in_flight.insert(id, (key, client_request));
        progress.map(|token| {
            let ours = ProgressToken(NumberOrString::Number(id));
            table.progress.insert(ours.clone(), (key, token));
            ours
        })
    }

    /// Request `id` (ours) was answered or abandoned.
    pub(crate) fn end(&self, id: i64) {
        let mut table = self.lock();
        table.in_flight.remove(&id);
        table.progress.remove(&ProgressToken(NumberOrString::Number(id)));
    }

    /// A notification from the child. Awaited by the reader so notifications keep their order
    /// and reach the client before the answer they precede.
    pub(crate) async fn child_notification(&self, notification: ServerNotification) {
        let targets: Vec<(Peer<RoleServer>, ServerNotification)> = {
            let table = self.lock();
            match notification {
                ServerNotification::ProgressNotification(mut progress) => {
                    let Some((key, token)) = table.progress.get(&progress.params.progress_token) else {
                        return; // the request is over, or the token is not one we gave
                    };
                    let Some(session) = table.sessions.get(key) else { return };
                    progress.params.progress_token = token.clone();
                    vec![(session.peer.clone(), ServerNotification::ProgressNotification(progress))]
                }
                ServerNotification::CancelledNotification(cancelled) => {
                    if let Some(waiting) =
                        cancelled.params.request_id.as_ref().and_then(|id| table.child_requests.get(id))
                    {
                        waiting.cancel();
                    }
                    return;
                }
                other => {
                    let audience =
                        if self.shared { Self::shared_audience(&other) } else { Audience::Everyone };
                    let to = |session: &&Session| match &audience {
                        Audience::Everyone => true,
                        Audience::SubscribersOf(uri) => session.subscriptions.contains(uri),
                        Audience::NoOne => false,
                    };
                    if matches!(audience, Audience::NoOne) {
                        tracing::debug!(
                            "a notification of the shared stdio MCP server was dropped: it cannot say whose it is"
                        );
                    }
                    table
                        .sessions
                        .values()
                        .filter(to)
                        .map(|session| (session.peer.clone(), other.clone()))
                        .collect()
                }
            }
        };
        for (peer, notification) in targets {
            if let Err(e) = peer.send_notification(notification).await {
                tracing::debug!(error = %e, "notification from the stdio MCP server not delivered");
            }
        }
    }

    /// A request from the child, answered by the client it concerns. `ping` is answered here.
    pub(crate) async fn child_request(
        &self,
        id: &RequestId,
        mut request: ServerRequest,
    ) -> Result<ClientResult, ErrorData> {
        if matches!(request, ServerRequest::PingRequest(_)) {
            return Ok(ClientResult::empty(()));
        }
        let cancel = CancellationToken::new();
        let (peer, origin) = {
            let mut table = self.lock();
            let target = match (table.in_flight.len(), table.sessions.len()) {
                // While one request is in flight the child can only be asking about it.
                (1, _) => table.in_flight.values().next().and_then(|(key, client_request)| {
                    table.sessions.get(key).map(|s| (s.peer.clone(), Some(client_request.clone())))
                }),
                (_, 1) => table.sessions.values().next().map(|s| (s.peer.clone(), None)),
                _ => None,
            };
            let Some(target) = target else {
                return Err(ErrorData::new(
                    ErrorCode::INVALID_REQUEST,
                    "mcpgate cannot tell which client this request is for: the stdio server is \
                     shared by several sessions (set upstream.per_session = true)",
                    None,
                ));
            };
            table.child_requests.insert(id.clone(), cancel.clone());
            target
        };
        if let Some(origin) = origin {
            // Delivered on the stream of the client's request, as the transport prefers.
            request.extensions_mut().insert(OriginatingRequestId(origin));
        }
        let reply = async {
            let handle = peer
                .send_cancellable_request(request, PeerRequestOptions::no_options())
                .await
                .map_err(client_error)?;
            let sent_as = handle.id.clone();
            tokio::select! {
                reply = handle.await_response() => reply.map_err(client_error),
                () = cancel.cancelled() => {
                    let params = CancelledNotificationParam::new(Some(sent_as), Some("cancelled by the MCP server".into()));
                    let _ = peer.send_notification(ServerNotification::CancelledNotification(Notification::new(params))).await;
                    Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "cancelled", None))
                }
            }
        }
        .await;
        self.lock().child_requests.remove(id);
        reply
    }

    /// The child exited: its sessions are handed to `on_exit` and forgotten.
    pub(crate) fn child_exited(&self) {
        let ids = {
            let mut table = self.lock();
            table.in_flight.clear();
            table.progress.clear();
            table.sessions.drain().filter_map(|(_, session)| session.id).collect::<Vec<_>>()
        };
        if !ids.is_empty() {
            (self.on_exit)(ids);
        }
    }
}

fn client_error(error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(error) => error,
        other => {
            ErrorData::new(ErrorCode::INTERNAL_ERROR, format!("the MCP client did not answer: {other}"), None)
        }
    }
}
