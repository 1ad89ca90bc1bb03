//! The OpenID Connect providers that differ only in where they live and what they add to the
//! authorization request (Auth0, Keycloak, Okta, GitLab, AWS Cognito, WorkOS AuthKit): an
//! [`OidcApp`] is our registration at one [`OidcPlace`].

use secrecy::SecretString;

use super::{OidcProvider, same_issuer, segment};
use crate::upstream::{Upstream, UpstreamError};

/// Where a provider's discovery document is, and what it wants beyond plain OIDC.
pub trait OidcPlace {
    /// The discovery document's URL (its issuer must be that URL without the well-known path).
    fn discovery_url(&self) -> Result<String, UpstreamError>;
    /// Scopes beyond `openid` asked by default.
    fn default_scopes(&self) -> Vec<String>;
    /// Extra authorization parameters (Auth0's `audience`).
    fn authorize_params(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Our app registered at an OpenID Connect provider `P`.
#[derive(Debug)]
pub struct OidcApp<P> {
    place: P,
    client_id: String,
    client_secret: SecretString,
    scopes: Option<Vec<String>>,
}

impl<P: OidcPlace> OidcApp<P> {
    /// The app `client_id` with `client_secret` at `place`, asking the place's default scopes.
    pub fn new(place: P, client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self { place, client_id: client_id.into(), client_secret, scopes: None }
    }

    /// Scopes beyond `openid`, instead of the provider's defaults.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The upstream client (reads the discovery document).
    pub async fn upstream(self) -> Result<Upstream, UpstreamError> {
        let provider = OidcProvider {
            discovery_url: self.place.discovery_url()?,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes: self.scopes.unwrap_or_else(|| self.place.default_scopes()),
            authorize_params: self.place.authorize_params(),
        };
        provider.upstream(same_issuer).await
    }
}

/// `base` (checked) followed by `path`.
pub(super) fn under(base: &str, what: &str, path: &str) -> Result<String, UpstreamError> {
    Ok(format!("{}{path}", super::base_url(base, what)?))
}

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Auth0: a tenant domain (`https://acme.us.auth0.com`, or a custom domain); with an API's
/// `audience`, its access tokens are JWTs for that API. `offline_access` for refresh tokens.
#[derive(Debug, Clone)]
pub struct Auth0 {
    /// The tenant's URL.
    pub domain: String,
    /// The API identifier to ask tokens for.
    pub audience: Option<String>,
}

impl OidcPlace for Auth0 {
    fn discovery_url(&self) -> Result<String, UpstreamError> {
        under(&self.domain, "the Auth0 domain", "/.well-known/openid-configuration")
    }
    fn default_scopes(&self) -> Vec<String> {
        scopes(&["profile", "email", "offline_access"])
    }
    fn authorize_params(&self) -> Vec<(String, String)> {
        self.audience.iter().map(|a| ("audience".to_owned(), a.clone())).collect()
    }
}

/// Keycloak: a server URL and a realm (`{base}/realms/{realm}`).
#[derive(Debug, Clone)]
pub struct Keycloak {
    /// The server's URL (with `/auth` for old installations).
    pub base_url: String,
    /// The realm.
    pub realm: String,
}

impl OidcPlace for Keycloak {
    fn discovery_url(&self) -> Result<String, UpstreamError> {
        let realm = segment(&self.realm, "the Keycloak realm")?;
        under(
            &self.base_url,
            "the Keycloak URL",
            &format!("/realms/{realm}/.well-known/openid-configuration"),
        )
    }
    fn default_scopes(&self) -> Vec<String> {
        scopes(&["profile", "email"])
    }
}

/// Okta: an org URL and an authorization server — a custom one (`default`, or its id), or
/// `None` for the org authorization server.
#[derive(Debug, Clone)]
pub struct Okta {
    /// The Okta org's URL (`https://acme.okta.com`).
    pub domain: String,
    /// The custom authorization server's id (`default`), or `None` for the org server.
    pub authorization_server: Option<String>,
}

impl OidcPlace for Okta {
    fn discovery_url(&self) -> Result<String, UpstreamError> {
        let path = match &self.authorization_server {
            Some(id) => format!(
                "/oauth2/{}/.well-known/openid-configuration",
                segment(id, "the Okta authorization server")?
            ),
            None => "/.well-known/openid-configuration".to_owned(),
        };
        under(&self.domain, "the Okta domain", &path)
    }
    fn default_scopes(&self) -> Vec<String> {
        scopes(&["profile", "email", "offline_access"])
    }
}

/// GitLab: gitlab.com or a self-managed instance.
#[derive(Debug, Clone)]
pub struct GitLab {
    /// The instance's URL (`https://gitlab.com`).
    pub base_url: String,
}

impl OidcPlace for GitLab {
    fn discovery_url(&self) -> Result<String, UpstreamError> {
        under(&self.base_url, "the GitLab URL", "/.well-known/openid-configuration")
    }
    fn default_scopes(&self) -> Vec<String> {
        scopes(&["profile", "email"])
    }
}

/// AWS Cognito: a user pool, its issuer `https://cognito-idp.<region>.amazonaws.com/<pool id>`
/// (the hosted UI's endpoints come from its discovery document).
#[derive(Debug, Clone)]
pub struct Cognito {
    /// The pool's issuer URL; [`Cognito::pool`] builds it.
    pub issuer: String,
}

impl Cognito {
    /// The user pool `pool_id` in `region`.
    pub fn pool(region: &str, pool_id: &str) -> Result<Self, UpstreamError> {
        let region = segment(region, "the AWS region")?;
        let pool_id = segment(pool_id, "the Cognito user pool id")?;
        Ok(Self { issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}") })
    }
}

impl OidcPlace for Cognito {
    fn discovery_url(&self) -> Result<String, UpstreamError> {
        under(&self.issuer, "the Cognito issuer", "/.well-known/openid-configuration")
    }
    fn default_scopes(&self) -> Vec<String> {
        scopes(&["profile", "email"])
    }
}

/// WorkOS AuthKit's OAuth endpoints (a WorkOS Connect application): the AuthKit domain
/// (`https://<subdomain>.authkit.app`). AuthKit takes the client secret in the form body only,
/// which its discovery document says and the generic client follows.
#[derive(Debug, Clone)]
pub struct WorkOs {
    /// The AuthKit domain.
    pub authkit_domain: String,
}

impl OidcPlace for WorkOs {
    fn discovery_url(&self) -> Result<String, UpstreamError> {
        under(&self.authkit_domain, "the AuthKit domain", "/.well-known/openid-configuration")
    }
    fn default_scopes(&self) -> Vec<String> {
        scopes(&["profile", "email", "offline_access"])
    }
}
