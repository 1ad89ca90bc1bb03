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

/// An event stream through the policy layer's rewriter, in two chunks split at `split`, with
/// nothing rewritten: what comes out (`None` when the stream was cut off as too large).
pub fn sse_passthrough(stream: &[u8], split: usize) -> Option<Vec<u8>> {
    let mut rewriter =
        crate::policy::sse::EventRewriter::new(|_: &crate::policy::sse::Event<'_>, _: &[u8]| None);
    let (first, second) = stream.split_at(split.min(stream.len()));
    let mut out = rewriter.push(first).ok()?.to_vec();
    out.extend_from_slice(&rewriter.push(second).ok()?);
    out.extend_from_slice(&rewriter.finish());
    Some(out)
}
