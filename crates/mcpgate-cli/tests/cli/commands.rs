//! The `mcpgate` binary as a user runs it.

use std::process::Command;

use mcpgate::crypto::Keyring;

fn mcpgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcpgate")).args(args).output().unwrap()
}

#[test]
fn keygen_prints_a_usable_fresh_secret() {
    let first = mcpgate(&["keygen"]);
    assert!(first.status.success());
    let secret = String::from_utf8(first.stdout).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 43, "32 bytes in URL-safe base64");
    assert!(Keyring::parse(secret).is_ok(), "MCPGATE_SECRET accepts what keygen prints");
    let second = String::from_utf8(mcpgate(&["keygen"]).stdout).unwrap();
    assert_ne!(secret, second.trim());
}

#[test]
fn version_and_help() {
    let version = mcpgate(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8(version.stdout).unwrap().starts_with("mcpgate "));
    let no_args = mcpgate(&[]);
    assert!(!no_args.status.success());
    assert!(String::from_utf8(no_args.stderr).unwrap().contains("keygen"));
}

/// `mcpgate check --config <file with text>` with `env` added to the environment.
fn check(text: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcpgate.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["check", "--config", path.to_str().unwrap()])
        .env_remove("MCPGATE_SECRET")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code().unwrap(), text(output.stdout), text(output.stderr))
}

fn proxy_config(discovery_url: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:8000"

[upstream]
url = "http://127.0.0.1:3000/mcp"

[auth]
client_id = "mcpgate"
client_secret_env = "TEST_IDP_SECRET"
scopes = ["mcp:read"]

[auth.oidc]
discovery_url = "{discovery_url}"
"#
    )
}

const SECRET: (&str, &str) = ("MCPGATE_SECRET", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA");
const IDP_SECRET: (&str, &str) = ("TEST_IDP_SECRET", "s3cret-at-the-idp");

/// An OpenID provider on loopback that publishes its discovery document; it and its issuer.
async fn provider_with_discovery() -> (wiremock::MockServer, String) {
    let idp = wiremock::MockServer::start().await;
    let issuer = idp.uri();
    wiremock::Mock::given(wiremock::matchers::path("/.well-known/openid-configuration"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks")})))
        .mount(&idp)
        .await;
    (idp, issuer)
}

#[tokio::test]
async fn check_accepts_a_good_file_whose_provider_answers() {
    let (_idp, issuer) = provider_with_discovery().await;
    let config = proxy_config(&format!("{issuer}/.well-known/openid-configuration"));
    let (code, stdout, stderr) =
        tokio::task::spawn_blocking(move || check(&config, &[SECRET, IDP_SECRET])).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok — OAuth proxy for provider oidc"), "{stdout}");
    assert!(!stdout.contains(IDP_SECRET.1) && !stderr.contains(IDP_SECRET.1), "no secret is printed");
}

#[test]
fn check_names_each_broken_key_with_its_line_and_exits_2() {
    let broken = proxy_config("https://idp.example/.well-known/openid-configuration")
        .replace("scopes = [\"mcp:read\"]", "scopes = \"mcp:read\"");
    let (code, _, stderr) = check(&broken, &[SECRET, IDP_SECRET]);
    assert_eq!(code, 2);
    assert!(stderr.contains("line 10: auth.scopes:"), "{stderr}");

    let unknown = proxy_config("https://idp.example/x").replace("[upstream]", "[upstream]\ntimeout = 3");
    let (code, _, stderr) = check(&unknown, &[SECRET, IDP_SECRET]);
    assert_eq!(code, 2);
    assert!(stderr.contains("line 5: upstream.timeout: unknown field"), "{stderr}");

    // Secrets that are not where the file says.
    let (code, _, stderr) = check(&proxy_config("https://idp.example/x"), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("secrets.secret_env: the root secret is unusable"), "{stderr}");
    assert!(
        stderr.contains("auth.client_secret_env: the environment variable TEST_IDP_SECRET is not set"),
        "{stderr}"
    );

    let (code, _, stderr) = check("this is not toml", &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) =
        check(&proxy_config("x"), &[SECRET, IDP_SECRET, ("MCPGATE_SERVER__LISTEN", "nowhere")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("MCPGATE_SERVER__LISTEN: server.listen:"), "{stderr}");
}

#[test]
fn check_exits_1_when_the_provider_cannot_be_reached() {
    let config = proxy_config("http://127.0.0.1:1/.well-known/openid-configuration");
    let (code, _, stderr) = check(&config, &[SECRET, IDP_SECRET]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("auth.oidc.discovery_url: cannot fetch the discovery document"), "{stderr}");
}

/// A JWK set holding RFC 7517's example P-256 public key, at `path` on `server`.
async fn serve_example_keys(server: &wiremock::MockServer, path: &str) {
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "1", "use": "sig",
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
    wiremock::Mock::given(wiremock::matchers::path(path))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"keys": [jwk]})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn check_fetches_the_resource_mode_keys_and_tells_unusable_from_unreachable() {
    let keys = wiremock::MockServer::start().await;
    serve_example_keys(&keys, "/good").await;
    wiremock::Mock::given(wiremock::matchers::path("/empty"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({"keys": []})))
        .mount(&keys)
        .await;
    let resource = |path: &str| {
        format!(
            "[upstream]\nurl = \"http://127.0.0.1:3000/mcp\"\n\n[auth]\nmode = \"resource\"\n\n[auth.resource]\n\
             jwks_uri = \"{}{path}\"\nissuer = \"https://as.example.com\"\n",
            keys.uri()
        )
    };
    let (good, empty, missing) = (resource("/good"), resource("/empty"), resource("/missing"));
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || check(&good, &[SECRET])).await.unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, _, stderr) = tokio::task::spawn_blocking(move || check(&empty, &[SECRET])).await.unwrap();
    assert_eq!(code, 2, "a key set without keys is a configuration to fix: {stderr}");
    assert!(stderr.contains("auth.resource.jwks_uri: the answer is not a JWK set"), "{stderr}");
    let (code, _, stderr) = tokio::task::spawn_blocking(move || check(&missing, &[SECRET])).await.unwrap();
    assert_eq!(code, 1, "a 404 may pass: {stderr}");
    assert!(stderr.contains("auth.resource.jwks_uri: cannot fetch the keys: status 404"), "{stderr}");
}

/// The keys of clients, other issuers and enterprise IdPs are fetched too, each named by its key.
#[tokio::test]
async fn check_fetches_every_trusted_key_set() {
    let (idp, issuer) = provider_with_discovery().await;
    serve_example_keys(&idp, "/keys").await;
    let trusting = |client_keys: &str, idp_keys: &str| {
        format!(
            "{}\n[[auth.clients]]\nclient_id = \"agent\"\njwks_uri = \"{issuer}{client_keys}\"\n\
             grant_types = [\"client_credentials\", \"urn:ietf:params:oauth:grant-type:jwt-bearer\"]\n\n\
             [[auth.enterprise_idps]]\nissuer = \"https://login.corp.example\"\njwks_uri = \"{issuer}{idp_keys}\"\n",
            proxy_config(&format!("{issuer}/.well-known/openid-configuration"))
        )
    };
    let (good, missing) = (trusting("/keys", "/keys"), trusting("/keys", "/missing"));
    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || check(&good, &[SECRET, IDP_SECRET])).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || check(&missing, &[SECRET, IDP_SECRET])).await.unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("auth.enterprise_idps[0].jwks_uri: cannot fetch the keys: status 404"),
        "{stderr}"
    );
}

#[test]
fn check_finds_a_stdio_servers_program_or_names_the_key() {
    let stdio = |command: &str| {
        format!(
            "[upstream]\ncommand = [{command}, \"--stdio\"]\n\n[auth]\nmode = \"resource\"\n\n[auth.resource]\n\
             jwks_uri = \"http://127.0.0.1:1/jwks\"\nissuer = \"https://as.example.com\"\n"
        )
    };
    let (code, _, stderr) = check(&stdio("\"no-such-mcp-server\""), &[SECRET]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("upstream.command: the program \"no-such-mcp-server\" is not found on PATH"),
        "{stderr}"
    );
    // A program that exists passes this check (the keys' URL is down: exit 1, not 2).
    let (code, _, stderr) = check(&stdio("\"sh\""), &[SECRET]);
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("upstream.command"), "{stderr}");
}

/// Every route is checked — its program among them — and the summary has a line per route.
#[tokio::test]
async fn check_validates_every_route_and_lists_them() {
    let keys = wiremock::MockServer::start().await;
    serve_example_keys(&keys, "/jwks").await;
    let config = |program: &str| {
        format!(
            "[auth]\nmode = \"resource\"\n\n[auth.resource]\njwks_uri = \"{}/jwks\"\nissuer = \"https://as.example.com\"\n\n\
             [[routes]]\npath = \"/a/mcp\"\nurl = \"http://127.0.0.1:3000/mcp\"\nscopes = [\"a:read\"]\n\n\
             [[routes]]\npath = \"/b/mcp\"\ncommand = [\"{program}\"]\n\n\
             [[routes]]\npath = \"/open/mcp\"\nurl = \"http://127.0.0.1:3001/mcp\"\nauth = \"none\"\n\n\
             [store]\nurl = \"redis://gw:hunter2@127.0.0.1:1/0\"\n",
            keys.uri()
        )
    };
    let (good, missing) = (config("sh"), config("no-such-mcp-server"));
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || check(&good, &[SECRET])).await.unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in [
        "MCP at http://127.0.0.1:8000/a/mcp → http://127.0.0.1:3000/mcp (identity forwarded, scopes [\"a:read\"])",
        "MCP at http://127.0.0.1:8000/b/mcp → stdio `sh` (shared)",
        "MCP at http://127.0.0.1:8000/open/mcp → http://127.0.0.1:3001/mcp (public: no token, nothing forwarded)",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
    assert!(stdout.contains("store redis://gw:***@127.0.0.1:1/0") && !stdout.contains("hunter2"), "{stdout}");
    let (code, _, stderr) = tokio::task::spawn_blocking(move || check(&missing, &[SECRET])).await.unwrap();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("routes[1].command: the program \"no-such-mcp-server\" is not found on PATH"),
        "{stderr}"
    );
}

#[test]
fn an_empty_or_sectionless_file_names_the_missing_sections_and_every_message_ends_a_line() {
    for text in ["", "# nothing here\n", "[server]\nlisten = \"127.0.0.1:8000\"\n"] {
        for command in ["check", "serve"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mcpgate.toml");
            std::fs::write(&path, text).unwrap();
            let output = mcpgate(&[command, "--config", path.to_str().unwrap()]);
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(output.status.code(), Some(2), "{command} {text:?}: {stderr}");
            assert!(stderr.contains("upstream: the [upstream] section is missing"), "{stderr}");
            assert!(stderr.contains("auth: the [auth] section is missing"), "{stderr}");
            assert!(!stderr.contains("missing field"), "{stderr}");
            assert!(stderr.ends_with('\n'), "{stderr:?}");
        }
    }
}
