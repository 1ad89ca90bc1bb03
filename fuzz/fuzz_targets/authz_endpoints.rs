//! The authorization server's endpoints strangers reach, through its real router: `/token` and
//! `/revoke` forms (client assertions of a client with keys included), `/register` JSON (the validation client metadata documents go through too)
//! and `/authorize` queries. Whatever arrives: no panic, no 5xx; every refusal of an API
//! endpoint is OAuth-shaped JSON with `Cache-Control: no-store`; a registration that succeeds
//! holds only redirect URIs that validate again and a name with nothing disguising it; an
//! `/authorize` that redirects never redirects to a URI that was not registered.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use mcpgate::authz::{AuthServer, AuthServerSettings, RateLimits};
use mcpgate::crypto::{Keyring, RootSecret};
use mcpgate::redirect::{ApplicationType, RedirectUri};
use mcpgate::upstream::{IdentitySource, Upstream, UpstreamConfig};
use tower::ServiceExt;

/// The client registered once, whose id and redirect URI the inputs may use.
const REDIRECT: &str = "http://127.0.0.1:9/cb";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    client_id: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (router, client_id) = runtime.block_on(async {
            let store: Arc<dyn mcpgate::store::Store> = mcpgate::store::open("memory://").await.unwrap();
            let mut settings =
                AuthServerSettings::new("https://auth.example.com", "https://mcp.example.com/mcp");
            settings.scopes_supported = vec!["mcp:read".into()];
            settings.rate_limits = RateLimits::off();
            // A machine client with keys, so that client assertions reach their checks.
            settings.clients = vec![mcpgate::authz::ConfiguredClient {
                client_id: "keyed".into(),
                client_secret: None,
                keys: Some(mcpgate::authz::ClientKeys::Jwks(serde_json::json!({"keys": [
                    {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}))),
                redirect_uris: vec![],
                client_name: None,
                scope: None,
                grant_types: vec![mcpgate::authz::GrantType::ClientCredentials],
            }];
            let keyring = Keyring::new(RootSecret::from_bytes(vec![5; 32]).unwrap(), vec![]);
            let upstream = Upstream::new(UpstreamConfig {
                authorization_endpoint: "https://idp.example/authorize".into(),
                token_endpoint: "https://idp.example/token".into(),
                revocation_endpoint: None,
                client_id: "mcpgate".into(),
                client_secret: secrecy::SecretString::from("s"),
                client_auth: mcpgate::verify::ClientAuthMethod::ClientSecretBasic,
                scopes: vec!["openid".into()],
                extra_authorize_params: vec![],
                identity: IdentitySource::UserInfo {
                    url: "https://idp.example/userinfo".into(),
                    subject_claim: "sub".into(),
                },
                timeouts: Default::default(),
            });
            let router = AuthServer::new(settings, store, &keyring, upstream).unwrap().router();
            let body = serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                                          "grant_types": ["authorization_code", "refresh_token"]});
            let response =
                router.clone().oneshot(json_post("/register", body.to_string().into_bytes())).await.unwrap();
            let registered: serde_json::Value = serde_json::from_slice(&body_bytes(response).await).unwrap();
            (router, registered["client_id"].as_str().unwrap().to_owned())
        });
        Fixture { runtime, router, client_id }
    })
}

fn json_post(path: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body)).unwrap()
}

async fn body_bytes(response: http::Response<Body>) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let fixture = fixture();
    // Let inputs name the real client: `@C` stands for its id.
    let text = String::from_utf8_lossy(rest).replace("@C", &fixture.client_id);
    let (path, request) = match selector % 4 {
        0 => (
            "/token",
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(text.clone()))
                .unwrap(),
        ),
        1 => (
            "/revoke",
            Request::post("/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(text.clone()))
                .unwrap(),
        ),
        2 => ("/register", json_post("/register", text.clone().into_bytes())),
        _ => {
            let Ok(request) = Request::get(format!("/authorize?{text}")).body(Body::empty()) else { return };
            ("/authorize", request)
        }
    };
    fixture.runtime.block_on(async {
        let response = fixture.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = body_bytes(response).await;
        assert!(!status.is_server_error(), "{path} answered {status} to {text:?}");
        if path == "/authorize" {
            if status.is_redirection() {
                let location = headers["location"].to_str().unwrap();
                let upstream = location.starts_with("https://idp.example/authorize");
                // To the client: the registered URI, whose loopback port may differ (RFC 8252 §7.3).
                let target = location.split(['?', '#']).next().unwrap_or_default();
                let registered = RedirectUri::parse(REDIRECT, ApplicationType::Native).unwrap();
                assert!(
                    upstream || registered.matches(target),
                    "{path} redirected to {location} for {text:?}"
                );
            }
            return;
        }
        assert_eq!(headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{path}");
        // RFC 7009: a revocation's success has no body to speak of.
        if path == "/revoke" && status == StatusCode::OK {
            return;
        }
        let json: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{path}: not JSON"));
        if status.is_client_error() {
            assert!(json["error"].is_string(), "{path}: {json}");
        }
        if path == "/register" && status == StatusCode::CREATED {
            for uri in json["redirect_uris"].as_array().unwrap() {
                let uri = uri.as_str().unwrap();
                let app = if json["application_type"] == "web" {
                    ApplicationType::Web
                } else {
                    ApplicationType::Native
                };
                assert!(RedirectUri::parse(uri, app).is_ok(), "registered {uri:?} does not validate");
            }
            if let Some(name) = json["client_name"].as_str() {
                assert_eq!(mcpgate::fuzzing::display_text_refusal(name), None, "registered name {name:?}");
            }
        }
    });
});
