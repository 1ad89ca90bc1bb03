//! Google: OpenID Connect at `accounts.google.com`.
//!
//! Quirks: a refresh token comes only with `access_type=offline`, and on a repeat sign-in only
//! with `prompt=consent` (both always sent); a refresh answer carries no new refresh token (the
//! generic refresh keeps the old one); id_tokens name the issuer with or without `https://`; a
//! hosted-domain restriction is checked on the id_token's `hd` claim — the `hd` authorization
//! parameter only steers Google's account chooser.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;

use super::{IdTokenIssuers, OidcProvider, base_url};
use crate::upstream::{Upstream, UpstreamError};

const ACCOUNTS: &str = "https://accounts.google.com";

/// A Google OAuth client that users sign in with.
#[derive(Debug)]
pub struct Google {
    /// Our OAuth client's id.
    pub client_id: String,
    /// Our OAuth client's secret.
    pub client_secret: SecretString,
    /// Where Google's accounts service is; `None` for `https://accounts.google.com` (set for a
    /// test double).
    pub base_url: Option<String>,
    /// Only accounts of this Google Workspace domain may sign in (checked on `hd`).
    pub hosted_domain: Option<String>,
    /// Scopes beyond `openid` (default `email profile`).
    pub scopes: Vec<String>,
}

impl Google {
    /// The OAuth client `client_id` with `client_secret`, asking for `email` and `profile`.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            base_url: None,
            hosted_domain: None,
            scopes: vec!["email".into(), "profile".into()],
        }
    }

    /// The upstream client (reads Google's discovery document).
    pub async fn upstream(self) -> Result<Upstream, UpstreamError> {
        let base = match &self.base_url {
            Some(url) => base_url(url, "the Google base URL")?,
            None => ACCOUNTS.to_owned(),
        };
        let mut authorize_params = vec![
            ("access_type".to_owned(), "offline".to_owned()),
            ("prompt".to_owned(), "consent".to_owned()),
        ];
        if let Some(domain) = &self.hosted_domain {
            authorize_params.push(("hd".to_owned(), domain.clone()));
        }
        let provider = OidcProvider {
            discovery_url: format!("{base}/.well-known/openid-configuration"),
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes: self.scopes,
            authorize_params,
        };
        let upstream = provider
            .upstream(|discovery, url| {
                discovery.check_issuer(url)?;
                let issuer = discovery.issuer.clone();
                let bare = issuer.trim_start_matches("https://").trim_start_matches("http://").to_owned();
                Ok(IdTokenIssuers { exact: vec![issuer, bare], tenant_template: None })
            })
            .await?;
        Ok(match self.hosted_domain {
            None => upstream,
            Some(domain) => upstream.with_claims_check(Arc::new(move |claims| {
                match claims.get("hd").and_then(Value::as_str) {
                    Some(hd) if hd.eq_ignore_ascii_case(&domain) => Ok(()),
                    _ => Err(format!("the Google account is not in the domain {domain}")),
                }
            })),
        })
    }
}
