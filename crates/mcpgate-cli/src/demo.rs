//! `mcpgate demo`: the whole experience on one machine with nothing to configure — mcpgate's
//! OAuth proxy with consent, the development provider (a login page that asks for a user name),
//! and an in-process MCP server with `whoami` and `echo`, one machine client (`demo-machine`,
//! client credentials) and one API key (`demo`). State lives under `./.mcpgate/`: the SQLite
//! store, the root secret, the machine client's secret and the API key, generated on first run
//! and kept for the next.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use mcpgate::OAuthProxy;
use mcpgate::authz::{ConfiguredClient, ConsentMode, GrantType};
use mcpgate::crypto::{Keyring, RootSecret, random_token};
use mcpgate::mcp::DemoServer;
use mcpgate::upstream::Upstream;
use mcpgate::verify::{ApiKey, ApiKeyDigest, ApiKeyVerifier, new_api_key};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::{ExposeSecret, SecretString};

use crate::devidp::DevProvider;
use crate::exit::RUNTIME_FAILURE;

const STATE_DIR: &str = ".mcpgate";
/// The one scope of the demo.
const DEMO_SCOPE: &str = "mcp:tools";

/// Runs the demo on `127.0.0.1:port`.
pub fn run(port: u16, log_format: crate::LogFormat) -> ExitCode {
    let runtime = match crate::server_runtime(log_format) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(demo(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgate demo: {e}");
            ExitCode::from(RUNTIME_FAILURE)
        }
    }
}

/// The machine client of the demo.
const MACHINE_CLIENT: &str = "demo-machine";
/// Where its secret is kept, under the state directory.
const MACHINE_SECRET_FILE: &str = "machine-secret";
/// Where the demo's API key is kept, under the state directory.
const API_KEY_FILE: &str = "api-key";

/// The root secret kept in `dir/secret` (readable by the owner only), made on first run.
fn demo_keyring(dir: &Path) -> Result<Keyring, String> {
    let path = kept_secret(dir, "secret", || RootSecret::generate().to_base64())?;
    Keyring::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The file `dir/name`, holding a secret made by `make` on first run (readable by the owner only).
fn kept_secret(
    dir: &Path,
    name: &str,
    make: impl FnOnce() -> SecretString,
) -> Result<std::path::PathBuf, String> {
    let path = dir.join(name);
    if !path.exists() {
        write_private(&path, make().expose_secret())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(path)
}

/// The demo's API key (`demo`, the demo's scope), kept in `dir`.
fn api_key(dir: &Path) -> Result<ApiKeyVerifier, String> {
    let path = kept_secret(dir, API_KEY_FILE, || new_api_key().0)?;
    let key = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let digest = ApiKeyDigest::of(&SecretString::from(key.trim().to_owned()));
    let key = ApiKey { name: "demo".into(), digest, scopes: vec![DEMO_SCOPE.into()], expires_at: None };
    ApiKeyVerifier::new(vec![key]).map_err(|e| e.to_string())
}

/// The demo's machine client, its secret kept in `dir`.
fn machine_client(dir: &Path) -> Result<ConfiguredClient, String> {
    let path = kept_secret(dir, MACHINE_SECRET_FILE, random_token)?;
    let secret =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(ConfiguredClient {
        client_id: MACHINE_CLIENT.into(),
        client_secret: Some(SecretString::from(secret.trim().to_owned())),
        keys: None,
        redirect_uris: vec![],
        client_name: Some("mcpgate demo machine".into()),
        scope: None,
        grant_types: vec![GrantType::ClientCredentials],
    })
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

async fn demo(port: u16) -> Result<(), String> {
    let dir = Path::new(STATE_DIR);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let keyring = demo_keyring(dir)?;
    let machine = machine_client(dir)?;
    let api_key = api_key(dir)?;
    let store_url = format!("sqlite://{}", dir.join("demo.db").display());
    let store = mcpgate::store::open(&store_url).await.map_err(|e| e.to_string())?;

    let base = format!("http://127.0.0.1:{port}");
    let provider = DevProvider::new(&format!("{base}/auth/callback"));
    let proxy = OAuthProxy::builder(&base)
        .upstream(Upstream::new(provider.upstream_config(&base, &base)))
        .keyring(keyring)
        .store(store.clone())
        .scopes([DEMO_SCOPE])
        .api_keys(api_key)
        .consent(ConsentMode::Always)
        .configure(|settings| settings.clients = vec![machine])
        .build()
        .map_err(|e| e.to_string())?;
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(["127.0.0.1".to_owned(), "localhost".to_owned()]),
    );
    let mut app = proxy.protect(mcp).merge(provider.router()).merge(crate::health::routes(Some(store)));
    if let Some(handle) = crate::metrics::install() {
        app = crate::metrics::serve(app, handle);
    }
    let hosts = crate::host_check::AllowedHosts::new(&base, &[], Default::default())?;
    let app = tower::Layer::layer(&hosts.layer(), app);

    let listener = crate::listener::NoDelayListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e} (choose another with --port)"))?;
    let mcp_url = proxy.resource().resource().to_owned();
    println!(
        "\nmcpgate demo: an MCP server with `whoami` and `echo`, behind OAuth\n\n  MCP URL: {mcp_url}\n\n\
         Connect a client, then sign in with any user name on the development login page:\n  \
         MCP Inspector:   npx @modelcontextprotocol/inspector   (Streamable HTTP, URL above)\n  \
         Claude Code:     claude mcp add --transport http mcpgate-demo {mcp_url}\n  \
         TypeScript SDK:  new StreamableHTTPClientTransport(new URL(\"{mcp_url}\"), {{ authProvider }})\n\n\
         A machine client ({MACHINE_CLIENT}) gets a token without a browser (docs/machines.md):\n  \
         curl -s -u \"{MACHINE_CLIENT}:$(cat {STATE_DIR}/{MACHINE_SECRET_FILE})\" -d grant_type=client_credentials {base}/token\n\
         An API key (demo) is a bearer token as it is: Authorization: Bearer $(cat {STATE_DIR}/{API_KEY_FILE})\n\n\
         State (store, secret) is kept in ./{STATE_DIR}/. Ctrl-C stops.\n"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::listener::serve(listener, app, shutdown).await.map_err(|e| e.to_string())
}
