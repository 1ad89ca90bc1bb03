//! What of a client's request headers reaches an HTTP upstream, and what the gateway adds.
//!
//! Dropped: hop-by-hop headers (and those `Connection` names); the client's credentials
//! (`Authorization`, `Cookie`) and `Host`; every header whose name contains `_` (nginx's
//! `underscores_in_headers off`: WSGI, CGI and PHP servers read `X_Mcpgate_Subject` as
//! `X-Mcpgate-Subject`); every name that is one of ours once `_` is read as `-`
//! (`x-mcpgate-*`); and every header that claims to say where the request came from
//! (`Forwarded`, `X-Forwarded-*`, `X-Real-IP` and the like). Added: the caller's identity (by
//! the proxy), and `X-Forwarded-For` (the client address as the gateway determined it),
//! `X-Forwarded-Proto` and `X-Forwarded-Host` (from the public URL).

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request};
use mcpgate::client_address::{TrustedProxies, client_address};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

// Made at compile time (`from_static` outside a const checks its argument on every call).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The prefix of the identity headers the gateway sets.
const IDENTITY_PREFIX: &str = "x-mcpgate-";

/// Whether `name` is hop-by-hop by itself (without `Connection` naming it).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// Removes hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // The common case has none: one look at each name, nothing allocated.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

/// Whether a client's header named `name` must not reach the upstream (beyond hop-by-hop).
fn withheld(name: &HeaderName) -> bool {
    let name = name.as_str(); // lower case already
    if name.contains('_') {
        return true;
    }
    matches!(
        name,
        "authorization"
            | "cookie"
            | "host"
            | "forwarded"
            | "x-real-ip"
            | "x-client-ip"
            | "true-client-ip"
            | "cf-connecting-ip"
            | "fastly-client-ip"
            | "x-cluster-client-ip"
            | "x-original-forwarded-for"
    ) || name.starts_with(IDENTITY_PREFIX)
        || name.starts_with("x-forwarded-")
}

/// Whether `name`, read the way a CGI-style server reads it (`_` as `-`, any case), is one of
/// the gateway's identity headers: a second line of defence behind [`withheld`].
fn reads_as_identity(name: &str) -> bool {
    name.len() >= IDENTITY_PREFIX.len()
        && name.as_bytes()[..IDENTITY_PREFIX.len()]
            .iter()
            .map(|b| if *b == b'_' { b'-' } else { b.to_ascii_lowercase() })
            .eq(IDENTITY_PREFIX.bytes())
}

/// Removes everything [`withheld`] names from a client's request headers.
pub fn strip_client_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    // Every request to the MCP endpoint carries these two: removed by name, so that the common
    // request has nothing else withheld, and the scan below finds nothing and allocates nothing.
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    let refused = |name: &HeaderName| withheld(name) || reads_as_identity(name.as_str());
    if !headers.keys().any(refused) {
        return;
    }
    let names: Vec<HeaderName> = headers.keys().filter(|name| refused(name)).cloned().collect();
    for name in names {
        headers.remove(&name);
    }
}

/// The `X-Forwarded-*` headers the gateway sets: who the client is, and how it reached us.
#[derive(Debug, Clone)]
pub struct ForwardedHeaders {
    trusted_proxies: TrustedProxies,
    proto: HeaderValue,
    host: HeaderValue,
}

impl ForwardedHeaders {
    /// For a gateway reached at `public_url` (its scheme and authority), behind
    /// `trusted_proxies`. `None` when the URL has no host.
    pub fn new(public_url: &str, trusted_proxies: TrustedProxies) -> Option<Self> {
        let url = url::Url::parse(public_url).ok()?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        Some(Self {
            trusted_proxies,
            proto: HeaderValue::from_str(url.scheme()).ok()?,
            host: HeaderValue::from_str(&host).ok()?,
        })
    }

    /// The client's address for `request`: its peer, or what trusted proxies forwarded.
    pub fn client<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        client_address(&self.trusted_proxies, peer, request.headers())
    }

    /// Sets the headers, for a request from `client` (its `X-Forwarded-For` left out when unknown).
    pub fn apply(&self, headers: &mut HeaderMap, client: Option<IpAddr>) {
        if let Some(client) = client
            && let Ok(value) = address_value(client)
        {
            headers.insert(X_FORWARDED_FOR, value);
        }
        headers.insert(X_FORWARDED_PROTO, self.proto.clone());
        headers.insert(X_FORWARDED_HOST, self.host.clone());
    }
}

/// `address` as a header value; an IPv4 address is written digit by digit (this runs for
/// every request, and `Display` goes through the formatting machinery and a `String`).
fn address_value(address: IpAddr) -> Result<HeaderValue, header::InvalidHeaderValue> {
    let IpAddr::V4(v4) = address else { return HeaderValue::from_str(&address.to_string()) };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for digit in &digits[skip..] {
            text[len] = b'0' + digit;
            len += 1;
        }
    }
    HeaderValue::from_bytes(&text[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn look_alikes_of_our_headers_and_every_underscore_name_are_dropped() {
        let mut h = headers(&[
            ("X_Mcpgate_Subject", "root"),
            ("x_mcpgate_groups", "admins"),
            ("X-Mcpgate_Email_Verified", "true"),
            ("X-MCPGATE-SUBJECT", "root"),
            ("x-mcpgate-anything", "1"),
            ("some_other_header", "1"),
            ("mcp-session-id", "s"),
            ("accept", "application/json"),
        ]);
        strip_client_headers(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "mcp-session-id"]);
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for address in
            ["0.0.0.0", "1.2.3.4", "10.100.255.9", "192.168.0.10", "255.255.255.255", "::1", "2001:db8::7"]
        {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(address_value(ip).unwrap(), ip.to_string().as_str());
        }
    }

    #[test]
    fn identity_names_compare_after_normalisation() {
        for name in ["x-mcpgate-subject", "X_MCPGATE_SUBJECT", "x_Mcpgate-groups", "X-Mcpgate-"] {
            assert!(reads_as_identity(name), "{name}");
        }
        for name in ["x-mcpgat", "x-mcpgatesubject", "mcpgate-subject", "y-mcpgate-subject"] {
            assert!(!reads_as_identity(name), "{name}");
        }
    }

    #[test]
    fn the_clients_forwarding_claims_are_replaced_by_ours() {
        let mut h = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-port", "1"),
            ("forwarded", "for=10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("true-client-ip", "10.0.0.1"),
            ("authorization", "Bearer t"),
            ("cookie", "a=b"),
            ("host", "gw"),
            ("connection", "x-private"),
            ("x-private", "1"),
        ]);
        strip_client_headers(&mut h);
        assert!(h.is_empty(), "{h:?}");
        let forwarded =
            ForwardedHeaders::new("https://mcp.example.com:8443/base", TrustedProxies::none()).unwrap();
        forwarded.apply(&mut h, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(h["x-forwarded-for"], "192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "mcp.example.com:8443");
        let mut h = HeaderMap::new();
        ForwardedHeaders::new("http://127.0.0.1:8000", TrustedProxies::none()).unwrap().apply(&mut h, None);
        assert!(h.get("x-forwarded-for").is_none());
        assert_eq!(h["x-forwarded-host"], "127.0.0.1:8000");
    }
}
