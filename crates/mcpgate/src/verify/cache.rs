//! The verified-token cache: a token seen before costs a digest and a map lookup, not a
//! signature check or a network call. Entries are bounded in number and dropped at the
//! token's expiry (or earlier, when the verifier asks for a shorter bound).
//!
//! What can change while a result is reused (a grant revoked) is a [`Revalidate`] check, run
//! on every use, cached or not: one cache, the check on top. A verifier whose results may not
//! be reused at all (`max_cache_ttl` of zero, which a cache says of itself) is passed straight
//! through — not digested, not counted — so a cache wrapped around another costs nothing and
//! the hit metric counts each token use once.

use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::{TokenVerifier, VerifyError};
use crate::Principal;

/// SHA-256 of a token: what caches and lookups key on, so that no map holds a bearer token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The digest is already uniform; its first eight bytes are as good as any hash of it.
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// A hasher for keys that are already uniformly distributed: passes their `u64` through.
#[derive(Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type DigestMap = Cache<TokenDigest, Entry, BuildHasherDefault<PassThroughHasher>>;

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[derive(Clone)]
struct Entry {
    principal: Principal,
    valid_until: Instant,
}

struct UntilValid;

impl Expiry<TokenDigest, Entry> for UntilValid {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        entry: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.valid_until.saturating_duration_since(created_at))
    }
}

/// A check made on every use of a token, whether its verification came from the cache or
/// not: for what may change while a verified result is still valid (its grant revoked).
#[async_trait]
pub trait Revalidate: Send + Sync + 'static {
    /// Whether there is anything to check: `false` only for [`NoRevalidation`], so that a plain
    /// cache makes no call (and allocates no future) per token use.
    const CHECKS: bool = true;

    /// `Ok` when `principal`, verified now or earlier, is still acceptable.
    async fn revalidate(&self, principal: &Principal) -> Result<(), VerifyError>;
}

/// No check beyond the cache's own bounds: what a token says stays true until it expires.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevalidation;

#[async_trait]
impl Revalidate for NoRevalidation {
    const CHECKS: bool = false;

    async fn revalidate(&self, _: &Principal) -> Result<(), VerifyError> {
        Ok(())
    }
}

/// Wraps a verifier with a bounded cache of its successful results, and a [`Revalidate`]
/// check on every use (none by default).
///
/// Failures are never cached: an invalid token is re-checked each time (cheaply, it fails
/// early), and a verifier that was unavailable is asked again.
pub struct CachedVerifier<V, R = NoRevalidation> {
    inner: V,
    cache: DigestMap,
    max_ttl: Duration,
    revalidate: R,
}

impl<V, R> std::fmt::Debug for CachedVerifier<V, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedVerifier")
            .field("entries", &self.cache.entry_count())
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl<V: TokenVerifier> CachedVerifier<V> {
    /// Caches up to 10,000 tokens, each at most one hour and never past its expiry.
    pub fn new(inner: V) -> Self {
        Self::with_limits(inner, 10_000, Duration::from_secs(3600))
    }

    /// Caches up to `capacity` tokens, each at most `max_ttl` and never past its expiry.
    pub fn with_limits(inner: V, capacity: u64, max_ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilValid)
            .build_with_hasher(BuildHasherDefault::default());
        Self { inner, cache, max_ttl, revalidate: NoRevalidation }
    }

    /// The same cache, with `check` made on every use of a token (cached or not).
    pub fn revalidated_by<R: Revalidate>(self, check: R) -> CachedVerifier<V, R> {
        CachedVerifier { inner: self.inner, cache: self.cache, max_ttl: self.max_ttl, revalidate: check }
    }
}

impl<V: TokenVerifier, R: Revalidate> CachedVerifier<V, R> {
    /// The wrapped verifier.
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// Forgets `token`, so that its next use is verified again (after a revocation).
    pub fn forget(&self, token: &str) {
        self.cache.invalidate(&TokenDigest::of(token));
    }

    /// How long `principal` may be served from the cache.
    fn ttl(&self, principal: &Principal) -> Duration {
        let mut ttl = self.max_ttl;
        if let Some(bound) = self.inner.max_cache_ttl() {
            ttl = ttl.min(bound);
        }
        if let Some(left) = principal.remaining_lifetime(SystemTime::now()) {
            ttl = ttl.min(left);
        }
        ttl
    }
}

impl<V: TokenVerifier, R: Revalidate> CachedVerifier<V, R> {
    /// The verified principal of `token`, from the cache or the inner verifier, before the
    /// revalidation.
    async fn verified(&self, token: &str) -> Result<Principal, VerifyError> {
        if self.inner.max_cache_ttl() == Some(Duration::ZERO) {
            // Nothing of it may be reused: no digest, no entry, nothing counted.
            return self.inner.verify(token).await;
        }
        let digest = TokenDigest::of(token);
        // The cache never returns an entry past its expiry (moka checks on read).
        if let Some(entry) = self.cache.get(&digest) {
            crate::metrics::verify_cache(true);
            return Ok(entry.principal);
        }
        crate::metrics::verify_cache(false);
        let principal = self.inner.verify(token).await?;
        let ttl = self.ttl(&principal);
        if !ttl.is_zero() {
            let entry = Entry { principal: principal.clone(), valid_until: Instant::now() + ttl };
            self.cache.insert(digest, entry);
        }
        Ok(principal)
    }
}

#[async_trait]
impl<V: TokenVerifier, R: Revalidate> TokenVerifier for CachedVerifier<V, R> {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        let principal = self.verified(token).await?;
        if R::CHECKS {
            self.revalidate.revalidate(&principal).await?;
        }
        Ok(principal)
    }

    /// Zero: this is the cache. Another cache around it passes through (and would otherwise
    /// skip the revalidation, and count every use twice).
    fn max_cache_ttl(&self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::verify::InvalidToken;

    struct Counting {
        calls: AtomicUsize,
        exp_in: u64,
        bound: Option<Duration>,
    }

    #[async_trait]
    impl TokenVerifier for Counting {
        async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if token == "bad" {
                return Err(InvalidToken::BadSignature.into());
            }
            let exp = crate::clock::Clock::system().unix_now() + self.exp_in;
            Ok(Principal::new(token).with_expires_at(exp))
        }
        fn max_cache_ttl(&self) -> Option<Duration> {
            self.bound
        }
    }

    fn counting(exp_in: u64, bound: Option<Duration>) -> CachedVerifier<Counting> {
        CachedVerifier::new(Counting { calls: AtomicUsize::new(0), exp_in, bound })
    }

    #[tokio::test]
    async fn second_use_is_served_from_cache() {
        let v = counting(300, None);
        assert_eq!(v.verify("alice").await.expect("ok").subject(), "alice");
        assert_eq!(v.verify("alice").await.expect("ok").subject(), "alice");
        assert_eq!(v.inner().calls.load(Ordering::SeqCst), 1);
        v.forget("alice");
        v.verify("alice").await.expect("ok");
        assert_eq!(v.inner().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let v = counting(300, None);
        assert!(v.verify("bad").await.is_err());
        assert!(v.verify("bad").await.is_err());
        assert_eq!(v.inner().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn entries_end_at_expiry_and_at_the_verifier_bound() {
        let v = counting(300, None);
        let p = Principal::new("x").with_expires_at(crate::clock::Clock::system().unix_now() + 2);
        assert!(v.ttl(&p) <= Duration::from_secs(2));
        let bounded = counting(300, Some(Duration::from_secs(30)));
        let p = Principal::new("x").with_expires_at(crate::clock::Clock::system().unix_now() + 300);
        assert_eq!(bounded.ttl(&p), Duration::from_secs(30));
        // A token at its expiry second is not cached at all.
        let v0 = counting(0, None);
        v0.verify("now").await.expect("ok");
        v0.verify("now").await.expect("ok");
        assert_eq!(v0.inner().calls.load(Ordering::SeqCst), 2);
    }

    /// Refuses every principal once `refuse` is set.
    struct Switch(std::sync::atomic::AtomicBool);

    #[async_trait]
    impl Revalidate for Switch {
        async fn revalidate(&self, _: &Principal) -> Result<(), VerifyError> {
            if self.0.load(Ordering::SeqCst) { Err(InvalidToken::Revoked.into()) } else { Ok(()) }
        }
    }

    #[tokio::test]
    async fn the_revalidation_runs_on_cached_results_too() {
        let v = counting(300, None).revalidated_by(Switch(false.into()));
        v.verify("alice").await.expect("ok");
        v.verify("alice").await.expect("cached");
        v.revalidate.0.store(true, Ordering::SeqCst);
        assert_eq!(v.verify("alice").await, Err(VerifyError::Invalid(InvalidToken::Revoked)));
        assert_eq!(
            v.inner().calls.load(Ordering::SeqCst),
            1,
            "the refusal came from the check, not the inner"
        );
    }

    #[tokio::test]
    async fn a_cache_around_a_cache_passes_through() {
        let outer = CachedVerifier::new(counting(300, None).revalidated_by(Switch(false.into())));
        outer.verify("alice").await.expect("ok");
        outer.verify("alice").await.expect("ok");
        assert_eq!(outer.cache.entry_count(), 0, "nothing kept outside");
        outer.cache.run_pending_tasks();
        assert!(outer.cache.get(&TokenDigest::of("alice")).is_none());
        assert_eq!(outer.inner().inner().calls.load(Ordering::SeqCst), 1, "the inner cache answered");
        // And the inner check still decides.
        outer.inner().revalidate.0.store(true, Ordering::SeqCst);
        assert!(outer.verify("alice").await.is_err());
    }

    #[test]
    fn digest_does_not_format_the_token() {
        assert_eq!(format!("{:?}", TokenDigest::of("secret-token")), "TokenDigest(..)");
    }
}
