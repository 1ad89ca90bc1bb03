//! The consent step (C5), the confused-deputy defence: before any redirect to the upstream
//! provider the user sees which client asks, where it will send them back, and which scopes —
//! and approves or denies.
//!
//! The form's CSRF token is a MAC over the transaction and the browser's secret, a random value
//! minted by mcpgate and held, with its own MAC, in a cookie set with the page: the token is
//! bound to the transaction and to the browser that saw the page. A cookie value that mcpgate did
//! not mint (planted by a page on another port of an http loopback issuer, whose cookies are
//! shared) is ignored and replaced. And since planting a genuine value is still possible there,
//! `POST /consent` also refuses what browsers say came from elsewhere: an `Origin` other than the
//! issuer's, or `Sec-Fetch-Site` other than `same-origin`. Approval sets the browser-binding
//! cookie (a MAC over the transaction id) that the upstream callback requires (C7).
//! [`ConsentMode`] decides when the page is shown at all.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Inner;
use super::client::ClientRecord;
use super::cookies::{cookie_name, read_cookie, set_cookie};
use super::failure::{Failure, csp_source};
use super::pages::{escape, page};
use super::transaction::Transaction;
use crate::crypto::{pkce, random_token};
use crate::error::ErrorCode;
use crate::upstream::AuthorizeRequest;

const CSRF_COOKIE: &str = "mcpgate-csrf";
const REMEMBER_COOKIE: &str = "mcpgate-consent";
/// How long a remembered approval lasts, and how many clients one browser remembers.
const REMEMBER_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
const REMEMBER_AT_MOST: usize = 16;

/// When the user is asked to approve a client (C5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// Every authorization shows the consent page.
    #[default]
    Always,
    /// An approval is remembered in the browser for that client, that exact redirect URI (port
    /// included: RFC 8252 §8.6 — another loopback port may be another program) and those
    /// scopes (30 days), and honoured only when the browser says the request was not started by
    /// another site (`Sec-Fetch-Site: none` or `same-origin`).
    Remember,
    /// No consent page. This gives up the confused-deputy defence: choose it only when every
    /// client is trusted (pre-registered clients, no open registration).
    Off,
}

impl std::str::FromStr for ConsentMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "remember" => Ok(Self::Remember),
            "off" => Ok(Self::Off),
            other => Err(format!("consent must be always, remember or off, not {other:?}")),
        }
    }
}

/// One remembered approval: of this client, sending the browser back to this redirect URI, for
/// these scopes at this MCP endpoint, until then (Unix seconds).
#[derive(Debug, Serialize, Deserialize)]
struct Approval {
    client_id: String,
    redirect_uri: String,
    /// An approval for one endpoint is not one for another behind the same server; a cookie
    /// from before endpoints were told apart names none, and covers nothing.
    #[serde(default)]
    resource: String,
    scopes: Vec<String>,
    until: u64,
}

impl Approval {
    /// Whether it approves the transaction's client, redirect URI and resource (scopes aside).
    fn is_for(&self, transaction: &Transaction) -> bool {
        self.client_id == transaction.client_id
            && self.redirect_uri == transaction.redirect_uri.as_str()
            && self.resource == transaction.resource
    }
}

/// The approvals a browser remembers (`remember` mode), in one cookie MACed as a whole so the
/// browser can neither forge nor widen it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RememberedConsent(Vec<Approval>);

impl RememberedConsent {
    fn mac(server: &Inner, payload: &str) -> String {
        server.cookie_mac.tag(format!("consent\0{payload}").as_bytes()).to_base64()
    }

    /// The browser's remembered approvals, if its cookie is ours and intact.
    fn read(server: &Inner, headers: &HeaderMap) -> Self {
        let name = cookie_name(&server.settings.issuer, REMEMBER_COOKIE);
        let Some((payload, tag)) = read_cookie(headers, &name).and_then(|v| v.split_once('.')) else {
            return Self::default();
        };
        if !crate::crypto::constant_time_eq(Self::mac(server, payload).as_bytes(), tag.as_bytes()) {
            return Self::default();
        }
        let now = server.settings.clock.unix_now();
        let mut remembered: Self = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or_default();
        remembered.0.retain(|approval| approval.until > now);
        remembered
    }

    /// Whether the transaction's client was approved, for its exact redirect URI and resource,
    /// for at least its scopes.
    fn covers(&self, transaction: &Transaction) -> bool {
        self.0.iter().any(|approval| {
            approval.is_for(transaction) && transaction.scopes.iter().all(|s| approval.scopes.contains(s))
        })
    }

    /// The scopes this browser approved before for the transaction's client, redirect URI and
    /// resource (so the consent page can show what a step-up adds).
    fn approved_before(&self, transaction: &Transaction) -> Option<&[String]> {
        self.0.iter().find(|a| a.is_for(transaction)).map(|a| a.scopes.as_slice())
    }

    /// These approvals plus the transaction's, the oldest dropped beyond the limit.
    fn with(mut self, transaction: &Transaction, now: u64) -> Self {
        self.0.retain(|approval| !approval.is_for(transaction));
        self.0.push(Approval {
            client_id: transaction.client_id.clone(),
            redirect_uri: transaction.redirect_uri.as_str().to_owned(),
            resource: transaction.resource.clone(),
            scopes: transaction.scopes.clone(),
            until: now + REMEMBER_FOR.as_secs(),
        });
        let excess = self.0.len().saturating_sub(REMEMBER_AT_MOST);
        self.0.drain(..excess);
        self
    }

    fn cookie(&self, server: &Inner) -> Option<HeaderValue> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.0).ok()?);
        let value = format!("{payload}.{}", Self::mac(server, &payload));
        let cookie = set_cookie(&server.settings.issuer, REMEMBER_COOKIE, &value, REMEMBER_FOR.as_secs());
        HeaderValue::from_str(&cookie).ok()
    }
}

/// After `/authorize` opened a transaction: the consent page, or — when the mode and the
/// browser's remembered approvals allow — straight on to the provider.
pub(crate) fn ask_or_continue(
    server: &Inner,
    headers: &HeaderMap,
    client: &ClientRecord,
    transaction: &Transaction,
    handle: &str,
) -> Result<Response, Failure> {
    let skip = match server.settings.consent {
        ConsentMode::Always => false,
        ConsentMode::Off => true,
        ConsentMode::Remember => {
            // A request another site started (a link, a form) never skips the page.
            let own = matches!(
                headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
                Some("none" | "same-origin")
            );
            own && RememberedConsent::read(server, headers).covers(transaction)
        }
    };
    if skip {
        server.to_upstream(handle, transaction)
    } else {
        Ok(consent_page(server, headers, client, transaction, handle))
    }
}

impl Inner {
    /// Sends the browser to the provider for the transaction (its sealed handle is the
    /// `state`), with the binding cookie the callback will require.
    fn to_upstream(&self, handle: &str, transaction: &Transaction) -> Result<Response, Failure> {
        let challenge = pkce::s256_challenge(transaction.upstream_verifier().expose_secret());
        let request = AuthorizeRequest {
            redirect_uri: &self.callback_url,
            state: handle,
            code_challenge: &challenge,
            nonce: &transaction.nonce,
            scopes: &transaction.scopes,
        };
        let Ok(url) = self.upstream.authorization_url(&request) else {
            return Err(Failure::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The identity provider is misconfigured.",
            ));
        };
        let mut response = Redirect::to(url.as_str()).into_response();
        let binding = set_cookie(
            &self.settings.issuer,
            &binding_cookie(self, handle),
            &binding_value(self, handle),
            600,
        );
        if let Ok(binding) = HeaderValue::from_str(&binding) {
            response.headers_mut().append(SET_COOKIE, binding);
        }
        Ok(response)
    }
}
/// The binding cookie's name for a transaction: one per transaction, so that sign-ins started
/// in parallel in one browser do not overwrite each other's binding.
pub(crate) fn binding_cookie(server: &Inner, handle: &str) -> String {
    let tag = server.cookie_mac.tag(format!("bind-name\0{handle}").as_bytes()).to_base64();
    format!("mcpgate-bind-{}", &tag[..12])
}

fn csrf_token(server: &Inner, transaction_id: &str, browser_secret: &str) -> String {
    server.cookie_mac.tag(format!("csrf\0{transaction_id}\0{browser_secret}").as_bytes()).to_base64()
}

/// The CSRF cookie's value for a browser secret: the secret and our MAC over it.
fn csrf_cookie_value(server: &Inner, secret: &str) -> String {
    let tag = server.cookie_mac.tag(format!("csrf-cookie\0{secret}").as_bytes()).to_base64();
    format!("{secret}.{tag}")
}

/// The browser secret in a CSRF cookie's value, if mcpgate minted that value.
fn minted_secret<'a>(server: &Inner, value: &'a str) -> Option<&'a str> {
    let (secret, _) = value.split_once('.')?;
    let ours =
        crate::crypto::constant_time_eq(csrf_cookie_value(server, secret).as_bytes(), value.as_bytes());
    ours.then_some(secret)
}

/// The binding-cookie value for a transaction.
pub(crate) fn binding_value(server: &Inner, transaction_id: &str) -> String {
    server.cookie_mac.tag(format!("bind\0{transaction_id}").as_bytes()).to_base64()
}

/// The browser's secret for CSRF tokens: the one its cookie already holds if mcpgate minted
/// it, so that consent pages open side by side in one browser all stay valid; else a new one.
fn browser_secret(server: &Inner, headers: &HeaderMap) -> SecretString {
    let name = cookie_name(&server.settings.issuer, CSRF_COOKIE);
    match read_cookie(headers, &name).and_then(|value| minted_secret(server, value)) {
        Some(secret) => SecretString::from(secret.to_owned()),
        None => random_token(),
    }
}

/// Whether the browser says the consent form was posted from a page of another origin: an
/// `Origin` header other than the issuer's (`null` included), or `Sec-Fetch-Site` other than
/// `same-origin`. Clients that send neither (not browsers) are judged by the CSRF token alone.
fn posted_from_elsewhere(server: &Inner, headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    let foreign_origin = header("origin").is_some_and(|origin| origin != server.issuer_origin);
    let foreign_site = header("sec-fetch-site").is_some_and(|site| site != "same-origin");
    foreign_origin || foreign_site
}

/// Renders the consent page for an open transaction.
fn consent_page(
    server: &Inner,
    headers: &HeaderMap,
    client: &ClientRecord,
    transaction: &Transaction,
    transaction_id: &str,
) -> Response {
    let browser_secret = browser_secret(server, headers);
    let csrf = csrf_token(server, transaction_id, browser_secret.expose_secret());
    let name = client.client_name.as_deref().unwrap_or("An unnamed application");
    let remembered = RememberedConsent::read(server, headers);
    let before = remembered.approved_before(transaction);
    let scopes = if transaction.scopes.is_empty() {
        "<li>basic access</li>".to_owned()
    } else {
        let new = |s: &String| before.is_some_and(|before| !before.contains(s));
        transaction
            .scopes
            .iter()
            .map(|s| match new(s) {
                true => format!("<li><code>{}</code> <strong class=\"new\">new</strong></li>", escape(s)),
                false => format!("<li><code>{}</code></li>", escape(s)),
            })
            .collect()
    };
    let asks = match before {
        Some(_) => "It already has your approval for some of this, and now also asks for what is marked new:",
        None => "It asks for:",
    };
    let action = format!("{}/consent", server.issuer_path);
    // Behind one server with several MCP endpoints, the user approves one of them.
    let what = match server.settings.resources.len() {
        1 => "this server".to_owned(),
        _ => format!("the MCP server at <code>{}</code>", escape(&transaction.resource)),
    };
    let body = format!(
        "<h1>Allow access?</h1>\
         <p><strong>{name}</strong> (client <code>{client_id}</code>) wants to use {what} on your behalf.</p>\
         <p>After you sign in you will be sent back to <strong>{target}</strong>.</p>\
         <p>{asks}</p><ul>{scopes}</ul>\
         <p>Only approve if you started this from that application.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"transaction\" value=\"{transaction}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
         </form>",
        name = escape(name),
        client_id = escape(&client.client_id),
        target = escape(&transaction.redirect_uri.target()),
        action = escape(&action),
        transaction = escape(transaction_id),
        csrf = escape(&csrf),
    );
    // The form posts here, and is then redirected upstream (approve) or to the client (deny).
    let form_action: Vec<String> = std::iter::once("'self'".to_owned())
        .chain(csp_source(server.upstream_authorization_endpoint()))
        .chain(transaction.redirect_uri.csp_source())
        .collect();
    let mut response = page(StatusCode::OK, "Allow access?", &body, &form_action);
    let value = csrf_cookie_value(server, browser_secret.expose_secret());
    let cookie = set_cookie(&server.settings.issuer, CSRF_COOKIE, &value, 600);
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub(crate) struct ConsentForm {
    transaction: String,
    csrf: String,
    decision: String,
}

/// `POST /consent`.
pub(crate) async fn consent_post(
    State(server): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Result<Response, Failure> {
    let not_shown_here = || {
        Failure::page(
            StatusCode::FORBIDDEN,
            "This form was not shown in this browser. Start again from your application.",
        )
    };
    if posted_from_elsewhere(&server, &headers) {
        return Err(Failure::page(
            StatusCode::FORBIDDEN,
            "This form was sent from another site. Start again from your application.",
        ));
    }
    let cookie = cookie_name(&server.settings.issuer, CSRF_COOKIE);
    let browser_secret = read_cookie(&headers, &cookie)
        .and_then(|value| minted_secret(&server, value))
        .ok_or_else(not_shown_here)?;
    let expected = csrf_token(&server, &form.transaction, browser_secret);
    if !crate::crypto::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return Err(not_shown_here());
    }
    let expired = || {
        Failure::page(StatusCode::BAD_REQUEST, "This request has expired. Start again from your application.")
    };
    let unavailable = |_| Failure::page(StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment.");
    let transaction = server.open_transaction(&form.transaction).map_err(|_| expired())?;
    // A denied request cannot be approved afterwards.
    if server.transaction_used(&transaction).await.map_err(unavailable)? {
        return Err(expired());
    }
    match form.decision.as_str() {
        "deny" => {
            // The transaction ends here; a later approval of the same page finds it used.
            server.use_transaction(&transaction).await.map_err(unavailable)?.map_err(|_| expired())?;
            let (issuer, state) = (server.settings.issuer.as_str(), transaction.client_state.as_deref());
            Err(transaction.redirect_uri.error(
                issuer,
                state,
                ErrorCode::AccessDenied,
                "the user denied access",
            ))
        }
        "approve" => {
            let mut response = server.to_upstream(&form.transaction, &transaction)?;
            // Remembered in every mode: `remember` skips the page for it, and any mode's page
            // shows which scopes a later request adds (a step-up).
            let remembered = RememberedConsent::read(&server, &headers)
                .with(&transaction, server.settings.clock.unix_now());
            if let Some(cookie) = remembered.cookie(&server) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            Ok(response)
        }
        _ => Err(Failure::page(StatusCode::BAD_REQUEST, "Choose Approve or Deny.")),
    }
}
