//! [`Grants`]: the one owner of grant records — grants, their one-time authorization codes and
//! their refresh-token families. The endpoints say what they were asked; the rules of a grant's
//! life are here: a code redeemed once (a second redemption revokes the grant), a family rotated
//! atomically with a grace window for the replaced token (an older one revokes the grant), and a
//! revocation that takes everything of the grant with it, on every instance.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::grant::{AuthorizationCode, FamilyMember, Grant, PresentedRefreshToken, RefreshFamily};
use super::provider_token::ProviderTokenCache;
use super::revoked::RevokedGrants;
use crate::clock::Clock;
use crate::crypto::{KeyedMac, Sealer, random_token};
use crate::store::{Collection, Store, StoreError, StoreExt, Versioned};
use crate::upstream::{UpstreamIdentity, UpstreamTokens};

// Private: no other module reads or writes these records.
const GRANTS: Collection = Collection::new("grants");
const CODES: Collection = Collection::new("codes");
const FAMILIES: Collection = Collection::new("refresh_families");
/// Authorization codes live this long (D1: at most five minutes).
const CODE_TTL: Duration = Duration::from_secs(120);

/// The id of a grant that is never stored (a machine client's token, a redeemed identity
/// assertion): `<kind>.<random>`. Its tokens can be revoked like any grant's; it has no record,
/// refresh family or provider token. Stored grants' ids are base64url and hold no `.`.
pub(crate) fn unstored_grant_id(kind: &str) -> String {
    format!("{kind}.{}", random_token().expose_secret())
}

/// Whether `grant_id` is one [`unstored_grant_id`] made.
pub(crate) fn is_unstored(grant_id: &str) -> bool {
    grant_id.contains('.')
}

/// Lifetime of our refresh tokens (at least the access token's, D4).
pub(crate) const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How much longer than its refresh family a grant is kept. A refresh renews the grant (one
/// more write) only when less than [`REFRESH_TOKEN_TTL`] is left, so at most once per margin.
const GRANT_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// Why a code or refresh token gave nothing. The endpoint answers `invalid_grant` for each;
/// the variants say what happened to the grant.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GrantError {
    /// Not one of ours, expired, or issued to another client: nothing changed.
    #[error("unknown, expired or not this client's")]
    Unknown,
    /// Presented again after its one use (a code) or after its rotation's grace window (a
    /// refresh token): it leaked, and its grant is revoked.
    #[error("used again; its grant is revoked")]
    Replayed,
    /// Another request redeemed or rotated it at the same moment; a code's grant is revoked
    /// (one of the two was a thief), a refresh family is left to the winner.
    #[error("used concurrently")]
    Concurrent,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new grant is for: from the authorization request the user approved.
pub(crate) struct GrantRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub resource: &'a str,
    pub scopes: &'a [String],
}

/// A code found and not yet redeemed: checked by the endpoint, then [`Grants::redeem`]ed.
pub(crate) struct FoundCode {
    key: String,
    record: Versioned<AuthorizationCode>,
}

impl FoundCode {
    /// What the code was issued for.
    pub(crate) fn record(&self) -> &AuthorizationCode {
        &self.record.value
    }
}

/// A refresh token found to be its family's current one, or the previous one within the grace
/// window: the refresh may go ahead, and ends with [`Grants::rotate`].
pub(crate) struct Refresh {
    /// The grant, as read.
    pub grant: Versioned<Grant>,
    family: Versioned<RefreshFamily>,
    /// Whether the token presented is the replaced one, within its grace window.
    in_grace: bool,
}

impl Refresh {
    /// The scopes the current token carries (a refresh may narrow them).
    pub(crate) fn scopes(&self) -> &[String] {
        &self.family.value.scopes
    }
}

/// The upstream tokens as sealed at rest (D7).
#[derive(Serialize, Deserialize)]
struct UpstreamSecrets {
    access_token: String,
    refresh_token: Option<String>,
}

fn grant_aad(grant_id: &str) -> Vec<u8> {
    format!("grant:{grant_id}").into_bytes()
}

fn refresh_mac_input(grant_id: &str, generation: u64, salt: &str) -> Vec<u8> {
    format!("refresh\0{grant_id}\0{generation}\0{salt}").into_bytes()
}

/// The grants of one authorization server: the only code that reads or writes their records.
pub(crate) struct Grants {
    store: Arc<dyn Store>,
    /// Keys codes (stored under their digest) and refresh-token MACs.
    digester: KeyedMac,
    /// Seals the upstream tokens, bound to their grant.
    sealer: Sealer,
    /// Grants revoked anywhere, for the access-token verifier.
    revoked: RevokedGrants,
    /// Provider tokens already opened on this instance, forgotten when their grant goes.
    provider_tokens: ProviderTokenCache,
    /// How long a rotated-out refresh token still works (measured in milliseconds: the window
    /// is seconds long).
    refresh_grace: Duration,
    clock: Clock,
}

impl Grants {
    /// The grants kept in `store`, keyed and sealed with these keys.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        digester: KeyedMac,
        sealer: Sealer,
        revoked: RevokedGrants,
        refresh_grace: Duration,
        clock: Clock,
    ) -> Self {
        let provider_tokens = ProviderTokenCache::new();
        Self { store, digester, sealer, revoked, provider_tokens, refresh_grace, clock }
    }

    /// The list of revoked grants.
    pub(crate) fn revoked(&self) -> &RevokedGrants {
        &self.revoked
    }

    /// The provider tokens opened on this instance.
    pub(crate) fn provider_tokens(&self) -> &ProviderTokenCache {
        &self.provider_tokens
    }

    /// Creates a grant for `identity` with its upstream tokens sealed, and its one-time code.
    /// Returns the code, to hand to the client once.
    pub(crate) async fn create(
        &self,
        request: GrantRequest<'_>,
        identity: UpstreamIdentity,
        tokens: &UpstreamTokens,
    ) -> Result<SecretString, StoreError> {
        let id = random_token().expose_secret().to_owned();
        let upstream_sealed = self.seal_upstream(&id, &tokens.access_token, tokens.refresh_token.as_ref())?;
        let grant = Grant {
            id: id.clone(),
            client_id: request.client_id.to_owned(),
            subject: identity.subject,
            email: identity.email,
            email_verified: identity.email_verified,
            name: identity.name,
            username: identity.username,
            groups: identity.groups,
            scopes: request.scopes.to_vec(),
            resource: request.resource.to_owned(),
            upstream_sealed,
            upstream_expires_at: tokens.expires_at,
            upstream_obtained_at: self.clock.unix_now(),
            created_at: self.clock.unix_now(),
            // Unredeemed, a grant is reachable only through its code: it goes with it.
            expires_at: Some(self.clock.unix_now() + CODE_TTL.as_secs()),
        };
        self.store.put_json(GRANTS, &id, &grant, self.ttl(&grant)).await?;

        let code = random_token();
        let record = AuthorizationCode {
            grant_id: id,
            client_id: request.client_id.to_owned(),
            redirect_uri: request.redirect_uri.to_owned(),
            code_challenge: request.code_challenge.to_owned(),
            resource: request.resource.to_owned(),
            scopes: request.scopes.to_vec(),
            redeemed: false,
        };
        self.store.put_json(CODES, &self.code_key(code.expose_secret()), &record, Some(CODE_TTL)).await?;
        Ok(code)
    }

    fn code_key(&self, code: &str) -> String {
        self.digester.tag(code.as_bytes()).to_base64()
    }

    /// The unredeemed code `code` issued to `client_id`. A code presented after its redemption
    /// was stolen or replayed (D1): its grant is revoked, and the answer is [`GrantError::Replayed`].
    pub(crate) async fn find_code(&self, code: &str, client_id: &str) -> Result<FoundCode, GrantError> {
        let key = self.code_key(code);
        let record =
            self.store.get_json::<AuthorizationCode>(CODES, &key).await?.ok_or(GrantError::Unknown)?;
        if record.value.redeemed {
            tracing::warn!("authorization code replayed; revoking its grant");
            self.revoke(&record.value.grant_id).await;
            return Err(GrantError::Replayed);
        }
        if record.value.client_id != client_id {
            return Err(GrantError::Unknown);
        }
        Ok(FoundCode { key, record })
    }

    /// Redeems a found code, exactly once (compare-and-swap): its grant, or — when another
    /// redemption won the race — [`GrantError::Concurrent`] with the grant revoked.
    pub(crate) async fn redeem(&self, found: FoundCode) -> Result<Grant, GrantError> {
        let code = &found.record.value;
        // Read the grant before the swap: once the code is marked, a concurrent replay may
        // revoke the grant, and the winner must still answer (its tokens then die with it).
        let grant = self.store.get_json::<Grant>(GRANTS, &code.grant_id).await?.ok_or(GrantError::Unknown)?;
        let redeemed = AuthorizationCode { redeemed: true, ..code.clone() };
        // The redeemed marker stays for the rest of the code's life, to recognise replays.
        let swapped = self
            .store
            .compare_and_swap_json(CODES, &found.key, found.record.version, &redeemed, Some(CODE_TTL))
            .await?;
        if swapped.is_none() {
            tracing::warn!("authorization code redeemed concurrently; revoking its grant");
            self.revoke(&code.grant_id).await;
            return Err(GrantError::Concurrent);
        }
        // Redeemed, the grant lives as long as the tokens it will issue. Nothing else writes a
        // grant before its redemption, so a failed swap means a replay revoked it just now.
        Ok(self.renew(&grant).await?.unwrap_or(grant.value))
    }

    /// The store TTL matching the grant's `expires_at`.
    fn ttl(&self, grant: &Grant) -> Option<Duration> {
        let now = self.clock.unix_now();
        grant.expires_at.map(|at| Duration::from_secs(at.saturating_sub(now).max(1)))
    }

    /// Extends the grant's life to the refresh-token lifetime and the margin, over the version
    /// read; the renewed grant, or `None` when it changed or went meanwhile.
    async fn renew(&self, grant: &Versioned<Grant>) -> Result<Option<Grant>, StoreError> {
        let life = REFRESH_TOKEN_TTL + GRANT_MARGIN;
        let renewed =
            Grant { expires_at: Some(self.clock.unix_now() + life.as_secs()), ..grant.value.clone() };
        let swapped = self
            .store
            .compare_and_swap_json(GRANTS, &renewed.id, grant.version, &renewed, Some(life))
            .await?;
        Ok(swapped.map(|_| renewed))
    }

    /// Whether less than a refresh token's lifetime is left to the grant.
    fn needs_renewal(&self, grant: &Grant) -> bool {
        let due = self.clock.unix_now() + REFRESH_TOKEN_TTL.as_secs();
        grant.expires_at.is_none_or(|at| at < due)
    }

    /// Starts the grant's refresh-token family with `scopes`: its first refresh token.
    pub(crate) async fn start_family(
        &self,
        grant: &Grant,
        scopes: &[String],
    ) -> Result<SecretString, StoreError> {
        let family = RefreshFamily {
            salt: random_token().expose_secret().to_owned(),
            current: 0,
            previous: None,
            rotated_at_ms: self.clock.unix_now_ms(),
            scopes: scopes.to_vec(),
        };
        self.store.put_json(FAMILIES, &grant.id, &family, Some(REFRESH_TOKEN_TTL)).await?;
        Ok(self.refresh_token(&grant.id, &family, family.current))
    }

    /// The grant and family of a refresh token `client_id` presents, when it may be used now:
    /// its family's current token, or the one it replaced within the grace window (D4). A
    /// genuine older token means the family leaked: the grant is revoked and the answer is
    /// [`GrantError::Replayed`]. A token this family did not issue (its MAC fails) leaves the
    /// grant alone — a forgery naming a grant cannot revoke it.
    pub(crate) async fn refresh(&self, token: &str, client_id: &str) -> Result<Refresh, GrantError> {
        let presented = PresentedRefreshToken::parse(token).ok_or(GrantError::Unknown)?;
        let grant =
            self.store.get_json::<Grant>(GRANTS, presented.grant_id).await?.ok_or(GrantError::Unknown)?;
        if grant.value.client_id != client_id {
            return Err(GrantError::Unknown);
        }
        let family = self
            .store
            .get_json::<RefreshFamily>(FAMILIES, &grant.value.id)
            .await?
            .ok_or(GrantError::Unknown)?;
        let member = self.family_member(&family.value, &presented).ok_or(GrantError::Unknown)?;
        let grace = u64::try_from(self.refresh_grace.as_millis()).unwrap_or(u64::MAX);
        let in_grace = member == FamilyMember::Previous
            && self.clock.unix_now_ms().saturating_sub(family.value.rotated_at_ms) <= grace;
        if member != FamilyMember::Current && !in_grace {
            tracing::warn!("a rotated-out refresh token was used again; revoking its grant");
            self.revoke(&grant.value.id).await;
            return Err(GrantError::Replayed);
        }
        Ok(Refresh { grant, family, in_grace })
    }

    /// Ends a refresh: the family moves on a generation (compare-and-swap; of concurrent
    /// refreshes with one token one wins, the others get [`GrantError::Concurrent`]), its new
    /// token carrying `scopes`. A token used within the grace window replaces the current one,
    /// which its client never received, and the window keeps its start.
    pub(crate) async fn rotate(
        &self,
        refresh: &Refresh,
        scopes: &[String],
    ) -> Result<SecretString, GrantError> {
        let family = &refresh.family.value;
        let next = if refresh.in_grace {
            RefreshFamily { current: family.current + 1, scopes: scopes.to_vec(), ..family.clone() }
        } else {
            RefreshFamily {
                current: family.current + 1,
                previous: Some(family.current),
                rotated_at_ms: self.clock.unix_now_ms(),
                scopes: scopes.to_vec(),
                salt: family.salt.clone(),
            }
        };
        let grant_id = &refresh.grant.value.id;
        let swapped = self
            .store
            .compare_and_swap_json(FAMILIES, grant_id, refresh.family.version, &next, Some(REFRESH_TOKEN_TTL))
            .await?;
        swapped.ok_or(GrantError::Concurrent)?;
        // The family now lives a refresh token's lifetime: the grant must outlive it. The
        // rotation has happened, so a failed renewal (the grant changed or went meanwhile, the
        // store failed) does not fail the refresh: it is left to the next one.
        if self.needs_renewal(&refresh.grant.value) {
            match self.renew(&refresh.grant).await {
                Ok(Some(_)) => {}
                Ok(None) => tracing::debug!("the grant changed during a refresh; renewing it waits"),
                Err(e) => tracing::warn!(error = %e, "renewing a grant failed; the next refresh retries"),
            }
        }
        Ok(self.refresh_token(grant_id, &next, next.current))
    }

    /// The grant a refresh token belongs to, when the token is one its family issued (of any
    /// generation: revoking an old token still ends the grant).
    pub(crate) async fn of_refresh_token(&self, token: &str) -> Result<Option<Grant>, StoreError> {
        let Some(presented) = PresentedRefreshToken::parse(token) else { return Ok(None) };
        let Some(grant) = self.store.get_json::<Grant>(GRANTS, presented.grant_id).await? else {
            return Ok(None);
        };
        let Some(family) = self.store.get_json::<RefreshFamily>(FAMILIES, presented.grant_id).await? else {
            return Ok(None);
        };
        Ok(self.family_member(&family.value, &presented).map(|_| grant.value))
    }

    /// The grant `grant_id`, with its version for [`Grants::replace`].
    pub(crate) async fn get(&self, grant_id: &str) -> Result<Option<Versioned<Grant>>, StoreError> {
        self.store.get_json::<Grant>(GRANTS, grant_id).await
    }

    /// Writes `grant` over the version read; `false` when it changed meanwhile (or was revoked,
    /// which this never undoes).
    pub(crate) async fn replace(&self, version: u64, grant: &Grant) -> Result<bool, StoreError> {
        let ttl = self.ttl(grant);
        Ok(self.store.compare_and_swap_json(GRANTS, &grant.id, version, grant, ttl).await?.is_some())
    }

    /// Ends a grant: its record and its refresh family go, so its refresh tokens and codes
    /// lead nowhere, and its access tokens are refused from now on: on this instance at once, on
    /// the others sharing the store within a second.
    pub(crate) async fn revoke(&self, grant_id: &str) {
        self.provider_tokens.forget(grant_id);
        if let Err(e) = self.revoked.revoke(grant_id).await {
            tracing::error!(error = %e, "publishing a revocation to other instances failed");
        }
        for collection in [GRANTS, FAMILIES] {
            if let Err(e) = self.store.delete(collection, grant_id).await {
                tracing::error!(error = %e, "revoking a grant failed");
            }
        }
    }

    /// The refresh token of `generation` in the family of `grant_id`.
    fn refresh_token(&self, grant_id: &str, family: &RefreshFamily, generation: u64) -> SecretString {
        let mac = self.digester.tag(&refresh_mac_input(grant_id, generation, &family.salt)).to_base64();
        SecretString::from(format!("{grant_id}.{generation}.{mac}"))
    }

    /// Which member of `family` a presented token is; `None` when it is not a token this
    /// family issued (its MAC fails under every secret, compared in constant time).
    fn family_member(
        &self,
        family: &RefreshFamily,
        token: &PresentedRefreshToken<'_>,
    ) -> Option<FamilyMember> {
        let input = refresh_mac_input(token.grant_id, token.generation(), &family.salt);
        let genuine =
            self.digester.candidates(&input).iter().any(|mac| {
                crate::crypto::constant_time_eq(mac.to_base64().as_bytes(), token.mac().as_bytes())
            });
        if !genuine || token.generation() > family.current {
            return None;
        }
        Some(if token.generation() == family.current {
            FamilyMember::Current
        } else if Some(token.generation()) == family.previous {
            FamilyMember::Previous
        } else {
            FamilyMember::Retired
        })
    }

    /// The upstream tokens, sealed for the grant `grant_id` (its id is the associated data, so
    /// a sealed value cannot be moved to another grant).
    pub(crate) fn seal_upstream(
        &self,
        grant_id: &str,
        access: &SecretString,
        refresh: Option<&SecretString>,
    ) -> Result<String, StoreError> {
        let secrets = UpstreamSecrets {
            access_token: access.expose_secret().to_owned(),
            refresh_token: refresh.map(|t| t.expose_secret().to_owned()),
        };
        let plain = secrecy::zeroize::Zeroizing::new(
            serde_json::to_vec(&secrets).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        Ok(URL_SAFE_NO_PAD.encode(self.sealer.seal(&grant_aad(grant_id), &plain)))
    }

    /// The upstream tokens of a grant, opened: the access token and the refresh token.
    pub(crate) fn open_upstream(&self, grant: &Grant) -> Option<(SecretString, Option<SecretString>)> {
        let sealed = URL_SAFE_NO_PAD.decode(&grant.upstream_sealed).ok()?;
        let plain = self.sealer.open(&grant_aad(&grant.id), &sealed).ok()?;
        let secrets: UpstreamSecrets = serde_json::from_slice(plain.expose_secret()).ok()?;
        Some((secrets.access_token.into(), secrets.refresh_token.map(Into::into)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keyring, RootSecret};
    use crate::store::MemoryStore;

    const GRACE: Duration = Duration::from_millis(300);

    fn grants() -> Grants {
        grants_in(Arc::new(MemoryStore::new()))
    }

    fn grants_in(store: Arc<dyn Store>) -> Grants {
        let keyring = Keyring::new(RootSecret::generate(), vec![]);
        let clock = Clock::adjustable();
        let hold = (Duration::from_secs(3600), Duration::from_secs(60));
        let revoked = RevokedGrants::new(store.clone(), hold.0, hold.1, clock.clone());
        Grants::new(store, keyring.digester(), keyring.sealer(), revoked, GRACE, clock)
    }

    fn identity() -> UpstreamIdentity {
        UpstreamIdentity {
            subject: "ada".into(),
            email: None,
            email_verified: false,
            name: None,
            username: None,
            groups: vec![],
            claims: Default::default(),
        }
    }

    /// A new grant for client `cli` and its code.
    async fn granted(grants: &Grants) -> SecretString {
        let tokens = UpstreamTokens {
            access_token: "provider-access".to_owned().into(),
            refresh_token: Some("provider-refresh".to_owned().into()),
            expires_at: None,
            id_token: None,
            scope: None,
            response: Default::default(),
        };
        let scopes = ["mcp".to_owned()];
        let request = GrantRequest {
            client_id: "cli",
            redirect_uri: "http://127.0.0.1:9/cb",
            code_challenge: "challenge",
            resource: "https://mcp.example.com/mcp",
            scopes: &scopes,
        };
        grants.create(request, identity(), &tokens).await.unwrap()
    }

    /// A grant redeemed, and its family's first refresh token.
    async fn with_family(grants: &Grants) -> (Grant, SecretString) {
        let code = granted(grants).await;
        let found = grants.find_code(code.expose_secret(), "cli").await.unwrap();
        let grant = grants.redeem(found).await.unwrap();
        let refresh = grants.start_family(&grant, &grant.scopes).await.unwrap();
        (grant, refresh)
    }

    /// The refresh token `token` with its MAC changed (still of our shape).
    fn forged(token: &SecretString) -> String {
        let (head, _) = token.expose_secret().rsplit_once('.').unwrap();
        format!("{head}.AAAA")
    }

    async fn is_gone(grants: &Grants, grant_id: &str) -> bool {
        grants.get(grant_id).await.unwrap().is_none() && grants.revoked().contains(grant_id)
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_and_a_second_redemption_revokes_its_grant() {
        let grants = grants();
        let code = granted(&grants).await;
        let found = grants.find_code(code.expose_secret(), "cli").await.unwrap();
        assert_eq!(found.record().scopes, ["mcp"]);
        let grant = grants.redeem(found).await.unwrap();
        assert_eq!(grant.subject, "ada");
        assert!(matches!(grants.find_code(code.expose_secret(), "cli").await, Err(GrantError::Replayed)));
        assert!(is_gone(&grants, &grant.id).await);
    }

    #[tokio::test]
    async fn of_two_redemptions_found_together_one_wins_and_the_grant_is_revoked() {
        let grants = grants();
        let code = granted(&grants).await;
        let first = grants.find_code(code.expose_secret(), "cli").await.unwrap();
        let second = grants.find_code(code.expose_secret(), "cli").await.unwrap();
        let grant = grants.redeem(first).await.unwrap();
        assert!(matches!(grants.redeem(second).await, Err(GrantError::Concurrent)));
        assert!(is_gone(&grants, &grant.id).await);
    }

    #[tokio::test]
    async fn another_clients_code_or_an_unknown_one_changes_nothing() {
        let grants = grants();
        let code = granted(&grants).await;
        assert!(matches!(grants.find_code(code.expose_secret(), "other").await, Err(GrantError::Unknown)));
        assert!(matches!(grants.find_code("no-such-code", "cli").await, Err(GrantError::Unknown)));
        // Still redeemable by its own client.
        let found = grants.find_code(code.expose_secret(), "cli").await.unwrap();
        grants.redeem(found).await.unwrap();
    }

    #[tokio::test]
    async fn a_family_rotates_and_the_replaced_token_works_only_within_the_grace_window() {
        let grants = grants();
        let (grant, first) = with_family(&grants).await;
        let refresh = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        assert!(!refresh.in_grace);
        let second = grants.rotate(&refresh, &grant.scopes).await.unwrap();
        // The replaced token, at once: in grace, and it replaces the unreceived current token.
        let retry = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        assert!(retry.in_grace);
        let third = grants.rotate(&retry, &grant.scopes).await.unwrap();
        assert!(matches!(grants.refresh(second.expose_secret(), "cli").await, Err(GrantError::Replayed)));
        assert!(is_gone(&grants, &grant.id).await, "a genuine older token is reuse: {third:?}");
    }

    #[tokio::test]
    async fn the_replaced_token_after_the_grace_window_revokes_the_grant() {
        let grants = grants();
        let (grant, first) = with_family(&grants).await;
        let refresh = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        let second = grants.rotate(&refresh, &grant.scopes).await.unwrap();
        grants.clock.advance(GRACE + Duration::from_millis(1));
        assert!(matches!(grants.refresh(first.expose_secret(), "cli").await, Err(GrantError::Replayed)));
        assert!(is_gone(&grants, &grant.id).await);
        assert!(matches!(grants.refresh(second.expose_secret(), "cli").await, Err(GrantError::Unknown)));
    }

    #[tokio::test]
    async fn a_forged_or_foreign_refresh_token_is_refused_and_leaves_the_grant_alone() {
        let grants = grants();
        let (grant, first) = with_family(&grants).await;
        assert!(matches!(grants.refresh(&forged(&first), "cli").await, Err(GrantError::Unknown)));
        assert!(matches!(grants.refresh(first.expose_secret(), "other").await, Err(GrantError::Unknown)));
        let future = first.expose_secret().replacen(".0.", ".7.", 1);
        assert!(matches!(grants.refresh(&future, "cli").await, Err(GrantError::Unknown)));
        assert!(grants.get(&grant.id).await.unwrap().is_some());
        assert!(grants.refresh(first.expose_secret(), "cli").await.is_ok());
    }

    #[tokio::test]
    async fn of_two_rotations_of_one_token_one_wins() {
        let grants = grants();
        let (grant, first) = with_family(&grants).await;
        let a = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        let b = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        grants.rotate(&a, &grant.scopes).await.unwrap();
        assert!(matches!(grants.rotate(&b, &grant.scopes).await, Err(GrantError::Concurrent)));
        assert!(grants.get(&grant.id).await.unwrap().is_some(), "a lost race is not reuse");
    }

    #[tokio::test]
    async fn revocation_takes_the_grant_its_family_and_its_opened_provider_token() {
        let grants = grants();
        let (grant, first) = with_family(&grants).await;
        assert_eq!(grants.of_refresh_token(first.expose_secret()).await.unwrap().unwrap().id, grant.id);
        let (access, refresh) = grants.open_upstream(&grant).unwrap();
        assert_eq!(access.expose_secret(), "provider-access");
        assert_eq!(refresh.unwrap().expose_secret(), "provider-refresh");
        grants.provider_tokens().keep(&grant, access);
        assert!(grants.provider_tokens().fresh(&grant.id, grants.clock.unix_now()).is_some());
        grants.revoke(&grant.id).await;
        assert!(is_gone(&grants, &grant.id).await);
        assert!(
            grants.provider_tokens().fresh(&grant.id, grants.clock.unix_now()).is_none(),
            "the opened provider token is forgotten"
        );
        assert!(grants.of_refresh_token(first.expose_secret()).await.unwrap().is_none());
        assert!(matches!(grants.refresh(first.expose_secret(), "cli").await, Err(GrantError::Unknown)));
    }

    #[tokio::test]
    async fn sealed_provider_tokens_open_only_for_their_own_grant() {
        let grants = grants();
        let (grant, _) = with_family(&grants).await;
        let moved = Grant { id: "another-grant".into(), ..grant.clone() };
        assert!(grants.open_upstream(&moved).is_none());
    }

    /// A memory store that remembers the TTL of each record's last write.
    #[derive(Default)]
    struct TtlRecorder {
        inner: MemoryStore,
        ttls: std::sync::Mutex<std::collections::HashMap<(&'static str, String), Option<Duration>>>,
        writes: std::sync::atomic::AtomicUsize,
    }

    impl TtlRecorder {
        fn note(&self, collection: Collection, key: &str, ttl: Option<Duration>) {
            self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.ttls.lock().unwrap().insert((collection.name(), key.to_owned()), ttl);
        }

        fn ttl(&self, collection: Collection, key: &str) -> Option<Duration> {
            self.ttls.lock().unwrap()[&(collection.name(), key.to_owned())]
        }

        fn writes(&self) -> usize {
            self.writes.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    #[async_trait::async_trait]
    impl Store for TtlRecorder {
        async fn get(&self, c: Collection, k: &str) -> Result<Option<Versioned<Vec<u8>>>, StoreError> {
            self.inner.get(c, k).await
        }
        async fn put(
            &self,
            c: Collection,
            k: &str,
            v: &[u8],
            ttl: Option<Duration>,
        ) -> Result<u64, StoreError> {
            self.note(c, k, ttl);
            self.inner.put(c, k, v, ttl).await
        }
        async fn put_if_absent(
            &self,
            c: Collection,
            k: &str,
            v: &[u8],
            ttl: Option<Duration>,
        ) -> Result<Option<u64>, StoreError> {
            self.note(c, k, ttl);
            self.inner.put_if_absent(c, k, v, ttl).await
        }
        async fn delete(&self, c: Collection, k: &str) -> Result<bool, StoreError> {
            self.inner.delete(c, k).await
        }
        async fn delete_if_version(&self, c: Collection, k: &str, expected: u64) -> Result<bool, StoreError> {
            self.inner.delete_if_version(c, k, expected).await
        }
        async fn take(&self, c: Collection, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.take(c, k).await
        }
        async fn compare_and_swap(
            &self,
            c: Collection,
            k: &str,
            expected: u64,
            v: &[u8],
            ttl: Option<Duration>,
        ) -> Result<Option<u64>, StoreError> {
            self.note(c, k, ttl);
            self.inner.compare_and_swap(c, k, expected, v, ttl).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.inner.ping().await
        }
    }

    #[tokio::test]
    async fn an_unredeemed_grant_goes_with_its_code_and_a_redeemed_one_outlives_its_family() {
        let store = Arc::new(TtlRecorder::default());
        let grants = grants_in(store.clone());
        let code = granted(&grants).await;
        let found = grants.find_code(code.expose_secret(), "cli").await.unwrap();
        let grant_id = found.record().grant_id.clone();
        assert_eq!(store.ttl(GRANTS, &grant_id), Some(CODE_TTL), "abandoned sign-ins do not pile up");
        let unredeemed = grants.get(&grant_id).await.unwrap().unwrap().value;
        assert_eq!(unredeemed.expires_at, Some(grants.clock.unix_now() + CODE_TTL.as_secs()));

        let grant = grants.redeem(found).await.unwrap();
        grants.start_family(&grant, &grant.scopes).await.unwrap();
        let (grant_ttl, family_ttl) =
            (store.ttl(GRANTS, &grant_id).unwrap(), store.ttl(FAMILIES, &grant_id).unwrap());
        assert_eq!(grant_ttl, REFRESH_TOKEN_TTL + GRANT_MARGIN);
        assert!(grant_ttl > family_ttl);
        let stored = grants.get(&grant_id).await.unwrap().unwrap().value;
        assert_eq!(stored.expires_at, grant.expires_at, "redeem answers the renewed grant");
        assert_eq!(stored.expires_at, Some(grants.clock.unix_now() + grant_ttl.as_secs()));
    }

    #[tokio::test]
    async fn a_refresh_renews_its_grant_only_when_less_than_a_refresh_lifetime_is_left() {
        let store = Arc::new(TtlRecorder::default());
        let grants = grants_in(store.clone());
        let (grant, first) = with_family(&grants).await;

        let before = store.writes();
        let refresh = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        let second = grants.rotate(&refresh, &grant.scopes).await.unwrap();
        assert_eq!(store.writes(), before + 1, "only the family is written");
        assert_eq!(grants.get(&grant.id).await.unwrap().unwrap().value.expires_at, grant.expires_at);

        // A day and a second later the grant has less than a refresh lifetime left.
        grants.clock.advance(GRANT_MARGIN + Duration::from_secs(1));
        let refresh = grants.refresh(second.expose_secret(), "cli").await.unwrap();
        grants.rotate(&refresh, &grant.scopes).await.unwrap();
        assert_eq!(store.writes(), before + 3, "the family and the grant");
        let renewed = grants.get(&grant.id).await.unwrap().unwrap().value;
        let life = (REFRESH_TOKEN_TTL + GRANT_MARGIN).as_secs();
        assert_eq!(renewed.expires_at, Some(grants.clock.unix_now() + life));
        assert_eq!(store.ttl(GRANTS, &grant.id), Some(REFRESH_TOKEN_TTL + GRANT_MARGIN));
    }

    #[tokio::test]
    async fn a_grant_stored_without_expiry_gets_one_at_its_next_refresh() {
        let store = Arc::new(TtlRecorder::default());
        let grants = grants_in(store.clone());
        let (grant, first) = with_family(&grants).await;
        // As an older release wrote it: no expiry field, no TTL.
        let mut old = serde_json::to_value(&grant).unwrap();
        old.as_object_mut().unwrap().remove("expires_at");
        store.put_json(GRANTS, &grant.id, &old, None).await.unwrap();
        assert_eq!(grants.get(&grant.id).await.unwrap().unwrap().value.expires_at, None);

        let refresh = grants.refresh(first.expose_secret(), "cli").await.unwrap();
        grants.rotate(&refresh, &grant.scopes).await.unwrap();
        assert_eq!(store.ttl(GRANTS, &grant.id), Some(REFRESH_TOKEN_TTL + GRANT_MARGIN));
        assert!(grants.get(&grant.id).await.unwrap().unwrap().value.expires_at.is_some());
    }

    #[tokio::test]
    async fn a_provider_token_refresh_keeps_the_grants_expiry() {
        let store = Arc::new(TtlRecorder::default());
        let grants = grants_in(store.clone());
        let (grant, _) = with_family(&grants).await;
        let read = grants.get(&grant.id).await.unwrap().unwrap();
        grants.clock.advance(Duration::from_secs(3600));
        assert!(grants.replace(read.version, &read.value).await.unwrap());
        let left = REFRESH_TOKEN_TTL + GRANT_MARGIN - Duration::from_secs(3600);
        assert_eq!(store.ttl(GRANTS, &grant.id), Some(left));
    }
}
