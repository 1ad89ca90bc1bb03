//! Helpers for tests that run `mcpgate serve` or `mcpgate demo`: the process itself, and an authorization server
//! (keys on a loopback JWKS endpoint) minting access tokens for resource mode.

use std::process::{Command, Stdio};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::process::{self, Running};

/// Starts `mcpgate serve --log-format json` on `config`'s text (with `env`), its log in
/// `dir/gateway.log`; waits until it answers.
pub async fn start_gateway(dir: &std::path::Path, config: &str, env: &[(&str, &str)], base: &str) -> Running {
    let path = dir.join("mcpgate.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["serve", "--log-format", "json", "--config", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("gateway.log")).unwrap())
        .spawn()
        .unwrap();
    process::running_once_up(child, &format!("{base}/healthz"), "the gateway").await
}

/// Starts `mcpgate demo --port PORT` in `dir` (its state goes to `dir/.mcpgate`); waits until it
/// answers.
pub async fn start_demo(dir: &std::path::Path, port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["demo", "--port", &port.to_string()])
        .current_dir(dir)
        // What it prints, for tests that follow its instructions.
        .stdout(std::fs::File::create(dir.join("demo.out")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    process::running_once_up(child, &format!("http://127.0.0.1:{port}/healthz"), "the demo").await
}

/// An HTTP "MCP server" that answers every request with what it was told: its own name, the
/// caller the gateway named and whether any credentials reached it.
pub async fn echo_upstream(name: &'static str) -> String {
    let handler = move |headers: http::HeaderMap, body: axum::Json<serde_json::Value>| async move {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": body.0["id"], "result": {
            "upstream": name,
            "subject": header("x-mcpgate-subject"),
            "kind": header("x-mcpgate-client-kind"),
            "authorization": header("authorization"),
        }}))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/mcp", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The demo MCP server (rmcp: every revision) over Streamable HTTP on loopback: its MCP URL,
/// and the task to abort to stop it.
pub async fn demo_upstream() -> (String, tokio::task::JoinHandle<()>) {
    use std::sync::Arc;

    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

    let mcp = StreamableHttpService::new(
        || Ok(mcpgate::mcp::DemoServer::default()),
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

/// Sends SIGHUP: the gateway reloads its configuration.
pub fn hangup(gateway: &Running) {
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
}

/// Sends SIGTERM and waits (up to 10 s) for the gateway to exit; its exit status.
pub async fn terminate(gateway: &mut Running) -> std::process::ExitStatus {
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    for _ in 0..200 {
        if let Some(exit) = gateway.0.try_wait().unwrap() {
            return exit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not stop on SIGTERM");
}

/// An authorization server's signing key with its JWKS served on loopback.
pub struct Issuer {
    key: EncodingKey,
    jwks: wiremock::MockServer,
}

/// The issuer the tokens name.
pub const ISSUER: &str = "https://as.example.com";

impl Issuer {
    pub async fn start() -> Self {
        let key = mcpgate_test_support::TestKey::ec256("k1").encoding;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".into());
        let jwks = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/jwks"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"keys": [jwk]})))
            .mount(&jwks)
            .await;
        Self { key, jwks }
    }

    /// The `[auth]` section of a resource-mode gateway trusting this issuer.
    pub fn auth_config(&self) -> String {
        format!(
            "[auth]\nmode = \"resource\"\n\n[auth.resource]\njwks_uri = \"{}/jwks\"\nissuer = \"{ISSUER}\"\n",
            self.jwks.uri()
        )
    }

    /// An access token for `subject`, for the MCP endpoint `audience`, valid five minutes.
    pub fn token(&self, subject: &str, audience: &str) -> String {
        self.token_with(json!({"sub": subject, "aud": audience, "client_id": "c1", "scope": "mcp:tools"}))
    }

    /// An access token with `claims`, plus this issuer, `iat` and a five-minute `exp`.
    pub fn token_with(&self, mut claims: serde_json::Value) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        claims["iss"] = json!(ISSUER);
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 300);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}
