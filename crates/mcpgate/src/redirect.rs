//! Redirect-URI validation (B4) and matching (C1): the one place that decides where a browser
//! may be sent with an authorization code.
//!
//! Registration parses each URI strictly ([`RedirectUri::parse`]): dangerous schemes, userinfo,
//! fragments, dot segments, backslashes and percent-encoded tricks are refused outright, then the
//! client's `application_type` decides what remains acceptable (native: loopback http on any
//! port, private-use schemes, https; web: https on a non-loopback host), and the operator's
//! allow-list ([`RedirectAllowList`]) may narrow it further. At `/authorize` a requested URI must
//! equal a registered one, except that a loopback URI may differ in port (RFC 8252 §7.3).

use url::{Host, Url};

/// What kind of client registers the URI (RFC 7591 `application_type`, OIDC Registration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    /// Desktop, CLI and mobile clients: the default for MCP clients.
    #[default]
    Native,
    /// Clients served from a web origin.
    Web,
}

/// Why a redirect URI was refused; the text is safe to return as `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// Not an absolute URI.
    #[error("redirect URI is not an absolute URI")]
    NotAbsolute,
    /// A scheme that can run code or read local data (`javascript:`, `data:`, `file:`, …).
    #[error("redirect URI scheme is not allowed")]
    ForbiddenScheme,
    /// User information (`user@host`) in the authority.
    #[error("redirect URI must not contain user information")]
    UserInfo,
    /// A fragment (RFC 6749 §3.1.2).
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    /// Dot segments, backslashes, control characters or percent-encoded separators.
    #[error("redirect URI contains ambiguous characters or path segments")]
    Ambiguous,
    /// Plain http to a host other than loopback.
    #[error("http redirect URIs are allowed for loopback hosts only")]
    InsecureHttp,
    /// A web client must use https on a non-loopback host.
    #[error("web clients must use https redirect URIs on a public host")]
    WebNeedsHttps,
    /// A private-use scheme without a dot (RFC 8252 §7.1 asks for reverse domain names).
    #[error("private-use URI schemes must be reverse domain names (e.g. com.example.app)")]
    BadPrivateScheme,
    /// Not permitted by the operator's allow-list.
    #[error("redirect URI is not permitted by this server")]
    NotAllowed,
}

/// Schemes never accepted, whatever the client type.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "filesystem",
    "view-source",
    "ws",
    "wss",
    "ftp",
];

/// A redirect URI that passed validation, kept exactly as registered (comparison is on the
/// registered string, so nothing is rewritten behind the client's back).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri {
    raw: String,
    url: Url,
    loopback: bool,
}

impl PartialEq for RedirectUri {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for RedirectUri {}

impl TryFrom<String> for RedirectUri {
    type Error = RedirectError;
    fn try_from(raw: String) -> Result<Self, RedirectError> {
        Self::parse_syntax(&raw)
    }
}

impl From<RedirectUri> for String {
    fn from(uri: RedirectUri) -> String {
        uri.raw
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl RedirectUri {
    /// Validates `raw` for a client of `application_type`.
    pub fn parse(raw: &str, application_type: ApplicationType) -> Result<Self, RedirectError> {
        let uri = Self::parse_syntax(raw)?;
        match (application_type, uri.url.scheme()) {
            (ApplicationType::Web, "https") if !uri.loopback => {}
            (ApplicationType::Web, _) => return Err(RedirectError::WebNeedsHttps),
            (ApplicationType::Native, "https") => {}
            (ApplicationType::Native, "http") if uri.loopback => {}
            (ApplicationType::Native, "http") => return Err(RedirectError::InsecureHttp),
            (ApplicationType::Native, scheme) if !scheme.contains('.') => {
                return Err(RedirectError::BadPrivateScheme);
            }
            (ApplicationType::Native, _) => {}
        }
        Ok(uri)
    }

    /// The checks that hold for every client type.
    fn parse_syntax(raw: &str) -> Result<Self, RedirectError> {
        // Refuse rather than trim: a URI with whitespace or controls was not meant literally.
        if raw.is_empty()
            || raw.len() > 2048
            || raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return Err(RedirectError::Ambiguous);
        }
        let url = Url::parse(raw).map_err(|_| RedirectError::NotAbsolute)?;
        if FORBIDDEN_SCHEMES.contains(&url.scheme()) {
            return Err(RedirectError::ForbiddenScheme);
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || raw_authority(raw).is_some_and(|a| a.contains('@'))
        {
            return Err(RedirectError::UserInfo);
        }
        if matches!(url.scheme(), "http" | "https") && !written_as_normal_authority(raw, &url) {
            return Err(RedirectError::Ambiguous);
        }
        if raw.contains('#') {
            return Err(RedirectError::Fragment);
        }
        if has_ambiguous_path(raw) {
            return Err(RedirectError::Ambiguous);
        }
        if matches!(url.scheme(), "http" | "https") && url.host().is_none() {
            return Err(RedirectError::NotAbsolute);
        }
        let loopback = matches!(url.scheme(), "http" | "https") && is_loopback(url.host());
        Ok(Self { raw: raw.to_owned(), url, loopback })
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `requested` (from an authorization request) designates this registered URI:
    /// byte-for-byte equal, or — for loopback http URIs only — equal apart from the port.
    pub fn matches(&self, requested: &str) -> bool {
        if crate::crypto::constant_time_eq(self.raw.as_bytes(), requested.as_bytes()) {
            return true;
        }
        if !self.loopback || self.url.scheme() != "http" {
            return false;
        }
        let Ok(requested) = Self::parse_syntax(requested) else { return false };
        if !requested.loopback || requested.url.scheme() != "http" {
            return false;
        }
        let (mut a, mut b) = (self.url.clone(), requested.url);
        let _ = a.set_port(None);
        let _ = b.set_port(None);
        a == b
    }
}

/// The authority part of an absolute URI as written (`//authority/...`), if any.
/// Whether an http(s) URI is written the way a browser will read it: `scheme://` (not
/// `https:/host` nor `https:host`, which URL parsers repair into an authority), and an authority
/// that is already in normal form — an ASCII host equal to the parsed one (no percent-encoding,
/// no IPv4 shorthand like `127.0.01` or `0x7f.1`, no IDNA mapping) and a port in plain decimal.
/// Found by the redirect_uri fuzz target: `https:/'%61pp.example.com/cb` was accepted, and is
/// `https://'app.example.com/cb` to a browser; `http://127.0.01:00080/cb` is `127.0.0.1:80`.
fn written_as_normal_authority(raw: &str, url: &Url) -> bool {
    let prefix = format!("{}://", url.scheme());
    if !raw.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(&prefix)) {
        return false;
    }
    let (Some(authority), Some(parsed_host)) = (raw_authority(raw), url.host_str()) else { return false };
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    let plain_host = host.is_ascii()
        && host.eq_ignore_ascii_case(parsed_host)
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    let plain_port = port.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'))
            && p.parse::<u16>().ok() == url.port_or_known_default()
    });
    plain_host && plain_port
}

fn raw_authority(raw: &str) -> Option<&str> {
    let rest = raw.split_once("://")?.1;
    Some(rest.split(['/', '?']).next().unwrap_or(rest))
}

/// Dot segments (also percent-encoded), encoded slashes, backslashes and NULs in the path.
fn has_ambiguous_path(raw: &str) -> bool {
    let after_scheme = raw.split_once(':').map_or(raw, |(_, rest)| rest);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00", "%09", "%0a", "%0d"].iter().any(|enc| lower.contains(enc)) {
        return true;
    }
    let path = path.strip_prefix("//").map_or(path, |p| p.split_once('/').map_or("", |(_, rest)| rest));
    path.split('/').any(|segment| segment == "." || segment == "..")
}

/// The operator's allow-list of redirect-URI patterns.
///
/// `None` (the default) leaves the client-type rules alone; a list narrows them: a URI must
/// match one pattern, and an empty list accepts nothing. A pattern is a URI where `*` may stand
/// for the port (`http://localhost:*`), for the leftmost host labels (`https://*.example.com/cb`,
/// at least one label), or end the path (`https://app.example.com/oauth/*`). A pattern without
/// a path allows every path on its origin: `http://localhost:*` admits the
/// `http://localhost:6274/oauth/callback` of a local client, as operators mean it to.
#[derive(Debug, Clone, Default)]
pub struct RedirectAllowList {
    patterns: Option<Vec<String>>,
}

impl RedirectAllowList {
    /// No operator restriction.
    pub fn any() -> Self {
        Self { patterns: None }
    }

    /// Only URIs matching one of `patterns`.
    pub fn only<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { patterns: Some(patterns.into_iter().map(Into::into).collect()) }
    }

    /// Whether `uri` is allowed.
    pub fn permits(&self, uri: &RedirectUri) -> bool {
        match &self.patterns {
            None => true,
            Some(patterns) => patterns.iter().any(|p| pattern_matches(p, uri.as_str())),
        }
    }

    /// Validates `raw` for `application_type` and against this allow-list.
    pub fn validate(
        &self,
        raw: &str,
        application_type: ApplicationType,
    ) -> Result<RedirectUri, RedirectError> {
        let uri = RedirectUri::parse(raw, application_type)?;
        if self.permits(&uri) { Ok(uri) } else { Err(RedirectError::NotAllowed) }
    }
}

/// Splits a URI into scheme, host, port (as written, possibly empty) and the rest (path+query).
fn split_uri(uri: &str) -> Option<(&str, &str, &str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let port = authority[close + 1..].strip_prefix(':').unwrap_or("");
        (&authority[..=close], port)
    } else {
        authority.rsplit_once(':').unwrap_or((authority, ""))
    };
    Some((scheme, host, port, tail))
}

/// The scheme's default port; schemes compare case-insensitively (RFC 3986 §3.1), so
/// `HTTPS://host/` is on 443 too (found by the redirect_uri fuzz target).
fn default_port(scheme: &str) -> &'static str {
    if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        ""
    }
}

fn pattern_matches(pattern: &str, uri: &str) -> bool {
    // Private-use schemes have no authority: exact, or a trailing-* prefix.
    let (Some(p), Some(u)) = (split_uri(pattern), split_uri(uri)) else {
        // The scheme in any case (RFC 3986 §3.1), the rest as written.
        let (Some((p_scheme, p_rest)), Some((u_scheme, u_rest))) =
            (pattern.split_once(':'), uri.split_once(':'))
        else {
            return pattern == uri;
        };
        if !p_scheme.eq_ignore_ascii_case(u_scheme) {
            return false;
        }
        return match p_rest.strip_suffix('*') {
            Some(prefix) => u_rest.starts_with(prefix),
            None => p_rest == u_rest,
        };
    };
    let (p_scheme, p_host, p_port, p_tail) = p;
    let (u_scheme, u_host, u_port, u_tail) = u;
    if !p_scheme.eq_ignore_ascii_case(u_scheme) {
        return false;
    }
    let host_ok = match p_host.strip_prefix("*.") {
        Some(suffix) => {
            let dotted = format!(".{}", suffix.to_ascii_lowercase());
            let host = u_host.to_ascii_lowercase();
            host.len() > dotted.len() && host.ends_with(&dotted)
        }
        None => p_host.eq_ignore_ascii_case(u_host),
    };
    let norm = |port: &str, scheme: &str| {
        if port.is_empty() { default_port(scheme).to_owned() } else { port.to_owned() }
    };
    let port_ok = p_port == "*" || norm(p_port, p_scheme) == norm(u_port, u_scheme);
    let tail_ok = match p_tail.strip_suffix('*') {
        Some(prefix) => u_tail.starts_with(prefix),
        None if p_tail.is_empty() => true,
        None => p_tail == u_tail || (p_tail == "/" && u_tail.is_empty()),
    };
    host_ok && port_ok && tail_ok
}

#[cfg(test)]
mod tests {
    use super::ApplicationType::{Native, Web};
    use super::RedirectError::*;
    use super::*;

    fn check(raw: &str, t: ApplicationType) -> Result<(), RedirectError> {
        RedirectUri::parse(raw, t).map(|_| ())
    }

    #[test]
    fn native_clients_get_loopback_private_schemes_and_https() {
        for ok in [
            "http://127.0.0.1:33418/callback",
            "http://localhost:8080/cb?x=1",
            "http://[::1]:9000/",
            "http://127.0.0.1/cb",
            "com.example.app:/oauth2redirect",
            "com.example.app:///cb",
            "https://app.example.com/cb",
        ] {
            assert_eq!(check(ok, Native), Ok(()), "{ok}");
        }
        assert_eq!(check("http://app.example.com/cb", Native), Err(InsecureHttp));
        assert_eq!(check("http://127.0.0.1.nip.io/cb", Native), Err(InsecureHttp));
        assert_eq!(check("myapp:/cb", Native), Err(BadPrivateScheme));
    }

    #[test]
    fn web_clients_need_https_on_a_public_host() {
        assert_eq!(check("https://app.example.com/cb", Web), Ok(()));
        assert_eq!(check("http://localhost:3000/cb", Web), Err(WebNeedsHttps));
        assert_eq!(check("https://localhost/cb", Web), Err(WebNeedsHttps));
        assert_eq!(check("https://127.0.0.1/cb", Web), Err(WebNeedsHttps));
        assert_eq!(check("com.example.app:/cb", Web), Err(WebNeedsHttps));
    }

    #[test]
    fn dangerous_and_ambiguous_uris_are_refused_for_everyone() {
        let cases = [
            ("javascript:alert(1)", ForbiddenScheme),
            ("JavaScript:alert(1)", ForbiddenScheme),
            ("data:text/html,<script>alert(1)</script>", ForbiddenScheme),
            ("file:///etc/passwd", ForbiddenScheme),
            ("vbscript:msgbox", ForbiddenScheme),
            (" javascript:alert(1)", Ambiguous),
            ("java\tscript:alert(1)", Ambiguous),
            ("https://user@evil.example/cb", UserInfo),
            ("https://app.example.com@evil.example/cb", UserInfo),
            ("https://user:pw@app.example.com/cb", UserInfo),
            ("https://app.example.com/cb#frag", Fragment),
            ("https://app.example.com/a/../cb", Ambiguous),
            ("https://app.example.com/./cb", Ambiguous),
            ("https://app.example.com/%2e%2e/cb", Ambiguous),
            ("https://app.example.com/a%2Fb", Ambiguous),
            ("https://app.example.com/a%5cb", Ambiguous),
            ("https://app.example.com\\@evil.example/", Ambiguous),
            ("https://app.example.com/cb%00", Ambiguous),
            ("/relative/cb", NotAbsolute),
            ("", Ambiguous),
        ];
        for (raw, expected) in cases {
            for t in [Native, Web] {
                assert_eq!(check(raw, t), Err(expected.clone()), "{raw} as {t:?}");
            }
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_ports() {
        let reg = RedirectUri::parse("http://127.0.0.1:33418/callback", Native).unwrap();
        assert!(reg.matches("http://127.0.0.1:33418/callback"));
        assert!(reg.matches("http://127.0.0.1:50000/callback"), "any loopback port (RFC 8252 §7.3)");
        assert!(reg.matches("http://127.0.0.1/callback"));
        assert!(!reg.matches("http://127.0.0.1:50000/other"));
        assert!(!reg.matches("http://localhost:33418/callback"), "the host is not interchangeable");
        assert!(!reg.matches("https://127.0.0.1:33418/callback"));
        assert!(!reg.matches("http://127.0.0.1:33418/callback?x=1"));
        assert!(!reg.matches("http://127.0.0.1:33418/a/../callback"));
        let web = RedirectUri::parse("https://app.example.com/cb", Native).unwrap();
        assert!(web.matches("https://app.example.com/cb"));
        assert!(!web.matches("https://app.example.com:8443/cb"));
        assert!(!web.matches("https://app.example.com/cb/"));
        assert!(!web.matches("https://APP.example.com/cb"), "exact string comparison");
    }

    #[test]
    fn allow_lists_narrow_registration() {
        let list =
            RedirectAllowList::only(["http://localhost:*", "https://*.example.com/cb", "com.example.app:*"]);
        let ok = |raw: &str| list.validate(raw, Native).is_ok();
        assert!(ok("http://localhost:1234"));
        assert!(ok("http://localhost:1234/"));
        assert!(ok("http://localhost:1234/callback"), "no path in the pattern: any path");
        assert!(ok("http://localhost:6274/oauth/callback?x=1"));
        assert!(!ok("http://localhost.evil.example:1234/cb"), "the host is still exact");
        assert!(ok("https://app.example.com/cb"));
        assert!(ok("https://a.b.example.com/cb"));
        assert!(!ok("https://example.com/cb"), "* stands for at least one label");
        assert!(!ok("https://evilexample.com/cb"));
        assert!(!ok("https://app.example.com/cb2"));
        assert!(ok("com.example.app:/oauth"));
        assert!(ok("Com.Example.App:/oauth"), "a private-use scheme in any case");
        assert!(!ok("http://127.0.0.1:1234/"), "loopback by IP is another host");
        assert!(ok("HTTPS://A.EXAMPLE.COM/cb"), "schemes and hosts in any case, the default port too");
        for repaired in [
            "https:/'%61pp.example.com/cb",
            "https:app.example.com/cb",
            "https://%61pp.example.com/cb",
            "https://a'pp.example.com/cb",
            "https://app\u{3002}example.com/cb",
        ] {
            assert_eq!(list.validate(repaired, Native), Err(Ambiguous), "{repaired}");
        }
        assert!(ok("https://a.example.com:443/cb"));
        let loopback = RedirectAllowList::any();
        for respelled in [
            "http://127.0.01:9/cb",
            "http://0x7f.0.0.1:9/cb",
            "http://127.0.0.1:009/cb",
            "http://2130706433:9/cb",
        ] {
            assert_eq!(loopback.validate(respelled, Native), Err(Ambiguous), "{respelled}");
        }
        assert!(loopback.validate("http://[::1]:9/cb", Native).is_ok());
        let prefix = RedirectAllowList::only(["https://app.example.com/oauth/*"]);
        assert!(prefix.validate("https://app.example.com/oauth/done", Native).is_ok());
        assert!(prefix.validate("https://app.example.com/other", Native).is_err());
        let nothing = RedirectAllowList::only(Vec::<String>::new());
        assert_eq!(nothing.validate("https://app.example.com/cb", Native), Err(NotAllowed));
        assert!(RedirectAllowList::any().validate("https://app.example.com/cb", Native).is_ok());
        // The allow-list never overrides the safety rules.
        let everything = RedirectAllowList::only(["javascript:*", "http://*.example.com/*"]);
        assert_eq!(everything.validate("javascript:alert(1)", Native), Err(ForbiddenScheme));
        assert_eq!(everything.validate("http://app.example.com/cb", Native), Err(InsecureHttp));
    }

    #[test]
    fn serde_round_trip_revalidates() {
        let uri = RedirectUri::parse("http://127.0.0.1:9/cb", Native).unwrap();
        let json = serde_json::to_string(&uri).unwrap();
        let back: RedirectUri = serde_json::from_str(&json).unwrap();
        assert!(back.matches("http://127.0.0.1:10/cb"), "loopback flag recomputed");
        assert!(serde_json::from_str::<RedirectUri>("\"javascript:alert(1)\"").is_err());
    }
}
