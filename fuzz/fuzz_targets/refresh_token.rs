//! Refresh tokens as presented (`grant.generation.mac`): no panic; a token that parses is
//! written back exactly as it was presented (one spelling per token); every token mcpgate
//! writes parses back to its parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate::fuzzing::{refresh_token_parts, refresh_token_string};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    if let Some((grant, generation, mac)) = refresh_token_parts(token) {
        assert_eq!(refresh_token_string(grant, generation, mac), token, "a second spelling of one token");
    }
    // As written by mcpgate: the grant id and MAC are URL-safe base64 (no dot).
    let middle = token.char_indices().nth(token.chars().count() / 2).map_or(token.len(), |(i, _)| i);
    let (grant, rest) = token.split_at(middle);
    let clean = |s: &str| {
        s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>()
    };
    let (grant, mac) = (clean(grant), clean(rest));
    if !grant.is_empty() && !mac.is_empty() {
        let generation = data.iter().fold(0u64, |n, b| n.wrapping_mul(31).wrapping_add(u64::from(*b)));
        let written = refresh_token_string(&grant, generation, &mac);
        assert_eq!(refresh_token_parts(&written), Some((grant.as_str(), generation, mac.as_str())));
    }
});
