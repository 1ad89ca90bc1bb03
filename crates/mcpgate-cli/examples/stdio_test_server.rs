//! A small MCP server on stdio for the gateway's tests: `echo`, `env` (a variable of its
//! environment), `whoami` (the caller the gateway started it for), `pid`, `slow` (progress notifications, one per step), `roots` (asks the client
//! for its roots: a server-to-client request), `announce` (sends, on its own, a log message, updates
//! of `test://a`, `test://b` and `test://c` and a tools/list_changed: notifications that belong to no
//! request) and `crash` (the process exits mid-request). Resource subscriptions are accepted.
// Logging, roots and resources/subscribe are deprecated for 2026 protocol versions; today's
// servers and clients still speak them.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
struct Text {
    text: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Name {
    name: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct Steps {
    steps: u32,
}

#[derive(Clone)]
struct TestServer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl TestServer {
    #[tool(description = "Returns the given text")]
    fn echo(&self, Parameters(Text { text }): Parameters<Text>) -> String {
        text
    }

    #[tool(description = "The value of an environment variable of this process, or `(unset)`")]
    fn env(&self, Parameters(Name { name }): Parameters<Name>) -> String {
        std::env::var(name).unwrap_or_else(|_| "(unset)".into())
    }

    #[tool(
        description = "Who the gateway started this process for, as JSON (from MCPGATE_SUBJECT, MCPGATE_CLIENT_ID, MCPGATE_EMAIL, MCPGATE_USERNAME, MCPGATE_GROUPS, MCPGATE_CLIENT_KIND)"
    )]
    fn whoami(&self) -> String {
        let var = |name| std::env::var(name).ok();
        serde_json::json!({"subject": var("MCPGATE_SUBJECT"), "client_id": var("MCPGATE_CLIENT_ID"),
            "email": var("MCPGATE_EMAIL"), "username": var("MCPGATE_USERNAME"), "groups": var("MCPGATE_GROUPS"),
            "kind": var("MCPGATE_CLIENT_KIND")})
        .to_string()
    }

    #[tool(description = "This process's id")]
    fn pid(&self) -> String {
        std::process::id().to_string()
    }

    #[tool(description = "Reports progress once per step (300 ms apart), then returns")]
    async fn slow(
        &self,
        Parameters(Steps { steps }): Parameters<Steps>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let token = context.meta.get_progress_token();
        for step in 1..=steps {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(token) = &token {
                let progress = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(f64::from(steps));
                let _ = context.peer.notify_progress(progress).await;
            }
        }
        Ok(format!("{steps} steps done"))
    }

    // Roots: the simplest server-to-client request.
    #[tool(description = "Asks the client for its roots and returns their URIs")]
    async fn roots(&self, context: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        let roots = context
            .peer
            .list_roots()
            .await
            .map_err(|e| ErrorData::internal_error(format!("roots/list failed: {e}"), None))?;
        Ok(roots.roots.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>().join(" "))
    }

    #[tool(description = "Sends a log message with the text, resource updates and tools/list_changed")]
    async fn announce(
        &self,
        Parameters(Text { text }): Parameters<Text>,
        context: RequestContext<RoleServer>,
    ) -> Result<String, ErrorData> {
        let peer = &context.peer;
        let log = LoggingMessageNotificationParam::new(LoggingLevel::Info, serde_json::json!(text));
        let _ = peer.notify_logging_message(log).await;
        for uri in ["test://a", "test://b", "test://c"] {
            let _ = peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await;
        }
        let _ = peer.notify_tool_list_changed().await;
        Ok("announced".into())
    }

    #[tool(description = "Exits the process without answering")]
    fn crash(&self) -> String {
        std::process::exit(3)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_logging()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
    }

    async fn subscribe(
        &self,
        _: SubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    eprintln!("stdio test server {} starting", std::process::id());
    let server = TestServer { tool_router: TestServer::tool_router() };
    match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => {
            let _ = running.waiting().await;
        }
        Err(e) => eprintln!("stdio test server: {e}"),
    }
}
