//! One MCP server running as a child process, spoken to over its stdin and stdout as the MCP
//! stdio transport defines (one JSON-RPC message per line). Requests go out under our own ids and
//! their answers are matched back; what the child sends on its own (requests, notifications) is
//! handed to its [`Routes`]. When the process exits, every waiting request gets a clear error and
//! the sessions it served are ended.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::model::{
    CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification, ClientRequest, CustomResult,
    ErrorCode, ErrorData, Notification, NumberOrString, RequestId, ServerJsonRpcMessage, ServerResult,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use super::routes::Routes;

/// A line longer than this ends the child: MCP messages carry images and files as base64, but a
/// child that never ends its line must not grow our memory without bound.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// How long a stopping child has between its stdin closing and being killed.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The JSON-RPC code of our "the MCP server process is gone" error.
pub(crate) const CHILD_EXITED: ErrorCode = ErrorCode(-32001);

/// The answer to a request sent to the child.
pub(crate) type Reply = Result<ServerResult, ErrorData>;

/// How to start a child: program, arguments and the environment it gets beyond the inherited one.
#[derive(Clone)]
pub(crate) struct Launch {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Variables removed from the inherited environment (mcpgate's own secrets).
    pub withheld: Vec<String>,
    /// Variables added for this child (the caller's identity, provider token).
    pub extra: Vec<(&'static str, SecretString)>,
}

/// A running child MCP server. Dropping it stops the process (stdin closed, then killed after a
/// grace period).
pub(crate) struct Child {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

/// What the child's I/O tasks and its owner share.
struct Shared {
    outbox: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<i64, oneshot::Sender<Reply>>>,
    next_id: AtomicI64,
    exited: CancellationToken,
    exit_reason: OnceLock<String>,
    routes: Arc<Routes>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Child {
    /// Starts `launch`; its process is tracked by `tracker` so shutdown can wait for it, and is
    /// stopped when `shutdown` is cancelled or the returned `Child` is dropped.
    pub(crate) fn spawn(
        launch: &Launch,
        routes: Arc<Routes>,
        permit: Option<OwnedSemaphorePermit>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> std::io::Result<Self> {
        let (program, args) = launch.command.split_first().ok_or(std::io::ErrorKind::InvalidInput)?;
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for name in &launch.withheld {
            command.env_remove(name);
        }
        for (name, value) in &launch.extra {
            command.env(name, value.expose_secret());
        }
        // A backstop: the process task below stops the child politely first.
        command.kill_on_drop(true);
        let mut process = command.spawn()?;
        let pid = process.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (process.stdin.take(), process.stdout.take(), process.stderr.take())
        else {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        };

        let (outbox, inbox) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            outbox,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            exited: CancellationToken::new(),
            exit_reason: OnceLock::new(),
            routes,
            _permit: permit,
        });
        let stop = shutdown.child_token();
        tracker.spawn(write_stdin(stdin, inbox, stop.clone()));
        tracker.spawn(read_stdout(BufReader::new(stdout), shared.clone()));
        tracker.spawn(log_stderr(BufReader::new(stderr), pid));
        let waiter = shared.clone();
        let stopping = stop.clone();
        tracker.spawn(async move {
            let status = tokio::select! {
                status = process.wait() => status,
                () = stopping.cancelled() => {
                    // The writer closes stdin on the same signal: the stdio transport's way to
                    // ask a server to exit. Then it is killed.
                    match tokio::time::timeout(STOP_GRACE, process.wait()).await {
                        Ok(status) => status,
                        Err(_) => {
                            let _ = process.start_kill();
                            process.wait().await
                        }
                    }
                }
            };
            let reason = match status {
                Ok(status) => format!("the MCP server process exited ({status})"),
                Err(e) => format!("the MCP server process could not be waited for: {e}"),
            };
            waiter.exit(reason);
        });
        tracing::info!(pid, program = %program, "started stdio MCP server");
        Ok(Self { shared, _stop: stop.drop_guard() })
    }

    /// A fresh id for a request to the child (register its routes before sending it).
    pub(crate) fn next_id(&self) -> i64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The routes of what this child sends on its own.
    pub(crate) fn routes(&self) -> &Arc<Routes> {
        &self.shared.routes
    }

    /// Sends `request` as `id` and waits for its answer; on `cancel`, tells the child the
    /// request is cancelled and stops waiting.
    pub(crate) async fn request(&self, id: i64, request: ClientRequest, cancel: &CancellationToken) -> Reply {
        let (answer, answered) = oneshot::channel();
        self.shared.lock_pending().insert(id, answer);
        let message = ClientJsonRpcMessage::request(request, RequestId::Number(id));
        if !self.send(&message).await {
            self.shared.lock_pending().remove(&id);
            return Err(self.exited_error());
        }
        let started = std::time::Instant::now();
        tokio::select! {
            reply = answered => {
                crate::metrics::upstream_mcp(crate::metrics::Transport::Stdio, started.elapsed(), reply.is_ok());
                reply.unwrap_or_else(|_| Err(self.exited_error()))
            }
            () = cancel.cancelled() => {
                self.shared.lock_pending().remove(&id);
                let params = CancelledNotificationParam::new(
                    Some(RequestId::Number(id)),
                    Some("cancelled by the client".into()),
                );
                self.notify(ClientNotification::CancelledNotification(Notification::new(params))).await;
                Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "the request was cancelled", None))
            }
        }
    }

    /// Sends a notification (best effort: a child that is gone has no use for it).
    pub(crate) async fn notify(&self, notification: ClientNotification) {
        self.send(&ClientJsonRpcMessage::notification(notification)).await;
    }

    /// Cancelled once the process has exited.
    pub(crate) fn exited(&self) -> &CancellationToken {
        &self.shared.exited
    }

    /// The error every request gets once the process is gone.
    pub(crate) fn exited_error(&self) -> ErrorData {
        self.shared.exited_error()
    }

    async fn send(&self, message: &ClientJsonRpcMessage) -> bool {
        let Ok(mut line) = serde_json::to_vec(message) else { return false };
        line.push(b'\n');
        self.shared.outbox.send(line).await.is_ok()
    }
}

impl Shared {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<i64, oneshot::Sender<Reply>>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn exited_error(&self) -> ErrorData {
        let reason = self.exit_reason.get().map_or("the MCP server process is not running", String::as_str);
        ErrorData::new(CHILD_EXITED, format!("{reason}; start a new MCP session"), None)
    }

    /// Records the exit (first reason wins), fails every waiting request and ends the sessions.
    fn exit(&self, reason: String) {
        if self.exit_reason.set(reason).is_err() {
            return;
        }
        tracing::warn!(reason = %self.exit_reason.get().map_or("", String::as_str), "stdio MCP server stopped");
        self.exited.cancel();
        let waiting: Vec<_> = self.lock_pending().drain().map(|(_, answer)| answer).collect();
        for answer in waiting {
            let _ = answer.send(Err(self.exited_error()));
        }
        self.routes.child_exited();
    }

    /// Hands one message from the child to whoever waits for it or to the routes.
    async fn dispatch(self: &Arc<Self>, message: ServerJsonRpcMessage) {
        match message {
            ServerJsonRpcMessage::Response(response) => self.answer(&response.id, Ok(response.result)),
            ServerJsonRpcMessage::Error(error) => match &error.id {
                Some(id) => self.answer(id, Err(error.error)),
                None => tracing::warn!(message = %error.error.message, "stdio MCP server reported an error"),
            },
            ServerJsonRpcMessage::Notification(notification) => {
                self.routes.child_notification(notification.notification).await;
            }
            ServerJsonRpcMessage::Request(request) => {
                let shared = self.clone();
                tokio::spawn(async move {
                    let reply = shared.routes.child_request(&request.id, request.request).await;
                    let message = match reply {
                        Ok(result) => ClientJsonRpcMessage::response(result, request.id),
                        Err(error) => ClientJsonRpcMessage::error(error, Some(request.id)),
                    };
                    if let Ok(mut line) = serde_json::to_vec(&message) {
                        line.push(b'\n');
                        let _ = shared.outbox.send(line).await;
                    }
                });
            }
        }
    }

    fn answer(&self, id: &RequestId, reply: Reply) {
        let waiting = match id {
            NumberOrString::Number(id) => self.lock_pending().remove(id),
            NumberOrString::String(_) => None,
        };
        match waiting {
            Some(answer) => {
                let _ = answer.send(reply);
            }
            // A late answer to a cancelled request, or a confused child: nothing waits for it.
            None => tracing::debug!(%id, "answer from the stdio MCP server matches no request"),
        }
    }
}

/// Writes queued messages to the child's stdin until told to stop, then closes it.
async fn write_stdin(mut stdin: ChildStdin, mut inbox: mpsc::Receiver<Vec<u8>>, stop: CancellationToken) {
    loop {
        let line = tokio::select! {
            line = inbox.recv() => line,
            () = stop.cancelled() => None,
        };
        let Some(line) = line else { break };
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
}

/// Reads the child's messages until its stdout closes.
async fn read_stdout(mut stdout: impl AsyncBufRead + Unpin, shared: Arc<Shared>) {
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        match read_line(&mut stdout, &mut line).await {
            Ok(0) => break "the MCP server process closed its output".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("the MCP server's output could not be read: {e}"),
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match parse_message(text) {
            Ok(message) => shared.dispatch(message).await,
            // Servers sometimes print to stdout by mistake; the message is the child's, so only
            // its size and the parse error are logged.
            Err(e) => {
                tracing::warn!(bytes = text.len(), error = %e, "stdio MCP server wrote a line that is not an MCP message");
            }
        }
    };
    // Let the process task report the exit status if it is about to; else this reason stands.
    tokio::time::sleep(Duration::from_millis(200)).await;
    shared.exit(reason);
}

/// A message from the child. Results are kept as the child wrote them (the transport passes them
/// on untouched) rather than fitted to a result type that might drop what it does not know.
fn parse_message(text: &[u8]) -> Result<ServerJsonRpcMessage, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_slice(text)?;
    if let Some(object) = value.as_object_mut()
        && !object.contains_key("method")
        && let Some(result) = object.remove("result")
    {
        let id: RequestId = serde_json::from_value(object.remove("id").unwrap_or_default())?;
        return Ok(ServerJsonRpcMessage::response(ServerResult::CustomResult(CustomResult(result)), id));
    }
    serde_json::from_value(value)
}

/// One line into `buf` (without growing past [`MAX_LINE_BYTES`]); 0 at the end of the stream.
async fn read_line(reader: &mut (impl AsyncBufRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(buf.len());
        }
        let (taken, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + taken > MAX_LINE_BYTES {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "a message is over 16 MiB"));
        }
        buf.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if done {
            return Ok(buf.len());
        }
    }
}

/// The child's stderr is its log: passed on line by line.
async fn log_stderr(stderr: impl AsyncBufRead + Unpin, pid: Option<u32>) {
    let mut lines = stderr.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(2000).collect();
        tracing::info!(target: "mcpgate::stdio", pid, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_read_whole_and_bounded() {
        let input: &[u8] = b"{\"a\":1}\n\nlast-without-newline";
        let mut reader = BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), 8);
        assert_eq!(buf, b"{\"a\":1}\n");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), 1);
        buf.clear();
        assert_eq!(buf.len(), 0);
        read_line(&mut reader, &mut buf).await.unwrap();
        assert_eq!(buf, b"last-without-newline");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), 0);

        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        let mut reader = BufReader::new(&long[..]);
        let error = read_line(&mut reader, &mut buf).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }
}
