//! `/authorize` (C1–C4): check the client and its redirect URI before anything else (errors
//! until then are HTML pages, never redirects), then PKCE, `resource` and scopes (errors from
//! then on go to the redirect URI), then open a (sealed) transaction and show the consent page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Form, http::StatusCode};
use http::HeaderMap;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::client::ClientRecord;
use super::clients::ClientLookupError;
use super::failure::{Failure, ValidatedRedirect};
use super::transaction::{TRANSACTION_TTL, Transaction};
use super::{Inner, consent};
use crate::crypto::{pkce, random_token};
use crate::error::ErrorCode;

/// The longest client `state` carried (it travels sealed in the provider's `state`).
const MAX_CLIENT_STATE: usize = 1024;

/// The parameters of an authorization request (query for GET, form for POST).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
}

impl Inner {
    /// The scopes granted for a request: what was asked, within what the client may have
    /// (`grantable_scopes`); none asked → all it may have. Scopes it may not have are dropped;
    /// a request left with none is refused.
    fn grant_scopes(&self, client: &ClientRecord, requested: Option<&str>) -> Result<Vec<String>, ()> {
        let allowed = self.grantable_scopes(client, requested.unwrap_or(""));
        let Some(requested) = requested.filter(|r| !r.trim().is_empty()) else {
            return Ok(allowed.iter().map(|s| (*s).to_owned()).collect());
        };
        // offline_access asks for refresh tokens, which every grant gets: not a scope here.
        let asked: Vec<&str> =
            requested.split_ascii_whitespace().filter(|s| *s != "offline_access").collect();
        let granted: Vec<String> =
            asked.iter().filter(|s| allowed.contains(s)).map(|s| (*s).to_owned()).collect();
        if granted.is_empty() && !asked.is_empty() { Err(()) } else { Ok(granted) }
    }
}

/// `GET /authorize`.
pub(crate) async fn authorize_get(
    State(server): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, Failure> {
    authorize(server, &headers, params).await
}

/// `POST /authorize`.
pub(crate) async fn authorize_post(
    State(server): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(params): Form<AuthorizeParams>,
) -> Result<Response, Failure> {
    authorize(server, &headers, params).await
}

async fn authorize(
    server: Arc<Inner>,
    headers: &HeaderMap,
    params: AuthorizeParams,
) -> Result<Response, Failure> {
    // C1: client and redirect URI first; until both are known good, never redirect.
    let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Err(Failure::page(StatusCode::BAD_REQUEST, "The request has no client_id."));
    };
    let client = match server.clients.find(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(Failure::page(StatusCode::BAD_REQUEST, "This client is not registered.")),
        Err(ClientLookupError::Document(e)) => {
            return Err(Failure::page(StatusCode::BAD_REQUEST, e.to_string()));
        }
        Err(ClientLookupError::Store(_)) => {
            return Err(Failure::page(StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment."));
        }
    };
    let redirect_uri = ValidatedRedirect::for_client(&client, params.redirect_uri.as_deref())?;
    let issuer = server.settings.issuer.as_str();
    let state = params.state.as_deref();
    let fail = |code, description: &'static str| Err(redirect_uri.error(issuer, state, code, description));

    if params.response_type.as_deref() != Some("code") {
        return fail(ErrorCode::UnsupportedResponseType, "response_type must be code");
    }
    // C2: S256 only; a missing method means plain (RFC 7636 §4.3), which is refused.
    let Some(code_challenge) = params.code_challenge.as_deref().filter(|c| pkce::is_valid_s256_challenge(c))
    else {
        return fail(ErrorCode::InvalidRequest, "code_challenge (S256) is required");
    };
    if params.code_challenge_method.as_deref() != Some("S256") {
        return fail(ErrorCode::InvalidRequest, "code_challenge_method must be S256");
    }
    // C3: a resource, when named, must be one of ours; unnamed, the only one.
    let resource = match server.resource_for(params.resource.as_deref()) {
        Ok(resource) => resource.to_owned(),
        Err(e) => return fail(ErrorCode::InvalidTarget, e.message()),
    };
    let Ok(scopes) = server.grant_scopes(&client, params.scope.as_deref()) else {
        return fail(ErrorCode::InvalidScope, "none of the requested scopes is allowed");
    };

    if params.state.as_ref().is_some_and(|s| s.len() > MAX_CLIENT_STATE) {
        return fail(ErrorCode::InvalidRequest, "state is too long");
    }

    let (upstream_verifier, _) = pkce::new_pair();
    let transaction = Transaction {
        id: random_token().expose_secret().to_owned(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        client_state: params.state.clone(),
        code_challenge: code_challenge.to_owned(),
        scopes,
        resource,
        upstream_verifier: upstream_verifier.expose_secret().to_owned(),
        nonce: random_token().expose_secret().to_owned(),
        expires_at: server.settings.clock.unix_now() + TRANSACTION_TTL.as_secs(),
    };
    let Ok(handle) = server.seal_transaction(&transaction) else {
        return fail(ErrorCode::ServerError, "the request could not be recorded");
    };
    consent::ask_or_continue(&server, headers, &client, &transaction, &handle)
}
