//! Auth0, Keycloak, Okta, GitLab, AWS Cognito and WorkOS AuthKit against the fake OpenID provider laid out as
//! each is (its discovery document where that provider keeps it, its issuer): a user signs in
//! through mcpgate, and each provider's particular request (Auth0's `audience`, refresh scopes)
//! is what reaches it.

use mcpgate_test_support as common;

use common::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, Quirks};
use common::provider_flow::{self, claims_of};
use mcpgate::authz::AllowedUsers;
use mcpgate::upstream::providers::{Auth0, Cognito, GitLab, Keycloak, OidcApp, OidcPlace, Okta, WorkOs};
use secrecy::SecretString;
use serde_json::json;

/// A fake whose issuer is `{base}{path}`, with one signed-in user.
async fn fake_at(path: &str) -> FakeOidc {
    let fake =
        FakeOidc::start(Quirks { issuer: Some(format!("{{base}}{path}")), ..Default::default() }).await;
    fake.add_user(
        "user-1",
        json!({"email": "ada@example.com", "email_verified": "true", "name": "Ada",
                                   "preferred_username": "ada", "groups": ["staff"]}),
    );
    fake.sign_in_as("user-1");
    fake
}

/// Signs in through mcpgate in front of `place`; the claims of our token and the provider's
/// authorization request.
async fn sign_in_at<P: OidcPlace>(
    place: P,
    fake: &FakeOidc,
) -> (serde_json::Value, std::collections::HashMap<String, String>) {
    let upstream =
        OidcApp::new(place, CLIENT_ID, SecretString::from(CLIENT_SECRET)).upstream().await.unwrap();
    let proxy = provider_flow::serve(upstream, AllowedUsers::everyone()).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    (claims_of(tokens["access_token"].as_str().unwrap()), fake.authorize_requests().remove(0))
}

#[tokio::test]
async fn auth0_asks_for_the_api_audience_and_offline_access() {
    let fake = fake_at("/").await;
    let place = Auth0 { domain: fake.url.clone(), audience: Some("https://api.example.com".into()) };
    let (claims, asked) = sign_in_at(place, &fake).await;
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(asked["audience"], "https://api.example.com");
    assert_eq!(asked["scope"], "openid profile email offline_access");
}

#[tokio::test]
async fn keycloak_is_found_by_realm() {
    let fake = fake_at("/realms/acme").await;
    let (claims, asked) =
        sign_in_at(Keycloak { base_url: fake.url.clone(), realm: "acme".into() }, &fake).await;
    assert_eq!(
        (claims["preferred_username"].as_str(), asked["scope"].as_str()),
        (Some("ada"), "openid profile email")
    );
    assert_eq!(claims["groups"], json!(["staff"]));
    assert!(Keycloak { base_url: fake.url.clone(), realm: "../x".into() }.discovery_url().is_err());
}

#[tokio::test]
async fn okta_uses_a_custom_authorization_server() {
    let fake = fake_at("/oauth2/default").await;
    let place = Okta { domain: fake.url.clone(), authorization_server: Some("default".into()) };
    let (claims, asked) = sign_in_at(place, &fake).await;
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(asked["scope"], "openid profile email offline_access");
}

#[tokio::test]
async fn gitlab_self_managed_and_its_groups() {
    let fake = fake_at("/gitlab").await;
    let (claims, _) = sign_in_at(GitLab { base_url: format!("{}/gitlab", fake.url) }, &fake).await;
    assert_eq!(claims["groups"], json!(["staff"]));
}

#[tokio::test]
async fn cognito_s_string_email_verified_counts() {
    let fake = fake_at("/us-east-1_AbCdEf").await;
    let (claims, _) = sign_in_at(Cognito { issuer: format!("{}/us-east-1_AbCdEf", fake.url) }, &fake).await;
    assert_eq!(claims["email_verified"], true, "Cognito sends \"true\"");
    assert_eq!(
        Cognito::pool("eu-west-1", "eu-west-1_AbCdEf").unwrap().discovery_url().unwrap(),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf/.well-known/openid-configuration"
    );
    assert!(Cognito::pool("eu-west-1/..", "x").is_err());
}

#[tokio::test]
async fn workos_authkit_gets_the_client_secret_in_the_body() {
    let fake = FakeOidc::start(Quirks { secret_in_body_only: true, ..Default::default() }).await;
    fake.add_user(
        "user_01JQ0E27VT3MH79RY0FVA4QBP9",
        json!({"email": "ada@example.com", "email_verified": true}),
    );
    fake.sign_in_as("user_01JQ0E27VT3MH79RY0FVA4QBP9");
    let (claims, asked) = sign_in_at(WorkOs { authkit_domain: fake.url.clone() }, &fake).await;
    assert_eq!(claims["sub"], "user_01JQ0E27VT3MH79RY0FVA4QBP9");
    assert_eq!(asked["scope"], "openid profile email offline_access");
    assert_eq!(fake.token_requests()[0]["client_secret"], CLIENT_SECRET);
}

#[tokio::test]
async fn an_outsider_s_provider_tokens_are_revoked_at_the_provider() {
    let fake = fake_at("/realms/acme").await;
    let upstream = OidcApp::new(
        Keycloak { base_url: fake.url.clone(), realm: "acme".into() },
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
    )
    .upstream()
    .await
    .unwrap();
    let only_bob = AllowedUsers { emails: vec!["bob@example.com".into()], ..Default::default() };
    let proxy = provider_flow::serve(upstream, only_bob).await;
    assert!(matches!(provider_flow::sign_in(&proxy).await, provider_flow::SignIn::Page(403, _)));
    // Off the page's path: wait for it.
    for _ in 0..50 {
        if fake.revoked().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let revoked = fake.revoked();
    assert_eq!(revoked.len(), 2, "the access and the refresh token: {revoked:?}");
    assert_eq!(fake.live_refresh_tokens(), 0);
}

#[tokio::test]
async fn narrowing_the_allow_list_ends_existing_grants_at_their_next_refresh() {
    let fake = fake_at("/realms/acme").await;
    let keycloak = || async {
        let place = Keycloak { base_url: fake.url.clone(), realm: "acme".into() };
        OidcApp::new(place, CLIENT_ID, SecretString::from(CLIENT_SECRET)).upstream().await.unwrap()
    };
    let store = mcpgate::store::open("memory://").await.unwrap();
    let before = provider_flow::serve_on(keycloak().await, AllowedUsers::everyone(), store.clone()).await;
    let client_id =
        common::oauth_client::register_public_client(&before.base, provider_flow::CLIENT_REDIRECT, "c").await;
    let before = provider_flow::Proxy { client_id: client_id.clone(), ..before };
    let tokens = provider_flow::sign_in(&before).await.tokens();

    // The operator restarts with an allow-list that leaves Ada out.
    let only_bob = AllowedUsers { emails: vec!["bob@example.com".into()], ..Default::default() };
    let after = provider_flow::serve_on(keycloak().await, only_bob, store).await;
    let after = provider_flow::Proxy { client_id, ..after };
    let (status, refused) = provider_flow::refresh(&after, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")), "{refused}");
}
