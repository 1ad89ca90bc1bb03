//! OpenID Connect providers from their discovery document: endpoints, issuer and keys, with the
//! id_token as the source of identity.

use serde::Deserialize;

use super::{IdentitySource, UpstreamConfig, UpstreamError, default_timeouts};
use crate::http_client::{outbound_client, send_bounded};
use crate::verify::{ClientAuthMethod, JwtVerifier, JwtVerifierBuilder};

/// The members of an OpenID Provider's discovery document mcpgate uses.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcDiscovery {
    /// The provider's issuer.
    pub issuer: String,
    /// Its authorization endpoint.
    pub authorization_endpoint: String,
    /// Its token endpoint.
    pub token_endpoint: String,
    /// Its keys.
    pub jwks_uri: String,
    /// Its user-info endpoint.
    pub userinfo_endpoint: Option<String>,
    /// Its revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// How clients may authenticate at its token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// Fetches and checks the discovery document at `url` (`…/.well-known/openid-configuration`).
pub async fn discover(url: &str) -> Result<OidcDiscovery, UpstreamError> {
    let document = fetch_discovery(url).await?;
    document.check_issuer(url)?;
    Ok(document)
}

/// The discovery document at `url`, its issuer not yet checked (a provider whose document
/// names a templated issuer checks it its own way).
pub(crate) async fn fetch_discovery(url: &str) -> Result<OidcDiscovery, UpstreamError> {
    let client = outbound_client(default_timeouts());
    let request = client.get(url).header(http::header::ACCEPT, "application/json");
    let response = crate::metrics::timed_provider_request("discovery", send_bounded(request, 256 * 1024))
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("discovery: {e}")))?;
    if !response.status.is_success() {
        return Err(UpstreamError::Unavailable(format!("discovery answered {}", response.status)));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| UpstreamError::Invalid(format!("discovery document: {e}")))
}

impl OidcDiscovery {
    /// OIDC Discovery §4.3: the issuer must be the URL the document was fetched under (`url`).
    pub(crate) fn check_issuer(&self, url: &str) -> Result<(), UpstreamError> {
        let expected = url.strip_suffix("/.well-known/openid-configuration").unwrap_or(url);
        if self.issuer.trim_end_matches('/') != expected.trim_end_matches('/') {
            return Err(UpstreamError::Invalid(format!(
                "discovery issuer {:?} does not match {expected:?}",
                self.issuer
            )));
        }
        Ok(())
    }

    /// The upstream configuration for this provider, as client `client_id`.
    pub fn upstream_config(
        &self,
        client_id: impl Into<String>,
        client_secret: secrecy::SecretString,
        scopes: Vec<String>,
    ) -> Result<UpstreamConfig, UpstreamError> {
        let issuer = self.issuer.clone();
        self.upstream_config_with(client_id, client_secret, scopes, |verifier| verifier.issuer(issuer))
    }

    /// [`upstream_config`](Self::upstream_config) with the id_token's issuer rules set by
    /// `issuers` (a provider that names its issuer in more than one way).
    pub(crate) fn upstream_config_with(
        &self,
        client_id: impl Into<String>,
        client_secret: secrecy::SecretString,
        scopes: Vec<String>,
        issuers: impl FnOnce(JwtVerifierBuilder) -> JwtVerifierBuilder,
    ) -> Result<UpstreamConfig, UpstreamError> {
        let client_id = client_id.into();
        let verifier = issuers(JwtVerifier::builder().jwks_uri(self.jwks_uri.clone()))
            .audience(client_id.clone())
            .build()
            .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
        // Basic is the default (RFC 8414); post only when the provider supports nothing else.
        let methods = &self.token_endpoint_auth_methods_supported;
        let client_auth = if !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post")
        {
            ClientAuthMethod::ClientSecretPost
        } else {
            ClientAuthMethod::ClientSecretBasic
        };
        let mut scopes = scopes;
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(UpstreamConfig {
            authorization_endpoint: self.authorization_endpoint.clone(),
            token_endpoint: self.token_endpoint.clone(),
            revocation_endpoint: self.revocation_endpoint.clone(),
            client_id,
            client_secret,
            client_auth,
            scopes,
            extra_authorize_params: Vec::new(),
            identity: IdentitySource::IdToken {
                verifier: Box::new(verifier),
                userinfo: self.userinfo_endpoint.clone(),
            },
            timeouts: default_timeouts(),
        })
    }
}

impl super::Upstream {
    /// An OpenID Connect provider from its discovery document at `discovery_url`, where we are
    /// `client_id` with `client_secret`, asking for `scopes` beyond `openid`.
    pub async fn oidc(
        discovery_url: &str,
        client_id: impl Into<String>,
        client_secret: secrecy::SecretString,
        scopes: Vec<String>,
    ) -> Result<Self, UpstreamError> {
        let discovery = discover(discovery_url).await?;
        Ok(Self::new(discovery.upstream_config(client_id, client_secret, scopes)?))
    }
}
