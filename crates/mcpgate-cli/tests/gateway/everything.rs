//! A real third-party stdio MCP server behind the gateway: `@modelcontextprotocol/server-everything`
//! (npm, pinned in tests/interop), one process per session, in proxy mode against the real test IdP.
//! After the whole OAuth flow: tools/list, a tool call with structured content, a long-running
//! call whose progress arrives step by step, a sampling request from the server answered by the
//! client, and the user's provider token in the child's environment (and no gateway secret).
#![allow(deprecated)] // sampling: deprecated for 2026 protocol versions, spoken by today's clients

use crate::{gateway, idp, process, sign_in};

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::start_gateway;
use process::free_port;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, Implementation, ProgressNotificationParam, SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, ServiceExt};
use serde_json::json;
use sign_in::{PROXY_ENV, proxy_config, sign_in};

/// A client that answers sampling requests and records progress.
#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<(Instant, f64)>>>,
    sampled: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.sampled.lock().unwrap().push(serde_json::to_string(&params.messages).unwrap());
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("sampled by the test client"),
            "test-model".into(),
        ))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push((Instant::now(), params.progress));
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_sampling().build(),
            Implementation::new("test", "0"),
        )
    }
}

fn server_everything() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        path.exists(),
        "{} missing: run scripts/test.sh (it runs npm ci in tests/interop)",
        path.display()
    );
    path
}

async fn call(
    client: &RunningService<RoleClient, Client>,
    tool: &str,
    args: serde_json::Value,
) -> CallToolResult {
    let params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone());
    client.call_tool(params).await.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn server_everything_over_stdio_behind_the_gateway() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = idp::TestIdp::start(&[&format!("{base}/auth/callback")]);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[upstream]
command = ["node", "{server}", "stdio"]
per_session = true
forward_provider_token = true

{auth}"#,
        server = server_everything().display(),
        auth = proxy_config(&idp, "mcp:tools", dir.path()),
    );
    let _gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;
    let (_, access) = sign_in(&base, &idp, "petra").await;

    let handler = Client::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(access),
    );
    let client = handler.clone().serve(transport).await.expect("initialize through the gateway");
    let info = client.peer_info().expect("the server's info");
    assert_eq!(info.server_info.as_ref().map(|s| s.name.as_str()), Some("mcp-servers/everything"));

    // The server adds its sampling tool once it has seen the client's capabilities.
    let mut tools = Vec::new();
    for _ in 0..50 {
        tools = client.list_all_tools().await.unwrap();
        if tools.iter().any(|t| t.name == "trigger-sampling-request") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"trigger-sampling-request".to_owned()), "{names:?}");

    assert_eq!(text(&call(&client, "echo", json!({"message": "hello"})).await), "Echo: hello");
    let sum = call(&client, "get-sum", json!({"a": 2, "b": 40})).await;
    assert!(text(&sum).contains("42"), "{}", text(&sum));
    let weather = call(&client, "get-structured-content", json!({"location": "Chicago"})).await;
    assert!(weather.structured_content.is_some(), "structured content lost on the way: {weather:?}");

    // Progress, step by step (0.5 s apart), before the answer.
    let started = Instant::now();
    let long = call(&client, "trigger-long-running-operation", json!({"duration": 2, "steps": 4})).await;
    let finished = Instant::now();
    assert!(text(&long).contains("completed"), "{}", text(&long));
    let progress = handler.progress.lock().unwrap().clone();
    assert_eq!(progress.iter().map(|(_, p)| *p).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0]);
    assert!(progress[0].0.duration_since(started) < Duration::from_millis(1200), "{progress:?}");
    assert!(finished.duration_since(progress[0].0) >= Duration::from_millis(1000), "{progress:?}");

    // The server asks the client to sample, through the gateway, within the tool call.
    let sampled =
        call(&client, "trigger-sampling-request", json!({"prompt": "Say hi", "maxTokens": 20})).await;
    assert!(text(&sampled).contains("sampled by the test client"), "{}", text(&sampled));
    assert!(handler.sampled.lock().unwrap()[0].contains("Say hi"));

    // The child's environment: the user's provider token (live at the IdP), no gateway secret.
    let env: serde_json::Value =
        serde_json::from_str(&text(&call(&client, "get-env", json!({})).await)).unwrap();
    assert!(env.get("MCPGATE_SECRET").is_none(), "the gateway's secret reached the child");
    assert!(env.get("TEST_IDP_SECRET").is_none(), "the provider client secret reached the child");
    assert_eq!(env["MCPGATE_SUBJECT"], "petra");
    let provider_token = env["MCPGATE_PROVIDER_TOKEN"].as_str().expect("the provider token");
    let me = reqwest::Client::new()
        .get(format!("{}/me", idp.issuer))
        .bearer_auth(provider_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["sub"], "petra");
    let _ = client.cancel().await;
}
