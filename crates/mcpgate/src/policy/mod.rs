//! Authorization policy: who may do which MCP operation. A [`Policy`] is an ordered list of
//! rules over the caller (subject, client, scopes, groups, verified email, any claim) and the
//! operation (method; tool, prompt or resource). The first rule whose selectors all match
//! decides: allow, deny, or allow once the token has more scopes (step-up). With no matching
//! rule, the policy's default decides operations that name a tool, prompt or resource;
//! protocol plumbing (`initialize`, `ping`, the lists themselves…) is allowed unless a rule
//! says otherwise, so `default = deny` still lets clients connect and see what they may use.
//!
//! ```
//! use mcpgate::Principal;
//! use mcpgate::policy::{Decision, Effect, Operation, Policy, RuleSpec};
//!
//! let rules = vec![
//!     RuleSpec { tools: Some(vec!["delete_*".into()]), allow_groups: Some(vec!["admins".into()]), ..Default::default() },
//!     RuleSpec { tools: Some(vec!["*".into()]), require_scopes: vec!["mcp:tools".into()], ..Default::default() },
//! ];
//! let policy = Policy::new(Effect::Deny, &rules)?;
//! let alice = Principal::new("alice").with_scopes(["mcp:read"]);
//! assert_eq!(policy.decide(&alice, &Operation::call_tool("delete_repo")).decision, Decision::Deny);
//! assert_eq!(
//!     policy.decide(&alice, &Operation::call_tool("search")).decision,
//!     Decision::StepUp(vec!["mcp:tools".into()]),
//! );
//! # Ok::<(), mcpgate::policy::PolicyError>(())
//! ```

mod condition;
mod filter;
mod layer;
mod message;
mod operation;
mod pattern;
mod rule;
pub(crate) mod sse;

use std::sync::Arc;

pub use condition::ConditionError;
pub use filter::{Filtered, ListKind, filter_list};
pub use layer::{HEADER_MISMATCH, POLICY_DENIED, PolicyLayer, PolicyService, StepUpNotice};
pub use message::{BadMessage, Message};
pub use operation::{Operation, Target, TargetKind};
pub use rule::{Effect, RuleProblem, RuleSpec};

use condition::{Facts, OperationFacts, Uses};
use rule::{Rule, RuleOutcome};

use crate::Principal;
use crate::scope::ScopeImplications;

/// A rule that cannot be used, named by its id or position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy rule {rule}: {problem}")]
pub struct PolicyError {
    /// The rule's id, or `#` and its position (from 1).
    pub rule: String,
    /// What is wrong with it.
    pub problem: RuleProblem,
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused; no scope would change that.
    Deny,
    /// Allowed once the token also has these scopes (HTTP 403 `insufficient_scope`).
    StepUp(Vec<String>),
}

impl Decision {
    /// `allow`, `deny` or `step_up`: the audit log's and the metrics' word for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::StepUp(_) => "step_up",
        }
    }
}

/// Why the policy decided as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The rule matched and its effect decided.
    Rule,
    /// The rule matched, and the caller is in none of its allow lists.
    NotAllowListed,
    /// The rule's condition could not be evaluated (it denies).
    ConditionFailed(String),
    /// No rule matched.
    Default,
}

/// A decision, the rule that made it and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// The deciding rule's id (or `#` and its position); `None` when the default decided.
    pub rule: Option<Arc<str>>,
    /// Why.
    pub reason: Reason,
}

/// A compiled policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Inner>,
    scopes: Arc<ScopeImplications>,
}

struct Inner {
    rules: Vec<(Rule, Arc<str>)>,
    default: Effect,
    env: Arc<cel::Env>,
    /// What the rules' conditions read, all together.
    uses: Uses,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("rules", &self.rules)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Compiles `rules` (in order) with `default` for operations no rule matches. Every problem
    /// of a rule — an empty list, selectors that exclude each other, a bad condition, a rule an
    /// earlier one hides — is an error naming it.
    pub fn new(default: Effect, rules: &[RuleSpec]) -> Result<Self, PolicyError> {
        let env = Arc::new(cel::Env::stdlib());
        let mut compiled: Vec<(Rule, Arc<str>)> = Vec::with_capacity(rules.len());
        for (index, spec) in rules.iter().enumerate() {
            let label = || spec.id.clone().unwrap_or_else(|| format!("#{}", index + 1));
            let error = |problem| PolicyError { rule: label(), problem };
            let rule = Rule::compile(spec, index + 1, &env).map_err(error)?;
            if spec.id.is_some() && compiled.iter().any(|(r, _)| r.label == rule.label) {
                return Err(error(RuleProblem::DuplicateId));
            }
            if let Some((earlier, _)) = compiled.iter().find(|(earlier, _)| earlier.hides(&rule)) {
                return Err(error(RuleProblem::Shadowed(earlier.label.clone())));
            }
            let label: Arc<str> = rule.label.as_str().into();
            compiled.push((rule, label));
        }
        let uses = compiled.iter().fold(Uses::default(), |uses, (rule, _)| uses.or(&rule.uses()));
        Ok(Self { inner: Arc::new(Inner { rules: compiled, default, env, uses }), scopes: Arc::default() })
    }

    /// A policy without rules that allows everything.
    pub fn allow_all() -> Self {
        let inner = Inner {
            rules: Vec::new(),
            default: Effect::Allow,
            env: Arc::new(cel::Env::stdlib()),
            uses: Uses::default(),
        };
        Self { inner: Arc::new(inner), scopes: Arc::default() }
    }

    /// Uses `implications` when checking the rules' `require_scopes`.
    #[must_use]
    pub fn with_scope_implications(mut self, implications: ScopeImplications) -> Self {
        self.scopes = Arc::new(implications);
        self
    }

    /// Every scope some rule requires: the authorization server must offer them, or no client
    /// could ever step up to them.
    pub fn required_scopes(&self) -> impl Iterator<Item = &str> {
        self.inner.rules.iter().flat_map(|(rule, _)| rule.require_scopes.iter().map(String::as_str))
    }

    /// Whether some condition reads `mcp.arguments` (else requests' arguments are not parsed).
    pub fn reads_arguments(&self) -> bool {
        self.inner.uses.reads_arguments()
    }

    /// Whether the policy has no rules and allows by default (nothing to enforce).
    pub fn allows_everything(&self) -> bool {
        self.inner.rules.is_empty() && self.inner.default == Effect::Allow
    }

    /// Decides whether `caller` may do `op`.
    pub fn decide(&self, caller: &Principal, op: &Operation<'_>) -> Verdict {
        self.for_caller(caller).decide(op)
    }

    /// The policy for one caller: the same decisions as [`Self::decide`], with what conditions
    /// know of the caller made once for all of them (for filtering a list).
    pub fn for_caller<'p>(&'p self, caller: &'p Principal) -> CallerPolicy<'p> {
        CallerPolicy { policy: self, caller, facts: Facts::new(&self.inner.env, caller, &self.inner.uses) }
    }
}

/// A [`Policy`] applied to one caller; see [`Policy::for_caller`].
pub struct CallerPolicy<'p> {
    policy: &'p Policy,
    caller: &'p Principal,
    facts: Facts<'p>,
}

impl std::fmt::Debug for CallerPolicy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerPolicy").field("caller", &self.caller.subject()).finish_non_exhaustive()
    }
}

impl CallerPolicy<'_> {
    /// Decides whether the caller may do `op`.
    pub fn decide(&self, op: &Operation<'_>) -> Verdict {
        let inner = &self.policy.inner;
        let op_facts = OperationFacts::default();
        for (rule, label) in &inner.rules {
            let Some(outcome) = rule.judge(&self.facts, &op_facts, self.caller, op, &self.policy.scopes)
            else {
                continue;
            };
            let (decision, reason) = match outcome {
                RuleOutcome::Allow => (Decision::Allow, Reason::Rule),
                RuleOutcome::Deny => (Decision::Deny, Reason::Rule),
                RuleOutcome::NotAllowed => (Decision::Deny, Reason::NotAllowListed),
                RuleOutcome::StepUp(missing) => {
                    (Decision::StepUp(missing.into_iter().map(str::to_owned).collect()), Reason::Rule)
                }
                RuleOutcome::ConditionFailed(e) => (Decision::Deny, Reason::ConditionFailed(e)),
            };
            return Verdict { decision, rule: Some(label.clone()), reason };
        }
        let decision = match (op.target, inner.default) {
            (Some(_), Effect::Deny) => Decision::Deny,
            _ => Decision::Allow,
        };
        Verdict { decision, rule: None, reason: Reason::Default }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(default: Effect, text: &str) -> Result<Policy, PolicyError> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            rules: Vec<RuleSpec>,
        }
        let file: File = toml::from_str(text).unwrap();
        Policy::new(default, &file.rules)
    }

    fn decide(policy: &Policy, caller: &Principal, op: Operation<'_>) -> (Decision, Option<String>) {
        let verdict = policy.decide(caller, &op);
        (verdict.decision, verdict.rule.map(|r| r.to_string()))
    }

    const RULES: &str = r#"
        [[rules]]
        id = "echo-needs-scope"
        tools = ["echo"]
        require_scopes = ["mcp:echo"]
        [[rules]]
        id = "root-deletes"
        tools = ["delete_*"]
        allow_users = ["root"]
        [[rules]]
        id = "no-unverified"
        tools = ["*"]
        when = "caller.email != '' && !caller.email_verified"
        effect = "deny"
        [[rules]]
        prompts = ["internal_*"]
        allow_groups = ["staff"]
    "#;

    #[test]
    fn the_first_matching_rule_decides_and_the_default_decides_the_rest() {
        let policy = policy(Effect::Allow, RULES).unwrap();
        let alice = Principal::new("alice").with_scopes(["mcp:read"]);
        let root = Principal::new("root").with_scopes(["mcp:read", "mcp:echo"]);
        assert_eq!(
            decide(&policy, &alice, Operation::call_tool("echo")),
            (Decision::StepUp(vec!["mcp:echo".into()]), Some("echo-needs-scope".into()))
        );
        assert_eq!(
            decide(&policy, &root, Operation::call_tool("echo")),
            (Decision::Allow, Some("echo-needs-scope".into()))
        );
        assert_eq!(
            decide(&policy, &alice, Operation::call_tool("delete_repo")),
            (Decision::Deny, Some("root-deletes".into()))
        );
        assert_eq!(
            decide(&policy, &root, Operation::call_tool("delete_repo")),
            (Decision::Allow, Some("root-deletes".into()))
        );
        assert_eq!(decide(&policy, &alice, Operation::call_tool("search")), (Decision::Allow, None));
        assert_eq!(
            decide(&policy, &alice, Operation::get_prompt("internal_notes")),
            (Decision::Deny, Some("#4".into()))
        );
        assert_eq!(decide(&policy, &alice, Operation::get_prompt("hello")), (Decision::Allow, None));
        let unverified = Principal::new("eve").with_claims(
            serde_json::json!({"email": "eve@example.org", "email_verified": false})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            decide(&policy, &unverified, Operation::call_tool("search")),
            (Decision::Deny, Some("no-unverified".into()))
        );
    }

    #[test]
    fn default_deny_refuses_unnamed_tools_but_not_protocol_plumbing() {
        let policy = policy(
            Effect::Deny,
            r#"
            [[rules]]
            tools = ["search"]
        "#,
        )
        .unwrap();
        let alice = Principal::new("alice");
        assert_eq!(decide(&policy, &alice, Operation::call_tool("search")).0, Decision::Allow);
        assert_eq!(decide(&policy, &alice, Operation::call_tool("other")).0, Decision::Deny);
        assert_eq!(decide(&policy, &alice, Operation::read_resource("file:///x")).0, Decision::Deny);
        for method in ["initialize", "ping", "tools/list", "notifications/initialized"] {
            assert_eq!(decide(&policy, &alice, Operation::method(method)).0, Decision::Allow, "{method}");
        }
    }

    #[test]
    fn a_rule_without_selectors_covers_plumbing_too() {
        let policy = policy(
            Effect::Allow,
            r#"
            [[rules]]
            allow_groups = ["staff"]
        "#,
        )
        .unwrap();
        assert_eq!(decide(&policy, &Principal::new("x"), Operation::method("initialize")).0, Decision::Deny);
    }

    #[test]
    fn scope_implications_satisfy_required_scopes() {
        let policy = policy(Effect::Allow, RULES)
            .unwrap()
            .with_scope_implications(ScopeImplications::new().imply("mcp:admin", ["mcp:*"]).unwrap());
        let admin = Principal::new("alice").with_scopes(["mcp:admin"]);
        assert_eq!(decide(&policy, &admin, Operation::call_tool("echo")).0, Decision::Allow);
        assert_eq!(policy.required_scopes().collect::<Vec<_>>(), ["mcp:echo"]);
    }

    #[test]
    fn a_failing_condition_denies() {
        let policy = policy(
            Effect::Allow,
            r#"
            [[rules]]
            tools = ["*"]
            when = "claims.department == 'research'"
        "#,
        )
        .unwrap();
        let verdict = policy.decide(&Principal::new("x"), &Operation::call_tool("a"));
        assert_eq!(verdict.decision, Decision::Deny);
        assert!(matches!(verdict.reason, Reason::ConditionFailed(_)));
    }

    #[test]
    fn errors_name_the_rule() {
        let error = policy(
            Effect::Allow,
            r#"
            [[rules]]
            tools = ["*"]
            [[rules]]
            id = "too-late"
            tools = ["echo"]
            allow_users = ["root"]
        "#,
        )
        .unwrap_err();
        assert_eq!(error.rule, "too-late");
        assert_eq!(error.problem, RuleProblem::Shadowed("#1".into()));
        assert!(error.to_string().starts_with("policy rule too-late: rule #1 before it"));
        let error = policy(Effect::Allow, "[[rules]]\ntools = ['a']\n[[rules]]\nprompts = []").unwrap_err();
        assert_eq!(error.rule, "#2");
        let error =
            policy(Effect::Allow, "[[rules]]\nid = 'x'\ntools = ['a']\n[[rules]]\nid = 'x'\ntools = ['b']")
                .unwrap_err();
        assert_eq!(error.problem, RuleProblem::DuplicateId);
    }
}
