//! The policy's cost: one decision against 100 rules (the caller matching only the last, so
//! every rule is looked at; and a CEL condition on the way), and filtering a 500-tool
//! `tools/list` answer. Commands and results: BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcpgate::Principal;
use mcpgate::policy::{Effect, Filtered, ListKind, Operation, Policy, RuleSpec, filter_list};
use serde_json::json;

/// 100 rules: 97 naming other tools, one CEL condition, one allow list, and the one that decides.
fn hundred_rules() -> Vec<RuleSpec> {
    let mut rules: Vec<RuleSpec> = (0..97)
        .map(|i| RuleSpec {
            tools: Some(vec![format!("tool_{i}"), format!("prefix_{i}_*")]),
            allow_groups: Some(vec![format!("group_{i}")]),
            ..Default::default()
        })
        .collect();
    rules.push(RuleSpec {
        tools: Some(vec!["*".into()]),
        when: Some("caller.email.endsWith('@blocked.example') && !caller.email_verified".into()),
        effect: Effect::Deny,
        ..Default::default()
    });
    rules.push(RuleSpec {
        tools: Some(vec!["admin_*".into()]),
        allow_users: Some(vec!["root".into()]),
        ..Default::default()
    });
    rules.push(RuleSpec {
        tools: Some(vec!["search_*".into()]),
        require_scopes: vec!["mcp:search".into()],
        ..Default::default()
    });
    rules
}

fn caller() -> Principal {
    let claims = json!({"email": "alice@example.com", "email_verified": true, "groups": ["staff", "eng"]});
    Principal::new("alice")
        .with_scopes(["mcp:read", "mcp:search"])
        .with_claims(claims.as_object().unwrap().clone())
}

fn decisions(c: &mut Criterion) {
    let policy = Policy::new(Effect::Deny, &hundred_rules()).unwrap();
    let alice = caller();
    let op = Operation::call_tool("search_docs");
    c.bench_function("policy/decide_100_rules_cel_on_the_way", |b| {
        b.iter(|| black_box(policy.decide(black_box(&alice), black_box(&op))));
    });
    let no_cel: Vec<RuleSpec> = hundred_rules().into_iter().filter(|r| r.when.is_none()).collect();
    let policy = Policy::new(Effect::Deny, &no_cel).unwrap();
    c.bench_function("policy/decide_99_rules_no_cel", |b| {
        b.iter(|| black_box(policy.decide(black_box(&alice), black_box(&op))));
    });
}

fn filtering(c: &mut Criterion) {
    let policy = Policy::new(Effect::Deny, &hundred_rules()).unwrap();
    let alice = caller();
    // 500 tools as a server lists them: a description and an input schema each (~300 bytes).
    let tools: Vec<_> = (0..500)
        .map(|i| {
            let name = if i % 2 == 0 { format!("search_{i}") } else { format!("tool_{i}") };
            json!({"name": name, "description": format!("Tool number {i}, which does something useful"),
                   "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                                   "required": ["query"]}})
        })
        .collect();
    let answer =
        json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": tools, "nextCursor": "page-2"}}).to_string();
    c.bench_function("policy/filter_500_tool_list", |b| {
        b.iter(|| {
            // As the policy layer does it: the caller's facts made once for the whole list.
            let judge = policy.for_caller(&alice);
            let filtered = filter_list(black_box(answer.as_bytes()), Some(ListKind::Tools), |op| {
                judge.decide(op).decision != mcpgate::policy::Decision::Deny
            });
            assert!(matches!(filtered, Filtered::Rewritten(_, _)));
            black_box(filtered)
        });
    });
    c.bench_function("policy/parse_500_tool_list_baseline", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(&answer)).unwrap()));
    });
}

criterion_group!(benches, decisions, filtering);
criterion_main!(benches);
