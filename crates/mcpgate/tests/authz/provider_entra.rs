//! The Microsoft Entra ID provider against a fake of Entra's v2.0 endpoints (`authority`
//! pointed at it): multi-tenant sign-in where each id_token's issuer is the template filled
//! with its own tenant, `offline_access` asked once, the client's scopes asked as
//! `api://<client-id>/…` and shown un-prefixed, and never a `resource` parameter (Entra refuses
//! it).

use mcpgate_test_support as common;

use common::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, Quirks};
use common::provider_flow::{self, SignIn, claims_of};
use mcpgate::authz::AllowedUsers;
use mcpgate::upstream::providers::Entra;
use secrecy::SecretString;
use serde_json::json;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn entra_quirks() -> Quirks {
    Quirks {
        issuer: Some("{base}/{tenantid}/v2.0".into()),
        refresh_token_when: Some(|query| {
            query.get("scope").is_some_and(|s| s.split(' ').any(|s| s == "offline_access"))
        }),
        refused_authorize_params: vec!["resource"],
        ..Default::default()
    }
}

async fn fake_entra(quirks: Quirks) -> FakeOidc {
    let fake = FakeOidc::start(quirks).await;
    fake.add_user(
        "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        json!({"tid": TENANT, "oid": "00000000-0000-0000-66f3-3332eca7ea81", "preferred_username": "ada@contoso.com",
               "email": "ada@contoso.com", "name": "Ada Lovelace", "groups": ["c5a8c0f6-6fd1-4d0e-8c5c-0a2f0b4e5a10"]}),
    );
    fake.sign_in_as("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ");
    fake
}

fn entra(fake: &FakeOidc) -> Entra {
    Entra {
        authority: fake.url.clone(),
        api_identifier: Some(format!("api://{CLIENT_ID}")),
        ..Entra::new(CLIENT_ID, SecretString::from(CLIENT_SECRET))
    }
}

#[tokio::test]
async fn a_work_account_from_any_tenant_signs_in_through_the_common_endpoint() {
    let fake = fake_entra(entra_quirks()).await;
    let proxy = provider_flow::serve(entra(&fake).upstream().await.unwrap(), AllowedUsers::everyone()).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ");
    assert_eq!(claims["preferred_username"], "ada@contoso.com");
    assert_eq!(claims["groups"], json!(["c5a8c0f6-6fd1-4d0e-8c5c-0a2f0b4e5a10"]));
    // Clients see their scopes as they asked for them.
    assert_eq!(tokens["scope"], "mcp:read");
    assert_eq!(claims["scope"], "mcp:read");

    let asked = &fake.authorize_requests()[0];
    assert_eq!(
        asked["scope"],
        format!("openid profile email offline_access api://{CLIENT_ID}/mcp:read"),
        "offline_access once, the client's scope prefixed for Entra"
    );
    assert!(!asked.contains_key("resource"), "Entra refuses the resource parameter");
    assert_eq!(fake.live_refresh_tokens(), 1, "offline_access gave a refresh token");
}

#[tokio::test]
async fn an_id_token_whose_issuer_is_another_tenant_than_its_own_is_refused() {
    let fake = fake_entra(Quirks {
        token_issuer: Some("{base}/00000000-0000-0000-0000-000000000bad/v2.0".into()),
        ..entra_quirks()
    })
    .await;
    let proxy = provider_flow::serve(entra(&fake).upstream().await.unwrap(), AllowedUsers::everyone()).await;
    match provider_flow::sign_in(&proxy).await {
        SignIn::ClientError(back) => assert!(back.as_str().contains("error=access_denied"), "{back}"),
        other => panic!("a token naming another tenant must be refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_single_tenant_app_accepts_exactly_its_tenant_s_issuer() {
    let fake = fake_entra(Quirks { issuer: Some(format!("{{base}}/{TENANT}/v2.0")), ..entra_quirks() }).await;
    let upstream = Entra { tenant: TENANT.into(), ..entra(&fake) }.upstream().await.unwrap();
    let proxy = provider_flow::serve(upstream, AllowedUsers::everyone()).await;
    assert!(matches!(provider_flow::sign_in(&proxy).await, SignIn::Tokens(_)));
    // A tenant name that would change the discovery URL's path is refused up front.
    assert!(Entra { tenant: "../common".into(), ..entra(&fake) }.upstream().await.is_err());
}

#[tokio::test]
async fn an_azure_ad_b2c_user_flow_is_found_under_its_policy() {
    let fake =
        fake_entra(Quirks { issuer: Some(format!("{{base}}/{TENANT}/v2.0/")), ..entra_quirks() }).await;
    let b2c = Entra {
        tenant: "contoso.onmicrosoft.com".into(),
        b2c_policy: Some("B2C_1_signupsignin".into()),
        ..entra(&fake)
    };
    let upstream = b2c.upstream().await.unwrap();
    let proxy = provider_flow::serve(upstream, AllowedUsers::everyone()).await;
    assert!(matches!(provider_flow::sign_in(&proxy).await, SignIn::Tokens(_)));
    assert_eq!(
        fake.discovery_paths(),
        ["/contoso.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration"]
    );
}
