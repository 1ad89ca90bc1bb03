//! A real Redis Cluster on loopback, owned by one test: three masters with a replica each
//! (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), killed when
//! dropped — in plain TCP, or all over TLS (clients, the cluster bus and replication). A master
//! can be killed to watch its replica take over.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::free_port;
use crate::redis_server::TestTls;

/// One node: its port and its process.
struct Node {
    port: u16,
    child: Option<Child>,
}

/// The cluster.
pub struct RedisCluster {
    nodes: Vec<Node>,
    tls: Option<TestTls>,
    _dir: tempfile::TempDir,
}

/// How long a node may be silent before the others fail it over (short, for tests).
const NODE_TIMEOUT_MS: u64 = 1000;

/// A port whose cluster bus port (the port + 10000) is free too.
fn node_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts six nodes and joins them: three masters, one replica each; returns once every
    /// slot is served.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// [`start`](Self::start), every node speaking TLS only, with a CA made for the test.
    pub async fn start_tls() -> Self {
        Self::start_with(Some(TestTls::new())).await
    }

    async fn start_with(tls: Option<TestTls>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = node_port();
            let mut command = match &tls {
                None => crate::redis_server::command(port),
                Some(tls) => {
                    let mut command = tls.command(port);
                    command.args(["--tls-cluster", "yes", "--tls-replication", "yes"]);
                    command
                }
            };
            let child = command
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/test.sh installs it)");
            nodes.push(Node { port, child: Some(child) });
        }
        let cluster = Self { nodes, tls, _dir: dir };
        for node in &cluster.nodes {
            wait_for(|| async { tokio::net::TcpStream::connect(("127.0.0.1", node.port)).await.is_ok() })
                .await;
        }
        let addresses: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let created = cluster.redis_cli(&args);
        assert!(created.contains("All 16384 slots covered"), "redis-cli --cluster create: {created}");
        cluster.wait_until_healthy().await;
        cluster
    }

    /// The store URL naming every node (over TLS: trusting the cluster's CA).
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        match &self.tls {
            None => format!("redis+cluster://{}", nodes.join(",")),
            Some(tls) => format!("rediss+cluster://{}?ca={}", nodes.join(","), tls.ca.display()),
        }
    }

    /// `redis-cli` with `args` (over TLS when the cluster is), its output.
    fn redis_cli(&self, args: &[&str]) -> String {
        let tls = self.tls.as_ref().map(TestTls::cli_args).unwrap_or_default();
        let output = Command::new("redis-cli")
            .args(tls)
            .args(args)
            .output()
            .expect("redis-cli (redis-tools) must be installed");
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
    }

    /// Waits until every live node sees the cluster as whole (`cluster_state:ok`) and every
    /// replica has everything its master wrote (a replica that never synced cannot take over,
    /// and one behind would lose what it lacks).
    pub async fn wait_until_healthy(&self) {
        let live: Vec<u16> = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.port).collect();
        wait_for(|| async {
            live.iter().all(|port| {
                let port = port.to_string();
                let synced = in_sync(&self.redis_cli(&["-p", &port, "info", "replication"]));
                synced && self.redis_cli(&["-p", &port, "cluster", "info"]).contains("cluster_state:ok")
            })
        })
        .await;
    }

    /// The keys each live master holds (a replica holds copies: left out).
    pub fn keys_by_master(&self) -> Vec<Vec<String>> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .filter(|n| self.redis_cli(&["-p", &n.port.to_string(), "role"]).starts_with("master"))
            .map(|n| {
                self.redis_cli(&["-p", &n.port.to_string(), "--raw", "keys", "*"])
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }

    /// Kills the master serving `key`'s slot; returns its port. Its replica is promoted once the
    /// others have not heard from it for the node timeout.
    pub fn kill_master_of(&mut self, key: &str) -> u16 {
        let any = self.nodes.iter().find(|n| n.child.is_some()).expect("a live node").port;
        let slot = self.redis_cli(&["-p", &any.to_string(), "cluster", "keyslot", key]);
        let slot: u16 = slot.trim().parse().unwrap_or_else(|_| panic!("cluster keyslot: {slot}"));
        let nodes = self.redis_cli(&["-p", &any.to_string(), "cluster", "nodes"]);
        // `<id> <ip:port@bus> <flags> <master> … <slot ranges>`
        let port = nodes
            .lines()
            .filter(|line| line.split_whitespace().nth(2).is_some_and(|flags| flags.contains("master")))
            .find(|line| {
                line.split_whitespace().skip(8).any(|range| {
                    let (start, end) = range.split_once('-').unwrap_or((range, range));
                    matches!((start.parse::<u16>(), end.parse::<u16>()), (Ok(s), Ok(e)) if (s..=e).contains(&slot))
                })
            })
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|address| address.split(['@', ':']).nth(1))
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no master for slot {slot} in {nodes}"));
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("the master is ours");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        port
    }
}

/// Whether a node's `INFO replication` says it is in sync: a replica linked to its master, or a
/// master whose replicas (`slaveN:…,offset=N,…`) have reached its own offset.
fn in_sync(replication: &str) -> bool {
    let field = |name: &str| replication.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    if field("role:") != Some("master") {
        return field("master_link_status:") == Some("up");
    }
    let own = field("master_repl_offset:");
    replication
        .lines()
        .filter(|line| line.starts_with("slave") && line.contains("ip="))
        .all(|line| line.split(',').find_map(|part| part.strip_prefix("offset=")) == own)
}

/// Polls `ready` every 100 ms, for at most 20 s.
async fn wait_for<F: Future<Output = bool>>(mut ready: impl FnMut() -> F) {
    for _ in 0..200 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the Redis Cluster did not get ready within 20 s");
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
