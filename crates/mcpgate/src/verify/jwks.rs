//! The JWKS cache (A8): keys fetched from an identity provider's `jwks_uri`, kept per its
//! Cache-Control within bounds, fetched by one task at a time, refetched for an unknown `kid`
//! at most once per cool-down, and served stale while the provider is unreachable.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http::header::CACHE_CONTROL;
use tokio::sync::Mutex;

use super::{KeySet, VerifyError};
use crate::http_client::{OutboundTimeouts, cache_control_ttl, outbound_client, send_bounded};

/// Tuning of the JWKS cache.
#[derive(Debug, Clone)]
pub struct JwksCacheConfig {
    /// Shortest time a fetched key set is considered fresh, whatever Cache-Control says.
    pub min_ttl: Duration,
    /// Longest time a fetched key set is considered fresh, whatever Cache-Control says.
    pub max_ttl: Duration,
    /// Freshness when the response has no usable Cache-Control.
    pub default_ttl: Duration,
    /// Least time between two fetches caused by an unknown `kid`.
    pub unknown_kid_cooldown: Duration,
    /// Least time between a failed fetch and the next attempt.
    pub failure_backoff: Duration,
    /// Largest JWKS document accepted.
    pub max_body_bytes: usize,
    /// Timeouts of the fetch.
    pub timeouts: OutboundTimeouts,
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        Self {
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(600),
            unknown_kid_cooldown: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            timeouts: OutboundTimeouts::default(),
        }
    }
}

#[derive(Default)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    fresh_until: Option<Instant>,
    last_attempt: Option<Instant>,
    last_failure: Option<Instant>,
    /// Bumped by every completed fetch attempt, so a task that waited for the fetch lock can
    /// tell that another task fetched meanwhile.
    generation: u64,
}

/// Keys from a JWKS URL, cached.
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    config: JwksCacheConfig,
    state: RwLock<CacheState>,
    fetch_lock: Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Why the keys could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksFetchError {
    /// The URL could not be reached or did not answer with success: perhaps passing.
    #[error("cannot fetch the keys: {0}")]
    Unreachable(String),
    /// It answered, with something that is not a JWK set with a usable signing key.
    #[error("the answer is not a JWK set with a usable signing key: {0}")]
    Unusable(String),
}

/// What a caller needs from the cache.
enum Need<'a> {
    /// Any usable key set.
    Any,
    /// A key set holding this `kid`, if one can be had within the cool-down.
    Kid(&'a str),
}

impl JwksCache {
    /// A cache for the JWKS at `url`.
    pub fn new(url: impl Into<String>, config: JwksCacheConfig) -> Self {
        let http = outbound_client(config.timeouts);
        Self { url: url.into(), http, config, state: RwLock::default(), fetch_lock: Mutex::new(()) }
    }

    /// Fetches the keys now, whatever the cache holds, and keeps them if they are usable: to
    /// warm the cache at start, or to check a configured URL. Answers how many keys it has.
    pub async fn refresh(&self) -> Result<usize, JwksFetchError> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch().await
    }

    /// The URL the keys come from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key set to verify a token whose header names `kid` (or none).
    ///
    /// Fetches when the set is missing or stale, or when `kid` is unknown and the cool-down
    /// has passed; otherwise answers from memory. A failed fetch leaves the last good set in
    /// service.
    pub async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, VerifyError> {
        let need = kid.map_or(Need::Any, Need::Kid);
        let seen_generation = match self.decide(&need, Instant::now()) {
            Decision::Use(keys) => return Ok(keys),
            Decision::Unavailable => return Err(self.unavailable()),
            Decision::Fetch(generation) => generation,
        };
        let _guard = self.fetch_lock.lock().await;
        // Another task may have fetched while this one waited: use its result, whatever it was.
        let current_generation = self.read_state(|s| s.generation);
        if current_generation == seen_generation {
            // A failure is remembered in the state (the back-off) and answered below.
            let _ = self.fetch().await;
        }
        self.read_state(|s| s.keys.clone()).ok_or_else(|| self.unavailable())
    }

    fn unavailable(&self) -> VerifyError {
        VerifyError::Unavailable(format!("no signing keys could be fetched from {}", self.url))
    }

    fn read_state<T>(&self, f: impl FnOnce(&CacheState) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update of plain data; keep serving.
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn decide(&self, need: &Need<'_>, now: Instant) -> Decision {
        self.read_state(|s| {
            let backing_off =
                s.last_failure.is_some_and(|t| now.duration_since(t) < self.config.failure_backoff);
            let Some(keys) = &s.keys else {
                return if backing_off { Decision::Unavailable } else { Decision::Fetch(s.generation) };
            };
            let fresh = s.fresh_until.is_some_and(|t| now < t);
            let wants_refetch = match need {
                Need::Any => !fresh,
                Need::Kid(kid) if keys.has_kid(kid) => !fresh,
                Need::Kid(_) => {
                    !fresh
                        || s.last_attempt
                            .is_none_or(|t| now.duration_since(t) >= self.config.unknown_kid_cooldown)
                }
            };
            if wants_refetch && !backing_off {
                Decision::Fetch(s.generation)
            } else {
                Decision::Use(keys.clone())
            }
        })
    }

    async fn fetch(&self) -> Result<usize, JwksFetchError> {
        let started = Instant::now();
        let outcome = self.fetch_once().await;
        let answer = outcome.as_ref().map(|(keys, _)| keys.len()).map_err(Clone::clone);
        let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
        s.generation += 1;
        s.last_attempt = Some(started);
        match outcome {
            Ok((keys, ttl)) => {
                tracing::debug!(url = %self.url, keys = keys.len(), ttl_secs = ttl.as_secs(), "fetched JWKS");
                s.keys = Some(Arc::new(keys));
                s.fresh_until = Some(started + ttl);
                s.last_failure = None;
            }
            Err(reason) => {
                tracing::warn!(url = %self.url, %reason, stale_keys_kept = s.keys.is_some(), "JWKS fetch failed");
                s.last_failure = Some(started);
            }
        }
        answer
    }

    async fn fetch_once(&self) -> Result<(KeySet, Duration), JwksFetchError> {
        let request = self.http.get(&self.url).header(http::header::ACCEPT, "application/json");
        let response = send_bounded(request, self.config.max_body_bytes)
            .await
            .map_err(|e| JwksFetchError::Unreachable(e.to_string()))?;
        if !response.status.is_success() {
            return Err(JwksFetchError::Unreachable(format!("status {}", response.status)));
        }
        let keys =
            KeySet::from_jwks_json(&response.body).map_err(|e| JwksFetchError::Unusable(e.to_string()))?;
        if keys.is_empty() {
            // Replacing good keys with none would turn a publishing mistake into an outage.
            return Err(JwksFetchError::Unusable("the document has no usable signing key".into()));
        }
        let ttl = response
            .headers
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(cache_control_ttl)
            .unwrap_or(self.config.default_ttl)
            .max(self.config.min_ttl)
            // Not `clamp`: a configuration with max < min must not panic; the upper bound wins.
            .min(self.config.max_ttl);
        Ok((keys, ttl))
    }
}

enum Decision {
    Use(Arc<KeySet>),
    Unavailable,
    Fetch(u64),
}
