//! The SQLite store, mcpgate's default: one file, WAL journal, schema migrations embedded and
//! applied at open, expired rows reclaimed in the background.
//!
//! SQLite admits one writer at a time, so all writes go to one task that owns the write
//! connection; when several are waiting it runs them in one transaction (group commit), which
//! amortises the per-commit cost that otherwise bounds write throughput. Each write is still
//! one statement — `take` is `DELETE … RETURNING`, `compare_and_swap` is `UPDATE … WHERE
//! version = ?` — so each is atomic on its own, and a batch that fails is rolled back whole and
//! reported as failed to every caller in it. Reads use a small pool of read-only connections.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, migrate::Migrator};
use tokio::sync::{mpsc, oneshot};

use super::{Collection, Store, StoreError, Version, Versioned, new_version};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How often expired rows are deleted.
const RECLAIM_EVERY: Duration = Duration::from_secs(60);
/// Most writes committed together.
const MAX_BATCH: usize = 128;

/// One write, with every value it binds computed by the caller.
enum Write {
    Put {
        collection: Collection,
        key: String,
        value: Vec<u8>,
        version: Version,
        expires_at: Option<i64>,
    },
    PutIfAbsent {
        collection: Collection,
        key: String,
        value: Vec<u8>,
        version: Version,
        expires_at: Option<i64>,
        now: i64,
    },
    Delete {
        collection: Collection,
        key: String,
    },
    Take {
        collection: Collection,
        key: String,
    },
    Swap {
        collection: Collection,
        key: String,
        expected: Version,
        value: Vec<u8>,
        version: Version,
        expires_at: Option<i64>,
        now: i64,
    },
    Reclaim {
        now: i64,
    },
}

/// What a write did: rows affected, and the row `RETURNING` gave (value, expires_at).
struct Applied {
    rows: u64,
    returned: Option<(Option<Vec<u8>>, Option<i64>)>,
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Applied, StoreError>>,
}

/// The SQLite store.
pub struct SqliteStore {
    writes: mpsc::Sender<Job>,
    writer: tokio::task::JoinHandle<()>,
    readers: SqlitePool,
    /// Holds only a weak sender: it ends by itself once the store is dropped.
    reclaimer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("sqlite: the store is closed".into())
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

fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|t| t > now)
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
        let mut connection = SqliteConnection::connect_with(&options).await.map_err(unavailable)?;
        MIGRATOR
            .run(&mut connection)
            .await
            .map_err(|e| StoreError::Unavailable(format!("sqlite migration: {e}")))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(unavailable)?;
        let (writes, jobs) = mpsc::channel(1024);
        let writer = tokio::spawn(write_loop(connection, jobs));
        let reclaimer = tokio::spawn(reclaim_forever(writes.downgrade(), interval));
        Ok(Self { writes, writer, readers, reclaimer })
    }

    async fn write(&self, write: Write) -> Result<Applied, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.writes.send(Job { write, reply }).await.map_err(|_| writer_gone())?;
        outcome.await.map_err(|_| writer_gone())?
    }

    /// Deletes every expired row now; how many.
    pub async fn reclaim_expired(&self) -> Result<u64, StoreError> {
        Ok(self.write(Write::Reclaim { now: now_ms() }).await?.rows)
    }

    /// Closes the database: writes already queued are done, later ones fail.
    pub async fn close(self) {
        self.reclaimer.abort();
        let Self { writes, writer, readers, .. } = self;
        drop(writes);
        let _ = writer.await;
        readers.close().await;
    }
}

async fn apply(conn: &mut SqliteConnection, write: &Write) -> Result<Applied, sqlx::Error> {
    let done = |rows| Applied { rows, returned: None };
    match write {
        Write::Put { collection, key, value, version, expires_at } => sqlx::query(
            "INSERT INTO records (collection, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (collection, key) DO UPDATE
             SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at",
        )
        .bind(collection.name())
        .bind(key)
        .bind(value)
        .bind(to_sql(*version))
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|r| done(r.rows_affected())),
        // An expired row counts as absent: the upsert replaces it, and only it.
        Write::PutIfAbsent { collection, key, value, version, expires_at, now } => sqlx::query(
            "INSERT INTO records (collection, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (collection, key) DO UPDATE
             SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at
             WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?",
        )
        .bind(collection.name())
        .bind(key)
        .bind(value)
        .bind(to_sql(*version))
        .bind(expires_at)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| done(r.rows_affected())),
        Write::Delete { collection, key } => {
            sqlx::query("DELETE FROM records WHERE collection = ? AND key = ? RETURNING expires_at")
                .bind(collection.name())
                .bind(key)
                .fetch_optional(conn)
                .await
                .map(|row| Applied { rows: 0, returned: row.map(|row| (None, row.get(0))) })
        }
        Write::Take { collection, key } => {
            sqlx::query("DELETE FROM records WHERE collection = ? AND key = ? RETURNING value, expires_at")
                .bind(collection.name())
                .bind(key)
                .fetch_optional(conn)
                .await
                .map(|row| Applied { rows: 0, returned: row.map(|row| (Some(row.get(0)), row.get(1))) })
        }
        Write::Swap { collection, key, expected, value, version, expires_at, now } => sqlx::query(
            "UPDATE records SET value = ?, version = ?, expires_at = ?
             WHERE collection = ? AND key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(value)
        .bind(to_sql(*version))
        .bind(expires_at)
        .bind(collection.name())
        .bind(key)
        .bind(to_sql(*expected))
        .bind(now)
        .execute(conn)
        .await
        .map(|r| done(r.rows_affected())),
        Write::Reclaim { now } => {
            sqlx::query("DELETE FROM records WHERE expires_at IS NOT NULL AND expires_at <= ?")
                .bind(now)
                .execute(conn)
                .await
                .map(|r| done(r.rows_affected()))
        }
    }
}

async fn apply_batch(conn: &mut SqliteConnection, batch: &[Job]) -> Result<Vec<Applied>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut applied = Vec::with_capacity(batch.len());
    for job in batch {
        applied.push(apply(&mut tx, &job.write).await?);
    }
    tx.commit().await?;
    Ok(applied)
}

/// Owns the write connection until every sender is gone.
async fn write_loop(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if let [job] = batch.as_slice() {
            // Alone: autocommit, no BEGIN/COMMIT round trips.
            let outcome = apply(&mut conn, &job.write).await.map_err(unavailable);
            if let Some(job) = batch.pop() {
                let _ = job.reply.send(outcome);
            }
            continue;
        }
        match apply_batch(&mut conn, &batch).await {
            Ok(applied) => {
                for (job, outcome) in batch.drain(..).zip(applied) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let reason = format!("sqlite: {e}");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Unavailable(reason.clone())));
                }
            }
        }
    }
    let _ = conn.close().await;
}

async fn reclaim_forever(writes: mpsc::WeakSender<Job>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(writes) = writes.upgrade() else { return };
        let (reply, outcome) = oneshot::channel();
        if writes.send(Job { write: Write::Reclaim { now: now_ms() }, reply }).await.is_err() {
            return;
        }
        drop(writes);
        if let Ok(Err(e)) = outcome.await {
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
        let expires_at = expiry(now_ms(), ttl);
        self.write(Write::Put {
            collection,
            key: key.to_owned(),
            value: value.to_vec(),
            version,
            expires_at,
        })
        .await?;
        Ok(version)
    }

    async fn put_if_absent(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        let (version, now) = (new_version(), now_ms());
        let write = Write::PutIfAbsent {
            collection,
            key: key.to_owned(),
            value: value.to_vec(),
            version,
            expires_at: expiry(now, ttl),
            now,
        };
        Ok((self.write(write).await?.rows == 1).then_some(version))
    }

    async fn delete(&self, collection: Collection, key: &str) -> Result<bool, StoreError> {
        let applied = self.write(Write::Delete { collection, key: key.to_owned() }).await?;
        let now = now_ms();
        Ok(applied.returned.is_some_and(|(_, expires_at)| live(expires_at, now)))
    }

    async fn take(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let applied = self.write(Write::Take { collection, key: key.to_owned() }).await?;
        let now = now_ms();
        Ok(applied.returned.filter(|(_, expires_at)| live(*expires_at, now)).and_then(|(value, _)| value))
    }

    async fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        let (version, now) = (new_version(), now_ms());
        let write = Write::Swap {
            collection,
            key: key.to_owned(),
            expected,
            value: value.to_vec(),
            version,
            expires_at: expiry(now, ttl),
            now,
        };
        Ok((self.write(write).await?.rows == 1).then_some(version))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await.map_err(unavailable)?;
        if self.writes.is_closed() {
            return Err(writer_gone());
        }
        Ok(())
    }
}
