//! What the interop clients are pointed at: `mcpgate demo` (its development login page), and
//! the gateway in proxy mode in front of the real test IdP (oidc-provider's login and consent
//! pages), serving the stdio test server with one process per session, whose `whoami` answers
//! with the identity the gateway started it for.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// tests/interop, where the client scripts and their packages are.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Runs `program script <mcp-url> <user>` in tests/interop; the JSON line the script printed
/// (the test fails with the script's output if it failed).
pub async fn run_client_script(
    program: &Path,
    script: &str,
    target: &Target,
    user: &str,
) -> serde_json::Value {
    let mut command = Command::new(program);
    command.arg(script).arg(&target.mcp_url).arg(user).current_dir(interop_dir());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stderr}\n{stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

/// What a client script must have seen: `whoami` answering `user`, a refresh, and exactly one
/// more sign-in after the revocation.
pub fn assert_full_flow(seen: &serde_json::Value, user: &str) {
    assert_eq!(seen["subject"], user);
    assert!(seen["tools"].as_array().unwrap().iter().any(|t| t == "whoami"), "{seen}");
    assert_eq!(seen["refreshed"], true);
    assert_eq!(seen["logins"], 2, "one sign-in, and one more after the revocation");
}
