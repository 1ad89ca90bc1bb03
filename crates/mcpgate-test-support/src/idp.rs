//! A real OpenID provider for tests: `idp/server.mjs` (oidc-provider on Node) started on a free
//! loopback port, and a browser stand-in that drives its development login and consent forms
//! with a cookie jar. `scripts/test.sh` runs `npm ci` in `idp/` when needed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const CLIENT_ID: &str = "mcpgate";
pub const CLIENT_SECRET: &str = "mcpgate-test-secret";

pub struct TestIdp {
    pub issuer: String,
    child: Child,
}

impl TestIdp {
    /// Starts the provider with one confidential client allowed to use `redirect_uris`.
    pub fn start(redirect_uris: &[&str]) -> Self {
        Self::start_with(redirect_uris, 600)
    }

    /// Starts the provider issuing access tokens that live `access_token_ttl` seconds.
    pub fn start_with(redirect_uris: &[&str], access_token_ttl: u64) -> Self {
        Self::start_at(0, redirect_uris, access_token_ttl)
    }

    /// Starts the provider on loopback `port` (0: any free port).
    pub fn start_at(port: u16, redirect_uris: &[&str], access_token_ttl: u64) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/idp");
        assert!(
            std::path::Path::new(dir).join("node_modules/oidc-provider").exists(),
            "run `npm ci` in {dir} (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("IDP_PORT", port.to_string())
            .env("IDP_CLIENT_ID", CLIENT_ID)
            .env("IDP_CLIENT_SECRET", CLIENT_SECRET)
            .env("IDP_REDIRECT_URIS", redirect_uris.join(" "))
            .env("IDP_ACCESS_TOKEN_TTL", access_token_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let issuer =
            line.trim().strip_prefix("issuer=").unwrap_or_else(|| panic!("IdP said {line:?}")).to_owned();
        Self { issuer, child }
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that keeps cookies and does not follow redirects: a browser whose every step the
/// test sees.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn attribute<'a>(html: &'a str, marker: &str) -> Option<&'a str> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(&html[start..start + end])
}

/// Follows an authorization request through the IdP as user `login`: the login form, then the
/// consent form. Returns the URL the IdP finally redirects to, outside itself (the client's
/// callback with `code` or `error`), without requesting it.
pub async fn log_in(browser: &reqwest::Client, issuer: &str, authorize_url: &str, login: &str) -> url::Url {
    let mut next = browser.get(authorize_url).send().await.unwrap();
    for _ in 0..20 {
        if next.status().is_redirection() {
            let location = next.headers()["location"].to_str().unwrap();
            let target = next.url().join(location).unwrap();
            if !target.as_str().starts_with(issuer) {
                return target;
            }
            next = browser.get(target).send().await.unwrap();
            continue;
        }
        let page_url = next.url().clone();
        let status = next.status();
        let html = next.text().await.unwrap();
        assert_eq!(status, 200, "IdP page at {page_url}: {html}");
        let action = attribute(&html, "action=\"").expect("a form").replace("&amp;", "&");
        let prompt = attribute(&html, "name=\"prompt\" value=\"").expect("a prompt");
        let mut form = vec![("prompt", prompt.to_owned())];
        if prompt == "login" {
            form.push(("login", login.to_owned()));
            form.push(("password", "any".to_owned()));
        }
        next = browser.post(page_url.join(&action).unwrap()).form(&form).send().await.unwrap();
    }
    panic!("the IdP interaction did not finish in 20 steps");
}

/// The value of the hidden input `name` in an HTML form.
pub fn hidden_input(html: &str, name: &str) -> String {
    attribute(html, &format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name}"))
        .to_owned()
}

/// A browser's way through mcpgate and the IdP: opens `authorize_url` (mcpgate's), approves
/// the consent page, and logs in at the IdP (`idp_issuer`) as `user`. Returns the URL the IdP
/// sends the browser back to (mcpgate's callback), not yet requested.
pub async fn approve_and_log_in(
    browser: &reqwest::Client,
    authorize_url: &url::Url,
    idp_issuer: &str,
    user: &str,
) -> url::Url {
    let to_idp = approve(browser, authorize_url).await;
    log_in(browser, idp_issuer, to_idp.as_str(), user).await
}

/// Opens `authorize_url` (mcpgate's) and approves its consent page; where mcpgate then sends
/// the browser (the provider's authorization endpoint).
pub async fn approve(browser: &reqwest::Client, authorize_url: &url::Url) -> url::Url {
    let page = browser.get(authorize_url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200, "the consent page");
    let html = page.text().await.unwrap();
    let action = attribute(&html, "action=\"").expect("the consent form");
    let approved = browser
        .post(authorize_url.join(action).unwrap())
        .form(&[
            ("transaction", hidden_input(&html, "transaction")),
            ("csrf", hidden_input(&html, "csrf")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    url::Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap()
}
