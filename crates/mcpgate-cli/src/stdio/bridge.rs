//! The MCP server the Streamable HTTP transport sees for one session — or for one sessionless
//! request (2026-07-28), which the transport serves on a bridge of its own: every request and
//! notification is passed to the child (started at `initialize`; the caller's or the shared
//! one for a sessionless request, see [`super::sessionless`]), and the child's answers come
//! back. rmcp's transport does the HTTP side (sessions, SSE, resumption, the per-request
//! `_meta` checks); this is the bridge between it and the child's stdio.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CancelledNotificationParam,
    ClientNotification, ClientRequest, CompleteRequestParams, CompleteResult, CreateTaskResult,
    CustomNotification, CustomRequest, CustomResult, DiscoverResult, ErrorData, Extensions, GetMeta,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, GetTaskParams, GetTaskResult,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, Notification, PaginatedRequestParams, ProgressNotificationParam,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Request,
    RequestOptionalParam, ServerConfig, ServerResult, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::SessionId;
use serde::de::DeserializeOwned;

use super::Inner;
use super::child::Child;
use super::routes::{Routes, SessionKey};
use super::sessionless;

/// One MCP session bridged to a stdio child.
pub struct Bridge {
    upstream: Arc<Inner>,
    key: SessionKey,
    child: OnceLock<Arc<Child>>,
    info: OnceLock<InitializeResult>,
}

impl Bridge {
    pub(super) fn new(upstream: Arc<Inner>) -> Self {
        let key = upstream.next_session_key();
        Self { upstream, key, child: OnceLock::new(), info: OnceLock::new() }
    }

    /// Starts (or joins) the child at the session's `initialize`.
    async fn start(
        &self,
        params: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        if self.child.get().is_some() {
            return Err(ErrorData::invalid_request("the session is already initialized", None));
        }
        let version = params.protocol_version.clone();
        let mut request = ClientRequest::InitializeRequest(Request::new(params));
        *request.get_meta_mut() = context.meta;
        let (child, info) = if self.upstream.per_session() {
            let child = self.upstream.start_child(principal_of(&context.extensions)).await?;
            let info = initialize_child(&child, request, &context.ct).await?;
            // Only now: until the session has answered `initialize`, nothing can be delivered
            // to it (what a child says before that, such as a `list_changed`, is dropped).
            child.routes().add_session(self.key, context.peer.clone());
            (Arc::new(child), info)
        } else {
            let (child, info) = self.upstream.shared_child(version).await?;
            child.routes().add_session(self.key, context.peer.clone());
            (child, info)
        };
        let _ = self.info.set(info.clone());
        let _ = self.child.set(child);
        Ok(info)
    }

    /// The child a request goes to: the session's, or for a sessionless request the one
    /// [`Inner::sessionless_child`] chooses (this bridge serves that request alone).
    async fn child_for(&self, context: &RequestContext<RoleServer>) -> Result<&Arc<Child>, ErrorData> {
        if self.child.get().is_none() && sessionless::is_sessionless(&context.meta) {
            let (child, info) = self.upstream.sessionless_child(principal_of(&context.extensions)).await?;
            // Its progress notifications go to this request's stream.
            child.routes().add_session(self.key, context.peer.clone());
            let _ = self.info.set(info);
            let _ = self.child.set(child);
        }
        self.running_child(&context.extensions)
    }

    /// The child of an initialized session whose process is still running.
    fn running_child(&self, extensions: &Extensions) -> Result<&Arc<Child>, ErrorData> {
        let child = self
            .child
            .get()
            .ok_or_else(|| ErrorData::invalid_request("the session is not initialized", None))?;
        if child.exited().is_cancelled() {
            return Err(child.exited_error());
        }
        if let Some(id) = session_id(extensions) {
            child.routes().learn_session_id(self.key, id);
        }
        Ok(child)
    }
}

/// Sends the client's `initialize` to a fresh child and reads its answer.
pub(super) async fn initialize_child(
    child: &Child,
    request: ClientRequest,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<InitializeResult, ErrorData> {
    let id = child.next_id();
    let answer =
        tokio::time::timeout(super::START_TIMEOUT, child.request(id, request, cancel)).await.map_err(
            |_| ErrorData::internal_error("the MCP server process did not answer initialize in time", None),
        )??;
    let value = match answer {
        ServerResult::CustomResult(result) => result.0,
        other => serde_json::to_value(other).unwrap_or_default(),
    };
    serde_json::from_value(value).map_err(|e| {
        ErrorData::internal_error(format!("the MCP server process answered initialize with {e}"), None)
    })
}

/// The caller of the HTTP request a message came in (set by the bearer layer).
fn principal_of(extensions: &Extensions) -> Option<&mcpgate::Principal> {
    extensions.get::<http::request::Parts>().and_then(|parts| parts.extensions.get::<mcpgate::Principal>())
}

/// The `Mcp-Session-Id` of the HTTP request a message came in.
fn session_id(extensions: &Extensions) -> Option<SessionId> {
    let parts = extensions.get::<http::request::Parts>()?;
    let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
    Some(Arc::from(id))
}

/// A request to the child, answered by a result of the type the method defines.
macro_rules! forward_requests {
    ($($method:ident($params:ty) -> $result:ty as $wire:ty => $variant:ident($request:expr);)*) => {$(
        async fn $method(&self, params: $params, context: RequestContext<RoleServer>) -> Result<$result, ErrorData> {
            let request = ClientRequest::$variant($request(params));
            self.forward_typed::<$wire>(request, context).await.map(Into::into)
        }
    )*};
}

/// A request to the child whose result carries nothing.
macro_rules! forward_empty_requests {
    ($($method:ident($params:ty) => $variant:ident;)*) => {$(
        async fn $method(&self, params: $params, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
            self.forward(ClientRequest::$variant(Request::new(params)), context).await.map(|_| ())
        }
    )*};
}

impl Bridge {
    /// Passes one request of the session to the child, with its `_meta` (the progress token
    /// exchanged for ours), and returns the child's answer as the child wrote it.
    async fn forward(
        &self,
        mut request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let child = self.child_for(&context).await?;
        let routes: &Routes = child.routes();
        let sessionless = sessionless::is_sessionless(&context.meta);
        // Subscriptions are the session's: updates of a shared child reach its subscribers only.
        let subscription = match &request {
            ClientRequest::SubscribeRequest(r) => Some((true, r.params.uri.clone())),
            ClientRequest::UnsubscribeRequest(r) => Some((false, r.params.uri.clone())),
            _ => None,
        };
        if let Some((false, uri)) = &subscription
            && routes.unsubscribe(self.key, uri)
        {
            // Another session still follows the resource: the child keeps sending its updates.
            return Ok(ServerResult::empty(()));
        }
        let id = child.next_id();
        // Every child speaks a revision with a session: the per-request lifecycle stays here.
        let mut meta = sessionless::for_legacy_child(context.meta);
        if let Some(ours) = routes.begin(id, self.key, context.id.clone(), meta.get_progress_token()) {
            meta.set_progress_token(ours);
        }
        *request.get_meta_mut() = meta;
        let reply = child.request(id, request, &context.ct).await;
        routes.end(id);
        if let (Some((true, uri)), Ok(_)) = (&subscription, &reply) {
            routes.subscribe(self.key, uri);
        }
        match reply {
            Ok(ServerResult::CustomResult(result)) if sessionless => {
                Ok(ServerResult::CustomResult(CustomResult(sessionless::complete_result(result.0))))
            }
            reply => reply,
        }
    }

    async fn forward_typed<T: DeserializeOwned>(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<T, ErrorData> {
        let value = match self.forward(request, context).await? {
            ServerResult::CustomResult(result) => result.0,
            other => serde_json::to_value(other).unwrap_or_default(),
        };
        typed(value)
    }

    /// Passes one notification of the session to the child.
    async fn forward_notification(
        &self,
        mut notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) {
        let Ok(child) = self.running_child(&context.extensions) else { return };
        *notification.get_meta_mut() = context.meta;
        child.notify(notification).await;
    }
}

impl ServerHandler for Bridge {
    async fn initialize(
        &self,
        params: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(params.clone());
        self.start(params, context).await
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.forward(ClientRequest::PingRequest(Default::default()), context).await.map(|_| ())
    }

    forward_requests! {
        complete(CompleteRequestParams) -> CompleteResult as CompleteResult => CompleteRequest(Request::new);
        get_prompt(GetPromptRequestParams) -> GetPromptResponse as GetPromptResult
            => GetPromptRequest(Request::new);
        list_prompts(Option<PaginatedRequestParams>) -> ListPromptsResult as ListPromptsResult
            => ListPromptsRequest(optional);
        list_resources(Option<PaginatedRequestParams>) -> ListResourcesResult as ListResourcesResult
            => ListResourcesRequest(optional);
        list_resource_templates(Option<PaginatedRequestParams>) -> ListResourceTemplatesResult
            as ListResourceTemplatesResult => ListResourceTemplatesRequest(optional);
        read_resource(ReadResourceRequestParams) -> ReadResourceResponse as ReadResourceResult
            => ReadResourceRequest(Request::new);
        list_tools(Option<PaginatedRequestParams>) -> ListToolsResult as ListToolsResult
            => ListToolsRequest(optional);
        get_task(GetTaskParams) -> GetTaskResult as GetTaskResult => GetTaskRequest(Request::new);
    }

    forward_empty_requests! {
        set_level(SetLevelRequestParams) => SetLevelRequest;
        subscribe(SubscribeRequestParams) => SubscribeRequest;
        unsubscribe(UnsubscribeRequestParams) => UnsubscribeRequest;
        update_task(UpdateTaskParams) => UpdateTaskRequest;
        cancel_task(CancelTaskParams) => CancelTaskRequest;
    }

    /// A tool's result, or the task the child made of the call (the tasks extension).
    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = ClientRequest::CallToolRequest(Request::new(params));
        let value = self.forward_typed::<serde_json::Value>(request, context).await?;
        if value.get("task").is_some() && value.get("content").is_none() {
            return typed::<CreateTaskResult>(value).map(Into::into);
        }
        typed::<CallToolResult>(value).map(Into::into)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.forward_typed(ClientRequest::CustomRequest(request), context).await.map(CustomResult)
    }

    // The transport cancels the request's handler, which tells the child (under our id).
    async fn on_cancelled(&self, _: CancelledNotificationParam, _: NotificationContext<RoleServer>) {}

    async fn on_progress(&self, params: ProgressNotificationParam, context: NotificationContext<RoleServer>) {
        self.forward_notification(
            ClientNotification::ProgressNotification(Notification::new(params)),
            context,
        )
        .await;
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // A shared child was initialized once, by the gateway.
        if self.upstream.per_session() {
            self.forward_notification(
                ClientNotification::InitializedNotification(Default::default()),
                context,
            )
            .await;
        }
    }

    async fn on_roots_list_changed(&self, context: NotificationContext<RoleServer>) {
        self.forward_notification(
            ClientNotification::RootsListChangedNotification(Default::default()),
            context,
        )
        .await;
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        self.forward_notification(ClientNotification::CustomNotification(notification), context).await;
    }

    fn get_info(&self) -> ServerConfig {
        self.info.get().cloned().unwrap_or_default()
    }

    /// What the child said of itself at `initialize` (the gateway's, for a sessionless caller),
    /// with the revisions the gateway serves it in.
    async fn discover(&self, context: RequestContext<RoleServer>) -> Result<DiscoverResult, ErrorData> {
        self.child_for(&context).await?;
        Ok(DiscoverResult::from_server_info(self.supported_protocol_versions().into_owned(), self.get_info()))
    }

    /// Every revision: those with an `initialize` start (or join) a child per session, the
    /// sessionless ones are served by the gateway's children ([`super::sessionless`]).
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
    }
}

/// A result of the child as the type its method defines.
fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ErrorData> {
    serde_json::from_value(value).map_err(|e| {
        ErrorData::internal_error(
            format!("the MCP server process answered with an invalid result: {e}"),
            None,
        )
    })
}

/// A request whose parameters may be absent.
fn optional<M: Default, P: Default>(params: Option<P>) -> RequestOptionalParam<M, P> {
    RequestOptionalParam { params, ..Default::default() }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(child) = self.child.get() {
            child.routes().remove_session(self.key);
        }
    }
}
