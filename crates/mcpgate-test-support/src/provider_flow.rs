//! mcpgate's OAuth proxy in front of a provider fake, with the demo MCP server behind it, and
//! an MCP client's way through it: register, authorize, approve the consent page, pass the
//! provider's (automatic) sign-in, and redeem the code.

use std::sync::Arc;

use mcpgate::OAuthProxy;
use mcpgate::authz::AllowedUsers;
use mcpgate::crypto::{Keyring, RootSecret, pkce};
use mcpgate::mcp::DemoServer;
use mcpgate::upstream::Upstream;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;

use super::idp::{approve, browser};
use super::oauth_client;

pub const CLIENT_REDIRECT: &str = "http://127.0.0.1:47081/callback";

/// A running proxy and a client registered at it.
pub struct Proxy {
    pub base: String,
    pub client_id: String,
}

/// Serves the proxy for `upstream` (memory store, scope `mcp:read`, consent asked) admitting
/// `allowed`; registers a public client.
pub async fn serve(upstream: Upstream, allowed: AllowedUsers) -> Proxy {
    let store = mcpgate::store::open("memory://").await.unwrap();
    let proxy = serve_on(upstream, allowed, store).await;
    let client_id = oauth_client::register_public_client(&proxy.base, CLIENT_REDIRECT, "provider test").await;
    Proxy { client_id, ..proxy }
}

/// [`serve`] keeping its records in `store` (another instance's, or a restart's), without
/// registering a client.
pub async fn serve_on(
    upstream: Upstream,
    allowed: AllowedUsers,
    store: Arc<dyn mcpgate::store::Store>,
) -> Proxy {
    serve_configured(upstream, store, move |settings| settings.allowed_users = allowed).await.0
}

/// [`serve_on`] with its settings changed by `configure`; the running proxy too, for calling
/// its authorization server directly.
pub async fn serve_configured(
    upstream: Upstream,
    store: Arc<dyn mcpgate::store::Store>,
    configure: impl FnOnce(&mut mcpgate::authz::AuthServerSettings),
) -> (Proxy, OAuthProxy) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let proxy = instance(&base, upstream, store, configure);
    let mcp = StreamableHttpService::new(
        || Ok(DemoServer::default()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = proxy.protect(mcp);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Proxy { base, client_id: String::new() }, proxy)
}

/// The proxy at `base` on `store`, not served: another instance of one already serving there.
pub fn instance(
    base: &str,
    upstream: Upstream,
    store: Arc<dyn mcpgate::store::Store>,
    configure: impl FnOnce(&mut mcpgate::authz::AuthServerSettings),
) -> OAuthProxy {
    OAuthProxy::builder(base)
        .upstream(upstream)
        .keyring(Keyring::new(RootSecret::from_bytes(vec![5; 32]).unwrap(), vec![]))
        .store(store)
        .scopes(["mcp:read"])
        .configure(configure)
        .build()
        .unwrap()
}

/// How a sign-in ended.
#[derive(Debug)]
pub enum SignIn {
    /// Back at the client with a code, redeemed: the token response.
    Tokens(Value),
    /// The browser stopped at a page of mcpgate or the provider: its status and text.
    Page(u16, String),
    /// Back at the client with an error.
    ClientError(url::Url),
}

impl SignIn {
    pub fn tokens(self) -> Value {
        match self {
            SignIn::Tokens(tokens) => tokens,
            other => panic!("no tokens: {other:?}"),
        }
    }
}

/// A user's way through the proxy: authorize, approve, the provider's sign-in (whoever the
/// fake says is signed in), the callback, and the code exchange.
pub async fn sign_in(proxy: &Proxy) -> SignIn {
    let (verifier, challenge) = pkce::new_pair();
    let mut authorize =
        oauth_client::authorize_url(&proxy.base, &proxy.client_id, CLIENT_REDIRECT, &challenge);
    authorize
        .query_pairs_mut()
        .append_pair("resource", &format!("{}/mcp", proxy.base))
        .append_pair("scope", "mcp:read");
    let browser = browser();
    let mut next = approve(&browser, &authorize).await;
    for _ in 0..10 {
        if next.as_str().starts_with(CLIENT_REDIRECT) {
            if next.query_pairs().any(|(k, _)| k == "error") {
                return SignIn::ClientError(next);
            }
            let code = oauth_client::code_in(&next);
            let (status, _, tokens) = oauth_client::exchange_code(
                &proxy.base,
                &proxy.client_id,
                CLIENT_REDIRECT,
                &code,
                secrecy::ExposeSecret::expose_secret(&verifier),
            )
            .await;
            assert_eq!(status, 200, "{tokens}");
            return SignIn::Tokens(tokens);
        }
        let response = browser.get(next.clone()).send().await.unwrap();
        if !response.status().is_redirection() {
            let status = response.status().as_u16();
            return SignIn::Page(status, response.text().await.unwrap());
        }
        next = next.join(response.headers()["location"].to_str().unwrap()).unwrap();
    }
    panic!("the sign-in did not end in 10 steps");
}

/// The claims of our access token (its payload, unverified: the tests read what was issued).
pub fn claims_of(access_token: &str) -> Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

/// Our refresh-token grant: status and body.
pub async fn refresh(proxy: &Proxy, refresh_token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/token", proxy.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &proxy.client_id),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}
