//! Downstream tokens ([`AuthServer::downstream_token`]) against the fake OpenID provider's
//! RFC 8693 endpoint: many calls at two instances sharing one store exchange once; a revoked
//! grant gets none; the provider's refusal is told apart from its absence; callers without a
//! sign-in grant have none.

use mcpgate_test_support as common;

use common::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, Quirks};
use common::provider_flow;
use mcpgate::authz::ProviderTokenError;
use mcpgate::upstream::providers::{Keycloak, OidcApp};
use mcpgate::upstream::{ExchangeFlow, TokenExchange, Upstream};
use mcpgate::verify::TokenVerifier;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

fn exchange(audience: &str) -> TokenExchange {
    TokenExchange {
        flow: ExchangeFlow::TokenExchange,
        audience: Some(audience.into()),
        scope: None,
        endpoint: None,
    }
}

async fn upstream(fake: &FakeOidc) -> Upstream {
    let place = Keycloak { base_url: fake.url.clone(), realm: "acme".into() };
    OidcApp::new(place, CLIENT_ID, SecretString::from(CLIENT_SECRET)).upstream().await.unwrap()
}

/// Ada, signed in through a proxy (on `store`) whose exchange asks for `audience`, at a fake
/// that exchanges for `reports-api` only: the fake, the proxy, her tokens and her principal.
struct SignedIn {
    fake: FakeOidc,
    proxy: provider_flow::Proxy,
    server: mcpgate::OAuthProxy,
    tokens: serde_json::Value,
    principal: mcpgate::Principal,
}

async fn signed_in(audience: &str, store: std::sync::Arc<dyn mcpgate::store::Store>) -> SignedIn {
    let quirks = Quirks {
        issuer: Some("{base}/realms/acme".into()),
        exchange_targets: vec!["reports-api"],
        ..Default::default()
    };
    let fake = FakeOidc::start(quirks).await;
    fake.add_user("ada-1", json!({"email": "ada@example.com", "email_verified": true}));
    fake.sign_in_as("ada-1");
    let wanted = exchange(audience);
    let (proxy, server) = provider_flow::serve_configured(upstream(&fake).await, store, move |settings| {
        settings.token_exchange = Some(wanted);
    })
    .await;
    let client_id =
        common::oauth_client::register_public_client(&proxy.base, provider_flow::CLIENT_REDIRECT, "t").await;
    let proxy = provider_flow::Proxy { client_id, ..proxy };
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let principal = server.verifier().verify(tokens["access_token"].as_str().unwrap()).await.unwrap();
    SignedIn { fake, proxy, server, tokens, principal }
}

#[tokio::test]
async fn two_instances_exchange_once_for_many_calls_and_never_for_a_revoked_grant() {
    let store = mcpgate::store::open("memory://").await.unwrap();
    let SignedIn { fake, proxy, server: first, tokens, principal } =
        signed_in("reports-api", store.clone()).await;
    let second = provider_flow::instance(&proxy.base, upstream(&fake).await, store, |settings| {
        settings.token_exchange = Some(exchange("reports-api"));
    });

    let calls = (0..8).map(|i| {
        let server = if i % 2 == 0 { first.auth_server().clone() } else { second.auth_server().clone() };
        let principal = principal.clone();
        tokio::spawn(async move {
            server.downstream_token(&principal).await.map(|t| t.expose_secret().to_owned())
        })
    });
    let got: Vec<String> =
        futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let exchanged = fake.exchanged();
    assert_eq!(exchanged.len(), 1, "one exchange for eight calls at two instances: {exchanged:?}");
    assert!(got.iter().all(|t| *t == exchanged[0].token), "{got:?}");
    assert_eq!((exchanged[0].user.as_str(), exchanged[0].target.as_str()), ("ada-1", "reports-api"));

    // Revoked: no downstream token though one is kept, at once where it was revoked and within
    // a second at the other instance (as for its access tokens).
    let form = [("token", tokens["refresh_token"].as_str().unwrap()), ("client_id", &proxy.client_id)];
    let revoked =
        reqwest::Client::new().post(format!("{}/revoke", proxy.base)).form(&form).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(first.verifier().verify(tokens["access_token"].as_str().unwrap()).await.is_err(), "revoked");
    assert_eq!(
        first.auth_server().downstream_token(&principal).await.unwrap_err(),
        ProviderTokenError::Revoked
    );
    let since = std::time::Instant::now();
    while second.auth_server().downstream_token(&principal).await.is_ok() {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(1),
            "still served a second after revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_refused_exchange_is_the_provider_s_error_and_other_callers_have_none() {
    let SignedIn { proxy, server, principal, .. } =
        signed_in("payroll-api", mcpgate::store::open("memory://").await.unwrap()).await;
    assert_eq!(
        server.auth_server().downstream_token(&principal).await.unwrap_err(),
        ProviderTokenError::Refused("invalid_target".into())
    );
    let someone = mcpgate::Principal::new("alice").with_issuer(proxy.base.clone());
    let machine = someone
        .clone()
        .with_claims(json!({"client_kind": "machine", "gid": "machine.x"}).as_object().unwrap().clone());
    for caller in [someone, machine] {
        assert_eq!(
            server.auth_server().downstream_token(&caller).await.unwrap_err(),
            ProviderTokenError::NoGrant
        );
    }
}
