//! The development identity provider of `mcpgate demo`: a plain OAuth 2.0 provider whose login
//! page asks only for a user name — no password, no external IdP — so the whole OAuth proxy can
//! be tried on one machine. It speaks the same protocol as a real provider (authorization code
//! with PKCE S256, single-use codes, a user-info endpoint) and is served beside the gateway
//! under `/dev-idp`. Never for production: anyone can be anyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mcpgate::crypto::{pkce, random_token};
use mcpgate::upstream::{IdentitySource, UpstreamConfig};
use mcpgate::verify::ClientAuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

/// Where the provider is served.
pub const PREFIX: &str = "/dev-idp";
const CLIENT_ID: &str = "mcpgate-demo";
const CODE_TTL: Duration = Duration::from_secs(60);

struct Code {
    user: String,
    redirect_uri: String,
    challenge: String,
    issued: Instant,
}

#[derive(Default)]
struct Shared {
    codes: HashMap<String, Code>,
    /// Access token → user. Bounded: the oldest go first.
    tokens: HashMap<String, String>,
}

/// The provider: its routes, and the upstream configuration mcpgate uses to reach it.
#[derive(Clone)]
pub struct DevProvider {
    shared: Arc<Mutex<Shared>>,
    client_secret: SecretString,
    /// mcpgate's callback: the only place this provider sends a browser back to.
    callback_url: Arc<str>,
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#x27;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({"error": error}))).into_response()
}

impl DevProvider {
    /// A provider with a fresh client secret for mcpgate, whose callback is `callback_url`.
    pub fn new(callback_url: &str) -> Self {
        Self { shared: Arc::default(), client_secret: random_token(), callback_url: callback_url.into() }
    }

    /// How mcpgate reaches it: browsers at `public_url`, mcpgate itself at `internal_url`.
    pub fn upstream_config(&self, public_url: &str, internal_url: &str) -> UpstreamConfig {
        UpstreamConfig {
            authorization_endpoint: format!("{public_url}{PREFIX}/authorize"),
            token_endpoint: format!("{internal_url}{PREFIX}/token"),
            revocation_endpoint: None,
            client_id: CLIENT_ID.into(),
            client_secret: self.client_secret.clone(),
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: vec!["profile".into()],
            extra_authorize_params: vec![],
            identity: IdentitySource::UserInfo {
                url: format!("{internal_url}{PREFIX}/userinfo"),
                subject_claim: "sub".into(),
            },
            timeouts: Default::default(),
        }
    }

    /// The provider's routes, under [`PREFIX`].
    pub fn router(&self) -> Router {
        Router::new()
            .route(&format!("{PREFIX}/authorize"), get(login_page).post(log_in))
            .route(&format!("{PREFIX}/token"), post(token))
            .route(&format!("{PREFIX}/userinfo"), get(userinfo))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn login_page(State(provider): State<DevProvider>, Query(query): Query<AuthorizeQuery>) -> Response {
    let (Some(CLIENT_ID), Some(redirect_uri), Some(state), Some(challenge), Some("S256")) = (
        query.client_id.as_deref(),
        query.redirect_uri.as_deref(),
        query.state.as_deref(),
        query.code_challenge.as_deref(),
        query.code_challenge_method.as_deref(),
    ) else {
        return (StatusCode::BAD_REQUEST, Html("<p>Not a request from mcpgate.</p>")).into_response();
    };
    if redirect_uri != &*provider.callback_url {
        return (StatusCode::BAD_REQUEST, Html("<p>Not mcpgate's redirect URI.</p>")).into_response();
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in (development)</title></head><body>\
         <h1>mcpgate demo sign-in</h1>\
         <p>This development provider signs you in as whoever you say. Never use it in production.</p>\
         <form method=\"post\">\
         <label>User name <input name=\"user\" required autofocus></label>\
         <input type=\"hidden\" name=\"redirect_uri\" value=\"{redirect_uri}\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <input type=\"hidden\" name=\"code_challenge\" value=\"{challenge}\">\
         <button type=\"submit\">Sign in</button></form></body></html>",
        redirect_uri = escape(redirect_uri),
        state = escape(state),
        challenge = escape(challenge),
    );
    let mut response = Html(page).into_response();
    // No `form-action`: browsers apply it to every redirect after the form is sent, and this
    // sign-in goes on through mcpgate's callback to the client's redirect URI, which this page
    // cannot know (any loopback port, https site or app scheme). `form-action 'self'` made
    // Chromium block the sign-in (seen by the Chromium interop test).
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    );
    response
}

async fn log_in(State(provider): State<DevProvider>, Form(form): Form<LoginForm>) -> Response {
    let user = form.user.trim();
    if user.is_empty() || user.len() > 64 || user.chars().any(char::is_control) {
        return (StatusCode::BAD_REQUEST, Html("<p>Choose a user name of at most 64 characters.</p>"))
            .into_response();
    }
    // The form's redirect URI came back from the browser: only mcpgate's callback is followed.
    let Ok(mut target) = url::Url::parse(&form.redirect_uri)
        .map_err(drop)
        .and_then(|url| if form.redirect_uri == *provider.callback_url { Ok(url) } else { Err(()) })
    else {
        return (StatusCode::BAD_REQUEST, Html("<p>Not mcpgate's redirect URI.</p>")).into_response();
    };
    let code = random_token();
    {
        let mut shared = provider.lock();
        shared.codes.retain(|_, c| c.issued.elapsed() < CODE_TTL);
        shared.codes.insert(
            code.expose_secret().to_owned(),
            Code {
                user: user.to_owned(),
                redirect_uri: form.redirect_uri.clone(),
                challenge: form.code_challenge,
                issued: Instant::now(),
            },
        );
    }
    target.query_pairs_mut().append_pair("code", code.expose_secret()).append_pair("state", &form.state);
    Redirect::to(target.as_str()).into_response()
}

async fn token(
    State(provider): State<DevProvider>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let expected = format!("{CLIENT_ID}:{}", provider.client_secret.expose_secret());
    let authenticated = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).ok())
        .is_some_and(|creds| mcpgate::crypto::constant_time_eq(&creds, expected.as_bytes()));
    if !authenticated {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.grant_type != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let (Some(code), Some(verifier)) = (form.code, form.code_verifier) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut shared = provider.lock();
    // Single use: taken out whatever happens next.
    let Some(issued) = shared.codes.remove(&code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if issued.issued.elapsed() >= CODE_TTL
        || form.redirect_uri.as_deref() != Some(issued.redirect_uri.as_str())
        || !pkce::verify_s256(&verifier, &issued.challenge)
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let access = random_token().expose_secret().to_owned();
    if shared.tokens.len() >= 10_000 {
        shared.tokens.clear();
    }
    shared.tokens.insert(access.clone(), issued.user);
    let mut response =
        Json(json!({"access_token": access, "token_type": "Bearer", "expires_in": 86_400})).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

async fn userinfo(State(provider): State<DevProvider>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = token.and_then(|t| provider.lock().tokens.get(t).cloned());
    match user {
        Some(user) => Json(json!({"sub": user, "name": user, "preferred_username": user})).into_response(),
        None => oauth_error(StatusCode::UNAUTHORIZED, "invalid_token"),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    const CALLBACK: &str = "http://127.0.0.1:8000/auth/callback";

    #[tokio::test]
    async fn it_sends_browsers_back_to_mcpgates_callback_only() {
        let provider = DevProvider::new(CALLBACK);
        let page = |redirect: &str| {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("client_id", CLIENT_ID),
                    ("redirect_uri", redirect),
                    ("state", "s"),
                    ("code_challenge", "c"),
                    ("code_challenge_method", "S256"),
                ])
                .finish();
            Request::get(format!("{PREFIX}/authorize?{query}")).body(Body::empty()).unwrap()
        };
        assert_eq!(provider.router().oneshot(page(CALLBACK)).await.unwrap().status(), 200);
        assert_eq!(provider.router().oneshot(page("https://evil.example/cb")).await.unwrap().status(), 400);

        let post = |redirect: &str| {
            let form = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("user", "pat"),
                    ("redirect_uri", redirect),
                    ("state", "s"),
                    ("code_challenge", "c"),
                ])
                .finish();
            Request::post(format!("{PREFIX}/authorize"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap()
        };
        let back = provider.router().oneshot(post(CALLBACK)).await.unwrap();
        assert_eq!(back.status(), 303);
        assert!(back.headers()["location"].to_str().unwrap().starts_with(CALLBACK));
        let elsewhere = provider.router().oneshot(post("https://evil.example/cb")).await.unwrap();
        assert_eq!(elsewhere.status(), 400, "a posted redirect URI is not followed blindly");
        assert!(elsewhere.headers().get("location").is_none());
    }
}
