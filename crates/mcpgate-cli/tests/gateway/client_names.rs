//! Client names that disguise themselves — bidirectional overrides, zero-width and other
//! invisible characters — refused at registration and in client ID metadata documents
//! (finding 7).

use mcpgate::crypto::pkce;
use serde_json::{Value, json};

use super::interop_targets::gateway_with_idp_and_client_document;
use super::oauth_client::authorize_url;

const REDIRECT: &str = "http://127.0.0.1:47130/cb";

#[tokio::test]
async fn look_alike_client_names_are_refused_at_registration_and_in_metadata_documents() {
    let target = gateway_with_idp_and_client_document("good.json", REDIRECT).await;
    let base = target.mcp_url.trim_end_matches("/mcp").to_owned();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let look_alikes = [
        "Evil Corp \u{202E}edoC edualC",
        "Clau\u{200B}de Code",
        "\u{2067}Claude Code\u{2069}",
        "Claude\u{FEFF} Code",
        "Claude\u{00AD}Code",
    ];
    for name in look_alikes {
        let response = http
            .post(format!("{base}/register"))
            .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{name:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{name:?}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains("client_name"), "{body}");
    }
    // A name in another script, with emoji, is a name.
    let fine = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "Zürich 東京 🤖"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 201);

    // The same name in a client's metadata document: the authorization request gets a page
    // saying why, not a consent page.
    let host = target.document_host.as_ref().unwrap();
    let url = host.url("evil.json");
    host.publish(
        "evil.json",
        json!({"client_id": url, "client_name": look_alikes[0], "redirect_uris": [REDIRECT],
               "token_endpoint_auth_method": "none"}),
    );
    let (_, challenge) = pkce::new_pair();
    let page = http.get(authorize_url(&base, &url, REDIRECT, &challenge)).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let text = page.text().await.unwrap();
    assert!(text.contains("client_name"), "{text}");
    assert!(!text.contains("Allow access?"));
    // The published good document still leads to the consent page.
    let good = target.client_metadata_url.as_deref().unwrap();
    let page = http.get(authorize_url(&base, good, REDIRECT, &challenge)).send().await.unwrap();
    assert_eq!(page.status(), 200);
}
