//! An MCP client's OAuth steps against mcpgate, as plain HTTP: registration, the authorization
//! URL, and the code exchange. Shared with the gateway crate's tests (included by path).

use serde_json::{Value, json};

/// Registers a public client (code and refresh grants) named `name` with `redirect_uri`;
/// its id.
pub async fn register_public_client(base: &str, redirect_uri: &str, name: &str) -> String {
    let registered: Value = reqwest::Client::new()
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none", "client_name": name,
                     "grant_types": ["authorization_code", "refresh_token"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    registered["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("registration refused: {registered}"))
        .to_owned()
}

/// The authorization request of `client_id`, with `state=xyz` and the S256 `challenge`.
pub fn authorize_url(base: &str, client_id: &str, redirect_uri: &str, challenge: &str) -> url::Url {
    let mut authorize = url::Url::parse(&format!("{base}/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", "xyz")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    authorize
}

/// The `code` the authorization server sent the browser back to the client with.
pub fn code_in(redirect: &url::Url) -> String {
    redirect.query_pairs().find(|(k, _)| k == "code").expect("a code").1.into_owned()
}

/// Redeems `code` at the token endpoint: status, headers and body.
pub async fn exchange_code(
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> (u16, http::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.headers().clone(), response.json().await.unwrap())
}
