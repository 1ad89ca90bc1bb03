//! Scopes that stand for others. The MCP specification says servers must account for scope
//! hierarchies: with `mcp:admin` implying `mcp:write` and `mcp:write` implying `mcp:read`, a
//! token granted `mcp:admin` satisfies a tool that requires `mcp:read`. A scope ending in `*`
//! (`files:*`) covers every scope that starts with what comes before it (`files:read`), whether
//! it was granted or is implied. The bearer layer's required scopes and the policy both ask
//! [`ScopeImplications::covers`].
//!
//! ```
//! use mcpgate::scope::ScopeImplications;
//!
//! let implications = ScopeImplications::new()
//!     .imply("mcp:admin", ["mcp:write", "files:*"])?
//!     .imply("mcp:write", ["mcp:read"])?;
//! let granted = ["mcp:admin".to_owned()];
//! assert!(implications.covers(&granted, "mcp:read"));
//! assert!(implications.covers(&granted, "files:delete"));
//! assert!(!implications.covers(&["mcp:read".to_owned()], "mcp:write"));
//! # Ok::<(), mcpgate::scope::BadScope>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

/// A scope that is not an RFC 6749 §3.3 `scope-token`, or a wildcard covering everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a scope (RFC 6749 §3.3: printable ASCII without spaces, quotes or backslashes; a wildcard needs a prefix, as in \"files:*\")"
)]
pub struct BadScope(pub String);

/// Whether `scope` is an RFC 6749 §3.3 `scope-token` (`1*NQCHAR`).
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

fn checked(scope: &str) -> Result<String, BadScope> {
    if !is_scope_token(scope) || scope == "*" {
        return Err(BadScope(scope.to_owned()));
    }
    Ok(scope.to_owned())
}

/// Whether `have` stands for `want` by itself: equal, or a wildcard whose prefix `want` has.
fn covers_directly(have: &str, want: &str) -> bool {
    have == want
        || have.strip_suffix('*').is_some_and(|prefix| want.len() > prefix.len() && want.starts_with(prefix))
}

/// Which scopes imply which, closed under transitivity (a cycle makes its scopes equivalent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeImplications {
    /// Scope → every scope it implies, directly or not.
    closure: BTreeMap<String, BTreeSet<String>>,
}

impl ScopeImplications {
    /// No implications: a scope stands for itself (and a granted wildcard for what it covers).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds that `scope` implies each of `implied`.
    pub fn imply<S: AsRef<str>>(
        mut self,
        scope: &str,
        implied: impl IntoIterator<Item = S>,
    ) -> Result<Self, BadScope> {
        let scope = checked(scope)?;
        let implied = implied.into_iter().map(|s| checked(s.as_ref())).collect::<Result<Vec<_>, _>>()?;
        // Closing the old closure with the new edges is the closure of every edge given.
        let mut edges = self.closure.clone();
        edges.entry(scope).or_default().extend(implied);
        self.closure = close(&edges);
        Ok(self)
    }

    /// Whether a token granted `granted` satisfies `required`.
    pub fn covers(&self, granted: &[String], required: &str) -> bool {
        granted.iter().any(|g| {
            covers_directly(g, required)
                || self.implied_by(g).any(|implied| covers_directly(implied, required))
        })
    }

    /// The scopes of `required` that `granted` does not satisfy, in their order.
    pub fn missing<'r>(&self, granted: &[String], required: &'r [String]) -> Vec<&'r str> {
        required.iter().filter(|r| !self.covers(granted, r)).map(String::as_str).collect()
    }

    /// Everything `scope` implies, directly or not (implications are keyed by the scope's name:
    /// a granted `files:read` does not inherit what a `files:*` key implies).
    fn implied_by<'a>(&'a self, scope: &str) -> impl Iterator<Item = &'a String> {
        self.closure.get(scope).into_iter().flatten()
    }

    /// Whether no implication is configured.
    pub fn is_empty(&self) -> bool {
        self.closure.is_empty()
    }
}

/// The transitive closure of `direct`: each key's set grows by its members' sets until it
/// stops growing (a few dozen scopes at most, so the plain fixed point is enough).
fn close(direct: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut closure = direct.clone();
    loop {
        let mut grew = false;
        let keys: Vec<String> = closure.keys().cloned().collect();
        for key in keys {
            let reachable: BTreeSet<String> = closure[&key]
                .iter()
                .flat_map(|implied| {
                    // An implied wildcard reaches the keys it covers, an implied name its own set.
                    closure
                        .iter()
                        .filter(|(k, _)| covers_directly(implied, k))
                        .flat_map(|(k, set)| std::iter::once(k.clone()).chain(set.iter().cloned()))
                        .collect::<Vec<_>>()
                })
                .filter(|s| *s != key)
                .collect();
            let set = closure.get_mut(&key).expect("a key of the map");
            let before = set.len();
            set.extend(reachable);
            grew |= set.len() > before;
        }
        if !grew {
            return closure;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn implications_are_transitive_and_one_way() {
        let i = ScopeImplications::new()
            .imply("mcp:admin", ["mcp:write"])
            .unwrap()
            .imply("mcp:write", ["mcp:read"])
            .unwrap();
        assert!(i.covers(&granted(&["mcp:admin"]), "mcp:read"));
        assert!(i.covers(&granted(&["mcp:write"]), "mcp:read"));
        assert!(!i.covers(&granted(&["mcp:read"]), "mcp:write"));
        assert!(!i.covers(&granted(&["mcp:write"]), "mcp:admin"));
        assert_eq!(i.missing(&granted(&["mcp:write"]), &granted(&["mcp:read", "mcp:admin"])), ["mcp:admin"]);
    }

    #[test]
    fn the_order_implications_are_given_in_does_not_matter() {
        let i = ScopeImplications::new()
            .imply("mcp:write", ["mcp:read"])
            .unwrap()
            .imply("mcp:admin", ["mcp:write"])
            .unwrap();
        assert!(i.covers(&granted(&["mcp:admin"]), "mcp:read"));
    }

    #[test]
    fn wildcards_cover_their_prefix_granted_or_implied() {
        let none = ScopeImplications::new();
        assert!(none.covers(&granted(&["files:*"]), "files:read"));
        assert!(!none.covers(&granted(&["files:*"]), "filesystem:read"));
        assert!(!none.covers(&granted(&["files:read"]), "files:*"));
        let i = ScopeImplications::new().imply("admin", ["files:*"]).unwrap();
        assert!(i.covers(&granted(&["admin"]), "files:write"));
        assert!(i.covers(&granted(&["admin"]), "files:*"));
        assert!(!i.covers(&granted(&["files:read"]), "admin"));
    }

    #[test]
    fn an_implied_wildcard_reaches_the_implications_of_what_it_covers() {
        let i = ScopeImplications::new()
            .imply("root", ["files:*"])
            .unwrap()
            .imply("files:admin", ["audit:read"])
            .unwrap();
        assert!(i.covers(&granted(&["root"]), "audit:read"));
    }

    #[test]
    fn a_cycle_makes_its_scopes_equivalent() {
        let i = ScopeImplications::new().imply("a", ["b"]).unwrap().imply("b", ["a"]).unwrap();
        assert!(i.covers(&granted(&["a"]), "b"));
        assert!(i.covers(&granted(&["b"]), "a"));
    }

    #[test]
    fn scopes_must_be_scope_tokens_and_a_bare_wildcard_is_refused() {
        for bad in ["", "a b", "say\"hi\"", "back\\slash", "*", "é"] {
            assert!(ScopeImplications::new().imply(bad, ["x"]).is_err(), "{bad:?}");
            assert!(ScopeImplications::new().imply("x", [bad]).is_err(), "{bad:?}");
        }
    }
}
