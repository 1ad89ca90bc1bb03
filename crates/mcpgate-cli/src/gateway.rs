//! The reverse proxy to an upstream MCP server over Streamable HTTP: POST (JSON or SSE
//! answers), the GET event stream and DELETE of a session pass through with their MCP headers;
//! bodies stream both ways, never buffered whole, so SSE events reach the client as the
//! upstream sends them. Timeouts bound connecting and waiting for the response head only.
//!
//! What of the client's headers reaches the upstream is [`crate::headers`]' business: never its
//! credentials, look-alikes of our identity headers or its claims of where it came from. The
//! caller's identity (set by the bearer layer in front) is added as `X-Mcpgate-Subject`,
//! `X-Mcpgate-Client-Id`, `X-Mcpgate-Scopes` and the rest, optionally the user's provider
//! token, and the gateway's own `X-Forwarded-*`. An upstream that cannot be reached gets a 502 with a
//! JSON-RPC-shaped error, not a hang.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::header::{self, HeaderName};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use mcpgate::Principal;
use secrecy::ExposeSecret;

use crate::headers::{ForwardedHeaders, strip_client_headers, strip_hop_by_hop};
use crate::hop::{LocalConnections, NotHttp, UpstreamPool};
use crate::user_tokens::UserTokens;

/// What the gateway tells the upstream about the caller.
#[derive(Clone, Default)]
pub struct Forwarding {
    /// `X-Mcpgate-Subject`, `-Client-Id`, `-Scopes`.
    pub identity: bool,
    /// `X-Mcpgate-Provider-Token` and `X-Mcpgate-Downstream-Token`, from this authorization
    /// server's grants.
    pub user_tokens: Option<UserTokens>,
    /// `X-Forwarded-For`, `-Proto`, `-Host`.
    pub forwarded: Option<ForwardedHeaders>,
}

/// The proxy, as a tower service.
#[derive(Clone)]
pub struct McpProxy {
    inner: Arc<Inner>,
}

struct Inner {
    pool: UpstreamPool,
    upstream: Uri,
    /// The upstream's path and query, as a request line has it.
    origin_form: Uri,
    head_timeout: Duration,
    forwarding: Forwarding,
}

impl McpProxy {
    /// A proxy to the MCP endpoint `upstream` (an http URL), waiting at most `connect` to
    /// connect and `head` for the response head. Requests go out on the upstream connections
    /// of the inbound connection they came on ([`crate::hop`]) when it has them.
    pub fn new(
        upstream: Uri,
        connect: Duration,
        head: Duration,
        forwarding: Forwarding,
    ) -> Result<Self, NotHttp> {
        let pool = UpstreamPool::new(&upstream, connect)?;
        let origin_form =
            upstream.path_and_query().map_or_else(|| Uri::from_static("/"), |p| p.clone().into());
        Ok(Self { inner: Arc::new(Inner { pool, upstream, origin_form, head_timeout: head, forwarding }) })
    }
}

/// A JSON-RPC-shaped error answer (the client's request id is not known here: `null`).
pub(crate) fn json_rpc_error(status: StatusCode, message: &str) -> Response<Body> {
    let body =
        serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": message}});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

impl Inner {
    /// The request as the upstream gets it.
    async fn upstream_request(&self, request: Request<Body>) -> Result<Request<Body>, Response<Body>> {
        let client = self.forwarding.forwarded.as_ref().and_then(|f| f.client(&request));
        let (mut parts, body) = request.into_parts();
        let principal = parts.extensions.remove::<Principal>();
        let headers = &mut parts.headers;
        strip_client_headers(headers);
        if let Some(forwarded) = &self.forwarding.forwarded {
            forwarded.apply(headers, client);
        }
        if let Some(principal) = &principal {
            if self.forwarding.identity {
                for field in crate::identity::fields(principal) {
                    // UTF-8 as it is (a name may not be ASCII); a value no header can hold is left out.
                    if let Ok(value) = HeaderValue::from_bytes(field.value.as_bytes()) {
                        headers.insert(HeaderName::from_static(field.header), value);
                    }
                }
            }
            if let Some(tokens) = &self.forwarding.user_tokens {
                let handed = tokens.for_caller(principal).await.map_err(|e| {
                    tracing::warn!(error = %e, "no user token to forward");
                    json_rpc_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the user's provider token is unavailable",
                    )
                })?;
                for token in handed {
                    if let Ok(mut value) = HeaderValue::from_str(token.value.expose_secret()) {
                        value.set_sensitive(true);
                        headers.insert(HeaderName::from_static(token.header), value);
                    }
                }
            }
        }
        // The upstream's own path and query, whatever path the gateway serves it at, in origin
        // form (the `Host` header names the upstream).
        parts.uri = match parts.uri.query() {
            Some(query) => format!("{}?{query}", self.upstream.path())
                .parse()
                .map_err(|_| json_rpc_error(StatusCode::BAD_REQUEST, "bad request URI"))?,
            None => self.origin_form.clone(),
        };
        parts.version = http::Version::HTTP_11;
        Ok(Request::from_parts(parts, body))
    }

    async fn forward(&self, mut request: Request<Body>) -> Response<Body> {
        let local = request.extensions_mut().remove::<LocalConnections>();
        let request = match self.upstream_request(request).await {
            Ok(request) => request,
            Err(response) => return response,
        };
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(self.head_timeout, self.pool.send(local.as_ref(), request)).await;
        crate::metrics::upstream_mcp(
            crate::metrics::Transport::Http,
            started.elapsed(),
            matches!(answer, Ok(Ok(_))),
        );
        match answer {
            Err(_) => {
                json_rpc_error(StatusCode::GATEWAY_TIMEOUT, "the upstream MCP server did not answer in time")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upstream MCP server unreachable");
                json_rpc_error(StatusCode::BAD_GATEWAY, "the upstream MCP server is unavailable")
            }
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                // The body streams through: SSE events go out as they come in.
                Response::from_parts(parts, Body::new(body))
            }
        }
    }
}

impl tower::Service<Request<Body>> for McpProxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.forward(request).await) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::response::sse::{Event, Sse};
    use axum::routing::{get, post};
    use futures::StreamExt;
    use mcpgate::resource::ProtectedResource;
    use mcpgate::verify::{FixedVerifier, TokenVerifier};
    use tower::ServiceExt;

    use super::*;
    use http::HeaderMap;

    /// An upstream that answers with the headers it received, and an SSE stream that sends an
    /// event, waits, and sends another.
    async fn upstream() -> String {
        let echo_headers = |headers: HeaderMap| async move {
            let seen: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").into()))
                .collect();
            let mut response = axum::Json(serde_json::Value::Object(seen)).into_response();
            response.headers_mut().insert("mcp-session-id", HeaderValue::from_static("s-1"));
            response.headers_mut().insert("connection", HeaderValue::from_static("keep-alive, x-private"));
            response.headers_mut().insert("x-private", HeaderValue::from_static("hop"));
            response
        };
        let stream = || async {
            let events = futures::stream::iter(0..2).then(|i| async move {
                if i == 1 {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                }
                Ok::<_, Infallible>(Event::default().data(format!("event {i}")))
            });
            Sse::new(events)
        };
        let app = Router::new().route("/mcp", post(echo_headers)).route("/sse", get(stream));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    use axum::response::IntoResponse;

    fn protected(upstream: &str, path: &str) -> Router {
        let proxy = McpProxy::new(
            format!("{upstream}{path}").parse().unwrap(),
            Duration::from_secs(1),
            Duration::from_secs(2),
            Forwarding {
                identity: true,
                user_tokens: None,
                forwarded: ForwardedHeaders::new("https://gw.example.com", Default::default()),
            },
        )
        .unwrap();
        let verifier: Arc<dyn TokenVerifier> = Arc::new(FixedVerifier::new().with_token(
            &secrecy::SecretString::from("alice-token"),
            Principal::new("alice").with_client_id("cli").with_scopes(["mcp:read"]),
        ));
        ProtectedResource::new("https://gw.example.com/mcp").unwrap().protect(verifier, proxy)
    }

    #[tokio::test]
    async fn the_upstream_sees_the_callers_identity_and_none_of_its_credentials_or_forgeries() {
        let upstream = upstream().await;
        let mut request = Request::post("/mcp?x=1")
            .header("authorization", "Bearer alice-token")
            .header("cookie", "__Host-mcpgate-csrf=abc")
            .header("x-mcpgate-subject", "root")
            .header("X-Mcpgate-Admin", "yes")
            .header("X_Mcpgate_Groups", "admins")
            .header("x-forwarded-for", "10.0.0.1")
            .header("mcp-protocol-version", "2025-06-18")
            .header("connection", "close")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([203, 0, 113, 7], 1234))));
        let response = protected(&upstream, "/mcp").oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["mcp-session-id"], "s-1");
        assert!(response.headers().get("x-private").is_none(), "headers named by Connection are hop-by-hop");
        let seen: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        assert_eq!(seen["x-mcpgate-subject"], "alice");
        assert_eq!(seen["x-mcpgate-client-id"], "cli");
        assert_eq!(seen["x-mcpgate-scopes"], "mcp:read");
        assert_eq!(seen["mcp-protocol-version"], "2025-06-18");
        assert_eq!(seen["x-forwarded-for"], "203.0.113.7", "the peer, not what the client wrote");
        assert_eq!(seen["x-forwarded-proto"], "https");
        assert_eq!(seen["x-forwarded-host"], "gw.example.com");
        for gone in ["authorization", "cookie", "x-mcpgate-admin", "x_mcpgate_groups"] {
            assert!(seen.get(gone).is_none(), "{gone} reached the upstream: {seen}");
        }
        assert_ne!(seen["host"], "gw.example.com");
    }

    #[tokio::test]
    async fn sse_events_arrive_one_by_one() {
        let upstream = upstream().await;
        let request = Request::get("/mcp")
            .header("authorization", "Bearer alice-token")
            .header("accept", "text/event-stream")
            .body(Body::empty())
            .unwrap();
        let response = protected(&upstream, "/sse").oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body().into_data_stream();
        let started = std::time::Instant::now();
        let first = body.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("event 0"));
        assert!(started.elapsed() < Duration::from_millis(500), "the first event was not held back");
        let mut rest = Vec::new();
        while let Some(chunk) = body.next().await {
            rest.extend_from_slice(&chunk.unwrap());
        }
        assert!(String::from_utf8_lossy(&rest).contains("event 1"));
        assert!(started.elapsed() >= Duration::from_millis(600));
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_502_json_rpc_error_and_unauthenticated_calls_never_reach_it() {
        let request = || {
            Request::post("/mcp")
                .header("authorization", "Bearer alice-token")
                .body(Body::from("{}"))
                .unwrap()
        };
        let started = std::time::Instant::now();
        let response = protected("http://127.0.0.1:1", "/mcp").oneshot(request()).await.unwrap();
        assert_eq!(response.status(), 502);
        assert!(started.elapsed() < Duration::from_secs(2));
        let body: serde_json::Value =
            serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["error"]["code"], -32000);

        let anonymous = Request::post("/mcp").body(Body::from("{}")).unwrap();
        let response = protected("http://127.0.0.1:1", "/mcp").oneshot(anonymous).await.unwrap();
        assert_eq!(response.status(), 401);
    }
}
