//! `[policy]`, `[audit]` and `auth.scope_implications`: who may call which tool, and the record
//! of every call (`docs/policy.md`). Rules are read one by one, so that a rule's problem — an
//! unknown key as much as one the policy engine finds — names the rule.

use std::collections::BTreeMap;

use mcpgate::policy::{Effect, Policy, RuleSpec};
use mcpgate::scope::ScopeImplications;
use serde::Deserialize;

use super::Config;

/// `[policy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// What decides an operation on a tool, prompt or resource that no rule matches.
    #[serde(default)]
    pub default: Effect,
    /// `[[policy.rules]]`, in order (the first matching rule decides).
    #[serde(default)]
    pub rules: Vec<toml::Table>,
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where the JSON lines go: a file (appended to), or `-` for standard output.
    pub file: Option<String>,
}

impl Config {
    /// `auth.scope_implications`, checked.
    pub fn scope_implications(&self) -> Result<ScopeImplications, String> {
        self.auth
            .scope_implications
            .iter()
            .try_fold(ScopeImplications::new(), |implications, (scope, implied)| {
                implications.imply(scope, implied).map_err(|e| e.to_string())
            })
    }

    /// The compiled `[policy]`; the message names the rule at fault.
    pub fn policy(&self) -> Result<Policy, String> {
        self.policy.compile(self.scope_implications()?)
    }
}

impl PolicyConfig {
    /// This policy compiled, honouring `implications`; the message names the rule at fault.
    pub fn compile(&self, implications: ScopeImplications) -> Result<Policy, String> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, table) in self.rules.iter().enumerate() {
            let label = match table.get("id").and_then(toml::Value::as_str) {
                Some(id) => id.to_owned(),
                None => format!("#{}", index + 1),
            };
            let rule: RuleSpec = toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| format!("policy rule {label}: {}", e.message()))?;
            rules.push(rule);
        }
        let policy = Policy::new(self.default, &rules).map_err(|e| e.to_string())?;
        Ok(policy.with_scope_implications(implications))
    }
}

/// `auth.scope_implications` as written: scope → the scopes it implies.
pub type ScopeImplicationsConfig = BTreeMap<String, Vec<String>>;

#[cfg(test)]
mod tests {
    use crate::config::Source;

    /// A resource-mode configuration with `auth_extra` in `[auth]` and `extra` after it.
    fn load_with(auth_extra: &str, extra: &str) -> Result<crate::config::Config, String> {
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:3000/mcp\"\n[auth]\nmode = \"resource\"\n{auth_extra}\n\
             [auth.resource]\njwks_uri = \"https://as.example.com/jwks\"\nissuer = \"https://as.example.com\"\n{extra}"
        );
        Source::new(text, []).load().map_err(|problems| {
            problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect::<Vec<_>>().join("\n")
        })
    }

    fn load(extra: &str) -> Result<crate::config::Config, String> {
        load_with("", extra)
    }

    #[test]
    fn a_policy_is_read_and_compiled() {
        let config = load_with(
            "scope_implications = { \"mcp:admin\" = [\"mcp:write\"], \"mcp:write\" = [\"mcp:read\"] }",
            "[policy]\ndefault = \"deny\"\n\
             [[policy.rules]]\nid = \"echo-needs-scope\"\ntools = [\"echo\"]\nrequire_scopes = [\"mcp:echo\"]\n\
             [[policy.rules]]\ntools = [\"delete_*\"]\nallow_users = [\"root\"]\n\
             [audit]\nfile = \"audit.jsonl\"\n",
        )
        .unwrap();
        let policy = config.policy().unwrap();
        assert_eq!(policy.required_scopes().collect::<Vec<_>>(), ["mcp:echo"]);
        assert_eq!(config.audit.file.as_deref(), Some("audit.jsonl"));
        let admin = vec!["mcp:admin".to_owned()];
        assert!(config.scope_implications().unwrap().covers(&admin, "mcp:read"));
    }

    #[test]
    fn a_bad_rule_is_a_problem_naming_it() {
        let unknown = load("[[policy.rules]]\nid = \"typo\"\ntoolz = [\"echo\"]\n").unwrap_err();
        assert!(unknown.starts_with("policy.rules: policy rule typo: unknown field `toolz`"), "{unknown}");
        let never =
            load("[[policy.rules]]\ntools = [\"*\"]\n[[policy.rules]]\ntools = [\"echo\"]\n").unwrap_err();
        assert!(never.contains("policy rule #2: rule #1 before it matches everything"), "{never}");
        let bad_cel = load("[[policy.rules]]\nid = \"cel\"\nwhen = \"caller.subject ==\"\n").unwrap_err();
        assert!(bad_cel.contains("policy rule cel: `when` is not a CEL expression"), "{bad_cel}");
        let scope = load_with("scope_implications = { \"a b\" = [\"x\"] }", "").unwrap_err();
        assert!(scope.starts_with("auth.scope_implications: \"a b\" is not a scope"), "{scope}");
        let effect = load("[policy]\ndefault = \"maybe\"\n").unwrap_err();
        assert!(effect.contains("policy.default"), "{effect}");
    }
}
