//! The grant records (D1–D6's model): a grant — one per user, client and consent — owning the
//! user's sealed upstream tokens, its one-time authorization code and its refresh-token family,
//! and the refresh token's presented form. [`super::grants::Grants`] owns their life.

use serde::{Deserialize, Serialize};

use crate::upstream::UpstreamIdentity;

/// A user's authorization of a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub id: String,
    pub client_id: String,
    /// The upstream user id: the subject of our tokens.
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider verified `email`.
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    /// The user's handle at the provider.
    #[serde(default)]
    pub username: Option<String>,
    /// The user's groups or organisations at the provider.
    #[serde(default)]
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    pub resource: String,
    /// `UpstreamSecrets`, sealed with this grant's id as associated data.
    pub upstream_sealed: String,
    pub upstream_expires_at: Option<u64>,
    /// When the current upstream tokens were obtained (seconds since the epoch).
    #[serde(default)]
    pub upstream_obtained_at: u64,
    pub created_at: u64,
    /// When the record goes (seconds since the epoch): with its code while unredeemed, then
    /// after the refresh-token lifetime and a margin, renewed by refreshes (so a grant always
    /// outlives its family). `None` in records written before grants expired: renewed at their
    /// next refresh.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// A grant's refresh-token family (D4): the current token, and the one it replaced, which
/// stays usable for a short grace window after the rotation (a lost response). An older member
/// presented again means the family leaked, and the grant is revoked. Keyed by grant id.
///
/// A refresh token is `<grant id>.<generation>.<mac>`: the MAC (keyed, over the grant, the
/// generation and this family's random salt) proves the token was issued here, so the family
/// stores neither tokens nor their digests — only which generation is current — and a refresh
/// reads the grant and its family and swaps the family, with no record per token. A token
/// whose MAC fails is refused without touching the grant (a forgery naming a grant cannot
/// revoke it); a genuine token of an older generation is reuse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefreshFamily {
    /// Random, per family: tokens cannot be derived from the key alone.
    pub salt: String,
    /// The current generation.
    pub current: u64,
    /// The generation the current one replaced, usable within the grace window.
    pub previous: Option<u64>,
    /// When `previous` was replaced (milliseconds since the epoch): the grace window starts
    /// here and is not extended by using it.
    pub rotated_at_ms: u64,
    /// The scopes of the current token (a refresh may narrow them).
    pub scopes: Vec<String>,
}

/// Which member of its family a presented refresh token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FamilyMember {
    Current,
    Previous,
    /// A genuine token of an older generation: reuse.
    Retired,
}

/// A refresh token taken apart: its grant and generation, and its MAC (unchecked).
pub(crate) struct PresentedRefreshToken<'a> {
    pub grant_id: &'a str,
    generation: u64,
    mac: &'a str,
}

impl<'a> PresentedRefreshToken<'a> {
    /// The parts of `token`, if it has our shape: one spelling per token, so the generation
    /// is in canonical decimal (`0`, `17`; never `+0`, `00`).
    pub(crate) fn parse(token: &'a str) -> Option<Self> {
        let mut parts = token.split('.');
        let (grant_id, generation, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || grant_id.is_empty() || mac.is_empty() {
            return None;
        }
        Some(Self { grant_id, generation: canonical_decimal(generation)?, mac })
    }

    /// The generation it names.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The MAC it carries (unchecked).
    pub(crate) fn mac(&self) -> &'a str {
        self.mac
    }
}

/// `text` as a number, if it is written the one way we write numbers: ASCII digits, no sign, no
/// leading zero.
fn canonical_decimal(text: &str) -> Option<u64> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits || leading_zero {
        return None;
    }
    text.parse().ok()
}

/// A one-time authorization code, stored under its keyed digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthorizationCode {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: Vec<String>,
    /// Set by the one redemption that wins; a later redemption revokes the grant (D1).
    pub redeemed: bool,
}

impl Grant {
    /// The identity this grant was made for, as it was when last checked.
    pub(crate) fn identity(&self) -> UpstreamIdentity {
        UpstreamIdentity {
            subject: self.subject.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            name: self.name.clone(),
            username: self.username.clone(),
            groups: self.groups.clone(),
            claims: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_has_one_spelling() {
        let parsed = |t: &str| PresentedRefreshToken::parse(t).map(|p| p.generation);
        assert_eq!(parsed("g.0.m"), Some(0));
        assert_eq!(parsed("g.17.m"), Some(17));
        assert_eq!(parsed("g.18446744073709551615.m"), Some(u64::MAX));
        for other in [
            "g.+0.m",
            "g.00.m",
            "g.017.m",
            "g.-0.m",
            "g. 1.m",
            "g.1 .m",
            "g..m",
            "g.18446744073709551616.m",
            "g.٣.m",
        ] {
            assert_eq!(parsed(other), None, "{other}");
        }
        // Every generation we write reads back as itself.
        for generation in [0, 1, 9, 10, 99, 100, u64::MAX] {
            assert_eq!(parsed(&format!("g.{generation}.m")), Some(generation));
        }
    }
}
