//! What reaches an HTTP upstream of a CGI-style server (Python's wsgiref, which reads `_` as
//! `-`): no forged identity header under any spelling, no forwarding header of the client's,
//! and the gateway's own `X-Forwarded-*` (findings 1 and 2).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::gateway::{Issuer, start_gateway};
use super::process::{Running, free_port};

/// The wsgiref upstream (tests/upstreams/wsgi_echo.py): its MCP URL, and the process.
pub fn wsgi_upstream() -> (String, Running) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstreams/wsgi_echo.py");
    let mut child =
        Command::new("python3").arg(script).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("wsgi_echo.py prints its port");
    (format!("http://127.0.0.1:{port}/mcp"), Running(child))
}

/// A resource-mode gateway before the wsgiref upstream, with `server_extra` in `[server]`.
pub async fn gateway_before_wsgi(
    issuer: &Issuer,
    server_extra: &str,
) -> (String, Running, Running, tempfile::TempDir) {
    let (upstream, upstream_process) = wsgi_upstream();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n{server_extra}\n[upstream]\nurl = \"{upstream}\"\n\n{}",
        issuer.auth_config()
    );
    let gateway = start_gateway(dir.path(), &config, &[], &base).await;
    (base, gateway, upstream_process, dir)
}

/// The CGI environment the upstream saw for a ping carrying `headers`.
pub async fn environ_for(base: &str, token: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = reqwest::Client::new().post(format!("{base}/mcp")).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn underscore_spellings_of_identity_headers_and_client_forwarding_headers_never_reach_a_wsgi_upstream()
{
    let issuer = Issuer::start().await;
    let (base, _gateway, _upstream, _dir) = gateway_before_wsgi(&issuer, "").await;
    // A signed-in user with no groups and no email.
    let token = issuer.token("alice", &format!("{base}/mcp"));
    let seen = environ_for(
        &base,
        &token,
        &[
            ("X_Mcpgate_Subject", "root"),
            ("X_Mcpgate_Groups", "admins"),
            ("X_Mcpgate_Email_Verified", "true"),
            ("x-mcpgate_email", "root@example.com"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "admin.internal"),
            ("X-Real-IP", "10.0.0.1"),
            ("Forwarded", "for=10.0.0.1;proto=https"),
            ("X_Forwarded_For", "10.0.0.2"),
        ],
    )
    .await;
    assert_eq!(seen["HTTP_X_MCPGATE_SUBJECT"], "alice", "{seen}");
    for forged in ["HTTP_X_MCPGATE_GROUPS", "HTTP_X_MCPGATE_EMAIL_VERIFIED", "HTTP_X_MCPGATE_EMAIL"] {
        assert!(seen.get(forged).is_none(), "{forged} reached the upstream: {seen}");
    }
    assert_eq!(seen["HTTP_X_FORWARDED_FOR"], "127.0.0.1", "the peer, as the gateway saw it: {seen}");
    assert_eq!(seen["HTTP_X_FORWARDED_PROTO"], "http");
    assert_eq!(seen["HTTP_X_FORWARDED_HOST"], base.trim_start_matches("http://"));
    for gone in ["HTTP_X_REAL_IP", "HTTP_FORWARDED", "HTTP_AUTHORIZATION"] {
        assert!(seen.get(gone).is_none(), "{gone} reached the upstream: {seen}");
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_address_it_forwarded() {
    let issuer = Issuer::start().await;
    let (base, _gateway, _upstream, _dir) =
        gateway_before_wsgi(&issuer, "trusted_proxies = [\"127.0.0.0/8\"]\n").await;
    let token = issuer.token("alice", &format!("{base}/mcp"));
    // The loopback peer is a trusted proxy that appended 203.0.113.9 to what the client wrote.
    let seen = environ_for(&base, &token, &[("X-Forwarded-For", "6.6.6.6, 203.0.113.9")]).await;
    assert_eq!(seen["HTTP_X_FORWARDED_FOR"], "203.0.113.9", "{seen}");
}
