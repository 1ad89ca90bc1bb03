//! The root secret and the keys derived from it.
//!
//! One secret (≥ 32 random bytes, from `MCPGATE_SECRET` or a file) is the root; HKDF-SHA256
//! with a distinct label per purpose derives the signing, sealing, digest and cookie keys, so
//! that no key serves two purposes and every instance given the same secret agrees. Earlier
//! secrets may be listed after the current one: what they sealed, digested or signed still
//! opens, matches and verifies; new material always uses the current one.

use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretSlice};

/// The shortest root secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// No secret was given.
    #[error("no secret given: set one (generate it with `mcpgate keygen`)")]
    Missing,
    /// The secret is not base64 (standard or URL-safe, padded or not).
    #[error("secret #{0} is not base64: generate one with `mcpgate keygen`")]
    NotBase64(usize),
    /// The secret decodes to fewer than 32 bytes.
    #[error("secret #{0} has {1} bytes; at least 32 random bytes are required")]
    TooShort(usize, usize),
}

/// A root secret: random bytes, never printed.
pub struct RootSecret(SecretSlice<u8>);

impl std::fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootSecret([REDACTED])")
    }
}

impl RootSecret {
    /// A secret from raw bytes (at least 32).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyringError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(KeyringError::TooShort(1, bytes.len()));
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    /// A fresh random secret of 32 bytes.
    pub fn generate() -> Self {
        Self(SecretSlice::from(super::random_bytes::<32>().to_vec()))
    }

    /// The secret as `mcpgate keygen` prints it: URL-safe base64 without padding.
    pub fn to_base64(&self) -> secrecy::SecretString {
        URL_SAFE_NO_PAD.encode(self.0.expose_secret()).into()
    }

    fn decode(text: &str, position: usize) -> Result<Self, KeyringError> {
        let text = text.trim();
        let bytes = [&URL_SAFE_NO_PAD, &URL_SAFE, &STANDARD, &STANDARD_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or(KeyringError::NotBase64(position))?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(KeyringError::TooShort(position, bytes.len()));
        }
        Ok(Self(SecretSlice::from(bytes)))
    }
}

/// The purposes keys are derived for; each label is part of the HKDF info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Signing,
    Sealing,
    Digest,
    Cookie,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Signing => b"mcpgate/v1/token-signing",
            Purpose::Sealing => b"mcpgate/v1/sealing",
            Purpose::Digest => b"mcpgate/v1/token-digest",
            Purpose::Cookie => b"mcpgate/v1/cookie-signing",
        }
    }
}

/// 32 bytes of derived key material.
struct Len32;

impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// A derived key together with the id byte of the secret it came from.
pub(crate) struct DerivedKey {
    pub id: u8,
    pub bytes: SecretSlice<u8>,
}

/// The current root secret and any earlier ones, from which purpose keys are derived.
pub struct Keyring {
    secrets: Vec<RootSecret>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("secrets", &self.secrets.len()).finish()
    }
}

impl Keyring {
    /// A keyring whose current secret is `current`, with `previous` secrets (newest first)
    /// still accepted for opening, matching and verifying.
    pub fn new(current: RootSecret, previous: Vec<RootSecret>) -> Self {
        let mut secrets = vec![current];
        secrets.extend(previous);
        Self { secrets }
    }

    /// Parses a list of base64 secrets separated by commas or whitespace: the first is current,
    /// the rest are earlier ones. This is the format of `MCPGATE_SECRET`.
    pub fn parse(list: &str) -> Result<Self, KeyringError> {
        let mut secrets = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| RootSecret::decode(s, i + 1))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        let current = secrets.next().ok_or(KeyringError::Missing)?;
        Ok(Self::new(current, secrets.collect()))
    }

    /// Reads the secret list from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Self, KeyringError> {
        let value = std::env::var(name).map_err(|_| KeyringError::Missing)?;
        Self::parse(&value)
    }

    /// Reads the secret list from a file (surrounding whitespace ignored).
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyringError> {
        let value = std::fs::read_to_string(path).map_err(|_| KeyringError::Missing)?;
        Self::parse(&value)
    }

    /// The key for `purpose` from every secret, current first. The id byte tells sealed data
    /// which secret to try first (ids may collide; callers fall back to trying the others).
    pub(crate) fn derive(&self, purpose: Purpose) -> Vec<DerivedKey> {
        self.secrets
            .iter()
            .map(|secret| {
                let prk = Salt::new(HKDF_SHA256, b"mcpgate").extract(secret.0.expose_secret());
                let mut out = vec![0u8; 32];
                let mut id = [0u8; 32];
                // Both expansions have fixed, valid lengths (32 ≤ 255 × 32): they cannot fail.
                let _ = prk.expand(&[purpose.label()], Len32).and_then(|okm| okm.fill(&mut out));
                let _ = prk.expand(&[b"mcpgate/v1/key-id"], Len32).and_then(|okm| okm.fill(&mut id));
                DerivedKey { id: id[0], bytes: SecretSlice::from(out) }
            })
            .collect()
    }

    /// The current secret's token-signing seed (32 bytes), from which the authorization
    /// server derives its JWT signing key.
    pub fn signing_seed(&self) -> SecretSlice<u8> {
        self.derive(Purpose::Signing).swap_remove(0).bytes
    }

    /// The token-signing seeds of every secret, current first (earlier ones still verify).
    pub fn signing_seeds(&self) -> Vec<SecretSlice<u8>> {
        self.derive(Purpose::Signing).into_iter().map(|k| k.bytes).collect()
    }

    /// The sealer for records.
    pub fn sealer(&self) -> super::Sealer {
        super::Sealer::new(self.derive(Purpose::Sealing))
    }

    /// The keyed digest for codes, refresh tokens and client secrets.
    pub fn digester(&self) -> super::KeyedMac {
        super::KeyedMac::new(self.derive(Purpose::Digest))
    }

    /// The MAC that signs cookies.
    pub fn cookie_signer(&self) -> super::KeyedMac {
        super::KeyedMac::new(self.derive(Purpose::Cookie))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_b64(byte: u8) -> String {
        URL_SAFE_NO_PAD.encode([byte; 32])
    }

    #[test]
    fn parses_lists_and_refuses_short_or_garbled_secrets() {
        let ring = Keyring::parse(&format!("{} , {}\n", secret_b64(1), secret_b64(2))).unwrap();
        assert_eq!(ring.secrets.len(), 2);
        assert_eq!(Keyring::parse("").unwrap_err(), KeyringError::Missing);
        assert_eq!(Keyring::parse("not base64!").unwrap_err(), KeyringError::NotBase64(1));
        let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert_eq!(
            Keyring::parse(&format!("{},{short}", secret_b64(1))).unwrap_err(),
            KeyringError::TooShort(2, 16)
        );
        // Standard base64 with padding is accepted too.
        assert!(Keyring::parse(&STANDARD.encode([9u8; 48])).is_ok());
    }

    #[test]
    fn purposes_get_distinct_keys_and_secrets_agree_across_instances() {
        let a = Keyring::parse(&secret_b64(1)).unwrap();
        let b = Keyring::parse(&secret_b64(1)).unwrap();
        let other = Keyring::parse(&secret_b64(2)).unwrap();
        let key = |ring: &Keyring, p| ring.derive(p)[0].bytes.expose_secret().to_vec();
        let purposes = [Purpose::Signing, Purpose::Sealing, Purpose::Digest, Purpose::Cookie];
        for (i, p) in purposes.iter().enumerate() {
            assert_eq!(key(&a, *p), key(&b, *p), "same secret, same key");
            assert_ne!(key(&a, *p), key(&other, *p), "other secret, other key");
            for q in &purposes[i + 1..] {
                assert_ne!(key(&a, *p), key(&a, *q), "{p:?} and {q:?} share a key");
            }
        }
    }

    #[test]
    fn reads_the_list_from_a_file_or_the_environment() {
        let dir = std::env::temp_dir().join(format!("mcpgate-keyring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, format!("{}\n", secret_b64(5))).unwrap();
        let from_file = Keyring::from_file(&path).unwrap();
        let direct = Keyring::parse(&secret_b64(5)).unwrap();
        assert_eq!(from_file.digester().tag(b"x"), direct.digester().tag(b"x"));
        assert_eq!(Keyring::from_file(&dir.join("missing")).unwrap_err(), KeyringError::Missing);
        assert_eq!(
            Keyring::from_env("MCPGATE_TEST_SURELY_UNSET_VARIABLE").unwrap_err(),
            KeyringError::Missing
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_never_format() {
        let secret = RootSecret::decode(&secret_b64(0xAB), 1).unwrap();
        let encoded = secret_b64(0xAB);
        let ring = Keyring::new(secret, vec![]);
        for shown in
            [format!("{ring:?}"), format!("{:?}", ring.secrets[0]), format!("{:?}", ring.signing_seed())]
        {
            assert!(!shown.contains(&encoded), "{shown}");
            assert!(!shown.contains("171"), "{shown}"); // 0xAB as a decimal byte
            assert!(!shown.to_lowercase().contains("ab, ab"), "{shown}");
        }
    }
}
