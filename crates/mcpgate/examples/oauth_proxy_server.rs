//! The demo MCP server (`whoami`, `echo`) behind mcpgate's OAuth proxy: MCP clients register
//! themselves, the user logs in at an OpenID Connect provider and consents, and the tools see
//! who called.
//!
//! ```text
//! export MCPGATE_SECRET=$(cargo run -q -- keygen)
//! export IDP_SECRET=...   # our client secret at the provider
//! cargo run --example oauth_proxy_server -- \
//!     --oidc-discovery-url https://accounts.example.com/.well-known/openid-configuration \
//!     --client-id my-client-id --client-secret-env IDP_SECRET --scope mcp:read
//! ```
//!
//! Register `<base-url>/auth/callback` as the redirect URI at the provider.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use clap::Parser;
use mcpgate::OAuthProxy;
use mcpgate::authz::ConsentMode;
use mcpgate::crypto::Keyring;
use mcpgate::mcp::DemoServer;
use mcpgate::redirect::RedirectAllowList;
use mcpgate::upstream::Upstream;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::SecretString;

/// The demo MCP server behind mcpgate's OAuth proxy.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The public URL clients reach (the issuer); default http://127.0.0.1:<port>.
    #[arg(long)]
    base_url: Option<String>,
    /// The provider's OpenID Connect discovery document.
    #[arg(long)]
    oidc_discovery_url: String,
    /// Our client id at the provider.
    #[arg(long)]
    client_id: String,
    /// Name of the environment variable holding our client secret at the provider.
    #[arg(long)]
    client_secret_env: String,
    /// A scope clients may ask for (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// When users approve a client: always, remember or off.
    #[arg(long, default_value = "always")]
    consent: ConsentMode,
    /// Where records are kept: memory://, sqlite://PATH or redis://HOST:PORT.
    #[arg(long, default_value = "memory://")]
    store: String,
    /// A redirect-URI pattern registration accepts (repeatable; default: any the client-type
    /// rules accept), e.g. `http://localhost:*` or `https://*.example.com/cb`.
    #[arg(long = "allowed-redirect")]
    allowed_redirects: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let base_url = args.base_url.clone().unwrap_or_else(|| format!("http://127.0.0.1:{}", args.port));
    let keyring = Keyring::from_env("MCPGATE_SECRET")
        .map_err(|e| format!("MCPGATE_SECRET: {e} (make one with `cargo run -- keygen`)"))?;
    let client_secret = std::env::var(&args.client_secret_env)
        .map(SecretString::from)
        .map_err(|_| format!("the environment variable {} is not set", args.client_secret_env))?;

    let upstream = Upstream::oidc(
        &args.oidc_discovery_url,
        args.client_id,
        client_secret,
        vec!["email".into(), "profile".into()],
    )
    .await?;
    let allowed = if args.allowed_redirects.is_empty() {
        RedirectAllowList::any()
    } else {
        RedirectAllowList::only(args.allowed_redirects)
    };
    let proxy = OAuthProxy::builder(&base_url)
        .upstream(upstream)
        .keyring(keyring)
        .store(mcpgate::store::open(&args.store).await?)
        .scopes(args.scopes)
        .consent(args.consent)
        .allowed_redirects(allowed)
        .build()?;

    let host = url::Url::parse(&base_url)?.host_str().unwrap_or("127.0.0.1").to_owned();
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_allowed_hosts([
            host,
            "127.0.0.1".into(),
            "localhost".into(),
        ]),
    );
    let app = proxy.protect(mcp);

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    let mcp_url = proxy.resource().resource().to_owned();
    tracing::info!(mcp = %mcp_url, issuer = %base_url, "OAuth-protected MCP server listening");
    println!("MCP endpoint: {mcp_url}");
    println!("Register this redirect URI at the provider: {base_url}/auth/callback");
    // The peer address keys the rate limits.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
