//! Who is calling: the client's IP address as mcpgate determines it, one rule for the rate
//! limits and for the `X-Forwarded-For` the gateway sends on (E3).
//!
//! The connection's peer is the client — unless the peer is one of the operator's trusted
//! proxies. Then the client is the right-most address in `X-Forwarded-For` that is not itself a
//! trusted proxy: each proxy appends the address it saw, so everything to the left of that is
//! whatever the client chose to write, and is ignored.
//!
//! ```
//! use mcpgate::client_address::{TrustedProxies, client_address};
//!
//! let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
//! // Through the proxy: the address it appended.
//! let via_proxy = client_address(&proxies, Some("10.1.2.3:443".parse().unwrap()), &headers);
//! assert_eq!(via_proxy, Some("203.0.113.9".parse().unwrap()));
//! // Straight from a client: its own header means nothing.
//! let direct = client_address(&proxies, Some("198.51.100.4:5000".parse().unwrap()), &headers);
//! assert_eq!(direct, Some("198.51.100.4".parse().unwrap()));
//! ```

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

/// The `X-Forwarded-For` header.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks whose connections are reverse proxies that append the client's address to
/// `X-Forwarded-For`. Empty (the default): every peer is the client itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A trusted-proxy entry that is neither an address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR block (10.0.0.0/8, fd00::/8)")]
pub struct BadNetwork(pub String);

impl TrustedProxies {
    /// No trusted proxies.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses addresses (`10.0.0.1`) and CIDR blocks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, BadNetwork> {
        entries.into_iter().map(|e| network(e.as_ref())).collect::<Result<Vec<_>, _>>().map(Self)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `10.0.0.0/8`, or a single address as its own block.
fn network(text: &str) -> Result<IpNet, BadNetwork> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| BadNetwork(text.to_owned()))
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports) is
/// the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The client's address: the connection's `peer`, or — when the peer is a trusted proxy — the
/// right-most untrusted address of `X-Forwarded-For` (all header lines, in order). `None` only
/// without a peer (a server run without connection info).
pub fn client_address(
    proxies: &TrustedProxies,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = canonical(peer?.ip());
    if !proxies.contains(peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        // A value that is no address ends the chain: what lies left of it cannot be trusted,
        // and the last trusted hop is the best we know.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !proxies.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[2001:db8::1]:443`,
/// `192.0.2.1:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    IpAddr::from_str(hop).ok().or_else(|| SocketAddr::from_str(hop).ok().map(|s| s.ip())).map(canonical)
}

/// The key a rate limit counts a client under: its IPv4 address, or its IPv6 /64 — one
/// subscriber's prefix, inside which an address costs nothing to change.
pub fn rate_limit_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn peer(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_writes() {
        let headers = forwarded(&["10.0.0.1"]);
        assert_eq!(
            client_address(&TrustedProxies::none(), peer("127.0.0.1:4000"), &headers),
            Some([127, 0, 0, 1].into())
        );
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(client_address(&trusted, peer("192.0.2.8:1"), &headers), Some([192, 0, 2, 8].into()));
        assert_eq!(client_address(&trusted, None, &headers), None);
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "fd00::/8"]);
        // Two proxies: the client wrote 1.1.1.1 itself, the outer proxy saw 203.0.113.5.
        let headers = forwarded(&["1.1.1.1, 203.0.113.5", "10.0.0.9"]);
        assert_eq!(client_address(&trusted, peer("[fd00::2]:80"), &headers), Some([203, 0, 113, 5].into()));
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            client_address(&trusted, peer("10.0.0.2:80"), &HeaderMap::new()),
            Some([10, 0, 0, 2].into())
        );
        // Garbage ends the chain at the last good hop.
        let headers = forwarded(&["203.0.113.5, not-an-ip, 10.0.0.3"]);
        assert_eq!(client_address(&trusted, peer("10.0.0.2:80"), &headers), Some([10, 0, 0, 3].into()));
        // Ports and brackets, as some proxies write them.
        let headers = forwarded(&["[2001:db8::7]:443"]);
        assert_eq!(
            client_address(&trusted, peer("10.0.0.2:80"), &headers),
            Some("2001:db8::7".parse().unwrap())
        );
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_single_addresses_are_blocks() {
        let trusted = proxies(&["127.0.0.1"]);
        assert!(trusted.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!trusted.contains([127, 0, 0, 2].into()));
        let bad = TrustedProxies::parse(["10.0.0.0/33"]);
        assert_eq!(bad, Err(BadNetwork("10.0.0.0/33".into())));
        let bad = TrustedProxies::parse(["proxy.internal"]);
        assert!(bad.is_err());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let key = |s: &str| rate_limit_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
    }
}
