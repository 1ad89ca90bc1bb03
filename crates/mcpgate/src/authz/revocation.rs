//! Revocation (D6): `/revoke` (RFC 7009) for our refresh and access tokens, and the verifier of
//! our access tokens, which refuses those of revoked grants (see [`super::revoked`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde_json::Value;

use super::Inner;
use super::failure::Failure;
use super::grant::PresentedRefreshToken;
use super::revoked::RevokedGrants;
use super::token::parse_form;
use crate::Principal;
use crate::error::{ErrorCode, OAuthError};
use crate::verify::{CachedVerifier, InvalidToken, JwtVerifier, Revalidate, TokenVerifier, VerifyError};

/// Verifies our access tokens: one cache of the signature and claim checks, and the
/// revocation list asked on every use, cached or not.
pub struct AccessTokenVerifier(CachedVerifier<JwtVerifier, RevokedGrants>);

impl std::fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AccessTokenVerifier").field(&self.0).finish()
    }
}

impl AccessTokenVerifier {
    pub(crate) fn new(jwt: JwtVerifier, revoked: RevokedGrants) -> Self {
        Self(CachedVerifier::new(jwt).revalidated_by(revoked))
    }
}

#[async_trait]
impl TokenVerifier for AccessTokenVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.0.verify(token).await
    }

    /// Zero, as for every cache: another cache around this one would skip the revocation check.
    fn max_cache_ttl(&self) -> Option<std::time::Duration> {
        self.0.max_cache_ttl()
    }
}

/// A grant revoked since its token was verified refuses the token.
#[async_trait]
impl Revalidate for RevokedGrants {
    async fn revalidate(&self, principal: &Principal) -> Result<(), VerifyError> {
        self.listen().await;
        match principal.claim("gid").and_then(Value::as_str) {
            Some(gid) if !self.contains(gid) => Ok(()),
            _ => Err(InvalidToken::Revoked.into()),
        }
    }
}

impl Inner {
    /// The grant a token belongs to, if it is ours and was issued to `client_id`: an access
    /// JWT we signed, or a refresh token one of our families issued. (A refresh token's middle
    /// part is a decimal generation; a JWT's is base64 JSON, which never is.)
    async fn grant_of(&self, token: &str, client_id: &str) -> Result<Option<String>, OAuthError> {
        let (owner, grant_id) = if PresentedRefreshToken::parse(token).is_some() {
            let Some(grant) = self.grants.of_refresh_token(token).await? else { return Ok(None) };
            (Some(grant.client_id), Some(grant.id))
        } else {
            let Ok(principal) = self.own_jwt.verify(token).await else { return Ok(None) };
            let gid = principal.claim("gid").and_then(Value::as_str).map(str::to_owned);
            (principal.client_id().map(str::to_owned), gid)
        };
        if owner.as_deref() != Some(client_id) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the token was issued to another client",
            ));
        }
        Ok(grant_id)
    }

    /// Revokes the grant behind a revoked token, and its upstream token where the provider can.
    async fn revoke_everything(&self, grant_id: &str) {
        if let Ok(Some(grant)) = self.grants.get(grant_id).await
            && let Some((access, refresh)) = self.grants.open_upstream(&grant.value)
        {
            // Both: a provider may revoke one without the other (GitHub deletes access tokens only).
            let tokens = [Some((&access, "access_token")), refresh.as_ref().map(|r| (r, "refresh_token"))];
            for (token, hint) in tokens.into_iter().flatten() {
                if let Err(e) = self.upstream.revoke(token, hint).await {
                    tracing::warn!(error = %e, "revoking the upstream token failed");
                }
            }
        }
        self.grants.revoke(grant_id).await;
    }
}

/// `POST /revoke`: 200 whether or not the token was known (RFC 7009 §2.2).
pub(crate) async fn revoke(
    State(server): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let params: HashMap<String, String> = parse_form(&body)?;
    let client = server.authenticate_client(&headers, &params).await?;
    let token =
        params.get("token").ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))?;
    if let Some(grant_id) = server.grant_of(token, &client.client_id).await? {
        server.revoke_everything(&grant_id).await;
    }
    let mut response = http::StatusCode::OK.into_response();
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    Ok(response)
}
