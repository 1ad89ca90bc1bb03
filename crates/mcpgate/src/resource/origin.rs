//! `Origin` validation on the MCP endpoint, the MCP transport's defence against DNS rebinding: a
//! page on `http://evil.example` whose name now resolves to this server's address is still
//! a page of `http://evil.example`, and the browser says so in `Origin`. A request whose
//! `Origin` is not allowed is answered 403 with a JSON-RPC error before anything else looks at
//! it; a request without `Origin` (every non-browser client) passes.
//!
//! ```
//! use mcpgate::resource::AllowedOrigins;
//!
//! let allowed = AllowedOrigins::for_resource("https://mcp.example.com/mcp").unwrap();
//! assert!(allowed.allows("https://mcp.example.com"));
//! assert!(allowed.allows("http://localhost:5173"), "loopback pages, on any port, by default");
//! assert!(!allowed.allows("http://evil.example"));
//! assert!(!allowed.allows("null"));
//!
//! let only = AllowedOrigins::for_resource("https://mcp.example.com/mcp")
//!     .unwrap()
//!     .only(["https://app.example.com", "https://*.tools.example.com"])
//!     .unwrap();
//! assert!(only.allows("https://a.tools.example.com"));
//! assert!(only.allows("https://mcp.example.com"), "the resource's own origin always");
//! assert!(!only.allows("http://localhost:5173"));
//! ```

use std::task::{Context, Poll};

use axum::Json;
use axum::response::{IntoResponse, Response};
use futures::future::{Either, MapOk, Ready, TryFutureExt, ready};
use http::{Request, StatusCode};
use serde_json::json;
use tower::{Layer, Service};

/// One allowed origin: `scheme://host[:port]`, the host possibly `*.` a domain, the port
/// possibly `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    scheme: String,
    host: HostPattern,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name under `example.com` (not `example.com` itself).
    SubdomainOf(String),
}

/// An allowed-origin entry that is not `scheme://host[:port]` (with optional `*.` and `:*`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an origin pattern (https://app.example.com, http://localhost:*, https://*.example.com)"
)]
pub struct BadOrigin(pub String);

/// The scheme's default port, which browsers leave out of `Origin`.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OriginPattern {
    fn parse(text: &str) -> Result<Self, BadOrigin> {
        let bad = || BadOrigin(text.to_owned());
        let lower = text.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
        if scheme.is_empty() || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(bad());
        }
        // Split host and port, minding IPv6 brackets.
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        let port = match port {
            None => default_port(scheme),
            Some("*") => None,
            Some(p) => Some(p.parse().map_err(|_| bad())?),
        };
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                HostPattern::SubdomainOf(domain.to_owned())
            }
            _ if host.is_empty() || host.contains('*') => return Err(bad()),
            _ => HostPattern::Exact(host.to_owned()),
        };
        Ok(Self { scheme: scheme.to_owned(), host, port })
    }

    fn matches(&self, origin: &Self) -> bool {
        let host = match (&self.host, &origin.host) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::SubdomainOf(domain), HostPattern::Exact(b)) => {
                b.strip_suffix(domain.as_str()).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
            }
            (_, HostPattern::SubdomainOf(_)) => false,
        };
        self.scheme == origin.scheme && host && self.port.is_none_or(|p| Some(p) == origin.port)
    }
}

/// The browser origins allowed to call an MCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// The resource's own origin: always allowed (a same-origin page is no rebinding).
    own: OriginPattern,
    patterns: Vec<OriginPattern>,
    /// `*`: every origin (the check is off).
    any: bool,
}

/// Loopback pages on any port, the default besides the resource's own origin.
const LOOPBACK: [&str; 6] = [
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
];

impl AllowedOrigins {
    /// The default for the resource at `resource_url`: its own origin and loopback origins.
    pub fn for_resource(resource_url: &str) -> Result<Self, BadOrigin> {
        let url = url::Url::parse(resource_url).map_err(|_| BadOrigin(resource_url.to_owned()))?;
        let own = OriginPattern::parse(&url.origin().ascii_serialization())?;
        let patterns = LOOPBACK.iter().map(|p| OriginPattern::parse(p)).collect::<Result<_, _>>()?;
        Ok(Self { own, patterns, any: false })
    }

    /// Exactly `patterns` besides the resource's own origin (replacing the loopback default).
    /// `*` allows every origin: the check is off.
    pub fn only<S: AsRef<str>>(mut self, patterns: impl IntoIterator<Item = S>) -> Result<Self, BadOrigin> {
        self.patterns.clear();
        for pattern in patterns {
            match pattern.as_ref().trim() {
                "*" => self.any = true,
                other => self.patterns.push(OriginPattern::parse(other)?),
            }
        }
        Ok(self)
    }

    /// Whether a request whose `Origin` header is `origin` may be served.
    pub fn allows(&self, origin: &str) -> bool {
        if self.any {
            return true;
        }
        // `null` (sandboxed frames, privacy-sensitive contexts) parses as nothing: refused.
        let Ok(origin) = OriginPattern::parse(origin) else { return false };
        if origin.port.is_none() || matches!(origin.host, HostPattern::SubdomainOf(_)) {
            return false; // a browser never sends a pattern
        }
        self.own.matches(&origin) || self.patterns.iter().any(|p| p.matches(&origin))
    }
}

/// Refuses requests whose `Origin` is not allowed (403), before the inner service sees them.
#[derive(Debug, Clone)]
pub struct OriginLayer {
    allowed: std::sync::Arc<AllowedOrigins>,
}

impl OriginLayer {
    /// A layer allowing `allowed`.
    pub fn new(allowed: AllowedOrigins) -> Self {
        Self { allowed: std::sync::Arc::new(allowed) }
    }
}

impl<S> Layer<S> for OriginLayer {
    type Service = OriginCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginCheck { inner, allowed: self.allowed.clone() }
    }
}

/// The service made by [`OriginLayer`].
#[derive(Debug, Clone)]
pub struct OriginCheck<S> {
    inner: S,
    allowed: std::sync::Arc<AllowedOrigins>,
}

fn forbidden_origin() -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null,
                      "error": {"code": -32000, "message": "Forbidden: this Origin may not call the MCP endpoint"}});
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

impl<S, B> Service<Request<B>> for OriginCheck<S>
where
    S: Service<Request<B>>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = S::Error;
    // No box: this runs for every request.
    type Future = Either<Ready<Result<Response, S::Error>>, MapOk<S::Future, fn(S::Response) -> Response>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Every `Origin` line must be allowed; one that is not text is not.
        let refused = request
            .headers()
            .get_all(http::header::ORIGIN)
            .iter()
            .any(|value| value.to_str().map_or(true, |origin| !self.allowed.allows(origin)));
        if refused {
            return Either::Left(ready(Ok(forbidden_origin())));
        }
        Either::Right(
            self.inner.call(request).map_ok(IntoResponse::into_response as fn(S::Response) -> Response),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    fn allowed() -> AllowedOrigins {
        AllowedOrigins::for_resource("http://127.0.0.1:8000/mcp").unwrap()
    }

    #[test]
    fn default_ports_ports_and_patterns() {
        let a = allowed();
        assert!(a.allows("http://127.0.0.1:8000"));
        assert!(a.allows("http://127.0.0.1:3000"), "loopback: any port");
        assert!(a.allows("http://[::1]:9"));
        assert!(a.allows("HTTP://LOCALHOST:5173"));
        for refused in [
            "http://evil.example",
            "http://evil.example:8000",
            "null",
            "",
            "http://127.0.0.1.evil.example:8000",
            "file://",
            "http://*.example.com:1",
        ] {
            assert!(!a.allows(refused), "{refused}");
        }
        let https = AllowedOrigins::for_resource("https://mcp.example.com/mcp")
            .unwrap()
            .only(["https://*.example.org:*"])
            .unwrap();
        assert!(https.allows("https://mcp.example.com:443"), "the default port, written out");
        assert!(https.allows("https://a.b.example.org:8443"));
        assert!(!https.allows("https://example.org"), "a subdomain pattern is not the domain itself");
        assert!(!https.allows("https://badexample.org"));
        assert!(!https.allows("http://a.example.org"), "the scheme counts");
        assert!(
            AllowedOrigins::for_resource("https://x.example/mcp")
                .unwrap()
                .only(["*"])
                .unwrap()
                .allows("http://evil.example")
        );
        for bad in [
            "app.example.com",
            "https://",
            "https://a.example.com/path",
            "https://*",
            "https://a.*.com",
            "https://a:port",
        ] {
            assert!(
                AllowedOrigins::for_resource("https://x.example/mcp").unwrap().only([bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_foreign_origin_is_403_before_the_inner_service_and_no_origin_passes() {
        let inner = tower::service_fn(|_: Request<Body>| async { Ok::<_, Infallible>("served") });
        let service = OriginLayer::new(allowed()).layer(inner);
        let call = |origin: Option<&'static str>| {
            let mut request = Request::post("/mcp");
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            service.clone().oneshot(request.body(Body::empty()).unwrap())
        };
        assert_eq!(call(None).await.unwrap().status(), 200);
        assert_eq!(call(Some("http://127.0.0.1:8000")).await.unwrap().status(), 200);
        let refused = call(Some("http://evil.example")).await.unwrap();
        assert_eq!(refused.status(), 403);
        let body: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(refused.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        assert_eq!(body["error"]["code"], -32000);
        assert!(body["id"].is_null());
    }
}
