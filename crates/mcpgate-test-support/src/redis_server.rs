//! A real `redis-server` on a free loopback port, owned by one test and killed when dropped —
//! in plain TCP, or over TLS with a certificate authority of the test's own. `scripts/test.sh`
//! installs Redis when it is missing; a test that cannot start it fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::free_port;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Over TLS: its certificates.
    tls: Option<TestTls>,
}

/// `redis-server` on loopback at `port`, keeping nothing on disk.
pub(crate) fn command(port: u16) -> Command {
    let mut command = Command::new("redis-server");
    let port = port.to_string();
    command.args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    command
}

/// A certificate authority made for one test, and a server certificate for 127.0.0.1 from it.
pub(crate) struct TestTls {
    dir: tempfile::TempDir,
    /// The CA's PEM file, for the client to trust.
    pub ca: std::path::PathBuf,
}

impl TestTls {
    pub(crate) fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "mcpgate test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        // Named apart from the CA: OpenSSL (redis-server, redis-cli) takes a certificate whose
        // subject is its issuer's for a self-signed one.
        let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        leaf_params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let leaf = leaf_params.signed_by(&key, &ca).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Self { dir, ca: ca_file }
    }

    /// `redis-server` speaking TLS only, at `port`, with these certificates (clients need none).
    pub(crate) fn command(&self, port: u16) -> Command {
        let mut command = command(0);
        command.args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"]);
        command.arg("--tls-ca-cert-file").arg(&self.ca);
        command.arg("--tls-cert-file").arg(self.dir.path().join("server.pem"));
        command.arg("--tls-key-file").arg(self.dir.path().join("server.key"));
        command
    }

    /// What `redis-cli` needs to talk to such a server.
    pub(crate) fn cli_args(&self) -> Vec<String> {
        vec!["--tls".into(), "--cacert".into(), self.ca.display().to_string()]
    }
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self { port: free_port(), child: None, tls: None };
        server.launch().await;
        server
    }

    /// A server that speaks TLS only, its certificate (for 127.0.0.1) from a CA made for it.
    pub async fn start_tls() -> Self {
        let mut server = Self { port: free_port(), child: None, tls: Some(TestTls::new()) };
        server.launch().await;
        server
    }

    /// The store URL (over TLS: trusting the server's CA).
    pub fn url(&self) -> String {
        match &self.tls {
            None => format!("redis://127.0.0.1:{}/0", self.port),
            Some(tls) => format!("rediss://127.0.0.1:{}/0?ca={}", self.port, tls.ca.display()),
        }
    }

    async fn launch(&mut self) {
        let mut command = match &self.tls {
            None => command(self.port),
            Some(tls) => tls.command(self.port),
        };
        let child = command
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
