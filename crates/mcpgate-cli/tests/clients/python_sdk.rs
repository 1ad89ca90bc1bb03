//! Interoperability: the Python MCP SDK's client (`mcp` from PyPI, pinned in
//! tests/interop/requirements.txt, installed by scripts/test.sh into tests/interop/.venv)
//! against `mcpgate demo`, and against the gateway in front of the test IdP. The client script (`tests/interop/py_client.py`) discovers the
//! authorization server from the 401, registers, is approved and signs in on the provider's pages
//! (driven by an HTTP client with a cookie jar), calls `whoami`, refreshes when its token's
//! lifetime is over, and after its grant is revoked server-side signs in exactly once more. On
//! the CIMD path it offers the URL of its client ID metadata document instead of registering.

use crate::interop_targets::{Target, assert_client_document_used, assert_full_flow};

/// Runs the Python client against `target` as `user`; what it saw.
async fn run_client(target: &Target, user: &str) -> serde_json::Value {
    let python = crate::interop_targets::interop_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the Python SDK's venv is missing: run scripts/test.sh (it makes tests/interop/.venv)"
    );
    crate::interop_targets::run_client_script(&python, "py_client.py", target, user).await
}

#[tokio::test]
async fn the_python_sdk_client_against_the_demo() {
    let target = crate::interop_targets::demo().await;
    assert_full_flow(&run_client(&target, "rosa").await, "rosa");
}

#[tokio::test]
async fn the_python_sdk_client_against_the_gateway_in_front_of_an_openid_provider() {
    let target = crate::interop_targets::gateway_with_idp().await;
    assert_full_flow(&run_client(&target, "rosalind").await, "rosalind");
}

#[tokio::test]
async fn the_python_sdk_client_offering_a_client_id_metadata_document() {
    let target = crate::interop_targets::gateway_with_idp_and_client_document(
        "py.json",
        "http://127.0.0.1:47061/callback",
    )
    .await;
    let seen = run_client(&target, "rosamund").await;
    assert_full_flow(&seen, "rosamund");
    assert_client_document_used(&target, &seen["client_id"], "py.json").await;
}
