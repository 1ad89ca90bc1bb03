//! Why a request was not let through, and the one place that turns it into an HTTP answer:
//! RFC 6750 `WWW-Authenticate` challenges with `resource_metadata` (RFC 9728 §5.1), every
//! parameter value quoted, and a JSON body with the same `error`/`error_description`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::verify::{InvalidToken, VerifyError};

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer token in the `Authorization` header (A2).
    #[error("bearer token required")]
    MissingToken,
    /// The request is malformed in a way RFC 6750 calls `invalid_request`, such as a token
    /// in the query string (A5) or two `Authorization` headers.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The token was refused (A3).
    #[error("{0}")]
    InvalidToken(InvalidToken),
    /// The token lacks a required scope (A4).
    #[error("insufficient scope")]
    InsufficientScope,
    /// The token could not be checked right now (identity provider unreachable).
    #[error("token verification temporarily unavailable")]
    Unavailable,
}

impl AuthError {
    /// The `outcome` label of `mcpgate_token_verifications_total` for this refusal.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing",
            Self::InvalidToken(_) => "invalid",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequest(_) => "bad_request",
            Self::Unavailable => "unavailable",
        }
    }
}

impl From<VerifyError> for AuthError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Invalid(reason) => AuthError::InvalidToken(reason),
            VerifyError::Unavailable(_) => AuthError::Unavailable,
        }
    }
}

/// What the challenge needs to know about the resource.
#[derive(Debug, Clone)]
pub(crate) struct ChallengeContext {
    pub metadata_url: String,
    /// Space-separated required scopes (empty when none).
    pub scope: String,
}

/// An RFC 7230 quoted-string: backslash-escape `"` and `\`, drop control characters.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl AuthError {
    fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::InsufficientScope => StatusCode::FORBIDDEN,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken => None,
            AuthError::InvalidRequest(_) => Some("invalid_request"),
            AuthError::InvalidToken(_) => Some("invalid_token"),
            AuthError::InsufficientScope => Some("insufficient_scope"),
            AuthError::Unavailable => Some("temporarily_unavailable"),
        }
    }

    /// The `WWW-Authenticate` value for this refusal.
    pub(crate) fn challenge(&self, ctx: &ChallengeContext) -> String {
        let mut params: Vec<(&str, String)> = Vec::with_capacity(4);
        if let Some(code) = self.code() {
            params.push(("error", code.to_owned()));
            params.push(("error_description", self.to_string()));
        }
        if matches!(self, AuthError::MissingToken | AuthError::InsufficientScope) && !ctx.scope.is_empty() {
            params.push(("scope", ctx.scope.clone()));
        }
        params.push(("resource_metadata", ctx.metadata_url.clone()));
        let rendered: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", quoted(v))).collect();
        format!("Bearer {}", rendered.join(", "))
    }

    /// The full HTTP answer.
    pub(crate) fn into_response_for(self, ctx: &ChallengeContext) -> Response {
        let body = match self.code() {
            Some(code) => json!({"error": code, "error_description": self.to_string()}),
            None => json!({"error": "unauthorized", "error_description": self.to_string()}),
        };
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(self, AuthError::Unavailable) {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        } else if let Ok(value) = HeaderValue::from_str(&self.challenge(ctx)) {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(scope: &str) -> ChallengeContext {
        ChallengeContext {
            metadata_url: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp".into(),
            scope: scope.into(),
        }
    }

    #[test]
    fn missing_token_has_no_error_and_quotes_every_value() {
        assert_eq!(
            AuthError::MissingToken.challenge(&ctx("read write")),
            r#"Bearer scope="read write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
        );
        assert_eq!(
            AuthError::MissingToken.challenge(&ctx("")),
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
        );
    }

    #[test]
    fn invalid_and_insufficient_carry_their_codes() {
        let c = AuthError::InvalidToken(InvalidToken::Expired).challenge(&ctx("read"));
        assert!(c.starts_with(
            r#"Bearer error="invalid_token", error_description="token expired", resource_metadata=""#
        ));
        let c = AuthError::InsufficientScope.challenge(&ctx("admin"));
        assert!(c.contains(r#"error="insufficient_scope""#));
        assert!(c.contains(r#"scope="admin""#));
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("x\r\ny"), r#""xy""#);
    }
}
