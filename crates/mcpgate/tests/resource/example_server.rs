//! The `resource_server` example, run as a process exactly as a user would run it: protected
//! against a JWKS on loopback, and in `--no-auth` mode.

use mcpgate_test_support as common;

use common::process::{Running, example_path, free_port};

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

async fn start(args: &[&str]) -> (Running, String) {
    let port = free_port();
    let child = Command::new(example_path("resource_server"))
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{base}/mcp")).await.is_ok() {
            return (running, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the example did not start listening on {base}");
}

#[tokio::test]
async fn the_example_protects_its_tools_and_tells_them_who_calls() {
    let key = TestKey::ed25519("ex");
    let jwks = JwksServer::start(jwks(&[&key])).await;
    let (_server, base) =
        start(&["--jwks-uri", &jwks.url, "--issuer", ISSUER, "--required-scope", "mcp:read"]).await;
    let resource = format!("{base}/mcp");

    let response = reqwest::Client::new().post(&resource).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            r#"Bearer scope="mcp:read", resource_metadata="{base}/.well-known/oauth-protected-resource/mcp""#
        )
        .as_str()
    );
    let metadata: Value = reqwest::get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], resource.as_str());
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));

    let token = key.sign(&with(claims_for(&resource), "sub", json!("carol")));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(resource.clone()).auth_header(token),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    let identity: Value = serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(identity["subject"], "carol");
    assert_eq!(identity["scopes"], json!(["mcp:read", "mcp:write"]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_example_without_auth_serves_anyone() {
    let (_server, base) = start(&["--no-auth"]).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let args = json!({"text": "open"}).as_object().cloned().unwrap();
    let result = client.call_tool(CallToolRequestParams::new("echo").with_arguments(args)).await.unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "open");
    client.cancel().await.unwrap();
}
