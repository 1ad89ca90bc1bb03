//! The in-process store: sharded maps under short-held locks. For tests and single-process
//! use; everything is lost when the process ends.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Collection, Store, StoreError, Version, Versioned, new_version};

const SHARDS: usize = 16;
/// Least time between two sweeps of a shard's expired records: a sweep visits every record of
/// the shard, so it is paced by time, not by the number of writes.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Record {
    value: Vec<u8>,
    version: Version,
    expires_at: Option<Instant>,
}

impl Record {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

struct Shard {
    records: HashMap<(Collection, String), Record>,
    last_sweep: Instant,
}

impl Default for Shard {
    fn default() -> Self {
        Self { records: HashMap::new(), last_sweep: Instant::now() }
    }
}

impl Shard {
    /// After a write, drops the expired records if the last sweep is [`SWEEP_EVERY`] old.
    fn note_write(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.records.retain(|_, r| r.live(now));
            self.last_sweep = now;
        }
    }
}

/// The in-memory store.
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

fn deadline(now: Instant, ttl: Option<Duration>) -> Option<Instant> {
    ttl.map(|ttl| now + ttl)
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), hasher: RandomState::new() }
    }

    fn with_shard<T>(
        &self,
        collection: Collection,
        key: &str,
        f: impl FnOnce(&mut Shard, Instant) -> T,
    ) -> T {
        let index = (self.hasher.hash_one((collection, key)) as usize) % SHARDS;
        // A poisoned lock means a panic mid-operation elsewhere; the map itself is still sound.
        let mut shard = self.shards[index].lock().unwrap_or_else(|e| e.into_inner());
        f(&mut shard, Instant::now())
    }

    /// Number of records held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).records.len()).sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, collection: Collection, key: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            shard
                .records
                .get(&(collection, key.to_owned()))
                .filter(|r| r.live(now))
                .map(|r| Versioned { value: r.value.clone(), version: r.version })
        }))
    }

    async fn put(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Version, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            let version = new_version();
            let record = Record { value: value.to_vec(), version, expires_at: deadline(now, ttl) };
            shard.records.insert((collection, key.to_owned()), record);
            shard.note_write(now);
            version
        }))
    }

    async fn put_if_absent(
        &self,
        collection: Collection,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            let version = new_version();
            let record = Record { value: value.to_vec(), version, expires_at: deadline(now, ttl) };
            let written = match shard.records.entry((collection, key.to_owned())) {
                Entry::Occupied(mut e) if !e.get().live(now) => {
                    e.insert(record);
                    Some(version)
                }
                Entry::Occupied(_) => None,
                Entry::Vacant(e) => {
                    e.insert(record);
                    Some(version)
                }
            };
            shard.note_write(now);
            written
        }))
    }

    async fn delete(&self, collection: Collection, key: &str) -> Result<bool, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            shard.records.remove(&(collection, key.to_owned())).is_some_and(|r| r.live(now))
        }))
    }

    async fn delete_if_version(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
    ) -> Result<bool, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            let id = (collection, key.to_owned());
            let ours = shard.records.get(&id).is_some_and(|r| r.live(now) && r.version == expected);
            ours && shard.records.remove(&id).is_some()
        }))
    }

    async fn take(&self, collection: Collection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            shard.records.remove(&(collection, key.to_owned())).filter(|r| r.live(now)).map(|r| r.value)
        }))
    }

    async fn compare_and_swap(
        &self,
        collection: Collection,
        key: &str,
        expected: Version,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, StoreError> {
        Ok(self.with_shard(collection, key, |shard, now| {
            let record = shard.records.get_mut(&(collection, key.to_owned()))?;
            if !record.live(now) || record.version != expected {
                return None;
            }
            let version = new_version();
            *record = Record { value: value.to_vec(), version, expires_at: deadline(now, ttl) };
            Some(version)
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
