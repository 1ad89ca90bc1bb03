//! The authorization server and one MCP endpoint it protects, for load tests
//! (`scripts/bench-authz.sh`, `scripts/bench-scale.sh`): on the given store, rate limits off, in
//! front of a stand-in provider served by this process (its tokens last a day, so no provider
//! refresh happens during a run). The MCP endpoint answers every call with a fixed result: what
//! is measured is the path to it (the bearer layer, the token's checks).
//!
//! Before serving it bulk-loads the store when asked (`--clients`, `--live-grants`,
//! `--unconfirmed`: through the record owners, as the endpoints write them), then prepares,
//! through the real endpoints, what the load scripts need and writes it to `--out DIR`:
//! `client_id` (a registered public client for `/authorize`), `refresh_tokens` (one per line,
//! each of its own grant, for the refresh grant) and `access_token` (for the MCP endpoint).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use clap::Parser;
use mcpgate::OAuthProxy;
use mcpgate::authz::{BulkLoad, ConsentMode, RateLimits};
use mcpgate::crypto::{Keyring, RootSecret, pkce};
use mcpgate::store::Store;
use mcpgate::upstream::{IdentitySource, Upstream, UpstreamConfig};
use mcpgate::verify::ClientAuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// The authorization server alone, for load tests.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 18090)]
    port: u16,
    /// Where records are kept.
    #[arg(long)]
    store: String,
    /// Where to write the prepared client id, refresh tokens and access token.
    #[arg(long)]
    out: PathBuf,
    /// How many grants (refresh tokens) to prepare.
    #[arg(long, default_value_t = 64)]
    grants: usize,
    /// Registered, confirmed clients to bulk-load first.
    #[arg(long, default_value_t = 0)]
    clients: usize,
    /// Live grants (each with its refresh family) to bulk-load, spread over those clients.
    #[arg(long, default_value_t = 0)]
    live_grants: usize,
    /// Unconfirmed registrations to bulk-load: they all expire `--unconfirmed-ttl` seconds
    /// after they are written, for measuring a sweep.
    #[arg(long, default_value_t = 0)]
    unconfirmed: usize,
    /// How long an unconfirmed registration is kept (seconds).
    #[arg(long, default_value_t = 24 * 3600)]
    unconfirmed_ttl: u64,
    /// For a `sqlite://` store: seconds between sweeps of expired rows (the store's default
    /// otherwise).
    #[arg(long)]
    sweep_every: Option<u64>,
}

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The stand-in provider: any code is good, every user is `bench-user`.
async fn provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = Router::new()
        .route(
            "/token",
            post(|| async {
                axum::Json(json!({"access_token": "provider-access", "refresh_token": "provider-refresh",
                                  "token_type": "Bearer", "expires_in": 86400}))
            }),
        )
        .route("/userinfo", get(|| async { axum::Json(json!({"sub": "bench-user"})) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// The MCP endpoint: one fixed `tools/call` result.
async fn mcp() -> axum::Json<Value> {
    axum::Json(json!({"jsonrpc": "2.0", "id": 1,
                      "result": {"content": [{"type": "text", "text": "hi"}], "isError": false}}))
}

async fn open_store(args: &Args) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
    match (args.store.strip_prefix("sqlite://"), args.sweep_every) {
        (Some(path), Some(every)) => Ok(Arc::new(
            mcpgate::store::SqliteStore::open_with_reclaim_interval(
                path.as_ref(),
                Duration::from_secs(every),
            )
            .await?,
        )),
        _ => Ok(mcpgate::store::open(&args.store).await?),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let issuer = format!("http://127.0.0.1:{}", args.port);
    let provider = provider().await;
    let upstream = || {
        Upstream::new(UpstreamConfig {
            authorization_endpoint: format!("{provider}/authorize"),
            token_endpoint: format!("{provider}/token"),
            revocation_endpoint: None,
            client_id: "mcpgate".into(),
            client_secret: SecretString::from("bench"),
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: vec![],
            extra_authorize_params: vec![],
            identity: IdentitySource::UserInfo {
                url: format!("{provider}/userinfo"),
                subject_claim: "sub".into(),
            },
            timeouts: Default::default(),
        })
    };
    let keyring = || Keyring::new(RootSecret::from_bytes(vec![42; 32]).expect("32 bytes"), vec![]);
    let store = open_store(&args).await?;
    let unconfirmed_ttl = Duration::from_secs(args.unconfirmed_ttl);
    let proxy = |consent: ConsentMode| {
        OAuthProxy::builder(issuer.clone())
            .upstream(upstream())
            .keyring(keyring())
            .store(store.clone())
            .scopes(["mcp:read"])
            .consent(consent)
            .configure(|settings| {
                settings.rate_limits = RateLimits::off();
                settings.unconfirmed_client_ttl = unconfirmed_ttl;
            })
            .build()
    };

    // Preparation: consent off so a browser-less client can go straight through.
    let preparer = proxy(ConsentMode::Off)?;
    let load =
        BulkLoad { clients: args.clients, grants: args.live_grants, concurrency: 64, ..Default::default() };
    if args.clients + args.live_grants > 0 {
        let started = Instant::now();
        preparer.auth_server().bulk_load(load).await?;
        println!("loaded {load:?} in {:.1} s", started.elapsed().as_secs_f64());
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    let served = tokio::spawn(axum::serve(listener, preparer.protect(post(mcp))).into_future());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let registered: Value = http
        .post(format!("{issuer}/register"))
        .json(
            &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "bench",
                      "grant_types": ["authorization_code", "refresh_token"]}),
        )
        .send()
        .await?
        .json()
        .await?;
    let client_id = registered["client_id"].as_str().ok_or("registration failed")?.to_owned();
    let mut refresh_tokens = Vec::new();
    let mut access_token = String::new();
    for _ in 0..args.grants.max(1) {
        let tokens = sign_in(&http, &issuer, &client_id).await?;
        refresh_tokens.push(tokens["refresh_token"].as_str().ok_or("no refresh token")?.to_owned());
        access_token = tokens["access_token"].as_str().ok_or("no access token")?.to_owned();
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("client_id"), &client_id)?;
    std::fs::write(args.out.join("refresh_tokens"), refresh_tokens.join("\n") + "\n")?;
    std::fs::write(args.out.join("access_token"), &access_token)?;
    served.abort();
    let _ = served.await;

    // Last, so that they expire while the server is measured: the registrations no sign-in
    // confirms, and when they expire (Unix milliseconds of the first and the last).
    if args.unconfirmed > 0 {
        let load = BulkLoad { unconfirmed_clients: args.unconfirmed, concurrency: 64, ..Default::default() };
        let from = unix_ms() + unconfirmed_ttl.as_millis();
        preparer.auth_server().bulk_load(load).await?;
        println!("expiring {from} {}", unix_ms() + unconfirmed_ttl.as_millis());
    }

    // The server under test: the same store and keys, consent on (as deployed).
    let server = proxy(ConsentMode::Always)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    println!("ready");
    axum::serve(listener, server.protect(post(mcp))).await?;
    Ok(())
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// One grant through the real endpoints: authorize → provider → callback → code → tokens.
async fn sign_in(
    http: &reqwest::Client,
    issuer: &str,
    client_id: &str,
) -> Result<Value, Box<dyn std::error::Error>> {
    let (verifier, challenge) = pkce::new_pair();
    let mut authorize = url::Url::parse(&format!("{issuer}/authorize"))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let to_provider = http.get(authorize).send().await?;
    let location = url::Url::parse(to_provider.headers()["location"].to_str()?)?;
    let state = location.query_pairs().find(|(k, _)| k == "state").ok_or("no state")?.1.into_owned();
    let cookie =
        to_provider.headers()["set-cookie"].to_str()?.split(';').next().unwrap_or_default().to_owned();
    let mut callback = url::Url::parse(&format!("{issuer}/auth/callback"))?;
    callback.query_pairs_mut().append_pair("code", "any").append_pair("state", &state);
    let back = http.get(callback).header("cookie", cookie).send().await?;
    let to_client = url::Url::parse(back.headers()["location"].to_str()?)?;
    let code = to_client.query_pairs().find(|(k, _)| k == "code").ok_or("no code")?.1.into_owned();
    let tokens: Value = http
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", verifier.expose_secret()),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens)
}
