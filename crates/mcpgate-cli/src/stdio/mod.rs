//! stdio upstreams: an MCP server started as a child process (`[upstream] command`) and offered
//! to clients as Streamable HTTP. With `per_session`, each MCP session gets its own process,
//! started at `initialize` with the caller's identity (and provider token) in its environment
//! — and each sessionless (2026-07-28) caller its own, by subject and client ([`sessionless`]);
//! else one process, initialized by the gateway, serves every session and every sessionless
//! request. Live processes are capped, a process that exits ends its sessions, and shutdown
//! stops them all.

// Logging (`logging/setLevel`) is deprecated by a 2026 SEP, yet today's clients use it.
#[allow(deprecated)]
mod bridge;
mod child;
mod routes;
mod sessionless;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::user_tokens::UserTokens;
use mcpgate::Principal;
use rmcp::model::{
    ClientCapabilities, ClientNotification, ClientRequest, ErrorCode, ErrorData, Implementation,
    InitializeRequest, InitializeRequestParams, InitializeResult, InitializedNotification, ProtocolVersion,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{
    SessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use secrecy::SecretString;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use bridge::Bridge;
use child::{Child, Launch};
use routes::{Routes, SessionKey};

/// How long a child has to answer `initialize` (an `npx` server may be downloaded first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after its child exited a session is closed.
const SESSION_END_DELAY: Duration = Duration::from_secs(1);
/// How long shutdown waits for the children to exit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// The JSON-RPC code of "no more processes may be started now".
const AT_CAPACITY: ErrorCode = ErrorCode(-32002);

/// What a stdio upstream runs and how.
pub struct StdioSettings {
    /// Program and arguments.
    pub command: Vec<String>,
    /// One process per MCP session (else one shared).
    pub per_session: bool,
    /// At most this many live processes.
    pub max_children: usize,
    /// Environment variables the children must not inherit (mcpgate's own secrets).
    pub withheld_env: Vec<String>,
    /// Give per-session children the caller's identity (`MCPGATE_SUBJECT`, `_CLIENT_ID`, `_SCOPES`).
    pub identity: bool,
    /// Give per-session children the user's provider and downstream tokens
    /// (`MCPGATE_PROVIDER_TOKEN`, `MCPGATE_DOWNSTREAM_TOKEN`); replaced by
    /// [`StdioUpstream::renew_user_tokens`] when a reload keeps the upstream.
    pub user_tokens: Option<UserTokens>,
    /// Host names clients reach the gateway by (the transport checks `Host`).
    pub allowed_hosts: Vec<String>,
    /// The largest request body accepted.
    pub max_request_bytes: usize,
}

/// The Streamable HTTP service of a stdio upstream, to mount (a clone serves the same sessions).
pub type StdioService = StreamableHttpService<Bridge, LocalSessionManager>;

/// A running stdio upstream: the Streamable HTTP service to mount, and the handle to stop its
/// processes.
#[derive(Clone)]
pub struct StdioUpstream {
    inner: Arc<Inner>,
}

/// State shared by the sessions of one stdio upstream.
pub(crate) struct Inner {
    settings: StdioSettings,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    sessions: Weak<LocalSessionManager>,
    shared: Mutex<Option<(Arc<Child>, InitializeResult)>>,
    /// Where children get the user's tokens: the current authorization server's (a reload
    /// builds a new one; `settings.user_tokens` is only the first).
    user_tokens: std::sync::RwLock<Option<UserTokens>>,
    /// The children of sessionless callers, with `per_session`.
    callers: sessionless::CallerChildren,
    next_key: AtomicU64,
}

impl StdioUpstream {
    /// The upstream and the service that serves it.
    pub fn new(settings: StdioSettings) -> (Self, StdioService) {
        let sessions = Arc::new(LocalSessionManager::default());
        let shutdown = CancellationToken::new();
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(settings.allowed_hosts.clone())
            .with_max_request_body_bytes(settings.max_request_bytes)
            .with_cancellation_token(shutdown.child_token());
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(settings.max_children)),
            user_tokens: std::sync::RwLock::new(settings.user_tokens.clone()),
            settings,
            tracker: TaskTracker::new(),
            shutdown,
            sessions: Arc::downgrade(&sessions),
            shared: Mutex::new(None),
            callers: sessionless::CallerChildren::default(),
            next_key: AtomicU64::new(1),
        });
        inner.tracker.spawn(sessionless::reap_idle(Arc::downgrade(&inner), inner.shutdown.child_token()));
        let factory = {
            let inner = inner.clone();
            move || Ok(Bridge::new(inner.clone()))
        };
        (Self { inner }, StreamableHttpService::new(factory, sessions, config))
    }

    /// From now on, children get the user's tokens from `tokens` (the authorization server of
    /// the configuration a reload swapped in, which kept this upstream).
    pub fn renew_user_tokens(&self, tokens: Option<UserTokens>) {
        *self.inner.user_tokens.write().unwrap_or_else(std::sync::PoisonError::into_inner) = tokens;
    }

    /// Whether `other` is this upstream (a clone of its handle).
    pub fn same(&self, other: &StdioUpstream) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Ends every session and stops every process (stdin closed, killed after a grace period),
    /// waiting a few seconds for them to exit.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.shared.lock().await.take();
        self.inner.callers.sweep(Duration::ZERO);
        self.inner.tracker.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.inner.tracker.wait()).await.is_err() {
            tracing::warn!("stdio MCP servers still running after {SHUTDOWN_WAIT:?}");
        }
    }
}

impl Inner {
    fn per_session(&self) -> bool {
        self.settings.per_session
    }

    fn next_session_key(&self) -> SessionKey {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Routes for a new child: when it exits, its sessions are closed so their clients start anew.
    fn routes(&self) -> Arc<Routes> {
        let sessions = self.sessions.clone();
        Arc::new(Routes::new(
            !self.per_session(),
            Box::new(move |ids| {
                let Some(sessions) = sessions.upgrade() else { return };
                tokio::spawn(async move {
                    // First let the sessions deliver the errors of their waiting requests: closing
                    // a session drops what it has not yet sent.
                    tokio::time::sleep(SESSION_END_DELAY).await;
                    for id in ids {
                        let _ = sessions.close_session(&id).await;
                    }
                });
            }),
        ))
    }

    /// Starts a child for one caller (`principal` is absent for the shared child).
    async fn start_child(&self, principal: Option<&Principal>) -> Result<Child, ErrorData> {
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            ErrorData::new(
                AT_CAPACITY,
                format!(
                    "the gateway already runs its limit of {} MCP server processes; try again later",
                    self.settings.max_children
                ),
                None,
            )
        })?;
        let mut extra = Vec::new();
        if let Some(principal) = principal {
            if self.settings.identity {
                for field in crate::identity::fields(principal) {
                    extra.push((field.env, SecretString::from(field.value.into_owned())));
                }
            }
            let tokens = self.user_tokens.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            if let Some(tokens) = &tokens {
                let handed = tokens.for_caller(principal).await.map_err(|e| {
                    ErrorData::internal_error(format!("the user's provider token is unavailable: {e}"), None)
                })?;
                extra.extend(handed.into_iter().map(|token| (token.env, token.value)));
            }
        }
        let launch = Launch {
            command: self.settings.command.clone(),
            withheld: self.settings.withheld_env.clone(),
            extra,
        };
        Child::spawn(&launch, self.routes(), Some(permit), &self.tracker, &self.shutdown).map_err(|e| {
            tracing::error!(error = %e, command = ?self.settings.command, "cannot start the stdio MCP server");
            ErrorData::internal_error(format!("the MCP server process could not be started: {e}"), None)
        })
    }

    /// The shared child, started and initialized by the gateway when there is none running.
    async fn shared_child(
        &self,
        version: ProtocolVersion,
    ) -> Result<(Arc<Child>, InitializeResult), ErrorData> {
        let mut shared = self.shared.lock().await;
        if let Some((child, info)) = shared.as_ref()
            && !child.exited().is_cancelled()
        {
            return Ok((child.clone(), info.clone()));
        }
        let child = self.start_child(None).await?;
        let info = self.initialize_for_gateway(&child, version).await?;
        let child = Arc::new(child);
        *shared = Some((child.clone(), info.clone()));
        Ok((child, info))
    }

    /// Initializes `child` in the gateway's name (at `version`): for a shared child, or one
    /// that serves sessionless requests. The gateway speaks for clients it cannot stand for,
    /// so it claims no client capabilities: such a server cannot ask a user's client for
    /// sampling or elicitation.
    async fn initialize_for_gateway(
        &self,
        child: &Child,
        version: ProtocolVersion,
    ) -> Result<InitializeResult, ErrorData> {
        let params = InitializeRequestParams::new(
            ClientCapabilities::default(),
            Implementation::new("mcpgate", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(version);
        let request = ClientRequest::InitializeRequest(InitializeRequest::new(params));
        let info = bridge::initialize_child(child, request, &self.shutdown.child_token()).await?;
        child.notify(ClientNotification::InitializedNotification(InitializedNotification::default())).await;
        Ok(info)
    }
}
