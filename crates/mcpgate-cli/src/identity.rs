//! The caller's identity as the upstream MCP server gets it: one list of fields, sent as
//! `x-mcpgate-*` headers to an HTTP upstream and as `MCPGATE_*` variables to a stdio child.
//! Values come from our own access token, which carries what the provider vouched for.

use std::borrow::Cow;

use mcpgate::{ClientKind, Principal};
use serde_json::Value;

/// One identity field under its header and variable names.
pub struct Field<'a> {
    /// The header name (`x-mcpgate-subject`).
    pub header: &'static str,
    /// The environment variable (`MCPGATE_SUBJECT`).
    pub env: &'static str,
    /// The value, borrowed from the principal where it is there as it is (this runs on every
    /// request).
    pub value: Cow<'a, str>,
}

/// The fields for `principal` (none for an anonymous one): subject, client id, scopes and the
/// kind of caller (`user`, `machine`, `api_key`) always; email (and whether the
/// provider verified it), username, name and groups (comma-separated) when known.
pub fn fields<'a>(principal: &'a Principal) -> Vec<Field<'a>> {
    let mut fields = Vec::with_capacity(9);
    // A public route's caller is nobody: there is no one to name.
    if principal.client_kind() == ClientKind::Anonymous {
        return fields;
    }
    let mut add = |header, env, value: Cow<'a, str>| fields.push(Field { header, env, value });
    add("x-mcpgate-subject", "MCPGATE_SUBJECT", principal.subject().into());
    if let Some(client_id) = principal.client_id() {
        add("x-mcpgate-client-id", "MCPGATE_CLIENT_ID", client_id.into());
    }
    add("x-mcpgate-scopes", "MCPGATE_SCOPES", join(principal.scopes(), " "));
    add("x-mcpgate-client-kind", "MCPGATE_CLIENT_KIND", principal.client_kind().as_str().into());
    let claims = principal.claims();
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(Cow::Borrowed);
    if let Some(email) = principal.email() {
        add("x-mcpgate-email", "MCPGATE_EMAIL", email.into());
        let verified = if principal.email_verified() { "true" } else { "false" };
        add("x-mcpgate-email-verified", "MCPGATE_EMAIL_VERIFIED", verified.into());
    }
    if let Some(username) = text("preferred_username") {
        add("x-mcpgate-username", "MCPGATE_USERNAME", username);
    }
    if let Some(name) = text("name") {
        add("x-mcpgate-name", "MCPGATE_NAME", name);
    }
    if claims.get("groups").is_some_and(Value::is_array) {
        add("x-mcpgate-groups", "MCPGATE_GROUPS", principal.groups().collect::<Vec<_>>().join(",").into());
    }
    fields
}

/// `items` joined by `separator`, borrowed when there is only one.
fn join<'a>(items: &'a [String], separator: &str) -> Cow<'a, str> {
    match items {
        [one] => Cow::Borrowed(one),
        _ => Cow::Owned(items.join(separator)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_claim_becomes_a_field() {
        let claims = serde_json::json!({"email": "ada@example.org", "email_verified": true,
            "preferred_username": "ada", "name": "Ada Lovelace", "groups": ["acme", "widgets"]});
        let principal = Principal::new("42")
            .with_client_id("cli")
            .with_scopes(["mcp:read"])
            .with_claims(claims.as_object().unwrap().clone());
        let fields: Vec<(&str, &str, String)> =
            fields(&principal).into_iter().map(|f| (f.header, f.env, f.value.into_owned())).collect();
        let value = |env: &str| fields.iter().find(|f| f.1 == env).map(|f| f.2.as_str());
        assert_eq!(value("MCPGATE_SUBJECT"), Some("42"));
        assert_eq!(value("MCPGATE_CLIENT_ID"), Some("cli"));
        assert_eq!(value("MCPGATE_EMAIL"), Some("ada@example.org"));
        assert_eq!(value("MCPGATE_EMAIL_VERIFIED"), Some("true"));
        assert_eq!(value("MCPGATE_USERNAME"), Some("ada"));
        assert_eq!(value("MCPGATE_NAME"), Some("Ada Lovelace"));
        assert_eq!(value("MCPGATE_GROUPS"), Some("acme,widgets"));
        assert_eq!(value("MCPGATE_CLIENT_KIND"), Some("user"));
        assert!(fields.iter().all(|f| f.0.starts_with("x-mcpgate-")));
        let bare = fields_of(&Principal::new("7"));
        assert_eq!(bare, vec!["MCPGATE_SUBJECT", "MCPGATE_SCOPES", "MCPGATE_CLIENT_KIND"]);
    }

    fn fields_of(principal: &Principal) -> Vec<&'static str> {
        fields(principal).into_iter().map(|f| f.env).collect()
    }
}
