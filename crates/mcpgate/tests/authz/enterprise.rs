//! Enterprise-managed authorization (SEP-990), in process: a configured client redeems an
//! enterprise identity provider's identity assertion (ID-JAG) at `/token` with the jwt-bearer
//! grant, and gets the user's access token; every check of the assertion refuses with
//! `invalid_grant`, a replay too (on another instance); the allow-list and the client's grants
//! apply; the metadata advertises the grant.

use std::sync::Arc;

use jsonwebtoken::Header;
use mcpgate::authz::{AllowedUsers, ConfiguredClient, EnterpriseIdp, GrantType};
use mcpgate::store::{self, Store};
use mcpgate::{ClientKind, authz::AuthServer};
use mcpgate_test_support::{JwksServer, TestKey, jwks, now, with};
use serde_json::{Value, json};

use crate::machine::{ISSUER, RESOURCE, configured_server, json_of, machine, post, verified};

const IDP: &str = "https://login.corp.example";
const GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// The client that redeems assertions: `agent`, secret `agent-secret`.
fn agent() -> ConfiguredClient {
    ConfiguredClient {
        grant_types: vec![GrantType::JwtBearer],
        ..machine("agent", Some("agent-secret"), None)
    }
}

struct Idp {
    key: TestKey,
    keys: JwksServer,
}

impl Idp {
    async fn start() -> Self {
        let key = TestKey::rsa("idp-1");
        let keys = JwksServer::start(jwks(&[&key])).await;
        Self { key, keys }
    }

    fn trusted(&self, allowed_clients: &[&str]) -> EnterpriseIdp {
        EnterpriseIdp {
            issuer: IDP.into(),
            jwks_uri: self.keys.url.clone(),
            allowed_clients: allowed_clients.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    /// An ID-JAG with `claims`, typed `typ`.
    fn sign_typed(&self, claims: &Value, typ: &str) -> String {
        let mut header = Header::new(self.key.alg);
        header.kid = Some(self.key.kid.clone());
        header.typ = Some(typ.into());
        jsonwebtoken::encode(&header, claims, &self.key.encoding).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_typed(claims, "oauth-id-jag+jwt")
    }
}

/// Good ID-JAG claims for Ada, redeemed by `agent`, with a fresh `jti`.
fn claims() -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    json!({
        "iss": IDP, "sub": "ada-42", "aud": ISSUER, "client_id": "agent", "resource": RESOURCE,
        "jti": format!("jag-{}", NEXT.fetch_add(1, Ordering::Relaxed)), "iat": now(), "exp": now() + 300,
        "scope": "mcp:read mcp:write", "email": "ada@corp.example", "email_verified": true,
        "client_kind": "machine", "gid": "not-a-grant-of-ours",
    })
}

async fn server(
    idp: &Idp,
    store: Arc<dyn Store>,
    configure: impl FnOnce(&mut mcpgate::authz::AuthServerSettings),
) -> AuthServer {
    let trusted = idp.trusted(&[]);
    configured_server(store, vec![agent(), machine("ci", Some("ci-secret"), None)], |settings| {
        settings.enterprise_idps = vec![trusted];
        configure(settings);
    })
    .unwrap()
}

async fn redeem(
    server: &AuthServer,
    client: (&str, &str),
    assertion: &str,
    extra: &str,
) -> (http::StatusCode, Value) {
    json_of(
        post(server, "/token", Some(client), &format!("grant_type={GRANT}&assertion={assertion}{extra}"))
            .await,
    )
    .await
}

const AGENT: (&str, &str) = ("agent", "agent-secret");

#[tokio::test]
async fn an_identity_assertion_becomes_the_user_s_token_once() {
    let idp = Idp::start().await;
    let store: Arc<dyn Store> = store::open("memory://").await.unwrap();
    let first = server(&idp, store.clone(), |_| {}).await;
    let second = server(&idp, store, |_| {}).await;
    let assertion = idp.sign(&claims());
    let (status, body) = redeem(&first, AGENT, &assertion, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "no refresh token: {body}");
    assert_eq!(body["scope"], "mcp:read mcp:write");
    let principal = verified(&first, &body["access_token"]).await.unwrap();
    assert_eq!((principal.subject(), principal.client_id()), ("ada-42", Some("agent")));
    assert_eq!(principal.email(), Some("ada@corp.example"));
    assert_eq!(principal.claim("idp"), Some(&json!(IDP)));
    // The provider's claims of a machine and of a grant are not ours to take.
    assert_eq!(principal.client_kind(), ClientKind::User);
    assert_ne!(principal.claim("gid"), Some(&json!("not-a-grant-of-ours")));
    // Once, on any instance.
    for server in [&first, &second] {
        let (status, body) = redeem(server, AGENT, &assertion, "").await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(body["error_description"], "identity assertion refused: already used");
    }
    // Revocable like any token of ours.
    let form = format!("token={}", body_token(&first, &idp).await);
    assert_eq!(post(&first, "/revoke", Some(AGENT), &form).await.status(), 200);
}

/// A fresh token of Ada's, redeemed at `server`.
async fn body_token(server: &AuthServer, idp: &Idp) -> String {
    let (_, body) = redeem(server, AGENT, &idp.sign(&claims()), "").await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert!(verified(server, &body["access_token"]).await.is_ok());
    token
}

#[tokio::test]
async fn each_check_of_the_assertion_refuses_with_invalid_grant() {
    let idp = Idp::start().await;
    let server = server(&idp, store::open("memory://").await.unwrap(), |_| {}).await;
    let other_key = TestKey::rsa2("idp-1");
    let cases = [
        (
            idp.sign(&with(claims(), "aud", json!("https://other-as.example"))),
            "invalid token: audience not accepted",
        ),
        (
            idp.sign(&with(claims(), "resource", json!("https://other.example/mcp"))),
            "its resource is not an MCP endpoint of this server",
        ),
        (
            idp.sign(&with(claims(), "resource", Value::Null)),
            "its resource is not an MCP endpoint of this server",
        ),
        (idp.sign(&with(claims(), "client_id", json!("someone-else"))), "it was issued to another client"),
        (idp.sign_typed(&claims(), "JWT"), "invalid token: token type not accepted"),
        (idp.sign(&with(claims(), "exp", json!(now() - 3600))), "invalid token: token expired"),
        (idp.sign(&with(claims(), "exp", json!(now() + 86_400))), "it must expire within an hour"),
        (idp.sign(&with(claims(), "jti", Value::Null)), "a jti is required"),
        (other_key.sign(&claims()), "invalid token: token type not accepted"),
        (
            jsonwebtoken::encode(
                &Header {
                    typ: Some("oauth-id-jag+jwt".into()),
                    kid: Some("idp-1".into()),
                    ..Header::new(other_key.alg)
                },
                &claims(),
                &other_key.encoding,
            )
            .unwrap(),
            "invalid token: bad signature",
        ),
    ];
    for (assertion, reason) in cases {
        let (status, body) = redeem(&server, AGENT, &assertion, "").await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str(), body["error_description"].as_str()),
            (400, Some("invalid_grant"), Some(format!("identity assertion refused: {reason}").as_str())),
        );
    }
    let unknown = idp.sign(&with(claims(), "iss", json!("https://evil.example")));
    let (status, body) = redeem(&server, AGENT, &unknown, "").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    // The token request's own resource must be ours too; scopes stay within the assertion's.
    let (status, body) =
        redeem(&server, AGENT, &idp.sign(&claims()), "&resource=https%3A%2F%2Fother.example%2Fmcp").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_target")));
    let (status, body) = redeem(&server, AGENT, &idp.sign(&claims()), "&scope=mcp%3Aadmin").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = redeem(&server, AGENT, &idp.sign(&claims()), "&scope=mcp%3Aread").await;
    assert_eq!((status.as_u16(), body["scope"].as_str()), (200, Some("mcp:read")));
    // The client must authenticate, and may use the grant only when configured for it.
    let (status, body) = redeem(&server, ("agent", "wrong"), &idp.sign(&claims()), "").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (401, Some("invalid_client")));
    let for_ci = idp.sign(&with(claims(), "client_id", json!("ci")));
    let (status, body) = redeem(&server, ("ci", "ci-secret"), &for_ci, "").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("unauthorized_client")));
    let (status, body) =
        json_of(post(&server, "/token", Some(AGENT), &format!("grant_type={GRANT}")).await).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn the_allow_lists_of_users_and_clients_apply() {
    let idp = Idp::start().await;
    let store = store::open("memory://").await.unwrap();
    let only_example = server(&idp, store.clone(), |settings| {
        settings.allowed_users =
            AllowedUsers { email_domains: vec!["example.com".into()], ..AllowedUsers::default() };
    })
    .await;
    let (status, body) = redeem(&only_example, AGENT, &idp.sign(&claims()), "").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(body["error_description"], "this user is not allowed to use this server");
    let trusted = idp.trusted(&["another-agent"]);
    let other_clients = server(&idp, store, |settings| settings.enterprise_idps = vec![trusted]).await;
    let (status, body) = redeem(&other_clients, AGENT, &idp.sign(&claims()), "").await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn the_grant_is_advertised_and_only_the_operator_makes_its_clients() {
    let idp = Idp::start().await;
    let server = server(&idp, store::open("memory://").await.unwrap(), |_| {}).await;
    let request = http::Request::get("/.well-known/oauth-authorization-server")
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt;
    let (_, metadata) = json_of(server.router().oneshot(request).await.unwrap()).await;
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:jwt-bearer"))
    );
    let registration = json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]});
    let request =
        http::Request::post("/register").body(axum::body::Body::from(registration.to_string())).unwrap();
    let (status, body) = json_of(server.router().oneshot(request).await.unwrap()).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_client_metadata")));
}
