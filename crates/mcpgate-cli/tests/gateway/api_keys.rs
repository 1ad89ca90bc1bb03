//! API keys through `mcpgate serve` (resource mode, a stdio server per session): a key from
//! `mcpgate apikey` configured by its digest reaches the MCP server as `api_key:<name>` beside
//! the authorization server's tokens; a wrong or expired key is refused; the audit trail names
//! the key and never holds it; removed from the file, the key stops working after a restart.

use crate::{gateway, process};

use gateway::{Issuer, start_gateway, terminate};
use process::{example_path, free_port};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

/// `mcpgate apikey`: the key and the digest, one per line.
fn new_key() -> (String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate")).arg("apikey").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    (lines[0].to_owned(), lines[1].to_owned())
}

/// `whoami` through the gateway with `token`, or the HTTP status that refused it.
async fn whoami(base: &str, token: &str) -> Result<Value, u16> {
    let probe = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    if probe.status() == 401 {
        return Err(401);
    }
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    client.cancel().await.unwrap();
    Ok(serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap())
}

#[tokio::test]
async fn an_api_key_is_its_named_caller_until_removed() {
    let issuer = Issuer::start().await;
    let (key, digest) = new_key();
    let (expired_key, expired_digest) = new_key();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = |port: u16, keys: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\ncommand = [\"{server}\"]\nper_session = true\n\n\
             {auth}\n{keys}\n[audit]\nfile = \"{audit}\"\n",
            server = example_path("stdio_test_server").display(),
            auth = issuer.auth_config(),
            audit = audit.display(),
        )
    };
    let keys = format!(
        "[[auth.api_keys]]\nname = \"nightly-ci\"\ndigest = \"{digest}\"\nscopes = [\"mcp:read\"]\n\n\
         [[auth.api_keys]]\nname = \"last-year\"\ndigest = \"{expired_digest}\"\nscopes = []\nexpires = 2020-01-01\n"
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut gateway = start_gateway(dir.path(), &config(port, &keys), &[], &base).await;

    let me = whoami(&base, &key).await.unwrap();
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("api_key:nightly-ci"), Some("api_key")));
    // The authorization server's tokens work beside the keys.
    let jwt = issuer.token("alice", &format!("{base}/mcp"));
    assert_eq!(whoami(&base, &jwt).await.unwrap()["subject"], "alice");
    let mut wrong = key.clone();
    wrong.replace_range(10..11, if &key[10..11] == "A" { "B" } else { "A" });
    for refused in [wrong.as_str(), expired_key.as_str(), "mcpgate_"] {
        assert_eq!(whoami(&base, refused).await, Err(401), "{refused}");
    }

    // The audit trail names the key's caller and never holds a key.
    let mut lines = String::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&audit).unwrap_or_default();
        if lines.contains("api_key:nightly-ci") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let event: Value = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["subject"] == "api_key:nightly-ci")
        .unwrap_or_else(|| panic!("no audit event of the key: {lines}"));
    assert_eq!(event["client_kind"], "api_key");
    assert!(!lines.contains(&key[8..]) && !lines.contains(&expired_key[8..]), "a key in the audit log");

    // Removed from the file: refused once the gateway restarted.
    terminate(&mut gateway).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _gateway = start_gateway(dir.path(), &config(port, ""), &[], &base).await;
    assert_eq!(whoami(&base, &key).await, Err(401));
}
