//! `mcpgate demo` as a newcomer runs it, in an empty directory: an MCP client registers, the
//! user consents and signs in on the development login page, and the demo's `whoami` sees the
//! name they typed; the secret kept in ./.mcpgate/ makes tokens outlive a restart; the machine
//! client's command the demo prints gets a token that `whoami` knows as the machine, and the
//! demo's API key is a caller of its own.

use crate::{gateway, oauth_client, process, sign_in};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;

// Test helpers shared with the library's tests: the browser, an OAuth client, child processes.

use gateway::start_demo;
use process::free_port;
use sign_in::browse_to_client;

#[tokio::test]
async fn a_newcomer_signs_in_on_the_dev_page_and_whoami_knows_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let demo = start_demo(dir.path(), port).await;

    let redirect = "http://127.0.0.1:47041/callback";
    let client_id = oauth_client::register_public_client(&base, redirect, "Newcomer").await;
    let (verifier, challenge) = mcpgate::crypto::pkce::new_pair();
    let authorize = oauth_client::authorize_url(&base, &client_id, redirect, &challenge);

    // Consent, then the development login page, then back through mcpgate to the client.
    let to_client = browse_to_client(&authorize, "pat", redirect).await;
    assert!(to_client.as_str().starts_with(redirect), "{to_client}");
    let code = oauth_client::code_in(&to_client);
    let verifier = secrecy::ExposeSecret::expose_secret(&verifier);
    let (_, _, tokens) = oauth_client::exchange_code(&base, &client_id, redirect, &code, verifier).await;
    let access = tokens["access_token"].as_str().expect("an access token").to_owned();

    let whoami = |access: String| {
        let url = format!("{base}/mcp");
        async move {
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(url).auth_header(access),
            );
            let client = ClientConfig::default().serve(transport).await.unwrap();
            let result = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
            let _ = client.cancel().await;
            serde_json::from_str::<Value>(&result.content[0].as_text().unwrap().text).unwrap()
        }
    };
    assert_eq!(whoami(access.clone()).await["subject"], "pat");

    // The API key the demo keeps is a bearer token as it is.
    let key = std::fs::read_to_string(dir.path().join(".mcpgate/api-key")).unwrap();
    assert_eq!(whoami(key.trim().to_owned()).await["subject"], "api_key:demo");

    // The machine client, by the very command the demo prints, run in a shell where it was
    // started (curl: an external tool, so with the external tests).
    #[cfg(feature = "external-tests")]
    {
        let printed = std::fs::read_to_string(dir.path().join("demo.out")).unwrap();
        let command =
            printed.lines().map(str::trim).find(|l| l.starts_with("curl ")).expect("a curl command");
        let output =
            std::process::Command::new("sh").args(["-c", command]).current_dir(dir.path()).output().unwrap();
        assert!(output.status.success(), "{command}: {}", String::from_utf8_lossy(&output.stderr));
        let machine: Value = serde_json::from_slice(&output.stdout).unwrap();
        let me = whoami(machine["access_token"].as_str().expect("a token").to_owned()).await;
        assert_eq!(me["subject"], "demo-machine", "{me}");
    }

    // The secret is kept for the owner only, and a restarted demo honours the same token.
    let secret = dir.path().join(".mcpgate/secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    }
    drop(demo);
    let _again = start_demo(dir.path(), port).await;
    assert_eq!(whoami(access).await["subject"], "pat", "tokens survive a restart");
}
