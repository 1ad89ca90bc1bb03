//! rmcp integration: a tool reads its caller by taking a [`Principal`] argument, and the demo
//! MCP server (`whoami`, `echo`) used by the examples, the tests and `mcpgate demo`.
//!
//! rmcp's Streamable HTTP service hands each request's [`http::request::Parts`] to the handler;
//! the [`BearerLayer`](crate::resource::BearerLayer) has put the principal into those parts'
//! extensions, so nothing else needs wiring:
//!
//! ```ignore
//! #[tool(description = "Who is calling")]
//! fn whoami(&self, caller: mcpgate::Principal) -> String {
//!     caller.subject().to_owned()
//! }
//! ```

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

use crate::Principal;

impl<C: AsRequestContext> FromContextPart<C> for Principal {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        context
            .as_request_context()
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("this tool needs an authenticated caller", None))
    }
}

/// Arguments of the `echo` tool.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// The demo MCP server: `whoami` answers the caller's identity as JSON text, `echo` returns its
/// argument.
#[derive(Debug, Clone)]
pub struct DemoServer {
    tool_router: ToolRouter<Self>,
}

impl Default for DemoServer {
    fn default() -> Self {
        Self { tool_router: Self::tool_router() }
    }
}

#[tool_router]
impl DemoServer {
    /// `{"subject", "client_id", "scopes"}` of the caller, and the identity claims its token
    /// carries (`email`, `name`, `preferred_username`, `groups`) when it has them.
    #[tool(
        description = "Who is calling: the subject, client id and scopes of the caller's access token, and its identity claims, as JSON"
    )]
    pub fn whoami(&self, caller: Principal) -> String {
        let mut me = serde_json::json!({
            "subject": caller.subject(),
            "client_id": caller.client_id(),
            "scopes": caller.scopes(),
        });
        for claim in ["email", "email_verified", "name", "preferred_username", "groups"] {
            if let Some(value) = caller.claims().get(claim) {
                me[claim] = value.clone();
            }
        }
        me.to_string()
    }

    /// Returns its argument.
    #[tool(description = "Returns the given text unchanged")]
    pub fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
