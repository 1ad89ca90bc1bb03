//! The user's provider tokens (D5): a grant's sealed upstream tokens, refreshed at the provider
//! when the access token is expired or near it — at most once at a time per grant across every
//! instance on the store. The instance that takes the grant's lock record refreshes and writes
//! the result into the grant; the others wait for that write and use it.
//!
//! A terminal refusal by the provider (`invalid_grant`: the user revoked us there) revokes our
//! grant; an unreachable or failing provider does not, and the caller gets a retryable error.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::Inner;
use super::grant::Grant;
use crate::error::{ErrorCode, OAuthError};
use crate::store::{Collection, StoreError, Versioned};
use crate::upstream::UpstreamError;

const REFRESH_LOCKS: Collection = Collection::new("upstream_refresh_locks");
/// A lock outlives any one refresh attempt (the upstream call times out well before), and
/// frees itself if its holder dies mid-refresh.
const LOCK_TTL: Duration = Duration::from_secs(30);
/// How often a waiting instance looks for the holder's result.
const WAIT_STEP: Duration = Duration::from_millis(50);
/// Refresh this long before expiry at most; short-lived tokens in their last quarter.
const MAX_MARGIN_SECS: u64 = 60;

/// Why no fresh provider token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderTokenError {
    /// The grant is gone: revoked here, or refused by the provider (which revokes it).
    #[error("the grant was revoked")]
    Revoked,
    /// The provider's token expired and it gave no refresh token: the user must sign in again.
    #[error("the provider token expired and cannot be refreshed")]
    Expired,
    /// The provider or the store is unavailable now; retry later.
    #[error("the provider token cannot be refreshed now: {0}")]
    Unavailable(String),
    /// The caller holds no sign-in grant of this server: a machine client, an API key or
    /// another issuer's token. There is no provider token to have.
    #[error("the caller did not sign in at the provider through this server")]
    NoGrant,
    /// The provider refused to exchange the user's token for a downstream one (its OAuth
    /// error: e.g. `invalid_target`, or `interaction_required` when the user must consent).
    #[error("the provider refused the token exchange: {0}")]
    Refused(String),
    /// No token exchange is configured.
    #[error("no token exchange is configured")]
    NoExchange,
}

impl From<StoreError> for ProviderTokenError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<ProviderTokenError> for OAuthError {
    fn from(e: ProviderTokenError) -> Self {
        use ProviderTokenError::*;
        match e {
            // Our grant ended: the client's refresh token is dead, and it must sign in again.
            Revoked | Expired | NoGrant | Refused(_) | NoExchange => {
                OAuthError::new(ErrorCode::InvalidGrant, "the grant was revoked or has expired")
            }
            Unavailable(detail) => {
                tracing::warn!(%detail, "provider token unavailable");
                OAuthError::new(ErrorCode::TemporarilyUnavailable, "the identity provider is unavailable")
            }
        }
    }
}

/// Whether a provider token obtained at `obtained_at` and expiring at `expires_at` should be
/// refreshed before use.
pub(super) fn due(expires_at: Option<u64>, obtained_at: u64, now: u64) -> bool {
    let Some(expires_at) = expires_at else { return false };
    let lifetime = expires_at.saturating_sub(obtained_at);
    now + (lifetime / 4).min(MAX_MARGIN_SECS) >= expires_at
}

/// Whether the grant's upstream access token should be refreshed before use.
fn needs_refresh(grant: &Grant, now: u64) -> bool {
    due(grant.upstream_expires_at, grant.upstream_obtained_at, now)
}

/// The provider tokens this instance opened, per grant, so that forwarding one on every MCP
/// request costs a map lookup, not a store read and an AEAD open. An entry is used only while
/// its token is not due and its grant not revoked.
#[derive(Clone)]
pub(crate) struct ProviderTokenCache(moka::sync::Cache<String, CachedProviderToken>);

#[derive(Clone)]
struct CachedProviderToken {
    token: SecretString,
    expires_at: Option<u64>,
    obtained_at: u64,
}

impl ProviderTokenCache {
    pub(crate) fn new() -> Self {
        Self(
            moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(600)).build(),
        )
    }

    /// Forgets a grant's token (its grant was revoked).
    pub(crate) fn forget(&self, grant_id: &str) {
        self.0.invalidate(grant_id);
    }

    /// The grant's token opened before, unless it is due for a refresh at `now`.
    pub(crate) fn fresh(&self, grant_id: &str, now: u64) -> Option<SecretString> {
        let cached = self.0.get(grant_id)?;
        (!due(cached.expires_at, cached.obtained_at, now)).then_some(cached.token)
    }

    /// Keeps `token`, the grant's upstream access token as `grant` describes it.
    pub(crate) fn keep(&self, grant: &Grant, token: SecretString) {
        let cached = CachedProviderToken {
            token,
            expires_at: grant.upstream_expires_at,
            obtained_at: grant.upstream_obtained_at,
        };
        self.0.insert(grant.id.clone(), cached);
    }
}

impl Inner {
    /// The grant's upstream access token, refreshed at the provider first when it is expired or
    /// near it. `Expired` only when it is past its expiry and cannot be refreshed.
    pub(crate) async fn provider_access_token(
        &self,
        grant_id: &str,
    ) -> Result<SecretString, ProviderTokenError> {
        // Following other instances' revocations, even before this one verified a token.
        self.grants.revoked().listen().await;
        if self.grants.revoked().contains(grant_id) {
            return Err(ProviderTokenError::Revoked);
        }
        if let Some(token) = self.grants.provider_tokens().fresh(grant_id, self.settings.clock.unix_now()) {
            return Ok(token);
        }
        let grant = self.grants.get(grant_id).await?.ok_or(ProviderTokenError::Revoked)?;
        let grant = self.refresh_upstream_if_due(grant).await?;
        let (access, _) = self.grants.open_upstream(&grant).ok_or(ProviderTokenError::Revoked)?;
        match grant.upstream_expires_at {
            Some(expires_at) if expires_at <= self.settings.clock.unix_now() => {
                Err(ProviderTokenError::Expired)
            }
            _ => {
                self.grants.provider_tokens().keep(&grant, access.clone());
                Ok(access)
            }
        }
    }

    /// The grant, with its upstream tokens refreshed if they are due and can be. A grant
    /// without an upstream refresh token is returned as it is.
    pub(crate) async fn refresh_upstream_if_due(
        &self,
        mut grant: Versioned<Grant>,
    ) -> Result<Grant, ProviderTokenError> {
        let id = grant.value.id.clone();
        loop {
            if !needs_refresh(&grant.value, self.settings.clock.unix_now()) {
                return Ok(grant.value);
            }
            let Some((_, Some(refresh_token))) = self.grants.open_upstream(&grant.value) else {
                return Ok(grant.value);
            };
            let holder = crate::crypto::random_token();
            let lock = self
                .store
                .put_if_absent(REFRESH_LOCKS, &id, holder.expose_secret().as_bytes(), Some(LOCK_TTL))
                .await?;
            if let Some(version) = lock {
                let outcome = self.refresh_upstream(&grant, &refresh_token).await;
                // Released only if still ours: a refresh slower than the lock's TTL finds another
                // instance's lock in its place, and must leave it.
                if let Err(e) = self.store.delete_if_version(REFRESH_LOCKS, &id, version).await {
                    tracing::warn!(error = %e, "releasing an upstream refresh lock failed; it expires");
                }
                if let Some(refreshed) = outcome? {
                    return Ok(refreshed);
                }
                // The grant changed meanwhile (another refresh, or revocation): look again.
            } else {
                self.await_other_refresh(&grant).await?;
            }
            grant = self.grants.get(&id).await?.ok_or(ProviderTokenError::Revoked)?;
        }
    }

    /// Refreshes at the provider (holding the lock) and writes the result into the grant;
    /// `None` when the grant changed since it was read.
    async fn refresh_upstream(
        &self,
        grant: &Versioned<Grant>,
        refresh_token: &SecretString,
    ) -> Result<Option<Grant>, ProviderTokenError> {
        let tokens = match self.upstream.refresh(refresh_token).await {
            Ok(tokens) => tokens,
            Err(UpstreamError::Rejected { error, .. }) => {
                tracing::warn!(%error, "the provider refused to refresh; revoking the grant");
                self.grants.revoke(&grant.value.id).await;
                return Err(ProviderTokenError::Revoked);
            }
            Err(e) => return Err(ProviderTokenError::Unavailable(e.to_string())),
        };
        // Providers that do not rotate keep the old refresh token valid.
        let refresh = tokens.refresh_token.as_ref().unwrap_or(refresh_token);
        let refreshed = Grant {
            upstream_sealed: self.grants.seal_upstream(
                &grant.value.id,
                &tokens.access_token,
                Some(refresh),
            )?,
            upstream_expires_at: tokens.expires_at,
            upstream_obtained_at: self.settings.clock.unix_now(),
            ..grant.value.clone()
        };
        // Compare-and-swap: a grant revoked meanwhile is not brought back.
        let swapped = self.grants.replace(grant.version, &refreshed).await?;
        Ok(swapped.then_some(refreshed))
    }

    /// Waits while another instance holds the grant's refresh lock: until the grant changes,
    /// or the lock goes without a change (the holder failed: retry later).
    async fn await_other_refresh(&self, grant: &Versioned<Grant>) -> Result<(), ProviderTokenError> {
        let deadline = tokio::time::Instant::now() + LOCK_TTL;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(WAIT_STEP).await;
            match self.grants.get(&grant.value.id).await? {
                None => return Err(ProviderTokenError::Revoked),
                Some(current) if current.version != grant.version => return Ok(()),
                Some(_) => {}
            }
            if self.store.get(REFRESH_LOCKS, &grant.value.id).await?.is_none() {
                // Released with the grant unchanged, unless it changed in between.
                return match self.grants.get(&grant.value.id).await? {
                    None => Err(ProviderTokenError::Revoked),
                    Some(current) if current.version != grant.version => Ok(()),
                    Some(_) => Err(ProviderTokenError::Unavailable("the provider refresh failed".into())),
                };
            }
        }
        Err(ProviderTokenError::Unavailable("timed out waiting for another refresh".into()))
    }

    /// The grant, its user still admitted by the allow-list — and, for providers checked again
    /// at refresh (GitHub: its tokens may be revoked, or the user leave an organisation, with
    /// nothing else to notice it), with the user's identity as the provider tells it now. A user
    /// the provider no longer vouches for, who became someone else, or whom the allow-list no
    /// longer admits, ends the grant. The fresh claims go into the tokens issued now; the stored
    /// grant keeps its own.
    pub(crate) async fn recheck_identity(&self, grant: Grant) -> Result<Grant, ProviderTokenError> {
        // Every provider: the identity held in the grant against today's allow-list, so that an
        // operator who narrows it does not wait for grants to expire.
        if !self.settings.allowed_users.allows(&grant.identity()) {
            tracing::info!("the allow-list no longer admits this user; revoking the grant");
            self.grants.revoke(&grant.id).await;
            return Err(ProviderTokenError::Revoked);
        }
        let Some((access, _)) = self.grants.open_upstream(&grant) else { return Ok(grant) };
        let identity = match self.upstream.identity_now(&access).await {
            Ok(None) => return Ok(grant),
            Ok(Some(identity)) => identity,
            Err(UpstreamError::Rejected { error, .. }) => {
                tracing::info!(%error, "the provider no longer accepts the user's token; revoking the grant");
                self.grants.revoke(&grant.id).await;
                return Err(ProviderTokenError::Revoked);
            }
            Err(e) => return Err(ProviderTokenError::Unavailable(e.to_string())),
        };
        if identity.subject != grant.subject || !self.settings.allowed_users.allows(&identity) {
            tracing::info!("the user is no longer allowed to sign in; revoking the grant");
            self.grants.revoke(&grant.id).await;
            return Err(ProviderTokenError::Revoked);
        }
        Ok(Grant {
            email: identity.email,
            email_verified: identity.email_verified,
            name: identity.name,
            username: identity.username,
            groups: identity.groups,
            ..grant
        })
    }
}
