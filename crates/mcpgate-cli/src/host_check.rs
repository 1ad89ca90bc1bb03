//! The `Host` a request names must be the gateway's own (DNS rebinding: a name the attacker
//! controls, made to resolve to the gateway's address, arrives as `Host: evil.example`).
//!
//! Allowed: `public_url`'s host and port; for a loopback `public_url`, the other loopback names
//! at that port; and `server.allowed_hosts`. Behind a trusted proxy the name it forwarded
//! (`X-Forwarded-Host`) is checked instead of its own `Host`. Anything else is 403. The probes
//! and the metrics scrape (`/healthz`, `/readyz`, `/metrics`) are answered whatever the `Host`,
//! since orchestrators reach them by address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use mcpgate::client_address::TrustedProxies;

/// Paths answered for any `Host`.
const ANY_HOST_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
const LOOPBACK_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// A host name and port (the scheme's default when unwritten), lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: u16,
}

impl Authority {
    /// `host[:port]`, with `default_port` when no port is written.
    fn parse(text: &str, default_port: u16) -> Option<Self> {
        let authority: http::uri::Authority = text.trim().parse().ok()?;
        if text.contains('@') {
            return None;
        }
        let host = authority.host().to_ascii_lowercase();
        Some(Self { host, port: authority.port_u16().unwrap_or(default_port) })
    }
}

/// The host names the gateway answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    allowed: Vec<Authority>,
    /// `public_url`'s default port, for a `Host` without one.
    default_port: u16,
    trusted_proxies: TrustedProxies,
}

impl AllowedHosts {
    /// The hosts for a gateway at `public_url`, plus `extra` (`host` or `host:port`), behind
    /// `trusted_proxies`. `Err` names an entry that is not a host.
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

    /// Whether `request` names one of the allowed hosts.
    fn admits(&self, request: &Request) -> bool {
        let headers = request.headers();
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = peer.filter(|ip| self.trusted_proxies.contains(*ip)).and_then(|_| {
            let last = headers.get_all("x-forwarded-host").iter().next_back()?;
            last.to_str().ok()?.rsplit(',').next().map(str::to_owned)
        });
        // HTTP/1.1 says Host; HTTP/2 says :authority, which hyper puts in the URI.
        let named = forwarded
            .or_else(|| headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned))
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        named
            .and_then(|name| Authority::parse(&name, self.default_port))
            .is_some_and(|authority| self.allowed.contains(&authority))
    }
}

/// Middleware: requests naming another host are 403.
pub async fn enforce(State(allowed): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    if ANY_HOST_PATHS.contains(&request.uri().path()) || allowed.admits(&request) {
        return next.run(request).await;
    }
    (StatusCode::FORBIDDEN, "Forbidden: this server does not answer to that Host\n").into_response()
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
            .layer(axum::middleware::from_fn_with_state(Arc::new(allowed), enforce))
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
        for refused in ["evil.example", "mcp.example.com:8443", "mcp.internal", "x@mcp.example.com", ""] {
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
