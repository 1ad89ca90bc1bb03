//! Open registration can be turned off, with the operator's own clients in `[[auth.clients]]`;
//! and `consent = "off"` while strangers can bring clients is a configuration error (finding 9).

use std::process::Command;

use mcpgate::crypto::pkce;
use serde_json::{Value, json};

use super::gateway::start_gateway;
use super::idp::{self, TestIdp};
use super::oauth_client::{authorize_url, code_in};
use super::process::free_port;
use super::sign_in::{PROXY_ENV, proxy_config};
use super::upstream_headers::{environ_for, wsgi_upstream};

const REDIRECT: &str = "https://ops.example.com/callback";

#[tokio::test]
async fn with_registration_off_only_configured_clients_sign_in_and_without_a_consent_page() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&[&format!("{base}/auth/callback")]);
    let (upstream, _upstream_process) = wsgi_upstream();
    let dir = tempfile::tempdir().unwrap();
    let auth = proxy_config(&idp, "mcp:read", dir.path()).replacen(
        "[auth]\n",
        "[auth]\nregistration = \"off\"\nconsent = \"off\"\n",
        1,
    );
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\nurl = \"{upstream}\"\n\n{auth}\n\
         [auth.client_metadata_documents]\nenabled = false\n\n\
         [[auth.clients]]\nclient_id = \"ops-tool\"\nclient_secret_env = \"OPS_TOOL_SECRET\"\n\
         redirect_uris = [\"{REDIRECT}\"]\nname = \"Operations tool\"\ngrant_types = [\"authorization_code\"]\n"
    );
    let env: Vec<(&str, &str)> =
        PROXY_ENV.iter().copied().chain([("OPS_TOOL_SECRET", "ops-secret-1234")]).collect();
    let _gateway = start_gateway(dir.path(), &config, &env, &base).await;
    let http = reqwest::Client::new();

    let metadata: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata.get("registration_endpoint").is_none(), "{metadata}");
    let refused = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "access_denied");

    // The operator's client: straight to the provider (no consent page), back with a code.
    let (verifier, challenge) = pkce::new_pair();
    let browser = idp::browser();
    let authorize = authorize_url(&base, "ops-tool", REDIRECT, &challenge);
    let to_provider = browser.get(authorize).send().await.unwrap();
    assert_eq!(to_provider.status(), 303, "no consent page");
    let to_provider = to_provider.headers()["location"].to_str().unwrap().to_owned();
    let callback = idp::log_in(&browser, &idp.issuer, &to_provider, "otto").await;
    let back = browser.get(callback).send().await.unwrap();
    let target = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert!(target.as_str().starts_with(REDIRECT), "{target}");
    let code = code_in(&target);
    let redeem = |secret: &'static str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", secrecy::ExposeSecret::expose_secret(&verifier)),
            ("redirect_uri", REDIRECT),
        ];
        http.post(format!("{base}/token")).basic_auth("ops-tool", Some(secret)).form(&form).send()
    };
    assert_eq!(redeem("wrong-secret").await.unwrap().status(), 401, "the secret is checked");
    let tokens: Value = redeem("ops-secret-1234").await.unwrap().json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}"));
    assert!(tokens.get("refresh_token").is_none(), "grant_types has no refresh_token: {tokens}");
    let seen = environ_for(&base, access, &[]).await;
    assert_eq!(seen["HTTP_X_MCPGATE_CLIENT_ID"], "ops-tool", "{seen}");
    assert_eq!(seen["HTTP_X_MCPGATE_SUBJECT"], "otto");
}

#[test]
fn consent_off_with_open_registration_is_a_configuration_error_naming_the_keys() {
    let run = |auth_extra: &str, more: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpgate.toml");
        let config = format!(
            "[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\n\n[auth]\nclient_id = \"x\"\nclient_secret_env = \"X\"\n\
             consent = \"off\"\n{auth_extra}\n[auth.oidc]\ndiscovery_url = \"http://127.0.0.1:1/.well-known/openid-configuration\"\n{more}"
        );
        std::fs::write(&path, config).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
            .args(["check", "--config", path.to_str().unwrap()])
            .env("X", "x")
            .env("MCPGATE_SECRET", PROXY_ENV[0].1)
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8(output.stderr).unwrap())
    };
    let (code, stderr) = run("", "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("auth.consent:"), "{stderr}");
    assert!(stderr.contains("auth.registration is \"open\""), "{stderr}");
    assert!(stderr.contains("auth.allowed_redirect_uris"), "{stderr}");
    // Registration off, but metadata documents still bring strangers' clients.
    let (code, stderr) = run("registration = \"off\"\n", "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("auth.client_metadata_documents.enabled is true"), "{stderr}");
    // Open registration limited to loopback redirects: allowed (the provider is unreachable: 1).
    let (code, stderr) = run("allowed_redirect_uris = [\"http://127.0.0.1:*/callback\"]\n", "");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("auth.consent"), "{stderr}");
    // No stranger's client at all: allowed.
    let (code, stderr) =
        run("registration = \"off\"\n", "\n[auth.client_metadata_documents]\nenabled = false\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("auth.consent"), "{stderr}");
}

#[tokio::test]
async fn registered_clients_that_never_complete_a_sign_in_expire() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(&[&format!("{base}/auth/callback")]);
    let dir = tempfile::tempdir().unwrap();
    let auth = proxy_config(&idp, "mcp:read", dir.path()).replacen(
        "[auth]\n",
        "[auth]\nunconfirmed_client_ttl_secs = 3\n",
        1,
    );
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\n\n{auth}"
    );
    let _gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;

    // One registration is never used; another signs a user in.
    let redirect = "http://127.0.0.1:47031/callback";
    let unused = super::oauth_client::register_public_client(&base, redirect, "Flood #1").await;
    let (used, _) = super::sign_in::sign_in(&base, &idp, "una").await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let (_, challenge) = pkce::new_pair();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = |client_id: String| {
        let request = http.get(authorize_url(&base, &client_id, redirect, &challenge));
        async move { request.send().await.unwrap() }
    };
    let gone = page(unused).await;
    assert_eq!(gone.status(), 400, "the unused registration expired");
    assert!(gone.text().await.unwrap().to_lowercase().contains("client"));
    assert_eq!(page(used).await.status(), 200, "a client that signed someone in is kept");
}
