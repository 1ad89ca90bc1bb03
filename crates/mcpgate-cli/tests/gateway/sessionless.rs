//! MCP 2026-07-28 — no `initialize`, no sessions, every request carrying its revision in
//! `_meta` — through `mcpgate serve`, beside clients of 2025-11-25: an rmcp client in its
//! discover mode and raw requests, at a stdio route with one shared child, at one with a child
//! per caller, and at an HTTP route (passed through).

use crate::{gateway, process};

use gateway::{Issuer, demo_upstream, start_gateway, terminate};
use process::{example_path, free_port};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ClientConfig>;

fn transport(url: &str, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token.to_owned()),
    )
}

/// A client of 2026-07-28: `server/discover`, then self-contained requests.
async fn modern(url: &str, token: &str) -> Client {
    let lifecycle = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    ClientConfig::default().serve_with_lifecycle(transport(url, token), lifecycle).await.unwrap()
}

/// A client of 2025-11-25: `initialize` and a session.
async fn legacy(url: &str, token: &str) -> Client {
    ClientConfig::default().serve(transport(url, token)).await.unwrap()
}

/// The text a tool answered.
async fn tool(client: &Client, name: &str) -> String {
    call(client, name, json!({})).await
}

/// The text a tool answered to `arguments`.
async fn call(client: &Client, name: &str, arguments: Value) -> String {
    let params =
        CallToolRequestParams::new(name.to_owned()).with_arguments(arguments.as_object().unwrap().clone());
    let result = client.call_tool(params).await.unwrap();
    result.content[0].as_text().unwrap().text.clone()
}

/// A raw 2026-07-28 request: `method` with `params` and the lifecycle `_meta`.
async fn raw(url: &str, token: &str, method: &str, params: Value) -> (u16, http::HeaderMap, Value) {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    // The revision's routing headers: the method, and the tool (or prompt) it names.
    if let Some(name) = params["name"].as_str() {
        request = request.header("mcp-name", name);
    }
    let response = request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    // JSON, or one SSE event holding it.
    let json =
        text.lines().find_map(|l| l.strip_prefix("data:")).map_or(text.clone(), |d| d.trim().to_owned());
    (status, headers, serde_json::from_str(&json).unwrap_or(Value::Null))
}

#[tokio::test]
async fn sessionless_and_session_clients_side_by_side_on_every_upstream_kind() {
    let issuer = Issuer::start().await;
    let (http, _upstream) = demo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let stdio = example_path("stdio_test_server");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{auth}\n\
         [[routes]]\npath = \"/shared/mcp\"\ncommand = [\"{stdio}\"]\n\n\
         [[routes]]\npath = \"/own/mcp\"\ncommand = [\"{stdio}\"]\nper_session = true\n\n\
         [[routes]]\npath = \"/http/mcp\"\nurl = \"{http}\"\n",
        auth = issuer.auth_config(),
        stdio = stdio.display(),
    );
    let mut gateway = start_gateway(dir.path(), &config, &[], &base).await;
    let token = |subject: &str, path: &str| issuer.token(subject, &format!("{base}{path}"));

    // server/discover, answered for the child, on no session.
    let shared = format!("{base}/shared/mcp");
    let (status, headers, discovered) =
        raw(&shared, &token("alice", "/shared/mcp"), "server/discover", json!({})).await;
    assert_eq!(status, 200, "{discovered}");
    assert!(headers.get("mcp-session-id").is_none(), "no session");
    let result = &discovered["result"];
    assert!(result["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")), "{result}");
    assert!(result["capabilities"]["tools"].is_object(), "the child's capabilities: {result}");
    assert_eq!(result["resultType"], "complete");
    // A tool call on no session: the child's answer, completed for this revision.
    let (status, _, called) = raw(
        &shared,
        &token("alice", "/shared/mcp"),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    )
    .await;
    assert_eq!(status, 200, "{called}");
    assert_eq!(called["result"]["content"][0]["text"], "hi");
    assert_eq!(called["result"]["resultType"], "complete");
    // Without the lifecycle `_meta` and without a session, a request is refused.
    let bare = reqwest::Client::new()
        .post(&shared)
        .bearer_auth(token("alice", "/shared/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert!(bare.status().is_client_error(), "{}", bare.status());

    // The shared child serves both revisions: one process.
    let old = legacy(&shared, &token("alice", "/shared/mcp")).await;
    let new = modern(&shared, &token("bob", "/shared/mcp")).await;
    assert_eq!(tool(&old, "pid").await, tool(&new, "pid").await, "one shared child");
    assert_eq!(call(&new, "echo", json!({"text": "both"})).await, "both");
    old.cancel().await.unwrap();
    new.cancel().await.unwrap();

    // A child per caller: a sessionless caller keeps its own across requests and clients, and
    // is told apart from another caller and from a session.
    let own = format!("{base}/own/mcp");
    let alice = modern(&own, &token("alice", "/own/mcp")).await;
    let alice_again = modern(&own, &token("alice", "/own/mcp")).await;
    let carol = modern(&own, &token("carol", "/own/mcp")).await;
    let alice_session = legacy(&own, &token("alice", "/own/mcp")).await;
    let pid = tool(&alice, "pid").await;
    assert_eq!(tool(&alice_again, "pid").await, pid, "the caller's child, again");
    assert_ne!(tool(&carol, "pid").await, pid, "another caller, another child");
    assert_ne!(tool(&alice_session, "pid").await, pid, "a session has its own");
    let me: Value = serde_json::from_str(&tool(&carol, "whoami").await).unwrap();
    assert_eq!(me["subject"], "carol", "the child was started for its caller");
    let me: Value = serde_json::from_str(&tool(&alice_session, "whoami").await).unwrap();
    assert_eq!(me["subject"], "alice");
    for client in [alice, alice_again, carol, alice_session] {
        client.cancel().await.unwrap();
    }

    // HTTP: passed through, sessionless requests included.
    let at_http = format!("{base}/http/mcp");
    let new = modern(&at_http, &token("dave", "/http/mcp")).await;
    let old = legacy(&at_http, &token("dave", "/http/mcp")).await;
    assert_eq!(call(&new, "echo", json!({"text": "new"})).await, "new");
    assert_eq!(call(&old, "echo", json!({"text": "old"})).await, "old");
    let (status, headers, discovered) =
        raw(&at_http, &token("dave", "/http/mcp"), "server/discover", json!({})).await;
    assert_eq!(status, 200, "{discovered}");
    assert!(headers.get("mcp-session-id").is_none());
    assert!(discovered["result"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")));
    new.cancel().await.unwrap();
    old.cancel().await.unwrap();
    terminate(&mut gateway).await;
}
