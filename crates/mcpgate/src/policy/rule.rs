//! One policy rule: what it is written as ([`RuleSpec`], the `[[policy.rules]]` tables of the
//! gateway) and what it is compiled to, with every check that makes a bad rule a load-time
//! error naming the rule rather than a surprise at request time.

use std::sync::Arc;

use serde::Deserialize;

use super::condition::{Condition, ConditionError, Facts, OperationFacts, Uses};
use super::operation::{Operation, TargetKind};
use super::pattern::Pattern;
use crate::Principal;
use crate::scope::{BadScope, ScopeImplications};

/// What a matching rule decides, before its allow lists and scopes are consulted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allowed (to the callers its allow lists name, once the token has its scopes).
    #[default]
    Allow,
    /// Denied.
    Deny,
}

/// A rule as written. Every selector it has must match for the rule to match; the first
/// matching rule of a policy decides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for errors and the audit log (default: `#` and its position, from 1).
    pub id: Option<String>,
    /// JSON-RPC methods (names or globs).
    pub methods: Option<Vec<String>>,
    /// Tool names or globs.
    pub tools: Option<Vec<String>>,
    /// Prompt names or globs.
    pub prompts: Option<Vec<String>>,
    /// Resource URIs or globs (a resource template is judged by its URI template).
    pub resources: Option<Vec<String>>,
    /// Scopes the token must have; without them the caller is asked to step up (HTTP 403).
    #[serde(default)]
    pub require_scopes: Vec<String>,
    /// Subjects allowed; with any `allow_*` list, everyone else the rule matches is denied.
    pub allow_users: Option<Vec<String>>,
    /// Groups (the token's `groups` claim) allowed.
    pub allow_groups: Option<Vec<String>>,
    /// Email addresses or globs (`*@example.com`) allowed, when the provider verified them.
    pub allow_emails: Option<Vec<String>>,
    /// OAuth client ids allowed.
    pub allow_clients: Option<Vec<String>>,
    /// A CEL condition over `caller`, `claims` and `mcp` (`docs/policy.md` lists their members).
    pub when: Option<String>,
    /// `allow` (default) or `deny`.
    #[serde(default)]
    pub effect: Effect,
}

/// What is wrong with a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleProblem {
    /// A selector or allow list with nothing in it.
    #[error("`{0}` is empty, so the rule can never match (remove the key to match everything)")]
    EmptyList(&'static str),
    /// An empty string in a list.
    #[error("`{0}` has an empty entry")]
    EmptyEntry(&'static str),
    /// Two of `tools`, `prompts`, `resources`: no operation names both.
    #[error("`{0}` and `{1}` together can never match: an operation names one tool, prompt or resource")]
    TwoTargets(&'static str, &'static str),
    /// `methods` that exclude every method of the rule's `tools`/`prompts`/`resources`.
    #[error("`methods` names none of the methods that act on `{0}` ({1}), so the rule can never match")]
    MethodsExcludeTarget(&'static str, String),
    /// `effect = "deny"` with keys that only make sense when allowing.
    #[error("`effect = \"deny\"` with `{0}`: a deny rule denies everyone it matches")]
    DenyWith(&'static str),
    /// A scope that is not one.
    #[error(transparent)]
    Scope(#[from] BadScope),
    /// The condition is unusable.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// An earlier rule decides everything this one would match.
    #[error("rule {0} before it matches everything it matches, so it can never match")]
    Shadowed(String),
    /// Two rules with one id.
    #[error("another rule has this id")]
    DuplicateId,
}

/// Who an allow-listing rule lets through.
#[derive(Debug, Default)]
struct AllowList {
    users: Vec<Pattern>,
    groups: Vec<Pattern>,
    /// Lowercased.
    emails: Vec<Pattern>,
    clients: Vec<Pattern>,
}

impl AllowList {
    fn admits(&self, caller: &Principal) -> bool {
        let any = |patterns: &[Pattern], value: &str| patterns.iter().any(|p| p.matches(value));
        any(&self.users, caller.subject())
            || caller.client_id().is_some_and(|client| any(&self.clients, client))
            || caller.groups().any(|group| any(&self.groups, group))
            || (caller.email_verified()
                && caller.email().is_some_and(|email| any(&self.emails, &email.to_ascii_lowercase())))
    }
}

/// The outcome of a rule that matched.
pub(crate) enum RuleOutcome<'r> {
    Allow,
    Deny,
    /// Not in the rule's allow lists.
    NotAllowed,
    /// Allowed once the token also has these scopes.
    StepUp(Vec<&'r str>),
    /// The condition could not be evaluated.
    ConditionFailed(String),
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) label: String,
    methods: Option<Vec<Pattern>>,
    target: Option<(TargetKind, Vec<Pattern>)>,
    allow: Option<AllowList>,
    pub(crate) require_scopes: Vec<String>,
    when: Option<Condition>,
    effect: Effect,
}

fn patterns(key: &'static str, list: &[String], lowercase: bool) -> Result<Vec<Pattern>, RuleProblem> {
    if list.is_empty() {
        return Err(RuleProblem::EmptyList(key));
    }
    list.iter()
        .map(|text| match text.is_empty() {
            true => Err(RuleProblem::EmptyEntry(key)),
            false if lowercase => Ok(Pattern::new(&text.to_ascii_lowercase())),
            false => Ok(Pattern::new(text)),
        })
        .collect()
}

impl Rule {
    /// Compiles `spec`, the rule at `position` (from 1).
    pub(crate) fn compile(
        spec: &RuleSpec,
        position: usize,
        env: &Arc<cel::Env>,
    ) -> Result<Self, RuleProblem> {
        let methods = spec.methods.as_deref().map(|m| patterns("methods", m, false)).transpose()?;
        let mut target = None;
        for (kind, list) in [
            (TargetKind::Tool, &spec.tools),
            (TargetKind::Prompt, &spec.prompts),
            (TargetKind::Resource, &spec.resources),
        ] {
            let Some(list) = list else { continue };
            if let Some((first, _)) = &target {
                return Err(RuleProblem::TwoTargets(TargetKind::key(*first), kind.key()));
            }
            target = Some((kind, patterns(kind.key(), list, false)?));
        }
        if let (Some(methods), Some((kind, _))) = (&methods, &target)
            && !kind.methods().iter().any(|m| methods.iter().any(|p| p.matches(m)))
        {
            return Err(RuleProblem::MethodsExcludeTarget(kind.key(), kind.methods().join(", ")));
        }
        let lists = [
            ("allow_users", &spec.allow_users),
            ("allow_groups", &spec.allow_groups),
            ("allow_emails", &spec.allow_emails),
            ("allow_clients", &spec.allow_clients),
        ];
        let mut allow: Option<AllowList> = None;
        for (key, list) in lists {
            let Some(list) = list else { continue };
            if spec.effect == Effect::Deny {
                return Err(RuleProblem::DenyWith(key));
            }
            let compiled = patterns(key, list, key == "allow_emails")?;
            let allow = allow.get_or_insert_with(AllowList::default);
            match key {
                "allow_users" => allow.users = compiled,
                "allow_groups" => allow.groups = compiled,
                "allow_emails" => allow.emails = compiled,
                _ => allow.clients = compiled,
            }
        }
        if spec.effect == Effect::Deny && !spec.require_scopes.is_empty() {
            return Err(RuleProblem::DenyWith("require_scopes"));
        }
        for scope in &spec.require_scopes {
            if !crate::scope::is_scope_token(scope) {
                return Err(BadScope(scope.clone()).into());
            }
        }
        let when = spec.when.as_deref().map(|source| Condition::compile(env, source)).transpose()?;
        Ok(Self {
            label: spec.id.clone().unwrap_or_else(|| format!("#{position}")),
            methods,
            target,
            allow,
            require_scopes: spec.require_scopes.clone(),
            when,
            effect: spec.effect,
        })
    }

    /// Whether the rule's selectors (not its condition) match `op`.
    pub(crate) fn selects(&self, op: &Operation<'_>) -> bool {
        if let Some(methods) = &self.methods
            && !methods.iter().any(|p| p.matches(op.method))
        {
            return false;
        }
        match (&self.target, op.target) {
            (None, _) => true,
            (Some((kind, patterns)), Some(target)) => {
                *kind == target.kind && patterns.iter().any(|p| p.matches(target.name))
            }
            (Some(_), None) => false,
        }
    }

    /// What the rule decides about `op`, or `None` when it does not match.
    pub(crate) fn judge(
        &self,
        facts: &Facts<'_>,
        op_facts: &OperationFacts,
        caller: &Principal,
        op: &Operation<'_>,
        scopes: &ScopeImplications,
    ) -> Option<RuleOutcome<'_>> {
        if !self.selects(op) {
            return None;
        }
        if let Some(when) = &self.when {
            match when.holds(facts, op_facts, op) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(RuleOutcome::ConditionFailed(e)),
            }
        }
        if self.effect == Effect::Deny {
            return Some(RuleOutcome::Deny);
        }
        if let Some(allow) = &self.allow
            && !allow.admits(caller)
        {
            return Some(RuleOutcome::NotAllowed);
        }
        let missing = scopes.missing(caller.scopes(), &self.require_scopes);
        Some(if missing.is_empty() { RuleOutcome::Allow } else { RuleOutcome::StepUp(missing) })
    }

    /// The variables its condition reads.
    pub(crate) fn uses(&self) -> Uses {
        self.when.as_ref().map(|w| w.uses.clone()).unwrap_or_default()
    }

    /// Whether this rule, placed before `later`, decides everything `later` would match (so
    /// `later` can never match). Conservative: `false` when it cannot tell.
    pub(crate) fn hides(&self, later: &Rule) -> bool {
        if self.when.is_some() {
            return false;
        }
        let includes =
            |mine: &[Pattern], theirs: &[Pattern]| theirs.iter().all(|t| mine.iter().any(|m| m.includes(t)));
        let methods = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => includes(mine, theirs),
            (Some(_), None) => false,
        };
        let target = match (&self.target, &later.target) {
            (None, _) => true,
            (Some((mine_kind, mine)), Some((their_kind, theirs))) => {
                mine_kind == their_kind && includes(mine, theirs)
            }
            (Some(_), None) => false,
        };
        methods && target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Arc<cel::Env> {
        Arc::new(cel::Env::stdlib())
    }

    fn spec(toml_text: &str) -> RuleSpec {
        toml::from_str(toml_text).unwrap()
    }

    fn problem(toml_text: &str) -> RuleProblem {
        Rule::compile(&spec(toml_text), 1, &env()).unwrap_err()
    }

    #[test]
    fn rules_that_can_never_match_or_contradict_themselves_are_refused() {
        assert_eq!(problem("tools = []"), RuleProblem::EmptyList("tools"));
        assert_eq!(problem("tools = ['']"), RuleProblem::EmptyEntry("tools"));
        assert_eq!(problem("tools = ['a']\nprompts = ['b']"), RuleProblem::TwoTargets("tools", "prompts"));
        assert!(matches!(
            problem("tools = ['a']\nmethods = ['prompts/get']"),
            RuleProblem::MethodsExcludeTarget("tools", _)
        ));
        assert_eq!(
            problem("tools = ['a']\neffect = 'deny'\nallow_users = ['x']"),
            RuleProblem::DenyWith("allow_users")
        );
        assert_eq!(
            problem("tools = ['a']\neffect = 'deny'\nrequire_scopes = ['x']"),
            RuleProblem::DenyWith("require_scopes")
        );
        assert_eq!(problem("allow_groups = []"), RuleProblem::EmptyList("allow_groups"));
        assert!(matches!(problem("require_scopes = ['a b']"), RuleProblem::Scope(_)));
        assert_eq!(problem("when = 'false'"), RuleProblem::Condition(ConditionError::AlwaysFalse));
        assert!(toml::from_str::<RuleSpec>("toolz = ['a']").unwrap_err().to_string().contains("toolz"));
        assert!(toml::from_str::<RuleSpec>("effect = 'maybe'").is_err());
        // `completion/complete` acts on prompts: a methods selector may narrow a prompts rule to it.
        assert!(Rule::compile(&spec("prompts = ['a']\nmethods = ['completion/*']"), 1, &env()).is_ok());
    }

    #[test]
    fn an_earlier_rule_hides_a_later_one_only_when_it_covers_it() {
        let rule = |text: &str| Rule::compile(&spec(text), 1, &env()).unwrap();
        assert!(rule("tools = ['*']").hides(&rule("tools = ['echo']")));
        assert!(rule("tools = ['delete_*']").hides(&rule("tools = ['delete_all', 'delete_x*']")));
        assert!(!rule("tools = ['delete_*']").hides(&rule("tools = ['delete_all', 'drop']")));
        assert!(!rule("tools = ['*']").hides(&rule("prompts = ['echo']")));
        assert!(rule("effect = 'deny'").hides(&rule("prompts = ['echo']")));
        assert!(!rule("tools = ['*']\nwhen = 'caller.subject == \"x\"'").hides(&rule("tools = ['echo']")));
        assert!(!rule("tools = ['echo']").hides(&rule("when = 'true'")));
        assert!(rule("methods = ['tools/*']").hides(&rule("methods = ['tools/call']")));
        assert!(!rule("methods = ['tools/call']").hides(&rule("tools = ['a']")));
    }

    #[test]
    fn allow_lists_admit_by_subject_client_group_or_verified_email() {
        let rule = Rule::compile(
            &spec("allow_users = ['root']\nallow_clients = ['ci']\nallow_groups = ['admins']\nallow_emails = ['*@Example.org']"),
            1,
            &env(),
        )
        .unwrap();
        let allow = rule.allow.as_ref().unwrap();
        let with_claims = |sub: &str, claims: serde_json::Value| {
            Principal::new(sub).with_claims(claims.as_object().unwrap().clone())
        };
        assert!(allow.admits(&Principal::new("root")));
        assert!(allow.admits(&Principal::new("x").with_client_id("ci")));
        assert!(allow.admits(&with_claims("x", serde_json::json!({"groups": ["users", "admins"]}))));
        assert!(allow.admits(&with_claims(
            "x",
            serde_json::json!({"email": "Ada@EXAMPLE.org", "email_verified": true})
        )));
        assert!(!allow.admits(&with_claims(
            "x",
            serde_json::json!({"email": "ada@example.org", "email_verified": false})
        )));
        assert!(!allow.admits(&with_claims(
            "x",
            serde_json::json!({"email": "ada@example.org", "email_verified": "true"})
        )));
        assert!(!allow.admits(&with_claims("x", serde_json::json!({"groups": "admins"}))));
        assert!(!allow.admits(&Principal::new("rooted")));
    }
}
