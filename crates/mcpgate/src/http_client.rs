//! Outbound HTTP: one way to build a client with timeouts and to read a bounded response body.
//!
//! Every call mcpgate makes to an identity provider goes through here, so that none can hang
//! (E2) and none can make us buffer an unbounded body.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

/// Timeouts for calls to identity providers.
#[derive(Debug, Clone, Copy)]
pub struct OutboundTimeouts {
    /// Time allowed to establish the connection.
    pub connect: Duration,
    /// Time allowed for the whole exchange, body included.
    pub total: Duration,
}

impl Default for OutboundTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), total: Duration::from_secs(10) }
    }
}

/// Whether `raw` is a URL we may fetch keys or documents from: https, or http to a loopback
/// host (a provider running beside us, as in tests).
#[cfg_attr(not(feature = "proxy"), allow(dead_code))]
pub(crate) fn is_secure_url(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else { return false };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return false,
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// A client for identity-provider calls: timeouts set, redirects not followed (a redirect from
/// a JWKS or introspection endpoint is a configuration error to surface, not to chase).
pub fn outbound_client(timeouts: OutboundTimeouts) -> reqwest::Client {
    outbound_client_builder(timeouts)
        .build()
        // Building fails only when the TLS backend cannot initialise, which no input can cause;
        // fall back to reqwest's defaults rather than panic.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The settings of [`outbound_client`], for a client that needs more (a DNS resolver).
pub(crate) fn outbound_client_builder(timeouts: OutboundTimeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
}

/// Freshness from a Cache-Control value: `max-age`, with `no-cache`/`no-store` as zero
/// (they win over any `max-age`); `None` when the header says nothing about freshness.
pub(crate) fn cache_control_ttl(value: &str) -> Option<Duration> {
    let mut ttl = None;
    for directive in value.split(',') {
        let (name, arg) = directive.trim().split_once('=').unwrap_or((directive.trim(), ""));
        match name.to_ascii_lowercase().as_str() {
            "no-cache" | "no-store" => return Some(Duration::ZERO),
            "max-age" => ttl = arg.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs),
            _ => {}
        }
    }
    ttl
}

/// A response whose body was read whole, within a size bound.
#[derive(Debug)]
pub struct BoundedResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Why an outbound call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// Connecting, sending or receiving failed (including timeouts).
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The body exceeded the bound.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

/// Sends `request` and reads at most `limit` bytes of body.
pub async fn send_bounded(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<BoundedResponse, OutboundError> {
    let mut response = request.send().await?;
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(OutboundError::TooLarge(limit));
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(OutboundError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(BoundedResponse { status, headers, body: body.freeze() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age_and_no_store() {
        assert_eq!(cache_control_ttl("public, max-age=3600"), Some(Duration::from_secs(3600)));
        assert_eq!(cache_control_ttl("max-age=\"120\", must-revalidate"), Some(Duration::from_secs(120)));
        assert_eq!(cache_control_ttl("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_control_ttl("public"), None);
        assert_eq!(cache_control_ttl("max-age=abc"), None);
    }
}
