//! SIGHUP reloads `mcpgate serve`'s configuration without a restart: a route added, a policy
//! changed and an API key added take effect; a stdio session and a tool call in flight go on,
//! on the same process; a file that does not load, or describes a gateway that cannot be
//! built, is refused with the reason in the log, and the running configuration keeps serving.

use crate::routes::{call, post};
use crate::{gateway, process};

use std::time::Duration;

use gateway::{Issuer, echo_upstream, hangup, start_gateway, terminate};
use process::{example_path, free_port};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

/// `mcpgate apikey`: the key and its digest.
fn new_key() -> (String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate")).arg("apikey").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned())
}

/// Waits (up to 10 s) until `ready` holds.
async fn until<F: Future<Output = bool>>(what: &str, mut ready: impl FnMut() -> F) {
    for _ in 0..100 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 10 s");
}

#[tokio::test]
async fn a_reload_changes_routes_policy_and_keys_and_keeps_what_is_in_flight() {
    let issuer = Issuer::start().await;
    let (a, b) = (echo_upstream("a").await, echo_upstream("b").await);
    let (key, digest) = new_key();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = |extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{auth}\n{extra}\n\
             [[routes]]\npath = \"/a/mcp\"\nurl = \"{a}\"\n\n\
             [[routes]]\npath = \"/s/mcp\"\ncommand = [\"{stdio}\"]\n",
            auth = issuer.auth_config(),
            stdio = example_path("stdio_test_server").display(),
        )
    };
    let mut gateway = start_gateway(dir.path(), &config(""), &[], &base).await;
    let path = dir.path().join("mcpgate.toml");
    let a_token = issuer.token("alice", &format!("{base}/a/mcp"));
    let b_token = issuer.token("alice", &format!("{base}/b/mcp"));
    assert_eq!(post(&format!("{base}/b/mcp"), Some(&b_token), call("whoami")).await.0, 404);
    assert_eq!(post(&format!("{base}/a/mcp"), Some(&key), call("whoami")).await.0, 401, "no keys yet");

    // A session on the shared stdio child, with a call in flight across the reload.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/s/mcp"))
            .auth_header(issuer.token("alice", &format!("{base}/s/mcp"))),
    );
    let session = ClientConfig::default().serve(transport).await.unwrap();
    let pid = |result: rmcp::model::CallToolResult| result.content[0].as_text().unwrap().text.clone();
    let before = pid(session.call_tool(CallToolRequestParams::new("pid")).await.unwrap());
    let slow =
        CallToolRequestParams::new("slow").with_arguments(json!({"steps": 8}).as_object().unwrap().clone());
    let in_flight = {
        let peer = session.peer().clone();
        tokio::spawn(async move { peer.call_tool(slow).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Reload: route b, a policy on route a, an API key.
    let changed = config(&format!(
        "[[auth.api_keys]]\nname = \"ci\"\ndigest = \"{digest}\"\nscopes = []\n\n\
         [[routes]]\npath = \"/b/mcp\"\nurl = \"{b}\"\n\n\
         [[policy.rules]]\nid = \"no-x\"\ntools = [\"x\"]\neffect = \"deny\"\n"
    ));
    std::fs::write(&path, changed).unwrap();
    hangup(&gateway);
    let b_url = format!("{base}/b/mcp");
    until("route b served", || async { post(&b_url, Some(&b_token), call("whoami")).await.0 == 200 }).await;
    let (_, _, answer) = post(&b_url, Some(&b_token), call("whoami")).await;
    assert_eq!((&answer["result"]["upstream"], &answer["result"]["subject"]), (&json!("b"), &json!("alice")));
    let a_url = format!("{base}/a/mcp");
    let (_, _, denied) = post(&a_url, Some(&a_token), call("x")).await;
    assert_eq!(denied["error"]["code"], -32003, "the new policy: {denied}");
    let (status, _, by_key) = post(&a_url, Some(&key), call("whoami")).await;
    assert_eq!((status, &by_key["result"]["subject"]), (200, &json!("api_key:ci")), "the new key");

    // The session and its call in flight went on, on the same process.
    let finished = in_flight.await.unwrap().unwrap();
    assert_eq!(finished.content[0].as_text().unwrap().text, "8 steps done");
    assert_eq!(pid(session.call_tool(CallToolRequestParams::new("pid")).await.unwrap()), before);

    // A file that does not load, then one that cannot be built: refused, the log says why,
    // the running configuration serves on.
    let log = dir.path().join("gateway.log");
    let refusals = || std::fs::read_to_string(&log).unwrap().matches("reload refused").count();
    std::fs::write(&path, "[server\nlisten = ").unwrap();
    hangup(&gateway);
    until("the bad file refused", || async { refusals() >= 1 }).await;
    let mut unbuildable = config("").replace("/s/mcp", "/token");
    unbuildable.push('\n');
    std::fs::write(&path, unbuildable).unwrap();
    hangup(&gateway);
    until("the bad route refused", || async { refusals() >= 2 }).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("routes[1].path"), "the log names the key: {text}");
    assert_eq!(post(&b_url, Some(&b_token), call("whoami")).await.0, 200, "still the reloaded configuration");
    assert_eq!(pid(session.call_tool(CallToolRequestParams::new("pid")).await.unwrap()), before);
    session.cancel().await.unwrap();

    // A gateway setting the stdio processes depend on changes: the route gets a new upstream
    // (a new process), not the kept one with stale settings.
    let s_url = format!("{base}/s/mcp");
    let s_token = issuer.token("alice", &s_url);
    let bigger = config("").replace("[server]\n", "[server]\nmax_request_bytes = 2097152\n");
    std::fs::write(&path, bigger).unwrap();
    hangup(&gateway);
    until("route b gone with the reload", || async {
        post(&b_url, Some(&b_token), call("whoami")).await.0 == 404
    })
    .await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(s_url.as_str()).auth_header(s_token),
    );
    let fresh = ClientConfig::default().serve(transport).await.unwrap();
    assert_ne!(pid(fresh.call_tool(CallToolRequestParams::new("pid")).await.unwrap()), before);
    fresh.cancel().await.unwrap();
    terminate(&mut gateway).await;
}
