//! Client ID metadata documents (B5): a client whose `client_id` is an https URL is described
//! by the JSON document at that URL, fetched on first use instead of registered.
//!
//! Fetching a URL a stranger chose is a server-side request forgery risk, so the fetch is
//! fenced: https only; the host's addresses must be public (checked in the DNS resolver, so
//! what is checked is what is connected to, and for IP literals before any request); no
//! redirects, no proxy; a size bound and timeouts; a rate limit per host; and failures
//! remembered briefly. The document's `client_id` must equal the URL exactly, and its
//! `redirect_uris` are the only ones accepted, within the operator's allow-list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use serde_json::Value;

use super::client::{ClientRecord, ClientSource, TokenEndpointAuthMethod};
use crate::http_client::{OutboundTimeouts, cache_control_ttl, outbound_client_builder, send_bounded};
use crate::ratelimit::{RateLimit, RateLimiter};

/// Largest document read (the draft suggests 5 KB).
const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Cache bounds: the document's own Cache-Control within these, an hour when it says nothing.
const MIN_FRESH: Duration = Duration::from_secs(60);
const DEFAULT_FRESH: Duration = Duration::from_secs(3600);
const MAX_FRESH: Duration = Duration::from_secs(24 * 3600);
/// How long a failed fetch is remembered (and not retried).
const FAILURE_MEMORY: Duration = Duration::from_secs(30);

/// Whether and how client ID metadata documents are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataDocumentPolicy {
    /// Accept URL client ids at all (advertised in the metadata). Default: yes.
    pub enabled: bool,
    /// Fetch from loopback and private addresses, and over plain http. For tests and local
    /// development only: it lets a client make this server fetch from inside its network.
    pub allow_private_addresses: bool,
}

impl Default for MetadataDocumentPolicy {
    fn default() -> Self {
        Self { enabled: true, allow_private_addresses: false }
    }
}

/// Why a metadata document could not be used; the text is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataDocumentError {
    /// The URL is not a usable client id.
    #[error("the client_id URL is not usable: {0}")]
    BadUrl(&'static str),
    /// The host resolves to an address this server does not fetch from.
    #[error("the client_id URL's host is not a public address")]
    PrivateAddress,
    /// Too many fetches from this host lately.
    #[error("too many metadata documents fetched from this host; try again later")]
    RateLimited,
    /// The fetch failed (unreachable, timeout, a redirect, an error status).
    #[error("the client's metadata document could not be fetched: {0}")]
    Fetch(String),
    /// The document is not acceptable client metadata.
    #[error("the client's metadata document is invalid: {0}")]
    Invalid(String),
}

#[derive(Clone)]
enum Cached {
    Client(ClientRecord, Instant),
    Failed(MetadataDocumentError, Instant),
}

/// Fetches, checks and caches metadata documents.
pub(crate) struct MetadataDocuments {
    policy: MetadataDocumentPolicy,
    http: reqwest::Client,
    cache: Cache<String, Cached>,
    per_host: RateLimiter,
}

impl MetadataDocuments {
    pub(crate) fn new(policy: MetadataDocumentPolicy) -> Self {
        let timeouts = OutboundTimeouts { connect: Duration::from_secs(3), total: Duration::from_secs(5) };
        let mut builder = outbound_client_builder(timeouts).no_proxy();
        if !policy.allow_private_addresses {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Self {
            policy,
            http: builder.build().unwrap_or_default(),
            cache: Cache::builder().max_capacity(10_000).time_to_live(MAX_FRESH).build(),
            per_host: RateLimiter::new(RateLimit::per_minute(30, 10), 10_000),
        }
    }

    /// Whether documents are accepted at all.
    pub(crate) fn enabled(&self) -> bool {
        self.policy.enabled
    }

    /// Whether `client_id` names a metadata document (rather than a registered client).
    pub(crate) fn applies_to(&self, client_id: &str) -> bool {
        self.policy.enabled
            && (client_id.starts_with("https://")
                || (self.policy.allow_private_addresses && client_id.starts_with("http://")))
    }

    /// The client the document at `client_id` describes; `validate` turns its metadata into a
    /// record by the same rules as dynamic registration.
    pub(crate) async fn client(
        &self,
        client_id: &str,
        validate: impl FnOnce(Value) -> Result<ClientRecord, String>,
    ) -> Result<ClientRecord, MetadataDocumentError> {
        let now = Instant::now();
        match self.cache.get(client_id) {
            Some(Cached::Client(client, until)) if until > now => return Ok(client),
            Some(Cached::Failed(error, until)) if until > now => return Err(error),
            _ => {}
        }
        let outcome = self.fetch(client_id, validate).await;
        let entry = match &outcome {
            Ok((client, fresh)) => Cached::Client(client.clone(), now + *fresh),
            // A refused rate is not the document's fault: not remembered.
            Err(MetadataDocumentError::RateLimited) => return Err(MetadataDocumentError::RateLimited),
            Err(error) => Cached::Failed(error.clone(), now + FAILURE_MEMORY),
        };
        self.cache.insert(client_id.to_owned(), entry);
        outcome.map(|(client, _)| client)
    }

    async fn fetch(
        &self,
        client_id: &str,
        validate: impl FnOnce(Value) -> Result<ClientRecord, String>,
    ) -> Result<(ClientRecord, Duration), MetadataDocumentError> {
        let url = self.check_url(client_id)?;
        let host = url.host_str().unwrap_or_default();
        self.per_host.check(host).map_err(|_| MetadataDocumentError::RateLimited)?;
        let request = self.http.get(url.clone()).header(http::header::ACCEPT, "application/json");
        let response = send_bounded(request, MAX_DOCUMENT_BYTES).await.map_err(|e| {
            // The resolver's refusal surfaces as a connect error; name it for what it is.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(error) = cause {
                if error.is::<NoPublicAddress>() {
                    return MetadataDocumentError::PrivateAddress;
                }
                cause = error.source();
            }
            MetadataDocumentError::Fetch(e.to_string())
        })?;
        if response.status != http::StatusCode::OK {
            return Err(MetadataDocumentError::Fetch(format!("status {}", response.status.as_u16())));
        }
        let document: Value = serde_json::from_slice(&response.body)
            .map_err(|_| MetadataDocumentError::Invalid("not JSON".into()))?;
        if document.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err(MetadataDocumentError::Invalid("its client_id is not exactly its URL".into()));
        }
        // Shared secrets have no place in a public document (the draft forbids them).
        let method = document.get("token_endpoint_auth_method").and_then(Value::as_str).unwrap_or("none");
        if method != "none" || document.get("client_secret").is_some() {
            return Err(MetadataDocumentError::Invalid("token_endpoint_auth_method must be none".into()));
        }
        let mut client = validate(document).map_err(MetadataDocumentError::Invalid)?;
        client.client_id = client_id.to_owned();
        client.auth_method = TokenEndpointAuthMethod::None;
        client.secret_digest = None;
        client.source = ClientSource::MetadataDocument;
        let fresh = response
            .headers
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(cache_control_ttl)
            .unwrap_or(DEFAULT_FRESH)
            .clamp(MIN_FRESH, MAX_FRESH);
        Ok((client, fresh))
    }

    /// The URL rules: https (http only when private addresses are allowed), a path, no
    /// credentials, fragment or dot segments; an IP-literal host must be public.
    fn check_url(&self, client_id: &str) -> Result<url::Url, MetadataDocumentError> {
        use MetadataDocumentError::BadUrl;
        if client_id.len() > 2048 {
            return Err(BadUrl("too long"));
        }
        let url = url::Url::parse(client_id).map_err(|_| BadUrl("not a URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.policy.allow_private_addresses => {}
            _ => return Err(BadUrl("it must be https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BadUrl("it must not contain credentials"));
        }
        if url.fragment().is_some() {
            return Err(BadUrl("it must not contain a fragment"));
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err(BadUrl("it must have a path"));
        }
        // The parser resolves dot segments; the id must not have needed it.
        let raw_path = client_id.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
        if raw_path
            .split(['/', '?'])
            .any(|segment| matches!(segment, "." | ".." | "%2e" | "%2E" | "%2e%2e" | "%2E%2E"))
        {
            return Err(BadUrl("it must not contain dot segments"));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(BadUrl("it must name a host")),
        };
        if let Some(ip) = literal
            && !self.policy.allow_private_addresses
            && !is_public(ip)
        {
            return Err(MetadataDocumentError::PrivateAddress);
        }
        Ok(url)
    }
}

/// The resolver's refusal.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to non-public addresses")]
struct NoPublicAddress;

/// A DNS resolver that keeps only public addresses, so that a name pointing inside the
/// network (or re-pointed there after a check) is never connected to.
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| is_public(a.ip())).collect();
            if addresses.is_empty() {
                return Err(Box::new(NoPublicAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared,
/// documentation, benchmarking, multicast, reserved or unspecified — also when embedded in
/// an IPv6 address (mapped, NAT64).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::from([0u8; 16]))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 192 && b == 0 && c == 0)) // IETF protocol assignments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_fetch() {
        let strict = MetadataDocuments::new(MetadataDocumentPolicy::default());
        for (url, why) in [
            ("http://client.example/meta.json", "it must be https"),
            ("https://client.example", "it must have a path"),
            ("https://client.example/", "it must have a path"),
            ("https://user:pw@client.example/meta.json", "it must not contain credentials"),
            ("https://client.example/meta.json#x", "it must not contain a fragment"),
            ("https://client.example/a/../meta.json", "it must not contain dot segments"),
            ("https://client.example/a/%2e%2e/meta.json", "it must not contain dot segments"),
        ] {
            assert_eq!(strict.check_url(url).unwrap_err(), MetadataDocumentError::BadUrl(why), "{url}");
        }
        for literal in ["https://127.0.0.1/meta.json", "https://[::1]/m", "https://169.254.169.254/latest"] {
            assert_eq!(strict.check_url(literal).unwrap_err(), MetadataDocumentError::PrivateAddress);
        }
        assert!(strict.check_url("https://client.example/meta.json").is_ok());
        assert!(strict.applies_to("https://client.example/meta.json"));
        assert!(!strict.applies_to("http://127.0.0.1/meta.json"));
        assert!(!strict.applies_to("3f9c0a"));

        let lax =
            MetadataDocuments::new(MetadataDocumentPolicy { enabled: true, allow_private_addresses: true });
        assert!(lax.check_url("http://127.0.0.1:9/meta.json").is_ok());
        let off =
            MetadataDocuments::new(MetadataDocumentPolicy { enabled: false, allow_private_addresses: false });
        assert!(!off.applies_to("https://client.example/meta.json"));
    }
}
