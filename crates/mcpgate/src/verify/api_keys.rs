//! API keys (D10): long-lived bearer secrets the operator hands out (`mcpgate_…`), configured only as
//! their SHA-256 digest. [`ApiKeyVerifier`] finds a presented key by a digest keyed with a
//! per-process secret (so the lookup's timing says nothing about stored digests), then compares
//! the digest in constant time; the caller is `api_key:<name>` with the key's scopes.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{InvalidToken, TokenVerifier, VerifyError};
use crate::clock::Clock;
use crate::crypto::{constant_time_eq, random_bytes};
use crate::{CLIENT_KIND_CLAIM, ClientKind, Principal};

/// How every API key begins: it tells a key from a JWT at a glance, for people and for
/// secret scanners.
pub const API_KEY_PREFIX: &str = "mcpgate_";

/// How a digest is written in configuration.
const DIGEST_PREFIX: &str = "sha256:";

/// Longest key name: it ends up in headers and audit lines.
const MAX_NAME_CHARS: usize = 64;

/// Why API keys could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// The digest is not `sha256:` and 43 base64url characters.
    #[error("a digest is sha256: followed by 43 base64url characters (as `mcpgate apikey` prints)")]
    BadDigest,
    /// The name is empty, too long, or has characters other than letters, digits, `.`, `_`, `-`.
    #[error("API key name {0:?}: 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    /// Two keys have one name.
    #[error("two API keys are named {0:?}")]
    DuplicateName(String),
    /// Two names have one key.
    #[error("API keys {0:?} and {1:?} have the same digest")]
    DuplicateDigest(String, String),
}

/// The SHA-256 digest of an API key: what the configuration holds instead of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyDigest([u8; 32]);

impl ApiKeyDigest {
    /// The digest of `key`.
    pub fn of(key: &SecretString) -> Self {
        Self(Sha256::digest(key.expose_secret().as_bytes()).into())
    }

    /// Reads `sha256:<base64url>`, as [`ApiKeyDigest`]'s `Display` writes it.
    pub fn parse(text: &str) -> Result<Self, ApiKeyError> {
        let encoded = text.trim().strip_prefix(DIGEST_PREFIX).ok_or(ApiKeyError::BadDigest)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| ApiKeyError::BadDigest)?;
        bytes.try_into().map(Self).map_err(|_| ApiKeyError::BadDigest)
    }
}

impl std::fmt::Display for ApiKeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{DIGEST_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl std::fmt::Debug for ApiKeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeyDigest({self})")
    }
}

/// A new API key (`mcpgate_` and 256 random bits, base64url) and its digest.
pub fn new_api_key() -> (SecretString, ApiKeyDigest) {
    let key = SecretString::from(format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>())));
    let digest = ApiKeyDigest::of(&key);
    (key, digest)
}

/// One configured API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its name: the caller is `api_key:<name>`, in headers, policies and the audit trail.
    pub name: String,
    /// The digest of the key.
    pub digest: ApiKeyDigest,
    /// The scopes a request with it has.
    pub scopes: Vec<String>,
    /// When it stops working, in seconds since the Unix epoch; `None` for never.
    pub expires_at: Option<u64>,
}

/// Accepts the configured API keys as bearer tokens.
pub struct ApiKeyVerifier {
    /// By the digest keyed with `lookup`.
    keys: HashMap<[u8; 32], ApiKey>,
    lookup: hmac::Key,
    clock: Clock,
}

impl std::fmt::Debug for ApiKeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.keys.values().map(|k| k.name.as_str()).collect();
        f.debug_struct("ApiKeyVerifier").field("keys", &names).finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ApiKeyVerifier {
    /// A verifier of `keys`: names valid and distinct, digests distinct.
    ///
    /// ```
    /// use mcpgate::verify::{ApiKey, ApiKeyVerifier, TokenVerifier, new_api_key};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (key, digest) = new_api_key();
    /// let keys = ApiKeyVerifier::new(vec![ApiKey {
    ///     name: "nightly".into(), digest, scopes: vec!["mcp:read".into()], expires_at: None,
    /// }])
    /// .expect("valid keys");
    /// use secrecy::ExposeSecret;
    /// let caller = keys.verify(key.expose_secret()).await.expect("the key is accepted");
    /// assert_eq!(caller.subject(), "api_key:nightly");
    /// assert!(keys.verify("mcpgate_not-a-key").await.is_err());
    /// # }
    /// ```
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, ApiKeyError> {
        let lookup = hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>());
        let mut by_lookup: HashMap<[u8; 32], ApiKey> = HashMap::new();
        for key in keys {
            if !valid_name(&key.name) {
                return Err(ApiKeyError::BadName(key.name));
            }
            if by_lookup.values().any(|k| k.name == key.name) {
                return Err(ApiKeyError::DuplicateName(key.name));
            }
            let id = lookup_id(&lookup, &key.digest.0);
            if let Some(other) = by_lookup.get(&id) {
                return Err(ApiKeyError::DuplicateDigest(other.name.clone(), key.name));
            }
            by_lookup.insert(id, key);
        }
        Ok(Self { keys: by_lookup, lookup, clock: Clock::system() })
    }

    /// Checks expiry against `clock` instead of the system's.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn lookup_id(lookup: &hmac::Key, digest: &[u8; 32]) -> [u8; 32] {
    let mut id = [0u8; 32];
    id.copy_from_slice(hmac::sign(lookup, digest).as_ref());
    id
}

#[async_trait]
impl TokenVerifier for ApiKeyVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        if !token.starts_with(API_KEY_PREFIX) {
            return Err(InvalidToken::Unknown.into());
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let key = self.keys.get(&lookup_id(&self.lookup, &digest)).ok_or(InvalidToken::Unknown)?;
        // The keyed lookup found it; the digest itself is still compared in constant time.
        if !constant_time_eq(&key.digest.0, &digest) {
            return Err(InvalidToken::Unknown.into());
        }
        if key.expires_at.is_some_and(|at| self.clock.unix_now() >= at) {
            return Err(InvalidToken::Expired.into());
        }
        let mut claims = Map::new();
        claims.insert(CLIENT_KIND_CLAIM.to_owned(), Value::from(ClientKind::ApiKey.as_str()));
        claims.insert("api_key".to_owned(), Value::from(key.name.clone()));
        let mut principal = Principal::new(format!("api_key:{}", key.name))
            .with_scopes(key.scopes.clone())
            .with_claims(claims);
        if let Some(at) = key.expires_at {
            principal = principal.with_expires_at(at);
        }
        Ok(principal)
    }

    /// Checking costs two hashes, no more than a cache lookup would; and a key removed from a
    /// reloaded configuration must stop at once. Nothing to cache.
    fn max_cache_ttl(&self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, digest: ApiKeyDigest, expires_at: Option<u64>) -> ApiKey {
        ApiKey { name: name.into(), digest, scopes: vec!["mcp:read".into()], expires_at }
    }

    #[test]
    fn a_digest_reads_back_what_it_writes_and_nothing_else() {
        let (secret, digest) = new_api_key();
        assert!(secret.expose_secret().starts_with("mcpgate_"));
        assert_eq!(secret.expose_secret().len(), "mcpgate_".len() + 43);
        assert_eq!(ApiKeyDigest::parse(&digest.to_string()), Ok(digest.clone()));
        assert!(!digest.to_string().contains(&secret.expose_secret()[8..]));
        for bad in ["", "sha256:", "sha1:abc", "sha256:short", &digest.to_string().replace("sha256:", "")] {
            assert_eq!(ApiKeyDigest::parse(bad), Err(ApiKeyError::BadDigest), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_key_is_its_named_caller_until_it_expires() {
        let (live, live_digest) = new_api_key();
        let (old, old_digest) = new_api_key();
        let clock = Clock::adjustable();
        let now = clock.unix_now();
        let keys = ApiKeyVerifier::new(vec![
            key("ci", live_digest, Some(now + 60)),
            key("old", old_digest, Some(now)),
        ])
        .unwrap()
        .clock(clock.clone());
        let caller = keys.verify(live.expose_secret()).await.unwrap();
        assert_eq!(caller.subject(), "api_key:ci");
        assert_eq!(caller.client_kind(), ClientKind::ApiKey);
        assert_eq!(caller.scopes(), ["mcp:read".to_owned()]);
        assert_eq!(keys.verify(old.expose_secret()).await, Err(InvalidToken::Expired.into()));
        clock.advance(Duration::from_secs(60));
        assert_eq!(keys.verify(live.expose_secret()).await, Err(InvalidToken::Expired.into()));
        // Another key, a JWT, a key with a character changed: not recognised.
        let mut changed = live.expose_secret().to_owned();
        changed.pop();
        changed.push('x');
        for other in [new_api_key().0.expose_secret().to_owned(), "eyJ.a.b".to_owned(), changed] {
            assert_eq!(keys.verify(&other).await, Err(InvalidToken::Unknown.into()), "{other}");
        }
    }

    #[test]
    fn names_are_checked_and_neither_names_nor_keys_repeat() {
        let (_, digest) = new_api_key();
        let (_, other) = new_api_key();
        for name in ["", "has space", "a:b", &"x".repeat(65)] {
            let refused = ApiKeyVerifier::new(vec![key(name, digest.clone(), None)]).unwrap_err();
            assert!(matches!(refused, ApiKeyError::BadName(_)), "{name:?}");
        }
        let same_name = vec![key("ci", digest.clone(), None), key("ci", other.clone(), None)];
        assert_eq!(ApiKeyVerifier::new(same_name).unwrap_err(), ApiKeyError::DuplicateName("ci".into()));
        let same_key = vec![key("a", digest.clone(), None), key("b", digest, None)];
        assert_eq!(
            ApiKeyVerifier::new(same_key).unwrap_err(),
            ApiKeyError::DuplicateDigest("a".into(), "b".into())
        );
    }
}
