//! A fake OpenID provider on loopback, shaped per test like the provider it stands for
//! (Google, Microsoft Entra ID, …): its discovery document at any `…/.well-known/openid-
//! configuration` path, RS256 id_tokens from its JWKS, an authorization endpoint that signs in
//! whoever the test says is signed in, a token endpoint for codes (PKCE checked) and refresh
//! tokens, user info. What each provider does differently is a [`Quirks`] value. Every
//! authorization request and token form is kept for the test to inspect.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use sha2::Digest;

pub const CLIENT_ID: &str = "fake-oidc-client";
pub const CLIENT_SECRET: &str = "fake-oidc-secret";

/// A condition on the query of an authorization request.
pub type QueryTest = fn(&HashMap<String, String>) -> bool;

/// How the provider differs from the plain OpenID Connect the fake speaks by default.
#[derive(Clone, Default)]
pub struct Quirks {
    /// The `issuer` of the discovery document (default: the fake's URL); `{base}` is the
    /// fake's URL; may hold `{tenantid}`, filled in each id_token from the user's `tid` claim
    /// (Entra).
    pub issuer: Option<String>,
    /// The issuer id_tokens name instead (`{base}` is the fake's URL): a token from elsewhere.
    pub token_issuer: Option<String>,
    /// id_tokens name the issuer without its scheme (Google, sometimes).
    pub bare_issuer_in_tokens: bool,
    /// A refresh token only when this returns true of the authorization request (Google:
    /// `access_type=offline`; Entra: the `offline_access` scope).
    pub refresh_token_when: Option<QueryTest>,
    /// Refresh answers carry a new refresh token (default: no, the old one stays valid).
    pub rotate_refresh_tokens: bool,
    /// Authorization parameters the provider refuses with an error page (Entra: `resource`).
    pub refused_authorize_params: Vec<&'static str>,
    /// Access-token lifetime in seconds (default an hour), short to see refreshes.
    pub token_lifetime: Option<u64>,
    /// The client secret is accepted in the form body only (WorkOS AuthKit), as the discovery
    /// document then says.
    pub secret_in_body_only: bool,
    /// The downstream APIs a user's access token may be exchanged for (RFC 8693 `audience`, as
    /// Keycloak takes it; or Entra's on-behalf-of `scope`); empty: no exchange.
    pub exchange_targets: Vec<&'static str>,
    /// Lifetime of an exchanged token in seconds (default 300).
    pub exchange_lifetime: Option<u64>,
}

/// A token the fake minted by exchange: for whom, and for which API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged {
    /// The token.
    pub token: String,
    /// The user it speaks for.
    pub user: String,
    /// The API it is for.
    pub target: String,
    /// `token_exchange` (RFC 8693) or `on_behalf_of` (Entra).
    pub flow: &'static str,
}

struct Pending {
    user: String,
    nonce: Option<String>,
    challenge: Option<String>,
    redirect_uri: String,
    offline: bool,
}

#[derive(Default)]
struct World {
    users: HashMap<String, Map<String, Value>>,
    signed_in: Option<String>,
    codes: HashMap<String, Pending>,
    access: HashMap<String, String>,
    refresh: HashMap<String, String>,
    counter: u64,
    authorize_requests: Vec<HashMap<String, String>>,
    token_requests: Vec<HashMap<String, String>>,
    revoked: Vec<String>,
    discovery_paths: Vec<String>,
    exchanged: Vec<Exchanged>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeOidc {
    pub url: String,
    quirks: Arc<Quirks>,
    key: Arc<EncodingKey>,
    world: Arc<Mutex<World>>,
}

impl FakeOidc {
    pub async fn start(quirks: Quirks) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let key = EncodingKey::from_rsa_pem(include_bytes!("../keys/rsa.pem")).unwrap();
        let fake = Self {
            url,
            quirks: Arc::new(quirks),
            key: Arc::new(key),
            world: Arc::new(Mutex::new(World::default())),
        };
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/jwks", get(jwks))
            .route("/revoke", post(revoke))
            .fallback(get(discovery))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// Adds a user whose id_token and user info carry `claims` (with `sub` = `subject`).
    pub fn add_user(&self, subject: &str, claims: Value) {
        let mut claims = claims.as_object().cloned().unwrap_or_default();
        claims.insert("sub".into(), json!(subject));
        self.world.lock().unwrap().users.insert(subject.into(), claims);
    }

    /// The user signed in at the provider's login page.
    pub fn sign_in_as(&self, subject: &str) {
        self.world.lock().unwrap().signed_in = Some(subject.into());
    }

    /// The query of each authorization request so far.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.world.lock().unwrap().authorize_requests.clone()
    }

    /// The tokens revoked at its RFC 7009 endpoint so far.
    pub fn revoked(&self) -> Vec<String> {
        self.world.lock().unwrap().revoked.clone()
    }

    /// The paths its discovery document was fetched at.
    pub fn discovery_paths(&self) -> Vec<String> {
        self.world.lock().unwrap().discovery_paths.clone()
    }

    /// How many refresh tokens the provider holds for its users.
    pub fn live_refresh_tokens(&self) -> usize {
        self.world.lock().unwrap().refresh.len()
    }

    /// The forms posted to the token endpoint so far.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.world.lock().unwrap().token_requests.clone()
    }

    /// The tokens minted by exchange so far, oldest first.
    pub fn exchanged(&self) -> Vec<Exchanged> {
        self.world.lock().unwrap().exchanged.clone()
    }

    fn issuer_template(&self) -> String {
        self.quirks.issuer.as_deref().map_or_else(|| self.url.clone(), |i| i.replace("{base}", &self.url))
    }

    fn id_token(&self, user: &Map<String, Value>, nonce: Option<&str>) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let mut claims = user.clone();
        let tenant = user.get("tid").and_then(Value::as_str).unwrap_or_default();
        let mut issuer = match &self.quirks.token_issuer {
            Some(issuer) => issuer.replace("{base}", &self.url),
            None => self.issuer_template().replace("{tenantid}", tenant),
        };
        if self.quirks.bare_issuer_in_tokens {
            issuer = issuer.trim_start_matches("http://").trim_start_matches("https://").to_owned();
        }
        claims.insert("iss".into(), json!(issuer));
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 3600));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("fake-1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

impl World {
    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}", self.counter)
    }
}

async fn discovery(State(fake): State<FakeOidc>, uri: Uri) -> Response {
    if !uri.path().ends_with("/.well-known/openid-configuration") {
        return StatusCode::NOT_FOUND.into_response();
    }
    fake.world.lock().unwrap().discovery_paths.push(uri.path().to_owned());
    let base = &fake.url;
    Json(json!({
        "issuer": fake.issuer_template(),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "revocation_endpoint": format!("{base}/revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": if fake.quirks.secret_in_body_only {
            json!(["client_secret_post"])
        } else {
            json!(["client_secret_post", "client_secret_basic"])
        },
    }))
    .into_response()
}

async fn jwks(State(fake): State<FakeOidc>) -> Response {
    let mut jwk = Jwk::from_encoding_key(&fake.key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("fake-1".into());
    Json(json!({"keys": [jwk]})).into_response()
}

async fn authorize(State(fake): State<FakeOidc>, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut world = fake.world.lock().unwrap();
    world.authorize_requests.push(query.clone());
    if let Some(param) = fake.quirks.refused_authorize_params.iter().find(|p| query.contains_key(**p)) {
        return (StatusCode::BAD_REQUEST, format!("The '{param}' request parameter is not supported."))
            .into_response();
    }
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let Some(redirect_uri) = query.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri").into_response();
    };
    let Some(user) = world.signed_in.clone() else {
        return (StatusCode::OK, "the provider's sign-in page").into_response();
    };
    let offline = fake.quirks.refresh_token_when.is_none_or(|when| when(&query));
    let code = world.fresh("code");
    let pending = Pending {
        user,
        nonce: query.get("nonce").cloned(),
        challenge: query.get("code_challenge").cloned(),
        redirect_uri: redirect_uri.clone(),
        offline,
    };
    world.codes.insert(code.clone(), pending);
    let mut back = url::Url::parse(&redirect_uri).unwrap();
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = query.get("state") {
        back.query_pairs_mut().append_pair("state", state);
    }
    Redirect::to(back.as_str()).into_response()
}

fn oauth_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

/// The client's credentials, from Basic or the form.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) = headers.get("authorization").and_then(|v| v.to_str().ok()?.strip_prefix("Basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(basic).ok()?;
        let (id, secret) =
            String::from_utf8(decoded).ok()?.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned()))?;
        return Some((id, secret));
    }
    Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))
}

async fn token(
    State(fake): State<FakeOidc>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut world = fake.world.lock().unwrap();
    world.token_requests.push(form.clone());
    if fake.quirks.secret_in_body_only && headers.contains_key("authorization") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    if client_credentials(&headers, &form) != Some((CLIENT_ID.into(), CLIENT_SECRET.into())) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let (user, nonce, offline, rotated) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(pending) = form.get("code").and_then(|c| world.codes.remove(c)) else {
                return oauth_error("invalid_grant");
            };
            if form.get("redirect_uri") != Some(&pending.redirect_uri) {
                return oauth_error("invalid_grant");
            }
            if let Some(challenge) = &pending.challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed =
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
                if &computed != challenge {
                    return oauth_error("invalid_grant");
                }
            }
            (pending.user, pending.nonce, pending.offline, true)
        }
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let Some(user) = world.refresh.get(&presented).cloned() else {
                return oauth_error("invalid_grant");
            };
            if fake.quirks.rotate_refresh_tokens {
                world.refresh.remove(&presented);
            }
            (user, None, true, fake.quirks.rotate_refresh_tokens)
        }
        Some(grant @ (TOKEN_EXCHANGE | JWT_BEARER)) => return exchange(&fake, &mut world, grant, &form),
        _ => return oauth_error("unsupported_grant_type"),
    };
    let Some(claims) = world.users.get(&user).cloned() else { return oauth_error("invalid_grant") };
    let access = world.fresh("at");
    world.access.insert(access.clone(), user.clone());
    let lifetime = fake.quirks.token_lifetime.unwrap_or(3600);
    let mut body = json!({"access_token": access, "token_type": "Bearer", "expires_in": lifetime,
                          "id_token": fake.id_token(&claims, nonce.as_deref())});
    if offline && rotated {
        let refresh = world.fresh("rt");
        world.refresh.insert(refresh.clone(), user);
        body["refresh_token"] = json!(refresh);
    }
    Json(body).into_response()
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A user's access token exchanged for a downstream API's: RFC 8693 as Keycloak answers it
/// (`audience` names the API, `issued_token_type` in the answer), or Entra's on-behalf-of
/// (a jwt-bearer grant with `requested_token_use=on_behalf_of`, the API in `scope`).
fn exchange(fake: &FakeOidc, world: &mut World, grant: &str, form: &HashMap<String, String>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    let (subject, target, flow) = if grant == TOKEN_EXCHANGE {
        if field("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
            return oauth_error("invalid_request");
        }
        (field("subject_token"), field("audience"), "token_exchange")
    } else {
        if field("requested_token_use") != Some("on_behalf_of") {
            return oauth_error("invalid_grant");
        }
        (field("assertion"), field("scope"), "on_behalf_of")
    };
    let Some(user) = subject.and_then(|token| world.access.get(token)).cloned() else {
        return oauth_error("invalid_grant");
    };
    let Some(target) = target.filter(|t| fake.quirks.exchange_targets.contains(t)) else {
        return oauth_error(if flow == "token_exchange" { "invalid_target" } else { "invalid_scope" });
    };
    let token = world.fresh("dt");
    world.exchanged.push(Exchanged { token: token.clone(), user, target: target.to_owned(), flow });
    let lifetime = fake.quirks.exchange_lifetime.unwrap_or(300);
    let mut body = json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime});
    if flow == "token_exchange" {
        body["issued_token_type"] = json!(ACCESS_TOKEN_TYPE);
    } else {
        body["scope"] = json!(target);
        body["ext_expires_in"] = json!(lifetime);
    }
    Json(body).into_response()
}

/// RFC 7009: the token is forgotten; 200 whether it was known or not.
async fn revoke(
    State(fake): State<FakeOidc>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if client_credentials(&headers, &form) != Some((CLIENT_ID.into(), CLIENT_SECRET.into())) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut world = fake.world.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    world.access.remove(&token);
    world.refresh.remove(&token);
    world.revoked.push(token);
    StatusCode::OK.into_response()
}

async fn userinfo(State(fake): State<FakeOidc>, headers: HeaderMap) -> Response {
    let world = fake.world.lock().unwrap();
    let user = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "))
        .and_then(|token| world.access.get(token))
        .and_then(|user| world.users.get(user));
    match user {
        Some(claims) => Json(claims.clone()).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
