//! What the interop clients are pointed at: `mcpgate demo` (its development login page), and
//! the gateway in proxy mode in front of the real test IdP (oidc-provider's login and consent
//! pages), serving the stdio test server with one process per session, whose `whoami` answers
//! with the identity the gateway started it for.

use super::gateway::{start_demo, start_gateway};
use super::idp::TestIdp;
use super::process::{Running, example_path, free_port};
use super::sign_in::{PROXY_ENV, proxy_config};

/// A running mcpgate and what it needs kept alive.
pub struct Target {
    /// The MCP endpoint.
    pub mcp_url: String,
    _processes: Vec<Running>,
    _idp: Option<TestIdp>,
    _dir: tempfile::TempDir,
}

/// `mcpgate demo` in a fresh directory.
pub async fn demo() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let demo = start_demo(dir.path(), port).await;
    Target { mcp_url: format!("http://127.0.0.1:{port}/mcp"), _processes: vec![demo], _idp: None, _dir: dir }
}

/// `mcpgate serve` in proxy mode, logging users in at the test IdP, in front of the stdio test
/// server.
pub async fn gateway_with_idp() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&[&format!("{base}/auth/callback")]);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\ncommand = [\"{server}\"]\nper_session = true\n\n{auth}",
        server = example_path("stdio_test_server").display(),
        auth = proxy_config(&idp, "mcp:tools", dir.path()),
    );
    let gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;
    Target { mcp_url: format!("{base}/mcp"), _processes: vec![gateway], _idp: Some(idp), _dir: dir }
}
