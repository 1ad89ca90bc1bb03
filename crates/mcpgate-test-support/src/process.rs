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

/// A loopback port free at the time of asking, for a server a test starts on it later. Drawn
/// at random below the kernel's ephemeral range (32768–60999 on Linux), where no port bound to
/// `:0` — every other server and outgoing connection of the tests running beside this one —
/// can land in between.
pub fn free_port() -> u16 {
    loop {
        let [high, low] = mcpgate::crypto::random_bytes::<2>();
        let port = 20_000 + u16::from_be_bytes([high, low]) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `child`, once `url` answers (within five seconds; else the test fails naming `what`).
pub async fn running_once_up(child: Child, url: &str, what: &str) -> Running {
    let mut running = Running(child);
    for _ in 0..100 {
        // What answers must be this child: one that exited (its port taken) answers nothing.
        if let Ok(Some(status)) = running.0.try_wait() {
            panic!("{what} exited before answering at {url} ({status})");
        }
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
