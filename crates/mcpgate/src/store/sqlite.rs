//! The SQLite store, mcpgate's default: one file, WAL journal, schema migrations embedded and
//! applied at open, expired rows reclaimed in the background.
//!
//! Writes go through one connection (SQLite admits one writer at a time; queueing writers here
//! is cheaper than letting them sleep in SQLite's busy handler), reads through a small pool.
//! Each operation is one statement, so `take` (`DELETE … RETURNING`) and `compare_and_swap`
//! (`UPDATE … WHERE version = ?`) are atomic.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, migrate::Migrator};

use super::{Collection, Store, StoreError, Version, Versioned, new_version};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How often expired rows are deleted.
const RECLAIM_EVERY: Duration = Duration::from_secs(60);

/// The SQLite store.
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    reclaimer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.reclaimer.abort();
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn expiry(now: i64, ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
}

/// SQLite stores INTEGER as i64; versions are u64 bit patterns.
fn to_sql(version: Version) -> i64 {
    version as i64
}

fn from_sql(version: i64) -> Version {
    version as u64
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_reclaim_interval(path, RECLAIM_EVERY).await
    }

    /// As [`open`](Self::open), reclaiming expired rows every `interval`.
    pub async fn open_with_reclaim_interval(path: &Path, interval: Duration) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Unavailable(format!("sqlite migration: {e}")))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(unavailable)?;
        let reclaimer = tokio::spawn(reclaim_forever(writer.clone(), interval));
        Ok(Self { writer, readers, reclaimer })
    }

    /// Deletes every expired row now; how many.
    pub async fn reclaim_expired(&self) -> Result<u64, StoreError> {
        reclaim(&self.writer).await
    }

    /// Closes the database, waiting for operations in flight.
    pub async fn close(&self) {
        self.reclaimer.abort();
        self.writer.close().await;
        self.readers.close().await;
    }
}

async fn reclaim(pool: &SqlitePool) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?")
        .bind(now_ms())
        .execute(pool)
        .await
        .map_err(unavailable)?;
    Ok(done.rows_affected())
}

async fn reclaim_forever(pool: SqlitePool, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = reclaim(&pool).await {
            tracing::warn!(error = %e, "reclaiming expired records failed");
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError> {
        let row = sqlx::query(
            "SELECT value, version FROM records
             WHERE collection = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(collection.name())
        .bind(key)
        .bind(now_ms())
        .fetch_optional(&self.readers)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|row| Versioned { value: row.get(0), version: from_sql(row.get(1)) }))
    }

    async fn put(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, StoreError> {
        let version = new_version();
        sqlx::query(
            "INSERT INTO records (collection, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (collection, key) DO UPDATE
             SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at",
        )
        .bind(collection.name())
        .bind(key)
        .bind(value)
        .bind(to_sql(version))
        .bind(expiry(now_ms(), ttl))
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
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
        let now = now_ms();
        // An expired row counts as absent: the upsert replaces it, and only it.
        let done = sqlx::query(
            "INSERT INTO records (collection, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (collection, key) DO UPDATE
             SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at
             WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?",
        )
        .bind(collection.name())
        .bind(key)
        .bind(value)
        .bind(to_sql(version))
        .bind(expiry(now, ttl))
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok((done.rows_affected() == 1).then_some(version))
    }

    async fn delete(&self, collection: Collection, key: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("DELETE FROM records WHERE collection = ? AND key = ? RETURNING expires_at")
            .bind(collection.name())
            .bind(key)
            .fetch_optional(&self.writer)
            .await
            .map_err(unavailable)?;
        let now = now_ms();
        Ok(row.is_some_and(|row| row.get::<Option<i64>, _>(0).is_none_or(|t| t > now)))
    }

    async fn take(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row =
            sqlx::query("DELETE FROM records WHERE collection = ? AND key = ? RETURNING value, expires_at")
                .bind(collection.name())
                .bind(key)
                .fetch_optional(&self.writer)
                .await
                .map_err(unavailable)?;
        let now = now_ms();
        Ok(row.filter(|row| row.get::<Option<i64>, _>(1).is_none_or(|t| t > now)).map(|row| row.get(0)))
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
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE records SET value = ?, version = ?, expires_at = ?
             WHERE collection = ? AND key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(value)
        .bind(to_sql(version))
        .bind(expiry(now, ttl))
        .bind(collection.name())
        .bind(key)
        .bind(to_sql(expected))
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok((done.rows_affected() == 1).then_some(version))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await.map_err(unavailable)?;
        Ok(())
    }
}
