//! The JSON-RPC message of a POST, read strictly enough that the policy and the upstream can
//! never understand it differently: one object (batches are refused), no field the policy reads
//! given twice (serde refuses duplicate fields of a struct), and the params of the methods the
//! policy judges in the types the MCP schema gives them. Other methods' params are not read.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{Operation, Target, TargetKind};

/// Why a message was refused before the policy saw it (answered `400` with a JSON-RPC error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadMessage {
    /// Not JSON.
    #[error("the request body is not JSON")]
    NotJson,
    /// A JSON-RPC batch (an array).
    #[error("JSON-RPC batches are not accepted here; send one message per request")]
    Batch,
    /// Not a JSON-RPC message the policy can read (a duplicate field, a name that is not a string…).
    #[error("the request is not a well-formed JSON-RPC message: {0}")]
    Malformed(String),
}

impl BadMessage {
    /// The JSON-RPC error code: parse error, or invalid request.
    pub fn code(&self) -> i64 {
        match self {
            BadMessage::NotJson => -32700,
            BadMessage::Batch | BadMessage::Malformed(_) => -32600,
        }
    }
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(rename = "jsonrpc", default)]
    _jsonrpc: Option<IgnoredAny>,
}

/// `params` of `tools/call` and `prompts/get`; the arguments kept raw (they are read only when
/// a condition reads `mcp.arguments`).
#[derive(Deserialize)]
struct Named<'a> {
    name: String,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

/// `params` of `resources/read` and `resources/subscribe`.
#[derive(Deserialize)]
struct ByUri {
    uri: String,
}

/// `params` of `completion/complete`.
#[derive(Deserialize)]
struct Completion {
    #[serde(rename = "ref")]
    reference: Reference,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Reference {
    #[serde(rename = "ref/prompt")]
    Prompt { name: String },
    #[serde(rename = "ref/resource")]
    Resource { uri: String },
}

/// What the policy needs of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The JSON-RPC id as written (`None` for a notification or a response).
    pub id: Option<String>,
    /// The method (`None` for a response).
    pub method: Option<String>,
    target: Option<(TargetKind, String)>,
    arguments: Option<serde_json::Value>,
}

impl Message {
    /// Reads `body`; a tool's or prompt's arguments too when `with_arguments` (a condition
    /// reads them).
    pub fn parse(body: &[u8], with_arguments: bool) -> Result<Self, BadMessage> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            return Err(BadMessage::Batch);
        }
        let head: Head<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => BadMessage::Malformed(e.to_string()),
            _ => BadMessage::NotJson,
        })?;
        let id = head.id.map(|id| id.get().to_owned());
        let mut message = Message { id, method: head.method, target: None, arguments: None };
        let Some(method) = message.method.as_deref() else { return Ok(message) };
        let params = head.params.map(RawValue::get).unwrap_or("null");
        let malformed = |e: serde_json::Error| BadMessage::Malformed(format!("params of {method}: {e}"));
        match method {
            "tools/call" | "prompts/get" => {
                let named: Named<'_> = serde_json::from_str(params).map_err(malformed)?;
                let kind = if method == "tools/call" { TargetKind::Tool } else { TargetKind::Prompt };
                message.target = Some((kind, named.name));
                if with_arguments && let Some(arguments) = named.arguments {
                    message.arguments = Some(serde_json::from_str(arguments.get()).map_err(malformed)?);
                }
            }
            "resources/read" | "resources/subscribe" => {
                let ByUri { uri } = serde_json::from_str(params).map_err(malformed)?;
                message.target = Some((TargetKind::Resource, uri));
            }
            "completion/complete" => {
                let Completion { reference } = serde_json::from_str(params).map_err(malformed)?;
                message.target = Some(match reference {
                    Reference::Prompt { name } => (TargetKind::Prompt, name),
                    Reference::Resource { uri } => (TargetKind::Resource, uri),
                });
            }
            _ => {}
        }
        Ok(message)
    }

    /// The operation to decide on (`None` for a response, which is no operation).
    pub fn operation(&self) -> Option<Operation<'_>> {
        let method = self.method.as_deref()?;
        let target = self.target.as_ref().map(|(kind, name)| Target { kind: *kind, name });
        Some(Operation { method, target, arguments: self.arguments.as_ref() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Message {
        fn parse_all(body: &[u8]) -> Result<Self, BadMessage> {
            Message::parse(body, true)
        }
    }

    #[test]
    fn arguments_are_read_only_when_asked_for() {
        let body =
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":1}}}"#;
        assert_eq!(Message::parse(body, false).unwrap().operation().unwrap().arguments, None);
        assert!(Message::parse(body, true).unwrap().operation().unwrap().arguments.is_some());
    }

    #[test]
    fn reads_what_the_policy_needs() {
        let m = Message::parse_all(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"a":1}}}"#,
        )
        .unwrap();
        assert_eq!(m.id.as_deref(), Some("7"));
        let op = m.operation().unwrap();
        assert_eq!((op.method, op.name()), ("tools/call", Some("echo")));
        assert_eq!(op.arguments, Some(&serde_json::json!({"a": 1})));
        let m = Message::parse_all(br#"{"jsonrpc":"2.0","id":"x","method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{p}"},"argument":{"name":"p","value":"a"}}}"#).unwrap();
        assert_eq!(
            m.operation().unwrap().target,
            Some(Target { kind: TargetKind::Resource, name: "file:///{p}" })
        );
        let m = Message::parse_all(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert!(m.operation().is_none());
        // Other methods' params are not read, whatever they hold.
        assert!(
            Message::parse_all(
                br#"{"jsonrpc":"2.0","id":1,"method":"custom/x","params":{"name":{"deep":1}}}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn what_could_be_read_two_ways_is_refused() {
        let refused = |body: &str| Message::parse_all(body.as_bytes()).unwrap_err();
        assert_eq!(refused("not json"), BadMessage::NotJson);
        assert_eq!(refused(r#" [{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), BadMessage::Batch);
        for body in [
            r#"{"id":1,"method":"tools/call","method":"ping","params":{"name":"a"}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":"safe","name":"delete_all"}}"#,
            r#"{"id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"id":1,"method":"tools/call"}"#,
            r#"{"id":1,"method":"resources/read","params":{"uri":["a"]}}"#,
            r#"{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"x"}}}"#,
            r#"{"id":1,"method":5}"#,
        ] {
            assert!(matches!(refused(body), BadMessage::Malformed(_)), "{body}");
        }
    }
}
