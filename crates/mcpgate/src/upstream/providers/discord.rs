//! Discord: OAuth 2.0 (not OpenID Connect); who signed in comes from `GET /users/@me` — a
//! snowflake `id`, `username`, `global_name` (the display name), and with the `email` scope
//! `email` and `verified` (whether Discord verified that email). Tokens expire (a week) with a
//! refresh token; revocation at `/oauth2/token/revoke` (RFC 7009). Identity is checked again at
//! every refresh of mcpgate's tokens, as for GitHub.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::base_url;
use crate::upstream::{IdentitySource, Upstream, UpstreamConfig, UpstreamError, default_timeouts};
use crate::verify::ClientAuthMethod;

/// A Discord application that users sign in with.
#[derive(Debug)]
pub struct Discord {
    /// Our application's client id.
    pub client_id: String,
    /// Our application's client secret.
    pub client_secret: SecretString,
    /// Where Discord is; `None` for `https://discord.com` (set for a test double).
    pub base_url: Option<String>,
    /// The scopes asked for (default `identify email`).
    pub scopes: Vec<String>,
}

impl Discord {
    /// The application `client_id` with `client_secret`, asking for `identify email`.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            base_url: None,
            scopes: vec!["identify".into(), "email".into()],
        }
    }

    /// The upstream client.
    pub fn upstream(self) -> Result<Upstream, UpstreamError> {
        let base = match &self.base_url {
            Some(url) => base_url(url, "the Discord base URL")?,
            None => "https://discord.com".to_owned(),
        };
        let config = UpstreamConfig {
            authorization_endpoint: format!("{base}/oauth2/authorize"),
            token_endpoint: format!("{base}/api/oauth2/token"),
            revocation_endpoint: Some(format!("{base}/api/oauth2/token/revoke")),
            client_id: self.client_id,
            client_secret: self.client_secret,
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: self.scopes,
            extra_authorize_params: Vec::new(),
            identity: IdentitySource::UserInfo {
                url: format!("{base}/api/users/@me"),
                subject_claim: "id".into(),
            },
            timeouts: default_timeouts(),
        };
        Ok(Upstream::new(config).with_claims_normalizer(standard_claims).with_identity_at_refresh())
    }
}

/// Discord's names for the standard claims.
fn standard_claims(claims: &mut Map<String, Value>) {
    if let Some(verified) = claims.get("verified").cloned() {
        claims.insert("email_verified".into(), verified);
    }
    // The display name, else the handle.
    let name =
        claims.get("global_name").filter(|n| n.is_string()).or_else(|| claims.get("username")).cloned();
    if let Some(name) = name {
        claims.insert("name".into(), name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discord_s_claims_get_their_standard_names() {
        let mut claims = json!({"id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
                                "email": "nelly@example.com", "verified": true})
        .as_object()
        .cloned()
        .unwrap();
        standard_claims(&mut claims);
        assert_eq!(
            (claims["email_verified"].as_bool(), claims["name"].as_str()),
            (Some(true), Some("Nelly"))
        );
        let mut no_display =
            json!({"id": "1", "username": "nelly", "global_name": null}).as_object().cloned().unwrap();
        standard_claims(&mut no_display);
        assert_eq!(no_display["name"], "nelly");
    }
}
