//! Machine clients (SEP-1046), in process: the `client_credentials` grant for a configured
//! confidential client — its secret by HTTP Basic or in the form, the scopes it may have, the
//! token it gets (the client as subject, no refresh token, revocable) — and what it may not do.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{Request, Response, StatusCode};
use mcpgate::authz::{
    AuthServer, AuthServerSettings, ConfiguredClient, GrantType, ProviderTokenError, SettingsError,
};
use mcpgate::crypto::{Keyring, RootSecret};
use mcpgate::store::{self, Store};
use mcpgate::verify::TokenVerifier;
use mcpgate::{ClientKind, Principal};
use mcpgate_test_support as common;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

mod private_key_jwt;

pub(crate) const ISSUER: &str = "https://auth.example.com";
pub(crate) const RESOURCE: &str = "https://mcp.example.com/mcp";

pub(crate) fn machine(client_id: &str, secret: Option<&str>, scope: Option<&str>) -> ConfiguredClient {
    ConfiguredClient {
        client_id: client_id.into(),
        client_secret: secret.map(|s| SecretString::from(s.to_owned())),
        keys: None,
        redirect_uris: vec![],
        client_name: Some("nightly CI".into()),
        scope: scope.map(str::to_owned),
        grant_types: vec![GrantType::ClientCredentials],
    }
}

fn person_client() -> ConfiguredClient {
    ConfiguredClient {
        client_id: "desktop".into(),
        client_secret: Some(SecretString::from("desktop-secret")),
        keys: None,
        redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
        client_name: None,
        scope: None,
        grant_types: vec![],
    }
}

pub(crate) async fn server_with(clients: Vec<ConfiguredClient>) -> Result<AuthServer, SettingsError> {
    server_on(store::open("memory://").await.unwrap(), clients)
}

/// A server on `store`: instances sharing one store are one authorization server.
pub(crate) fn server_on(
    store: Arc<dyn Store>,
    clients: Vec<ConfiguredClient>,
) -> Result<AuthServer, SettingsError> {
    configured_server(store, clients, |_| {})
}

/// The same, its settings changed by `configure`.
pub(crate) fn configured_server(
    store: Arc<dyn Store>,
    clients: Vec<ConfiguredClient>,
    configure: impl FnOnce(&mut AuthServerSettings),
) -> Result<AuthServer, SettingsError> {
    let mut settings = AuthServerSettings::new(ISSUER, RESOURCE);
    // As the gateway configures it: the step-up scope a policy requires is also supported.
    settings.scopes_supported = vec!["mcp:read".into(), "mcp:write".into(), "mcp:admin".into()];
    settings.step_up_scopes = vec!["mcp:admin".into()];
    settings.clients = clients;
    configure(&mut settings);
    let keyring = Keyring::new(RootSecret::from_bytes(vec![7; 32]).unwrap(), vec![]);
    AuthServer::new(settings, store, &keyring, common::authz::unreachable_upstream("https://idp.example/a"))
}

async fn server() -> AuthServer {
    server_with(vec![
        machine("ci", Some("ci-secret"), None),
        machine("reader", Some("reader-secret"), Some("mcp:read")),
        person_client(),
    ])
    .await
    .unwrap()
}

pub(crate) async fn post(
    server: &AuthServer,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &str,
) -> Response<Body> {
    let mut request = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        request =
            request.header("authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    }
    server.router().oneshot(request.body(Body::from(form.to_owned())).unwrap()).await.unwrap()
}

pub(crate) async fn json_of(response: Response<Body>) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

pub(crate) async fn verified(
    server: &AuthServer,
    token: &Value,
) -> Result<Principal, mcpgate::verify::VerifyError> {
    server.access_token_verifier().unwrap().verify(token.as_str().unwrap()).await
}

#[tokio::test]
async fn a_machine_client_gets_a_token_naming_itself_by_basic_or_posted_secret() {
    let server = server().await;
    let by_basic = post(&server, "/token", Some(("ci", "ci-secret")), "grant_type=client_credentials").await;
    let posted = "grant_type=client_credentials&client_id=ci&client_secret=ci-secret&resource=https%3A%2F%2Fmcp.example.com%2Fmcp";
    for response in [by_basic, post(&server, "/token", None, posted).await] {
        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none(), "no refresh token: {body}");
        // Every supported scope, but not the step-up ones, unless asked for.
        assert_eq!(body["scope"], "mcp:read mcp:write");
        let principal = verified(&server, &body["access_token"]).await.unwrap();
        assert_eq!(principal.subject(), "ci");
        assert_eq!(principal.client_id(), Some("ci"));
        assert_eq!(principal.client_kind(), ClientKind::Machine);
        assert_eq!(principal.audience(), [RESOURCE.to_owned()]);
        // A machine signed in nowhere: it has no provider token to forward.
        assert_eq!(server.provider_token(&principal).await.unwrap_err(), ProviderTokenError::NoGrant);
    }
}

#[tokio::test]
async fn a_machine_client_has_its_scopes_and_no_more() {
    let server = server().await;
    let ask = |id, secret, scope: &'static str| {
        let server = server.clone();
        async move {
            let form = format!("grant_type=client_credentials&scope={}", scope.replace(' ', "+"));
            json_of(post(&server, "/token", Some((id, secret)), &form).await).await
        }
    };
    let (status, body) = ask("ci", "ci-secret", "mcp:admin").await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (StatusCode::OK, Some("mcp:admin")),
        "a step-up scope when asked"
    );
    let (status, body) = ask("reader", "reader-secret", "mcp:read").await;
    assert_eq!((status, body["scope"].as_str()), (StatusCode::OK, Some("mcp:read")));
    for (id, secret, scope) in
        [("reader", "reader-secret", "mcp:read mcp:write"), ("ci", "ci-secret", "root")]
    {
        let (status, body) = ask(id, secret, scope).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope")),
            "{scope}"
        );
    }
}

/// Basic credentials, the form, and the status and error expected.
type Case<'a> = (Option<(&'a str, &'a str)>, &'a str, StatusCode, &'a str);

#[tokio::test]
async fn wrong_credentials_and_wrong_grants_are_refused_with_their_codes() {
    let server = server().await;
    let cc = "grant_type=client_credentials";
    let cases: [Case<'_>; 6] = [
        (Some(("ci", "wrong")), cc, StatusCode::UNAUTHORIZED, "invalid_client"),
        (Some(("nobody", "ci-secret")), cc, StatusCode::UNAUTHORIZED, "invalid_client"),
        (None, "grant_type=client_credentials&client_id=ci", StatusCode::UNAUTHORIZED, "invalid_client"),
        // A client for people may not use a machine's grant, nor a machine a person's.
        (Some(("desktop", "desktop-secret")), cc, StatusCode::BAD_REQUEST, "unauthorized_client"),
        (
            Some(("ci", "ci-secret")),
            "grant_type=authorization_code&code=x&code_verifier=y",
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            Some(("ci", "ci-secret")),
            "grant_type=client_credentials&resource=https%3A%2F%2Fother.example%2Fmcp",
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
    ];
    for (basic, form, status, code) in cases {
        let (got, body) = json_of(post(&server, "/token", basic, form).await).await;
        assert_eq!((got, body["error"].as_str()), (status, Some(code)), "{basic:?} {form}");
    }
}

#[tokio::test]
async fn a_revoked_machine_token_is_refused() {
    let server = server().await;
    let (_, body) =
        json_of(post(&server, "/token", Some(("ci", "ci-secret")), "grant_type=client_credentials").await)
            .await;
    assert!(verified(&server, &body["access_token"]).await.is_ok());
    let form = format!("token={}", body["access_token"].as_str().unwrap());
    assert_eq!(post(&server, "/revoke", Some(("ci", "ci-secret")), &form).await.status(), StatusCode::OK);
    assert!(verified(&server, &body["access_token"]).await.is_err());
    // Another token of the same client is its own grant, and still works.
    let (_, next) =
        json_of(post(&server, "/token", Some(("ci", "ci-secret")), "grant_type=client_credentials").await)
            .await;
    assert!(verified(&server, &next["access_token"]).await.is_ok());
}

#[tokio::test]
async fn the_grant_is_advertised_only_when_a_machine_client_exists() {
    let metadata = |server: AuthServer| async move {
        let request = Request::get("/.well-known/oauth-authorization-server").body(Body::empty()).unwrap();
        json_of(server.router().oneshot(request).await.unwrap()).await.1
    };
    let with = metadata(server().await).await;
    assert_eq!(
        with["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    let without = metadata(server_with(vec![person_client()]).await.unwrap()).await;
    assert_eq!(without["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
}

#[tokio::test]
async fn machine_clients_are_the_operators_and_confidential() {
    // Without a secret, or asking for refresh tokens it can never use: refused at start.
    for client in [
        machine("ci", None, None),
        ConfiguredClient {
            grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
            ..machine("ci", Some("s"), None)
        },
    ] {
        let error = server_with(vec![client]).await.unwrap_err();
        assert!(matches!(error, SettingsError::BadClient { .. }), "{error}");
    }
    // Registration cannot make one.
    let server = server().await;
    let registration = json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "client_secret_basic",
                              "grant_types": ["authorization_code", "client_credentials"]});
    let request = Request::post("/register").body(Body::from(registration.to_string())).unwrap();
    let (status, body) = json_of(server.router().oneshot(request).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")));
    // And a machine client cannot start a sign-in: it has no redirect URI.
    let authorize = "/authorize?response_type=code&client_id=ci&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghij123&code_challenge_method=S256";
    let response =
        server.router().oneshot(Request::get(authorize).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test]
async fn another_issuer_is_accepted_once_and_never_in_place_of_ours() {
    use mcpgate::verify::FixedVerifier;
    let build = |issuers: &[&str], opaque: usize| {
        let mut proxy = mcpgate::OAuthProxy::builder(ISSUER)
            .upstream(common::authz::unreachable_upstream("https://idp.example/a"))
            .keyring(Keyring::new(RootSecret::from_bytes(vec![7; 32]).unwrap(), vec![]));
        for issuer in issuers {
            proxy = proxy.accept_issuer(*issuer, FixedVerifier::new());
        }
        for _ in 0..opaque {
            proxy = proxy.accept_opaque(FixedVerifier::new());
        }
        async move { proxy.store(store::open("memory://").await.unwrap()).build() }
    };
    assert!(build(&["https://corp.example"], 1).await.is_ok());
    for (issuers, opaque) in
        [(&[ISSUER][..], 0), (&["https://corp.example", "https://corp.example"][..], 0), (&[][..], 2)]
    {
        let refused = build(issuers, opaque).await.unwrap_err();
        assert!(
            matches!(
                refused,
                mcpgate::ProxyBuildError::IssuerTwice(_) | mcpgate::ProxyBuildError::OpaqueTwice
            ),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn with_several_resources_a_token_is_for_the_one_named_and_refused_at_the_others() {
    const SEARCH: &str = "https://mcp.example.com/search/mcp";
    let store = store::open("memory://").await.unwrap();
    let server = configured_server(store, vec![machine("ci", Some("ci-secret"), None)], |s| {
        s.resources.push(SEARCH.into());
    })
    .unwrap();
    let ask = |form: &'static str| post(&server, "/token", Some(("ci", "ci-secret")), form);
    let (status, body) = json_of(ask("grant_type=client_credentials").await).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")), "{body}");
    let (_, body) =
        json_of(ask("grant_type=client_credentials&resource=https%3A%2F%2Fmcp.example.com%2Fother").await)
            .await;
    assert_eq!(body["error"], "invalid_target");

    let (status, body) = json_of(
        ask("grant_type=client_credentials&resource=https%3A%2F%2Fmcp.example.com%2Fsearch%2Fmcp").await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let at_search = server.access_token_verifier_for(SEARCH).unwrap();
    assert_eq!(at_search.verify(token).await.unwrap().audience(), [SEARCH.to_owned()]);
    let at_first = server.access_token_verifier_for(RESOURCE).unwrap();
    assert!(at_first.verify(token).await.is_err(), "a token for search is refused at the first");
    assert!(server.access_token_verifier().unwrap().verify(token).await.is_err(), "the first is the default");

    // Revocation knows every resource's tokens.
    let revoked = post(&server, "/revoke", Some(("ci", "ci-secret")), &format!("token={token}")).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(at_search.verify(token).await.is_err(), "revoked");
}
