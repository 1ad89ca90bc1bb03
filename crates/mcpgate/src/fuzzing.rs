//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`) into parsers that are not
//! public API. Not for other use: nothing here is stable.

use crate::authz::grant::PresentedRefreshToken;

/// A refresh token's parts (grant id, generation, MAC), if it has our shape.
pub fn refresh_token_parts(token: &str) -> Option<(&str, u64, &str)> {
    PresentedRefreshToken::parse(token).map(|t| (t.grant_id, t.generation(), t.mac()))
}

/// A refresh token as mcpgate writes it.
pub fn refresh_token_string(grant_id: &str, generation: u64, mac: &str) -> String {
    format!("{grant_id}.{generation}.{mac}")
}

/// Why client-shown text would be refused (bidirectional controls, invisible characters), if it
/// would.
pub fn display_text_refusal(text: &str) -> Option<String> {
    crate::authz::display_text::disguise(text).map(|d| d.to_string())
}
