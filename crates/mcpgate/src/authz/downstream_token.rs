//! Downstream tokens (D11): for an MCP server that calls another API as the user, the user's provider
//! token exchanged at the provider for a token made for that API ([`TokenExchange`]). Each
//! grant's token is kept, sealed, until shortly before it expires, and exchanged at most once
//! at a time per grant across every instance on the store: the instance that takes the grant's
//! lock exchanges and stores the result, the others wait for it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Inner;
use super::provider_token::{ProviderTokenError, due};
use crate::clock::Clock;
use crate::crypto::{Sealer, random_token};
use crate::store::{Collection, Store, StoreError, StoreExt};
use crate::upstream::{TokenExchange, UpstreamError, UpstreamTokens};

const DOWNSTREAM: Collection = Collection::new("downstream_tokens");
const LOCKS: Collection = Collection::new("downstream_locks");
/// A lock outlives any one exchange (the provider call times out well before), and frees
/// itself if its holder dies mid-exchange.
const LOCK_TTL: Duration = Duration::from_secs(30);
/// How often a waiting instance looks for the holder's result.
const WAIT_STEP: Duration = Duration::from_millis(50);
/// How long a token whose provider gave no `expires_in` is used.
const UNDATED_LIFETIME: u64 = 300;

/// A grant's downstream token as stored.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    /// The token, sealed to its grant.
    sealed: String,
    expires_at: u64,
    obtained_at: u64,
}

/// A token opened, with its dates.
#[derive(Clone)]
struct OpenToken {
    token: SecretString,
    expires_at: u64,
    obtained_at: u64,
}

/// The downstream tokens of every grant: the one owner of their records.
pub(crate) struct DownstreamTokens {
    exchange: TokenExchange,
    store: std::sync::Arc<dyn Store>,
    sealer: Sealer,
    clock: Clock,
    /// Tokens this instance opened, so that forwarding one costs a map lookup.
    opened: moka::sync::Cache<String, OpenToken>,
}

fn aad(grant_id: &str) -> Vec<u8> {
    format!("downstream:{grant_id}").into_bytes()
}

impl DownstreamTokens {
    pub(crate) fn new(
        exchange: TokenExchange,
        store: std::sync::Arc<dyn Store>,
        sealer: Sealer,
        clock: Clock,
    ) -> Self {
        let opened = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(3600))
            .build();
        Self { exchange, store, sealer, clock, opened }
    }

    fn usable(&self, token: &OpenToken) -> bool {
        !due(Some(token.expires_at), token.obtained_at, self.clock.unix_now())
    }

    /// The grant's token, opened here before or stored by any instance, unless it is due.
    async fn fresh(&self, grant_id: &str) -> Result<Option<SecretString>, StoreError> {
        if let Some(open) = self.opened.get(grant_id).filter(|t| self.usable(t)) {
            return Ok(Some(open.token));
        }
        let Some(stored) = self.store.get_json::<StoredToken>(DOWNSTREAM, grant_id).await? else {
            return Ok(None);
        };
        // A record that does not open (another keyring, tampering) is as good as none.
        let Some(token) = URL_SAFE_NO_PAD
            .decode(&stored.value.sealed)
            .ok()
            .and_then(|sealed| self.sealer.open(&aad(grant_id), &sealed).ok())
            .and_then(|plain| String::from_utf8(plain.expose_secret().to_vec()).ok())
        else {
            return Ok(None);
        };
        let open = OpenToken {
            token: SecretString::from(token),
            expires_at: stored.value.expires_at,
            obtained_at: stored.value.obtained_at,
        };
        if !self.usable(&open) {
            return Ok(None);
        }
        self.opened.insert(grant_id.to_owned(), open.clone());
        Ok(Some(open.token))
    }

    /// Keeps the exchanged `tokens` for the grant, sealed, until they expire.
    async fn keep(&self, grant_id: &str, tokens: UpstreamTokens) -> Result<SecretString, StoreError> {
        let now = self.clock.unix_now();
        let expires_at = tokens.expires_at.unwrap_or(now + UNDATED_LIFETIME);
        let sealed = URL_SAFE_NO_PAD
            .encode(self.sealer.seal(&aad(grant_id), tokens.access_token.expose_secret().as_bytes()));
        let stored = StoredToken { sealed, expires_at, obtained_at: now };
        let ttl = Duration::from_secs(expires_at.saturating_sub(now).max(1));
        self.store.put_json(DOWNSTREAM, grant_id, &stored, Some(ttl)).await?;
        let open = OpenToken { token: tokens.access_token.clone(), expires_at, obtained_at: now };
        self.opened.insert(grant_id.to_owned(), open);
        Ok(tokens.access_token)
    }

    /// Forgets a grant's token (its grant was revoked).
    pub(crate) fn forget(&self, grant_id: &str) {
        self.opened.invalidate(grant_id);
    }
}

impl Inner {
    /// The downstream token of the grant: kept, or exchanged now from the user's provider
    /// token (itself refreshed first when due), once at a time per grant across instances.
    pub(crate) async fn downstream_token(&self, grant_id: &str) -> Result<SecretString, ProviderTokenError> {
        let downstream = self.downstream.as_ref().ok_or(ProviderTokenError::NoExchange)?;
        // Following other instances' revocations, even before this one verified a token.
        self.grants.revoked().listen().await;
        if self.grants.revoked().contains(grant_id) {
            downstream.forget(grant_id);
            return Err(ProviderTokenError::Revoked);
        }
        if let Some(token) = downstream.fresh(grant_id).await? {
            return Ok(token);
        }
        let holder = random_token();
        let lock = self
            .store
            .put_if_absent(LOCKS, grant_id, holder.expose_secret().as_bytes(), Some(LOCK_TTL))
            .await?;
        let Some(version) = lock else { return self.await_other_exchange(downstream, grant_id).await };
        let outcome = async {
            let subject = self.provider_access_token(grant_id).await?;
            let tokens =
                self.upstream.exchange_token(&downstream.exchange, &subject).await.map_err(|e| match e {
                    UpstreamError::Rejected { error, .. } => ProviderTokenError::Refused(error),
                    e => ProviderTokenError::Unavailable(e.to_string()),
                })?;
            Ok(downstream.keep(grant_id, tokens).await?)
        }
        .await;
        // Released only if still ours: an exchange slower than the lock's TTL finds another
        // instance's lock in its place, and must leave it.
        if let Err(e) = self.store.delete_if_version(LOCKS, grant_id, version).await {
            tracing::warn!(error = %e, "releasing a downstream exchange lock failed; it expires");
        }
        outcome
    }

    /// Waits while another instance exchanges: for its stored result, or until its lock goes
    /// without one (it failed: the caller retries later).
    async fn await_other_exchange(
        &self,
        downstream: &DownstreamTokens,
        grant_id: &str,
    ) -> Result<SecretString, ProviderTokenError> {
        let deadline = tokio::time::Instant::now() + LOCK_TTL;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(WAIT_STEP).await;
            if let Some(token) = downstream.fresh(grant_id).await? {
                return Ok(token);
            }
            if self.store.get(LOCKS, grant_id).await?.is_none() {
                return match downstream.fresh(grant_id).await? {
                    Some(token) => Ok(token),
                    None => Err(ProviderTokenError::Unavailable("the token exchange failed".into())),
                };
            }
        }
        Err(ProviderTokenError::Unavailable("timed out waiting for another token exchange".into()))
    }
}
