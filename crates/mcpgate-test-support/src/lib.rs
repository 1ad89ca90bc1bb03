//! Fixtures for mcpgate's own tests, shared by both crates' integration tests: signing keys,
//! token minting, a JWKS server on loopback whose answers and fetch count the tests control,
//! the protected demo server, and in the modules a real OpenID provider ([`idp`]), fake
//! providers, an OAuth client, child processes and redis-server.
// Fixtures, not an API: their types are never printed and their items need no prose each.
#![allow(missing_debug_implementations, missing_docs)]

pub mod authz;
pub mod fake_github;
pub mod fake_oidc;
pub mod idp;
pub mod oauth_client;
pub mod process;
pub mod provider_flow;
pub mod redis_cluster;
pub mod redis_server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate::mcp::DemoServer;
use mcpgate::resource::ProtectedResource;
use mcpgate::verify::TokenVerifier;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.test";

/// The public halves of the test signing keys, PEM.
pub mod public_pem {
    pub const RSA: &[u8] = include_bytes!("../keys/rsa.pub.pem");
    pub const EC256: &[u8] = include_bytes!("../keys/ec256.pub.pem");
    pub const ED25519: &[u8] = include_bytes!("../keys/ed25519.pub.pem");
}

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
}

impl TestKey {
    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        Self { kid: kid.into(), alg, encoding }
    }
    pub fn rsa(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(include_bytes!("../keys/rsa.pem")).unwrap(),
        )
    }
    pub fn rsa2(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(include_bytes!("../keys/rsa2.pem")).unwrap(),
        )
    }
    pub fn ec256(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(include_bytes!("../keys/ec256.pem")).unwrap(),
        )
    }
    pub fn ec384(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES384,
            EncodingKey::from_ec_pem(include_bytes!("../keys/ec384.pem")).unwrap(),
        )
    }
    pub fn ed25519(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(include_bytes!("../keys/ed25519.pem")).unwrap(),
        )
    }
    pub fn with_alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_value(jwk).unwrap()
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Good claims for `audience`, valid for five minutes.
pub fn claims_for(audience: &str) -> Value {
    json!({
        "iss": ISSUER, "sub": "alice", "aud": audience, "client_id": "client-1",
        "scope": "mcp:read mcp:write", "iat": now(), "exp": now() + 300,
    })
}

/// Claims with one member replaced (or removed with `Value::Null`).
pub fn with(mut claims: Value, field: &str, value: Value) -> Value {
    let map = claims.as_object_mut().unwrap();
    if value.is_null() {
        map.remove(field);
    } else {
        map.insert(field.into(), value);
    }
    claims
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

struct JwksState {
    document: RwLock<Value>,
    cache_control: RwLock<Option<String>>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

/// A JWKS endpoint on 127.0.0.1 that counts fetches and can be switched to failing.
#[derive(Clone)]
pub struct JwksServer {
    pub url: String,
    state: Arc<JwksState>,
}

async fn serve_jwks(State(state): State<Arc<JwksState>>) -> axum::response::Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let doc = state.document.read().unwrap().clone();
    let mut response = axum::Json(doc).into_response();
    if let Some(cc) = state.cache_control.read().unwrap().clone() {
        response.headers_mut().insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
    }
    response
}

impl JwksServer {
    pub async fn start(document: Value) -> Self {
        let state = Arc::new(JwksState {
            document: RwLock::new(document),
            cache_control: RwLock::new(None),
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let app = Router::new().route("/jwks.json", get(serve_jwks)).with_state(state.clone());
        let addr = serve(app).await;
        Self { url: format!("http://{addr}/jwks.json"), state }
    }
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
    pub fn set_document(&self, document: Value) {
        *self.state.document.write().unwrap() = document;
    }
    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.write().unwrap() = Some(value.into());
    }
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

/// Serves `app` on a free loopback port until the test's runtime ends.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The demo MCP server (`whoami`, `echo`) at `/mcp`, protected by `verifier`; answers the
/// resource URL (`http://127.0.0.1:<port>/mcp`). The resource is known before the port, so
/// the caller gives a function from resource URL to verifier.
pub async fn spawn_protected_demo(
    required_scopes: &[&str],
    verifier_for: impl FnOnce(&str) -> Arc<dyn TokenVerifier>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource_url = format!("http://{addr}/mcp");
    let mut resource = ProtectedResource::new(&resource_url).unwrap().authorization_server(ISSUER);
    for scope in required_scopes {
        resource = resource.required_scope(*scope);
    }
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = resource.protect(verifier_for(&resource_url), mcp);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    resource_url
}
