//! The upstream identity providers `auth.provider` may name: one section type per provider
//! (`[auth.oidc]`, `[auth.github]`, …), its checks, and how it becomes the library's
//! [`Upstream`]. Adding a provider is a variant, its section type and its arms here, plus its
//! `[auth.<name>]` field in the schema.

use mcpgate::upstream::providers::{
    Auth0, Cognito, Discord, Entra, GitHub, GitLab, Google, Keycloak, OidcApp, OidcPlace, Okta, WorkOs,
};
use mcpgate::upstream::{Upstream, UpstreamError};
use secrecy::SecretString;
use serde::Deserialize;

use crate::exit::{ServeError, config_error};

/// The provider `auth.provider` names, with its `[auth.<name>]` section.
#[derive(Debug, Clone)]
pub enum Provider {
    /// Any OpenID Connect provider, by its discovery document.
    Oidc(OidcSection),
    /// GitHub or GitHub Enterprise Server.
    GitHub(GitHubSection),
    /// Google accounts.
    Google(GoogleSection),
    /// Microsoft Entra ID (`azure`).
    Azure(AzureSection),
    /// An Auth0 tenant.
    Auth0(Auth0Section),
    /// A Keycloak realm.
    Keycloak(KeycloakSection),
    /// An Okta org.
    Okta(OktaSection),
    /// An AWS Cognito user pool.
    Cognito(CognitoSection),
    /// GitLab.com or a self-managed instance.
    GitLab(BaseUrlSection),
    /// Discord.
    Discord(BaseUrlSection),
    /// WorkOS AuthKit.
    WorkOs(BaseUrlSection),
}

/// A configuration problem: the key and what is wrong with it.
pub type Problem = (String, String);

impl Provider {
    /// The names `auth.provider` accepts.
    pub const NAMES: &[&str] = &[
        "oidc", "github", "google", "azure", "auth0", "keycloak", "okta", "cognito", "gitlab", "discord",
        "workos",
    ];

    /// Its name in `auth.provider` and in `[auth.<name>]`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Oidc(_) => "oidc",
            Self::GitHub(_) => "github",
            Self::Google(_) => "google",
            Self::Azure(_) => "azure",
            Self::Auth0(_) => "auth0",
            Self::Keycloak(_) => "keycloak",
            Self::Okta(_) => "okta",
            Self::Cognito(_) => "cognito",
            Self::GitLab(_) => "gitlab",
            Self::Discord(_) => "discord",
            Self::WorkOs(_) => "workos",
        }
    }

    /// The provider `name` configured by its section among `sections` (every `[auth.<name>]`
    /// section present), checked; or every problem found, a section of another provider
    /// included.
    pub fn chosen(name: &str, sections: Vec<Provider>) -> Result<Provider, Vec<Problem>> {
        let others: Vec<Problem> = sections
            .iter()
            .map(Provider::name)
            .filter(|other| *other != name)
            .map(|other| (format!("auth.{other}"), format!("applies only to provider = \"{other}\"")))
            .collect();
        let chosen = match sections.into_iter().find(|section| section.name() == name) {
            Some(provider) => Ok(provider),
            None => Self::without_section(name),
        };
        let mut problems = match &chosen {
            Ok(provider) => provider.problems(),
            Err(problem) => vec![problem.clone()],
        };
        problems.extend(others);
        match chosen {
            Ok(provider) if problems.is_empty() => Ok(provider),
            _ => Err(problems),
        }
    }

    /// The provider `name` when its section is absent: its defaults, or the problem with that
    /// (the section is required, or there is no such provider).
    fn without_section(name: &str) -> Result<Provider, Problem> {
        let required = || (format!("auth.{name}"), format!("is required for provider = \"{name}\""));
        Ok(match name {
            "github" => Self::GitHub(GitHubSection::default()),
            "google" => Self::Google(GoogleSection::default()),
            "azure" => Self::Azure(AzureSection::default()),
            "gitlab" => Self::GitLab(BaseUrlSection::default()),
            "discord" => Self::Discord(BaseUrlSection::default()),
            // Checked like a present section, so the key named is the one to write.
            "workos" => Self::WorkOs(BaseUrlSection::default()),
            "oidc" => {
                let problem = "is required for provider = \"oidc\"";
                return Err(("auth.oidc.discovery_url".into(), problem.into()));
            }
            "auth0" | "keycloak" | "okta" | "cognito" => return Err(required()),
            other => {
                let known = Self::NAMES.join(", ");
                return Err(("auth.provider".into(), format!("unknown provider {other:?} (known: {known})")));
            }
        })
    }

    /// What is wrong with the section, by key.
    fn problems(&self) -> Vec<Problem> {
        let name = self.name();
        let mut problems = Vec::new();
        let base_url = match self {
            Self::Oidc(section) => {
                if url::Url::parse(&section.discovery_url).is_err() {
                    problems.push(("auth.oidc.discovery_url".into(), "is not a URL".into()));
                }
                None
            }
            Self::GitHub(GitHubSection { base_url, .. })
            | Self::Google(GoogleSection { base_url, .. })
            | Self::Azure(AzureSection { base_url, .. })
            | Self::Cognito(CognitoSection { base_url, .. })
            | Self::GitLab(BaseUrlSection { base_url })
            | Self::Discord(BaseUrlSection { base_url }) => base_url.as_deref(),
            Self::Auth0(Auth0Section { base_url, .. })
            | Self::Keycloak(KeycloakSection { base_url, .. })
            | Self::Okta(OktaSection { base_url, .. }) => Some(base_url.as_str()),
            Self::WorkOs(BaseUrlSection { base_url }) => {
                if base_url.is_none() {
                    problems.push(("auth.workos.base_url".into(), "is required (the AuthKit domain)".into()));
                }
                base_url.as_deref()
            }
        };
        if let Some(url) = base_url
            && !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            problems.push((format!("auth.{name}.base_url"), "must be an http(s) URL".into()));
        }
        if let Self::Cognito(cognito) = self
            && cognito.base_url.is_none()
            && (cognito.region.is_none() || cognito.user_pool_id.is_none())
        {
            let problem = "give region and user_pool_id (or base_url, the pool's issuer)";
            problems.push(("auth.cognito".into(), problem.into()));
        }
        problems
    }

    /// The library's upstream for this provider, where we are the client `id` with `secret`;
    /// `want_groups` when the allow-list names groups (GitHub then reads organisations).
    pub async fn upstream(
        &self,
        id: String,
        secret: SecretString,
        want_groups: bool,
    ) -> Result<Upstream, ServeError> {
        let name = self.name();
        // Discovery and network failures are runtime problems; a refused setting names its section.
        let built = |result: Result<Upstream, UpstreamError>| {
            result.map_err(|e| match e {
                UpstreamError::Unavailable(why) => {
                    ServeError::ProviderUnavailable(format!("provider {name}: {why}"))
                }
                other => ServeError::Runtime(format!("[auth.{name}]: {other}")),
            })
        };
        match self.clone() {
            Self::Oidc(section) => {
                let scopes = vec!["email".into(), "profile".into()];
                Upstream::oidc(&section.discovery_url, id, secret, scopes).await.map_err(|e| match e {
                    UpstreamError::Unavailable(why) => {
                        ServeError::ProviderUnavailable(format!("auth.oidc.discovery_url: {why}"))
                    }
                    other => ServeError::Runtime(format!("auth.oidc.discovery_url: {other}")),
                })
            }
            Self::GitHub(section) => {
                let github = GitHub {
                    base_url: section.base_url,
                    organisations: section.organisations || want_groups,
                    ..GitHub::new(id, secret)
                };
                built(github.upstream())
            }
            Self::Google(section) => {
                let google = Google {
                    base_url: section.base_url,
                    hosted_domain: section.hosted_domain,
                    ..Google::new(id, secret)
                };
                built(google.upstream().await)
            }
            Self::Azure(section) => {
                let defaults = Entra::new(id, secret);
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
            Self::Auth0(section) => {
                built(app(Auth0 { domain: section.base_url, audience: section.audience }, id, secret).await)
            }
            Self::Keycloak(section) => {
                let place = Keycloak { base_url: section.base_url, realm: section.realm };
                built(app(place, id, secret).await)
            }
            Self::Okta(section) => {
                let server = section.authorization_server.unwrap_or_else(|| "default".into());
                let place = Okta {
                    domain: section.base_url,
                    authorization_server: Some(server).filter(|s| !s.is_empty()),
                };
                built(app(place, id, secret).await)
            }
            Self::Cognito(section) => {
                let place = match (section.base_url, &section.region, &section.user_pool_id) {
                    (Some(issuer), _, _) => Cognito { issuer },
                    (None, Some(region), Some(pool)) => {
                        Cognito::pool(region, pool).map_err(|e| config_error("auth.cognito", e))?
                    }
                    _ => return Err(config_error("auth.cognito", "give region and user_pool_id")),
                };
                built(app(place, id, secret).await)
            }
            Self::GitLab(section) => {
                let base_url = section.base_url.unwrap_or_else(|| "https://gitlab.com".into());
                built(app(GitLab { base_url }, id, secret).await)
            }
            Self::Discord(section) => {
                built(Discord { base_url: section.base_url, ..Discord::new(id, secret) }.upstream())
            }
            Self::WorkOs(section) => {
                let domain =
                    section.base_url.ok_or_else(|| config_error("auth.workos.base_url", "is required"))?;
                built(app(WorkOs { authkit_domain: domain }, id, secret).await)
            }
        }
    }
}

/// Our app at an OpenID Connect place.
async fn app<P: OidcPlace>(place: P, id: String, secret: SecretString) -> Result<Upstream, UpstreamError> {
    OidcApp::new(place, id, secret).upstream().await
}

/// `[auth.oidc]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The provider's discovery document.
    pub discovery_url: String,
}

/// `[auth.github]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubSection {
    /// A GitHub Enterprise Server URL; default github.com.
    pub base_url: Option<String>,
    /// Read the user's organisations (asks for `read:org`); on by itself when
    /// `allowed_users.groups` names organisations.
    #[serde(default)]
    pub organisations: bool,
}

/// `[auth.google]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSection {
    /// Only accounts of this Google Workspace domain (checked on the id_token's `hd`).
    pub hosted_domain: Option<String>,
    /// Where Google's accounts service is (a test double); default accounts.google.com.
    pub base_url: Option<String>,
}

/// `[auth.azure]`: Microsoft Entra ID.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSection {
    /// `common` (default), `organizations`, `consumers`, or a tenant id or domain.
    pub tenant: Option<String>,
    /// The authority host (sovereign clouds, B2C's b2clogin host); default
    /// `https://login.microsoftonline.com`.
    pub base_url: Option<String>,
    /// An Azure AD B2C user flow (`B2C_1_signupsignin`).
    pub b2c_policy: Option<String>,
    /// Ask Entra for the clients' scopes as this app's API scopes (`api://<client-id>/…`).
    #[serde(default)]
    pub api_scopes: bool,
    /// The API's identifier URI, when not `api://<client-id>`.
    pub api_identifier: Option<String>,
}

/// `[auth.auth0]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth0Section {
    /// The tenant's URL (`https://acme.us.auth0.com`, or a custom domain).
    pub base_url: String,
    /// The API identifier tokens are asked for.
    pub audience: Option<String>,
}

/// `[auth.keycloak]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakSection {
    /// The server's URL.
    pub base_url: String,
    /// The realm.
    pub realm: String,
}

/// `[auth.okta]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaSection {
    /// The org's URL (`https://acme.okta.com`).
    pub base_url: String,
    /// The custom authorization server (default `default`); `""` for the org server.
    pub authorization_server: Option<String>,
}

/// `[auth.cognito]`: a user pool by region and id, or its issuer URL as `base_url`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CognitoSection {
    /// The pool's region.
    pub region: Option<String>,
    /// The pool's id.
    pub user_pool_id: Option<String>,
    /// The pool's issuer URL, instead of region and id.
    pub base_url: Option<String>,
}

/// A provider section with only a base URL (`[auth.gitlab]`: a self-managed instance;
/// `[auth.workos]`: the AuthKit domain; `[auth.discord]`: a test double).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseUrlSection {
    /// Where the provider is.
    pub base_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(name: &str, sections: Vec<Provider>) -> Vec<Problem> {
        Provider::chosen(name, sections).expect_err("refused")
    }

    fn key(problem: &Problem) -> &str {
        &problem.0
    }

    #[test]
    fn a_provider_with_defaults_needs_no_section_and_one_without_is_refused_by_key() {
        assert_eq!(Provider::chosen("github", Vec::new()).expect("defaults").name(), "github");
        assert_eq!(key(&problems("okta", Vec::new())[0]), "auth.okta");
        assert_eq!(key(&problems("oidc", Vec::new())[0]), "auth.oidc.discovery_url");
        assert_eq!(key(&problems("workos", Vec::new())[0]), "auth.workos.base_url");
        let unknown = problems("myspace", Vec::new());
        assert_eq!(key(&unknown[0]), "auth.provider");
        assert!(unknown[0].1.contains("oidc, github"), "{unknown:?}");
    }

    #[test]
    fn every_name_is_known_and_names_its_variant() {
        for name in Provider::NAMES {
            match Provider::without_section(name) {
                Ok(provider) => assert_eq!(provider.name(), *name),
                Err((key, _)) => assert!(key.starts_with(&format!("auth.{name}")), "{name}: {key}"),
            }
        }
    }

    #[test]
    fn another_provider_s_section_and_a_bad_url_are_problems_at_their_keys() {
        let gitlab = Provider::GitLab(BaseUrlSection { base_url: Some("ftp://x".into()) });
        let github = Provider::GitHub(GitHubSection::default());
        let found = problems("gitlab", vec![github, gitlab]);
        let keys: Vec<&str> = found.iter().map(key).collect();
        assert_eq!(keys, ["auth.gitlab.base_url", "auth.github"], "{found:?}");
        let pool =
            Provider::Cognito(CognitoSection { region: Some("eu-west-1".into()), ..Default::default() });
        assert_eq!(key(&problems("cognito", vec![pool])[0]), "auth.cognito");
    }
}
