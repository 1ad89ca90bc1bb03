//! Sealed records (AES-256-GCM bound to the record id): no input opens unless mcpgate sealed it
//! for that record; what is sealed opens to itself under its id only; a flipped bit in the nonce,
//! ciphertext or tag, a cut or another id never opens. The first byte is the key id, a hint of
//! which key to try first and not authenticated: changed, the record opens to the same plaintext
//! or not at all (found by this target).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate::crypto::{Keyring, RootSecret};
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    let sealer = Keyring::new(RootSecret::from_bytes(vec![7; 32]).unwrap(), vec![]).sealer();
    let (id, payload) = data.split_at(data.len().min(8));
    assert!(sealer.open(id, payload).is_err(), "an unsealed input opened");
    let sealed = sealer.seal(id, payload);
    assert_eq!(sealer.open(id, &sealed).expect("opens under its id").expose_secret(), payload);
    assert!(sealer.open(b"another record", &sealed).is_err() || id == b"another record");
    let mut flipped = sealed.clone();
    let at = 1 + usize::from(data.first().copied().unwrap_or(0)) % (flipped.len() - 1);
    let bit = data.last().copied().unwrap_or(1) % 8;
    flipped[at] ^= 1 << bit;
    assert!(sealer.open(id, &flipped).is_err(), "a flipped bit opened");
    let mut hinted = sealed.clone();
    hinted[0] ^= data.get(1).copied().unwrap_or(1) | 1;
    if let Ok(opened) = sealer.open(id, &hinted) {
        assert_eq!(opened.expose_secret(), payload, "another key id opened to other content");
    }
    assert!(sealer.open(id, &sealed[..sealed.len() - 1]).is_err(), "a cut record opened");
});
