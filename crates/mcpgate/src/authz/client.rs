//! Registered clients: what the store keeps about each, whether it came from dynamic
//! registration, configuration or a client ID metadata document.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::SettingsError;
use crate::crypto::KeyedMac;
use crate::redirect::{ApplicationType, RedirectUri};

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenEndpointAuthMethod {
    /// A public client: no secret, PKCE only.
    None,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic.
    ClientSecretBasic,
    /// A JWT the client signed with its private key (RFC 7523 §2.2): for clients the operator
    /// configures with their public keys.
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    /// Parses the RFC 7591 name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "client_secret_post" => Self::ClientSecretPost,
            "client_secret_basic" => Self::ClientSecretBasic,
            "private_key_jwt" => Self::PrivateKeyJwt,
            _ => return None,
        })
    }

    /// Whether the client authenticates at all (by a secret or by its keys).
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }

    /// Whether the client authenticates by a secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretPost | Self::ClientSecretBasic)
    }
}

/// The grants mcpgate issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GrantType {
    /// The authorization code grant with PKCE.
    AuthorizationCode,
    /// Refresh tokens.
    RefreshToken,
    /// A machine client's own credentials (SEP-1046): the subject is the client. Only for
    /// confidential clients the operator configures.
    ClientCredentials,
    /// An identity assertion of an enterprise identity provider (an ID-JAG, SEP-990) redeemed
    /// for a user's access token (`urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523 §2.1).
    /// Only for clients the operator configures.
    JwtBearer,
}

impl GrantType {
    /// Parses the RFC 7591 name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "authorization_code" => Self::AuthorizationCode,
            "refresh_token" => Self::RefreshToken,
            "client_credentials" => Self::ClientCredentials,
            JWT_BEARER => Self::JwtBearer,
            _ => return None,
        })
    }
}

/// The RFC 7523 name of [`GrantType::JwtBearer`].
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Where a client record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// Whether a sign-in through it has completed (a code redeemed). Until then a registered
    /// client expires, so that registrations nobody uses cannot fill the store. Records written
    /// before this field existed were kept for good: they read as confirmed.
    #[serde(default = "confirmed_by_default")]
    pub confirmed: bool,
}

fn confirmed_by_default() -> bool {
    true
}

/// Where a configured client's public keys are, for `private_key_jwt` (RFC 7591's names).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKeys {
    /// The keys themselves: a JWKS document (`jwks`).
    Jwks(serde_json::Value),
    /// A URL publishing them (`jwks_uri`): https, or http on loopback.
    JwksUri(String),
}

/// A client from the operator's configuration (B6): it works alongside registered clients and
/// is never written to the store, so changing the configuration changes it.
#[derive(Debug, Clone)]
pub struct ConfiguredClient {
    /// Its id.
    pub client_id: String,
    /// Its secret (confidential clients, HTTP Basic or post); `None` for a public client or
    /// one that authenticates by its keys.
    pub client_secret: Option<SecretString>,
    /// Its public keys: a client with keys and no secret authenticates by `private_key_jwt`.
    pub keys: Option<ClientKeys>,
    /// Its redirect URIs, checked by the native-client rules (https, loopback http, private-use
    /// schemes); the registration allow-list does not apply to what the operator configured.
    /// Required with the authorization code; a machine client has none.
    pub redirect_uris: Vec<String>,
    /// The name shown on the consent page.
    pub client_name: Option<String>,
    /// The scopes it may have (space separated); `None` for every supported scope.
    pub scope: Option<String>,
    /// The grants it may use: the authorization code (with refresh tokens or not), client
    /// credentials (a machine client, which needs a secret or keys), enterprise identity
    /// assertions ([`GrantType::JwtBearer`]), or several; empty for the
    /// authorization code with refresh tokens.
    pub grant_types: Vec<GrantType>,
}

impl ConfiguredClient {
    /// The record the endpoints use, with the secret as a keyed digest.
    pub(crate) fn to_record(&self, digester: &KeyedMac) -> Result<ClientRecord, SettingsError> {
        let bad = |reason: String| SettingsError::BadClient { client_id: self.client_id.clone(), reason };
        if self.client_id.is_empty() || self.client_id.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("the id must be non-empty, without spaces or control characters".into()));
        }
        let grant_types = if self.grant_types.is_empty() {
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        } else {
            self.grant_types.clone()
        };
        let signs_in = grant_types.contains(&GrantType::AuthorizationCode);
        let machine = grant_types.contains(&GrantType::ClientCredentials);
        let assertions = grant_types.contains(&GrantType::JwtBearer);
        if !signs_in && !machine && !assertions {
            return Err(bad(format!(
                "grant_types must include authorization_code, client_credentials or {JWT_BEARER}"
            )));
        }
        if !signs_in && grant_types.contains(&GrantType::RefreshToken) {
            return Err(bad("refresh_token comes with authorization_code only".into()));
        }
        if self.client_secret.is_some() && self.keys.is_some() {
            return Err(bad("a client authenticates by a secret or by its keys, not both".into()));
        }
        if machine && self.client_secret.is_none() && self.keys.is_none() {
            return Err(bad("client_credentials needs a client secret or keys".into()));
        }
        if signs_in && self.redirect_uris.is_empty() {
            return Err(bad("at least one redirect URI is required".into()));
        }
        let redirect_uris = self
            .redirect_uris
            .iter()
            .map(|raw| {
                RedirectUri::parse(raw, ApplicationType::Native).map_err(|e| bad(format!("{raw}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(why) = self.client_name.as_deref().and_then(super::display_text::disguise) {
            return Err(bad(format!("the name holds {why}")));
        }
        let secret_digest =
            self.client_secret.as_ref().map(|s| digester.tag(s.expose_secret().as_bytes()).to_base64());
        Ok(ClientRecord {
            client_id: self.client_id.clone(),
            auth_method: match (&secret_digest, &self.keys) {
                (Some(_), _) => TokenEndpointAuthMethod::ClientSecretBasic,
                (None, Some(_)) => TokenEndpointAuthMethod::PrivateKeyJwt,
                (None, None) => TokenEndpointAuthMethod::None,
            },
            secret_digest,
            redirect_uris,
            grant_types,
            application_type: ApplicationType::Native,
            client_name: self.client_name.clone(),
            scope: self.scope.clone(),
            issued_at: 0,
            source: ClientSource::Configured,
            confirmed: true,
        })
    }
}
