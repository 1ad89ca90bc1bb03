//! `mcpgate serve` with a built-in provider (`provider = "<name>"`, `[auth.<name>] base_url`
//! pointed at a fake of the provider on loopback): a user signs in, and the stdio MCP server
//! behind the gateway is started with the identity the provider vouched for; the allow-list
//! turns an outsider away. A machine client of the `client_credentials` grant reaches the
//! server as itself, without the provider, by its secret or by an assertion signed with its key.

use crate::{fake_github, fake_oidc, gateway, oauth_client, process, provider_flow};

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
    let stdio =
        format!("command = [\"{}\"]\nper_session = true", example_path("stdio_test_server").display());
    gateway_before(&stdio, provider, client_id, secret, sections).await
}

/// [`gateway`] before the upstream `upstream` (the `[upstream]` section's keys).
async fn gateway_before(
    upstream: &str,
    provider: &str,
    client_id: &str,
    secret: &str,
    sections: &str,
) -> (Running, Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[upstream]\n{upstream}\n\n\
         [auth]\nprovider = \"{provider}\"\nclient_id = \"{client_id}\"\nclient_secret_env = \"PROVIDER_SECRET\"\n\
         scopes = [\"mcp:read\"]\n\n{sections}\n\n[store]\nurl = \"memory://\"\n",
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

/// A `/token` request to the gateway, with HTTP Basic `basic` when given: status and JSON body.
async fn token_request(
    proxy: &Proxy,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().post(format!("{}/token", proxy.base)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
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

/// A fake OpenID provider whose issuer is `{base}{path}`, its access tokens living 2 s: Ada
/// (of example.com, signed in) and Eve (of elsewhere.example).
#[tokio::test]
async fn a_machine_client_reaches_the_mcp_server_as_itself_without_the_provider() {
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[]).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("ci-secret");
    std::fs::write(&secret_file, "ci-secret-value\n").unwrap();
    let sections = format!(
        "[auth.github]\nbase_url = \"{}\"\n\n[[auth.clients]]\nclient_id = \"nightly-ci\"\n\
         client_secret_file = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        fake.url,
        secret_file.display()
    );
    let (_gateway, proxy, _dir) =
        gateway("github", fake_github::CLIENT_ID, fake_github::CLIENT_SECRET, &sections).await;
    let resource = format!("{}/mcp", proxy.base);
    let form = [("grant_type", "client_credentials"), ("resource", resource.as_str())];
    let token = |secret: &'static str| token_request(&proxy, Some(("nightly-ci", secret)), &form);
    let (status, body) = token("wrong").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = token("ci-secret-value").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());
    let me = whoami(&proxy, body["access_token"].as_str().unwrap()).await;
    assert_eq!((me["subject"].as_str(), me["client_id"].as_str()), (Some("nightly-ci"), Some("nightly-ci")));
    assert_eq!(me["kind"], "machine");
    // The provider was never asked: a machine has no account there.
    assert!(fake.token_requests().is_empty());
}

/// The same machine, by `private_key_jwt`: its public keys in the file (JWKS as JSON text),
/// an assertion it signed instead of a secret, each assertion once.
#[tokio::test]
async fn a_machine_client_with_keys_reaches_the_mcp_server_by_a_signed_assertion() {
    use mcpgate_test_support::{TestKey, jwks, now};
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[]).await;
    let key = TestKey::ec256("ci-2026");
    let sections = format!(
        "[auth.github]\nbase_url = \"{}\"\n\n[[auth.clients]]\nclient_id = \"nightly-ci\"\n\
         jwks = '{}'\ngrant_types = [\"client_credentials\"]\n",
        fake.url,
        jwks(&[&key])
    );
    let (_gateway, proxy, _dir) =
        gateway("github", fake_github::CLIENT_ID, fake_github::CLIENT_SECRET, &sections).await;
    let metadata: serde_json::Value =
        reqwest::get(format!("{}/.well-known/oauth-authorization-server", proxy.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&"private_key_jwt".into())
    );
    let assertion = key.sign(&serde_json::json!({
        "iss": "nightly-ci", "sub": "nightly-ci", "aud": format!("{}/token", proxy.base),
        "exp": now() + 60, "jti": "run-4711",
    }));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
    ];
    let token = || token_request(&proxy, None, &form);
    let (status, body) = token().await;
    assert_eq!(status, 200, "{body}");
    let me = whoami(&proxy, body["access_token"].as_str().unwrap()).await;
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("nightly-ci"), Some("machine")));
    let (status, body) = token().await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "replayed: {body}");
}

/// In proxy mode too, an API key is a bearer token beside mcpgate's own access tokens.
#[tokio::test]
async fn an_api_key_reaches_the_mcp_server_in_proxy_mode() {
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[]).await;
    let (key, digest) = mcpgate::verify::new_api_key();
    let sections = format!(
        "[auth.github]\nbase_url = \"{}\"\n\n[[auth.api_keys]]\nname = \"ops\"\ndigest = \"{digest}\"\nscopes = [\"mcp:read\"]\n",
        fake.url
    );
    let (_gateway, proxy, _dir) =
        gateway("github", fake_github::CLIENT_ID, fake_github::CLIENT_SECRET, &sections).await;
    use secrecy::ExposeSecret;
    let me = whoami(&proxy, key.expose_secret()).await;
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("api_key:ops"), Some("api_key")));
    let refused = reqwest::Client::new()
        .post(format!("{}/mcp", proxy.base))
        .bearer_auth(mcpgate::verify::new_api_key().0.expose_secret())
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

/// An RFC 7662 introspection endpoint on loopback for client `gw`/`gw-secret`: `opaque-svc` is
/// an active token of `svc-7`; anything else is inactive. Counts its calls.
async fn introspection_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::State;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/introspect",
            axum::routing::post(
                |State(calls): State<std::sync::Arc<AtomicUsize>>,
                 headers: http::HeaderMap,
                 form: axum::Form<std::collections::HashMap<String, String>>| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "gw:gw-secret"));
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
                        return (http::StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "invalid_client"})));
                    }
                    let body = if form.get("token").map(String::as_str) == Some("opaque-svc") {
                        serde_json::json!({"active": true, "sub": "svc-7", "scope": "mcp:read", "client_kind": "machine",
                                           "exp": mcpgate_test_support::now() + 300})
                    } else {
                        serde_json::json!({"active": false})
                    };
                    (http::StatusCode::OK, axum::Json(body))
                },
            ),
        )
        .with_state(calls.clone());
    let addr = mcpgate_test_support::serve(app).await;
    (format!("http://{addr}/introspect"), calls)
}

/// Beside its own tokens, the gateway accepts a company issuer's JWTs and, by introspection,
/// opaque tokens; each token goes to the verifier of the issuer it names and no other, and
/// none can claim mcpgate's own claims.
#[tokio::test]
async fn other_issuers_tokens_are_accepted_each_by_its_own_verifier() {
    use mcpgate_test_support::{JwksServer, TestKey, jwks, now};
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[]).await;
    let corp = TestKey::rsa("corp-1");
    let keys = JwksServer::start(jwks(&[&corp])).await;
    let (introspect, calls) = introspection_endpoint().await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("gw-secret");
    std::fs::write(&secret_file, "gw-secret").unwrap();
    let sections = format!(
        "[auth.github]\nbase_url = \"{}\"\n\n\
         [[auth.accept]]\nissuer = \"https://corp.example\"\njwks_uri = \"{}\"\naudience = \"api://mcp\"\n\n\
         [[auth.accept]]\nintrospection_url = \"{introspect}\"\nclient_id = \"gw\"\nclient_secret_file = \"{}\"\n\n\
         [[auth.clients]]\nclient_id = \"ci\"\nclient_secret_file = \"{}\"\ngrant_types = [\"client_credentials\"]\n",
        fake.url,
        keys.url,
        secret_file.display(),
        secret_file.display()
    );
    let (_gateway, proxy, _dir) =
        gateway("github", fake_github::CLIENT_ID, fake_github::CLIENT_SECRET, &sections).await;
    let corp_claims = |iss: &str, aud: &str| {
        serde_json::json!({"iss": iss, "sub": "emp-7", "aud": aud, "scope": "mcp:read", "exp": now() + 300,
                           "client_kind": "machine", "gid": "not-yours"})
    };
    let me = whoami(&proxy, &corp.sign(&corp_claims("https://corp.example", "api://mcp"))).await;
    // Its own claim of being a machine is not taken: only mcpgate's tokens say what kind a caller is.
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("emp-7"), Some("user")));
    let me = whoami(&proxy, "opaque-svc").await;
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("svc-7"), Some("user")));
    // The gateway's own tokens still reach its own verifier, by their issuer.
    let (_, own) =
        token_request(&proxy, Some(("ci", "gw-secret")), &[("grant_type", "client_credentials")]).await;
    let me = whoami(&proxy, own["access_token"].as_str().unwrap()).await;
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("ci"), Some("machine")));

    let status = |token: String| {
        let base = proxy.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/mcp"))
                .bearer_auth(token)
                .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let introspected = calls.load(std::sync::atomic::Ordering::SeqCst);
    let refused = [
        // An issuer nobody listed, though signed by a key the gateway knows.
        corp.sign(&corp_claims("https://unlisted.example", "api://mcp")),
        // The company's issuer, another audience.
        corp.sign(&corp_claims("https://corp.example", "api://elsewhere")),
        // The company's issuer, another key.
        TestKey::rsa2("corp-1").sign(&corp_claims("https://corp.example", "api://mcp")),
        // The gateway's own issuer, signed by someone else.
        corp.sign(&corp_claims(&proxy.base, &format!("{}/mcp", proxy.base))),
    ];
    for token in refused {
        assert_eq!(status(token).await, 401);
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), introspected, "JWTs are never introspected");
    assert_eq!(status("opaque-unknown".into()).await, 401);
}

/// Enterprise-managed authorization (SEP-990): an agent redeems the company IdP's identity
/// assertion for Ada at the gateway, and reaches the MCP server as Ada, once per assertion.
#[tokio::test]
async fn an_identity_assertion_of_an_enterprise_idp_reaches_the_mcp_server_as_its_user() {
    use mcpgate_test_support::{JwksServer, TestKey, jwks, now};
    let fake = FakeGitHub::start(AppKind::OAuthApp, &[]).await;
    let idp_key = TestKey::rsa("corp-idp");
    let keys = JwksServer::start(jwks(&[&idp_key])).await;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("agent-secret");
    std::fs::write(&secret_file, "agent-secret").unwrap();
    let sections = format!(
        "[auth.github]\nbase_url = \"{}\"\n\n\
         [[auth.clients]]\nclient_id = \"agent\"\nclient_secret_file = \"{}\"\n\
         grant_types = [\"urn:ietf:params:oauth:grant-type:jwt-bearer\"]\n\n\
         [[auth.enterprise_idps]]\nissuer = \"https://login.corp.example\"\njwks_uri = \"{}\"\nallowed_clients = [\"agent\"]\n",
        fake.url,
        secret_file.display(),
        keys.url
    );
    let (_gateway, proxy, _dir) =
        gateway("github", fake_github::CLIENT_ID, fake_github::CLIENT_SECRET, &sections).await;
    let mut header = jsonwebtoken::Header::new(idp_key.alg);
    header.kid = Some(idp_key.kid.clone());
    header.typ = Some("oauth-id-jag+jwt".into());
    let claims = serde_json::json!({
        "iss": "https://login.corp.example", "sub": "ada-42", "aud": proxy.base, "client_id": "agent",
        "resource": format!("{}/mcp", proxy.base), "jti": "jag-1", "exp": now() + 120, "iat": now(),
        "email": "ada@corp.example", "email_verified": true,
    });
    let assertion = jsonwebtoken::encode(&header, &claims, &idp_key.encoding).unwrap();
    let form =
        [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
    let redeem = || token_request(&proxy, Some(("agent", "agent-secret")), &form);
    let (status, body) = redeem().await;
    assert_eq!(status, 200, "{body}");
    let me = whoami(&proxy, body["access_token"].as_str().unwrap()).await;
    assert_eq!((me["subject"].as_str(), me["kind"].as_str()), (Some("ada-42"), Some("user")));
    assert_eq!((me["client_id"].as_str(), me["email"].as_str()), (Some("agent"), Some("ada@corp.example")));
    let (status, body) = redeem().await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "replayed: {body}");
    // The provider was never asked: the enterprise IdP vouched for Ada.
    assert!(fake.token_requests().is_empty());
}

async fn fake_oidc_at(path: &str, quirks: Quirks) -> FakeOidc {
    let fake = FakeOidc::start(Quirks {
        issuer: Some(format!("{{base}}{path}")),
        token_lifetime: Some(2),
        ..quirks
    })
    .await;
    fake.add_user(
        "ada-1",
        serde_json::json!({"email": "ada@example.com", "email_verified": true, "name": "Ada",
                           "preferred_username": "ada", "hd": "example.com", "tid": "tenant-1", "xms_edov": true,
                           "groups": ["staff"]}),
    );
    fake.add_user(
        "eve-1",
        serde_json::json!({"email": "eve@elsewhere.example", "email_verified": true, "hd": "example.com", "tid": "tenant-1"}),
    );
    fake.sign_in_as("ada-1");
    fake
}

/// Through a gateway for `provider` configured by `section` (plus an allow-list of
/// example.com emails): Ada signs in and reaches the MCP server as herself; once the
/// provider's token is due, mcpgate's refresh renews it at the provider; Eve is turned away.
/// What the MCP server saw of Ada.
async fn sign_in_through(provider: &str, section: &str, fake: &FakeOidc) -> serde_json::Value {
    let section = format!("{section}\n\n[auth.allowed_users]\nemail_domains = [\"example.com\"]");
    let (_gateway, proxy, _dir) =
        gateway(provider, fake_oidc::CLIENT_ID, fake_oidc::CLIENT_SECRET, &section).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let me = whoami(&proxy, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me["subject"], "ada-1");

    // Whole seconds: past 2 s the provider's token is due whatever the second boundaries.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, refreshed) = provider_flow::refresh(&proxy, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    let renewed = fake
        .token_requests()
        .iter()
        .any(|form| form.get("grant_type").map(String::as_str) == Some("refresh_token"));
    assert!(renewed, "{provider}: the provider's token was renewed at the provider");

    fake.sign_in_as("eve-1");
    match provider_flow::sign_in(&proxy).await {
        SignIn::Page(403, page) => assert!(page.contains("not allowed"), "{page}"),
        other => panic!("{provider}: an outsider must be refused: {other:?}"),
    }
    me
}

/// An environment variable of the stdio server the gateway starts for `access_token`'s session.
async fn env_of(proxy: &Proxy, access_token: &str, name: &str) -> String {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", proxy.base))
            .auth_header(access_token),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let arguments = serde_json::json!({"name": name}).as_object().unwrap().clone();
    let result = client.call_tool(CallToolRequestParams::new("env").with_arguments(arguments)).await.unwrap();
    client.cancel().await.unwrap();
    result.content[0].as_text().unwrap().text.clone()
}

/// `[upstream.token_exchange]` against a Keycloak-shaped RFC 8693 endpoint: the MCP server
/// gets a token for the downstream API, exchanged from Ada's provider token once and reused by
/// later sessions, exchanged again once it nears expiry.
#[tokio::test]
async fn a_downstream_token_is_exchanged_once_and_again_near_its_expiry() {
    let quirks =
        Quirks { exchange_targets: vec!["reports-api"], exchange_lifetime: Some(4), ..Default::default() };
    let fake = fake_oidc_at("/realms/acme", quirks).await;
    let section = format!(
        "[auth.keycloak]\nbase_url = \"{}\"\nrealm = \"acme\"\n\n[upstream.token_exchange]\naudience = \"reports-api\"",
        fake.url
    );
    let (_gateway, proxy, _dir) =
        gateway("keycloak", fake_oidc::CLIENT_ID, fake_oidc::CLIENT_SECRET, &section).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let access = tokens["access_token"].as_str().unwrap();
    let first = env_of(&proxy, access, "MCPGATE_DOWNSTREAM_TOKEN").await;
    let exchanged = fake.exchanged();
    assert_eq!(exchanged.len(), 1);
    assert_eq!((first.as_str(), exchanged[0].user.as_str()), (exchanged[0].token.as_str(), "ada-1"));
    assert_eq!((exchanged[0].target.as_str(), exchanged[0].flow), ("reports-api", "token_exchange"));
    // Another session: the same token, no second exchange.
    assert_eq!(env_of(&proxy, access, "MCPGATE_DOWNSTREAM_TOKEN").await, first);
    assert_eq!(fake.exchanged().len(), 1);
    // In its last second (a quarter of its four), it is exchanged again.
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let second = env_of(&proxy, access, "MCPGATE_DOWNSTREAM_TOKEN").await;
    assert_eq!(fake.exchanged().len(), 2);
    assert_ne!(second, first);
    assert_eq!(second, fake.exchanged()[1].token);
    // The user's own provider token is not what the server got.
    assert_eq!(env_of(&proxy, access, "MCPGATE_PROVIDER_TOKEN").await, "(unset)");
}

/// An HTTP upstream gets the downstream token as `X-Mcpgate-Downstream-Token`, never one the
/// client sent under that name.
#[tokio::test]
async fn an_http_upstream_gets_the_downstream_token_as_a_header() {
    let quirks = Quirks { exchange_targets: vec!["reports-api"], ..Default::default() };
    let fake = fake_oidc_at("/realms/acme", quirks).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
    let upstream = axum::Router::new().route(
        "/mcp",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: http::HeaderMap| async move {
                let token = headers.get("x-mcpgate-downstream-token").map(|v| v.to_str().unwrap().to_owned());
                seen.lock().unwrap().push(token);
                axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
            }
        }),
    );
    let addr = mcpgate_test_support::serve(upstream).await;
    let section = format!(
        "[auth.keycloak]\nbase_url = \"{}\"\nrealm = \"acme\"\n\n[upstream.token_exchange]\naudience = \"reports-api\"",
        fake.url
    );
    let upstream = format!("url = \"http://{addr}/mcp\"");
    let (_gateway, proxy, _dir) =
        gateway_before(&upstream, "keycloak", fake_oidc::CLIENT_ID, fake_oidc::CLIENT_SECRET, &section).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let response = reqwest::Client::new()
        .post(format!("{}/mcp", proxy.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("x-mcpgate-downstream-token", "forged-by-the-client")
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let exchanged = fake.exchanged();
    assert_eq!(exchanged.len(), 1);
    assert_eq!(*seen.lock().unwrap(), [Some(exchanged[0].token.clone())]);
}

/// Entra's on-behalf-of flow (its own grant): with `provider = "azure"` the exchange names the
/// API by scope and asks for `requested_token_use=on_behalf_of`.
#[tokio::test]
async fn entra_gives_the_downstream_token_on_behalf_of_the_user() {
    let quirks = Quirks {
        refused_authorize_params: vec!["resource"],
        exchange_targets: vec!["api://reports/.default"],
        ..Default::default()
    };
    let fake = fake_oidc_at("/{tenantid}/v2.0", quirks).await;
    let section = format!(
        "[auth.azure]\nbase_url = \"{}\"\n\n[upstream.token_exchange]\nscope = \"api://reports/.default\"",
        fake.url
    );
    let (_gateway, proxy, _dir) =
        gateway("azure", fake_oidc::CLIENT_ID, fake_oidc::CLIENT_SECRET, &section).await;
    let tokens = provider_flow::sign_in(&proxy).await.tokens();
    let token = env_of(&proxy, tokens["access_token"].as_str().unwrap(), "MCPGATE_DOWNSTREAM_TOKEN").await;
    let exchanged = fake.exchanged();
    assert_eq!(exchanged.len(), 1);
    assert_eq!((token.as_str(), exchanged[0].flow), (exchanged[0].token.as_str(), "on_behalf_of"));
    let request = fake
        .token_requests()
        .into_iter()
        .find(|form| form.get("requested_token_use").map(String::as_str) == Some("on_behalf_of"))
        .unwrap();
    assert_eq!(request["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    assert_eq!(request["scope"], "api://reports/.default");
}

#[tokio::test]
async fn google_by_its_section() {
    let fake = fake_oidc_at("", Quirks { bare_issuer_in_tokens: true, ..Default::default() }).await;
    let section = format!("[auth.google]\nbase_url = \"{}\"\nhosted_domain = \"example.com\"", fake.url);
    assert_eq!(sign_in_through("google", &section, &fake).await["email"], "ada@example.com");
    assert_eq!(fake.authorize_requests()[0]["hd"], "example.com");
}

#[tokio::test]
async fn azure_by_its_section() {
    let quirks = Quirks { refused_authorize_params: vec!["resource"], ..Default::default() };
    let fake = fake_oidc_at("/{tenantid}/v2.0", quirks).await;
    let section = format!("[auth.azure]\nbase_url = \"{}\"\napi_scopes = true", fake.url);
    assert_eq!(sign_in_through("azure", &section, &fake).await["username"], "ada");
    assert!(
        fake.authorize_requests()[0]["scope"].ends_with(&format!("api://{}/mcp:read", fake_oidc::CLIENT_ID))
    );
}

#[tokio::test]
async fn keycloak_by_its_section() {
    let fake = fake_oidc_at("/realms/acme", Quirks::default()).await;
    let section = format!("[auth.keycloak]\nbase_url = \"{}\"\nrealm = \"acme\"", fake.url);
    assert_eq!(sign_in_through("keycloak", &section, &fake).await["groups"], "staff");
}

#[tokio::test]
async fn okta_by_its_section() {
    let fake =
        fake_oidc_at("/oauth2/default", Quirks { rotate_refresh_tokens: true, ..Default::default() }).await;
    sign_in_through("okta", &format!("[auth.okta]\nbase_url = \"{}\"", fake.url), &fake).await;
}

#[tokio::test]
async fn auth0_by_its_section() {
    let fake = fake_oidc_at("/", Quirks { rotate_refresh_tokens: true, ..Default::default() }).await;
    let section =
        format!("[auth.auth0]\nbase_url = \"{}\"\naudience = \"https://api.example.com\"", fake.url);
    sign_in_through("auth0", &section, &fake).await;
    assert_eq!(fake.authorize_requests()[0]["audience"], "https://api.example.com");
}

#[tokio::test]
async fn cognito_by_its_section() {
    let fake = fake_oidc_at("/eu-west-1_AbC", Quirks::default()).await;
    let section = format!("[auth.cognito]\nbase_url = \"{}/eu-west-1_AbC\"", fake.url);
    sign_in_through("cognito", &section, &fake).await;
}

#[tokio::test]
async fn gitlab_by_its_section() {
    let fake = fake_oidc_at("", Quirks::default()).await;
    sign_in_through("gitlab", &format!("[auth.gitlab]\nbase_url = \"{}\"", fake.url), &fake).await;
}

#[tokio::test]
async fn workos_by_its_section() {
    let fake = fake_oidc_at(
        "",
        Quirks { secret_in_body_only: true, rotate_refresh_tokens: true, ..Default::default() },
    )
    .await;
    sign_in_through("workos", &format!("[auth.workos]\nbase_url = \"{}\"", fake.url), &fake).await;
}
