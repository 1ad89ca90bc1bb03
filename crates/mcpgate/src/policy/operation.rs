//! What an MCP request asks to do, as the policy sees it: its method, and the tool, prompt or
//! resource it names. Read from the JSON-RPC request itself by [`super::message`] (never from
//! headers, which only have to agree with it), and made up for each entry of a list being
//! filtered.

use serde_json::Value;

/// What kind of thing an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A tool (`tools/call`).
    Tool,
    /// A prompt (`prompts/get`).
    Prompt,
    /// A resource by URI (`resources/read`, `resources/subscribe`), or a resource template.
    Resource,
}

impl TargetKind {
    /// The selector key that names things of this kind in a rule.
    pub fn key(self) -> &'static str {
        match self {
            TargetKind::Tool => "tools",
            TargetKind::Prompt => "prompts",
            TargetKind::Resource => "resources",
        }
    }

    /// The methods that act on a thing of this kind.
    pub(crate) fn methods(self) -> &'static [&'static str] {
        match self {
            TargetKind::Tool => &["tools/call"],
            TargetKind::Prompt => &["prompts/get", "completion/complete"],
            TargetKind::Resource => &["resources/read", "resources/subscribe", "completion/complete"],
        }
    }
}

/// The tool, prompt or resource an operation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// What kind of thing it is.
    pub kind: TargetKind,
    /// The tool or prompt name, or the resource URI (a URI template for a template).
    pub name: &'a str,
}

/// One MCP operation to decide on.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    /// The JSON-RPC method.
    pub method: &'a str,
    /// What it acts on, for the methods that act on something.
    pub target: Option<Target<'a>>,
    /// The tool's arguments (`tools/call`), or the prompt's (`prompts/get`).
    pub arguments: Option<&'a Value>,
}

impl<'a> Operation<'a> {
    /// An operation that names nothing (`initialize`, `ping`, the lists themselves…).
    pub fn method(method: &'a str) -> Self {
        Self { method, target: None, arguments: None }
    }

    /// Calling the tool `name`: how each entry of `tools/list` is judged.
    pub fn call_tool(name: &'a str) -> Self {
        Self { method: "tools/call", target: Some(Target { kind: TargetKind::Tool, name }), arguments: None }
    }

    /// Getting the prompt `name`: how each entry of `prompts/list` is judged.
    pub fn get_prompt(name: &'a str) -> Self {
        Self {
            method: "prompts/get",
            target: Some(Target { kind: TargetKind::Prompt, name }),
            arguments: None,
        }
    }

    /// Reading the resource `uri` (or one of a template): how each entry of `resources/list`
    /// and `resources/templates/list` is judged.
    pub fn read_resource(uri: &'a str) -> Self {
        Self {
            method: "resources/read",
            target: Some(Target { kind: TargetKind::Resource, name: uri }),
            arguments: None,
        }
    }

    /// The name of what the operation acts on (for the audit log and `Mcp-Name`).
    pub fn name(&self) -> Option<&'a str> {
        self.target.map(|t| t.name)
    }
}
