//! Store throughput: put, get and take per backend, from 1 and from 16 concurrent tasks.
//! A plain bench binary (criterion measures latency, this is throughput under concurrency).
//! Redis is a real `redis-server` started on a free loopback port. Results: BENCHMARKS.md.
//!
//! cargo bench -p mcpgate --bench store [-- ROUNDS]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpgate::store::{self, Collection, Store};

const RECORDS: Collection = Collection::new("bench");

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_redis() -> (Redis, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (Redis(child), format!("redis://127.0.0.1:{port}/0"))
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Put,
    Get,
    Take,
}

/// Runs `ops` operations spread over `tasks` tasks; operations per second.
async fn run(store: &Arc<dyn Store>, op: Op, tasks: usize, ops: usize) -> f64 {
    let per_task = ops / tasks;
    let value = vec![7u8; 256];
    // Takes need records to take: write them first, outside the timing.
    if matches!(op, Op::Take | Op::Get) {
        for t in 0..tasks {
            for i in 0..per_task {
                store.put(RECORDS, &format!("{t}-{i}"), &value, None).await.unwrap();
            }
        }
    }
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let key = format!("{t}-{i}");
                    match op {
                        Op::Put => drop(
                            store.put(RECORDS, &key, &value, Some(Duration::from_secs(600))).await.unwrap(),
                        ),
                        Op::Get => assert!(store.get(RECORDS, &key).await.unwrap().is_some()),
                        Op::Take => assert!(store.take(RECORDS, &key).await.unwrap().is_some()),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    (per_task * tasks) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (_redis, redis_url) = start_redis().await;
        let backends = [
            ("memory", "memory://".to_owned(), 400_000),
            ("sqlite", format!("sqlite://{}", dir.path().join("bench.db").display()), 40_000),
            ("redis", redis_url, 40_000),
        ];
        println!("{:<8} {:<5} {:>6} {:>14}", "backend", "op", "tasks", "median ops/s");
        for (name, url, ops) in backends {
            let store = store::open(&url).await.unwrap();
            for op in [Op::Put, Op::Get, Op::Take] {
                for tasks in [1, 16] {
                    let mut samples = Vec::new();
                    for _ in 0..rounds {
                        samples.push(run(&store, op, tasks, ops).await);
                    }
                    println!(
                        "{name:<8} {:<5} {tasks:>6} {:>14.0}",
                        format!("{op:?}").to_lowercase(),
                        median(samples)
                    );
                }
            }
        }
    });
}
