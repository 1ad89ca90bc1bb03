//! Programs the tests run as processes: the crate's examples, as a user would run them.

use std::path::PathBuf;
use std::process::Child;

/// The built example `name`: `cargo test` builds examples beside the test binaries, in
/// target/<profile>/examples/.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: run the whole test suite (cargo test builds examples)",
        path.display()
    );
    path
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `child`, once `url` answers (within five seconds; else the test fails naming `what`).
pub async fn running_once_up(child: Child, url: &str, what: &str) -> Running {
    let running = Running(child);
    for _ in 0..100 {
        if reqwest::get(url).await.is_ok() {
            return running;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what} did not start");
}

/// The status of an MCP `initialize` POSTed to `mcp_url` with `access_token` as bearer.
pub async fn initialize_status(mcp_url: &str, access_token: &str) -> u16 {
    let response = reqwest::Client::new()
        .post(mcp_url)
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}
