//! An rmcp Streamable HTTP server at `/mcp`, protected by mcpgate against access tokens from
//! any OAuth/OIDC authorization server that publishes a JWKS.
//!
//! ```text
//! cargo run -p mcpgate --example resource_server -- \
//!     --jwks-uri https://idp.example.com/.well-known/jwks.json --issuer https://idp.example.com
//! ```
//!
//! The whole integration is the layer: [`ProtectedResource::protect`] puts the bearer layer
//! in front of the MCP service and serves the RFC 9728 metadata beside it. A tool reads the
//! caller by taking a [`mcpgate::Principal`] argument — nothing else to wire:
//!
//! ```ignore
//! #[tool(description = "Who is calling")]
//! fn whoami(&self, caller: mcpgate::Principal) -> String {
//!     format!("{} via {:?} with {:?}", caller.subject(), caller.client_id(), caller.scopes())
//! }
//! ```
//!
//! (That is how [`DemoServer`], served here, implements its `whoami` tool.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use clap::Parser;
use mcpgate::mcp::DemoServer;
use mcpgate::resource::ProtectedResource;
use mcpgate::verify::JwtVerifier;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

/// An MCP server with `whoami` and `echo` tools, protected by mcpgate.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Public URL of this server; the protected resource is `<base-url>/mcp`.
    /// Default: `http://127.0.0.1:<port>`.
    #[arg(long)]
    base_url: Option<String>,
    /// Where the authorization server publishes its signing keys.
    #[arg(long, required_unless_present = "no_auth")]
    jwks_uri: Option<String>,
    /// The issuer (`iss`) tokens must carry.
    #[arg(long, required_unless_present = "no_auth")]
    issuer: Option<String>,
    /// The audience tokens must carry. Default: the resource URL.
    #[arg(long)]
    audience: Option<String>,
    /// A scope every request must carry (repeatable).
    #[arg(long = "required-scope")]
    required_scopes: Vec<String>,
    /// The authorization server to publish in the metadata. Default: the issuer.
    #[arg(long)]
    authorization_server: Option<String>,
    /// Serve the same MCP server without authentication (for benchmarks).
    #[arg(long)]
    no_auth: bool,
    /// Answer sessionless requests with JSON rather than an event stream.
    #[arg(long)]
    json_response: bool,
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
    let resource_url = format!("{}/mcp", base_url.trim_end_matches('/'));
    let host = url::Url::parse(&base_url)?.host_str().unwrap_or("127.0.0.1").to_owned();

    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts([host, "127.0.0.1".into(), "localhost".into()])
            .with_json_response(args.json_response),
    );

    let app = if args.no_auth {
        axum::Router::new().route_service("/mcp", mcp)
    } else {
        let (Some(jwks_uri), Some(issuer)) = (args.jwks_uri, args.issuer) else {
            return Err("--jwks-uri and --issuer are required unless --no-auth".into());
        };
        let verifier = JwtVerifier::builder()
            .jwks_uri(jwks_uri)
            .issuer(issuer.clone())
            .audience(args.audience.unwrap_or_else(|| resource_url.clone()))
            .build()?;
        let mut resource = ProtectedResource::new(&resource_url)?
            .authorization_server(args.authorization_server.unwrap_or(issuer));
        for scope in args.required_scopes {
            resource = resource.required_scope(scope);
        }
        // `protect` puts the verified-token cache in front of the verifier.
        resource.protect(verifier, mcp)
    };

    // Small SSE frames must not wait for Nagle's algorithm and the peer's delayed ACK.
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    tracing::info!(resource = %resource_url, auth = !args.no_auth, "MCP server listening");
    println!("MCP endpoint: {resource_url}");
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
