//! GitHub — github.com or a GitHub Enterprise Server — for OAuth apps and GitHub Apps.
//!
//! GitHub is not OpenID Connect: who signed in comes from its REST API (`GET /user`, the
//! verified primary email from `GET /user/emails`, organisations from `GET /user/orgs` when
//! asked for), at sign-in and again at every refresh of our tokens, never per MCP request.
//! Its token endpoint reports errors as HTTP 200 with an `error` member (the generic token call
//! lets the body decide). OAuth-app tokens do not expire and come without a refresh token;
//! GitHub-App user tokens expire after 8 hours with a single-use refresh token (6 months), which
//! the generic refresh replaces on each use.

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::base_url;
use crate::upstream::{
    ClaimsCall, IdentitySource, Upstream, UpstreamConfig, UpstreamError, default_timeouts,
};
use crate::verify::ClientAuthMethod;

/// A GitHub OAuth app or GitHub App that users sign in with.
#[derive(Debug)]
pub struct GitHub {
    /// Our app's client id.
    pub client_id: String,
    /// Our app's client secret.
    pub client_secret: SecretString,
    /// A GitHub Enterprise Server (`https://github.example.com`): its web endpoints under it,
    /// its REST API under `/api/v3`; `None` for github.com.
    pub base_url: Option<String>,
    /// The scopes asked for (default `read:user user:email`; without `user:email` the identity
    /// carries no verified email).
    pub scopes: Vec<String>,
    /// Read the user's organisations (asking for `read:org`) as the identity's groups: what an
    /// allow-list by organisation needs.
    pub organisations: bool,
}

impl GitHub {
    /// The app `client_id` with `client_secret` on github.com, asking for `read:user` and
    /// `user:email`.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            base_url: None,
            scopes: vec!["read:user".into(), "user:email".into()],
            organisations: false,
        }
    }

    /// The upstream client.
    pub fn upstream(self) -> Result<Upstream, UpstreamError> {
        let (web, api) = match &self.base_url {
            None => ("https://github.com".to_owned(), "https://api.github.com".to_owned()),
            Some(url) => {
                let web = base_url(url, "the GitHub Enterprise Server URL")?;
                let api = format!("{web}/api/v3");
                (web, api)
            }
        };
        let mut scopes = self.scopes;
        if self.organisations && !scopes.iter().any(|s| s == "read:org") {
            scopes.push("read:org".into());
        }
        let config = UpstreamConfig {
            authorization_endpoint: format!("{web}/login/oauth/authorize"),
            token_endpoint: format!("{web}/login/oauth/access_token"),
            // GitHub revokes through its REST API (below), not RFC 7009.
            revocation_endpoint: None,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret,
            // GitHub documents the secret in the form.
            client_auth: ClientAuthMethod::ClientSecretPost,
            scopes,
            extra_authorize_params: Vec::new(),
            identity: IdentitySource::UserInfo { url: format!("{api}/user"), subject_claim: "id".into() },
            timeouts: default_timeouts(),
        };
        let mut upstream = Upstream::new(config)
            .with_claims_call(ClaimsCall {
                url: format!("{api}/user/emails?per_page=100"),
                map: verified_primary_email,
                // Without `user:email` GitHub refuses; the public email then stays unverified.
                optional: true,
            })
            .with_identity_at_refresh()
            // One token, not the user's whole authorization of the app (their other sessions).
            .with_token_deletion_endpoint(format!("{api}/applications/{}/token", self.client_id));
        if self.organisations {
            upstream = upstream.with_claims_call(ClaimsCall {
                url: format!("{api}/user/orgs?per_page=100"),
                map: organisation_logins,
                optional: false,
            });
        }
        Ok(upstream)
    }
}

/// `GET /user/emails`: the primary address, when GitHub verified it, replaces the profile's
/// public email (which GitHub does not vouch for).
fn verified_primary_email(answer: &Value) -> Map<String, Value> {
    let primary =
        answer.as_array().into_iter().flatten().find(|entry| {
            entry["primary"].as_bool() == Some(true) && entry["verified"].as_bool() == Some(true)
        });
    match primary.and_then(|entry| entry["email"].as_str()) {
        Some(email) => {
            let mut claims = Map::new();
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(true));
            claims
        }
        None => Map::new(),
    }
}

/// `GET /user/orgs`: the organisations' logins, as `groups`.
fn organisation_logins(answer: &Value) -> Map<String, Value> {
    let logins: Vec<Value> = answer
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|org| org["login"].as_str())
        .map(|login| json!(login))
        .collect();
    let mut claims = Map::new();
    claims.insert("groups".into(), Value::Array(logins));
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_verified_primary_email_counts() {
        let emails = json!([
            {"email": "old@example.org", "primary": false, "verified": true},
            {"email": "ada@example.org", "primary": true, "verified": true},
        ]);
        assert_eq!(verified_primary_email(&emails)["email"], "ada@example.org");
        let unverified = json!([{"email": "ada@example.org", "primary": true, "verified": false}]);
        assert!(verified_primary_email(&unverified).is_empty());
        assert!(verified_primary_email(&json!({"message": "Not Found"})).is_empty());
    }

    #[test]
    fn organisations_become_groups() {
        let orgs = json!([{"login": "acme", "id": 1}, {"id": 2}, {"login": "widgets"}]);
        assert_eq!(organisation_logins(&orgs)["groups"], json!(["acme", "widgets"]));
    }

    #[test]
    fn enterprise_server_endpoints_live_under_its_url() {
        let upstream = GitHub {
            base_url: Some("https://ghe.example.com/".into()),
            ..GitHub::new("id", SecretString::from("s"))
        }
        .upstream();
        assert_eq!(
            upstream.unwrap().authorization_endpoint(),
            "https://ghe.example.com/login/oauth/authorize"
        );
        let bare =
            GitHub { base_url: Some("ghe.example.com".into()), ..GitHub::new("id", SecretString::from("s")) };
        assert!(bare.upstream().is_err());
    }
}
