//! Dynamic client registration (RFC 7591, B3): the endpoint. The client's metadata is
//! validated and the client stored (with only a digest of its secret) by [`super::clients`];
//! this answers 201 with the registered metadata, or 403 when registration is off.

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
use super::client::TokenEndpointAuthMethod;
use super::clients::{RegistrationRequest, metadata_error};
use super::failure::Failure;

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

/// `POST /register`.
pub(crate) async fn register(State(server): State<Arc<Inner>>, body: Bytes) -> Result<Response, Failure> {
    if server.settings.registration == Registration::Off {
        let body = json!({"error": "access_denied",
                          "error_description": "client registration is off: ask the operator for a client id"});
        return Ok((StatusCode::FORBIDDEN, [(CACHE_CONTROL, "no-store")], Json(body)).into_response());
    }
    let request: RegistrationRequest = serde_json::from_slice(&body)
        .map_err(|e| metadata_error(format!("request is not valid client metadata: {e}")))?;
    // RFC 7591 §2: the default method is client_secret_basic.
    let client = server.clients.validate(request, TokenEndpointAuthMethod::ClientSecretBasic)?;
    let (client, secret) = server.clients.register(client).await?;

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
