//! The test IdP itself: a plain OAuth client completes a PKCE code flow against it, checks the
//! id_token with mcpgate's `JwtVerifier`, refreshes (with rotation) and revokes. Later tests of
//! the authorization server rely on everything checked here.

use mcpgate_test_support as common;

use common::idp::{CLIENT_ID, CLIENT_SECRET, TestIdp, browser, log_in};
use mcpgate::crypto::pkce;
use mcpgate::verify::{JwtVerifier, TokenVerifier};
use secrecy::ExposeSecret;
use serde_json::Value;

const CALLBACK: &str = "http://127.0.0.1:9/auth/callback";

async fn token_request(idp: &TestIdp, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/token", idp.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn authorize_url(idp: &TestIdp, challenge: &str, state: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/auth", idp.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "openid email profile")
        .append_pair("state", state)
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

#[tokio::test]
async fn a_code_flow_with_refresh_rotation_and_revocation() {
    let idp = TestIdp::start(&[CALLBACK]);
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    assert_eq!(discovery["authorization_endpoint"], format!("{}/auth", idp.issuer));

    let (verifier, challenge) = pkce::new_pair();
    let callback = log_in(&browser(), &idp.issuer, &authorize_url(&idp, &challenge, "st-1"), "alice").await;
    assert!(callback.as_str().starts_with(CALLBACK), "{callback}");
    let params: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], idp.issuer);

    let (status, tokens) = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.expose_secret()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let verifier_of_ids = JwtVerifier::builder()
        .jwks_uri(discovery["jwks_uri"].as_str().unwrap())
        .issuer(idp.issuer.clone())
        .audience(CLIENT_ID)
        .build()
        .unwrap();
    let principal = verifier_of_ids.verify(id_token).await.unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.claim("nonce").and_then(Value::as_str), Some("n-0S6_WzA2Mj"));

    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) =
        token_request(&idp, &[("grant_type", "refresh_token"), ("refresh_token", &first_refresh)]).await;
    assert_eq!(status, 200, "{rotated}");
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first_refresh, second_refresh, "refresh tokens rotate");
    let (status, reused) =
        token_request(&idp, &[("grant_type", "refresh_token"), ("refresh_token", &first_refresh)]).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));

    // A fresh flow for revocation.
    let (verifier, challenge) = pkce::new_pair();
    let callback = log_in(&browser(), &idp.issuer, &authorize_url(&idp, &challenge, "st-2"), "bob").await;
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (_, tokens) = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.expose_secret()),
        ],
    )
    .await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let revoked = reqwest::Client::new()
        .post(format!("{}/token/revocation", idp.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", refresh), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, after) =
        token_request(&idp, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!((status, after["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn pkce_is_required_by_the_idp() {
    let idp = TestIdp::start(&[CALLBACK]);
    let url = authorize_url(&idp, "x", "st").replace("&code_challenge=x&code_challenge_method=S256", "");
    let response = browser().get(&url).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CALLBACK), "{location}");
    assert!(location.contains("error=invalid_request"), "{location}");
}
