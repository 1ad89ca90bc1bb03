//! The `oauth_proxy_server` example, run as a process exactly as a user would run it, in front of
//! the real test IdP, driven like an MCP client: discovery from the 401 challenge → dynamic
//! registration → authorize → consent → upstream login → callback → token → `tools/call whoami`
//! as the IdP's user → refresh → revoke → 401.

use mcpgate_test_support as common;

use common::process::{Running, example_path, free_port};

use std::process::{Command, Stdio};
use std::time::Duration;

use common::idp::{CLIENT_ID, CLIENT_SECRET, TestIdp, approve_and_log_in, browser};
use mcpgate::crypto::pkce;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

async fn whoami(mcp_url: &str, access_token: &str) -> Result<Value, String> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(mcp_url.to_owned()).auth_header(access_token),
    );
    let client = ClientConfig::default().serve(transport).await.map_err(|e| e.to_string())?;
    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.map_err(|e| e.to_string())?;
    let _ = client.cancel().await;
    Ok(serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap())
}

/// A form POST answered with JSON.
async fn post_form(url: &str, form: &[(&str, &str)]) -> Value {
    reqwest::Client::new().post(url).form(form).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn an_mcp_client_goes_from_the_401_to_whoami_refresh_and_revocation() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&[&format!("{base}/auth/callback")]);
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(example_path("oauth_proxy_server"))
        .args(["--port", &port.to_string()])
        .args(["--oidc-discovery-url", &format!("{}/.well-known/openid-configuration", idp.issuer)])
        .args(["--client-id", CLIENT_ID, "--client-secret-env", "TEST_IDP_SECRET"])
        .args(["--scope", "mcp:read", "--consent", "always"])
        .args(["--store", &format!("sqlite://{}", dir.path().join("proxy.db").display())])
        .args(["--allowed-redirect", "http://127.0.0.1:*"])
        .env("MCPGATE_SECRET", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA")
        .env("TEST_IDP_SECRET", CLIENT_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let http = reqwest::Client::new();
    let mcp_url = format!("{base}/mcp");
    let mut challenge = None;
    for _ in 0..200 {
        if let Ok(response) = http.post(&mcp_url).json(&json!({})).send().await {
            challenge = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let challenge = challenge.expect("the example did not start");

    // 1. The challenge names the resource metadata, which names the authorization server.
    assert_eq!(challenge.status(), 401);
    let www = challenge.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let metadata_url = www.split("resource_metadata=\"").nth(1).unwrap().split('"').next().unwrap();
    let resource: Value = http.get(metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(resource["resource"], mcp_url);
    let issuer = resource["authorization_servers"][0].as_str().unwrap();
    let server: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(server["issuer"], issuer);

    // 2. Dynamic registration.
    let redirect = "http://127.0.0.1:47020/callback";
    let registered: Value = http
        .post(server["registration_endpoint"].as_str().unwrap())
        .json(&json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"], "client_name": "Example client"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap_or_else(|| panic!("{registered}"));

    // 3. Authorize → consent → IdP login → callback → the client's code.
    let (verifier, code_challenge) = pkce::new_pair();
    let mut authorize = url::Url::parse(server["authorization_endpoint"].as_str().unwrap()).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "st")
        .append_pair("scope", "mcp:read")
        .append_pair("code_challenge", &code_challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &mcp_url);
    let browser = browser();
    let callback = approve_and_log_in(&browser, &authorize, &idp.issuer, "laura").await;
    let back = browser.get(callback).send().await.unwrap();
    let to_client = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = to_client.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();

    // 4. Tokens, and the tool sees the IdP's user.
    let token_endpoint = server["token_endpoint"].as_str().unwrap();
    let tokens = post_form(
        token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", verifier.expose_secret()),
            ("redirect_uri", redirect),
            ("client_id", client_id),
        ],
    )
    .await;
    let access = tokens["access_token"].as_str().expect("an access token");
    let identity = whoami(&mcp_url, access).await.unwrap();
    assert_eq!(identity["subject"], "laura");
    assert_eq!(identity["client_id"], client_id);

    // 5. Refresh; the new access token works.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed = post_form(
        token_endpoint,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)],
    )
    .await;
    let access2 = refreshed["access_token"].as_str().expect("a refreshed access token");
    assert_eq!(whoami(&mcp_url, access2).await.unwrap()["subject"], "laura");

    // 6. Revoke the refresh token: the grant ends, and the access token is refused.
    let revoked = http
        .post(server["revocation_endpoint"].as_str().unwrap())
        .form(&[("token", refreshed["refresh_token"].as_str().unwrap()), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(common::process::initialize_status(&mcp_url, access2).await, 401);
}
