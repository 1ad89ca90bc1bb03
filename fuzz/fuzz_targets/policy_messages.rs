//! What the policy layer reads from untrusted bytes: a request's JSON-RPC message, a list
//! answer being filtered, an event stream being rewritten. Properties: no panic; a message that
//! parses names the target its method defines; a filtered answer is still JSON with the same id
//! and never more entries than it had; an event stream with nothing to rewrite comes out byte
//! for byte as it went in, however it was split into chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate::fuzzing::sse_passthrough;
use mcpgate::policy::{Filtered, ListKind, Message, filter_list};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    if let Ok(message) = Message::parse(bytes, selector % 2 == 0)
        && let Some(op) = message.operation()
        && matches!(op.method, "tools/call" | "prompts/get" | "resources/read" | "resources/subscribe")
    {
        assert!(op.target.is_some(), "{} without a target", op.method);
    }
    let kinds = [None, Some(ListKind::Tools), Some(ListKind::Prompts), Some(ListKind::Resources), Some(ListKind::ResourceTemplates)];
    let kind = kinds[usize::from(selector) % kinds.len()];
    let keep_odd = |op: &mcpgate::policy::Operation<'_>| op.name().is_some_and(|n| n.len() % 2 == 1);
    if let Filtered::Rewritten(out, _) = filter_list(bytes, kind, keep_odd) {
        let before: serde_json::Value = serde_json::from_slice(bytes).expect("only JSON is rewritten");
        let after: serde_json::Value = serde_json::from_slice(&out).expect("a rewritten answer is JSON");
        assert_eq!(before.get("id"), after.get("id"));
        for field in ["tools", "prompts", "resources", "resourceTemplates"] {
            let count = |v: &serde_json::Value| v["result"][field].as_array().map_or(0, Vec::len);
            assert!(count(&after) <= count(&before), "{field} grew");
        }
    }
    let split = usize::from(selector).min(bytes.len());
    if let Some(out) = sse_passthrough(bytes, split) {
        assert_eq!(out, bytes, "an event stream changed with nothing to rewrite");
    }
});
