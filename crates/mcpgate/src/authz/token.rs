//! `/token` (D1–D4): client authentication per the registered method, then the grant: the
//! `authorization_code` grant — a code is redeemed once, by compare-and-swap, and a second
//! redemption revokes its grant — issuing our access JWT and an opaque refresh token; the
//! `refresh_token` grant, rotating; `client_credentials` for machine clients; and the
//! jwt-bearer grant redeeming an enterprise identity provider's assertion (SEP-990).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::Inner;
use super::client::{ClientRecord, GrantType, JWT_BEARER};
use super::client_assertion::{CLIENT_ASSERTION_TYPE, ClientAssertions};
use super::clients::Credentials;
use super::failure::Failure;
use super::grant::Grant;
use super::grants::{GrantError, unstored_grant_id};
use super::identity_assertion::IdentityAssertionError;
use super::resources::canonical_resource;
use crate::crypto::{pkce, random_token};
use crate::error::{ErrorCode, OAuthError};
use crate::upstream::UpstreamIdentity;

fn invalid(code: ErrorCode, description: &'static str) -> OAuthError {
    OAuthError::new(code, description)
}

/// The form, with each parameter at most once (RFC 6749 §3.2).
pub(crate) fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(invalid(ErrorCode::InvalidRequest, "a parameter is repeated"));
        }
    }
    Ok(params)
}

/// Credentials from HTTP Basic (RFC 6749 §2.3.1: each part form-urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, SecretString)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let bad = || invalid(ErrorCode::InvalidClient, "malformed Basic credentials");
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
        return Err(bad());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
    };
    Ok(Some((unescape(id).ok_or_else(bad)?, SecretString::from(unescape(secret).ok_or_else(bad)?))))
}

/// The claims of a person's access token: who (with the identity the provider gave, under the
/// OIDC claim names, for the MCP server: A10), for which resource and client, in which grant.
fn user_claims(
    identity: &UpstreamIdentity,
    resource: &str,
    client_id: &str,
    grant_id: &str,
) -> serde_json::Value {
    let mut claims =
        json!({"sub": identity.subject, "aud": resource, "client_id": client_id, "gid": grant_id});
    if let Some(email) = &identity.email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(identity.email_verified);
    }
    if let Some(name) = &identity.name {
        claims["name"] = json!(name);
    }
    if let Some(username) = &identity.username {
        claims["preferred_username"] = json!(username);
    }
    if !identity.groups.is_empty() {
        claims["groups"] = json!(identity.groups);
    }
    claims
}

/// A JWT client assertion from the form (RFC 7521 §4.2): both parameters or neither.
fn client_assertion(params: &HashMap<String, String>) -> Result<Option<SecretString>, OAuthError> {
    match (params.get("client_assertion_type"), params.get("client_assertion")) {
        (None, None) => Ok(None),
        (Some(kind), Some(assertion)) if kind == CLIENT_ASSERTION_TYPE => {
            Ok(Some(SecretString::from(assertion.clone())))
        }
        (Some(_), Some(_)) => Err(invalid(ErrorCode::InvalidClient, "unsupported client_assertion_type")),
        _ => {
            Err(invalid(ErrorCode::InvalidRequest, "client_assertion and client_assertion_type go together"))
        }
    }
}

impl Inner {
    /// Authenticates the client (D2) of `/token` and `/revoke`: confidential clients by their
    /// secret (Basic or post) or by a JWT signed with their key (`private_key_jwt`), public
    /// clients by id alone. One way per request.
    pub(crate) async fn authenticate_client(
        &self,
        headers: &HeaderMap,
        params: &HashMap<String, String>,
    ) -> Result<ClientRecord, OAuthError> {
        let basic = basic_credentials(headers)?;
        let posted = params.get("client_secret").map(|s| SecretString::from(s.clone()));
        let assertion = client_assertion(params)?;
        let ways =
            usize::from(basic.is_some()) + usize::from(posted.is_some()) + usize::from(assertion.is_some());
        if ways > 1 {
            return Err(invalid(ErrorCode::InvalidRequest, "use one client authentication method"));
        }
        let form_id = params.get("client_id");
        let (client_id, credentials) = match (basic, posted, assertion) {
            (Some((id, _)), _, _) if form_id.is_some_and(|form_id| form_id != &id) => {
                return Err(invalid(ErrorCode::InvalidClient, "client_id does not match the credentials"));
            }
            (Some((id, secret)), _, _) => (id, Credentials::Secret(secret)),
            (None, _, Some(assertion)) => {
                // The assertion names its client; a client_id beside it must be the same one,
                // which the assertion's issuer check enforces.
                let id = form_id.cloned().or_else(|| ClientAssertions::claimed_client(&assertion));
                let id =
                    id.ok_or_else(|| invalid(ErrorCode::InvalidClient, "client authentication failed"))?;
                (id, Credentials::Assertion(assertion))
            }
            (None, Some(secret), None) => match form_id {
                Some(id) => (id.clone(), Credentials::Secret(secret)),
                None => return Err(invalid(ErrorCode::InvalidClient, "client authentication required")),
            },
            (None, None, None) => match form_id {
                Some(id) => (id.clone(), Credentials::None),
                None => return Err(invalid(ErrorCode::InvalidClient, "client authentication required")),
            },
        };
        self.clients.authenticate(&client_id, credentials).await
    }

    /// The token response: our access token for `grant` narrowed to `scopes`, and the refresh
    /// token when there is one.
    fn issue_tokens(
        &self,
        grant: &Grant,
        scopes: &[String],
        refresh_token: Option<SecretString>,
    ) -> Response {
        let claims = user_claims(&grant.identity(), &grant.resource, &grant.client_id, &grant.id);
        self.token_response_for(claims, scopes, refresh_token)
    }

    /// Our access token with `claims` (who it is for) and `scopes`, in the token response.
    fn token_response_for(
        &self,
        mut claims: serde_json::Value,
        scopes: &[String],
        refresh_token: Option<SecretString>,
    ) -> Response {
        let now = self.settings.clock.unix_now();
        claims["iss"] = json!(self.settings.issuer);
        claims["scope"] = json!(scopes.join(" "));
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + self.settings.access_token_ttl.as_secs());
        claims["jti"] = json!(random_token().expose_secret());
        let access_token = self.signer.sign(&claims);
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.settings.access_token_ttl.as_secs(),
            "scope": scopes.join(" "),
        });
        if let Some(refresh_token) = refresh_token {
            body["refresh_token"] = json!(refresh_token.expose_secret());
        }
        token_response(body)
    }

    /// The `client_credentials` grant (SEP-1046): a machine client's token, with the client as
    /// its subject, no refresh token, and a grant id of its own so that `/revoke` can end it on
    /// every instance. Nothing is stored: there is no user and no upstream token to keep.
    fn client_credentials_grant(
        &self,
        client: &ClientRecord,
        params: &HashMap<String, String>,
    ) -> Result<Response, OAuthError> {
        let resource = self.resource_for(params.get("resource").map(String::as_str))?;
        let scopes = self.scopes_without_consent(client, params, None)?;
        let claims = json!({
            "sub": client.client_id,
            "aud": resource,
            "client_id": client.client_id,
            "gid": unstored_grant_id("machine"),
            (crate::CLIENT_KIND_CLAIM): crate::ClientKind::Machine.as_str(),
        });
        Ok(self.token_response_for(claims, &scopes, None))
    }

    /// The jwt-bearer grant with an enterprise identity provider's assertion (ID-JAG,
    /// SEP-990): the user it names gets a token through `client` without a sign-in page, if
    /// the allow-list admits them; scopes within what the assertion allows. No refresh token:
    /// the client asks the provider for a new assertion, so the enterprise keeps control. A
    /// grant id of its own makes it revocable; nothing is stored.
    async fn jwt_bearer_grant(
        &self,
        client: &ClientRecord,
        params: &HashMap<String, String>,
    ) -> Result<Response, OAuthError> {
        let assertion = params
            .get("assertion")
            .map(|a| SecretString::from(a.clone()))
            .ok_or_else(|| invalid(ErrorCode::InvalidRequest, "assertion is required"))?;
        let asked = params.get("resource").map(String::as_str);
        if asked.is_some() {
            self.resource_for(asked)?;
        }
        let user =
            self.identity_assertions.redeem(&assertion, &client.client_id).await.map_err(|e| match e {
                IdentityAssertionError::Store(e) => OAuthError::from(e),
                e => {
                    tracing::info!(client_id = %client.client_id, reason = %e, "identity assertion refused");
                    OAuthError::new(ErrorCode::InvalidGrant, e.to_string())
                }
            })?;
        if !self.settings.allowed_users.allows(&user.identity) {
            tracing::info!(idp = %user.issuer, subject = %user.identity.subject, "asserted user not allowed");
            return Err(invalid(ErrorCode::InvalidGrant, "this user is not allowed to use this server"));
        }
        let scopes = self.scopes_without_consent(client, params, user.scopes.as_deref())?;
        // The resource the provider vouched for; a client naming another is refused.
        let resource = user.resource.as_str();
        if asked.is_some_and(|asked| self.resource_for(Some(asked)) != Ok(resource)) {
            return Err(invalid(ErrorCode::InvalidTarget, "resource is not the one the assertion names"));
        }
        let mut claims =
            user_claims(&user.identity, resource, &client.client_id, &unstored_grant_id("assertion"));
        // Which provider vouched: subjects of different providers are told apart by it.
        claims["idp"] = json!(user.issuer);
        Ok(self.token_response_for(claims, &scopes, None))
    }

    /// The scopes of a grant without a consent page (client credentials, an assertion): those
    /// asked for, each grantable to `client` and within `ceiling` (what an assertion allows,
    /// when it says), else `invalid_scope`; without `scope`, every such scope. Unlike a
    /// sign-in, nobody is shown what was dropped, so nothing is dropped silently.
    fn scopes_without_consent(
        &self,
        client: &ClientRecord,
        params: &HashMap<String, String>,
        ceiling: Option<&[String]>,
    ) -> Result<Vec<String>, OAuthError> {
        let asked = params.get("scope").map(String::as_str).filter(|s| !s.trim().is_empty());
        let within = |scope: &str| ceiling.is_none_or(|c| c.iter().any(|s| s == scope));
        let allowed: Vec<&str> =
            self.grantable_scopes(client, asked.unwrap_or("")).into_iter().filter(|s| within(s)).collect();
        match asked {
            Some(asked) if !asked.split_ascii_whitespace().all(|s| allowed.contains(&s)) => {
                Err(invalid(ErrorCode::InvalidScope, "a scope asked for is not this client's"))
            }
            Some(asked) => Ok(asked.split_ascii_whitespace().map(str::to_owned).collect()),
            None => Ok(allowed.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// The `refresh_token` grant (D4): rotate on every use, atomically; the replaced token works
    /// for the grace window; anything older revokes the grant (the rules are `Grants`'). Scopes
    /// may narrow, never widen.
    async fn refresh_token_grant(
        &self,
        client: &ClientRecord,
        params: &HashMap<String, String>,
    ) -> Result<Response, OAuthError> {
        let Some(presented) = params.get("refresh_token") else {
            return Err(invalid(ErrorCode::InvalidRequest, "refresh_token is required"));
        };
        let refused = refused_as("the refresh token is invalid, expired or revoked");
        let refresh = self.grants.refresh(presented, &client.client_id).await.map_err(refused)?;
        // A grant's tokens are for its resource, whichever a refresh names (RFC 8707 §2.2 lets
        // a server refuse another).
        if let Some(asked) = params.get("resource")
            && canonical_resource(asked) != canonical_resource(&refresh.grant.value.resource)
        {
            return Err(invalid(ErrorCode::InvalidTarget, "resource is not the one this grant is for"));
        }
        let allowed = refresh.scopes();
        if params.get("scope").is_none() && self.step_up_pending(&refresh.grant.value.id, allowed).await {
            // See `step_up`: this refresh would bring back the token that was just turned away.
            return Err(invalid(
                ErrorCode::InvalidGrant,
                "the resource asked for scopes this grant lacks: authorize again to grant them",
            ));
        }
        let scopes = match params.get("scope") {
            None => allowed.to_vec(),
            Some(asked) => {
                let asked: Vec<String> = asked.split_ascii_whitespace().map(str::to_owned).collect();
                if !asked.iter().all(|s| allowed.contains(s)) {
                    return Err(invalid(ErrorCode::InvalidScope, "a refresh cannot widen the scopes"));
                }
                asked
            }
        };
        // D5: the user's provider tokens are renewed with ours when they are due; a provider
        // that refuses ends the grant, one that is down leaves this refresh token usable.
        let grant = self.refresh_upstream_if_due(refresh.grant.clone()).await?;
        // Identity at refresh (providers whose user API is the source): before the rotation, so
        // a provider that is down leaves this refresh token usable.
        let grant = self.recheck_identity(grant).await?;
        let refresh_token = self.grants.rotate(&refresh, &scopes).await.map_err(refused)?;
        Ok(self.issue_tokens(&grant, &scopes, Some(refresh_token)))
    }

    async fn authorization_code_grant(
        &self,
        client: &ClientRecord,
        params: &HashMap<String, String>,
    ) -> Result<Response, OAuthError> {
        let (Some(code), Some(verifier)) = (params.get("code"), params.get("code_verifier")) else {
            return Err(invalid(ErrorCode::InvalidRequest, "code and code_verifier are required"));
        };
        let refused = refused_as("the code is invalid, expired or already used");
        let found = self.grants.find_code(code, &client.client_id).await.map_err(refused)?;
        let code_record = found.record();
        if params.get("redirect_uri") != Some(&code_record.redirect_uri) {
            return Err(invalid(
                ErrorCode::InvalidGrant,
                "redirect_uri does not match the authorization request",
            ));
        }
        if !pkce::verify_s256(verifier, &code_record.code_challenge) {
            return Err(invalid(ErrorCode::InvalidGrant, "code_verifier does not match"));
        }
        if let Some(resource) = params.get("resource")
            && canonical_resource(resource) != canonical_resource(&code_record.resource)
        {
            return Err(invalid(
                ErrorCode::InvalidTarget,
                "resource does not match the authorization request",
            ));
        }
        let scopes = code_record.scopes.clone();
        let grant = self.grants.redeem(found).await.map_err(refused)?;
        // Its first completed sign-in: a registration is kept from now on.
        self.clients.confirm(client).await?;
        let refresh_token = if client.grant_types.contains(&GrantType::RefreshToken) {
            Some(self.grants.start_family(&grant, &scopes).await?)
        } else {
            None
        };
        Ok(self.issue_tokens(&grant, &scopes, refresh_token))
    }
}

/// `invalid_grant` with `description` for a code or refresh token that gave nothing (what
/// became of its grant is for the log, not the client); a store failure as itself.
fn refused_as(description: &'static str) -> impl Fn(GrantError) -> OAuthError + Copy {
    move |error| match error {
        GrantError::Store(e) => e.into(),
        GrantError::Unknown | GrantError::Replayed | GrantError::Concurrent => {
            invalid(ErrorCode::InvalidGrant, description)
        }
    }
}

fn token_response(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /token`.
pub(crate) async fn token(
    State(server): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let outcome = async {
        let params = parse_form(&body)?;
        let client = server.authenticate_client(&headers, &params).await?;
        let grant_type = params.get("grant_type").map(String::as_str);
        if let Some(known) = grant_type.and_then(GrantType::parse)
            && !client.grant_types.contains(&known)
        {
            return Err(invalid(ErrorCode::UnauthorizedClient, "this client may not use this grant_type"));
        }
        match grant_type {
            Some("authorization_code") => server.authorization_code_grant(&client, &params).await,
            Some("client_credentials") => server.client_credentials_grant(&client, &params),
            Some(JWT_BEARER) => server.jwt_bearer_grant(&client, &params).await,
            Some("refresh_token") => server.refresh_token_grant(&client, &params).await,
            Some(_) => Err(invalid(
                ErrorCode::UnsupportedGrantType,
                "grant_type must be authorization_code, refresh_token, client_credentials or the jwt-bearer grant",
            )),
            None => Err(invalid(ErrorCode::InvalidRequest, "grant_type is required")),
        }
    };
    Ok(outcome.await?)
}

/// `GET /jwks.json`.
pub(crate) async fn jwks(State(server): State<Arc<Inner>>) -> Response {
    let mut response = Json(server.signer.jwks()).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}
