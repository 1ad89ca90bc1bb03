//! The Discord provider against a fake Discord (wiremock, `base_url` pointed at it): the
//! authorization page approves at once, the token endpoint wants the client's Basic
//! credentials, and identity comes from `/api/users/@me` with Discord's own claim names.

use mcpgate_test_support as common;

use common::provider_flow::{self, claims_of};
use mcpgate::authz::AllowedUsers;
use mcpgate::upstream::providers::Discord;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Discord's authorization page for an app the user already authorized: straight back to
/// the redirect URI with a code and the state.
struct Approve;

impl Respond for Approve {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: std::collections::HashMap<_, _> = request.url.query_pairs().into_owned().collect();
        let mut back = url::Url::parse(&query["redirect_uri"]).unwrap();
        back.query_pairs_mut().append_pair("code", "discord-code").append_pair("state", &query["state"]);
        ResponseTemplate::new(302).insert_header("location", back.as_str())
    }
}

#[tokio::test]
async fn a_discord_user_signs_in_with_identity_from_users_me() {
    let discord = MockServer::start().await;
    Mock::given(method("GET")).and(path("/oauth2/authorize")).respond_with(Approve).mount(&discord).await;
    // Basic auth of "discord-app:discord-secret".
    Mock::given(method("POST"))
        .and(path("/api/oauth2/token"))
        .and(header("authorization", "Basic ZGlzY29yZC1hcHA6ZGlzY29yZC1zZWNyZXQ="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "discord-access",
            "token_type": "Bearer", "expires_in": 2, "refresh_token": "discord-refresh", "scope": "identify email"})))
        .mount(&discord)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/users/@me"))
        .and(header("authorization", "Bearer discord-access"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "80351110224678912",
            "username": "nelly", "global_name": "Nelly", "email": "nelly@example.com", "verified": true})))
        .mount(&discord)
        .await;

    let app = Discord::new("discord-app", SecretString::from("discord-secret"));
    let upstream = Discord { base_url: Some(discord.uri()), ..app }.upstream().unwrap();
    let proxy = provider_flow::serve(
        upstream,
        AllowedUsers { emails: vec!["nelly@example.com".into()], ..Default::default() },
    )
    .await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "80351110224678912");
    assert_eq!(
        (claims["name"].as_str(), claims["preferred_username"].as_str()),
        (Some("Nelly"), Some("nelly"))
    );
    // Discord's `verified` is what let the email allow-list admit her.
    assert_eq!(claims["email_verified"], true);
    let authorize = discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/oauth2/authorize")
        .unwrap();
    let asked: std::collections::HashMap<_, _> = authorize.url.query_pairs().into_owned().collect();
    assert_eq!(asked["scope"], "identify email");

    // Our refresh, once Discord's token (2 s here, a week in life) is due: renewed at Discord
    // with its refresh token, and Discord asked who the token's holder is again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let identity_checks = || async {
        let seen = discord.received_requests().await.unwrap();
        seen.iter().filter(|r| r.url.path() == "/api/users/@me").count()
    };
    let before = identity_checks().await;
    let (status, refreshed) = provider_flow::refresh(&proxy, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    let after = identity_checks().await;
    assert_eq!(after, before + 1);
    let seen = discord.received_requests().await.unwrap();
    let renewed = seen.iter().any(|r| {
        r.url.path() == "/api/oauth2/token"
            && String::from_utf8_lossy(&r.body).contains("grant_type=refresh_token")
    });
    assert!(renewed, "Discord's token renewed at Discord");

    // Someone the allow-list does not name is turned away.
    let app = Discord::new("discord-app", SecretString::from("discord-secret"));
    let upstream = Discord { base_url: Some(discord.uri()), ..app }.upstream().unwrap();
    let only_bob = AllowedUsers { emails: vec!["bob@example.com".into()], ..Default::default() };
    let proxy = provider_flow::serve(upstream, only_bob).await;
    assert!(matches!(provider_flow::sign_in(&proxy).await, provider_flow::SignIn::Page(403, _)));
}
