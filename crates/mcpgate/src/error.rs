//! The authorization server's one error type, and its one mapping to HTTP: RFC 6749 §5.2 token
//! errors, RFC 7591 §3.2.2 registration errors and RFC 7009 revocation errors share the JSON
//! shape `{"error", "error_description"}`, with `Cache-Control: no-store` on every answer.

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::store::StoreError;

/// The OAuth error codes mcpgate answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6749: malformed request.
    InvalidRequest,
    /// RFC 6749: client authentication failed.
    InvalidClient,
    /// RFC 6749: bad code, refresh token, verifier or redirect URI.
    InvalidGrant,
    /// RFC 6749: the client may not use this grant.
    UnauthorizedClient,
    /// RFC 6749: unknown grant type.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1: the response type is not `code`.
    UnsupportedResponseType,
    /// RFC 6749: scope outside what is allowed.
    InvalidScope,
    /// RFC 8707: the `resource` is not this server's.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: the user or server refused.
    AccessDenied,
    /// RFC 7591: a redirect URI is not acceptable.
    InvalidRedirectUri,
    /// RFC 7591: other client metadata is not acceptable.
    InvalidClientMetadata,
    /// RFC 7009: the token type is not supported for revocation.
    UnsupportedTokenType,
    /// RFC 6749: something failed on our side.
    ServerError,
    /// RFC 6749: try again later (store or upstream unavailable, rate limited).
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as it appears in `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error: a code and a description safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong, for the client's developer; never contains a secret.
    pub description: Cow<'static, str>,
}

impl OAuthError {
    /// An error with a fixed description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self { code, description: description.into() }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        // The detail goes to the log, not to the client.
        tracing::error!(error = %e, "store failure");
        match e {
            StoreError::Unavailable(_) => {
                OAuthError::new(ErrorCode::TemporarilyUnavailable, "storage unavailable")
            }
            StoreError::Corrupt(_) | StoreError::Config(_) => {
                OAuthError::new(ErrorCode::ServerError, "storage error")
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut response = (self.code.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if self.code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="mcpgate""#));
        }
        if self.code == ErrorCode::TemporarilyUnavailable {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_are_json_with_no_store() {
        let response = OAuthError::new(ErrorCode::InvalidGrant, "code already used").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"error": "invalid_grant", "error_description": "code already used"}));

        let response = OAuthError::new(ErrorCode::InvalidClient, "bad secret").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn store_failures_do_not_leak_detail() {
        let e = OAuthError::from(StoreError::Unavailable("redis: connection refused at 10.0.0.3".into()));
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        assert!(!e.description.contains("10.0.0.3"));
    }
}
