//! Authorization-server metadata (RFC 8414, B1/B2): one document, served at the RFC 8414 path
//! (path-inserted when the issuer has a path), at the OIDC discovery aliases, with CORS open.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::cors::{Any, CorsLayer};

use super::Inner;
use super::register::Registration;

const AUTH_METHODS: [&str; 3] = ["none", "client_secret_post", "client_secret_basic"];

/// The metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServerMetadata {
    /// Our issuer identifier, byte-for-byte.
    pub issuer: String,
    /// `/authorize`.
    pub authorization_endpoint: String,
    /// `/token`.
    pub token_endpoint: String,
    /// `/register`; absent when registration is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// `/revoke`.
    pub revocation_endpoint: String,
    /// Our signing keys.
    pub jwks_uri: String,
    /// Scopes clients may request.
    pub scopes_supported: Vec<String>,
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `authorization_code`, `refresh_token`, and `client_credentials` and the jwt-bearer grant
    /// (identity assertions) when a configured client may use them.
    pub grant_types_supported: Vec<String>,
    /// How clients authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// How clients authenticate at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The algorithms of `private_key_jwt` assertions, when a configured client uses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// The same, at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// `["S256"]` only.
    pub code_challenge_methods_supported: Vec<String>,
    /// Client ID metadata documents are accepted as client ids.
    pub client_id_metadata_document_supported: bool,
    /// Authorization responses carry `iss` (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
}

impl Inner {
    pub(crate) fn metadata(&self) -> AuthServerMetadata {
        let issuer = &self.settings.issuer;
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let keys = self.clients.any_with_keys();
        let mut auth_methods = strings(&AUTH_METHODS);
        if keys {
            auth_methods.push("private_key_jwt".to_owned());
        }
        // What assertions may be signed with: every asymmetric algorithm the verifier knows (the
        // variant names are the JWA names).
        let assertion_algs: Vec<String> = if keys {
            crate::verify::ASYMMETRIC_ALGS.iter().map(|alg| format!("{alg:?}")).collect()
        } else {
            Vec::new()
        };
        AuthServerMetadata {
            issuer: issuer.clone(),
            authorization_endpoint: format!("{issuer}/authorize"),
            token_endpoint: format!("{issuer}/token"),
            registration_endpoint: (self.settings.registration == Registration::Open)
                .then(|| format!("{issuer}/register")),
            revocation_endpoint: format!("{issuer}/revoke"),
            jwks_uri: format!("{issuer}/jwks.json"),
            scopes_supported: self.settings.scopes_supported.clone(),
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            grant_types_supported: self.grant_types_supported(),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
            token_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
            revocation_endpoint_auth_signing_alg_values_supported: assertion_algs,
            code_challenge_methods_supported: strings(&["S256"]),
            client_id_metadata_document_supported: self.clients.documents_enabled(),
            authorization_response_iss_parameter_supported: true,
        }
    }

    /// The grants some client can use: machine clients' only when one is configured.
    fn grant_types_supported(&self) -> Vec<String> {
        let mut grants = vec!["authorization_code".to_owned(), "refresh_token".to_owned()];
        if self.clients.configured_grant(super::GrantType::ClientCredentials) {
            grants.push("client_credentials".to_owned());
        }
        // Identity assertions need a trusted provider and a client that may redeem them.
        if self.identity_assertions.any() && self.clients.configured_grant(super::GrantType::JwtBearer) {
            grants.push(super::JWT_BEARER.to_owned());
        }
        grants
    }
}

/// Every path the document is served at: RFC 8414 §3 (path-inserted), OIDC Discovery
/// (appended to the issuer) and the path-inserted OIDC form some clients try. When the issuer
/// has a path but shares the MCP server's origin, also at that origin's root: clients of the
/// 2025-03-26 revision look there, having dropped the path of the MCP URL (B2).
fn paths(issuer_path: &str, shares_mcp_origin: bool) -> Vec<String> {
    let mut paths = vec![
        format!("/.well-known/oauth-authorization-server{issuer_path}"),
        format!("/.well-known/openid-configuration{issuer_path}"),
    ];
    if !issuer_path.is_empty() {
        paths.push(format!("{issuer_path}/.well-known/openid-configuration"));
        if shares_mcp_origin {
            paths.push("/.well-known/oauth-authorization-server".to_owned());
        }
    }
    paths
}

fn origin(url: &str) -> Option<url::Origin> {
    url::Url::parse(url).ok().map(|u| u.origin())
}

pub(crate) fn routes(server: &Arc<Inner>) -> Router {
    let document = Json(server.metadata());
    let handler = get(move || {
        let document = document.clone();
        async move { document }
    });
    let settings = &server.settings;
    let shares_mcp_origin = origin(&settings.issuer)
        .is_some_and(|o| settings.resources.iter().any(|r| Some(&o) == origin(r).as_ref()));
    let router = paths(&server.issuer_path, shares_mcp_origin)
        .into_iter()
        .fold(Router::new(), |r, p| r.route(&p, handler.clone()));
    router.layer(CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_inserted_forms() {
        assert_eq!(
            paths("", true),
            ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
        );
        assert_eq!(
            paths("/tenant", false),
            [
                "/.well-known/oauth-authorization-server/tenant",
                "/.well-known/openid-configuration/tenant",
                "/tenant/.well-known/openid-configuration"
            ]
        );
        assert_eq!(paths("/tenant", true).last().unwrap(), "/.well-known/oauth-authorization-server");
    }
}
