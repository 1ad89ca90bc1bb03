//! `mcpgate serve` in front of a stdio MCP server (the `stdio_test_server` example): real rmcp
//! clients over Streamable HTTP, with resource-mode tokens. One child per session carrying the
//! caller's identity and none of the gateway's secrets; progress notifications arriving one by
//! one; a server-to-client request crossing the bridge; a child that dies ends its session with a
//! clear error and a new session works; the cap on children; the shared mode; shutdown stops
//! the children.
#![allow(deprecated)] // roots: deprecated for 2026 protocol versions, spoken by today's clients

use crate::{gateway, process};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::{Issuer, start_gateway, terminate};
use process::{example_path, free_port};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ClientRequest, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, Request,
    ResourceUpdatedNotificationParam, Root, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, ServiceExt};
use serde_json::json;

/// A client offering roots and recording the progress and other notifications it is told of.
#[derive(Clone, Default)]
struct TestClient {
    progress: Arc<Mutex<Vec<(Instant, f64, ProgressToken)>>>,
    notes: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for TestClient {
    async fn list_roots(&self, _: RequestContext<RoleClient>) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new("file:///work/project")]))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push((Instant::now(), params.progress, params.progress_token));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.notes.lock().unwrap().push(format!("log:{}", params.data));
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.notes.lock().unwrap().push(format!("updated:{}", params.uri));
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.notes.lock().unwrap().push("tools_changed".into());
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_roots().build(),
            Implementation::new("test", "0"),
        )
    }
}

struct Setup {
    issuer: Issuer,
    base: String,
    gateway: process::Running,
    dir: tempfile::TempDir,
}

/// A resource-mode gateway running the test server with `upstream_extra` in `[upstream]`.
async fn setup(upstream_extra: &str) -> Setup {
    let issuer = Issuer::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\ncommand = [\"{server}\"]\n{upstream_extra}\n\n{auth}",
        server = example_path("stdio_test_server").display(),
        auth = issuer.auth_config(),
    );
    // The gateway's own secret and a harmless variable: the child must see only the latter.
    let env = [("MCPGATE_SECRET", "do-not-leak"), ("TEST_VISIBLE", "visible")];
    let gateway = start_gateway(dir.path(), &config, &env, &base).await;
    Setup { issuer, base, gateway, dir }
}

impl Setup {
    async fn client(&self, subject: &str) -> (RunningService<RoleClient, TestClient>, TestClient) {
        let token = self.issuer.token(subject, &format!("{}/mcp", self.base));
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base)).auth_header(token),
        );
        let handler = TestClient::default();
        (handler.clone().serve(transport).await.expect("initialize through the gateway"), handler)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap()
    }
}

async fn call(
    client: &RunningService<RoleClient, TestClient>,
    tool: &str,
    args: serde_json::Value,
) -> Result<String, String> {
    let params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone());
    match client.call_tool(params).await {
        Ok(result) => Ok(result.content[0].as_text().unwrap().text.clone()),
        Err(e) => Err(e.to_string()),
    }
}

fn alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[tokio::test]
async fn each_session_gets_its_own_child_with_the_callers_identity_and_none_of_the_gateways_secrets() {
    let setup = setup("per_session = true").await;
    let (alice, _) = setup.client("alice").await;
    let (bob, _) = setup.client("bob").await;

    let tools = alice.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "slow"), "{tools:?}");
    assert_eq!(call(&alice, "echo", json!({"text": "over stdio"})).await.unwrap(), "over stdio");
    assert_eq!(call(&alice, "env", json!({"name": "MCPGATE_SUBJECT"})).await.unwrap(), "alice");
    assert_eq!(call(&bob, "env", json!({"name": "MCPGATE_SUBJECT"})).await.unwrap(), "bob");
    assert_eq!(call(&alice, "env", json!({"name": "MCPGATE_CLIENT_ID"})).await.unwrap(), "c1");
    assert_eq!(call(&alice, "env", json!({"name": "MCPGATE_SECRET"})).await.unwrap(), "(unset)");
    assert_eq!(call(&alice, "env", json!({"name": "TEST_VISIBLE"})).await.unwrap(), "visible");
    let metrics = reqwest::get(format!("{}/metrics", setup.base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            "mcpgate_upstream_mcp_duration_seconds_count{transport=\"stdio\",outcome=\"answered\"}"
        ),
        "{metrics}"
    );
    let alice_pid = call(&alice, "pid", json!({})).await.unwrap();
    let bob_pid = call(&bob, "pid", json!({})).await.unwrap();
    assert_ne!(alice_pid, bob_pid);

    // Closing the session stops its child.
    alice.cancel().await.unwrap();
    for _ in 0..100 {
        if !alive(&alice_pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(&alice_pid), "alice's child outlived her session");
    assert!(alive(&bob_pid));
    let _ = bob.cancel().await;
}

#[tokio::test]
async fn progress_arrives_one_by_one_and_server_to_client_requests_cross_the_bridge() {
    let setup = setup("per_session = true").await;
    let (client, handler) = setup.client("carol").await;

    let started = Instant::now();
    let params =
        CallToolRequestParams::new("slow").with_arguments(json!({"steps": 4}).as_object().unwrap().clone());
    let request = ClientRequest::CallToolRequest(Request::new(params));
    let handle = client.send_cancellable_request(request, PeerRequestOptions::no_options()).await.unwrap();
    let token = handle.progress_token.clone();
    let done = handle.await_response().await.unwrap();
    let finished = Instant::now();
    assert!(format!("{done:?}").contains("4 steps done"), "{done:?}");
    let progress = handler.progress.lock().unwrap().clone();
    assert_eq!(progress.iter().map(|(_, p, _)| *p).collect::<Vec<_>>(), [1.0, 2.0, 3.0, 4.0]);
    // Under the token this client chose (the gateway exchanged it for its own towards the child).
    assert!(progress.iter().all(|(_, _, t)| *t == token), "{progress:?} vs {token:?}");
    // Each arrived as it was sent (300 ms apart), not all at once with the answer.
    let first = progress[0].0.duration_since(started);
    assert!(
        finished.duration_since(progress[0].0) >= Duration::from_millis(700),
        "first progress at {first:?}"
    );
    for pair in progress.windows(2) {
        assert!(pair[1].0.duration_since(pair[0].0) >= Duration::from_millis(150), "{progress:?}");
    }

    // The child asks the client for its roots while the tool call is in flight.
    assert_eq!(call(&client, "roots", json!({})).await.unwrap(), "file:///work/project");
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_child_that_dies_ends_its_session_with_a_clear_error_and_a_new_session_works() {
    let setup = setup("per_session = true").await;
    let (client, _) = setup.client("dave").await;
    let first_pid = call(&client, "pid", json!({})).await.unwrap();

    let error = call(&client, "crash", json!({})).await.unwrap_err();
    assert!(error.contains("MCP server process"), "{error}");
    assert!(error.contains("start a new MCP session"), "{error}");
    // The session is over: the next request is refused (the session is gone or its child is).
    assert!(call(&client, "echo", json!({"text": "still there?"})).await.is_err());

    let (again, _) = setup.client("dave").await;
    let second_pid = call(&again, "pid", json!({})).await.unwrap();
    assert_ne!(first_pid, second_pid);
    assert_eq!(call(&again, "echo", json!({"text": "back"})).await.unwrap(), "back");
    assert!(setup.log().contains("stdio MCP server stopped"), "{}", setup.log());
}

#[tokio::test]
async fn live_children_are_capped() {
    let setup = setup("per_session = true\nmax_children = 1").await;
    let (first, _) = setup.client("erin").await;
    let token = setup.issuer.token("frank", &format!("{}/mcp", setup.base));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", setup.base)).auth_header(token),
    );
    let refused = TestClient::default().serve(transport).await.err().expect("a second child is refused");
    assert!(refused.to_string().contains("limit of 1 MCP server processes"), "{refused}");

    first.cancel().await.unwrap();
    // The slot frees once the first child has exited.
    let mut admitted = None;
    for _ in 0..50 {
        let token = setup.issuer.token("frank", &format!("{}/mcp", setup.base));
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", setup.base)).auth_header(token),
        );
        if let Ok(client) = TestClient::default().serve(transport).await {
            admitted = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admitted = admitted.expect("a session after the first ended");
    assert_eq!(call(&admitted, "echo", json!({"text": "ok"})).await.unwrap(), "ok");
}

#[tokio::test]
async fn a_shared_child_serves_every_session_and_shutdown_stops_it() {
    let mut setup = setup("").await;
    let (one, _) = setup.client("gina").await;
    let (two, handler) = setup.client("hal").await;
    let pid = call(&one, "pid", json!({})).await.unwrap();
    assert_eq!(call(&two, "pid", json!({})).await.unwrap(), pid);
    // No per-user identity in a shared process's environment.
    assert_eq!(call(&one, "env", json!({"name": "MCPGATE_SUBJECT"})).await.unwrap(), "(unset)");
    // Progress still reaches the session that asked.
    assert_eq!(call(&two, "slow", json!({"steps": 2})).await.unwrap(), "2 steps done");
    assert_eq!(handler.progress.lock().unwrap().len(), 2);

    assert!(terminate(&mut setup.gateway).await.success());
    assert!(!alive(&pid), "the child outlived the gateway");
}

#[tokio::test]
async fn a_shared_child_tells_each_session_only_what_is_its_own() {
    let setup = setup("").await;
    let (alice, alice_notes) = setup.client("alice").await;
    let (bob, bob_notes) = setup.client("bob").await;
    for (client, uri) in [(&alice, "test://a"), (&bob, "test://b"), (&alice, "test://c"), (&bob, "test://c")]
    {
        client.subscribe(SubscribeRequestParams::new(uri)).await.unwrap();
    }
    // Alice leaves test://c; Bob still follows it.
    alice.unsubscribe(UnsubscribeRequestParams::new("test://c")).await.unwrap();
    // Bob's call makes the shared child send a log line and resource updates on its own.
    assert_eq!(call(&bob, "announce", json!({"text": "bob's private log line"})).await.unwrap(), "announced");
    let until = Instant::now() + Duration::from_secs(5);
    let seen = |notes: &TestClient| notes.notes.lock().unwrap().clone();
    while !(seen(&alice_notes).contains(&"tools_changed".into())
        && seen(&bob_notes).contains(&"tools_changed".into()))
    {
        assert!(
            Instant::now() < until,
            "list_changed did not reach both: {:?} {:?}",
            seen(&alice_notes),
            seen(&bob_notes)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (a, b) = (seen(&alice_notes), seen(&bob_notes));
    assert_eq!(
        a,
        ["updated:test://a", "tools_changed"],
        "alice: her subscription and the server's list only"
    );
    assert_eq!(b, ["updated:test://b", "updated:test://c", "tools_changed"], "bob");
    assert!(!a.iter().chain(&b).any(|n| n.starts_with("log:")), "a shared child's log reaches no one");
}

#[tokio::test]
async fn a_session_id_presented_by_another_user_is_refused() {
    let setup = setup("per_session = true").await;
    let mcp = format!("{}/mcp", setup.base);
    let (alice, bob) = (setup.issuer.token("alice", &mcp), setup.issuer.token("bob", &mcp));
    let http = reqwest::Client::new();
    let post = |token: &str, session: Option<&str>, body: serde_json::Value| {
        let mut request = http
            .post(&mcp)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let response = post(&alice, None, initialize).await.unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = response.text().await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(&alice, Some(&session), initialized).await.unwrap().status(), 202);

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let stolen = post(&bob, Some(&session), list.clone()).await.unwrap();
    assert_eq!(stolen.status(), 404, "bob used alice's session");
    let own = post(&alice, Some(&session), list).await.unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("\"slow\""));
}

#[tokio::test]
async fn on_sigterm_a_call_in_flight_finishes_then_the_gateway_and_its_children_stop() {
    let mut setup = setup("per_session = true").await;
    let (client, handler) = setup.client("ivan").await;
    let pid = call(&client, "pid", json!({})).await.unwrap();
    let client = Arc::new(client);
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { call(&client, "slow", json!({"steps": 4})).await }
    });
    // SIGTERM once the call is under way (its first progress has arrived).
    for _ in 0..100 {
        if !handler.progress.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = terminate(&mut setup.gateway).await;
    let answer =
        tokio::time::timeout(Duration::from_secs(10), in_flight).await.expect("the call was cut off");
    assert_eq!(answer.unwrap().as_deref(), Ok("4 steps done"));
    assert!(stopped.success());
    assert!(!alive(&pid), "the child outlived the gateway");
}
