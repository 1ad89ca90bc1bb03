//! From `[auth]` to the library's provider: which one `auth.provider` names, built from its
//! section (`[auth.oidc]`, `[auth.github]`, …) with our registration there.

use mcpgate::upstream::Upstream;
use mcpgate::upstream::providers::GitHub;
use secrecy::SecretString;

use crate::config::AuthConfig;
use crate::serve::{ServeError, config_error};

/// The upstream provider `auth` describes, where we are `auth.client_id` with `client_secret`.
pub async fn upstream(auth: &AuthConfig, client_secret: SecretString) -> Result<Upstream, ServeError> {
    let client_id = auth.client_id.clone().unwrap_or_default();
    match auth.provider.as_str() {
        "github" => {
            let section = auth.github.clone().unwrap_or_default();
            let mut github = GitHub::new(client_id, client_secret);
            if let Some(url) = &section.base_url {
                github = github.base_url(url);
            }
            // An allow-list by organisation needs the organisations.
            if section.organisations || !auth.allowed_users.groups.is_empty() {
                github = github.with_organisations();
            }
            github.upstream().map_err(|e| config_error("auth.github.base_url", e))
        }
        _ => {
            let discovery =
                auth.oidc.as_ref().ok_or_else(|| config_error("auth.oidc.discovery_url", "is required"))?;
            Upstream::oidc(
                &discovery.discovery_url,
                client_id,
                client_secret,
                vec!["email".into(), "profile".into()],
            )
            .await
            .map_err(|e| ServeError::Runtime(format!("auth.oidc.discovery_url: {e}")))
        }
    }
}
