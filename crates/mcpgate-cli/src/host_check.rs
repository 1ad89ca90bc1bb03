//! The `Host` a request names must be the gateway's own (DNS rebinding: a name the attacker
//! controls, made to resolve to the gateway's address, arrives as `Host: evil.example`).
//!
//! Allowed: `public_url`'s host and port; for a loopback `public_url`, the other loopback names
//! at that port; and `server.allowed_hosts`. Behind a trusted proxy the name it forwarded
//! (`X-Forwarded-Host`) is checked instead of its own `Host`. Anything else is 403. The probes
//! and the metrics scrape (`/healthz`, `/readyz`, `/metrics`) are answered whatever the `Host`,
//! since orchestrators reach them by address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use futures::future::{Either, MapOk, Ready, TryFutureExt, ready};
use http::StatusCode;
use mcpgate::client_address::TrustedProxies;
use tower::{Layer, Service};

/// Paths answered for any `Host`.
const ANY_HOST_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
/// The names of the loopback interface, interchangeable for a loopback `public_url`.
const LOOPBACK_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// A host name (lower case) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: u16,
}

/// `host[:port]` split without allocating; `None` for anything else (userinfo, a path, an
/// empty host, a port that is not plain decimal). An IPv6 host keeps its brackets.
fn split_authority(text: &str) -> Option<(&str, Option<u16>)> {
    let text = text.trim();
    if text.is_empty() || text.contains(['@', '/', '?', '#', ' ', '\\']) {
        return None;
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            (&text[..end + 2], &rest[end + 1..])
        }
        None => match text.split_once(':') {
            Some((host, _)) => (host, &text[host.len()..]),
            None => (text, ""),
        },
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        Some(digits)
            if !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(digits.parse().ok()?)
        }
        _ => return None,
    };
    (!host.is_empty()).then_some((host, port))
}

impl Authority {
    fn parse(text: &str, default_port: u16) -> Option<Self> {
        let (host, port) = split_authority(text)?;
        Some(Self { host: host.to_ascii_lowercase(), port: port.unwrap_or(default_port) })
    }

    /// Whether `host` and `port` name this authority (host compared without regard to case).
    fn is(&self, host: &str, port: u16) -> bool {
        port == self.port && host.eq_ignore_ascii_case(&self.host)
    }
}

/// The names a request may use to reach the gateway.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    allowed: Vec<Authority>,
    default_port: u16,
    trusted_proxies: TrustedProxies,
}

impl AllowedHosts {
    /// For a gateway at `public_url`, also answering to `extra` (`host` or `host:port`),
    /// reading `X-Forwarded-Host` from `trusted_proxies`.
    pub fn new(public_url: &str, extra: &[String], trusted_proxies: TrustedProxies) -> Result<Self, String> {
        let url = url::Url::parse(public_url).map_err(|e| format!("{public_url}: {e}"))?;
        let default_port = url.port_or_known_default().unwrap_or(80);
        let host = url.host_str().ok_or_else(|| format!("{public_url} has no host"))?.to_ascii_lowercase();
        let mut allowed = vec![Authority { host: host.clone(), port: default_port }];
        if LOOPBACK_NAMES.contains(&host.as_str()) {
            allowed.extend(
                LOOPBACK_NAMES.iter().map(|name| Authority { host: (*name).into(), port: default_port }),
            );
        }
        for entry in extra {
            allowed.push(
                Authority::parse(entry, default_port)
                    .ok_or_else(|| format!("{entry:?} is not a host name (host or host:port)"))?,
            );
        }
        Ok(Self { allowed, default_port, trusted_proxies })
    }

    /// Whether `request` names one of the allowed authorities.
    fn admits<B>(&self, request: &http::Request<B>) -> bool {
        let headers = request.headers();
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = peer.filter(|ip| self.trusted_proxies.contains(*ip)).and_then(|_| {
            let last = headers.get_all("x-forwarded-host").iter().next_back()?;
            last.to_str().ok()?.rsplit(',').next()
        });
        let named = forwarded.or_else(|| headers.get(http::header::HOST).and_then(|v| v.to_str().ok()));
        // Split once, then compare with each allowed name (a loopback gateway has four).
        let admitted = |name: &str| {
            split_authority(name).is_some_and(|(host, port)| {
                let port = port.unwrap_or(self.default_port);
                self.allowed.iter().any(|a| a.is(host, port))
            })
        };
        match named {
            Some(name) => admitted(name),
            // HTTP/2 carries the authority in the URI instead of a Host header.
            None => request.uri().authority().is_some_and(|a| admitted(a.as_str())),
        }
    }

    /// The layer enforcing these names.
    pub fn layer(self) -> HostCheckLayer {
        HostCheckLayer { allowed: Arc::new(self) }
    }
}

/// Answers 403 to a request naming a `Host` that is not the gateway's (see the module docs).
#[derive(Debug, Clone)]
pub struct HostCheckLayer {
    allowed: Arc<AllowedHosts>,
}

impl<S> Layer<S> for HostCheckLayer {
    type Service = HostCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HostCheck { inner, allowed: self.allowed.clone() }
    }
}

/// The service of [`HostCheckLayer`].
#[derive(Debug, Clone)]
pub struct HostCheck<S> {
    inner: S,
    allowed: Arc<AllowedHosts>,
}

impl<S> Service<Request> for HostCheck<S>
where
    S: Service<Request, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    // No box: this runs for every request.
    type Future = Either<Ready<Result<Response, Infallible>>, MapOk<S::Future, fn(Response) -> Response>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if ANY_HOST_PATHS.contains(&request.uri().path()) || self.allowed.admits(&request) {
            return Either::Right(
                self.inner.call(request).map_ok(std::convert::identity as fn(Response) -> Response),
            );
        }
        let refused =
            (StatusCode::FORBIDDEN, "Forbidden: this server does not answer to that Host\n").into_response();
        Either::Left(ready(Ok(refused)))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(public_url: &str, extra: &[&str], trusted: &[&str]) -> Router {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let allowed = AllowedHosts::new(public_url, &extra, TrustedProxies::parse(trusted).unwrap()).unwrap();
        Router::new()
            .route("/mcp", get(|| async { "ok" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(allowed.layer())
    }

    async fn status(app: &Router, path: &str, headers: &[(&str, &str)], peer: &str) -> u16 {
        let mut request = Request::get(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut request = request.body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        app.clone().oneshot(request).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn only_our_own_names_are_answered() {
        let app = app("https://mcp.example.com", &["mcp.internal:8443"], &[]);
        let peer = "192.0.2.1:1";
        assert_eq!(status(&app, "/mcp", &[("host", "mcp.example.com")], peer).await, 200);
        assert_eq!(status(&app, "/mcp", &[("host", "MCP.example.com:443")], peer).await, 200);
        assert_eq!(status(&app, "/mcp", &[("host", "mcp.internal:8443")], peer).await, 200);
        for refused in [
            "evil.example",
            "mcp.example.com:8443",
            "mcp.internal",
            "x@mcp.example.com",
            "",
            "mcp.example.com:+443",
            "mcp.example.com:",
            "mcp.example.com:443:1",
            "mcp.example.com/x",
        ] {
            assert_eq!(status(&app, "/mcp", &[("host", refused)], peer).await, 403, "{refused}");
        }
        assert_eq!(status(&app, "/mcp", &[], peer).await, 403, "no Host at all");
        assert_eq!(
            status(&app, "/healthz", &[("host", "10.1.2.3:8000")], peer).await,
            200,
            "probes by address"
        );
    }

    #[tokio::test]
    async fn loopback_names_are_one_and_trusted_proxies_forward_theirs() {
        let app = app("http://127.0.0.1:8000", &[], &["10.0.0.0/8"]);
        let peer = "127.0.0.1:5000";
        for ok in ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"] {
            assert_eq!(status(&app, "/mcp", &[("host", ok)], peer).await, 200, "{ok}");
        }
        assert_eq!(status(&app, "/mcp", &[("host", "localhost:8001")], peer).await, 403);
        assert_eq!(status(&app, "/mcp", &[("host", "rebound.evil.example:8000")], peer).await, 403);
        // The proxy's own Host is internal; what it forwarded is checked.
        let via_proxy = [("host", "upstream:80"), ("x-forwarded-host", "127.0.0.1:8000")];
        assert_eq!(status(&app, "/mcp", &via_proxy, "10.0.0.5:1").await, 200);
        let forged = [("host", "evil.example"), ("x-forwarded-host", "127.0.0.1:8000")];
        assert_eq!(status(&app, "/mcp", &forged, "192.0.2.9:1").await, 403, "only proxies forward names");
    }
}
