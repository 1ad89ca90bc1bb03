//! Interoperability: `mcp-remote` (npm, pinned in tests/interop), the stdio bridge many desktop
//! MCP clients use to reach remote servers, against `mcpgate demo`. It opens the authorization
//! URL with xdg-open, which runs `$BROWSER`: here `fake_browser.sh`, which signs in on the
//! provider's pages and delivers the redirect to mcp-remote's callback server. An rmcp client speaks
//! to mcp-remote over stdio: `whoami` is the user; a second mcp-remote run reuses the stored
//! tokens without a sign-in; after the grant is revoked server-side, the next run signs in once
//! more and works.

use std::path::Path;

use crate::interop_targets::{Target, interop_dir};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::TokioChildProcess;

/// Runs mcp-remote for `target` with its state in `state` and its OAuth callback on
/// `callback_port`, and asks `whoami` through it.
async fn whoami_through_mcp_remote(target: &Target, state: &Path, callback_port: u16) -> String {
    let interop = interop_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(interop.join("node_modules/mcp-remote/dist/proxy.js"))
        .arg(&target.mcp_url)
        .arg(callback_port.to_string())
        .env("MCP_REMOTE_CONFIG_DIR", state.join("auth"))
        .env("BROWSER", interop.join("fake_browser.sh"))
        .env("INTEROP_USER", "tess")
        .env("INTEROP_LOG", state.join("sign-ins"));
    let transport = TokioChildProcess::new(command).expect("mcp-remote started");
    let client = ClientConfig::default().serve(transport).await.expect("initialize through mcp-remote");
    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.expect("whoami");
    let _ = client.cancel().await;
    let me: serde_json::Value = serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
    me["subject"].as_str().unwrap().to_owned()
}

fn sign_ins(state: &Path) -> usize {
    std::fs::read_to_string(state.join("sign-ins")).map_or(0, |log| log.lines().count())
}

/// mcp-remote signs in headless, reuses its stored tokens, and after a server-side revocation
/// signs in exactly once more.
async fn full_flow(target: Target) {
    assert!(
        interop_dir().join("node_modules/mcp-remote").exists(),
        "run scripts/test.sh (npm ci in tests/interop)"
    );
    let target = &target;
    let state = tempfile::tempdir().unwrap();
    // Named, not left to mcp-remote: it derives one from the server's URL, which can be a port
    // in use (the server's own, once), and then stores a registration for another port that
    // its next run throws away.
    let callback_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    assert_eq!(whoami_through_mcp_remote(target, state.path(), callback_port).await, "tess");
    assert_eq!(sign_ins(state.path()), 1);
    assert_eq!(whoami_through_mcp_remote(target, state.path(), callback_port).await, "tess");
    assert_eq!(sign_ins(state.path()), 1, "the stored tokens were used, without a sign-in");

    // Revoke the grant by the refresh token mcp-remote stored.
    let tokens = walk_json(&state.path().join("auth"), "_tokens.json");
    let client = walk_json(&state.path().join("auth"), "_client_info.json");
    let base = target.mcp_url.trim_end_matches("/mcp");
    let revoked = reqwest::Client::new()
        .post(format!("{base}/revoke"))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client["client_id"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(whoami_through_mcp_remote(target, state.path(), callback_port).await, "tess");
    assert_eq!(sign_ins(state.path()), 2, "exactly one more sign-in after the revocation");
}

#[tokio::test]
async fn mcp_remote_against_the_demo() {
    full_flow(crate::interop_targets::demo().await).await;
}

#[tokio::test]
async fn mcp_remote_against_the_gateway_in_front_of_an_openid_provider() {
    full_flow(crate::interop_targets::gateway_with_idp().await).await;
}

/// The JSON file under `dir` (at any depth) whose name ends with `suffix`.
fn walk_json(dir: &Path, suffix: &str) -> serde_json::Value {
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                return serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            }
        }
    }
    panic!("no *{suffix} under {}", dir.display());
}
