//! The list of revoked grants (D6), shared by every instance on one store.
//!
//! The verifier of our access tokens asks it on every request, so asking is a map lookup in
//! memory, never a store round trip. A revocation is entered here at once and published to the
//! store in a time bucket (one record per ten seconds, appended to with compare-and-swap);
//! each instance reads the recent buckets four times a second, so a revocation made anywhere
//! is honoured everywhere within about a quarter of a second plus one store round trip. A new
//! instance first reads every bucket an unexpired access token could be revoked in.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use moka::sync::Cache;

use crate::clock::Clock;
use crate::store::{Collection, Store, StoreError, StoreExt};

const REVOCATIONS: Collection = Collection::new("revocations");
/// Seconds of revocations per bucket record.
const BUCKET_SECS: u64 = 10;
/// How often other instances' revocations are read.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How far back each poll reads, beyond the current bucket: covers a writer whose clock runs
/// up to this far behind ours, and a poll that was late.
const POLL_LOOKBACK_SECS: u64 = 30;
/// Concurrent reads while catching up at start.
const CATCH_UP_CONCURRENCY: usize = 32;

/// Grants revoked anywhere, remembered as long as an access token of theirs can be accepted:
/// its lifetime plus the verifier's clock-skew leeway on `exp`.
#[derive(Clone)]
pub(crate) struct RevokedGrants {
    shared: Arc<Shared>,
}

struct Shared {
    known: Cache<String, ()>,
    store: Arc<dyn Store>,
    /// How long a revocation matters: the access-token lifetime plus the leeway.
    hold: Duration,
    /// The time buckets are named by.
    clock: Clock,
    /// Set once the start-up catch-up is done and the poller runs.
    listening: tokio::sync::OnceCell<()>,
}

fn bucket_of(unix_secs: u64) -> u64 {
    unix_secs - unix_secs % BUCKET_SECS
}

impl RevokedGrants {
    /// The list for access tokens living `ttl` and accepted up to `leeway` past their `exp`,
    /// shared through `store`.
    pub(crate) fn new(store: Arc<dyn Store>, ttl: Duration, leeway: Duration, clock: Clock) -> Self {
        let hold = ttl + leeway;
        // An entry read back from a bucket may be up to a bucket older than its insertion here.
        let known = Cache::builder().max_capacity(1_000_000).time_to_live(hold).build();
        Self { shared: Arc::new(Shared { known, store, hold, clock, listening: Default::default() }) }
    }

    /// Whether the grant was revoked (as far as this instance has heard).
    pub(crate) fn contains(&self, grant_id: &str) -> bool {
        self.shared.known.contains_key(grant_id)
    }

    /// Revokes the grant here at once, and publishes it for the other instances.
    pub(crate) async fn revoke(&self, grant_id: &str) -> Result<(), StoreError> {
        self.shared.known.insert(grant_id.to_owned(), ());
        self.shared.publish(grant_id).await
    }

    /// Catches up with the revocations already published (once) and starts following new ones,
    /// for as long as this list lives. Call before the first [`contains`](Self::contains)
    /// that matters; later calls return at once.
    pub(crate) async fn listen(&self) {
        self.shared
            .listening
            .get_or_init(|| async {
                let now = self.shared.clock.unix_now();
                let from = bucket_of(now.saturating_sub(self.shared.hold.as_secs() + BUCKET_SECS));
                if let Err(e) = self.shared.read_buckets(from, now).await {
                    tracing::warn!(error = %e, "reading published revocations failed; following new ones");
                }
                tokio::spawn(poll(Arc::downgrade(&self.shared)));
            })
            .await;
    }
}

impl Shared {
    async fn publish(&self, grant_id: &str) -> Result<(), StoreError> {
        let key = bucket_of(self.clock.unix_now()).to_string();
        // The bucket outlives every access token of the grants it lists, leeway included.
        let ttl = Some(self.hold + Duration::from_secs(2 * BUCKET_SECS));
        loop {
            let Some(current) = self.store.get_json::<Vec<String>>(REVOCATIONS, &key).await? else {
                let first = vec![grant_id.to_owned()];
                if self.store.put_json_if_absent(REVOCATIONS, &key, &first, ttl).await?.is_some() {
                    return Ok(());
                }
                continue;
            };
            if current.value.iter().any(|g| g == grant_id) {
                return Ok(());
            }
            let mut next = current.value;
            next.push(grant_id.to_owned());
            if self
                .store
                .compare_and_swap_json(REVOCATIONS, &key, current.version, &next, ttl)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }

    /// Enters every revocation published in the buckets covering `from..=to` (seconds).
    async fn read_buckets(&self, from: u64, to: u64) -> Result<(), StoreError> {
        let buckets = (bucket_of(from)..=bucket_of(to)).step_by(BUCKET_SECS as usize);
        let mut reads = futures::stream::iter(buckets)
            .map(|bucket| {
                let store = self.store.clone();
                async move { store.get_json::<Vec<String>>(REVOCATIONS, &bucket.to_string()).await }
            })
            .buffer_unordered(CATCH_UP_CONCURRENCY);
        while let Some(bucket) = reads.next().await {
            for grant_id in bucket?.map(|b| b.value).unwrap_or_default() {
                self.known.insert(grant_id, ());
            }
        }
        Ok(())
    }
}

/// Follows new revocations until the list is dropped.
async fn poll(shared: Weak<Shared>) {
    let mut ticker = tokio::time::interval(POLL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        let now = shared.clock.unix_now();
        // A writer's clock may also run ahead of ours: read the next bucket too.
        if let Err(e) = shared.read_buckets(now.saturating_sub(POLL_LOOKBACK_SECS), now + BUCKET_SECS).await {
            tracing::warn!(error = %e, "reading published revocations failed; retrying");
        }
    }
}
