//! `mcpgate serve` in proxy mode against the real test IdP: the whole OAuth flow, then the
//! upstream sees the user; client ID metadata documents turned off.

use crate::{gateway, idp, process, sign_in};

use gateway::start_gateway;
use process::free_port;
use sign_in::{PROXY_ENV, proxy_config, sign_in};

use serde_json::json;

use crate::serve::header_echo;

#[tokio::test]
async fn proxy_mode_gateway_logs_users_in_at_the_idp_and_tells_the_upstream_who_they_are() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = idp::TestIdp::start(&[&format!("{base}/auth/callback")]);
    let upstream = header_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[upstream]
url = "{upstream}"
forward_provider_token = true

{auth}"#,
        auth = proxy_config(&idp, "mcp:read", dir.path()),
    );
    let _gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;
    let http = reqwest::Client::new();

    let (client_id, access) = sign_in(&base, &idp, "olga").await;
    let access = access.as_str();

    let seen: serde_json::Value = http
        .post(format!("{base}/mcp"))
        .bearer_auth(access)
        .header("x-mcpgate-subject", "someone-else")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["x-mcpgate-subject"], "olga", "{seen}");
    assert_eq!(seen["x-mcpgate-client-id"], client_id.as_str());
    assert!(seen.get("authorization").is_none());
    // The provider token the upstream got is the user's, live at the IdP.
    let provider_token = seen["x-mcpgate-provider-token"].as_str().expect("the provider token");
    let me = http.get(format!("{}/me", idp.issuer)).bearer_auth(provider_token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["sub"], "olga");

    // One token used again and again is verified once: the cache's metric says so (one cache
    // on the path; a second one around it would count each use twice, half of them misses).
    for _ in 0..19 {
        let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
        let answer = http.post(format!("{base}/mcp")).bearer_auth(access).json(&ping).send().await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let count = |outcome: &str| -> f64 {
        let prefix = format!("mcpgate_verify_cache_total{{outcome=\"{outcome}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0.0, |v| v.trim().parse().unwrap())
    };
    let (hits, misses) = (count("hit"), count("miss"));
    assert_eq!(hits + misses, 20.0, "each of the 20 uses counted once: {metrics}");
    assert!(hits / (hits + misses) >= 0.9, "{hits} hits, {misses} misses");

    // The identity provider's latency, by endpoint.
    for endpoint in ["discovery", "token"] {
        let line = format!(
            "mcpgate_provider_request_duration_seconds_count{{endpoint=\"{endpoint}\",outcome=\"answered\"}}"
        );
        assert!(metrics.contains(&line), "{line} missing from {metrics}");
    }
}

#[tokio::test]
async fn client_metadata_documents_can_be_turned_off() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = idp::TestIdp::start(&[&format!("{base}/auth/callback")]);
    let upstream = header_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\nurl = \"{upstream}\"\n\n{auth}\n\
         [auth.client_metadata_documents]\nenabled = false\n",
        auth = proxy_config(&idp, "mcp:read", dir.path()),
    );
    let _gateway = start_gateway(dir.path(), &config, &PROXY_ENV, &base).await;
    let http = reqwest::Client::new();

    let metadata: serde_json::Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], false, "{metadata}");
    // A URL client id is then just an unknown client.
    let authorize = url::Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", "https://client.example.com/metadata.json"),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let refused = http.get(authorize).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().to_lowercase().contains("client"));
}
