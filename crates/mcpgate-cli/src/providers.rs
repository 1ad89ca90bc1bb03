//! From `[auth]` to the library's provider: which one `auth.provider` names, built from its
//! section (`[auth.oidc]`, `[auth.github]`, …) with our registration there.

use mcpgate::upstream::providers::{
    Auth0, Cognito, Discord, Entra, GitHub, GitLab, Google, Keycloak, OidcApp, OidcPlace, Okta, WorkOs,
};
use mcpgate::upstream::{Upstream, UpstreamError};
use secrecy::SecretString;

use crate::config::AuthConfig;
use crate::exit::{ServeError, config_error};

/// The upstream provider `auth` describes, where we are `auth.client_id` with `client_secret`.
pub async fn upstream(auth: &AuthConfig, client_secret: SecretString) -> Result<Upstream, ServeError> {
    let id = auth.client_id.clone().unwrap_or_default();
    let name = auth.provider.as_str();
    // Discovery and network failures are runtime problems; a refused setting names its section.
    let built = |result: Result<Upstream, UpstreamError>| {
        result.map_err(|e| match e {
            UpstreamError::Unavailable(why) => {
                ServeError::ProviderUnavailable(format!("provider {name}: {why}"))
            }
            other => ServeError::Runtime(format!("[auth.{name}]: {other}")),
        })
    };
    match name {
        "github" => {
            let section = auth.github.clone().unwrap_or_default();
            let github = GitHub {
                base_url: section.base_url,
                // An allow-list by organisation needs the organisations.
                organisations: section.organisations || !auth.allowed_users.groups.is_empty(),
                ..GitHub::new(id, client_secret)
            };
            built(github.upstream())
        }
        "google" => {
            let section = auth.google.clone().unwrap_or_default();
            let google = Google {
                base_url: section.base_url,
                hosted_domain: section.hosted_domain,
                ..Google::new(id, client_secret)
            };
            built(google.upstream().await)
        }
        "azure" => {
            let section = auth.azure.clone().unwrap_or_default();
            let defaults = Entra::new(id, client_secret);
            let api_identifier = section.api_scopes.then(|| {
                section.api_identifier.clone().unwrap_or_else(|| format!("api://{}", defaults.client_id))
            });
            let entra = Entra {
                tenant: section.tenant.unwrap_or(defaults.tenant.clone()),
                authority: section.base_url.unwrap_or(defaults.authority.clone()),
                b2c_policy: section.b2c_policy,
                api_identifier,
                ..defaults
            };
            built(entra.upstream().await)
        }
        "auth0" => {
            let section = auth.auth0.clone().ok_or_else(|| config_error("auth.auth0", "is required"))?;
            let place = Auth0 { domain: section.base_url, audience: section.audience };
            built(app(place, id, client_secret).await)
        }
        "keycloak" => {
            let section =
                auth.keycloak.clone().ok_or_else(|| config_error("auth.keycloak", "is required"))?;
            built(app(Keycloak { base_url: section.base_url, realm: section.realm }, id, client_secret).await)
        }
        "okta" => {
            let section = auth.okta.clone().ok_or_else(|| config_error("auth.okta", "is required"))?;
            let server = section.authorization_server.unwrap_or_else(|| "default".into());
            let place = Okta {
                domain: section.base_url,
                authorization_server: Some(server).filter(|s| !s.is_empty()),
            };
            built(app(place, id, client_secret).await)
        }
        "cognito" => {
            let section = auth.cognito.clone().ok_or_else(|| config_error("auth.cognito", "is required"))?;
            let place = match (&section.base_url, &section.region, &section.user_pool_id) {
                (Some(issuer), _, _) => Cognito { issuer: issuer.clone() },
                (None, Some(region), Some(pool)) => {
                    Cognito::pool(region, pool).map_err(|e| config_error("auth.cognito", e))?
                }
                _ => return Err(config_error("auth.cognito", "give region and user_pool_id")),
            };
            built(app(place, id, client_secret).await)
        }
        "gitlab" => {
            let base = auth.gitlab.as_ref().and_then(|s| s.base_url.clone());
            built(
                app(
                    GitLab { base_url: base.unwrap_or_else(|| "https://gitlab.com".into()) },
                    id,
                    client_secret,
                )
                .await,
            )
        }
        "workos" => {
            let domain = auth.workos.as_ref().and_then(|s| s.base_url.clone());
            let domain = domain.ok_or_else(|| config_error("auth.workos.base_url", "is required"))?;
            built(app(WorkOs { authkit_domain: domain }, id, client_secret).await)
        }
        "discord" => {
            let base_url = auth.discord.as_ref().and_then(|s| s.base_url.clone());
            built(Discord { base_url, ..Discord::new(id, client_secret) }.upstream())
        }
        _ => {
            let discovery =
                auth.oidc.as_ref().ok_or_else(|| config_error("auth.oidc.discovery_url", "is required"))?;
            Upstream::oidc(
                &discovery.discovery_url,
                id,
                client_secret,
                vec!["email".into(), "profile".into()],
            )
            .await
            .map_err(|e| match e {
                UpstreamError::Unavailable(why) => {
                    ServeError::ProviderUnavailable(format!("auth.oidc.discovery_url: {why}"))
                }
                other => ServeError::Runtime(format!("auth.oidc.discovery_url: {other}")),
            })
        }
    }
}

/// Our app at an OpenID Connect place.
async fn app<P: OidcPlace>(place: P, id: String, secret: SecretString) -> Result<Upstream, UpstreamError> {
    OidcApp::new(place, id, secret).upstream().await
}
