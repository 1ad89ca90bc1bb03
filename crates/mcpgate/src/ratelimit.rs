//! Keyed rate limits (E3): a GCRA token bucket per key (a client address, a host), in memory,
//! bounded in size, idle keys forgotten. A refusal says how long to wait, for `Retry-After`.
//!
//! Limits are per instance: behind a load balancer spreading over N instances a client gets up
//! to N times the rate, which is the usual trade for not paying a store round trip per request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use moka::sync::Cache;

use crate::client_address::{TrustedProxies, client_address, rate_limit_key};

/// How many requests a key may make: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    /// `per_minute` requests a minute, `burst` at once.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Self { per_second: f64::from(per_minute) / 60.0, burst }
    }
}

/// A rate limiter over many keys.
#[derive(Clone)]
pub struct RateLimiter {
    /// Time between two requests at the sustained rate.
    interval: Duration,
    /// How far ahead of now a key's schedule may run: the burst.
    tolerance: Duration,
    /// Per key, the theoretical arrival time of its next request.
    schedules: Cache<String, Arc<Mutex<Instant>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("interval", &self.interval).finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter applying `limit` to each key, remembering at most `max_keys` keys.
    pub fn new(limit: RateLimit, max_keys: u64) -> Self {
        let per_second =
            if limit.per_second.is_finite() && limit.per_second > 0.0 { limit.per_second } else { 1e-6 };
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let tolerance = interval.saturating_mul(limit.burst.max(1) - 1);
        // A key idle for a full refill is at its full burst again: forgetting it changes nothing.
        let schedules = Cache::builder().max_capacity(max_keys).time_to_idle(interval + tolerance).build();
        Self { interval, tolerance, schedules }
    }

    /// Admits one request for `key`, or says how long until one would be admitted.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let schedule = self.schedules.get_with_by_ref(key, || Arc::new(Mutex::new(now)));
        // A poisoned lock only means another request panicked mid-update; the instant is valid.
        let mut next = schedule.lock().unwrap_or_else(|p| p.into_inner());
        let arrival = (*next).max(now);
        let ahead = arrival - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        *next = arrival + self.interval;
        Ok(())
    }
}

/// A limit per client address: requests are counted under their peer's address, or behind
/// trusted proxies under the address those forward (see [`crate::client_address`]).
#[derive(Debug, Clone)]
pub struct ClientRateLimit {
    limiter: Arc<RateLimiter>,
    trusted_proxies: TrustedProxies,
}

/// Whether a request is within its client's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within it.
    Admitted,
    /// The server runs without connection info, so the client is unknown: admitted, since one
    /// bucket for everyone would let one client lock out all.
    UnknownClient,
    /// Over it: try again after this many seconds (`Retry-After`).
    TooMany {
        /// Whole seconds until a request would be admitted, rounded up.
        retry_after_secs: u64,
    },
}

impl ClientRateLimit {
    /// `limit` per client address, behind `trusted_proxies`.
    pub fn new(limit: RateLimit, trusted_proxies: TrustedProxies) -> Self {
        Self { limiter: Arc::new(RateLimiter::new(limit, 100_000)), trusted_proxies }
    }

    /// Counts `request` under its client, and says whether it is admitted.
    pub fn check<B>(&self, request: &http::Request<B>) -> Admission {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let Some(address) = client_address(&self.trusted_proxies, peer, request.headers()) else {
            return Admission::UnknownClient;
        };
        match self.limiter.check(&rate_limit_key(address)) {
            Ok(()) => Admission::Admitted,
            Err(wait) => {
                Admission::TooMany { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(RateLimit { per_second: 10.0, burst: 3 }, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at("a", t0), Ok(()));
        }
        let wait = limiter.check_at("a", t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        // Another key has its own bucket.
        assert_eq!(limiter.check_at("b", t0), Ok(()));
        // After one interval, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.check_at("a", t1), Ok(()));
        assert!(limiter.check_at("a", t1).is_err());
        // After a quiet period, the whole burst again.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(limiter.check_at("a", t2), Ok(()));
        }
        assert!(limiter.check_at("a", t2).is_err());
    }

    #[test]
    fn per_minute_and_degenerate_limits() {
        let limiter = RateLimiter::new(RateLimit::per_minute(60, 1), 10);
        let t0 = Instant::now();
        assert!(limiter.check_at("k", t0).is_ok());
        assert!(limiter.check_at("k", t0 + Duration::from_millis(500)).is_err());
        assert!(limiter.check_at("k", t0 + Duration::from_secs(1)).is_ok());
        // A zero or nonsensical rate never panics; it admits the burst and then almost nothing.
        let stingy = RateLimiter::new(RateLimit { per_second: 0.0, burst: 0 }, 10);
        assert!(stingy.check_at("k", t0).is_ok());
        assert!(stingy.check_at("k", t0).is_err());
        let nan = RateLimiter::new(RateLimit { per_second: f64::NAN, burst: 2 }, 10);
        assert!(nan.check_at("k", t0).is_ok());
    }
}
