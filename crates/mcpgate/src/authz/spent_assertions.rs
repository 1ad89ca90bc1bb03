//! [`SpentAssertions`]: the ids (`jti`) of signed assertions already used — client assertions
//! (RFC 7523 §3, item 7) and, later, identity assertion grants — so that each is accepted once
//! across every instance sharing the store. An id is kept until its assertion expires, after
//! which the assertion itself is refused.

use std::sync::Arc;
use std::time::Duration;

use crate::Principal;
use crate::clock::Clock;
use crate::crypto::KeyedMac;
use crate::store::{Collection, Store, StoreError};

/// Longest `jti` accepted.
const MAX_JTI_CHARS: usize = 256;

/// Longest an assertion may live: its `jti` is kept that long.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// Why a verified assertion cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unspendable {
    /// No usable `jti`.
    #[error("a jti is required")]
    MissingJti,
    /// `exp` is further ahead than [`MAX_LIFETIME`].
    #[error("it must expire within an hour")]
    TooLong,
    /// It was used before.
    #[error("already used")]
    Replayed,
    /// The store failed recording it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The `jti` of a verified assertion: a non-empty string of at most 256 characters.
fn jti(claims: &Principal) -> Option<&str> {
    claims
        .claim("jti")
        .and_then(serde_json::Value::as_str)
        .filter(|jti| !jti.is_empty() && jti.chars().count() <= MAX_JTI_CHARS)
}

/// Where spent assertion ids live.
const SPENT: Collection = Collection::new("spent_assertions");

/// The assertion ids seen, by issuer.
pub(crate) struct SpentAssertions {
    store: Arc<dyn Store>,
    /// Keys records by a digest of issuer and id: bounded length, nothing the sender chose.
    digester: KeyedMac,
    clock: Clock,
}

impl SpentAssertions {
    pub(crate) fn new(store: Arc<dyn Store>, digester: KeyedMac, clock: Clock) -> Self {
        Self { store, digester, clock }
    }

    /// Spends `issuer`'s assertion whose verified claims are `claims`: it needs a `jti`, and an
    /// `exp` (which its verifier required) at most [`MAX_LIFETIME`] ahead; its id is kept past
    /// `exp` by `leeway`, the time its verifier would still accept it.
    pub(crate) async fn spend(
        &self,
        issuer: &str,
        claims: &Principal,
        leeway: Duration,
    ) -> Result<(), Unspendable> {
        let jti = jti(claims).ok_or(Unspendable::MissingJti)?;
        let now = self.clock.unix_now();
        let remaining = claims.expires_at().unwrap_or(now).saturating_sub(now);
        if remaining > MAX_LIFETIME.as_secs() {
            return Err(Unspendable::TooLong);
        }
        if !self.first_use(issuer, jti, Duration::from_secs(remaining) + leeway).await? {
            return Err(Unspendable::Replayed);
        }
        Ok(())
    }

    /// Records that `issuer`'s assertion `jti` is used, for `lifetime` (until it expires);
    /// whether this was its first use. Atomic: of concurrent uses of one id, exactly one is first.
    async fn first_use(&self, issuer: &str, jti: &str, lifetime: Duration) -> Result<bool, StoreError> {
        let mut subject = Vec::with_capacity(issuer.len() + jti.len() + 1);
        subject.extend_from_slice(issuer.as_bytes());
        // NUL cannot occur in either (both are JSON strings we checked): no two pairs collide.
        subject.push(0);
        subject.extend_from_slice(jti.as_bytes());
        let key = self.digester.tag(&subject).to_base64();
        // At least a second: a store may treat a zero TTL as "keep forever" or "already gone".
        let ttl = lifetime.max(Duration::from_secs(1));
        Ok(self.store.put_if_absent(SPENT, &key, b"1", Some(ttl)).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keyring, RootSecret};

    #[tokio::test]
    async fn an_id_is_first_used_once_per_issuer() {
        let store = crate::store::open("memory://").await.unwrap();
        let keyring = Keyring::new(RootSecret::from_bytes(vec![3; 32]).unwrap(), vec![]);
        let spent = SpentAssertions::new(store, keyring.digester(), Clock::system());
        let minute = Duration::from_secs(60);
        assert!(spent.first_use("ci", "a", minute).await.unwrap());
        assert!(!spent.first_use("ci", "a", minute).await.unwrap(), "the same id again");
        assert!(spent.first_use("other", "a", minute).await.unwrap(), "another issuer's id is its own");
        assert!(spent.first_use("ci", "b", minute).await.unwrap());
    }
}
