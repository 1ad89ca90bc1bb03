//! The Redis store, for many instances sharing one state: native TTLs, `GETDEL` for take, a
//! script for compare-and-swap, and a key prefix so deployments can share a server — one
//! server, or a Redis Cluster.
//!
//! A record is one Redis string: `version (8 bytes, big-endian) ‖ value`. Every operation, and
//! every script, touches one key, so each is atomic on a cluster too. On a cluster the record's
//! key in its collection is the hash tag (`mcpgate:grants:{g1}`): the records of one grant (its
//! grant, refresh family, locks, revocation…, all keyed by the grant id) share a slot, on one
//! master. The connection manager (one server) and the cluster client (which follows `MOVED`
//! and `ASK`, and reloads the topology when a master fails over) reconnect by themselves; while Redis is away
//! every operation fails with [`StoreError::Unavailable`] after a bounded time — never a hang,
//! never a silent success.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

use super::redis_url::{RedisUrl, Target};
use super::{Collection, Store, StoreError, Version, Versioned, new_version};

/// How long connecting, and each answer, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The connection to one server or to a cluster.
#[derive(Clone)]
enum Link {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Server(connection) => connection.req_packed_command(cmd),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Server(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}

/// `KEYS[1]` record, `ARGV[1]` expected version (8 bytes), `ARGV[2]` new record, `ARGV[3]` TTL
/// in ms or empty. Swaps only when the stored version is the expected one.
const CAS_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current or string.sub(current, 1, 8) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"#;

/// `KEYS[1]` record, `ARGV[1]` expected version (8 bytes). Deletes only when the stored
/// version is the expected one.
const CAD_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current or string.sub(current, 1, 8) ~= ARGV[1] then
  return 0
end
return redis.call('DEL', KEYS[1])
"#;

/// The Redis store.
pub struct RedisStore {
    connection: Link,
    prefix: String,
    cas: Script,
    cad: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn encode(version: Version, value: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(8 + value.len());
    record.extend_from_slice(&version.to_be_bytes());
    record.extend_from_slice(value);
    record
}

fn decode(record: Vec<u8>) -> Result<Versioned<Vec<u8>>, StoreError> {
    if record.len() < 8 {
        return Err(StoreError::Corrupt("redis record shorter than its version".into()));
    }
    let mut version = [0u8; 8];
    version.copy_from_slice(&record[..8]);
    Ok(Versioned { value: record[8..].to_vec(), version: u64::from_be_bytes(version) })
}

fn ttl_ms(ttl: Duration) -> u64 {
    // Redis refuses PX 0; the shortest expiry is one millisecond.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Connects to `url`: one server, `redis://[user:password@]HOST:PORT/DB[?prefix=NAME:]`, or a
    /// cluster, `redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…][?prefix=NAME:]` naming
    /// some of its nodes; `rediss://` and `rediss+cluster://` over TLS, trusting the system's
    /// certificate authorities or the one in the PEM file `ca=PATH`. The default prefix is
    /// `mcpgate:`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let url = RedisUrl::parse(url)?;
        let config_error = |e: redis::RedisError| StoreError::Config(format!("redis URL: {e}"));
        let certificates = match &url.ca {
            None => None,
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(
                    std::fs::read(path)
                        .map_err(|e| StoreError::Config(format!("redis URL: ca {}: {e}", path.display())))?,
                ),
            }),
        };
        let connection = match url.target {
            Target::Server(server) => {
                let client = match certificates {
                    None => redis::Client::open(server.as_str()),
                    Some(certificates) => redis::Client::build_with_tls(server.as_str(), certificates),
                }
                .map_err(config_error)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT))
                    .set_number_of_retries(2);
                Link::Server(ConnectionManager::new_with_config(client, config).await.map_err(unavailable)?)
            }
            Target::Cluster(nodes) => {
                let mut builder = redis::cluster::ClusterClient::builder(nodes)
                    .connection_timeout(TIMEOUT)
                    .response_timeout(TIMEOUT)
                    .retries(3);
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates);
                }
                let client = builder.build().map_err(config_error)?;
                Link::Cluster(client.get_async_connection().await.map_err(unavailable)?)
            }
        };
        Ok(Self {
            connection,
            prefix: url.prefix,
            cas: Script::new(CAS_SCRIPT),
            cad: Script::new(CAD_SCRIPT),
        })
    }

    fn key(&self, collection: Collection, key: &str) -> String {
        match self.connection {
            Link::Server(_) => format!("{}{}:{}", self.prefix, collection.name(), key),
            // The record's key is the hash tag: one slot for every record keyed by one id.
            Link::Cluster(_) => format!("{}{}:{{{}}}", self.prefix, collection.name(), key),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        cmd.query_async(&mut self.connection.clone()).await.map_err(unavailable)
    }

    fn set(&self, key: String, record: Vec<u8>, ttl: Option<Duration>) -> Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(record);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl_ms(ttl));
        }
        cmd
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError> {
        let record: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(self.key(collection, key))).await?;
        record.map(decode).transpose()
    }

    async fn put(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, StoreError> {
        let version = new_version();
        let _: Value = self.query(&self.set(self.key(collection, key), encode(version, value), ttl)).await?;
        Ok(version)
    }

    async fn put_if_absent(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        let version = new_version();
        let mut cmd = self.set(self.key(collection, key), encode(version, value), ttl);
        cmd.arg("NX");
        let reply: Value = self.query(&cmd).await?;
        Ok((reply != Value::Nil).then_some(version))
    }

    async fn delete(&self, collection: Collection, key: &str) -> Result<bool, StoreError> {
        let removed: u64 = self.query(redis::cmd("DEL").arg(self.key(collection, key))).await?;
        Ok(removed > 0)
    }

    async fn delete_if_version(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
    ) -> Result<bool, StoreError> {
        let deleted: i64 = self
            .cad
            .key(self.key(collection, key))
            .arg(expected.to_be_bytes().as_slice())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok(deleted == 1)
    }

    async fn take(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let record: Option<Vec<u8>> = self.query(redis::cmd("GETDEL").arg(self.key(collection, key))).await?;
        Ok(record.map(decode).transpose()?.map(|v| v.value))
    }

    async fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        let version = new_version();
        let ttl = ttl.map(|t| ttl_ms(t).to_string()).unwrap_or_default();
        let swapped: i64 = self
            .cas
            .key(self.key(collection, key))
            .arg(expected.to_be_bytes().as_slice())
            .arg(encode(version, value))
            .arg(ttl)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok((swapped == 1).then_some(version))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
