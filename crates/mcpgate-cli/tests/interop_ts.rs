//! Interoperability: the TypeScript MCP SDK's client (`@modelcontextprotocol/sdk`, pinned in
//! tests/interop) against `mcpgate demo`. The client script (`tests/interop/ts_client.mjs`)
//! discovers the authorization server from the 401, registers, is approved and signs in on the
//! demo's pages (driven by a cookie-jar HTTP client), calls `whoami`, refreshes a stale token,
//! and after its grant is revoked server-side signs in exactly once more and carries on.

#[allow(dead_code)]
mod gateway;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/process.rs"]
mod process;

use std::path::PathBuf;
use std::process::Command;

use gateway::start_demo;
use process::free_port;

#[tokio::test]
async fn the_typescript_sdk_client_signs_in_refreshes_and_recovers_from_revocation() {
    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        interop.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the TypeScript SDK is missing: run scripts/test.sh (it runs npm ci in tests/interop)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _demo = start_demo(dir.path(), port).await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("ts_client.mjs")
            .arg(format!("http://127.0.0.1:{port}/mcp"))
            .arg("quinn")
            .current_dir(&interop)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the TypeScript client failed:\n{stderr}\n{stdout}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["subject"], "quinn");
    assert_eq!(seen["tools"], serde_json::json!(["echo", "whoami"]));
    assert_eq!(seen["refreshed"], true);
    assert_eq!(seen["logins"], 2, "one sign-in, and one more after the revocation");
}
