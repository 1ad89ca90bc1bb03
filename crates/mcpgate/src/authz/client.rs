//! Registered clients: what the store keeps about each, whether it came from dynamic
//! registration, configuration or a client ID metadata document.

use serde::{Deserialize, Serialize};

use crate::redirect::{ApplicationType, RedirectUri};

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// A public client: no secret, PKCE only.
    None,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic.
    ClientSecretBasic,
}

impl TokenEndpointAuthMethod {
    /// Parses the RFC 7591 name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "client_secret_post" => Self::ClientSecretPost,
            "client_secret_basic" => Self::ClientSecretBasic,
            _ => return None,
        })
    }

    /// Whether the client has a secret.
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

/// The grants mcpgate issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// The authorization code grant with PKCE.
    AuthorizationCode,
    /// Refresh tokens.
    RefreshToken,
}

impl GrantType {
    /// Parses the RFC 7591 name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "authorization_code" => Self::AuthorizationCode,
            "refresh_token" => Self::RefreshToken,
            _ => return None,
        })
    }
}

/// Where a client record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    /// RFC 7591 dynamic registration.
    Dynamic,
    /// The operator's configuration.
    Configured,
    /// A client ID metadata document fetched from its URL.
    MetadataDocument,
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The client id.
    pub client_id: String,
    /// The keyed digest of the client secret (base64url), for confidential clients. The secret
    /// itself is never stored (D7).
    pub secret_digest: Option<String>,
    /// How it authenticates at the token endpoint.
    pub auth_method: TokenEndpointAuthMethod,
    /// The only redirect URIs it may use.
    pub redirect_uris: Vec<RedirectUri>,
    /// The grants it may use.
    pub grant_types: Vec<GrantType>,
    /// Native or web.
    pub application_type: ApplicationType,
    /// A name to show on the consent page.
    pub client_name: Option<String>,
    /// The scopes it registered for (space separated), within what the server supports.
    pub scope: Option<String>,
    /// Registration time, seconds since the epoch.
    pub issued_at: u64,
    /// Where the record came from.
    pub source: ClientSource,
}
