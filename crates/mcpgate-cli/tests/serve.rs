//! `mcpgate serve` as a process, in resource mode in front of a real rmcp Streamable HTTP server:
//! an MCP client with a good token calls a tool through the gateway; without one it gets the
//! challenge; the upstream going away is a 502; SIGTERM stops the gateway cleanly.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::mcp::DemoServer;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The demo MCP server on loopback, stopped when the returned handle is aborted.
async fn upstream() -> (String, tokio::task::JoinHandle<()>) {
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = axum::Router::new().route_service("/mcp", mcp);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

#[tokio::test]
async fn resource_mode_gateway_in_front_of_an_rmcp_server() {
    // The authorization server's keys, on loopback.
    let key = EncodingKey::from_ec_pem(include_bytes!("../../mcpgate/tests/keys/ec256.pem")).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let idp = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/jwks"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"keys": [jwk]})))
        .mount(&idp)
        .await;

    let (upstream_url, upstream_task) = upstream().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcpgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"

[upstream]
url = "{upstream_url}"

[auth]
mode = "resource"

[auth.resource]
jwks_uri = "{idp}/jwks"
issuer = "https://as.example.com"
"#,
            idp = idp.uri()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut gateway = Running(child);
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the gateway did not start");

    // Without a token: the challenge, naming the resource metadata.
    let anonymous = http.post(format!("{base}/mcp")).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().contains("resource_metadata="));

    // With one: a real MCP client calls a tool on the upstream through the gateway.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"iss": "https://as.example.com", "sub": "alice", "aud": format!("{base}/mcp"),
                        "client_id": "c1", "iat": now, "exp": now + 300});
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token.clone()),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "echo"));
    let echoed = client
        .call_tool(
            CallToolRequestParams::new("echo")
                .with_arguments(json!({"text": "through the gateway"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert!(echoed.content[0].as_text().unwrap().text.contains("through the gateway"));
    let _ = client.cancel().await;

    // The upstream gone: a JSON-RPC-shaped 502, promptly.
    upstream_task.abort();
    let _ = upstream_task.await;
    let response = http
        .post(format!("{base}/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32000);

    // SIGTERM: a clean exit.
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(exit) = gateway.0.try_wait().unwrap() {
            status = Some(exit);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(status.expect("the gateway stopped on SIGTERM").success());
}
