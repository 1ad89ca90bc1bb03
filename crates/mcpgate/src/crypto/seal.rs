//! Sealing: AES-256-GCM with a random 96-bit nonce and the record's id as associated data, so
//! a sealed value copied into another record does not open. Layout:
//! `key id (1) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretSlice};

use super::keys::DerivedKey;
use super::random_bytes;

const TAG_LEN: usize = 16;

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Too short, tampered with, sealed for another record, or under a secret no longer known.
    #[error("sealed value does not open")]
    DoesNotOpen,
}

struct SealingKey {
    id: u8,
    key: LessSafeKey,
}

/// Seals under the current secret; opens under any secret of the keyring.
pub struct Sealer {
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("keys", &self.keys.len()).finish()
    }
}

impl Sealer {
    pub(crate) fn new(derived: Vec<DerivedKey>) -> Self {
        let keys = derived
            .into_iter()
            .filter_map(|k| {
                let unbound = UnboundKey::new(&AES_256_GCM, k.bytes.expose_secret()).ok()?;
                Some(SealingKey { id: k.id, key: LessSafeKey::new(unbound) })
            })
            .collect();
        Self { keys }
    }

    /// Seals `plaintext` for the record `record_id`.
    pub fn seal(&self, record_id: &[u8], plaintext: &[u8]) -> Vec<u8> {
        // The keyring always holds a current secret, so keys[0] exists.
        let current = &self.keys[0];
        let nonce = random_bytes::<NONCE_LEN>();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(current.id);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        // Sealing fails only for inputs beyond GCM's 64 GiB limit, far above any record.
        if current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(record_id), &mut body)
            .is_err()
        {
            return Vec::new();
        }
        out.extend_from_slice(&body);
        out
    }

    /// Opens a value sealed for `record_id`.
    pub fn open(&self, record_id: &[u8], sealed: &[u8]) -> Result<SecretSlice<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (id, rest) = (sealed[0], &sealed[1..]);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::DoesNotOpen)?;
        // The key whose id matches first, then the others (one-byte ids can collide).
        let ordered = self.keys.iter().filter(|k| k.id == id).chain(self.keys.iter().filter(|k| k.id != id));
        for key in ordered {
            let mut buffer = body.to_vec();
            if let Ok(plain) =
                key.key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(record_id), &mut buffer)
            {
                let len = plain.len();
                buffer.truncate(len);
                return Ok(SecretSlice::from(buffer));
            }
        }
        Err(SealError::DoesNotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keyring, RootSecret};

    fn ring(byte: u8) -> RootSecret {
        RootSecret::from_bytes(vec![byte; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_binding_to_the_record() {
        let sealer = Keyring::new(ring(1), vec![]).sealer();
        let sealed = sealer.seal(b"grant:abc", b"upstream-access-token");
        assert!(!sealed.windows(8).any(|w| w == b"upstream"), "plaintext visible");
        assert_eq!(sealer.open(b"grant:abc", &sealed).unwrap().expose_secret(), b"upstream-access-token");
        assert_eq!(sealer.open(b"grant:xyz", &sealed).err(), Some(SealError::DoesNotOpen));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(sealer.open(b"grant:abc", &tampered).err(), Some(SealError::DoesNotOpen));
        assert_eq!(sealer.open(b"grant:abc", &sealed[..10]).err(), Some(SealError::DoesNotOpen));
        assert_ne!(sealer.seal(b"r", b"same"), sealer.seal(b"r", b"same"), "random nonces");
    }

    #[test]
    fn rotation_opens_old_values_and_seals_under_the_new_secret() {
        let old = Keyring::new(ring(1), vec![]).sealer();
        let sealed_before = old.seal(b"r", b"v1");
        let rotated = Keyring::new(ring(2), vec![ring(1)]).sealer();
        assert_eq!(rotated.open(b"r", &sealed_before).unwrap().expose_secret(), b"v1");
        let sealed_after = rotated.seal(b"r", b"v2");
        assert_eq!(
            old.open(b"r", &sealed_after).err(),
            Some(SealError::DoesNotOpen),
            "new material uses the new secret"
        );
        let dropped = Keyring::new(ring(2), vec![]).sealer();
        assert_eq!(dropped.open(b"r", &sealed_before).err(), Some(SealError::DoesNotOpen));
    }
}
