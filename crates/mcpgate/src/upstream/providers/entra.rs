//! Microsoft Entra ID (Azure AD), v2.0 endpoints: any tenant (`common`, `organizations`,
//! `consumers` or a tenant id/domain), any authority host (sovereign clouds), and Azure AD B2C
//! user flows.
//!
//! Quirks: the multi-tenant discovery document names its issuer as a template
//! (`…/{tenantid}/v2.0`), so each id_token's issuer is checked against the template filled with
//! the token's own `tid`; `offline_access` must be asked for to get a refresh token (added once);
//! an API's custom scopes are asked as `<identifier URI>/<scope>` (`api://<client-id>/…`) while
//! clients see them un-prefixed; the `resource` parameter is never sent (v2.0 refuses it); the
//! user-info endpoint belongs to Microsoft Graph and refuses tokens for another API, so identity
//! comes from the id_token alone. Entra's `email` is not vouched for (any tenant admin can set
//! it: the "nOAuth" problem), so it counts as verified only with the optional claim `xms_edov`
//! (the email's domain is verified by its tenant).

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::{IdTokenIssuers, OidcProvider, base_url, segment};
use crate::upstream::{IdentitySource, Upstream, UpstreamError};

const AUTHORITY: &str = "https://login.microsoftonline.com";

/// A Microsoft Entra ID app registration that users sign in with.
#[derive(Debug)]
pub struct Entra {
    /// Our app registration's client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: SecretString,
    /// Whose accounts may sign in: `common` (the default), `organizations`, `consumers`, or
    /// one tenant's id or domain (a B2C tenant: `contoso.onmicrosoft.com`).
    pub tenant: String,
    /// The authority host (default `https://login.microsoftonline.com`): sovereign clouds
    /// (`https://login.microsoftonline.us`) or B2C (`https://<tenant>.b2clogin.com`).
    pub authority: String,
    /// An Azure AD B2C user flow (`B2C_1_signupsignin`).
    pub b2c_policy: Option<String>,
    /// Scopes beyond `openid` and `offline_access` (default `profile email`).
    pub scopes: Vec<String>,
    /// Also ask Entra for the scopes each client was granted, as scopes of the API this app
    /// exposes: `<identifier>/<scope>`, the identifier usually `api://<client-id>`.
    pub api_identifier: Option<String>,
}

impl Entra {
    /// The app `client_id` with `client_secret`, for accounts of any tenant (`common`), asking
    /// for `profile email offline_access`.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            tenant: "common".into(),
            authority: AUTHORITY.into(),
            b2c_policy: None,
            scopes: vec!["profile".into(), "email".into()],
            api_identifier: None,
        }
    }

    /// The upstream client (reads the tenant's discovery document).
    pub async fn upstream(self) -> Result<Upstream, UpstreamError> {
        let authority = base_url(&self.authority, "the Entra authority")?;
        let tenant = segment(&self.tenant, "the Entra tenant")?;
        let discovery_url = match &self.b2c_policy {
            None => format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
            Some(policy) => {
                let policy = segment(policy, "the B2C policy")?;
                format!("{authority}/{tenant}/{policy}/v2.0/.well-known/openid-configuration")
            }
        };
        let mut scopes = self.scopes;
        if !scopes.iter().any(|s| s == "offline_access") {
            scopes.push("offline_access".into());
        }
        let provider = OidcProvider {
            discovery_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes,
            authorize_params: Vec::new(),
        };
        let authority_host = url::Url::parse(&authority).ok().and_then(|u| u.host_str().map(str::to_owned));
        let mut upstream = provider
            .upstream_with(
                |discovery, _| {
                    // The issuer must be on the authority we asked; a template is filled per token.
                    let host = url::Url::parse(&discovery.issuer.replace("{tenantid}", "t"))
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned));
                    if host.is_none() || host != authority_host {
                        return Err(UpstreamError::Invalid(format!(
                            "the discovery issuer {:?} is not on the authority {authority}",
                            discovery.issuer
                        )));
                    }
                    Ok(if discovery.issuer.contains("{tenantid}") {
                        IdTokenIssuers { exact: Vec::new(), tenant_template: Some(discovery.issuer.clone()) }
                    } else {
                        IdTokenIssuers { exact: vec![discovery.issuer.clone()], tenant_template: None }
                    })
                },
                |config| {
                    // Graph's user-info endpoint refuses tokens minted for another API.
                    if let IdentitySource::IdToken { userinfo, .. } = &mut config.identity {
                        *userinfo = None;
                    }
                },
            )
            .await?
            .with_claims_normalizer(verified_email_domain);
        if let Some(identifier) = self.api_identifier {
            let identifier = identifier.trim_end_matches('/').to_owned();
            upstream =
                upstream.with_scope_mapper(Arc::new(move |scope| Some(format!("{identifier}/{scope}"))));
        }
        Ok(upstream)
    }
}

/// `email_verified` only from `xms_edov` (Entra sends no `email_verified` of its own).
fn verified_email_domain(claims: &mut Map<String, Value>) {
    let verified = matches!(claims.get("xms_edov"), Some(Value::Bool(true)))
        || claims.get("xms_edov") == Some(&json!("1"));
    claims.insert("email_verified".into(), Value::Bool(verified));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_tenant_verified_domain_makes_the_email_verified() {
        let mut claims =
            json!({"email": "ada@contoso.com", "email_verified": true}).as_object().cloned().unwrap();
        verified_email_domain(&mut claims);
        assert_eq!(claims["email_verified"], false, "Entra's own word is not taken");
        let mut claims = json!({"email": "ada@contoso.com", "xms_edov": true}).as_object().cloned().unwrap();
        verified_email_domain(&mut claims);
        assert_eq!(claims["email_verified"], true);
    }
}
