//! Filtering list answers: the entries of `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list` results that the caller may not use are removed, everything else
//! (`nextCursor` included) is kept as the upstream wrote it. Entries are kept as raw JSON and
//! only their names are parsed, so a long list costs little more than copying it. An entry
//! whose name cannot be read is removed: what cannot be judged is not shown.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::Operation;

/// Which list a result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
}

const KINDS: [ListKind; 4] =
    [ListKind::Tools, ListKind::Prompts, ListKind::Resources, ListKind::ResourceTemplates];

impl ListKind {
    /// The list `method` asks for.
    pub fn of_method(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::ResourceTemplates),
            _ => None,
        }
    }

    /// The result's member holding the entries.
    fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The name of one entry, when it has a readable one.
    fn name_of(self, entry: &RawValue) -> Option<String> {
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        #[derive(Deserialize)]
        struct Uri {
            uri: String,
        }
        #[derive(Deserialize)]
        struct Template {
            #[serde(rename = "uriTemplate")]
            uri_template: String,
        }
        let text = entry.get();
        match self {
            ListKind::Tools | ListKind::Prompts => serde_json::from_str::<Named>(text).ok().map(|n| n.name),
            ListKind::Resources => serde_json::from_str::<Uri>(text).ok().map(|u| u.uri),
            ListKind::ResourceTemplates => {
                serde_json::from_str::<Template>(text).ok().map(|t| t.uri_template)
            }
        }
    }

    /// Using the entry named `name`: what the policy is asked about it.
    fn operation(self, name: &str) -> Operation<'_> {
        match self {
            ListKind::Tools => Operation::call_tool(name),
            ListKind::Prompts => Operation::get_prompt(name),
            ListKind::Resources | ListKind::ResourceTemplates => Operation::read_resource(name),
        }
    }
}

/// A JSON-RPC message whose members are kept raw.
type RawObject<'a> = BTreeMap<String, &'a RawValue>;

/// What filtering did to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Not a list result (or none of the kinds asked about): leave the message as it is.
    Untouched,
    /// The message rewritten, and how many entries were removed.
    Rewritten(Vec<u8>, usize),
}

/// Filters `message`, the JSON-RPC response of a `kind` list, keeping the entries for which
/// `keep` says yes. With `kind` unknown (a response replayed on a GET stream, whose request the
/// gateway did not see), any list member the result has is filtered by its own kind.
pub fn filter_list(
    message: &[u8],
    kind: Option<ListKind>,
    keep: impl Fn(&Operation<'_>) -> bool,
) -> Filtered {
    let Ok(mut outer) = serde_json::from_slice::<RawObject<'_>>(message) else { return Filtered::Untouched };
    let Some(result) = outer.get("result") else { return Filtered::Untouched };
    let Ok(mut result) = serde_json::from_str::<RawObject<'_>>(result.get()) else {
        return Filtered::Untouched;
    };
    let kinds: Vec<ListKind> = match kind {
        Some(kind) => vec![kind],
        None => KINDS.into_iter().filter(|k| result.contains_key(k.field())).collect(),
    };
    let mut removed = 0;
    let mut lists: Vec<(&'static str, Box<RawValue>)> = Vec::new();
    for kind in kinds {
        let Some(entries) = result.get(kind.field()) else { continue };
        // A list member that is not an array is not a list the caller could use: it goes.
        let entries: Vec<&RawValue> = serde_json::from_str(entries.get()).unwrap_or_default();
        let before = entries.len();
        let kept: Vec<&RawValue> = entries
            .into_iter()
            .filter(|entry| kind.name_of(entry).is_some_and(|name| keep(&kind.operation(&name))))
            .collect();
        removed += before - kept.len();
        let kept = serde_json::value::to_raw_value(&kept).expect("raw JSON values serialize");
        lists.push((kind.field(), kept));
    }
    if lists.is_empty() {
        return Filtered::Untouched;
    }
    for (field, kept) in &lists {
        result.insert((*field).to_owned(), kept);
    }
    let result = serde_json::value::to_raw_value(&result).expect("raw JSON values serialize");
    outer.insert("result".to_owned(), &result);
    Filtered::Rewritten(serde_json::to_vec(&outer).expect("raw JSON values serialize"), removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn keep_no_admin(op: &Operation<'_>) -> bool {
        !op.name().is_some_and(|n| n.starts_with("admin"))
    }

    fn rewritten(filtered: Filtered) -> (Value, usize) {
        match filtered {
            Filtered::Rewritten(bytes, removed) => (serde_json::from_slice(&bytes).unwrap(), removed),
            Filtered::Untouched => panic!("untouched"),
        }
    }

    #[test]
    fn removes_what_the_caller_may_not_use_and_keeps_the_rest_as_written() {
        let message = json!({"jsonrpc": "2.0", "id": 3, "result": {
            "tools": [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "admin_reset"}, {"title": "nameless"}],
            "nextCursor": "page-2", "_meta": {"x": 1}}});
        let (out, removed) =
            rewritten(filter_list(message.to_string().as_bytes(), Some(ListKind::Tools), keep_no_admin));
        assert_eq!(removed, 2);
        assert_eq!(out["result"]["tools"], json!([{"name": "echo", "inputSchema": {"type": "object"}}]));
        assert_eq!(out["result"]["nextCursor"], "page-2");
        assert_eq!(out["result"]["_meta"], json!({"x": 1}));
        assert_eq!(out["id"], 3);
    }

    #[test]
    fn each_list_is_judged_by_its_own_names() {
        let message = json!({"jsonrpc": "2.0", "id": 1, "result": {"resourceTemplates": [
            {"uriTemplate": "admin://{x}", "name": "a"}, {"uriTemplate": "file:///{p}", "name": "admin"}]}});
        let (out, _) = rewritten(filter_list(
            message.to_string().as_bytes(),
            Some(ListKind::ResourceTemplates),
            keep_no_admin,
        ));
        assert_eq!(
            out["result"]["resourceTemplates"],
            json!([{"uriTemplate": "file:///{p}", "name": "admin"}])
        );
    }

    #[test]
    fn without_a_known_method_any_list_member_is_filtered() {
        let message =
            json!({"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "admin_p"}, {"name": "p"}]}});
        let (out, removed) = rewritten(filter_list(message.to_string().as_bytes(), None, keep_no_admin));
        assert_eq!((out["result"]["prompts"].clone(), removed), (json!([{"name": "p"}]), 1));
        let call_result = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}});
        assert_eq!(filter_list(call_result.to_string().as_bytes(), None, keep_no_admin), Filtered::Untouched);
        let error = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "x"}});
        assert_eq!(
            filter_list(error.to_string().as_bytes(), Some(ListKind::Tools), keep_no_admin),
            Filtered::Untouched
        );
    }

    #[test]
    fn a_list_member_that_is_not_an_array_is_emptied() {
        let message = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": {"name": "admin"}}});
        let (out, _) =
            rewritten(filter_list(message.to_string().as_bytes(), Some(ListKind::Tools), |_| true));
        assert_eq!(out["result"]["tools"], json!([]));
    }
}
