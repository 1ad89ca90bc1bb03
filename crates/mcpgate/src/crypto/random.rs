//! Random values from the operating system's CSPRNG (through aws-lc-rs).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;

/// `N` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The system RNG does not fail on supported platforms; if it ever did, an all-zero value
    // must not be used, so this is the one place that may abort.
    aws_lc_rs::rand::fill(&mut out).expect("the system random number generator failed");
    out
}

/// A 256-bit random token, URL-safe base64 without padding (43 characters): codes, refresh
/// tokens, transaction ids, client secrets.
pub fn random_token() -> SecretString {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>()).into()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_are_43_urlsafe_characters_and_differ() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.expose_secret().len(), 43);
        assert!(a.expose_secret().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }
}
