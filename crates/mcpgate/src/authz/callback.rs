//! The upstream callback (C7): the provider sends the browser back here with its code and our
//! sealed transaction as `state`. The browser must carry the binding cookie set at approval; the
//! transaction is marked used atomically (a replayed state finds it used); the code is exchanged
//! with our own PKCE verifier; identity is established; a grant and a one-time code are stored;
//! and the browser goes back to the client with `code`, its `state` and exactly one `iss`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::Inner;
use super::consent::{binding_cookie, binding_value};
use super::cookies::{cookie_name, read_cookie};
use super::failure::Failure;
use super::grants::GrantRequest;
use crate::crypto::constant_time_eq;
use crate::error::ErrorCode;
use crate::upstream::UpstreamError;

/// What the provider sends back.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET <callback_path>`.
pub(crate) async fn callback(
    State(server): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<Response, Failure> {
    let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(Failure::page(StatusCode::BAD_REQUEST, "The identity provider's answer has no state."));
    };
    // The browser that approved must be the one that returns (before the transaction is used).
    let cookie = cookie_name(&server.settings.issuer, &binding_cookie(&server, state));
    let bound = read_cookie(&headers, &cookie)
        .is_some_and(|value| constant_time_eq(value.as_bytes(), binding_value(&server, state).as_bytes()));
    if !bound {
        return Err(Failure::page(StatusCode::FORBIDDEN, "This sign-in was not started in this browser."));
    }
    let gone = || {
        Failure::page(StatusCode::BAD_REQUEST, "This sign-in has expired or was already used. Start again.")
    };
    let Ok(transaction) = server.open_transaction(state) else { return Err(gone()) };
    match server.use_transaction(&transaction).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(gone()),
        Err(_) => {
            return Err(Failure::page(StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment."));
        }
    }
    let issuer = server.settings.issuer.as_str();
    let client_state = transaction.client_state.as_deref();
    let back = |code: ErrorCode, description: &'static str| {
        Err(transaction.redirect_uri.error(issuer, client_state, code, description))
    };

    if let Some(error) = &params.error {
        tracing::info!(%error, "the identity provider refused the sign-in");
        return back(ErrorCode::AccessDenied, "the identity provider did not authorize the request");
    }
    let Some(code) = params.code.as_deref() else {
        return back(ErrorCode::ServerError, "the identity provider returned no code");
    };
    let verifier = transaction.upstream_verifier();

    let upstream = async {
        let tokens = server.upstream.exchange_code(code, &server.callback_url, &verifier).await?;
        let identity = server.upstream.identity(&tokens, &transaction.nonce).await?;
        Ok::<_, UpstreamError>((tokens, identity))
    };
    let (tokens, identity) = match upstream.await {
        Ok(result) => result,
        Err(UpstreamError::Unavailable(why)) => {
            tracing::warn!(%why, "identity provider unavailable at the callback");
            return back(ErrorCode::TemporarilyUnavailable, "the identity provider is unavailable");
        }
        Err(e) => {
            tracing::warn!(error = %e, "the identity provider's answer was refused");
            return back(ErrorCode::AccessDenied, "the sign-in at the identity provider failed");
        }
    };
    if !server.settings.allowed_users.allows(&identity) {
        tracing::info!(subject = %identity.subject, "a user outside the allow-list signed in; refused");
        // No grant keeps the provider's tokens: revoke them there, where it can be, off the page's path.
        let upstream = server.upstream.clone();
        tokio::spawn(async move {
            let _ = upstream.revoke(&tokens.access_token, "access_token").await;
            if let Some(refresh) = &tokens.refresh_token {
                let _ = upstream.revoke(refresh, "refresh_token").await;
            }
        });
        let who = identity.username.as_deref().or(identity.email.as_deref()).unwrap_or(&identity.subject);
        return Err(Failure::page(
            StatusCode::FORBIDDEN,
            format!(
                "You signed in as {who}, who is not allowed to use this server. Ask its operator for \
                 access, or sign in with another account."
            ),
        ));
    }
    let request = GrantRequest {
        client_id: &transaction.client_id,
        redirect_uri: transaction.redirect_uri.as_str(),
        code_challenge: &transaction.code_challenge,
        resource: &transaction.resource,
        scopes: &transaction.scopes,
    };
    let code = match server.grants.create(request, identity, &tokens).await {
        Ok(code) => code,
        Err(_) => return back(ErrorCode::TemporarilyUnavailable, "storage unavailable"),
    };
    Ok(transaction.redirect_uri.back_with(&[("code", code.expose_secret())], client_state, issuer))
}
