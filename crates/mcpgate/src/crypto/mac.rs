//! Keyed MACs with rotation: HMAC-SHA256 under a derived key. Used as the keyed digest of codes,
//! refresh tokens and client secrets (the store holds only these), and to sign cookies.
//! New tags use the current secret; [`KeyedMac::verify`] and [`KeyedMac::candidates`] accept
//! every secret of the keyring.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;

use super::keys::DerivedKey;

/// A MAC tag: 32 bytes, shown as URL-safe base64 (it is not secret: it is what is stored).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MacTag([u8; 32]);

impl MacTag {
    /// The tag as URL-safe base64: the form used as a store key.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for MacTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MacTag({})", self.to_base64())
    }
}

/// HMAC-SHA256 under one purpose's keys, current first.
pub struct KeyedMac {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for KeyedMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedMac").field("keys", &self.keys.len()).finish()
    }
}

fn tag_of(key: &hmac::Key, data: &[u8]) -> MacTag {
    let mut out = [0u8; 32];
    out.copy_from_slice(hmac::sign(key, data).as_ref());
    MacTag(out)
}

impl KeyedMac {
    pub(crate) fn new(derived: Vec<DerivedKey>) -> Self {
        let keys =
            derived.iter().map(|k| hmac::Key::new(hmac::HMAC_SHA256, k.bytes.expose_secret())).collect();
        Self { keys }
    }

    /// The tag of `data` under the current secret.
    pub fn tag(&self, data: &[u8]) -> MacTag {
        tag_of(&self.keys[0], data)
    }

    /// The tags of `data` under every secret, current first: look a record up by each in turn
    /// to find what was stored before a rotation.
    pub fn candidates(&self, data: &[u8]) -> Vec<MacTag> {
        self.keys.iter().map(|k| tag_of(k, data)).collect()
    }

    /// Whether `tag` is the tag of `data` under any secret; compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        self.keys.iter().any(|k| hmac::verify(k, data, tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto::{Keyring, RootSecret};

    fn secret(byte: u8) -> RootSecret {
        RootSecret::from_bytes(vec![byte; 32]).unwrap()
    }

    #[test]
    fn digests_are_keyed_and_survive_rotation() {
        let before = Keyring::new(secret(1), vec![]);
        let stored = before.digester().tag(b"refresh-token");
        assert_eq!(stored, Keyring::new(secret(1), vec![]).digester().tag(b"refresh-token"));
        assert_ne!(stored, Keyring::new(secret(3), vec![]).digester().tag(b"refresh-token"));
        assert_ne!(stored, before.cookie_signer().tag(b"refresh-token"), "purposes differ");

        let after = Keyring::new(secret(2), vec![secret(1)]);
        let candidates = after.digester().candidates(b"refresh-token");
        assert_eq!(candidates.len(), 2);
        assert_ne!(candidates[0], stored, "new digests use the new secret");
        assert_eq!(candidates[1], stored, "the old digest is still found");
        assert!(after.digester().verify(b"refresh-token", stored.as_bytes()));
        assert!(!after.digester().verify(b"other", stored.as_bytes()));
    }
}
