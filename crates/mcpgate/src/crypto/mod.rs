//! Key management and the primitives built on it: one root secret, HKDF sub-keys per purpose
//! with rotation ([`Keyring`]), sealing of records ([`Sealer`]), keyed digests and MACs
//! ([`KeyedMac`]), random tokens and PKCE.
//!
//! Everything runs on aws-lc-rs, the process's one crypto provider. No per-record password KDF:
//! the root secret is random, so HKDF is the right tool and costs nothing per request.

mod keys;
mod mac;
pub mod pkce;
mod random;
mod seal;

pub use keys::{Keyring, KeyringError, RootSecret};
pub use mac::{KeyedMac, MacTag};
pub use random::{random_bytes, random_token};
pub use seal::{SealError, Sealer};

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
