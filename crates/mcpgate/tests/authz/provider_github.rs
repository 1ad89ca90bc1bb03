//! The GitHub provider against a fake GitHub (Enterprise Server layout, `base_url` pointed at
//! it): sign-in with identity from the REST API (verified primary email, organisations), the
//! token endpoint's 200-with-error, GitHub-App tokens refreshed with single-use refresh tokens,
//! identity checked again at refresh, and the allow-list refusing an outsider.

use mcpgate_test_support as common;

use common::fake_github::{AppKind, CLIENT_ID, CLIENT_SECRET, FakeGitHub, GitHubUser};
use common::provider_flow::{self, SignIn, claims_of, refresh};
use mcpgate::authz::AllowedUsers;
use mcpgate::upstream::providers::GitHub;
use secrecy::SecretString;

fn github(fake: &FakeGitHub) -> GitHub {
    GitHub { base_url: Some(fake.url.clone()), ..GitHub::new(CLIENT_ID, SecretString::from(CLIENT_SECRET)) }
}

fn with_organisations(github: GitHub) -> GitHub {
    GitHub { organisations: true, ..github }
}

fn acme_only() -> AllowedUsers {
    AllowedUsers { groups: vec!["acme".into()], ..Default::default() }
}

#[tokio::test]
async fn an_oauth_app_user_signs_in_with_identity_from_the_rest_api() {
    let mut ada = GitHubUser::new(583231, "ada", &["acme"]);
    ada.public_email = Some("ada-public@example.net".into());
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[ada]).await;
    let proxy =
        provider_flow::serve(with_organisations(github(&fake)).upstream().unwrap(), acme_only()).await;
    fake.sign_in_as("ada");

    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "583231", "the numeric id, not the login (logins can change)");
    assert_eq!(claims["preferred_username"], "ada");
    assert_eq!(claims["name"], "ada (display)");
    // The verified primary address from /user/emails, not the public profile email.
    assert_eq!(claims["email"], "ada@example.org");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["groups"], serde_json::json!(["acme"]));

    // What was asked of GitHub: its scopes (read:org for the organisations), our PKCE, the
    // secret in the form, JSON asked for.
    let asked = &fake.authorize_requests()[0];
    assert_eq!(asked["scope"], "read:user user:email read:org");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert!(!asked.contains_key("resource"));
    let exchanged = &fake.token_requests()[0];
    assert_eq!(exchanged["client_secret"], CLIENT_SECRET);
    assert!(exchanged.contains_key("code_verifier"));

    // An OAuth app's token does not expire: our refresh works without GitHub refreshing, and
    // identity is checked again through the API.
    let (status, refreshed) = refresh(&proxy, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(fake.token_requests().len(), 1, "no refresh at GitHub for an OAuth app");
    assert_eq!(claims_of(refreshed["access_token"].as_str().unwrap())["preferred_username"], "ada");
}

#[tokio::test]
async fn github_s_200_with_error_at_the_token_endpoint_fails_the_sign_in() {
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[GitHubUser::new(1, "ada", &[])]).await;
    // A wrong secret: GitHub answers 200 {"error": "incorrect_client_credentials"}.
    let upstream = GitHub { client_secret: SecretString::from("wrong"), ..github(&fake) }.upstream().unwrap();
    let proxy = provider_flow::serve(upstream, AllowedUsers::everyone()).await;
    fake.sign_in_as("ada");
    match provider_flow::sign_in(&proxy).await {
        SignIn::ClientError(back) => {
            let error: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
            assert_eq!(error["error"], "access_denied", "{back}");
            assert_eq!(error["state"], "xyz");
        }
        other => panic!("the sign-in must fail back at the client: {other:?}"),
    }
}

#[tokio::test]
async fn a_github_app_s_expiring_tokens_are_refreshed_with_single_use_refresh_tokens() {
    let fake = FakeGitHub::start(AppKind::GitHubApp, &[GitHubUser::new(7, "grace", &[])]).await;
    let proxy = provider_flow::serve(github(&fake).upstream().unwrap(), AllowedUsers::everyone()).await;
    fake.sign_in_as("grace");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["sub"], "7");
    // Our refresh does not refresh at GitHub while its 8-hour token is fresh.
    let (status, refreshed) = refresh(&proxy, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(fake.token_requests().len(), 1);

    // Short-lived tokens from now on: each of our refreshes finds GitHub's token due and
    // redeems GitHub's current refresh token, once (the fake refuses a second use, which would
    // end the grant).
    fake.set_token_lifetime(2);
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let mut ours = tokens["refresh_token"].as_str().unwrap().to_owned();
    for round in 1..=2 {
        // Whole seconds: past 2 s the token is due whatever the second boundaries.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let (status, refreshed) = refresh(&proxy, &ours).await;
        assert_eq!(status, 200, "round {round}: {refreshed}");
        ours = refreshed["refresh_token"].as_str().unwrap().to_owned();
    }
    let upstream_refreshes: Vec<_> = fake
        .token_requests()
        .into_iter()
        .filter(|form| form.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .map(|form| form["refresh_token"].clone())
        .collect();
    assert_eq!(upstream_refreshes.len(), 2, "{upstream_refreshes:?}");
    assert_ne!(upstream_refreshes[0], upstream_refreshes[1], "each GitHub refresh token used once");
}

#[tokio::test]
async fn the_allow_list_refuses_an_outsider_with_a_clear_page() {
    let fake = FakeGitHub::start(
        AppKind::OAuthApp,
        &[GitHubUser::new(1, "ada", &["acme"]), GitHubUser::new(2, "mallory", &["elsewhere"])],
    )
    .await;
    let proxy =
        provider_flow::serve(with_organisations(github(&fake)).upstream().unwrap(), acme_only()).await;
    fake.sign_in_as("mallory");
    match provider_flow::sign_in(&proxy).await {
        SignIn::Page(status, page) => {
            assert_eq!(status, 403);
            assert!(page.contains("mallory"), "{page}");
            assert!(page.contains("not allowed"), "{page}");
        }
        other => panic!("an outsider must be stopped: {other:?}"),
    }
    // Their GitHub token is deleted at GitHub (off the page's path: wait for it).
    for _ in 0..50 {
        if fake.live_tokens_of("mallory") == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(fake.live_tokens_of("mallory"), 0);
    // A verified email domain admits someone outside the organisation.
    let by_domain = AllowedUsers { email_domains: vec!["example.org".into()], ..Default::default() };
    let proxy = provider_flow::serve(with_organisations(github(&fake)).upstream().unwrap(), by_domain).await;
    assert!(matches!(provider_flow::sign_in(&proxy).await, SignIn::Tokens(_)));
}

#[tokio::test]
async fn identity_is_checked_again_at_refresh() {
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[GitHubUser::new(1, "ada", &["acme"])]).await;
    let proxy =
        provider_flow::serve(with_organisations(github(&fake)).upstream().unwrap(), acme_only()).await;
    fake.sign_in_as("ada");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let (status, refreshed) = refresh(&proxy, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");

    // Removed from the organisation: the next refresh ends the grant.
    fake.leave_org("ada", "acme");
    let (status, refused) = refresh(&proxy, refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")), "{refused}");

    // The app revoked at GitHub: the same.
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[GitHubUser::new(1, "ada", &[])]).await;
    let proxy = provider_flow::serve(github(&fake).upstream().unwrap(), AllowedUsers::everyone()).await;
    fake.sign_in_as("ada");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    fake.revoke_app_for("ada");
    let (status, refused) = refresh(&proxy, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")), "{refused}");
}

#[tokio::test]
async fn revoking_at_mcpgate_deletes_the_github_token_at_github() {
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[GitHubUser::new(1, "ada", &[])]).await;
    let proxy = provider_flow::serve(github(&fake).upstream().unwrap(), AllowedUsers::everyone()).await;
    fake.sign_in_as("ada");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    assert_eq!(fake.live_tokens_of("ada"), 1);
    let revoked = reqwest::Client::new()
        .post(format!("{}/revoke", proxy.base))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", proxy.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(fake.live_tokens_of("ada"), 0, "only that token, through DELETE /applications/{{id}}/token");
}

#[tokio::test]
async fn organisations_are_read_across_pages() {
    let orgs: Vec<String> = (0..150).map(|i| format!("org-{i}")).collect();
    let org_refs: Vec<&str> = orgs.iter().map(String::as_str).collect();
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[GitHubUser::new(1, "ada", &org_refs)]).await;
    // The organisation that admits her is on the second page of 100.
    let allowed = AllowedUsers { groups: vec!["org-140".into()], ..Default::default() };
    let proxy = provider_flow::serve(with_organisations(github(&fake)).upstream().unwrap(), allowed).await;
    fake.sign_in_as("ada");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["groups"].as_array().unwrap().len(), 150);
}
