//! A real `redis-server` on a free loopback port, owned by one test and killed when dropped.
//! `scripts/test.sh` installs Redis when it is missing; a test that cannot start it fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::free_port;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

/// `redis-server` on loopback at `port`, keeping nothing on disk.
pub(crate) fn command(port: u16) -> Command {
    let mut command = Command::new("redis-server");
    let port = port.to_string();
    command.args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    command
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self { port: free_port(), child: None };
        server.launch().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn launch(&mut self) {
        let child = command(self.port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server (its data is gone: it keeps nothing on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
