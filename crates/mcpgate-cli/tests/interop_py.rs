//! Interoperability: the Python MCP SDK's client (`mcp` from PyPI, pinned in
//! tests/interop/requirements.txt, installed by scripts/test.sh into tests/interop/.venv)
//! against `mcpgate demo`. The client script (`tests/interop/py_client.py`) discovers the
//! authorization server from the 401, registers, is approved and signs in on the demo's pages
//! (driven by an HTTP client with a cookie jar), calls `whoami`, refreshes when its token's
//! lifetime is over, and after its grant is revoked server-side signs in exactly once more.

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
async fn the_python_sdk_client_signs_in_refreshes_and_recovers_from_revocation() {
    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let python = interop.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the Python SDK's venv is missing: run scripts/test.sh (it makes tests/interop/.venv)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _demo = start_demo(dir.path(), port).await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg("py_client.py")
            .arg(format!("http://127.0.0.1:{port}/mcp"))
            .arg("rosa")
            .current_dir(&interop)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the Python client failed:\n{stderr}\n{stdout}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["subject"], "rosa");
    assert_eq!(seen["tools"], serde_json::json!(["echo", "whoami"]));
    assert_eq!(seen["refreshed"], true);
    assert_eq!(seen["logins"], 2, "one sign-in, and one more after the revocation");
}
