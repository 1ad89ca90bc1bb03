//! Rule conditions (`when`), in CEL, the Common Expression Language (see `docs/policy.md` for
//! why CEL). A condition sees three variables:
//!
//! - `caller`: `subject`, `client_id` (`""` when the token names none), `scopes` and `groups`
//!   (lists of strings), `email` (`""` when none), `email_verified` (a boolean) and `kind`
//!   (`user`, `machine` or `api_key`: see [`crate::ClientKind`]);
//! - `claims`: every claim of the caller's token;
//! - `mcp`: `method`, `tool`, `prompt`, `resource` (the one the operation names, `""` for the
//!   others), `name` (whichever it is) and `arguments` (the tool's or prompt's; `{}` when judging
//!   an entry of a list).
//!
//! A condition is compiled once, when the policy loads: a syntax error, a name other than those
//! three, or an expression that fails or is not a boolean on a trial run is refused then, and so
//! is one that can never be true. At decision time an evaluation that fails (a claim the token
//! lacks, say) denies the operation: write `has(claims.department) && …` for optional claims.

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::objects::Value;
use cel::{Context, Env, ExecutionError, Program};

use super::Operation;
use crate::Principal;

/// The variables a condition may name.
const VARIABLES: [&str; 3] = ["caller", "claims", "mcp"];

/// How much of one variable conditions read: made only as far as read, since turning a
/// token's claims into CEL values costs more than most evaluations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Need {
    /// Not read.
    #[default]
    Nothing,
    /// Only these members (`caller.email`, `has(claims.department)`).
    Members(BTreeSet<String>),
    /// The whole value (passed on as it is, indexed, iterated…).
    Everything,
}

impl Need {
    fn or(&self, other: &Need) -> Need {
        match (self, other) {
            (Need::Everything, _) | (_, Need::Everything) => Need::Everything,
            (Need::Nothing, need) | (need, Need::Nothing) => need.clone(),
            (Need::Members(a), Need::Members(b)) => Need::Members(a.union(b).cloned().collect()),
        }
    }

    fn any(&self) -> bool {
        *self != Need::Nothing
    }

    fn wants(&self, member: &str) -> bool {
        match self {
            Need::Nothing => false,
            Need::Members(members) => members.contains(member),
            Need::Everything => true,
        }
    }

    fn add_member(&mut self, member: &str) {
        match self {
            Need::Everything => {}
            Need::Members(members) => {
                members.insert(member.to_owned());
            }
            Need::Nothing => *self = Need::Members(BTreeSet::from([member.to_owned()])),
        }
    }
}

/// What a condition (or every condition of a policy) reads of each variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Uses {
    caller: Need,
    claims: Need,
    mcp: Need,
}

impl Uses {
    fn everything() -> Uses {
        Uses { caller: Need::Everything, claims: Need::Everything, mcp: Need::Everything }
    }

    /// What either reads.
    pub(crate) fn or(&self, other: &Uses) -> Uses {
        Uses {
            caller: self.caller.or(&other.caller),
            claims: self.claims.or(&other.claims),
            mcp: self.mcp.or(&other.mcp),
        }
    }

    /// Whether `mcp.arguments` is read.
    pub(crate) fn reads_arguments(&self) -> bool {
        self.mcp.wants("arguments")
    }

    fn need_mut(&mut self, variable: &str) -> Option<&mut Need> {
        match variable {
            "caller" => Some(&mut self.caller),
            "claims" => Some(&mut self.claims),
            "mcp" => Some(&mut self.mcp),
            _ => None,
        }
    }
}

/// A compiled condition.
pub(crate) struct Condition {
    program: Program,
    pub(crate) uses: Uses,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").field("uses", &self.uses).finish_non_exhaustive()
    }
}

/// One caller as conditions see it: `caller` and `claims`, made the first time a condition
/// needs them and then shared by every condition evaluated for that caller — all the rules of
/// one decision, or every entry of a list being filtered.
pub(crate) struct Facts<'c> {
    env: &'c Arc<Env>,
    principal: &'c Principal,
    uses: &'c Uses,
    root: OnceCell<Context<'static, 'static>>,
}

/// One operation as conditions see it: `mcp`, made once for all the rules judging it.
#[derive(Default)]
pub(crate) struct OperationFacts {
    mcp: OnceCell<Value>,
}

fn strings<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    Value::List(Arc::new(items.map(Value::from).collect()))
}

/// The members of a map variable that `need` asks for; each value made only when wanted.
fn map<'a>(
    need: &Need,
    members: impl IntoIterator<Item = (&'static str, Box<dyn FnOnce() -> Value + 'a>)>,
) -> Value {
    let map: HashMap<String, Value> =
        members.into_iter().filter(|(k, _)| need.wants(k)).map(|(k, make)| (k.to_owned(), make())).collect();
    Value::from(map)
}

/// A JSON value as CEL sees it (`null` when it cannot be represented, which cannot happen for
/// parsed JSON: every JSON value has a CEL counterpart).
fn json(value: &serde_json::Value) -> Value {
    cel::to_value(value).unwrap_or(Value::Null)
}

impl<'c> Facts<'c> {
    /// The facts of `principal`, for conditions reading `uses`.
    pub(crate) fn new(env: &'c Arc<Env>, principal: &'c Principal, uses: &'c Uses) -> Self {
        Self { env, principal, uses, root: OnceCell::new() }
    }

    fn root(&self) -> &Context<'static, 'static> {
        self.root.get_or_init(|| {
            let p = self.principal;
            let mut context = Context::with_env(self.env.clone());
            if self.uses.caller.any() {
                let caller = map(
                    &self.uses.caller,
                    [
                        ("subject", Box::new(|| Value::from(p.subject())) as Box<dyn FnOnce() -> Value>),
                        ("client_id", Box::new(|| Value::from(p.client_id().unwrap_or("")))),
                        ("scopes", Box::new(|| strings(p.scopes().iter().map(String::as_str)))),
                        ("groups", Box::new(|| strings(p.groups()))),
                        ("email", Box::new(|| Value::from(p.email().unwrap_or("")))),
                        ("email_verified", Box::new(|| Value::Bool(p.email_verified()))),
                        ("kind", Box::new(|| Value::from(p.client_kind().as_str()))),
                    ],
                );
                context.add_variable_from_value("caller", caller);
            }
            if self.uses.claims.any() {
                let claims: HashMap<String, Value> = p
                    .claims()
                    .iter()
                    .filter(|(k, _)| self.uses.claims.wants(k))
                    .map(|(k, v)| (k.clone(), json(v)))
                    .collect();
                context.add_variable_from_value("claims", Value::from(claims));
            }
            context
        })
    }
}

impl OperationFacts {
    fn mcp(&self, need: &Need, op: &Operation<'_>) -> Value {
        self.mcp
            .get_or_init(|| {
                let name_of = move |kind| match op.target {
                    Some(t) if t.kind == kind => t.name,
                    _ => "",
                };
                let arguments = move || match op.arguments {
                    Some(arguments) => json(arguments),
                    None => Value::from(HashMap::<String, Value>::new()),
                };
                map(
                    need,
                    [
                        ("method", Box::new(|| Value::from(op.method)) as Box<dyn FnOnce() -> Value>),
                        ("tool", Box::new(move || Value::from(name_of(super::TargetKind::Tool)))),
                        ("prompt", Box::new(move || Value::from(name_of(super::TargetKind::Prompt)))),
                        ("resource", Box::new(move || Value::from(name_of(super::TargetKind::Resource)))),
                        ("name", Box::new(|| Value::from(op.name().unwrap_or("")))),
                        ("arguments", Box::new(arguments)),
                    ],
                )
            })
            .clone()
    }
}

/// Why a condition was refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// Not a CEL expression.
    #[error("`when` is not a CEL expression: {0}")]
    Syntax(String),
    /// Names a variable other than `caller`, `claims` and `mcp`.
    #[error("`when` names {0:?}; a condition sees only `caller`, `claims` and `mcp`")]
    UnknownName(String),
    /// Fails on a trial run with a typical caller (an unknown function, a type mismatch).
    #[error("`when` fails on a trial run: {0}")]
    Fails(String),
    /// Gives something other than `true` or `false`.
    #[error("`when` must be true or false, not {0}")]
    NotBoolean(String),
    /// Names no variable and is false: the rule can never match.
    #[error("`when` is always false, so the rule can never match")]
    AlwaysFalse,
}

impl Condition {
    /// Compiles and checks `source`.
    pub(crate) fn compile(env: &Arc<Env>, source: &str) -> Result<Self, ConditionError> {
        let program = env.compile(source).map_err(|e| ConditionError::Syntax(e.to_string()))?;
        let mut free = HashSet::new();
        let mut uses = Uses::default();
        free_names(program.expression(), &mut Vec::new(), &mut free, &mut uses);
        if let Some(unknown) = free.iter().find(|name| !VARIABLES.contains(&name.as_str())) {
            return Err(ConditionError::UnknownName(unknown.clone()));
        }
        let condition = Self { program, uses };
        let trial = Principal::new("trial").with_client_id("trial").with_scopes(["trial"]);
        let everything = Uses::everything();
        let facts = Facts::new(env, &trial, &everything);
        match condition.run(&facts, &OperationFacts::default(), &Operation::call_tool("trial")) {
            Ok(Value::Bool(false)) if free.is_empty() => Err(ConditionError::AlwaysFalse),
            Ok(Value::Bool(_)) | Err(ExecutionError::NoSuchKey(_)) => Ok(condition),
            Ok(other) => Err(ConditionError::NotBoolean(format!("{other:?}"))),
            Err(e) => Err(ConditionError::Fails(e.to_string())),
        }
    }

    fn run(
        &self,
        facts: &Facts<'_>,
        op_facts: &OperationFacts,
        op: &Operation<'_>,
    ) -> Result<Value, ExecutionError> {
        let root = facts.root();
        if !facts.uses.mcp.any() {
            return self.program.execute(root);
        }
        let mut scope = root.new_inner_scope();
        scope.add_variable_from_value("mcp", op_facts.mcp(&facts.uses.mcp, op));
        self.program.execute(&scope)
    }

    /// Whether the condition holds; `Err` (a description) when it cannot be evaluated. The
    /// description names what went wrong but never a value: CEL's errors quote the operands
    /// (a claim's value, an argument), and this text goes to the audit log.
    pub(crate) fn holds(
        &self,
        facts: &Facts<'_>,
        op_facts: &OperationFacts,
        op: &Operation<'_>,
    ) -> Result<bool, String> {
        match self.run(facts, op_facts, op) {
            Ok(Value::Bool(holds)) => Ok(holds),
            Ok(_) => Err("the condition is not true or false for this caller".to_owned()),
            Err(ExecutionError::NoSuchKey(key)) => Err(format!("no member {key:?}")),
            Err(ExecutionError::UndeclaredReference(name)) => Err(format!("nothing named {name:?}")),
            Err(_) => Err("a type or function error (values not shown)".to_owned()),
        }
    }
}

/// The identifiers `expr` uses that nothing inside it binds (comprehension variables are bound
/// by their macro: `caller.groups.exists(g, g == "admins")` uses `caller` only), and into
/// `uses`, what it reads of each: `caller.groups` reads one member, a bare `claims` all.
fn free_names(expr: &IdedExpr, bound: &mut Vec<String>, free: &mut HashSet<String>, uses: &mut Uses) {
    let mut walk = |e: &IdedExpr, bound: &mut Vec<String>| free_names(e, bound, free, uses);
    match &expr.expr {
        Expr::Ident(name) => {
            if !bound.contains(name) {
                free.insert(name.clone());
                if let Some(need) = uses.need_mut(name) {
                    *need = Need::Everything;
                }
            }
        }
        Expr::Select(select) => match &select.operand.expr {
            Expr::Ident(name) if !bound.contains(name) => {
                free.insert(name.clone());
                if let Some(need) = uses.need_mut(name) {
                    need.add_member(&select.field);
                }
            }
            _ => walk(&select.operand, bound),
        },
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                walk(target, bound);
            }
            for arg in &call.args {
                walk(arg, bound);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|e| walk(e, bound)),
        Expr::Map(map) => entries(&map.entries, bound, &mut walk),
        Expr::Struct(structure) => entries(&structure.entries, bound, &mut walk),
        Expr::Comprehension(c) => {
            walk(&c.iter_range, bound);
            walk(&c.accu_init, bound);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                walk(part, bound);
            }
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn entries(
    entries: &[cel::common::ast::IdedEntryExpr],
    bound: &mut Vec<String>,
    walk: &mut impl FnMut(&IdedExpr, &mut Vec<String>),
) {
    for entry in entries {
        match &entry.expr {
            EntryExpr::StructField(field) => walk(&field.value, bound),
            EntryExpr::MapEntry(entry) => {
                walk(&entry.key, bound);
                walk(&entry.value, bound);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Arc<Env> {
        Arc::new(Env::stdlib())
    }

    fn holds(source: &str, principal: &Principal, op: &Operation<'_>) -> Result<bool, String> {
        let env = env();
        let condition = Condition::compile(&env, source).unwrap();
        condition.holds(&Facts::new(&env, principal, &condition.uses), &OperationFacts::default(), op)
    }

    #[test]
    fn conditions_read_the_caller_the_claims_and_the_operation() {
        let claims = serde_json::json!({"groups": ["eng", "admins"], "email": "ada@example.org",
            "email_verified": true, "department": "research", "level": 3});
        let ada =
            Principal::new("ada").with_scopes(["mcp:read"]).with_claims(claims.as_object().unwrap().clone());
        let arguments = serde_json::json!({"path": "/etc/passwd"});
        let op = Operation {
            method: "tools/call",
            target: Some(super::super::Target { kind: super::super::TargetKind::Tool, name: "delete_file" }),
            arguments: Some(&arguments),
        };
        for (source, expected) in [
            (r#"caller.groups.exists(g, g == "admins")"#, true),
            (r#"caller.email.endsWith("@example.org") && caller.email_verified"#, true),
            (r#""mcp:write" in caller.scopes"#, false),
            (r#"claims.department == "research" && claims.level >= 3"#, true),
            (r#"mcp.tool.startsWith("delete_") && mcp.arguments.path.startsWith("/etc")"#, true),
            (r#"mcp.method == "tools/call" && mcp.prompt == "" && mcp.name == "delete_file""#, true),
            (r#"mcp.tool.matches("^del")"#, true),
            (r#"caller.kind == "user""#, true),
        ] {
            assert_eq!(holds(source, &ada, &op), Ok(expected), "{source}");
        }
        let ci = Principal::new("ci")
            .with_claims(serde_json::json!({"client_kind": "machine"}).as_object().unwrap().clone());
        assert_eq!(holds(r#"caller.kind == "machine""#, &ci, &op), Ok(true));
        // A claim the token lacks fails the evaluation (the caller denies), unless tested first.
        let bob = Principal::new("bob");
        assert_eq!(
            holds(r#"claims.department == "research""#, &bob, &op),
            Err(r#"no member "department""#.into())
        );
        // A failure's description never quotes a value (it goes to the audit log).
        let secret = Principal::new("eve")
            .with_claims(serde_json::json!({"ssn": "078-05-1120"}).as_object().unwrap().clone());
        let failed = holds(r#"claims.ssn + 1 == 2"#, &secret, &op).unwrap_err();
        assert!(!failed.contains("078-05-1120"), "{failed}");
        assert_eq!(
            holds(r#"has(claims.department) && claims.department == "research""#, &bob, &op),
            Ok(false)
        );
    }

    #[test]
    fn only_what_a_condition_reads_is_made() {
        let env = env();
        let uses = |source: &str| Condition::compile(&env, source).unwrap().uses;
        let members = |names: &[&str]| Need::Members(names.iter().map(|n| (*n).to_owned()).collect());
        let read = uses("caller.email == 'a' && has(claims.department) && mcp.arguments.path == '/'");
        assert_eq!(
            read,
            Uses {
                caller: members(&["email"]),
                claims: members(&["department"]),
                mcp: members(&["arguments"])
            }
        );
        let read = uses("caller.groups.exists(g, g == claims.team)");
        assert_eq!(
            (read.caller, read.claims, read.mcp),
            (members(&["groups"]), members(&["team"]), Need::Nothing)
        );
        assert_eq!(uses("'x' in claims").claims, Need::Everything);
        assert_eq!(uses("size(caller) > 0").caller, Need::Everything);
        // What is made reads the same as the whole would.
        let ada = Principal::new("ada")
            .with_claims(serde_json::json!({"team": "eng", "groups": ["eng"]}).as_object().unwrap().clone());
        assert_eq!(
            holds("caller.groups.exists(g, g == claims.team)", &ada, &Operation::call_tool("t")),
            Ok(true)
        );
    }

    #[test]
    fn bad_conditions_are_refused_at_load_with_the_reason() {
        let env = env();
        let refused = |source: &str| Condition::compile(&env, source).unwrap_err();
        assert!(matches!(refused("caller.subject =="), ConditionError::Syntax(_)));
        assert_eq!(refused("user.subject == 'x'"), ConditionError::UnknownName("user".into()));
        assert_eq!(refused("caller.groups.exists(g, h)"), ConditionError::UnknownName("h".into()));
        assert!(matches!(refused("nosuchfunction(caller.subject)"), ConditionError::Fails(_)));
        assert!(matches!(refused("caller.subject + 1 == 2"), ConditionError::Fails(_)));
        assert!(matches!(refused("caller.subject"), ConditionError::NotBoolean(_)));
        assert_eq!(refused("1 == 2"), ConditionError::AlwaysFalse);
        // Comprehension variables are not free names; a missing claim is not a load error.
        assert!(Condition::compile(&env, "caller.groups.all(g, g != 'banned')").is_ok());
        assert!(Condition::compile(&env, "claims.department == 'x'").is_ok());
    }
}
