//! Interoperability: rmcp's own client with its `auth` feature against `mcpgate demo`, and
//! against the gateway in front of the test IdP. Its
//! OAuth state machine discovers the authorization server, registers and builds the
//! authorization URL; the browser steps are driven on the provider's pages; the callback URL goes
//! back to rmcp, whose authorized HTTP client then calls `whoami`, refreshes, and — once the
//! grant is revoked server-side — is refused until it signs in again. On the CIMD path it offers
//! the URL of its client ID metadata document instead of registering.

use crate::interop_targets::{Target, assert_client_document_used};
use crate::sign_in::browse_to_client;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationManager, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

const REDIRECT: &str = "http://127.0.0.1:47071/callback";

/// rmcp's authorization flow for `user`, the browser part on the provider's pages; the client
/// offers `target`'s client metadata document URL when it has one.
async fn authorize(target: &Target, user: &str) -> AuthorizationManager {
    let mut state = OAuthState::new(&target.mcp_url, None).await.expect("an OAuth state");
    let mut request = AuthorizationRequest::new(REDIRECT).with_client_name("mcpgate interop (rmcp)");
    if let Some(url) = &target.client_metadata_url {
        request = request.with_client_metadata_url(url);
    }
    state.start_authorization(request).await.expect("discovery and registration");
    let url = state.get_authorization_url().await.unwrap();
    let back = browse_to_client(&url::Url::parse(&url).unwrap(), user, REDIRECT).await;
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    state.handle_callback_url(back.as_str()).await.expect("the code exchanged");
    state.into_authorization_manager().expect("authorized")
}

/// `whoami` through a fresh session with `client`'s credentials.
async fn whoami(mcp_url: &str, client: &AuthClient<reqwest::Client>) -> Result<String, String> {
    let transport = StreamableHttpClientTransport::with_client(
        client.clone(),
        StreamableHttpClientTransportConfig::with_uri(mcp_url.to_owned()),
    );
    let session = ClientConfig::default().serve(transport).await.map_err(|e| e.to_string())?;
    let result = session.call_tool(CallToolRequestParams::new("whoami")).await.map_err(|e| e.to_string())?;
    let _ = session.cancel().await;
    let me: serde_json::Value = serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
    Ok(me["subject"].as_str().unwrap().to_owned())
}

/// The refresh token rmcp holds.
async fn refresh_token(client: &AuthClient<reqwest::Client>) -> String {
    let (_, tokens) = client.auth_manager.lock().await.get_credentials().await.unwrap();
    let tokens = serde_json::to_value(tokens.expect("tokens")).unwrap();
    tokens["refresh_token"].as_str().expect("a refresh token").to_owned()
}

/// The whole flow against `target` as `user`; the client id it used.
async fn full_flow(target: &Target, user: &str) -> String {
    let mcp_url = target.mcp_url.clone();
    let base = mcp_url.trim_end_matches("/mcp").to_owned();

    let client = AuthClient::new(reqwest::Client::new(), authorize(target, user).await);
    assert_eq!(whoami(&mcp_url, &client).await.unwrap(), user);

    // A refresh: rotated tokens, and the client carries on.
    let first = refresh_token(&client).await;
    client.auth_manager.lock().await.refresh_token().await.expect("a refresh");
    let second = refresh_token(&client).await;
    assert_ne!(first, second, "the refresh token rotates");
    assert_eq!(whoami(&mcp_url, &client).await.unwrap(), user);

    // Revoked server-side: refused (a 401 asking for authorization), and rmcp's refresh fails too.
    let client_id = client.auth_manager.lock().await.get_credentials().await.unwrap().0;
    let revoked = reqwest::Client::new()
        .post(format!("{base}/revoke"))
        .form(&[("token", second.as_str()), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let refused = whoami(&mcp_url, &client).await.unwrap_err();
    assert!(refused.to_lowercase().contains("auth"), "{refused}");
    assert!(client.auth_manager.lock().await.refresh_token().await.is_err(), "a revoked grant refreshed");

    // Signing in again works.
    let again = AuthClient::new(reqwest::Client::new(), authorize(target, user).await);
    assert_eq!(whoami(&mcp_url, &again).await.unwrap(), user);
    client_id
}

#[tokio::test]
async fn rmcps_client_against_the_demo() {
    full_flow(&crate::interop_targets::demo().await, "sam").await;
}

#[tokio::test]
async fn rmcps_client_against_the_gateway_in_front_of_an_openid_provider() {
    full_flow(&crate::interop_targets::gateway_with_idp().await, "samira").await;
}

#[tokio::test]
async fn rmcps_client_offering_a_client_id_metadata_document() {
    let target = crate::interop_targets::gateway_with_idp_and_client_document("rmcp.json", REDIRECT).await;
    let client_id = full_flow(&target, "samuel").await;
    assert_client_document_used(&target, &serde_json::json!(client_id), "rmcp.json").await;
}
