//! When the upstream provider misbehaves (C7, D5, E2), in process against a wiremock provider:
//! an error at the callback goes back to the client as an OAuth error; a slow or dead provider
//! is a timeout and `temporarily_unavailable`, never a hang; at our refresh grant, a provider
//! outage is retryable and costs the client nothing, a refusal ends the grant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Request, Response};
use mcpgate::OutboundTimeouts;
use mcpgate::authz::{AuthServer, AuthServerSettings, ConsentMode};
use mcpgate::crypto::{Keyring, RootSecret, pkce};
use mcpgate::store::{self, Store};
use mcpgate::upstream::{IdentitySource, Upstream, UpstreamConfig};
use mcpgate::verify::ClientAuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tower::ServiceExt;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ISSUER: &str = "https://mcp.example.com";
const REDIRECT: &str = "http://127.0.0.1:33418/callback";

struct Rig {
    server: AuthServer,
    provider: MockServer,
    client_id: String,
}

async fn body_json(response: Response<Body>) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn location(response: &Response<Body>) -> url::Url {
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The provider's answer to a code exchange: tokens whose access token lives one second.
fn code_exchange_ok() -> Mock {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "up-access-1", "refresh_token": "up-refresh-1", "token_type": "Bearer",
            "expires_in": 1})))
}

fn refresh_answer(template: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(template)
}

impl Rig {
    async fn start() -> Self {
        let provider = MockServer::start().await;
        let token_endpoint = format!("{}/token", provider.uri());
        Self::start_with(provider, token_endpoint).await
    }

    /// A rig whose provider's token endpoint is `token_endpoint`.
    async fn start_with(provider: MockServer, token_endpoint: String) -> Self {
        Mock::given(method("GET"))
            .and(path("/userinfo"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sub": "user-1"})))
            .mount(&provider)
            .await;
        let upstream = Upstream::new(UpstreamConfig {
            authorization_endpoint: format!("{}/authorize", provider.uri()),
            token_endpoint,
            revocation_endpoint: None,
            client_id: "mcpgate".into(),
            client_secret: SecretString::from("secret"),
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: vec!["read".into()],
            extra_authorize_params: vec![],
            identity: IdentitySource::UserInfo {
                url: format!("{}/userinfo", provider.uri()),
                subject_claim: "sub".into(),
            },
            timeouts: OutboundTimeouts {
                connect: Duration::from_millis(500),
                total: Duration::from_millis(800),
            },
        });
        let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
        let mut settings = AuthServerSettings::new(ISSUER, format!("{ISSUER}/mcp"));
        // No page between /authorize and the provider: these tests are about what comes after.
        settings.consent = ConsentMode::Off;
        let keyring = Keyring::new(RootSecret::from_bytes(vec![9; 32]).unwrap(), vec![]);
        let server = AuthServer::new(settings, store, &keyring, upstream).unwrap();
        let registration = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                                  "grant_types": ["authorization_code", "refresh_token"]});
        let response = server
            .router()
            .oneshot(Request::post("/register").body(Body::from(registration.to_string())).unwrap())
            .await
            .unwrap();
        let client_id = body_json(response).await["client_id"].as_str().unwrap().to_owned();
        Self { server, provider, client_id }
    }

    async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.server.router().oneshot(request).await.unwrap()
    }

    /// `/authorize` → straight to the provider; then the provider's redirect back to our
    /// callback with `callback_query`, from the same browser. Returns the callback's answer and
    /// the client's PKCE verifier.
    async fn sign_in(&self, callback_query: &str) -> (Response<Body>, String) {
        let (verifier, challenge) = pkce::new_pair();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", REDIRECT),
                ("state", "s1"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let to_provider =
            self.send(Request::get(format!("/authorize?{query}")).body(Body::empty()).unwrap()).await;
        assert_eq!(to_provider.status(), 303);
        let state = param(&location(&to_provider), "state").unwrap();
        let cookie =
            to_provider.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let callback = Request::get(format!("/auth/callback?{callback_query}&state={state}"))
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap();
        (self.send(callback).await, verifier.expose_secret().to_owned())
    }

    /// A whole sign-in and code redemption: the client's tokens.
    async fn tokens(&self) -> Value {
        let (back, verifier) = self.sign_in("code=upstream-code").await;
        let code = param(&location(&back), "code").expect("a code for the client");
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", REDIRECT),
        ])
        .await
        .1
    }

    async fn token(&self, form: &[(&str, &str)]) -> (Response<()>, Value) {
        let mut form = form.to_vec();
        form.push(("client_id", &self.client_id));
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = self
            .send(
                Request::post("/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        let (parts, body) = response.into_parts();
        (Response::from_parts(parts, ()), body_json(Response::new(body)).await)
    }

    async fn refresh(&self, refresh_token: &str) -> (Response<()>, Value) {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }
}

/// The client's view of a failed callback: redirected to it with `error`, `state` and `iss`.
fn client_error(response: &Response<Body>) -> String {
    assert_eq!(response.status(), 303);
    let target = location(response);
    assert!(target.as_str().starts_with(REDIRECT), "{target}");
    assert_eq!(param(&target, "state").as_deref(), Some("s1"));
    assert_eq!(param(&target, "iss").as_deref(), Some(ISSUER));
    assert_eq!(param(&target, "code"), None);
    param(&target, "error").unwrap()
}

#[tokio::test]
async fn an_error_from_the_provider_at_the_callback_goes_to_the_client() {
    let rig = Rig::start().await;
    // The user refused at the provider.
    let (back, _) = rig.sign_in("error=access_denied&error_description=no").await;
    assert_eq!(client_error(&back), "access_denied");
    // The provider refuses its own code.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&rig.provider)
        .await;
    let (back, _) = rig.sign_in("code=stale").await;
    assert_eq!(client_error(&back), "access_denied");
}

#[tokio::test]
async fn a_failing_slow_or_dead_provider_at_the_callback_is_temporarily_unavailable_not_a_hang() {
    let rig = Rig::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&rig.provider)
        .await;
    let (back, _) = rig.sign_in("code=c").await;
    assert_eq!(client_error(&back), "temporarily_unavailable");

    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&rig.provider)
        .await;
    let started = Instant::now();
    let (back, _) = rig.sign_in("code=c").await;
    assert_eq!(client_error(&back), "temporarily_unavailable");
    assert!(started.elapsed() < Duration::from_secs(5), "bounded by the timeout: {:?}", started.elapsed());

    // The provider's token endpoint gone altogether (nothing listens on port 1).
    let dead = Rig::start_with(MockServer::start().await, "http://127.0.0.1:1/token".into()).await;
    let started = Instant::now();
    let (back, _) = dead.sign_in("code=c").await;
    assert_eq!(client_error(&back), "temporarily_unavailable");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn at_our_refresh_a_provider_outage_is_retryable_and_a_refusal_ends_the_grant() {
    let rig = Rig::start().await;
    code_exchange_ok().mount(&rig.provider).await;
    let tokens = rig.tokens().await;
    let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    // The provider's access token (one second) is now expired: our refresh renews it first.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    refresh_answer(ResponseTemplate::new(503)).up_to_n_times(1).mount(&rig.provider).await;
    let (response, body) = rig.refresh(&r1).await;
    assert_eq!((response.status().as_u16(), body["error"].as_str()), (503, Some("temporarily_unavailable")));
    assert!(response.headers().contains_key("retry-after"));

    // The outage cost nothing: the same refresh token works once the provider is back.
    refresh_answer(ResponseTemplate::new(200).set_body_json(json!({
        "access_token": "up-access-2", "refresh_token": "up-refresh-2", "token_type": "Bearer", "expires_in": 1})))
    .up_to_n_times(1)
    .mount(&rig.provider)
    .await;
    let (response, body) = rig.refresh(&r1).await;
    assert_eq!(response.status(), 200, "{body}");
    let r2 = body["refresh_token"].as_str().unwrap().to_owned();
    let sent: Vec<String> = rig
        .provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|b| b.contains("grant_type=refresh_token"))
        .collect();
    assert!(sent.iter().all(|b| b.contains("refresh_token=up-refresh-1")), "{sent:?}");

    // Expired again, and now the provider refuses for good: our grant ends with it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    refresh_answer(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&rig.provider)
        .await;
    let (response, body) = rig.refresh(&r2).await;
    assert_eq!((response.status().as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    let verifier = rig.server.access_token_verifier().unwrap();
    use mcpgate::verify::TokenVerifier;
    assert!(verifier.verify(tokens["access_token"].as_str().unwrap()).await.is_err(), "the grant is revoked");
}
