//! The policy layer in front of a real rmcp server (the demo server: `whoami`, `echo`), behind
//! the bearer layer, over real HTTP: lists filtered in JSON and SSE answers, a denied call that
//! never reaches a tool, a step-up challenge, headers that contradict the body, the audit trail.

use std::sync::{Arc, Mutex};

use mcpgate::Principal;
use mcpgate::audit::{AuditEvent, AuditSink};
use mcpgate::mcp::DemoServer;
use mcpgate::policy::{Effect, Policy, PolicyLayer, RuleSpec};
use mcpgate::resource::ProtectedResource;
use mcpgate::verify::{FixedVerifier, TokenVerifier};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::SecretString;
use serde_json::{Value, json};

#[derive(Default)]
struct Recorded(Mutex<Vec<AuditEvent>>);

impl AuditSink for Recorded {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

const RULES: &str = r#"
[[rules]]
id = "whoami-for-admins"
tools = ["whoami"]
allow_groups = ["admins"]
[[rules]]
id = "echo-needs-scope"
tools = ["echo"]
require_scopes = ["mcp:echo"]
"#;

struct Served {
    url: String,
    audit: Arc<Recorded>,
}

async fn serve(json_response: bool) -> Served {
    #[derive(serde::Deserialize)]
    struct File {
        rules: Vec<RuleSpec>,
    }
    let rules: File = toml::from_str(RULES).unwrap();
    let policy = Policy::new(Effect::Allow, &rules.rules).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = ProtectedResource::new(&format!("{base}/mcp"))
        .unwrap()
        .authorization_server("https://as.example.com");
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(["127.0.0.1"])
            .with_json_response(json_response),
    );
    let audit = Arc::new(Recorded::default());
    let layer = PolicyLayer::new(policy, &resource).audit(audit.clone());
    let groups = |g: Value| g.as_object().unwrap().clone();
    let verifier: Arc<dyn TokenVerifier> = Arc::new(
        FixedVerifier::new()
            .with_token(
                &SecretString::from("admin-token"),
                Principal::new("ada")
                    .with_scopes(["mcp:read"])
                    .with_claims(groups(json!({"groups": ["admins"]}))),
            )
            .with_token(&SecretString::from("user-token"), Principal::new("bob").with_scopes(["mcp:read"]))
            .with_token(
                &SecretString::from("echo-token"),
                Principal::new("bob").with_scopes(["mcp:read", "mcp:echo"]),
            ),
    );
    let app = resource.protect(verifier, tower::Layer::layer(&layer, mcp));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served { url: format!("{base}/mcp"), audit }
}

/// A sessionless (2026-07-28) request, with the `Mcp-Method` and `Mcp-Name` headers that
/// revision requires (`headers`, when given, in their place).
async fn post(
    url: &str,
    token: &str,
    method: &str,
    params: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let name = params.get("name").or(params.get("uri")).and_then(Value::as_str).map(str::to_owned);
    let mut defaults = vec![("mcp-method", method)];
    if let Some(name) = &name {
        defaults.push(("mcp-name", name.as_str()));
    }
    let headers = if headers.is_empty() { &defaults[..] } else { headers };
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientCapabilities": {}});
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The JSON-RPC message of an answer, JSON or SSE.
async fn message(response: reqwest::Response) -> Value {
    let is_sse = response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream");
    let text = response.text().await.unwrap();
    if !is_sse {
        return serde_json::from_str(&text).unwrap();
    }
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> =
                event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .find(|m| m.get("id") == Some(&json!(1)))
        .unwrap_or_else(|| panic!("no answer in {text}"))
}

async fn tool_names(url: &str, token: &str) -> Vec<String> {
    let answer = message(post(url, token, "tools/list", json!({}), &[]).await).await;
    let mut names: Vec<String> = answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn lists_show_what_the_caller_may_use_in_json_and_sse_answers() {
    for json_response in [true, false] {
        let served = serve(json_response).await;
        assert_eq!(tool_names(&served.url, "admin-token").await, ["echo", "whoami"], "json={json_response}");
        // Denied by identity: hidden. Needs a scope bob could grant: still listed.
        assert_eq!(tool_names(&served.url, "user-token").await, ["echo"], "json={json_response}");
    }
}

#[tokio::test]
async fn a_denied_call_is_a_json_rpc_error_and_never_reaches_the_tool() {
    let served = serve(true).await;
    let response =
        post(&served.url, "user-token", "tools/call", json!({"name": "whoami", "arguments": {}}), &[]).await;
    assert_eq!(response.status(), 200);
    let answer = message(response).await;
    assert_eq!(answer["error"]["code"], mcpgate::policy::POLICY_DENIED);
    assert!(answer.get("result").is_none(), "{answer}");
    let answer = message(
        post(&served.url, "admin-token", "tools/call", json!({"name": "whoami", "arguments": {}}), &[]).await,
    )
    .await;
    assert!(answer["result"]["content"][0]["text"].as_str().unwrap().contains("ada"), "{answer}");

    let events = served.audit.0.lock().unwrap().clone();
    let denied = events.iter().find(|e| e.decision == "deny").unwrap();
    assert_eq!((denied.subject.as_str(), denied.tool.as_deref()), ("bob", Some("whoami")));
    assert_eq!((denied.rule.as_deref(), denied.upstream_status), (Some("whoami-for-admins"), None));
    let allowed = events.iter().find(|e| e.decision == "allow" && e.method == "tools/call").unwrap();
    assert_eq!((allowed.subject.as_str(), allowed.upstream_status), ("ada", Some(200)));
    assert_eq!(allowed.client_kind, "user");
}

#[tokio::test]
async fn a_missing_scope_is_a_step_up_challenge_and_the_larger_token_succeeds() {
    let served = serve(true).await;
    let call = json!({"name": "echo", "arguments": {"text": "hi"}});
    let response = post(&served.url, "user-token", "tools/call", call.clone(), &[]).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with(r#"Bearer error="insufficient_scope""#), "{challenge}");
    assert!(
        challenge.contains(r#"scope="mcp:read mcp:echo""#),
        "the token's scopes and the missing one: {challenge}"
    );
    assert!(challenge.contains("resource_metadata=\"http://127.0.0.1:"), "{challenge}");
    let answer = message(post(&served.url, "echo-token", "tools/call", call, &[]).await).await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
}

#[tokio::test]
async fn headers_that_contradict_the_body_are_refused() {
    let served = serve(true).await;
    let call = json!({"name": "echo", "arguments": {"text": "hi"}});
    let agreeing = [("mcp-method", "tools/call"), ("mcp-name", "echo")];
    let answer = message(post(&served.url, "echo-token", "tools/call", call.clone(), &agreeing).await).await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi");
    for headers in [
        [("mcp-method", "tools/list"), ("mcp-name", "echo")],
        [("mcp-method", "tools/call"), ("mcp-name", "whoami")],
    ] {
        let response = post(&served.url, "echo-token", "tools/call", call.clone(), &headers).await;
        assert_eq!(response.status(), 400, "{headers:?}");
        assert_eq!(message(response).await["error"]["code"], mcpgate::policy::HEADER_MISMATCH);
    }
    assert!(served.audit.0.lock().unwrap().iter().any(|e| e.decision == "invalid"));
}

#[tokio::test]
async fn batches_and_unreadable_messages_never_reach_the_server() {
    let served = serve(true).await;
    let client = reqwest::Client::new();
    for body in [
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"whoami"}}"#,
        "{not json",
    ] {
        let response = client
            .post(&served.url)
            .bearer_auth("user-token")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
}
