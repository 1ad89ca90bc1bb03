//! What the interop clients are pointed at: `mcpgate demo` (its development login page), and
//! the gateway in proxy mode in front of the real test IdP (oidc-provider's login and consent
//! pages), serving the stdio test server with one process per session, whose `whoami` answers
//! with the identity the gateway started it for; that gateway also with a client's own https
//! server publishing its client ID metadata document (the CIMD path).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::document_host::DocumentHost;
use super::gateway::{start_demo, start_gateway};
use super::idp::TestIdp;
use super::process::{Running, example_path, free_port};
use super::sign_in::{PROXY_ENV, proxy_config};

/// A running mcpgate and what it needs kept alive.
pub struct Target {
    /// The MCP endpoint.
    pub mcp_url: String,
    /// The client ID metadata document URL the client is to offer instead of registering.
    pub client_metadata_url: Option<String>,
    /// The client's web server publishing that document.
    pub document_host: Option<DocumentHost>,
    _processes: Vec<Running>,
    _idp: Option<TestIdp>,
    _dir: tempfile::TempDir,
}

/// `mcpgate demo` in a fresh directory.
pub async fn demo() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let demo = start_demo(dir.path(), port).await;
    Target {
        mcp_url: format!("http://127.0.0.1:{port}/mcp"),
        client_metadata_url: None,
        document_host: None,
        _processes: vec![demo],
        _idp: None,
        _dir: dir,
    }
}

/// [`gateway_with_idp`] with `policy` (`[policy]` and its rules) in its configuration.
pub async fn gateway_with_idp_and_policy(policy: &str) -> Target {
    let dir = tempfile::tempdir().unwrap();
    start_gateway_with_idp(dir, &format!("\n{policy}"), &[]).await
}

/// `mcpgate serve` in proxy mode, logging users in at the test IdP, in front of the stdio test
/// server.
pub async fn gateway_with_idp() -> Target {
    let dir = tempfile::tempdir().unwrap();
    start_gateway_with_idp(dir, "", &[]).await
}

/// [`gateway_with_idp`], and the client's own https server publishing, as `name`, the client
/// ID metadata document of a public client redirecting to `redirect_uri`. The gateway trusts that
/// server's CA (`SSL_CERT_FILE`) and fetches documents from loopback
/// (`allow_private_addresses`, the explicit test setting).
pub async fn gateway_with_idp_and_client_document(name: &str, redirect_uri: &str) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let host = DocumentHost::start(dir.path()).await;
    let url = host.url(name);
    host.publish(
        name,
        serde_json::json!({
            "client_id": url,
            "client_name": format!("mcpgate interop ({name})"),
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    );
    let ca_file = host.ca_file().to_str().unwrap().to_owned();
    let documents = "\n[auth.client_metadata_documents]\nallow_private_addresses = true\n";
    let mut target = start_gateway_with_idp(dir, documents, &[("SSL_CERT_FILE", &ca_file)]).await;
    target.client_metadata_url = Some(url);
    target.document_host = Some(host);
    target
}

async fn start_gateway_with_idp(
    dir: tempfile::TempDir,
    more_config: &str,
    more_env: &[(&str, &str)],
) -> Target {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&[&format!("{base}/auth/callback")]);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\ncommand = [\"{server}\"]\nper_session = true\n\n{auth}{more_config}",
        server = example_path("stdio_test_server").display(),
        auth = proxy_config(&idp, "mcp:tools", dir.path()),
    );
    let env: Vec<_> = PROXY_ENV.iter().chain(more_env).copied().collect();
    let gateway = start_gateway(dir.path(), &config, &env, &base).await;
    Target {
        mcp_url: format!("{base}/mcp"),
        client_metadata_url: None,
        document_host: None,
        _processes: vec![gateway],
        _idp: Some(idp),
        _dir: dir,
    }
}

/// The gateway's `/metrics` text.
pub async fn metrics(target: &Target) -> String {
    let url = target.mcp_url.replace("/mcp", "/metrics");
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// What a client on the CIMD path must have done: offered the document URL as its client id,
/// which the gateway fetched, and never registered.
pub async fn assert_client_document_used(target: &Target, client_id: &serde_json::Value, name: &str) {
    let url = target.client_metadata_url.as_deref().unwrap();
    assert_eq!(client_id, url, "the client's id is its document's URL");
    assert!(target.document_host.as_ref().unwrap().fetches(name) >= 1, "the gateway fetched the document");
    let metrics = metrics(target).await;
    assert!(!metrics.contains("route=\"/register\""), "the client registered: {metrics}");
    assert!(metrics.contains("route=\"/token\""), "{metrics}");
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
    run_client_script_with(program, script, target, &[user]).await
}

/// Runs `program script <mcp-url> <args…>` in tests/interop, as [`run_client_script`] does.
pub async fn run_client_script_with(
    program: &Path,
    script: &str,
    target: &Target,
    args: &[&str],
) -> serde_json::Value {
    let mut command = Command::new(program);
    command.arg(script).arg(&target.mcp_url).args(args).current_dir(interop_dir());
    if let Some(url) = &target.client_metadata_url {
        command.env("INTEROP_CLIENT_METADATA_URL", url);
    }
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
