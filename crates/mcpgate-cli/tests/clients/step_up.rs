//! Step-up with real SDK clients (MCP 2025-11-25 scope challenges): the gateway's policy gives
//! `echo` only to tokens with `mcp:echo`, which the first sign-in (baseline `mcp:tools`) lacks.
//! Each client calls `echo`, gets 403 `insufficient_scope`, authorizes again with the larger set
//! (the consent page marking the new scope), and the call succeeds:
//!
//! - the Python SDK (2.3.0) re-authorizes with the union of scopes by itself;
//! - the TypeScript SDK (1.32.2) without a refresh token goes straight to authorizing;
//! - the TypeScript SDK holding a refresh token first refreshes with the old scopes
//!   (typescript-sdk#2255): mcpgate, told of the step-up by its policy layer, answers that
//!   refresh `invalid_grant` once, and the SDK authorizes — a refresh never widens scopes.

use std::path::Path;

use crate::interop_targets::{Target, gateway_with_idp_and_policy, interop_dir, run_client_script_with};

const POLICY: &str =
    "[[policy.rules]]\nid = \"echo-needs-scope\"\ntools = [\"echo\"]\nrequire_scopes = [\"mcp:echo\"]\n";

async fn typescript(target: &Target, user: &str, mode: &str) -> serde_json::Value {
    assert!(
        interop_dir().join("node_modules/@modelcontextprotocol/sdk").exists(),
        "run scripts/test.sh (npm ci)"
    );
    run_client_script_with(Path::new("node"), "ts_stepup.mjs", target, &[user, mode]).await
}

#[tokio::test]
async fn the_python_sdk_steps_up_by_itself() {
    let target = gateway_with_idp_and_policy(POLICY).await;
    let python = interop_dir().join(".venv/bin/python");
    assert!(python.exists(), "run scripts/test.sh (it makes tests/interop/.venv)");
    let seen = run_client_script_with(&python, "py_stepup.py", &target, &["sofia"]).await;
    assert_eq!(seen["echo"], "stepped up", "{seen}");
    assert_eq!(seen["logins"], 2, "{seen}");
    assert_eq!(seen["asked"][0], "mcp:tools", "the first authorization asks for the baseline: {seen}");
    assert_eq!(seen["asked"][1], "mcp:tools mcp:echo", "the step-up asks for the union: {seen}");
}

#[tokio::test]
async fn the_typescript_sdk_without_a_refresh_token_steps_up_by_itself() {
    let target = gateway_with_idp_and_policy(POLICY).await;
    let seen = typescript(&target, "sergio", "no-refresh").await;
    assert_eq!(seen["echo"], "stepped up", "{seen}");
    assert_eq!(seen["refreshes"], serde_json::json!([]), "no refresh without a refresh token: {seen}");
}

#[tokio::test]
async fn the_typescript_sdk_holding_a_refresh_token_is_sent_to_authorize_again() {
    let target = gateway_with_idp_and_policy(POLICY).await;
    let seen = typescript(&target, "serena", "refresh").await;
    assert_eq!(seen["echo"], "stepped up", "{seen}");
    assert_eq!(
        seen["refreshes"],
        serde_json::json!([{"status": 400, "error": "invalid_grant"}]),
        "the SDK refreshed first, and mcpgate sent it to authorize: {seen}"
    );
    assert_eq!(seen["asked"], "mcp:tools mcp:echo", "{seen}");
}
