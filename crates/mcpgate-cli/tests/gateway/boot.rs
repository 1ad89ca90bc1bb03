//! The identity provider down when the gateway starts (finding 13): it listens anyway, alive but
//! not ready, every other route a clear 503; it retries discovery and serves normally once the
//! provider answers, without a restart.

use serde_json::{Value, json};

use super::gateway::start_gateway;
use super::idp::{CLIENT_ID, TestIdp};
use super::process::free_port;
use super::sign_in::{PROXY_ENV, sign_in};
use super::upstream_headers::{environ_for, wsgi_upstream};

#[tokio::test]
async fn the_gateway_starts_before_its_identity_provider_and_serves_once_it_answers() {
    let (port, idp_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let (upstream, _upstream_process) = wsgi_upstream();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\nurl = \"{upstream}\"\n\n\
         [auth]\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"TEST_IDP_SECRET\"\nscopes = [\"mcp:read\"]\n\n\
         [auth.oidc]\ndiscovery_url = \"http://127.0.0.1:{idp_port}/.well-known/openid-configuration\"\n\n\
         [store]\nurl = \"sqlite://{}\"\n",
        dir.path().join("gateway.db").display()
    );
    // Nothing listens at the provider's address yet; the gateway answers /healthz all the same.
    let _gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;
    let http = reqwest::Client::new();
    let status = |path: &str| {
        let request = http.get(format!("{base}{path}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 503);
    let waiting = http.get(format!("{base}/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(waiting.status(), 503);
    assert!(waiting.headers().contains_key("retry-after"));
    let body: Value = waiting.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("identity provider"), "{body}");
    let register =
        http.post(format!("{base}/register")).json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"]}));
    assert_eq!(register.send().await.unwrap().status(), 503);
    let mcp = http.post(format!("{base}/mcp")).json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
    assert_eq!(mcp.send().await.unwrap().status(), 503);
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    assert!(log.contains("answering 503 until its identity provider is reachable"), "{log}");

    // The provider comes up: the gateway notices by itself.
    let idp = TestIdp::start_at(idp_port, &[&format!("{base}/auth/callback")], 600);
    let since = std::time::Instant::now();
    while status("/readyz").await != 200 {
        assert!(since.elapsed() < std::time::Duration::from_secs(20), "still not ready after 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, access) = sign_in(&base, &idp, "ursula").await;
    let seen = environ_for(&base, &access, &[]).await;
    assert_eq!(seen["HTTP_X_MCPGATE_SUBJECT"], "ursula", "{seen}");
}
