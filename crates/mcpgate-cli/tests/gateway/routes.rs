//! Several MCP servers behind one `mcpgate serve` (resource mode): an HTTP route and a stdio
//! route, each its own protected resource — its metadata, its challenge, tokens for it alone,
//! its own policy — and a public route served without a token, anonymous to its upstream and to
//! its policy, rate-limited, audited.

use crate::{gateway, process};

use gateway::{Issuer, echo_upstream, start_gateway, terminate};
use process::{example_path, free_port};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

/// A JSON-RPC request to `url`, with `token` when given: the status and the JSON answer.
pub(crate) async fn post(url: &str, token: Option<&str>, body: Value) -> (u16, http::HeaderMap, Value) {
    let mut request =
        reqwest::Client::new().post(url).header("accept", "application/json, text/event-stream").json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

/// A `tools/call` of `tool` without arguments.
pub(crate) fn call(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

#[tokio::test]
async fn three_routes_one_gateway_each_its_own_resource() {
    let issuer = Issuer::start().await;
    let github = echo_upstream("github").await;
    let open = echo_upstream("open").await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

{auth}
[audit]
file = "{audit}"

[[routes]]
path = "/github/mcp"
url = "{github}"
scopes = ["github:read"]
name = "GitHub"

[[routes]]
path = "/search/mcp"
command = ["{stdio}"]
per_session = true
scopes = ["search:read"]

[routes.policy]
[[routes.policy.rules]]
id = "no-crash"
tools = ["crash"]
effect = "deny"

[[routes]]
path = "/public/mcp"
url = "{open}"
auth = "none"
rate_limit = {{ per_minute = 60, burst = 8 }}

[routes.policy]
[[routes.policy.rules]]
id = "anonymous-no-secrets"
tools = ["secret"]
effect = "deny"
"#,
        auth = issuer.auth_config(),
        audit = audit.display(),
        stdio = example_path("stdio_test_server").display(),
    );
    let mut gateway = start_gateway(dir.path(), &config, &[], &base).await;
    let http = reqwest::Client::new();

    // Each protected route: its metadata at its own path, its challenge naming it.
    for (path, scope) in [("/github/mcp", "github:read"), ("/search/mcp", "search:read")] {
        let url = format!("{base}/.well-known/oauth-protected-resource{path}");
        let metadata: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(metadata["resource"], format!("{base}{path}"));
        assert_eq!(metadata["scopes_supported"], json!([scope]));
        let (status, headers, _) = post(&format!("{base}{path}"), None, call("whoami")).await;
        assert_eq!(status, 401);
        let challenge = headers["www-authenticate"].to_str().unwrap();
        let expected = format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource{path}\"");
        assert!(challenge.contains(&expected) && challenge.contains(scope), "{challenge}");
    }
    let root = http.get(format!("{base}/.well-known/oauth-protected-resource")).send().await.unwrap();
    assert_eq!(root.status(), 404, "no route owns the root metadata");

    // A token is for one route: accepted there, refused at the other.
    let for_github = issuer.token("alice", &format!("{base}/github/mcp"));
    let (status, _, answer) = post(&format!("{base}/github/mcp"), Some(&for_github), call("whoami")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["result"]["upstream"], "github");
    assert_eq!(answer["result"]["subject"], "alice");
    assert_eq!(answer["result"]["authorization"], Value::Null, "the token stays at the gateway");
    let (status, _, _) = post(&format!("{base}/search/mcp"), Some(&for_github), call("whoami")).await;
    assert_eq!(status, 401, "a GitHub token at search");

    // The stdio route, with a token for it, through an MCP client; its own policy.
    let for_search = issuer.token("bob", &format!("{base}/search/mcp"));
    let (status, _, _) = post(&format!("{base}/github/mcp"), Some(&for_search), call("whoami")).await;
    assert_eq!(status, 401, "a search token at GitHub");
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/search/mcp")).auth_header(for_search),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let me = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    let me: Value = serde_json::from_str(&me.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(me["subject"], "bob");
    let crash = client.call_tool(CallToolRequestParams::new("crash")).await;
    assert!(format!("{crash:?}").contains("-32003"), "the route's policy refused it: {crash:?}");
    client.cancel().await.unwrap();
    // GitHub's route has the top-level policy (none): what search refuses passes there.
    let (_, _, answer) = post(&format!("{base}/github/mcp"), Some(&for_github), call("crash")).await;
    assert_eq!(answer["result"]["upstream"], "github");

    // The public route: no token needed, none read or passed on, nobody named; its own policy.
    let public = format!("{base}/public/mcp");
    let (status, _, answer) = post(&public, None, call("whoami")).await;
    assert_eq!((status, &answer["result"]["upstream"]), (200, &json!("open")));
    assert_eq!(answer["result"]["subject"], Value::Null, "an anonymous caller is not named");
    let (status, _, answer) = post(&public, Some("not-a-token"), call("whoami")).await;
    assert_eq!(status, 200, "a credential is not read");
    assert_eq!(answer["result"]["authorization"], Value::Null, "nor passed on");
    let (_, _, denied) = post(&public, None, call("secret")).await;
    assert_eq!(denied["error"]["code"], -32003, "{denied}");
    let foreign = http
        .post(&public)
        .header("origin", "https://evil.example")
        .json(&call("whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "Origin-checked like the others");
    // Rate-limited per client address: the burst, then 429 with Retry-After.
    let mut limited = None;
    for _ in 0..12 {
        let (status, headers, _) = post(&public, None, call("whoami")).await;
        if status == 429 {
            limited = Some(headers);
            break;
        }
    }
    let limited = limited.expect("the public route is rate-limited");
    assert!(limited["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);

    terminate(&mut gateway).await;
    // The audit trail names each endpoint, and the anonymous caller as such.
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of = |endpoint: &str| lines.iter().filter(|l| l["endpoint"] == format!("{base}{endpoint}")).count();
    assert!(of("/github/mcp") >= 2 && of("/search/mcp") >= 2 && of("/public/mcp") >= 3, "{lines:?}");
    let secret = lines.iter().find(|l| l["tool"] == "secret").unwrap();
    assert_eq!((&secret["client_kind"], &secret["decision"]), (&json!("anonymous"), &json!("deny")));
    assert_eq!(secret["rule"], "anonymous-no-secrets");
}

/// Proxy mode: one authorization server and one sign-in page for both routes; a client signs
/// in for the one it names, and must name one.
#[cfg(feature = "external-tests")]
#[tokio::test]
async fn one_authorization_server_signs_in_for_each_route_and_binds_the_token_to_it() {
    use crate::{idp, oauth_client, sign_in};

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = idp::TestIdp::start(&[&format!("{base}/auth/callback")]);
    let github = echo_upstream("github").await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{auth}\n\
         [[routes]]\npath = \"/github/mcp\"\nurl = \"{github}\"\nscopes = [\"github:read\"]\n\n\
         [[routes]]\npath = \"/search/mcp\"\ncommand = [\"{stdio}\"]\nper_session = true\nscopes = [\"search:read\"]\n",
        auth = sign_in::proxy_config(&idp, "mcp:read", dir.path()),
        stdio = example_path("stdio_test_server").display(),
    );
    let mut gateway = start_gateway(dir.path(), &config, &sign_in::PROXY_ENV, &base).await;

    // The authorization server's metadata lists every route's scopes.
    let metadata: Value = reqwest::get(format!("{base}/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for scope in ["github:read", "search:read"] {
        assert!(metadata["scopes_supported"].as_array().unwrap().contains(&json!(scope)), "{metadata}");
    }
    // Naming no resource is refused: with two, either would be a guess.
    let redirect = "http://127.0.0.1:47031/callback";
    let client_id = oauth_client::register_public_client(&base, redirect, "No resource").await;
    let (_, challenge) = mcpgate::crypto::pkce::new_pair();
    let authorize = oauth_client::authorize_url(&base, &client_id, redirect, &challenge);
    let refused = idp::browser().get(authorize).send().await.unwrap();
    let back = url::Url::parse(refused.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(redirect), "{back}");
    assert!(back.query_pairs().any(|(k, v)| k == "error" && v == "invalid_target"), "{back}");

    let github_url = format!("{base}/github/mcp");
    let search_url = format!("{base}/search/mcp");
    let (_, for_github) =
        sign_in::sign_in_with(&base, &idp, "olga", &[("resource", &github_url), ("scope", "github:read")])
            .await;
    let (_, for_search) = sign_in::sign_in_with(&base, &idp, "olga", &[("resource", &search_url)]).await;
    let (status, _, answer) = post(&github_url, Some(&for_github), call("whoami")).await;
    assert_eq!((status, &answer["result"]["subject"]), (200, &json!("olga")));
    assert_eq!(post(&search_url, Some(&for_github), call("whoami")).await.0, 401);
    assert_eq!(post(&github_url, Some(&for_search), call("whoami")).await.0, 401);
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(search_url.as_str()).auth_header(for_search),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let me = client.call_tool(CallToolRequestParams::new("whoami")).await.unwrap();
    let me: Value = serde_json::from_str(&me.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(me["subject"], "olga");
    client.cancel().await.unwrap();
    terminate(&mut gateway).await;
}
