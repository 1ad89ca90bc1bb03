//! One behaviour suite for every store backend (E1): the same functions run against memory,
//! SQLite and a real Redis server.

use std::sync::Arc;
use std::time::Duration;

use mcpgate::store::{self, Collection, Store, StoreError, StoreExt};
#[cfg(feature = "external-tests")]
use mcpgate_test_support::redis_cluster::RedisCluster;
#[cfg(feature = "external-tests")]
use mcpgate_test_support::redis_server::RedisServer;
use serde::{Deserialize, Serialize};

const CODES: Collection = Collection::new("codes");
const GRANTS: Collection = Collection::new("grants");

async fn round_trip(store: Arc<dyn Store>) {
    assert!(store.get(CODES, "k").await.unwrap().is_none());
    let v1 = store.put(CODES, "k", b"one", None).await.unwrap();
    let got = store.get(CODES, "k").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"one"[..], v1));
    let v2 = store.put(CODES, "k", b"two", None).await.unwrap();
    assert_ne!(v1, v2, "every write has its own version");
    assert_eq!(store.get(CODES, "k").await.unwrap().unwrap().value, b"two");
    // Collections are separate namespaces.
    assert!(store.get(GRANTS, "k").await.unwrap().is_none());
    assert!(store.delete(CODES, "k").await.unwrap());
    assert!(!store.delete(CODES, "k").await.unwrap());
    assert!(store.get(CODES, "k").await.unwrap().is_none());
    // Binary values and awkward keys survive.
    let bytes: Vec<u8> = (0..=255).collect();
    store.put(GRANTS, "a:b/c d%", &bytes, None).await.unwrap();
    assert_eq!(store.get(GRANTS, "a:b/c d%").await.unwrap().unwrap().value, bytes);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Grant {
    subject: String,
    scopes: Vec<String>,
}

async fn typed_values(store: Arc<dyn Store>) {
    let grant = Grant { subject: "alice".into(), scopes: vec!["read".into()] };
    let version = store.put_json(GRANTS, "g1", &grant, None).await.unwrap();
    let read = store.get_json::<Grant>(GRANTS, "g1").await.unwrap().unwrap();
    assert_eq!((read.value, read.version), (grant, version));
    store.put(GRANTS, "bad", b"not json", None).await.unwrap();
    assert!(matches!(store.get_json::<Grant>(GRANTS, "bad").await, Err(StoreError::Corrupt(_))));
    let taken: Option<Grant> = store.take_json(GRANTS, "g1").await.unwrap();
    assert_eq!(taken.unwrap().subject, "alice");
}

async fn ttl_expiry(store: Arc<dyn Store>) {
    let short = Some(Duration::from_millis(300));
    store.put(CODES, "short", b"x", short).await.unwrap();
    store.put(CODES, "long", b"y", Some(Duration::from_secs(60))).await.unwrap();
    store.put(CODES, "forever", b"z", None).await.unwrap();
    assert!(store.get(CODES, "short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.get(CODES, "short").await.unwrap().is_none(), "expired records are never returned");
    assert!(store.take(CODES, "short").await.unwrap().is_none());
    assert!(!store.delete(CODES, "short").await.unwrap());
    assert!(store.get(CODES, "long").await.unwrap().is_some());
    assert!(store.get(CODES, "forever").await.unwrap().is_some());
    // An expired record counts as absent for put-if-absent and cannot be swapped.
    let v = store.put(CODES, "cas", b"a", short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.compare_and_swap(CODES, "cas", v, b"b", None).await.unwrap().is_none());
    assert!(store.put_if_absent(CODES, "cas", b"c", None).await.unwrap().is_some());
}

async fn put_if_absent(store: Arc<dyn Store>) {
    let first = store.put_if_absent(CODES, "once", b"first", None).await.unwrap();
    assert!(first.is_some());
    assert!(store.put_if_absent(CODES, "once", b"second", None).await.unwrap().is_none());
    let got = store.get(CODES, "once").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), Some(got.version)), (&b"first"[..], first));
}

async fn take_once(store: Arc<dyn Store>) {
    store.put(CODES, "code", b"grant-1", None).await.unwrap();
    assert_eq!(store.take(CODES, "code").await.unwrap().as_deref(), Some(&b"grant-1"[..]));
    assert!(store.take(CODES, "code").await.unwrap().is_none());
    assert!(store.get(CODES, "code").await.unwrap().is_none());
}

async fn compare_and_swap(store: Arc<dyn Store>) {
    let v1 = store.put(GRANTS, "family", b"gen-1", None).await.unwrap();
    let v2 = store.compare_and_swap(GRANTS, "family", v1, b"gen-2", None).await.unwrap().unwrap();
    assert!(store.compare_and_swap(GRANTS, "family", v1, b"stale", None).await.unwrap().is_none());
    assert_eq!(store.get(GRANTS, "family").await.unwrap().unwrap().value, b"gen-2");
    assert!(store.compare_and_swap(GRANTS, "missing", v2, b"x", None).await.unwrap().is_none());
    // Deleted and written again: the old version does not match the new record.
    store.delete(GRANTS, "family").await.unwrap();
    store.put(GRANTS, "family", b"reborn", None).await.unwrap();
    assert!(store.compare_and_swap(GRANTS, "family", v2, b"x", None).await.unwrap().is_none());
    // A swap can set a TTL.
    let v = store.get(GRANTS, "family").await.unwrap().unwrap().version;
    store
        .compare_and_swap(GRANTS, "family", v, b"brief", Some(Duration::from_millis(200)))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(store.get(GRANTS, "family").await.unwrap().is_none());
}

async fn delete_if_version(store: Arc<dyn Store>) {
    // A lock: taken by one holder, expired, taken by another; the first holder's release must
    // leave the second's lock alone.
    let first =
        store.put_if_absent(GRANTS, "lock", b"a", Some(Duration::from_millis(150))).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = store.put_if_absent(GRANTS, "lock", b"b", None).await.unwrap().expect("the first expired");
    assert!(!store.delete_if_version(GRANTS, "lock", first).await.unwrap(), "not the holder's any more");
    assert_eq!(store.get(GRANTS, "lock").await.unwrap().unwrap().value, b"b");
    assert!(store.delete_if_version(GRANTS, "lock", second).await.unwrap());
    assert!(store.get(GRANTS, "lock").await.unwrap().is_none());
    assert!(!store.delete_if_version(GRANTS, "lock", second).await.unwrap(), "gone already");
    // An expired record at the expected version counts as gone.
    let brief = store.put(GRANTS, "brief", b"x", Some(Duration::from_millis(100))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!store.delete_if_version(GRANTS, "brief", brief).await.unwrap());
}

/// `takes` concurrent takes of the code `key`, spread over `stores` in turn: how many got it.
async fn concurrent_takes(stores: &[Arc<dyn Store>], key: &str, takes: usize) -> usize {
    let tasks: Vec<_> = (0..takes)
        .map(|i| {
            let (store, key) = (stores[i % stores.len()].clone(), key.to_owned());
            tokio::spawn(async move { store.take(CODES, &key).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().is_some());
    }
    winners
}

async fn race_take(store: Arc<dyn Store>) {
    for round in 0..5 {
        let key = format!("race-{round}");
        store.put(CODES, &key, b"prize", None).await.unwrap();
        let winners = concurrent_takes(std::slice::from_ref(&store), &key, 64).await;
        assert_eq!(winners, 1, "64 concurrent takes: exactly one gets the record");
    }
}

async fn race_cas(store: Arc<dyn Store>) {
    for round in 0..5 {
        let key = format!("family-{round}");
        let version = store.put(GRANTS, &key, b"gen-0", None).await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    store
                        .compare_and_swap(GRANTS, &key, version, format!("gen-{i}").as_bytes(), None)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "64 concurrent swaps of one version: exactly one wins");
        assert_eq!(store.get(GRANTS, &key).await.unwrap().unwrap().version, winners[0]);
    }
}

/// Runs every behaviour against the store a backend's `open` expression gives.
macro_rules! store_suite {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        #[allow(unused_variables)]
                        let (store, guard) = $open;
                        super::$name(store).await;
                    }
                };
            }

            case!(round_trip);
            case!(typed_values);
            case!(ttl_expiry);
            case!(put_if_absent);
            case!(take_once);
            case!(compare_and_swap);
            case!(delete_if_version);
            case!(race_take);
            case!(race_cas);
        }
    };
}

async fn memory() -> (Arc<dyn Store>, ()) {
    (store::open("memory://").await.unwrap(), ())
}

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mcpgate.db").display());
    (store::open(&url).await.unwrap(), dir)
}

#[cfg(feature = "external-tests")] // needs redis-server
async fn redis() -> (Arc<dyn Store>, RedisServer) {
    let server = RedisServer::start().await;
    (store::open(&server.url()).await.unwrap(), server)
}

#[cfg(feature = "external-tests")] // needs redis-server
async fn redis_tls() -> (Arc<dyn Store>, RedisServer) {
    let server = RedisServer::start_tls().await;
    (store::open(&server.url()).await.unwrap(), server)
}

#[cfg(feature = "external-tests")] // needs redis-server and redis-cli
async fn redis_cluster() -> (Arc<dyn Store>, RedisCluster) {
    let cluster = RedisCluster::start().await;
    (store::open(&cluster.url()).await.unwrap(), cluster)
}

store_suite!(memory_store, memory().await);
store_suite!(sqlite_store, sqlite().await);
#[cfg(feature = "external-tests")] // needs redis-server
store_suite!(redis_store, redis().await);
#[cfg(feature = "external-tests")] // needs redis-server
store_suite!(redis_tls_store, redis_tls().await);
#[cfg(feature = "external-tests")] // needs redis-server and redis-cli
store_suite!(redis_cluster_store, redis_cluster().await);

#[tokio::test]
async fn sqlite_data_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("state.db");
    let store = store::SqliteStore::open(&path).await.unwrap();
    let version = store.put(GRANTS, "g", b"kept", None).await.unwrap();
    store.put(CODES, "brief", b"gone", Some(Duration::from_millis(100))).await.unwrap();
    store.close().await;

    let reopened = store::SqliteStore::open(&path).await.unwrap();
    let got = reopened.get(GRANTS, "g").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"kept"[..], version));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(reopened.reclaim_expired().await.unwrap(), 1, "the expired row is reclaimed");
}

#[tokio::test]
async fn sqlite_schema_versions_are_checked_and_earlier_databases_adopted() {
    let dir = tempfile::tempdir().unwrap();
    // A database written by a newer mcpgate is refused, not silently downgraded.
    let newer = dir.path().join("newer.db");
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let error = store::SqliteStore::open(&newer).await.unwrap_err();
    assert!(matches!(error, StoreError::Config(ref e) if e.contains("newer")), "{error}");

    // One made by the releases that used sqlx (its bookkeeping table, no user_version) keeps
    // its records.
    let earlier = dir.path().join("earlier.db");
    let conn = rusqlite::Connection::open(&earlier).unwrap();
    conn.execute_batch(include_str!("../migrations/0001_records.sql")).unwrap();
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY);
         INSERT INTO records VALUES ('grants', 'old', x'6b657074', 7, NULL);",
    )
    .unwrap();
    drop(conn);
    let store = store::SqliteStore::open(&earlier).await.unwrap();
    let got = store.get(GRANTS, "old").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"kept"[..], 7));
}

#[tokio::test]
async fn sqlite_reclaims_expired_rows_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store =
        store::SqliteStore::open_with_reclaim_interval(&path, Duration::from_millis(100)).await.unwrap();
    for i in 0..10 {
        store.put(CODES, &format!("c{i}"), b"x", Some(Duration::from_millis(50))).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.reclaim_expired().await.unwrap(), 0, "the background task already deleted them");
}

#[tokio::test]
async fn sqlite_reclaims_a_large_expiry_in_batches_and_every_row_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::SqliteStore::open(&dir.path().join("state.db")).await.unwrap();
    let store = Arc::new(store);
    write_many(&store, "gone", 2_345, Some(Duration::from_millis(50))).await;
    write_many(&store, "kept", 100, None).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.reclaim_expired().await.unwrap(), 2_345, "more than one batch, all of them");
    assert_eq!(store.reclaim_expired().await.unwrap(), 0);
    assert!(store.get(CODES, "kept-99").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_file_stops_growing_once_expiry_keeps_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Arc::new(
        store::SqliteStore::open_with_reclaim_interval(&path, Duration::from_millis(100)).await.unwrap(),
    );
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).map(|m| m.len()).unwrap_or(0);
    // Eight rounds of 1,000 records of 1 KiB living 200 ms, a round a second (the background
    // sweep's pace is at most 2,000 rows a second).
    let (mut database, mut log) = (Vec::new(), Vec::new());
    for round in 0..8 {
        write_many(&store, &format!("r{round}"), 1_000, Some(Duration::from_millis(200))).await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        database.push(size("state.db"));
        log.push(size("state.db-wal"));
    }
    // Unswept, each round would add its 1,000 rows (a megabyte) to the database file: five
    // rounds' worth from the third to the last. A sweep that lags (a busy machine) may leave
    // part of one round.
    let one_round = 1_000 * 1_024;
    assert!(database[7] < database[2] + one_round, "the database kept growing: {database:?}");
    // The write-ahead log holds a round's pages until a checkpoint; it does not grow beyond.
    let early = log[..3].iter().max().copied().unwrap_or(0);
    assert!(log[7] <= early + early / 2, "the write-ahead log kept growing: {log:?}");
}

#[tokio::test]
async fn sqlite_write_ahead_log_starts_again_under_a_steady_stream_of_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store::SqliteStore::open(&dir.path().join("state.db")).await.unwrap());
    let log = dir.path().join("state.db-wal");
    let writing = {
        let store = store.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
            let mut round = 0;
            while tokio::time::Instant::now() < deadline {
                write_many(&store, &format!("k{}", round % 4), 1_000, None).await;
                round += 1;
            }
        })
    };
    // Without a pause in the writes the background checkpoint never catches up with the log;
    // the log must still start again (the file is cut back) rather than grow all along.
    let mut sizes = Vec::new();
    while !writing.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sizes.push(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0));
    }
    writing.await.unwrap();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    assert!(largest > 16 << 20, "the load did not fill the log enough to tell: {sizes:?}");
    assert!(sizes.windows(2).any(|w| w[1] < w[0]), "the log never started again: {sizes:?}");
}

/// Writes `count` records of 1 KiB named `<prefix>-<i>` from 16 tasks.
async fn write_many(store: &Arc<store::SqliteStore>, prefix: &str, count: usize, ttl: Option<Duration>) {
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let (store, prefix) = (store.clone(), prefix.to_owned());
            tokio::spawn(async move {
                for i in (t..count).step_by(16) {
                    store.put(CODES, &format!("{prefix}-{i}"), &[7; 1024], ttl).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[cfg(feature = "external-tests")] // needs redis-server
#[tokio::test]
async fn redis_prefixes_keep_deployments_apart() {
    let server = RedisServer::start().await;
    let a = store::open(&format!("{}?prefix=deploy-a:", server.url())).await.unwrap();
    let b = store::open(&format!("{}?prefix=deploy-b:", server.url())).await.unwrap();
    a.put(CODES, "k", b"from-a", None).await.unwrap();
    assert!(b.get(CODES, "k").await.unwrap().is_none());
    let raw = redis::Client::open(server.url()).unwrap();
    let mut conn = raw.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    assert_eq!(keys, ["deploy-a:codes:k"]);
}

#[cfg(feature = "external-tests")] // needs redis-server
#[tokio::test]
async fn redis_going_away_fails_clearly_and_coming_back_reconnects() {
    let mut server = RedisServer::start().await;
    let store = store::open(&server.url()).await.unwrap();
    store.put(CODES, "k", b"v", None).await.unwrap();

    server.stop();
    let started = std::time::Instant::now();
    for op in 0..3 {
        let outcome = match op {
            0 => store.get(CODES, "k").await.map(|_| ()),
            1 => store.put(CODES, "k", b"v", None).await.map(|_| ()),
            _ => store.take(CODES, "k").await.map(|_| ()),
        };
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))), "op {op}: {outcome:?}");
    }
    assert!(store.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(20), "failures are bounded in time");

    server.restart().await;
    let mut back = false;
    for _ in 0..50 {
        if store.put(CODES, "k2", b"v2", None).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the store reconnects without a restart");
    assert_eq!(store.get(CODES, "k2").await.unwrap().unwrap().value, b"v2");
}

#[tokio::test]
async fn unknown_store_urls_are_configuration_errors() {
    for url in ["postgres://x", "sqlite://", "", "memory"] {
        assert!(matches!(store::open(url).await, Err(StoreError::Config(_))), "{url}");
    }
    // The message names the URL, never its password.
    let Err(StoreError::Config(message)) = store::open("redis-cluster://gw:hunter2@10.0.0.5:7000").await
    else {
        panic!("a mistyped scheme is a configuration error")
    };
    assert!(message.contains("gw:***@10.0.0.5") && !message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn memory_reclaims_expired_records() {
    let store = store::MemoryStore::new();
    for i in 0..100 {
        store.put(CODES, &format!("c{i}"), b"x", Some(Duration::from_millis(50))).await.unwrap();
    }
    assert_eq!(store.len(), 100);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Sweeps are paced by time and happen on writes: one write per shard's worth of keys.
    for i in 0..200 {
        store.put(GRANTS, &format!("g{i}"), b"y", None).await.unwrap();
    }
    assert_eq!(store.len(), 200, "the expired records are gone, the live ones stay");
}

#[cfg(feature = "external-tests")] // needs redis-server
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_instances_share_records_and_their_one_time_use() {
    let server = RedisServer::start().await;
    let instances = [store::open(&server.url()).await.unwrap(), store::open(&server.url()).await.unwrap()];
    instances[0].put(CODES, "shared", b"from-0", None).await.unwrap();
    assert_eq!(instances[1].get(CODES, "shared").await.unwrap().unwrap().value, b"from-0");
    // A code written on one instance is redeemed once across both.
    assert_eq!(concurrent_takes(&instances, "shared", 64).await, 1);
}

/// On a Redis Cluster the records of one id share a slot (one master holds them all), and the
/// store keeps its promises through a master failing over: operations fail clearly while the
/// cluster elects, then the replica serves what was written, and one-time use stays one-time.
#[cfg(feature = "external-tests")] // needs redis-server and redis-cli
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_keeps_one_grant_in_one_slot_and_survives_a_failover() {
    const FAMILIES: Collection = Collection::new("refresh_families");
    let mut cluster = RedisCluster::start().await;
    let store = store::open(&cluster.url()).await.unwrap();
    let mut versions = Vec::new();
    for i in 0..24 {
        versions.push(store.put(GRANTS, &format!("g{i}"), b"grant", None).await.unwrap());
        store.put(FAMILIES, &format!("g{i}"), b"family", None).await.unwrap();
        store.put(CODES, &format!("code-{i}"), b"code", None).await.unwrap();
    }
    let holders = cluster.keys_by_master();
    assert_eq!(holders.len(), 3);
    for i in 0..24 {
        let (grant, family) =
            (format!("mcpgate:grants:{{g{i}}}"), format!("mcpgate:refresh_families:{{g{i}}}"));
        let master = holders.iter().position(|keys| keys.contains(&grant)).expect("the grant is on a master");
        assert!(holders[master].contains(&family), "g{i}: the family is where its grant is");
    }
    assert!(holders.iter().all(|keys| !keys.is_empty()), "the grants spread over the masters");

    // Replication is asynchronous: once the replicas have it all, fail g0's master.
    cluster.wait_until_healthy().await;
    cluster.kill_master_of("g0");
    let started = std::time::Instant::now();
    let swapped = loop {
        match store.compare_and_swap(GRANTS, "g0", versions[0], b"rotated", None).await {
            Ok(outcome) => break outcome,
            Err(StoreError::Unavailable(_)) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no failover within 20 s: {e}"),
        }
    };
    // g0 survived on the promoted replica and took the swap. (An attempt whose answer was lost
    // in the failover may have made it: then the retry finds our own value — the outcome of an
    // Unavailable operation is unknown, never a false success.)
    let after = store.get(GRANTS, "g0").await.unwrap().expect("g0 survived the failover");
    assert_eq!(after.value, b"rotated");
    if let Some(version) = swapped {
        assert_eq!(after.version, version);
    }
    cluster.wait_until_healthy().await;
    for i in 0..24 {
        assert!(store.get(FAMILIES, &format!("g{i}")).await.unwrap().is_some(), "g{i} survived");
    }
    // A code on the promoted master is still redeemed exactly once.
    assert_eq!(concurrent_takes(&[store], "code-0", 32).await, 1);
}

/// Over TLS the server's certificate is checked: against the CA the URL names, else the
/// system's, which do not know the test's; and a CA file that cannot be read is a
/// configuration error, not a silent fallback.
#[cfg(feature = "external-tests")] // needs redis-server
#[tokio::test]
async fn redis_over_tls_trusts_the_named_ca_only() {
    let server = RedisServer::start_tls().await;
    let untrusted = format!("rediss://127.0.0.1:{}/0", server.port);
    assert!(matches!(store::open(&untrusted).await, Err(StoreError::Unavailable(_))), "system CAs refuse it");
    let plain = format!("redis://127.0.0.1:{}/0", server.port);
    assert!(store::open(&plain).await.is_err(), "no plain text on a TLS port");
    let missing = format!("rediss://127.0.0.1:{}/0?ca=/nonexistent/ca.pem", server.port);
    assert!(matches!(store::open(&missing).await, Err(StoreError::Config(_))));
    let store = store::open(&server.url()).await.unwrap();
    store.put(CODES, "over-tls", b"x", None).await.unwrap();
    assert_eq!(store.take(CODES, "over-tls").await.unwrap().as_deref(), Some(&b"x"[..]));
}

/// A cluster over TLS (clients, the cluster bus and replication): the store's promises hold
/// through the TLS client, which trusts the cluster's CA on every node it learns of.
#[cfg(feature = "external-tests")] // needs redis-server and redis-cli
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_over_tls_keeps_the_stores_promises() {
    let cluster = RedisCluster::start_tls().await;
    assert!(cluster.url().starts_with("rediss+cluster://"));
    round_trip(store::open(&cluster.url()).await.unwrap()).await;
    race_take(store::open(&cluster.url()).await.unwrap()).await;
    race_cas(store::open(&cluster.url()).await.unwrap()).await;
}
