//! A fake GitHub on loopback, as GitHub documents itself (OAuth web flow and the REST API's
//! user endpoints), laid out like a GitHub Enterprise Server: web endpoints at the root, the
//! REST API under `/api/v3`. Its quirks are reproduced: token-endpoint errors come as HTTP 200
//! with an `error` member; without `Accept: application/json` the token answer is form-encoded;
//! OAuth-app tokens never expire, GitHub-App user tokens expire (8 h) with a single-use refresh
//! token; `/user/emails` needs `user:email` and `/user/orgs` needs `read:org`.
//!
//! The user who is "signed in at GitHub" is chosen by the test; the authorize endpoint approves
//! at once, as GitHub does for an app the user already authorized.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

pub const CLIENT_ID: &str = "Iv1.fakegithubapp";
pub const CLIENT_SECRET: &str = "fake-github-secret";

/// A GitHub account.
#[derive(Debug, Clone)]
pub struct GitHubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// The public profile email (not vouched for).
    pub public_email: Option<String>,
    /// (address, primary, verified)
    pub emails: Vec<(String, bool, bool)>,
    pub orgs: Vec<String>,
}

impl GitHubUser {
    /// `login` with id `id`, a verified primary email `<login>@example.org`, in `orgs`.
    pub fn new(id: u64, login: &str, orgs: &[&str]) -> Self {
        Self {
            id,
            login: login.into(),
            name: Some(format!("{login} (display)")),
            public_email: None,
            emails: vec![(format!("{login}@example.org"), true, true)],
            orgs: orgs.iter().map(|o| (*o).to_owned()).collect(),
        }
    }
}

/// OAuth app (tokens never expire, no refresh) or GitHub App (8 h tokens, single-use refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    OAuthApp,
    GitHubApp,
}

struct Grant {
    login: String,
    scopes: Vec<String>,
}

struct CodeRecord {
    grant: Grant,
    redirect_uri: String,
    challenge: Option<String>,
}

#[derive(Default)]
struct World {
    users: HashMap<String, GitHubUser>,
    signed_in: Option<String>,
    codes: HashMap<String, CodeRecord>,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    counter: u64,
    /// GitHub-App access-token lifetime, seconds (GitHub: 8 hours).
    lifetime: u64,
    token_requests: Vec<HashMap<String, String>>,
    authorize_requests: Vec<HashMap<String, String>>,
}

impl World {
    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }
}

/// The running fake.
#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    kind: AppKind,
    world: Arc<Mutex<World>>,
}

impl FakeGitHub {
    pub async fn start(kind: AppKind, users: &[GitHubUser]) -> Self {
        let world = World {
            users: users.iter().map(|u| (u.login.clone(), u.clone())).collect(),
            lifetime: 28800,
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let fake = Self { url, kind, world: Arc::new(Mutex::new(world)) };
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/api/v3/user", get(user))
            .route("/api/v3/user/emails", get(emails))
            .route("/api/v3/user/orgs", get(orgs))
            .route("/api/v3/applications/{client_id}/token", delete(delete_token))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The account the browser is signed in to at GitHub.
    pub fn sign_in_as(&self, login: &str) {
        self.world.lock().unwrap().signed_in = Some(login.into());
    }

    /// The user revokes the app at GitHub: every token of theirs stops working.
    pub fn revoke_app_for(&self, login: &str) {
        let mut world = self.world.lock().unwrap();
        world.access.retain(|_, g| g.login != login);
        world.refresh.retain(|_, g| g.login != login);
    }

    /// The user leaves (or is removed from) `org`.
    pub fn leave_org(&self, login: &str, org: &str) {
        let mut world = self.world.lock().unwrap();
        if let Some(user) = world.users.get_mut(login) {
            user.orgs.retain(|o| o != org);
        }
    }

    /// GitHub-App access tokens issued from now on live `seconds` (to see them expire).
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.world.lock().unwrap().lifetime = seconds;
    }

    /// How many access tokens of `login` still work.
    pub fn live_tokens_of(&self, login: &str) -> usize {
        self.world.lock().unwrap().access.values().filter(|g| g.login == login).count()
    }

    /// The forms posted to the token endpoint so far.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.world.lock().unwrap().token_requests.clone()
    }

    /// The query of each authorization request so far.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.world.lock().unwrap().authorize_requests.clone()
    }
}

async fn authorize(State(fake): State<FakeGitHub>, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = fake.world.lock().unwrap();
    world.authorize_requests.push(query.clone());
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "unknown application").into_response();
    }
    let Some(redirect_uri) = query.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri").into_response();
    };
    let Some(login) = world.signed_in.clone() else {
        return (StatusCode::OK, "the GitHub sign-in page").into_response();
    };
    let code = world.fresh("code");
    let scopes =
        query.get("scope").map(|s| s.split([' ', ',']).map(str::to_owned).collect()).unwrap_or_default();
    world.codes.insert(
        code.clone(),
        CodeRecord {
            grant: Grant { login, scopes },
            redirect_uri: redirect_uri.clone(),
            challenge: query.get("code_challenge").cloned(),
        },
    );
    let mut back = url::Url::parse(&redirect_uri).unwrap();
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = query.get("state") {
        back.query_pairs_mut().append_pair("state", state);
    }
    Redirect::to(back.as_str()).into_response()
}

/// GitHub answers 200 even for errors, in JSON only when asked for JSON.
fn token_answer(headers: &HeaderMap, body: Value) -> Response {
    let wants_json =
        headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Json(body).into_response();
    }
    let form: Vec<(String, String)> = body
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    ([("content-type", "application/x-www-form-urlencoded")], encoded).into_response()
}

fn token_error(headers: &HeaderMap, error: &str, description: &str) -> Response {
    token_answer(
        headers,
        json!({"error": error, "error_description": description,
               "error_uri": "https://docs.github.com/apps/troubleshooting"}),
    )
}

async fn access_token(
    State(fake): State<FakeGitHub>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut world = fake.world.lock().unwrap();
    world.token_requests.push(form.clone());
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return token_error(
            &headers,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let grant = if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        if fake.kind != AppKind::GitHubApp {
            return token_error(
                &headers,
                "bad_refresh_token",
                "The refresh token passed is incorrect or expired.",
            );
        }
        // Single use: the token is gone once redeemed.
        match form.get("refresh_token").and_then(|t| world.refresh.remove(t)) {
            Some(grant) => grant,
            None => {
                return token_error(
                    &headers,
                    "bad_refresh_token",
                    "The refresh token passed is incorrect or expired.",
                );
            }
        }
    } else {
        let Some(record) = form.get("code").and_then(|c| world.codes.remove(c)) else {
            return token_error(
                &headers,
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            );
        };
        if form.get("redirect_uri") != Some(&record.redirect_uri) {
            return token_error(
                &headers,
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        if let Some(challenge) = &record.challenge {
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
            if &computed != challenge {
                return token_error(&headers, "bad_verification_code", "The code_verifier does not match.");
            }
        }
        record.grant
    };
    let access = world.fresh("gho");
    let scope = grant.scopes.join(",");
    let mut body = json!({"access_token": access, "token_type": "bearer", "scope": scope});
    if fake.kind == AppKind::GitHubApp {
        let refresh = world.fresh("ghr");
        body["expires_in"] = json!(world.lifetime);
        body["refresh_token"] = json!(refresh);
        body["refresh_token_expires_in"] = json!(15897600);
        world.refresh.insert(refresh, Grant { login: grant.login.clone(), scopes: grant.scopes.clone() });
    }
    world.access.insert(access, grant);
    token_answer(&headers, body)
}

/// `DELETE /applications/{client_id}/token`: the app (Basic auth) deletes one of its tokens;
/// 204, or 404 for a token GitHub does not know.
async fn delete_token(
    State(fake): State<FakeGitHub>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if client_id != CLIENT_ID || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let token = body["access_token"].as_str().unwrap_or_default();
    match fake.world.lock().unwrap().access.remove(token) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The user and scopes behind the request's bearer token.
fn caller(fake: &FakeGitHub, headers: &HeaderMap) -> Option<(GitHubUser, Vec<String>)> {
    let world = fake.world.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("token ")))?;
    let grant = world.access.get(token)?;
    let user = world.users.get(&grant.login).cloned()?;
    Some((user, grant.scopes.clone()))
}

/// GitHub's answer to a token it does not know.
fn bad_credentials() -> Response {
    let body = json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn user(State(fake): State<FakeGitHub>, headers: HeaderMap) -> Response {
    match caller(&fake, &headers) {
        Some((user, _)) => Json(json!({
            "id": user.id, "login": user.login, "name": user.name, "email": user.public_email,
            "type": "User", "site_admin": false,
        }))
        .into_response(),
        None => bad_credentials(),
    }
}

async fn emails(State(fake): State<FakeGitHub>, headers: HeaderMap) -> Response {
    match caller(&fake, &headers) {
        Some((_, scopes)) if !scopes.iter().any(|s| s == "user:email" || s == "user") => {
            (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
        }
        Some((user, _)) => Json(Value::Array(
            user.emails
                .iter()
                .map(|(email, primary, verified)| {
                    json!({"email": email, "primary": primary, "verified": verified, "visibility": null})
                })
                .collect(),
        ))
        .into_response(),
        None => bad_credentials(),
    }
}

/// `GET /user/orgs`, 30 a page by default (`per_page` at most 100), the next page named in
/// `Link` as GitHub does.
async fn orgs(
    State(fake): State<FakeGitHub>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let per_page = query.get("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).min(100);
    let page = query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    match caller(&fake, &headers) {
        Some((_, scopes)) if !scopes.iter().any(|s| s == "read:org" || s == "user") => {
            (StatusCode::FORBIDDEN, Json(json!({"message": "You need at least read:org scope"})))
                .into_response()
        }
        Some((user, _)) => {
            let all: Vec<Value> =
                user.orgs.iter().enumerate().map(|(i, login)| json!({"login": login, "id": i + 1})).collect();
            let start = (page - 1) * per_page;
            let items: Vec<Value> = all.iter().skip(start).take(per_page).cloned().collect();
            let mut response = Json(Value::Array(items)).into_response();
            if start + per_page < all.len() {
                let next = format!(
                    "<{}/api/v3/user/orgs?per_page={per_page}&page={}>; rel=\"next\"",
                    fake.url,
                    page + 1
                );
                response.headers_mut().insert("link", next.parse().unwrap());
            }
            response
        }
        None => bad_credentials(),
    }
}
