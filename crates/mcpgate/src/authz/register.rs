//! Dynamic client registration (RFC 7591, B3): validates the client's metadata, stores the
//! client with only a digest of its secret, and answers 201 with the registered metadata.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, PRAGMA};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Inner;
use super::client::{ClientRecord, ClientSource, GrantType, TokenEndpointAuthMethod};
use super::display_text::disguise;
use crate::crypto::random_token;
use crate::error::{ErrorCode, OAuthError};
use crate::redirect::ApplicationType;
use crate::store::{Collection, StoreExt};
use crate::verify::unix_now;

/// Where client records live.
pub(crate) const CLIENTS: Collection = Collection::new("clients");

const MAX_REDIRECT_URIS: usize = 20;
const MAX_NAME_CHARS: usize = 200;

/// Whether clients may register themselves (RFC 7591).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone may register a client (what MCP clients expect).
    #[default]
    Open,
    /// Only the operator's configured clients (and metadata documents, when accepted): the
    /// metadata names no registration endpoint, and `POST /register` is refused with 403.
    Off,
}

impl std::str::FromStr for Registration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "off" => Ok(Self::Off),
            other => Err(format!("registration must be open or off, not {other:?}")),
        }
    }
}

/// The metadata mcpgate reads; other members are ignored (RFC 7591 §2 allows it).
#[derive(Debug, Deserialize)]
pub(crate) struct RegistrationRequest {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    scope: Option<String>,
    application_type: Option<String>,
}

fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

impl Inner {
    /// Validates client metadata into a client record (secret digest not yet set), for
    /// registration and for metadata documents; `default_auth` applies when the metadata names
    /// no token endpoint authentication method.
    pub(crate) fn validate_registration(
        &self,
        request: RegistrationRequest,
        default_auth: TokenEndpointAuthMethod,
    ) -> Result<ClientRecord, OAuthError> {
        let auth_method = match request.token_endpoint_auth_method.as_deref() {
            None => default_auth,
            Some(name) => TokenEndpointAuthMethod::parse(name).ok_or_else(|| {
                metadata_error(
                    "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic",
                )
            })?,
        };
        let grant_types = match request.grant_types {
            None => vec![GrantType::AuthorizationCode],
            Some(names) => {
                names.iter().map(|n| GrantType::parse(n)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                    metadata_error("grant_types may contain authorization_code and refresh_token only")
                })?
            }
        };
        if !grant_types.contains(&GrantType::AuthorizationCode) {
            return Err(metadata_error("grant_types must include authorization_code"));
        }
        match request.response_types.as_deref() {
            None => {}
            Some(types) if !types.is_empty() && types.iter().all(|t| t == "code") => {}
            Some(_) => return Err(metadata_error("response_types must be [\"code\"]")),
        }
        let application_type = match request.application_type.as_deref() {
            None | Some("native") => ApplicationType::Native,
            Some("web") => ApplicationType::Web,
            Some(_) => return Err(metadata_error("application_type must be native or web")),
        };
        let client_name = match request.client_name {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return Err(metadata_error("client_name is too long"));
            }
            Some(name) => {
                // The consent page shows it: nothing that disguises what the user reads.
                if let Some(why) = disguise(&name) {
                    return Err(metadata_error(format!("client_name holds {why}")));
                }
                Some(name).filter(|n| !n.trim().is_empty())
            }
            None => None,
        };

        let raw_uris = request.redirect_uris.unwrap_or_default();
        if raw_uris.is_empty() {
            return Err(OAuthError::new(ErrorCode::InvalidRedirectUri, "redirect_uris is required"));
        }
        if raw_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::new(ErrorCode::InvalidRedirectUri, "too many redirect_uris"));
        }
        let redirect_uris = raw_uris
            .iter()
            .map(|raw| self.settings.allowed_redirects.validate(raw, application_type))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;

        // Registration never widens what the server allows (C4): keep the supported ones.
        let scope = request.scope.map(|requested| {
            requested
                .split_ascii_whitespace()
                .filter(|s| self.settings.scopes_supported.iter().any(|supported| supported == s))
                .collect::<Vec<_>>()
                .join(" ")
        });

        Ok(ClientRecord {
            client_id: random_token().expose_secret().to_owned(),
            secret_digest: None,
            auth_method,
            redirect_uris,
            grant_types,
            application_type,
            client_name,
            scope: scope.filter(|s| !s.is_empty()),
            issued_at: unix_now(),
            source: ClientSource::Dynamic,
            confirmed: false,
        })
    }
}

/// `POST /register`.
pub(crate) async fn register(State(server): State<Arc<Inner>>, body: Bytes) -> Result<Response, OAuthError> {
    if server.settings.registration == Registration::Off {
        let body = json!({"error": "access_denied",
                          "error_description": "client registration is off: ask the operator for a client id"});
        return Ok((StatusCode::FORBIDDEN, [(CACHE_CONTROL, "no-store")], Json(body)).into_response());
    }
    let request: RegistrationRequest = serde_json::from_slice(&body)
        .map_err(|e| metadata_error(format!("request is not valid client metadata: {e}")))?;
    // RFC 7591 §2: the default method is client_secret_basic.
    let mut client = server.validate_registration(request, TokenEndpointAuthMethod::ClientSecretBasic)?;
    let secret = client.auth_method.is_confidential().then(random_token);
    if let Some(secret) = &secret {
        client.secret_digest = Some(server.digester.tag(secret.expose_secret().as_bytes()).to_base64());
    }
    // Kept for good only once a sign-in through it completes (see `ClientRecord::confirmed`).
    let ttl = Some(server.settings.unconfirmed_client_ttl);
    if server.store.put_json_if_absent(CLIENTS, &client.client_id, &client, ttl).await?.is_none() {
        // 256-bit random ids do not collide; if one ever did, refuse rather than overwrite.
        return Err(OAuthError::new(ErrorCode::ServerError, "client id collision"));
    }

    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.issued_at,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.auth_method,
        "grant_types": client.grant_types,
        "response_types": ["code"],
        "application_type": client.application_type,
    });
    if let Some(secret) = &secret {
        body["client_secret"] = json!(secret.expose_secret());
        body["client_secret_expires_at"] = json!(0);
    }
    if let Some(name) = &client.client_name {
        body["client_name"] = json!(name);
    }
    if let Some(scope) = &client.scope {
        body["scope"] = json!(scope);
    }
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // The answer may carry a secret: never cached anywhere.
    response.headers_mut().insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, http::HeaderValue::from_static("no-cache"));
    Ok(response)
}
