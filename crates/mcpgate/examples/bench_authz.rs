//! The authorization server alone, for load tests of its endpoints (`scripts/bench-authz.sh`):
//! on the given store, rate limits off, in front of a stand-in provider served by this process
//! (its tokens last a day, so no provider refresh happens during a run).
//!
//! Before serving it prepares, through the real endpoints, what the load scripts need and writes
//! it to `--out DIR`: `client_id` (a registered public client for `/authorize`) and
//! `refresh_tokens` (one per line, each of its own grant, for the refresh grant).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::routing::{get, post};
use clap::Parser;
use mcpgate::authz::{AuthServer, AuthServerSettings, ConsentMode, RateLimits};
use mcpgate::crypto::{Keyring, RootSecret, pkce};
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
    /// Where to write the prepared client id and refresh tokens.
    #[arg(long)]
    out: PathBuf,
    /// How many grants (refresh tokens) to prepare.
    #[arg(long, default_value_t = 64)]
    grants: usize,
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
    let mut settings = AuthServerSettings::new(issuer.clone(), format!("{issuer}/mcp"));
    settings.scopes_supported = vec!["mcp:read".into()];
    settings.rate_limits = RateLimits::off();
    let keyring = Keyring::new(RootSecret::from_bytes(vec![42; 32])?, vec![]);
    let store = mcpgate::store::open(&args.store).await?;

    // Preparation: consent off so a browser-less client can go straight through.
    let mut preparing = settings.clone();
    preparing.consent = ConsentMode::Off;
    let preparer = AuthServer::new(preparing, store.clone(), &keyring, upstream())?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    let served = tokio::spawn(axum::serve(listener, preparer.router()).into_future());
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
    for _ in 0..args.grants {
        refresh_tokens.push(sign_in(&http, &issuer, &client_id).await?);
    }
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("client_id"), &client_id)?;
    std::fs::write(args.out.join("refresh_tokens"), refresh_tokens.join("\n") + "\n")?;
    served.abort();
    let _ = served.await;

    // The server under test: the same store and keys, consent on (as deployed).
    let server = AuthServer::new(settings, store, &keyring, upstream())?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await?;
    println!("ready");
    axum::serve(listener, server.router()).await?;
    Ok(())
}

/// One grant through the real endpoints: authorize → provider → callback → code → tokens.
async fn sign_in(
    http: &reqwest::Client,
    issuer: &str,
    client_id: &str,
) -> Result<String, Box<dyn std::error::Error>> {
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
    Ok(tokens["refresh_token"].as_str().ok_or("no refresh token")?.to_owned())
}
