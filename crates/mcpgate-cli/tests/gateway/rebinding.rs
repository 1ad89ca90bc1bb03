//! DNS rebinding (finding 8): a browser page of a foreign origin is refused at the MCP endpoint
//! even with a valid token, and a request naming a host that is not the gateway's is refused.

use serde_json::json;

use super::gateway::Issuer;
use super::upstream_headers::gateway_before_wsgi;

/// The status of a ping to `base`'s MCP endpoint with a valid token and `headers`.
async fn ping(base: &str, token: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new().post(format!("{base}/mcp")).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused_with_a_valid_token() {
    let issuer = Issuer::start().await;
    let (base, _gateway, _upstream, _dir) = gateway_before_wsgi(&issuer, "").await;
    let token = issuer.token("alice", &format!("{base}/mcp"));
    let port = base.rsplit(':').next().unwrap();

    assert_eq!(ping(&base, &token, &[]).await, 200, "no Origin: not a browser");
    assert_eq!(ping(&base, &token, &[("origin", &base)]).await, 200, "the gateway's own origin");
    assert_eq!(ping(&base, &token, &[("origin", "http://localhost:6274")]).await, 200, "a loopback page");
    for origin in ["http://evil.example", "null", "https://127.0.0.1.evil.example"] {
        assert_eq!(ping(&base, &token, &[("origin", origin)]).await, 403, "{origin}");
    }
    // The rebound name arrives as Host.
    let rebound = format!("evil.example:{port}");
    assert_eq!(ping(&base, &token, &[("host", &rebound)]).await, 403);
    assert_eq!(ping(&base, &token, &[("host", &format!("localhost:{port}"))]).await, 200, "a loopback alias");
    let probe = reqwest::Client::new().get(format!("{base}/healthz")).header("host", "10.0.0.7:8000");
    assert_eq!(probe.send().await.unwrap().status(), 200, "probes reach /healthz by address");
    // The OAuth metadata is behind the same check.
    let metadata = reqwest::Client::new()
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .header("host", &rebound)
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 403);
}

#[tokio::test]
async fn allowed_origins_replace_the_loopback_default() {
    let issuer = Issuer::start().await;
    let (base, _gateway, _upstream, _dir) = gateway_before_wsgi(
        &issuer,
        "allowed_origins = [\"https://app.example.com\"]\nallowed_hosts = [\"mcp.internal\"]\n",
    )
    .await;
    let token = issuer.token("alice", &format!("{base}/mcp"));
    assert_eq!(ping(&base, &token, &[("origin", "https://app.example.com")]).await, 200);
    assert_eq!(ping(&base, &token, &[("origin", &base)]).await, 200, "its own origin always");
    assert_eq!(ping(&base, &token, &[("origin", "http://localhost:6274")]).await, 403);
    let port = base.rsplit(':').next().unwrap();
    assert_eq!(ping(&base, &token, &[("host", &format!("mcp.internal:{port}"))]).await, 200);
}
