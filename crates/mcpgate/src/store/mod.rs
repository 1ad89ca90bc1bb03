//! Storage: a small async key-value interface with TTLs and the atomic operations the
//! authorization server needs to stay correct under concurrency — `take` (a one-time code is
//! redeemed once) and `compare_and_swap` (a refresh token rotates once).
//!
//! Records live in named collections; values are bytes ([`Store`]) or serde types
//! ([`StoreExt`]). Three backends behave alike: [`MemoryStore`], [`SqliteStore`] (the default, one
//! file) and [`RedisStore`] (shared by many instances). [`open`] picks one by URL.

mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_url;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Identifies one write of a record. Compare versions only for equality: every write gets a
/// fresh version, so a record deleted and written again never matches an old one.
pub type Version = u64;

/// A record's value with the version of the write that stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The version to pass to [`Store::compare_and_swap`].
    pub version: Version,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or failed; the operation did not happen (or its outcome is
    /// unknown). Callers answer a retryable error, never a success.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded as the expected type.
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// The store URL or options are wrong.
    #[error("bad store configuration: {0}")]
    Config(String),
}

/// A named collection of records (`clients`, `codes`, …): a short ASCII name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collection(&'static str);

impl Collection {
    /// A collection named `name` (letters, digits, `_` and `-` only: names become key prefixes).
    pub const fn new(name: &'static str) -> Self {
        let bytes = name.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
                "collection names are [A-Za-z0-9_-]"
            );
            i += 1;
        }
        Self(name)
    }

    /// The name.
    pub fn name(&self) -> &'static str {
        self.0
    }
}

/// The key-value store.
///
/// Every operation sees a record only until its TTL passes: an expired record is never
/// returned, counts as absent, and is reclaimed by the backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The record, if present.
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError>;

    /// Writes the record, replacing any; returns the new version.
    async fn put(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, StoreError>;

    /// Writes the record only if absent; `None` when one was already there.
    async fn put_if_absent(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError>;

    /// Deletes the record; whether one was there.
    async fn delete(&self, collection: Collection, key: &str) -> Result<bool, StoreError>;

    /// Deletes the record only if it is still at `expected` (compare-and-delete: a lock released
    /// only by its holder); whether it was deleted.
    async fn delete_if_version(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
    ) -> Result<bool, StoreError>;

    /// Removes and returns the record, atomically: of any number of concurrent takes of the
    /// same record, exactly one gets it.
    async fn take(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces the record only if it is still at `expected`; the new version, or `None` when
    /// the record changed, expired or vanished. Of concurrent swaps from one version, one wins.
    async fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError>;

    /// Whether the backend answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Typed access: values stored as JSON.
#[async_trait]
pub trait StoreExt: Store {
    /// The record decoded as `T`.
    async fn get_json<T: DeserializeOwned + Send>(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        match self.get(collection, key).await? {
            None => Ok(None),
            Some(v) => Ok(Some(Versioned { value: decode(&v.value)?, version: v.version })),
        }
    }

    /// Writes `value` as JSON.
    async fn put_json<T: Serialize + Sync>(
        &self,
        collection: Collection,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Version, StoreError> {
        self.put(collection, key, &encode(value)?, ttl).await
    }

    /// Writes `value` as JSON only if absent.
    async fn put_json_if_absent<T: Serialize + Sync>(
        &self,
        collection: Collection,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        self.put_if_absent(collection, key, &encode(value)?, ttl).await
    }

    /// Takes the record decoded as `T`.
    async fn take_json<T: DeserializeOwned + Send>(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.take(collection, key).await?.map(|bytes| decode(&bytes)).transpose()
    }

    /// Compare-and-swap with `value` as JSON.
    async fn compare_and_swap_json<T: Serialize + Sync>(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        self.compare_and_swap(collection, key, expected, &encode(value)?, ttl).await
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A fresh version: a per-process random starting point plus a counter. Unique within the
/// process by construction; two processes sharing a store collide only if their 64-bit ranges
/// overlap, which random starting points make vanishingly unlikely. (Drawing 8 random bytes per
/// write instead costs a microsecond on the hot path of every store operation.)
pub(crate) fn new_version() -> Version {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: LazyLock<AtomicU64> =
        LazyLock::new(|| AtomicU64::new(u64::from_le_bytes(crate::crypto::random_bytes::<8>())));
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The schemes of Redis store URLs: one server, or a cluster (`…s…`: over TLS).
#[cfg(feature = "redis")]
const REDIS_SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+cluster://", "rediss+cluster://"];

/// Checks a store URL without connecting: the scheme is one this build has, and the rest
/// parses (a Redis cluster's node list, a SQLite path). What [`open`] would refuse before
/// connecting, it refuses, with the same message.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    if url == "memory://" || url == "memory:" {
        return Ok(());
    }
    #[cfg(feature = "sqlite")]
    if let Some(path) = url.strip_prefix("sqlite://") {
        return match path.is_empty() {
            true => Err(StoreError::Config(
                "sqlite:// needs a file path, e.g. sqlite://./.mcpgate/mcpgate.db".into(),
            )),
            false => Ok(()),
        };
    }
    #[cfg(feature = "redis")]
    if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        return redis_url::RedisUrl::parse(url).map(|_| ());
    }
    Err(StoreError::Config(format!(
        "unknown store URL {:?}: use memory://, sqlite://PATH, redis://HOST:PORT/DB or redis+cluster://HOST:PORT,…",
        // A mistyped scheme does not make a password in the URL fit for the log.
        redacted_url(url)
    )))
}

/// `url` fit to show (a log line, `mcpgate check`): a password in it replaced by `***`.
///
/// ```
/// assert_eq!(mcpgate::store::redacted_url("redis://gw:hunter2@10.0.0.5:6379/0"), "redis://gw:***@10.0.0.5:6379/0");
/// assert_eq!(
///     mcpgate::store::redacted_url("redis+cluster://:hunter2@a:7000,b:7001"),
///     "redis+cluster://:***@a:7000,b:7001"
/// );
/// assert_eq!(mcpgate::store::redacted_url("sqlite://.mcpgate/mcpgate.db"), "sqlite://.mcpgate/mcpgate.db");
/// ```
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // The credentials end at the last `@` before the path (a password may hold an `@`).
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Opens the store named by `url`: `memory://`, `sqlite://PATH` (created if missing; relative
/// paths from the working directory), `redis://HOST:PORT/DB` or a Redis Cluster,
/// `redis+cluster://HOST:PORT[,HOST:PORT…]` (optionally `?prefix=NAME:` to share the servers
/// between deployments; `rediss…` over TLS, with `ca=PATH` for a CA of your own).
///
/// ```
/// use mcpgate::store::{Collection, StoreExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcpgate::store::StoreError> {
/// const NOTES: Collection = Collection::new("notes");
/// let store = mcpgate::store::open("memory://").await?;
/// store.put_json(NOTES, "a", &"hello", None).await?;
/// let read = store.get_json::<String>(NOTES, "a").await?.expect("just written");
/// assert_eq!(read.value, "hello");
/// assert!(mcpgate::store::open("ftp://nowhere").await.is_err(), "unknown schemes are refused");
/// # Ok(()) }
/// ```
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    check_url(url)?;
    #[cfg(feature = "sqlite")]
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Arc::new(SqliteStore::open(std::path::Path::new(path)).await?));
    }
    #[cfg(feature = "redis")]
    if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(Arc::new(RedisStore::open(url).await?));
    }
    // What else `check_url` admits: memory://.
    Ok(Arc::new(MemoryStore::new()))
}
