//! The SQLite store, mcpgate's default: one file, WAL journal, schema migrations embedded and
//! applied at open, expired rows reclaimed in the background.
//!
//! SQLite admits one writer at a time, so all writes go to one thread that owns the write
//! connection; when several are waiting it runs them in one transaction (group commit), which
//! amortises the per-commit cost that otherwise bounds write throughput. Each write is still
//! one statement — `take` is `DELETE … RETURNING`, `compare_and_swap` is `UPDATE … WHERE
//! version = ?` — so each is atomic on its own, and a batch that fails is rolled back whole and
//! reported as failed to every caller in it. Reads go to a few threads, each with a read-only
//! connection. The driver is rusqlite (direct calls into SQLite, statements cached): sqlx's
//! per-statement hand-off to a worker thread cost ≈ 7× SQLite's own work here (BENCHMARKS.md).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{Collection, Store, StoreError, Version, Versioned, new_version};

/// The schema, in order; `PRAGMA user_version` counts how many are applied.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_records.sql")];

/// How often expired rows are deleted.
const RECLAIM_EVERY: Duration = Duration::from_secs(60);
/// Most writes committed together.
const MAX_BATCH: usize = 128;
/// Read-only connections, each on its own thread.
const READERS: usize = 2;
/// Most expired rows one reclaiming write deletes. A sweep is many such writes, queued like
/// any other, so writes waiting behind one wait for this many deletions, not for all of them.
const RECLAIM_BATCH: u64 = 100;
/// Least time between two batches of a background sweep: at most 2,000 rows a second, some
/// seven million an hour, far beyond what expires in any deployment.
const RECLAIM_PAUSE: Duration = Duration::from_millis(50);
/// The size the write-ahead log is cut back to after a checkpoint empties it (a burst of
/// writes, such as a sweep, otherwise leaves the file at its largest).
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;
/// Frames (pages) in the write-ahead log beyond which the writer itself checkpoints, so that
/// the log starts again (16 MiB of 4 KiB pages).
const WAL_RESTART_FRAMES: i64 = 4096;

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
    DeleteIfVersion {
        collection: Collection,
        key: String,
        expected: Version,
        now: i64,
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
    /// Deletes up to [`RECLAIM_BATCH`] rows expired at `now`.
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

/// A record's value and version, as read.
type StoredValue = (Vec<u8>, i64);

/// One read: a live record's value and version, or (`key` empty) a liveness probe.
struct Read {
    collection: Collection,
    key: String,
    now: i64,
    reply: oneshot::Sender<Result<Option<StoredValue>, StoreError>>,
}

/// The SQLite store.
pub struct SqliteStore {
    writes: mpsc::Sender<Job>,
    writer: std::thread::JoinHandle<()>,
    reads: std::sync::mpsc::Sender<Read>,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// Dropping it stops the checkpoint thread.
    checkpoints: std::sync::mpsc::Sender<()>,
    checkpointer: std::thread::JoinHandle<()>,
    /// Holds only a weak sender: it ends by itself once the store is dropped.
    reclaimer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn closed() -> StoreError {
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

/// Opens a connection with the settings every connection shares.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Brings the schema up to date, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let failed = |e: rusqlite::Error| StoreError::Unavailable(format!("sqlite migration: {e}"));
    migrate_steps(conn).map_err(failed)?
}

/// The migration's statements; the inner result refuses a schema newer than this code.
fn migrate_steps(conn: &mut Connection) -> Result<Result<(), StoreError>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let mut applied = usize::try_from(version).unwrap_or(0);
    // Databases made by releases that used sqlx have the first schema and no user_version.
    let legacy: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_sqlx_migrations')",
        [],
        |r| r.get(0),
    )?;
    if applied == 0 && legacy {
        applied = 1;
    }
    if applied > MIGRATIONS.len() {
        // Written by a newer mcpgate: its schema may not be what this one expects.
        return Ok(Err(StoreError::Config(format!(
            "the database schema is version {applied}, newer than this mcpgate's {}",
            MIGRATIONS.len()
        ))));
    }
    for migration in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()?;
    Ok(Ok(()))
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
        let path = path.to_owned();
        let (writer_conn, reader_conns, checkpoint_conn) =
            tokio::task::spawn_blocking(move || open_connections(&path))
                .await
                .map_err(|e| StoreError::Unavailable(format!("sqlite: {e}")))??;

        let (writes, jobs) = mpsc::channel(1024);
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let restart = restart_wanted.clone();
        let writer = std::thread::Builder::new()
            .name("mcpgate-sqlite-writer".into())
            .spawn(move || write_loop(writer_conn, jobs, &restart))
            .map_err(|e| StoreError::Unavailable(format!("sqlite writer thread: {e}")))?;
        let (reads, queue) = std::sync::mpsc::channel::<Read>();
        let queue = Arc::new(Mutex::new(queue));
        let mut readers = Vec::with_capacity(READERS);
        for (i, conn) in reader_conns.into_iter().enumerate() {
            let queue = queue.clone();
            let reader = std::thread::Builder::new()
                .name(format!("mcpgate-sqlite-reader-{i}"))
                .spawn(move || read_loop(conn, &queue))
                .map_err(|e| StoreError::Unavailable(format!("sqlite reader thread: {e}")))?;
            readers.push(reader);
        }
        let (checkpoints, stop) = std::sync::mpsc::channel::<()>();
        let restart = restart_wanted.clone();
        let checkpointer = std::thread::Builder::new()
            .name("mcpgate-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, &stop, &restart))
            .map_err(|e| StoreError::Unavailable(format!("sqlite checkpoint thread: {e}")))?;
        let reclaimer = tokio::spawn(reclaim_forever(writes.downgrade(), interval));
        Ok(Self { writes, writer, reads, readers, checkpoints, checkpointer, reclaimer })
    }

    async fn write(&self, write: Write) -> Result<Applied, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.writes.send(Job { write, reply }).await.map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    async fn read(&self, collection: Collection, key: &str) -> Result<Option<StoredValue>, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let read = Read { collection, key: key.to_owned(), now: now_ms(), reply };
        self.reads.send(read).map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// Deletes every expired row now, a batch at a time; how many.
    pub async fn reclaim_expired(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut total = 0;
        loop {
            let rows = reclaim_batch(&self.writes, now).await?;
            total += rows;
            if rows < RECLAIM_BATCH {
                return Ok(total);
            }
        }
    }

    /// Closes the database: writes already queued are done, later ones fail.
    pub async fn close(self) {
        self.reclaimer.abort();
        let Self { writes, writer, reads, readers, checkpoints, checkpointer, .. } = self;
        drop(writes);
        drop(reads);
        drop(checkpoints);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = writer.join();
            let _ = checkpointer.join();
            for reader in readers {
                let _ = reader.join();
            }
        })
        .await;
    }
}

/// The write connection (schema migrated, WAL on) and the read-only ones.
fn open_connections(path: &Path) -> Result<(Connection, Vec<Connection>, Connection), StoreError> {
    let mut writer = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)
        .map_err(unavailable)?;
    let mode: String =
        writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Config(format!("sqlite: WAL journal unavailable (got {mode})")));
    }
    migrate(&mut writer)?;
    // Checkpoints run on their own thread (see `checkpoint_loop`), never inside a commit.
    writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(unavailable)?;
    writer.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(unavailable)?;
    let readers = (0..READERS)
        .map(|_| connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(unavailable))
        .collect::<Result<_, _>>()?;
    let checkpointer = connect(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(unavailable)?;
    Ok((writer, readers, checkpointer))
}

fn apply(conn: &Connection, write: &Write) -> Result<Applied, rusqlite::Error> {
    let done = |rows: usize| Applied { rows: rows as u64, returned: None };
    match write {
        Write::Put { collection, key, value, version, expires_at } => conn
            .prepare_cached(
                "INSERT INTO records (collection, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (collection, key) DO UPDATE
                 SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at",
            )?
            .execute(params![collection.name(), key, value, to_sql(*version), expires_at])
            .map(done),
        // An expired row counts as absent: the upsert replaces it, and only it.
        Write::PutIfAbsent { collection, key, value, version, expires_at, now } => conn
            .prepare_cached(
                "INSERT INTO records (collection, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (collection, key) DO UPDATE
                 SET value = excluded.value, version = excluded.version, expires_at = excluded.expires_at
                 WHERE records.expires_at IS NOT NULL AND records.expires_at <= ?",
            )?
            .execute(params![collection.name(), key, value, to_sql(*version), expires_at, now])
            .map(done),
        Write::Delete { collection, key } => conn
            .prepare_cached("DELETE FROM records WHERE collection = ? AND key = ? RETURNING expires_at")?
            .query_row(params![collection.name(), key], |row| row.get::<_, Option<i64>>(0))
            .optional()
            .map(|row| Applied { rows: 0, returned: row.map(|expires_at| (None, expires_at)) }),
        Write::DeleteIfVersion { collection, key, expected, now } => conn
            .prepare_cached(
                "DELETE FROM records
                 WHERE collection = ? AND key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
            )?
            .execute(params![collection.name(), key, to_sql(*expected), now])
            .map(|rows| Applied { rows: rows as u64, returned: None }),
        Write::Take { collection, key } => conn
            .prepare_cached(
                "DELETE FROM records WHERE collection = ? AND key = ? RETURNING value, expires_at",
            )?
            .query_row(params![collection.name(), key], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get(1)?)))
            .optional()
            .map(|row| Applied {
                rows: 0,
                returned: row.map(|(value, expires_at)| (Some(value), expires_at)),
            }),
        Write::Swap { collection, key, expected, value, version, expires_at, now } => conn
            .prepare_cached(
                "UPDATE records SET value = ?, version = ?, expires_at = ?
                 WHERE collection = ? AND key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
            )?
            .execute(params![
                value,
                to_sql(*version),
                expires_at,
                collection.name(),
                key,
                to_sql(*expected),
                now
            ])
            .map(done),
        // The inner query walks the expiry index: each batch finds its rows without a scan.
        Write::Reclaim { now } => conn
            .prepare_cached(
                "DELETE FROM records WHERE (collection, key) IN
                 (SELECT collection, key FROM records
                  WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)",
            )?
            .execute(params![now, RECLAIM_BATCH as i64])
            .map(done),
    }
}

fn apply_batch(conn: &mut Connection, batch: &[Job]) -> Result<Vec<Applied>, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied = batch.iter().map(|job| apply(&tx, &job.write)).collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(applied)
}

/// Owns the write connection until every sender is gone.
fn write_loop(mut conn: Connection, mut jobs: mpsc::Receiver<Job>, restart_wanted: &AtomicBool) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        if restart_wanted.swap(false, Ordering::Relaxed) {
            // Between batches no write of ours is open; the few frames the background
            // checkpoint left are copied, and the next commit starts the log again from its start.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "sqlite checkpoint by the writer failed");
            }
        }
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() == 1 {
            // Alone: autocommit, no BEGIN/COMMIT.
            if let Some(job) = batch.pop() {
                let outcome = apply(&conn, &job.write).map_err(unavailable);
                let _ = job.reply.send(outcome);
            }
            continue;
        }
        match apply_batch(&mut conn, &batch) {
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
}

/// How often the write-ahead log is copied back into the database. Often, so that each copy
/// and its flush to disk are small: every 500 ms, the refresh grant's p99 under a saturating
/// load was ≈ 9 ms on a virtual disk, every 100 ms ≈ 3.6 ms (BENCHMARKS.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies the write-ahead log into the database every [`CHECKPOINT_EVERY`], beside the writer rather
/// than inside its commits (where SQLite's automatic checkpoints would stall every write
/// behind page copies and an fsync). PASSIVE: it never waits for, nor blocks, the writer.
///
/// SQLite starts the log again from its beginning only when a write transaction begins with
/// every frame already copied; under a steady stream of writes the next one always begins
/// before this thread has caught up, and the log grows without end (gigabytes during a bulk
/// load). So once the log is large, the writer is asked to checkpoint between two batches
/// (RESTART: the frames left, then until no reader is still in the log), after which its next
/// commit starts the log again.
fn checkpoint_loop(conn: Connection, stop: &std::sync::mpsc::Receiver<()>, restart_wanted: &AtomicBool) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match catch_up(&conn) {
            Ok(true) => restart_wanted.store(true, Ordering::Relaxed),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed; retrying"),
        }
    }
    // A last full checkpoint at close leaves the database file complete on its own.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// Passive checkpoints until one is quick (what the writer logged during the previous one is
/// copied by the next, each pass shorter), or a few were made; whether the log has grown large
/// enough for the writer to start it again. Each pass here is one the writer does not wait for:
/// what is left for its own checkpoint is a few milliseconds of frames.
fn catch_up(conn: &Connection) -> Result<bool, rusqlite::Error> {
    const QUICK: Duration = Duration::from_millis(5);
    let logged = |row: &rusqlite::Row<'_>| row.get::<_, i64>(1);
    for _ in 0..4 {
        let started = std::time::Instant::now();
        let frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], logged)?;
        if frames <= WAL_RESTART_FRAMES {
            return Ok(false);
        }
        if started.elapsed() < QUICK {
            break;
        }
    }
    Ok(true)
}

/// Serves reads from the shared queue until the store is gone.
fn read_loop(conn: Connection, queue: &Mutex<std::sync::mpsc::Receiver<Read>>) {
    loop {
        // The lock is held only while waiting for the next read; a poisoned lock means a
        // sibling panicked, and the queue itself is still sound.
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(read) = next else { return };
        let outcome = if read.key.is_empty() {
            conn.query_row("SELECT 1", [], |_| Ok(None)).map_err(unavailable)
        } else {
            conn.prepare_cached(
                "SELECT value, version FROM records
                 WHERE collection = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![read.collection.name(), read.key, read.now], |row| {
                        Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
                    })
                    .optional()
            })
            .map_err(unavailable)
        };
        let _ = read.reply.send(outcome);
    }
}

/// Deletes one batch of rows expired at `now`; how many.
async fn reclaim_batch(writes: &mpsc::Sender<Job>, now: i64) -> Result<u64, StoreError> {
    let (reply, outcome) = oneshot::channel();
    writes.send(Job { write: Write::Reclaim { now }, reply }).await.map_err(|_| closed())?;
    Ok(outcome.await.map_err(|_| closed())??.rows)
}

async fn reclaim_forever(writes: mpsc::WeakSender<Job>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let now = now_ms();
        // Batch after batch until one comes back short. Each waits in the queue with the other
        // writes, and the next waits three times as long, and at least RECLAIM_PAUSE: a large
        // sweep takes at most a quarter of the writer's time and is spread out, since what
        // disturbs requests is the burst of scattered pages it leaves for checkpoints to write.
        loop {
            let Some(sender) = writes.upgrade() else { return };
            let started = tokio::time::Instant::now();
            let outcome = reclaim_batch(&sender, now).await;
            drop(sender);
            match outcome {
                Ok(RECLAIM_BATCH) => tokio::time::sleep((started.elapsed() * 3).max(RECLAIM_PAUSE)).await,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "reclaiming expired records failed");
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError> {
        // The empty key is the readers' liveness probe, never a record.
        if key.is_empty() {
            return Ok(None);
        }
        let row = self.read(collection, key).await?;
        Ok(row.map(|(value, version)| Versioned { value, version: from_sql(version) }))
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

    async fn delete_if_version(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
    ) -> Result<bool, StoreError> {
        let write = Write::DeleteIfVersion { collection, key: key.to_owned(), expected, now: now_ms() };
        Ok(self.write(write).await?.rows == 1)
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
        self.read(Collection::new("ping"), "").await?;
        if self.writes.is_closed() {
            return Err(closed());
        }
        Ok(())
    }
}
