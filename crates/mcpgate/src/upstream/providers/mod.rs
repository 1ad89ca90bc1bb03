//! Built-in providers: each a typed configuration with working defaults (endpoints, scopes,
//! identity claims) and its identity provider's quirks, built into the one generic
//! [`Upstream`] flow. A provider is configuration and hooks, never a copy of
//! the flow.

mod app;
mod discord;
mod entra;
mod github;
mod google;

pub use app::{Auth0, Cognito, GitLab, Keycloak, OidcApp, OidcPlace, Okta, WorkOs};
pub use discord::Discord;
pub use entra::Entra;
pub use github::GitHub;
pub use google::Google;

use secrecy::SecretString;

use super::{OidcDiscovery, Upstream, UpstreamConfig, UpstreamError, fetch_discovery};

/// `url` without trailing slashes, checked to be an absolute http(s) URL (http is for local
/// fakes and development; the operator chose it).
fn base_url(url: &str, what: &str) -> Result<String, UpstreamError> {
    let trimmed = url.trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => {
            Ok(trimmed.to_owned())
        }
        _ => Err(UpstreamError::Invalid(format!("{what} {url:?} is not an http(s) URL"))),
    }
}

/// A path segment that cannot change the URL's shape (a realm, a tenant, a pool, a policy).
fn segment<'a>(value: &'a str, what: &str) -> Result<&'a str, UpstreamError> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        Ok(value)
    } else {
        Err(UpstreamError::Invalid(format!("{what} {value:?} is not a plain name")))
    }
}

/// A built-in OpenID Connect provider: where its discovery document is, our registration, and
/// what it adds to the authorization request.
struct OidcProvider {
    discovery_url: String,
    client_id: String,
    client_secret: SecretString,
    /// Scopes beyond `openid`.
    scopes: Vec<String>,
    authorize_params: Vec<(String, String)>,
}

/// Which issuers a provider's id_tokens may name.
#[derive(Debug, Default)]
struct IdTokenIssuers {
    exact: Vec<String>,
    /// A template holding `{tenantid}` (Microsoft Entra's multi-tenant endpoints).
    tenant_template: Option<String>,
}

impl OidcProvider {
    /// The generic OIDC client for this provider; `issuers` checks the discovery document's
    /// issuer and says which issuers id_tokens may name (most providers: [`same_issuer`]).
    async fn upstream(
        self,
        issuers: impl FnOnce(&OidcDiscovery, &str) -> Result<IdTokenIssuers, UpstreamError>,
    ) -> Result<Upstream, UpstreamError> {
        self.upstream_with(issuers, |_| {}).await
    }

    /// [`upstream`](Self::upstream), with a last change to the configuration.
    async fn upstream_with(
        self,
        issuers: impl FnOnce(&OidcDiscovery, &str) -> Result<IdTokenIssuers, UpstreamError>,
        adjust: impl FnOnce(&mut UpstreamConfig),
    ) -> Result<Upstream, UpstreamError> {
        let discovery = fetch_discovery(&self.discovery_url).await?;
        let accepted = issuers(&discovery, &self.discovery_url)?;
        let mut config = discovery.upstream_config_with(
            self.client_id,
            self.client_secret,
            self.scopes,
            |mut verifier| {
                for issuer in accepted.exact {
                    verifier = verifier.issuer(issuer);
                }
                match accepted.tenant_template {
                    Some(template) => verifier.tenant_issuer(template),
                    None => verifier,
                }
            },
        )?;
        config.extra_authorize_params = self.authorize_params;
        adjust(&mut config);
        Ok(Upstream::new(config))
    }
}

/// The usual rule: the document's issuer is the URL it came from, and id_tokens name it.
fn same_issuer(discovery: &OidcDiscovery, url: &str) -> Result<IdTokenIssuers, UpstreamError> {
    discovery.check_issuer(url)?;
    Ok(IdTokenIssuers { exact: vec![discovery.issuer.clone()], tenant_template: None })
}
