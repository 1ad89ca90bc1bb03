//! The Google provider against a fake of Google's accounts service (`base_url` pointed at it):
//! sign-in with `access_type=offline` and `prompt=consent` (Google's refresh token), id_tokens
//! naming the issuer without `https://` accepted, the hosted-domain restriction checked on the
//! id_token's `hd` claim.

use mcpgate_test_support as common;

use common::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, Quirks};
use common::provider_flow::{self, SignIn, claims_of};
use mcpgate::authz::AllowedUsers;
use mcpgate::upstream::providers::Google;
use secrecy::SecretString;
use serde_json::json;

async fn fake_google() -> FakeOidc {
    let fake = FakeOidc::start(Quirks {
        bare_issuer_in_tokens: true,
        refresh_token_when: Some(|query| query.get("access_type").map(String::as_str) == Some("offline")),
        ..Default::default()
    })
    .await;
    fake.add_user(
        "110169484474386276334",
        json!({"email": "ada@example.com", "email_verified": true, "name": "Ada", "hd": "example.com"}),
    );
    fake.add_user("1042", json!({"email": "eve@gmail.com", "email_verified": true, "name": "Eve"}));
    fake
}

fn google(fake: &FakeOidc) -> Google {
    Google { base_url: Some(fake.url.clone()), ..Google::new(CLIENT_ID, SecretString::from(CLIENT_SECRET)) }
}

#[tokio::test]
async fn a_google_user_signs_in_and_mcpgate_gets_a_refresh_token() {
    let fake = fake_google().await;
    let proxy = provider_flow::serve(google(&fake).upstream().await.unwrap(), AllowedUsers::everyone()).await;
    fake.sign_in_as("110169484474386276334");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "110169484474386276334");
    assert_eq!(
        (claims["email"].as_str(), claims["email_verified"].as_bool()),
        (Some("ada@example.com"), Some(true))
    );

    let asked = &fake.authorize_requests()[0];
    assert_eq!(asked["access_type"], "offline", "without it Google gives no refresh token");
    assert_eq!(asked["prompt"], "consent", "without it a returning user gets no refresh token");
    assert_eq!(asked["scope"], "openid email profile");
    assert!(asked.contains_key("nonce") && asked.contains_key("code_challenge"));
    assert!(!asked.contains_key("resource") && !asked.contains_key("hd"));
    assert_eq!(fake.live_refresh_tokens(), 1, "Google issued a refresh token");
}

#[tokio::test]
async fn the_hosted_domain_is_checked_on_the_id_token_not_just_asked_for() {
    let fake = fake_google().await;
    let upstream =
        Google { hosted_domain: Some("example.com".into()), ..google(&fake) }.upstream().await.unwrap();
    let proxy = provider_flow::serve(upstream, AllowedUsers::everyone()).await;
    fake.sign_in_as("110169484474386276334");
    assert!(matches!(provider_flow::sign_in(&proxy).await, SignIn::Tokens(_)));
    assert_eq!(fake.authorize_requests()[0]["hd"], "example.com");

    // The account chooser can be bypassed: a consumer account comes back without `hd`.
    fake.sign_in_as("1042");
    match provider_flow::sign_in(&proxy).await {
        SignIn::ClientError(back) => assert!(back.as_str().contains("error=access_denied"), "{back}"),
        other => panic!("an account outside the domain must be refused: {other:?}"),
    }
}
