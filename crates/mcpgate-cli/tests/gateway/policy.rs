//! The authorization policy through the real `mcpgate` binary in proxy mode, users signing in
//! at the real test IdP: lists filtered per user in front of an HTTP upstream (event-stream and
//! JSON answers) and a stdio one, denied calls that never reach the upstream, headers that
//! contradict the body, the audit trail, and `mcpgate check` refusing a bad rule.

use crate::{gateway, idp, process, sign_in};

use std::process::{Command, Stdio};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use gateway::start_gateway;
use idp::TestIdp;
use process::{Running, example_path, free_port};
use sign_in::{PROXY_ENV, proxy_config_with, sign_in, sign_in_asking};

const POLICY: &str = r#"
[[policy.rules]]
id = "whoami-for-alice"
tools = ["whoami"]
allow_users = ["alice"]

[[policy.rules]]
id = "nobody-crashes"
tools = ["crash"]
effect = "deny"

[[policy.rules]]
id = "echo-needs-scope"
tools = ["echo"]
require_scopes = ["mcp:echo"]
"#;

enum Upstream {
    /// The library's resource_server example (`--no-auth`), answering sessionless requests
    /// with JSON when `json`.
    Http { json: bool },
    /// The stdio test server, one process shared by every session.
    Stdio,
}

struct Setup {
    base: String,
    dir: tempfile::TempDir,
    idp: TestIdp,
    _processes: Vec<Running>,
}

async fn setup(upstream: Upstream) -> Setup {
    setup_with(upstream, "scopes = [\"mcp:tools\"]").await
}

/// The gateway before `upstream`, with `auth_keys` in its `[auth]`.
async fn setup_with(upstream: Upstream, auth_keys: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut processes = Vec::new();
    let upstream_config = match upstream {
        Upstream::Http { json } => {
            let port = free_port();
            let mut command = Command::new(example_path("resource_server"));
            command.args(["--port", &port.to_string(), "--no-auth"]);
            if json {
                command.arg("--json-response");
            }
            let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            let url = format!("http://127.0.0.1:{port}/mcp");
            processes.push(process::running_once_up(child, &url, "the upstream").await);
            format!("url = \"{url}\"")
        }
        Upstream::Stdio => format!("command = [\"{}\"]", example_path("stdio_test_server").display()),
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&[&format!("{base}/auth/callback")]);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\n{upstream_config}\n\n{auth}\n\
         [audit]\nfile = \"{audit}\"\n{POLICY}",
        auth = proxy_config_with(&idp, auth_keys, dir.path()),
        audit = dir.path().join("audit.jsonl").display(),
    );
    processes.push(start_gateway(dir.path(), &config, &PROXY_ENV, &base).await);
    Setup { base, dir, idp, _processes: processes }
}

impl Setup {
    /// An MCP session (2025-11-25) for `user`, signed in at the IdP with the default grant.
    async fn session(&self, user: &str) -> RunningService<RoleClient, ClientConfig> {
        self.session_asking(user, None).await
    }

    /// An MCP session for `user`, who granted `scope`.
    async fn session_asking(
        &self,
        user: &str,
        scope: Option<&str>,
    ) -> RunningService<RoleClient, ClientConfig> {
        let (_, token) = sign_in_asking(&self.base, &self.idp, user, scope).await;
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", self.base)).auth_header(token),
        );
        ClientConfig::default().serve(transport).await.expect("initialize through the gateway")
    }

    /// The audit log's events so far (the writer flushes whenever it is idle: wait for `count`).
    async fn audit(&self, count: usize) -> Vec<Value> {
        let path = self.dir.path().join("audit.jsonl");
        for _ in 0..100 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            if events.len() >= count {
                return events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("fewer than {count} audit events in {}", path.display());
    }
}

async fn tool_names(session: &RunningService<RoleClient, ClientConfig>) -> Vec<String> {
    let mut names: Vec<String> =
        session.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

async fn call(
    session: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    args: Value,
) -> Result<String, String> {
    let params =
        CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone());
    match session.call_tool(params).await {
        Ok(result) => Ok(result.content[0].as_text().unwrap().text.clone()),
        Err(e) => Err(e.to_string()),
    }
}

/// Alice and Bob through the gateway before `upstream`: each sees what they may use, Bob's
/// denied call is an error the upstream never saw, and both are in the audit log.
async fn two_users(upstream: Upstream) {
    let setup = setup(upstream).await;
    let alice = setup.session("alice").await;
    let bob = setup.session("bob").await;
    let alice_tools = tool_names(&alice).await;
    let bob_tools = tool_names(&bob).await;
    assert!(
        alice_tools.contains(&"whoami".to_owned()) && alice_tools.contains(&"echo".to_owned()),
        "{alice_tools:?}"
    );
    assert!(!bob_tools.contains(&"whoami".to_owned()), "denied by identity, hidden: {bob_tools:?}");
    assert!(bob_tools.contains(&"echo".to_owned()), "{bob_tools:?}");
    assert!(!bob_tools.contains(&"crash".to_owned()) && !alice_tools.contains(&"crash".to_owned()));

    let refused = call(&bob, "whoami", json!({})).await.unwrap_err();
    assert!(refused.contains("not allowed"), "{refused}");
    // Alice's call reaches the upstream (whose own answer depends on what it knows of her).
    if let Err(e) = call(&alice, "whoami", json!({})).await {
        assert!(!e.contains("not allowed"), "{e}");
    }
    // `echo` needs a scope the default grant leaves out: a step-up, then granted on demand.
    let step_up = call(&bob, "echo", json!({"text": "hi"})).await.unwrap_err();
    assert!(step_up.contains("Insufficient scope"), "{step_up}");
    let bob_again = setup.session_asking("bob", Some("mcp:tools mcp:echo")).await;
    assert_eq!(call(&bob_again, "echo", json!({"text": "hi"})).await.unwrap(), "hi");

    let events = setup.audit(1).await;
    let find = |subject: &str, decision: &str| {
        events
            .iter()
            .find(|e| e["subject"] == subject && e["tool"] == "whoami" && e["decision"] == decision)
            .cloned()
            .unwrap_or_else(|| panic!("no {decision} of whoami for {subject} in {events:?}"))
    };
    let denied = find("bob", "deny");
    assert_eq!(
        (denied["rule"].clone(), denied["upstream_status"].clone()),
        (json!("whoami-for-alice"), Value::Null)
    );
    assert_eq!(denied["method"], "tools/call");
    let allowed = find("alice", "allow");
    assert_eq!(allowed["upstream_status"], 200);
    assert!(allowed["latency_ms"].as_f64().unwrap() > 0.0);
    for event in &events {
        let line = event.to_string();
        assert!(!line.contains("eyJ"), "a token in the audit log: {line}");
    }
    let metrics = reqwest::get(format!("{}/metrics", setup.base)).await.unwrap().text().await.unwrap();
    for decision in ["allow", "deny", "step_up"] {
        let counter = format!("mcpgate_policy_decisions_total{{decision=\"{decision}\"}}");
        assert!(metrics.contains(&counter), "{counter} missing: {metrics}");
    }
}

#[tokio::test]
async fn an_http_upstream_shows_each_user_what_they_may_use() {
    two_users(Upstream::Http { json: false }).await;
}

#[tokio::test]
async fn a_stdio_upstream_shows_each_user_what_they_may_use() {
    two_users(Upstream::Stdio).await;
}

#[tokio::test]
async fn a_denied_call_never_reaches_the_stdio_server() {
    let setup = setup(Upstream::Stdio).await;
    let alice = setup.session("alice").await;
    let pid = call(&alice, "pid", json!({})).await.unwrap();
    let refused = call(&alice, "crash", json!({})).await.unwrap_err();
    assert!(refused.contains("not allowed"), "{refused}");
    assert_eq!(
        call(&alice, "pid", json!({})).await.unwrap(),
        pid,
        "the shared server is still the same process"
    );
}

/// A sessionless (2026-07-28) request with the headers that revision requires, or `headers`.
async fn post(base: &str, token: &str, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut body = body;
    body["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                     "io.modelcontextprotocol/clientCapabilities": {}});
    let mut request = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn json_answers_are_filtered_and_headers_that_contradict_the_body_are_refused() {
    let setup = setup(Upstream::Http { json: true }).await;
    let (_, bob) = sign_in(&setup.base, &setup.idp, "bob").await;
    // The first challenge names the baseline; the metadata offers the step-up scope too.
    let anonymous = reqwest::Client::new().post(format!("{}/mcp", setup.base)).send().await.unwrap();
    let first = anonymous.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(first.contains(r#"scope="mcp:tools""#), "{first}");
    let metadata: Value = reqwest::get(format!("{}/.well-known/oauth-protected-resource/mcp", setup.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["scopes_supported"], json!(["mcp:tools", "mcp:echo"]), "{metadata}");
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let response = post(&setup.base, &bob, list, &[("mcp-method", "tools/list")]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let answer: Value = response.json().await.unwrap();
    let names: Vec<&str> =
        answer["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"echo") && !names.contains(&"whoami"), "{answer}");

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}});
    let agreeing = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
    // Bob's default grant lacks `mcp:echo`: the challenge names his scopes and the missing one.
    let response = post(&setup.base, &bob, call.clone(), &agreeing).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(r#"scope="mcp:tools mcp:echo""#),
        "{challenge}"
    );
    let (_, bob) = sign_in_asking(&setup.base, &setup.idp, "bob", Some("mcp:tools mcp:echo")).await;
    assert_eq!(post(&setup.base, &bob, call.clone(), &agreeing).await.status(), 200);
    // An intermediary reading the headers would think this is a call of `echo`.
    let whoami = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let response = post(&setup.base, &bob, whoami, &agreeing).await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32020, "{answer}");
}

#[tokio::test]
async fn a_scope_that_implies_the_required_one_needs_no_step_up() {
    let auth =
        "scopes = [\"mcp:tools\", \"mcp:admin\"]\nscope_implications = { \"mcp:admin\" = [\"mcp:echo\"] }";
    let setup = setup_with(Upstream::Http { json: true }, auth).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}});
    let headers = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
    let (_, admin) = sign_in_asking(&setup.base, &setup.idp, "ada", Some("mcp:tools mcp:admin")).await;
    assert_eq!(
        post(&setup.base, &admin, call.clone(), &headers).await.status(),
        200,
        "mcp:admin implies mcp:echo"
    );
    let (_, plain) = sign_in_asking(&setup.base, &setup.idp, "bob", Some("mcp:tools")).await;
    assert_eq!(post(&setup.base, &plain, call, &headers).await.status(), 403);
}

#[tokio::test]
async fn check_refuses_a_bad_rule_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcpgate.toml");
    std::fs::write(
        &path,
        "[upstream]\nurl = \"http://127.0.0.1:1/mcp\"\n[auth]\nmode = \"resource\"\n[auth.resource]\n\
         jwks_uri = \"http://127.0.0.1:1/jwks\"\nissuer = \"https://as.example.com\"\n\
         [[policy.rules]]\nid = \"admins\"\ntools = [\"admin_*\"]\nwhen = \"caller.groups.exists(g, g == 'admins'\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("policy rule admins: `when` is not a CEL expression"), "{stderr}");
}
