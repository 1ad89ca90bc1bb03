//! `mcpgate serve` as a process. In resource mode in front of a real rmcp Streamable HTTP server:
//! an MCP client with a good token calls a tool through the gateway; without one it gets the
//! challenge; the upstream going away is a 502; SIGTERM stops the gateway cleanly. Proxy mode
//! against the real test IdP is in `serve_proxy`.

use crate::{gateway, process};

use gateway::{Issuer, demo_upstream as upstream, start_gateway, terminate};
use process::free_port;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

#[tokio::test]
async fn resource_mode_gateway_in_front_of_an_rmcp_server() {
    let issuer = Issuer::start().await;
    let (upstream_url, upstream_task) = upstream().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[upstream]
url = "{upstream_url}"

{auth}"#,
        auth = issuer.auth_config()
    );
    let mut gateway = start_gateway(dir.path(), &config, &[], &base).await;
    let http = reqwest::Client::new();

    // Without a token: the challenge, naming the resource metadata.
    let anonymous = http.post(format!("{base}/mcp")).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().contains("resource_metadata="));

    // With one: a real MCP client calls a tool on the upstream through the gateway.
    let token = issuer.token("alice", &format!("{base}/mcp"));
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

    // What /metrics shows after this: requests by route and status, verifications (the
    // unauthenticated one too), the cache, the upstream's latency.
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let has = |name: &str, labels: &[&str]| {
        metrics.lines().any(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
    };
    assert!(
        has("mcpgate_http_requests_total", &["route=\"/mcp\"", "method=\"POST\"", "status=\"200\""]),
        "{metrics}"
    );
    assert!(has("mcpgate_http_requests_total", &["route=\"/mcp\"", "status=\"401\""]), "{metrics}");
    assert!(has("mcpgate_http_requests_total", &["status=\"502\""]), "{metrics}");
    assert!(has("mcpgate_http_request_duration_seconds_bucket", &["route=\"/mcp\""]), "{metrics}");
    assert!(has("mcpgate_token_verifications_total", &["outcome=\"valid\""]), "{metrics}");
    assert!(has("mcpgate_token_verifications_total", &["outcome=\"missing\""]), "{metrics}");
    assert!(has("mcpgate_verify_cache_total", &["outcome=\"hit\""]), "{metrics}");
    assert!(has("mcpgate_verify_cache_total", &["outcome=\"miss\""]), "{metrics}");
    assert!(
        has("mcpgate_upstream_mcp_duration_seconds_count", &["transport=\"http\"", "outcome=\"answered\""]),
        "{metrics}"
    );
    assert!(has("mcpgate_upstream_mcp_duration_seconds_count", &["outcome=\"failed\""]), "{metrics}");

    // SIGTERM: a clean exit.
    assert!(terminate(&mut gateway).await.success());
    // Its log: one JSON object per line, the shutdown among them.
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("shutting down"))),
        "{log}"
    );
}

/// An upstream that answers every POST with the headers it received.
pub(crate) async fn header_echo() -> String {
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|headers: http::HeaderMap| async move {
            let seen: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").into()))
                .collect();
            axum::Json(serde_json::Value::Object(seen))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn resource_mode_accepts_tokens_naming_the_client_and_reads_scopes_where_told() {
    // Keycloak-style access tokens: `aud` is "account", the client is in `azp`; Auth0-style
    // scopes in `permissions`.
    let (issuer, base, _gateway) =
        resource_gateway_before_header_echo("client_id = \"kc-app\"\nscope_claim = \"permissions\"\n").await;
    let http = reqwest::Client::new();
    let ping = |token: String| {
        http.post(format!("{base}/mcp"))
            .bearer_auth(token)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
    };
    let good = issuer.token_with(json!({"sub": "kc-user", "aud": "account", "azp": "kc-app",
                                         "permissions": ["mcp:read", "mcp:write"]}));
    let seen: serde_json::Value = ping(good).await.unwrap().json().await.unwrap();
    assert_eq!(seen["x-mcpgate-subject"], "kc-user");
    assert_eq!(seen["x-mcpgate-scopes"], "mcp:read mcp:write");
    let other_client = issuer.token_with(json!({"sub": "kc-user", "aud": "account", "azp": "another-app"}));
    assert_eq!(ping(other_client).await.unwrap().status(), 401);
}

#[tokio::test]
async fn an_authorization_server_that_registers_clients_itself_is_published_and_its_tokens_verified() {
    // WorkOS AuthKit's setup (docs/providers.md): AuthKit does registration and sign-in; the
    // gateway names it in the resource metadata and verifies its JWTs against its keys.
    let extra = format!("authorization_servers = [\"{}\"]\n", gateway::ISSUER);
    let (issuer, base, _gateway) = resource_gateway_before_header_echo(&extra).await;
    let http = reqwest::Client::new();
    let metadata: serde_json::Value = http
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["authorization_servers"], json!([gateway::ISSUER]));
    assert_eq!(metadata["resource"], format!("{base}/mcp"));
    let token = issuer.token("user_01JQ0E27VT3MH79RY0FVA4QBP9", &format!("{base}/mcp"));
    let ping = http
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = ping.json().await.unwrap();
    assert_eq!(seen["x-mcpgate-subject"], "user_01JQ0E27VT3MH79RY0FVA4QBP9");
    // The gateway offers no authorization server of its own in this mode.
    let own = http.get(format!("{base}/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(own.status(), 404);
}

/// A resource-mode gateway trusting a test issuer, with `extra` keys in `[auth.resource]`, in
/// front of the header-echoing upstream: the issuer, the gateway's URL, and the gateway (with
/// its directory) to keep alive.
async fn resource_gateway_before_header_echo(
    extra: &str,
) -> (Issuer, String, (process::Running, tempfile::TempDir)) {
    let issuer = Issuer::start().await;
    let upstream = header_echo().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\nurl = \"{upstream}\"\n\n{auth}{extra}",
        auth = issuer.auth_config()
    );
    let gateway = start_gateway(dir.path(), &config, &[], &base).await;
    (issuer, base, (gateway, dir))
}
