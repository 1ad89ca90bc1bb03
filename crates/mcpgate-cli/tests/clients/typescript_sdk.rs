//! Interoperability: the TypeScript MCP SDK's client (`@modelcontextprotocol/sdk`, pinned in
//! tests/interop) against `mcpgate demo`, and against the gateway in front of the test IdP. The client script (`tests/interop/ts_client.mjs`)
//! discovers the authorization server from the 401, registers, is approved and signs in on the
//! provider's pages (driven by a cookie-jar HTTP client), calls `whoami`, refreshes a stale token,
//! and after its grant is revoked server-side signs in exactly once more and carries on. On the
//! CIMD path it offers the URL of its client ID metadata document instead of registering.

use std::path::Path;

use crate::interop_targets::{Target, assert_client_document_used, assert_full_flow};

/// Runs the TypeScript client against `target` as `user`; what it saw.
async fn run_client(target: &Target, user: &str) -> serde_json::Value {
    let sdk = crate::interop_targets::interop_dir().join("node_modules/@modelcontextprotocol/sdk");
    assert!(
        sdk.exists(),
        "the TypeScript SDK is missing: run scripts/test.sh (it runs npm ci in tests/interop)"
    );
    crate::interop_targets::run_client_script(Path::new("node"), "ts_client.mjs", target, user).await
}

#[tokio::test]
async fn the_typescript_sdk_client_against_the_demo() {
    let target = crate::interop_targets::demo().await;
    assert_full_flow(&run_client(&target, "quinn").await, "quinn");
}

#[tokio::test]
async fn the_typescript_sdk_client_against_the_gateway_in_front_of_an_openid_provider() {
    let target = crate::interop_targets::gateway_with_idp().await;
    assert_full_flow(&run_client(&target, "quincy").await, "quincy");
}

#[tokio::test]
async fn the_typescript_sdk_client_offering_a_client_id_metadata_document() {
    let target = crate::interop_targets::gateway_with_idp_and_client_document(
        "ts.json",
        "http://127.0.0.1:47051/callback",
    )
    .await;
    let seen = run_client(&target, "quentin").await;
    assert_full_flow(&seen, "quentin");
    assert_client_document_used(&target, &seen["clientId"], "ts.json").await;
}
