//! `mcpgate serve` with a built-in provider (`provider = "<name>"`, `[auth.<name>] base_url`
//! pointed at a fake of the provider on loopback): a user signs in, and the stdio MCP server
//! behind the gateway is started with the identity the provider vouched for; the allow-list
//! turns an outsider away.

#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/fake_github.rs"]
mod fake_github;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/fake_oidc.rs"]
mod fake_oidc;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/idp.rs"]
mod idp;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/oauth_client.rs"]
mod oauth_client;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/provider_flow.rs"]
mod provider_flow;

#[allow(dead_code)]
mod gateway;

use fake_github::{AppKind, FakeGitHub, GitHubUser};
use fake_oidc::{FakeOidc, Quirks};
use process::{Running, example_path, free_port};
use provider_flow::{Proxy, SignIn};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

const SECRET: (&str, &str) = ("MCPGATE_SECRET", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA");

/// A gateway in proxy mode for `provider`, its `[auth.<provider>]` and `[auth.allowed_users]`
/// sections given, the provider's client secret in `PROVIDER_SECRET`; serving the stdio test
/// server per session. The gateway and a client registered at it.
async fn gateway(
    provider: &str,
    client_id: &str,
    secret: &str,
    sections: &str,
) -> (Running, Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [upstream]\ncommand = [\"{server}\"]\nper_session = true\n\n\
         [auth]\nprovider = \"{provider}\"\nclient_id = \"{client_id}\"\nclient_secret_env = \"PROVIDER_SECRET\"\n\
         scopes = [\"mcp:read\"]\n\n{sections}\n\n[store]\nurl = \"memory://\"\n",
        server = example_path("stdio_test_server").display(),
    );
    let env = [SECRET, ("PROVIDER_SECRET", secret)];
    let running = gateway::start_gateway(dir.path(), &config, &env, &base).await;
    let client_id =
        oauth_client::register_public_client(&base, provider_flow::CLIENT_REDIRECT, "provider test").await;
    (running, Proxy { base, client_id }, dir)
}

/// `whoami` of the stdio server behind the gateway, with `access_token`.
async fn whoami(proxy: &Proxy, access_token: &str) -> serde_json::Value {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", proxy.base))
            .auth_header(access_token),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let result = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    client.cancel().await.unwrap();
    serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap()
}

#[tokio::test]
async fn github_users_reach_the_mcp_server_with_their_github_identity() {
    let users = [GitHubUser::new(583231, "ada", &["acme"]), GitHubUser::new(2, "mallory", &["elsewhere"])];
    let fake = FakeGitHub::start(AppKind::OAuthApp, &users).await;
    let sections =
        format!("[auth.github]\nbase_url = \"{}\"\n\n[auth.allowed_users]\ngroups = [\"acme\"]", fake.url);
    let (_gateway, proxy, _dir) =
        gateway("github", fake_github::CLIENT_ID, fake_github::CLIENT_SECRET, &sections).await;

    fake.sign_in_as("ada");
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let me = whoami(&proxy, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["subject"], "583231");
    assert_eq!(me["username"], "ada");
    assert_eq!(me["email"], "ada@example.org");
    assert_eq!(me["groups"], "acme");
    // The organisation allow-list made the gateway ask GitHub for read:org.
    assert!(fake.authorize_requests()[0]["scope"].contains("read:org"));

    fake.sign_in_as("mallory");
    match provider_flow::sign_in(&proxy).await {
        SignIn::Page(403, page) => assert!(page.contains("not allowed"), "{page}"),
        other => panic!("an outsider must be refused: {other:?}"),
    }
}

/// A fake OpenID provider whose issuer is `{base}{path}`, with Ada signed in.
async fn fake_oidc_at(path: &str, quirks: Quirks) -> FakeOidc {
    let fake = FakeOidc::start(Quirks { issuer: Some(format!("{{base}}{path}")), ..quirks }).await;
    fake.add_user(
        "ada-1",
        serde_json::json!({"email": "ada@example.com", "email_verified": true, "name": "Ada",
                           "preferred_username": "ada", "hd": "example.com", "tid": "tenant-1", "groups": ["staff"]}),
    );
    fake.sign_in_as("ada-1");
    fake
}

/// Signs Ada in at a gateway for `provider` with `section`; what the stdio server saw.
async fn sign_in_through(provider: &str, section: &str) -> serde_json::Value {
    let (_gateway, proxy, _dir) =
        gateway(provider, fake_oidc::CLIENT_ID, fake_oidc::CLIENT_SECRET, section).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    whoami(&proxy, tokens["access_token"].as_str().unwrap()).await
}

#[tokio::test]
async fn each_openid_provider_is_configured_by_its_section() {
    let google = fake_oidc_at("", Quirks { bare_issuer_in_tokens: true, ..Default::default() }).await;
    let section = format!("[auth.google]\nbase_url = \"{}\"\nhosted_domain = \"example.com\"", google.url);
    assert_eq!(sign_in_through("google", &section).await["email"], "ada@example.com");
    assert_eq!(google.authorize_requests()[0]["hd"], "example.com");

    let azure = fake_oidc_at(
        "/{tenantid}/v2.0",
        Quirks { refused_authorize_params: vec!["resource"], ..Default::default() },
    )
    .await;
    let section = format!("[auth.azure]\nbase_url = \"{}\"\napi_scopes = true", azure.url);
    assert_eq!(sign_in_through("azure", &section).await["username"], "ada");
    assert!(
        azure.authorize_requests()[0]["scope"].ends_with(&format!("api://{}/mcp:read", fake_oidc::CLIENT_ID))
    );

    let keycloak = fake_oidc_at("/realms/acme", Quirks::default()).await;
    let section = format!("[auth.keycloak]\nbase_url = \"{}\"\nrealm = \"acme\"", keycloak.url);
    assert_eq!(sign_in_through("keycloak", &section).await["groups"], "staff");

    let okta = fake_oidc_at("/oauth2/default", Quirks::default()).await;
    let section = format!("[auth.okta]\nbase_url = \"{}\"", okta.url);
    assert_eq!(sign_in_through("okta", &section).await["subject"], "ada-1");

    let auth0 = fake_oidc_at("/", Quirks::default()).await;
    let section =
        format!("[auth.auth0]\nbase_url = \"{}\"\naudience = \"https://api.example.com\"", auth0.url);
    assert_eq!(sign_in_through("auth0", &section).await["subject"], "ada-1");
    assert_eq!(auth0.authorize_requests()[0]["audience"], "https://api.example.com");

    let cognito = fake_oidc_at("/eu-west-1_AbC", Quirks::default()).await;
    let section = format!("[auth.cognito]\nbase_url = \"{}/eu-west-1_AbC\"", cognito.url);
    assert_eq!(sign_in_through("cognito", &section).await["subject"], "ada-1");

    let gitlab = fake_oidc_at("", Quirks::default()).await;
    let section = format!("[auth.gitlab]\nbase_url = \"{}\"", gitlab.url);
    assert_eq!(sign_in_through("gitlab", &section).await["subject"], "ada-1");
}
