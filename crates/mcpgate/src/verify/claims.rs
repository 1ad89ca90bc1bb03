//! The claim checks shared by every verifier: time (`exp`, `nbf`, `iat` with leeway), issuer,
//! audience, and how subject, client and scopes are read from a claim set.
//!
//! JWT claims and introspection responses are the same shape (RFC 7662 §2.2 borrows the JWT
//! claim names), so both go through [`ClaimRules::principal`].

use std::time::Duration;

use serde_json::{Map, Value};

use super::InvalidToken;
use crate::Principal;

/// Where scopes are read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScopeClaim {
    /// `scope` (space separated, RFC 9068 / RFC 8693), else `scp` (string or array, as Azure
    /// and Okta send it).
    #[default]
    Standard,
    /// A named claim holding a space-separated string or an array of strings
    /// (e.g. Auth0's `permissions`).
    Named(String),
}

/// What a claim set must satisfy to be accepted.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    /// Accepted issuers; empty (and no `tenant_issuer`) means the issuer is not checked.
    pub issuers: Vec<String>,
    /// An accepted issuer template holding `{tenantid}`, filled from the token's own `tid`
    /// claim: Microsoft Entra's multi-tenant endpoints, whose tokens name the user's tenant.
    pub tenant_issuer: Option<String>,
    /// Accepted audiences (one of them must appear in `aud`); empty (and no `clients`) means
    /// not checked.
    pub audiences: Vec<String>,
    /// Accepted clients, for providers whose access tokens name the client rather than the
    /// API: when no audience matches, a token whose `azp` (Keycloak) or `client_id` (AWS
    /// Cognito) is one of these is accepted.
    pub clients: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Whether `exp` must be present.
    pub require_expiry: bool,
    /// Where scopes come from.
    pub scope_claim: ScopeClaim,
    /// The time `exp`, `nbf` and `iat` are checked against (the system's by default).
    pub clock: crate::clock::Clock,
}

impl Default for ClaimRules {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            tenant_issuer: None,
            audiences: Vec::new(),
            clients: Vec::new(),
            leeway: Duration::from_secs(60),
            require_expiry: true,
            scope_claim: ScopeClaim::Standard,
            clock: crate::clock::Clock::system(),
        }
    }
}

/// A NumericDate claim (RFC 7519 §2): a non-negative number, possibly fractional.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, InvalidToken> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
            _ => Err(InvalidToken::Malformed),
        },
        Some(_) => Err(InvalidToken::Malformed),
    }
}

/// A claim that is a string or an array of strings (`aud`, `scp`, `permissions`).
fn string_or_array(value: &Value, split_string: bool) -> Result<Vec<String>, InvalidToken> {
    match value {
        Value::String(s) if split_string => Ok(s.split_ascii_whitespace().map(str::to_owned).collect()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map(str::to_owned).ok_or(InvalidToken::Malformed)).collect()
        }
        _ => Err(InvalidToken::Malformed),
    }
}

impl ClaimRules {
    /// Checks `claims` at time `now` (seconds since the epoch) and builds the principal.
    pub fn principal(&self, claims: Map<String, Value>, now: u64) -> Result<Principal, InvalidToken> {
        let leeway = self.leeway.as_secs();
        let exp = numeric_date(&claims, "exp")?;
        match exp {
            None if self.require_expiry => return Err(InvalidToken::MissingExpiry),
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(InvalidToken::Expired),
            _ => {}
        }
        for name in ["nbf", "iat"] {
            if let Some(t) = numeric_date(&claims, name)?
                && t > now.saturating_add(leeway)
            {
                return Err(InvalidToken::NotYetValid);
            }
        }

        let issuer = match claims.get("iss") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(InvalidToken::Malformed),
        };
        let checked = !self.issuers.is_empty() || self.tenant_issuer.is_some();
        if checked && !issuer.is_some_and(|iss| self.accepts_issuer(iss, &claims)) {
            return Err(InvalidToken::WrongIssuer);
        }

        let audience = match claims.get("aud") {
            None => Vec::new(),
            Some(v) => string_or_array(v, false)?,
        };
        let checked = !self.audiences.is_empty() || !self.clients.is_empty();
        if checked && !audience.iter().any(|a| self.audiences.contains(a)) && !self.accepts_client(&claims) {
            return Err(InvalidToken::WrongAudience);
        }

        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(InvalidToken::MissingSubject),
        };
        let client_id = ["client_id", "azp"]
            .iter()
            .find_map(|name| claims.get(*name).and_then(Value::as_str))
            .map(str::to_owned);
        let scopes = self.scopes(&claims)?;

        let mut principal = Principal::new(subject).with_scopes(scopes).with_audience(audience);
        if let Some(client_id) = client_id {
            principal = principal.with_client_id(client_id);
        }
        if let Some(issuer) = issuer {
            principal = principal.with_issuer(issuer);
        }
        if let Some(exp) = exp {
            principal = principal.with_expires_at(exp);
        }
        Ok(principal.with_claims(claims))
    }

    fn accepts_client(&self, claims: &Map<String, Value>) -> bool {
        ["azp", "client_id"]
            .iter()
            .filter_map(|name| claims.get(*name).and_then(Value::as_str))
            .any(|client| self.clients.iter().any(|c| c == client))
    }

    fn accepts_issuer(&self, issuer: &str, claims: &Map<String, Value>) -> bool {
        if self.issuers.iter().any(|i| i == issuer) {
            return true;
        }
        // The tenant must look like a tenant id: no `/` that could shift the template's path.
        let tenant = claims.get("tid").and_then(Value::as_str).filter(|t| {
            !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
        match (&self.tenant_issuer, tenant) {
            (Some(template), Some(tenant)) => template.replace("{tenantid}", tenant) == issuer,
            _ => false,
        }
    }

    fn scopes(&self, claims: &Map<String, Value>) -> Result<Vec<String>, InvalidToken> {
        let value = match &self.scope_claim {
            ScopeClaim::Standard => claims.get("scope").or_else(|| claims.get("scp")),
            ScopeClaim::Named(name) => claims.get(name),
        };
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => string_or_array(v, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuers: vec!["https://idp".into()],
            audiences: vec!["https://mcp/mcp".into()],
            ..ClaimRules::default()
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    fn good() -> Value {
        json!({"sub": "alice", "iss": "https://idp", "aud": "https://mcp/mcp", "exp": NOW + 300,
               "scope": "read write", "client_id": "c1"})
    }

    fn with(field: &str, value: Value) -> Map<String, Value> {
        let mut c = claims(good());
        c.insert(field.into(), value);
        c
    }

    #[test]
    fn accepts_a_good_claim_set() {
        let p = rules().principal(claims(good()), NOW).expect("valid");
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.client_id(), Some("c1"));
        assert_eq!(p.scopes(), ["read", "write"]);
        assert_eq!(p.issuer(), Some("https://idp"));
        assert_eq!(p.expires_at(), Some(NOW + 300));
    }

    #[test]
    fn a_tenant_issuer_is_filled_from_the_token_s_own_tenant() {
        let template = "https://login.example/{tenantid}/v2.0";
        let rules = ClaimRules { issuers: vec![], tenant_issuer: Some(template.into()), ..rules() };
        let mut tenant = with("iss", json!("https://login.example/72f988bf-86f1/v2.0"));
        tenant.insert("tid".into(), json!("72f988bf-86f1"));
        assert!(rules.principal(tenant.clone(), NOW).is_ok());
        // Another tenant's issuer, no tenant, or a tenant that rewrites the path: refused.
        tenant.insert("tid".into(), json!("other"));
        assert_eq!(rules.principal(tenant.clone(), NOW), Err(InvalidToken::WrongIssuer));
        tenant.remove("tid");
        assert_eq!(rules.principal(tenant.clone(), NOW), Err(InvalidToken::WrongIssuer));
        let mut sneaky = with("iss", json!("https://login.example/a/b/v2.0"));
        sneaky.insert("tid".into(), json!("a/b"));
        assert_eq!(rules.principal(sneaky, NOW), Err(InvalidToken::WrongIssuer));
    }

    #[test]
    fn a_token_naming_an_accepted_client_passes_without_the_audience() {
        let rules = ClaimRules { audiences: vec![], clients: vec!["mcp-app".into()], ..rules() };
        let mut keycloak = with("aud", json!("account"));
        keycloak.insert("azp".into(), json!("mcp-app"));
        assert!(rules.principal(keycloak, NOW).is_ok());
        let mut cognito = claims(good());
        cognito.remove("aud");
        cognito.insert("client_id".into(), json!("mcp-app"));
        assert!(rules.principal(cognito, NOW).is_ok());
        let mut other = with("aud", json!("account"));
        other.insert("azp".into(), json!("someone-else"));
        assert_eq!(rules.principal(other, NOW), Err(InvalidToken::WrongAudience));
    }

    #[test]
    fn time_checks_honour_leeway() {
        let r = rules();
        assert_eq!(r.principal(with("exp", json!(NOW - 61)), NOW), Err(InvalidToken::Expired));
        assert!(r.principal(with("exp", json!(NOW - 59)), NOW).is_ok());
        assert_eq!(r.principal(with("nbf", json!(NOW + 61)), NOW), Err(InvalidToken::NotYetValid));
        assert!(r.principal(with("nbf", json!(NOW + 59)), NOW).is_ok());
        assert_eq!(r.principal(with("iat", json!(NOW + 3600)), NOW), Err(InvalidToken::NotYetValid));
        assert!(r.principal(with("exp", json!((NOW + 10) as f64 + 0.5)), NOW).is_ok());
        assert_eq!(r.principal(with("exp", json!("soon")), NOW), Err(InvalidToken::Malformed));
        let mut no_exp = claims(good());
        no_exp.remove("exp");
        assert_eq!(r.principal(no_exp, NOW), Err(InvalidToken::MissingExpiry));
    }

    #[test]
    fn issuer_and_audience_are_one_of() {
        let r = rules();
        assert_eq!(r.principal(with("iss", json!("https://evil")), NOW), Err(InvalidToken::WrongIssuer));
        assert_eq!(
            r.principal(with("aud", json!("https://other/mcp")), NOW),
            Err(InvalidToken::WrongAudience)
        );
        assert!(r.principal(with("aud", json!(["x", "https://mcp/mcp"])), NOW).is_ok());
        let mut no_aud = claims(good());
        no_aud.remove("aud");
        assert_eq!(r.principal(no_aud, NOW), Err(InvalidToken::WrongAudience));
    }

    #[test]
    fn scopes_from_scope_scp_or_a_named_claim() {
        let r = rules();
        let mut c = claims(good());
        c.remove("scope");
        c.insert("scp".into(), json!(["a", "b"]));
        assert_eq!(r.principal(c.clone(), NOW).expect("valid").scopes(), ["a", "b"]);
        c.insert("scp".into(), json!("c d"));
        assert_eq!(r.principal(c, NOW).expect("valid").scopes(), ["c", "d"]);
        let named = ClaimRules { scope_claim: ScopeClaim::Named("permissions".into()), ..rules() };
        let p = named.principal(with("permissions", json!(["read:x"])), NOW).expect("valid");
        assert_eq!(p.scopes(), ["read:x"]);
    }

    #[test]
    fn subject_is_required_and_azp_names_the_client() {
        let r = rules();
        let mut c = claims(good());
        c.remove("sub");
        assert_eq!(r.principal(c, NOW), Err(InvalidToken::MissingSubject));
        let mut c = claims(good());
        c.remove("client_id");
        c.insert("azp".into(), json!("web-app"));
        assert_eq!(r.principal(c, NOW).expect("valid").client_id(), Some("web-app"));
    }
}
