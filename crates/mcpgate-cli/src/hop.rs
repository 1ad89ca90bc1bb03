//! The gateway's connections to an HTTP upstream, driven in the task of the inbound connection
//! they serve.
//!
//! A pooled client (hyper's legacy `Client`) runs each upstream connection in a task of its own
//! and hands every request to it through a channel: two cross-task hand-offs, often cross-thread
//! wake-ups, per request, and a task kept per connection. Here each inbound connection has its
//! own few upstream connections ([`LocalConnections`]), polled by its own task ([`Drivers`]), so
//! that a request and its answer move within one task. When the inbound connection ends, its
//! idle upstream connections are parked in the upstream's shared pool ([`UpstreamPool`]),
//! unpolled, and the next inbound connection to need one takes it over, driver and all: a
//! client that opens a connection per request still finds one open, and the gateway does not
//! leave a closed socket behind for every request it forwards.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::Body as _;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

/// Idle upstream connections one inbound connection keeps (for its upstreams together).
const LOCAL_IDLE: usize = 4;
/// Idle upstream connections an upstream's shared pool keeps.
const SHARED_IDLE: usize = 32;
/// How long a connection waits in the shared pool before it is closed rather than reused.
const SHARED_IDLE_FOR: Duration = Duration::from_secs(90);

/// What runs an upstream connection: polled until the connection closes.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Which of an inbound connection's [`Drivers`] runs an upstream connection (`None`: a task of
/// its own does).
type DriverId = Option<u64>;

/// Why a request did not get an answer from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum HopError {
    /// The TCP connection was not made within the connect timeout.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    /// The TCP connection failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (the handshake, the request or the answer's head).
    #[error("the exchange with the upstream failed: {0}")]
    Exchange(#[from] hyper::Error),
}

/// The upstream URL is not one the gateway can connect to.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an http:// URL with a host (TLS to the upstream is not supported)")]
pub struct NotHttp(String);

/// One HTTP upstream: where it is, and its shared pool of idle connections.
#[derive(Clone)]
pub struct UpstreamPool {
    shared: Arc<Shared>,
}

struct Shared {
    /// `host:port`, as the TCP connection is made.
    addr: String,
    /// The `Host` header the upstream gets.
    host: HeaderValue,
    connect_timeout: Duration,
    parked: Mutex<VecDeque<Parked>>,
    /// Whether the task closing long-parked connections runs.
    reaping: AtomicBool,
}

/// An idle connection in the shared pool, with its driver when no task runs it.
struct Parked {
    since: Instant,
    sender: SendRequest<Body>,
    driver: Option<Driver>,
}

impl UpstreamPool {
    /// The pool of the upstream at `uri` (an http URL; its path is not used here).
    pub fn new(uri: &Uri, connect_timeout: Duration) -> Result<Self, NotHttp> {
        let not_http = || NotHttp(uri.to_string());
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(not_http());
        }
        let authority: &Authority = uri.authority().ok_or_else(not_http)?;
        let addr = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| not_http())?;
        let shared = Shared {
            addr,
            host,
            connect_timeout,
            parked: Mutex::new(VecDeque::new()),
            reaping: AtomicBool::new(false),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Sends `request` (origin-form URI; the `Host` header is set here) on an idle connection
    /// of `local`'s, else of the shared pool's, else on a new one, run by `local`'s task (or, without
    /// `local`, by a task of its own). The connection is reused once the answer's body has ended.
    pub async fn send(
        &self,
        local: Option<&LocalConnections>,
        mut request: Request<Body>,
    ) -> Result<Response<ReturnOnEnd>, HopError> {
        request.headers_mut().insert(HOST, self.shared.host.clone());
        let reused = match local.and_then(|local| local.take(&self.shared)) {
            Some(reused) => Some(reused),
            None => {
                self.shared.take().map(|parked| (parked.sender, parked.driver.and_then(|d| drive(local, d))))
            }
        };
        if let Some((mut sender, id)) = reused {
            // A reused connection may have been closed by the upstream meanwhile: a request
            // it did not take is sent once more, on a new connection.
            if sender.ready().await.is_ok() {
                match sender.try_send_request(request).await {
                    Ok(response) => return Ok(self.returning(response, sender, id, local)),
                    Err(mut failed) => match failed.take_message() {
                        Some(unsent) => request = unsent,
                        None => return Err(HopError::Exchange(failed.into_error())),
                    },
                }
            }
        }
        let (mut sender, id) = self.connect(local).await?;
        let response = sender.send_request(request).await?;
        Ok(self.returning(response, sender, id, local))
    }

    /// A new connection, its driver handed to `local` (or spawned).
    async fn connect(
        &self,
        local: Option<&LocalConnections>,
    ) -> Result<(SendRequest<Body>, DriverId), HopError> {
        let addr = &self.shared.addr;
        let stream = tokio::time::timeout(self.shared.connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| HopError::ConnectTimeout(addr.clone()))?
            .map_err(|source| HopError::Connect { addr: addr.clone(), source })?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on the upstream connection");
        }
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver: Driver = Box::pin(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok((sender, drive(local, driver)))
    }

    fn returning(
        &self,
        response: Response<Incoming>,
        sender: SendRequest<Body>,
        id: DriverId,
        local: Option<&LocalConnections>,
    ) -> Response<ReturnOnEnd> {
        let home = Home { pool: self.shared.clone(), local: local.cloned(), sender, id };
        response.map(|body| ReturnOnEnd { body, home: Some(home) })
    }
}

/// Runs `driver` in `local`'s task, or in one of its own.
fn drive(local: Option<&LocalConnections>, driver: Driver) -> DriverId {
    match local {
        Some(local) => local.drive(driver),
        None => {
            tokio::spawn(driver);
            None
        }
    }
}

impl Shared {
    fn take(&self) -> Option<Parked> {
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        // The most recently parked first: the likeliest to be open still.
        while let Some(idle) = parked.pop_back() {
            if !idle.sender.is_closed() && idle.since.elapsed() < SHARED_IDLE_FOR {
                return Some(idle);
            }
        }
        None
    }

    fn park(self: &Arc<Self>, sender: SendRequest<Body>, driver: Option<Driver>) {
        {
            let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
            retain_fresh(&mut parked);
            if parked.len() >= SHARED_IDLE {
                parked.pop_front();
            }
            parked.push_back(Parked { since: Instant::now(), sender, driver });
        }
        if !self.reaping.swap(true, Ordering::AcqRel) {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }
}

/// Drops what no longer may be reused; a dropped connection closes.
fn retain_fresh(parked: &mut VecDeque<Parked>) {
    parked.retain(|idle| !idle.sender.is_closed() && idle.since.elapsed() < SHARED_IDLE_FOR);
}

/// Closes connections parked too long, while the pool lives: an unpolled connection does not
/// notice that the upstream has closed its end.
async fn reap(pool: Weak<Shared>) {
    loop {
        tokio::time::sleep(SHARED_IDLE_FOR / 3).await;
        let Some(pool) = pool.upgrade() else { return };
        retain_fresh(&mut pool.parked.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The upstream connections of one inbound connection (a handle: clones share them).
#[derive(Clone)]
pub struct LocalConnections {
    inner: Arc<Local>,
}

struct Local {
    idle: Mutex<Vec<LocalIdle>>,
    drive: mpsc::UnboundedSender<(u64, Driver)>,
    next_id: AtomicU64,
}

impl LocalConnections {
    /// The connections of a new inbound connection, and what its task must poll to run them.
    pub fn new() -> (Self, Drivers) {
        let (drive, incoming) = mpsc::unbounded_channel();
        let inner = Arc::new(Local { idle: Mutex::new(Vec::new()), drive, next_id: AtomicU64::new(0) });
        let drivers = Drivers { local: inner.clone(), incoming, running: Vec::new() };
        (Self { inner }, drivers)
    }

    fn take(&self, pool: &Arc<Shared>) -> Option<(SendRequest<Body>, DriverId)> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|idle| !idle.sender.is_closed());
        let at = idle.iter().position(|idle| Arc::ptr_eq(&idle.pool, pool))?;
        let LocalIdle { sender, id, .. } = idle.swap_remove(at);
        Some((sender, id))
    }

    fn put(&self, pool: Arc<Shared>, sender: SendRequest<Body>, id: DriverId) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= LOCAL_IDLE {
            idle.remove(0);
        }
        idle.push(LocalIdle { pool, sender, id });
    }

    fn drive(&self, driver: Driver) -> DriverId {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        match self.inner.drive.send((id, driver)) {
            Ok(()) => Some(id),
            // The inbound connection's task is gone (it cannot be while it serves a request,
            // but nothing need rest on that): the connection runs in a task of its own.
            Err(mpsc::error::SendError((_, driver))) => {
                tokio::spawn(driver);
                None
            }
        }
    }
}

/// An idle connection of an inbound connection's, with the pool it belongs to.
struct LocalIdle {
    pool: Arc<Shared>,
    sender: SendRequest<Body>,
    id: DriverId,
}

/// The upstream connections an inbound connection's task polls beside the inbound connection.
pub struct Drivers {
    local: Arc<Local>,
    incoming: mpsc::UnboundedReceiver<(u64, Driver)>,
    /// A handful at most: polled together whenever the task wakes.
    running: Vec<(u64, Driver)>,
}

impl Drivers {
    /// Runs the connections; never completes (poll it beside the inbound connection).
    pub fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<std::convert::Infallible> {
        while let Poll::Ready(Some(driver)) = self.incoming.poll_recv(cx) {
            self.running.push(driver);
        }
        self.running.retain_mut(|(_, driver)| driver.as_mut().poll(cx).is_pending());
        Poll::Pending
    }

    /// The inbound connection has ended: its idle upstream connections are parked in their
    /// pools with their drivers, and the others (closing) finish in a task of their own.
    pub fn hand_over(mut self) {
        self.incoming.close();
        while let Ok(driver) = self.incoming.try_recv() {
            self.running.push(driver);
        }
        let idle = std::mem::take(&mut *self.local.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for LocalIdle { pool, sender, id } in idle {
            let driver = match id {
                None => None,
                Some(id) => match self.running.iter().position(|(running, _)| *running == id) {
                    Some(at) => Some(self.running.swap_remove(at).1),
                    // Its driver has finished: the connection is closed.
                    None => continue,
                },
            };
            pool.park(sender, driver);
        }
        if !self.running.is_empty() {
            let closing = self.running.into_iter().map(|(_, driver)| driver);
            tokio::spawn(futures::future::join_all(closing));
        }
    }
}

/// Where a connection goes once its answer has been read.
struct Home {
    pool: Arc<Shared>,
    local: Option<LocalConnections>,
    sender: SendRequest<Body>,
    id: DriverId,
}

/// An upstream answer's body; when it ends, its connection is idle again and goes back to the
/// inbound connection it served (or the shared pool). A body dropped before its end takes the
/// connection with it: hyper closes a connection whose answer was not read to the end.
pub struct ReturnOnEnd {
    body: Incoming,
    home: Option<Home>,
}

impl ReturnOnEnd {
    fn give_back(&mut self) {
        if let Some(home) = self.home.take() {
            match home.local {
                Some(local) => local.put(home.pool, home.sender, home.id),
                None => home.pool.park(home.sender, None),
            }
        }
    }
}

impl Drop for ReturnOnEnd {
    fn drop(&mut self) {
        // An empty answer (202, 204, `Content-Length: 0`) may never be polled.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

impl http_body::Body for ReturnOnEnd {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            // A failed answer leaves the connection in no state to reuse.
            Poll::Ready(Some(Err(_))) => self.home = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::serve::ListenerExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::gateway::{Forwarding, McpProxy};
    use crate::listener::NoDelayListener;

    /// An upstream counting the connections made to it: `/mcp` answers JSON, `/empty` a bare
    /// 202, `/sse` an event stream that stays open.
    async fn counting_upstream() -> (String, Arc<AtomicUsize>) {
        let app = Router::new()
            .route("/mcp", post(|| async { axum::Json(serde_json::json!({"ok": true})) }))
            .route("/empty", post(|| async { http::StatusCode::ACCEPTED }))
            .route(
                "/sse",
                get(|| async {
                    let open = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
                    ([("content-type", "text/event-stream")], Body::from_stream(open)).into_response()
                }),
            );
        let accepted = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let counter = accepted.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, accepted)
    }

    /// The gateway's listener serving a proxy to `upstream` (no authentication in front).
    async fn gateway(upstream: &str) -> String {
        let proxy = McpProxy::new(
            upstream.parse().unwrap(),
            Duration::from_secs(1),
            Duration::from_secs(2),
            Forwarding::default(),
        )
        .unwrap();
        let listener = NoDelayListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::listener::serve(listener, proxy, std::future::pending()));
        format!("http://{addr}")
    }

    /// A client keeping one connection to the gateway.
    fn one_connection() -> reqwest::Client {
        reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap()
    }

    #[tokio::test]
    async fn one_inbound_connection_uses_one_upstream_connection_empty_answers_included() {
        let (upstream, accepted) = counting_upstream().await;
        let gw = gateway(&format!("{upstream}/mcp")).await;
        let client = one_connection();
        for _ in 0..5 {
            let answer = client.post(format!("{gw}/mcp")).body("{}").send().await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.text().await.unwrap(), r#"{"ok":true}"#);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        let gw = gateway(&format!("{upstream}/empty")).await;
        for _ in 0..5 {
            let answer = client.post(format!("{gw}/mcp")).body("{}").send().await.unwrap();
            assert_eq!(answer.status(), 202);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a bodiless answer gave its connection back");
    }

    #[tokio::test]
    async fn a_closed_inbound_connection_leaves_its_upstream_connection_to_the_next() {
        let (upstream, accepted) = counting_upstream().await;
        let gw = gateway(&format!("{upstream}/mcp")).await;
        for _ in 0..4 {
            // A new client each time: a new inbound connection, closed when it is dropped.
            let answer = one_connection().post(format!("{gw}/mcp")).body("{}").send().await.unwrap();
            assert_eq!(answer.text().await.unwrap(), r#"{"ok":true}"#);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "the upstream connection was not reused");
    }

    #[tokio::test]
    async fn an_open_event_stream_keeps_its_connection_and_others_get_their_own() {
        let (upstream, accepted) = counting_upstream().await;
        let sse = gateway(&format!("{upstream}/sse")).await;
        let streaming = one_connection().get(format!("{sse}/mcp")).send().await.unwrap();
        assert_eq!(streaming.status(), 200);
        let other = one_connection();
        for _ in 0..3 {
            let answer = other.get(format!("{sse}/mcp")).timeout(Duration::from_millis(300)).send().await;
            assert_eq!(answer.unwrap().status(), 200, "a second stream waited for the first");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4, "one upstream connection per open stream");
        drop(streaming);
    }

    #[tokio::test]
    async fn an_upstream_that_closes_idle_connections_unannounced_is_reconnected_to() {
        // Answers one request per connection and closes it, as after a keep-alive timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = format!("http://{}/mcp", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = stream.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    stream.write_all(answer.as_bytes()).await.unwrap();
                });
            }
        });
        let gw = gateway(&upstream).await;
        let client = one_connection();
        for _ in 0..3 {
            let answer = client.get(format!("{gw}/mcp")).send().await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.text().await.unwrap(), "ok");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        drop(client);
        // Parked connections are not polled: that the upstream closed one is found out when
        // the next inbound connection takes it.
        for _ in 0..3 {
            let answer = one_connection().get(format!("{gw}/mcp")).send().await.unwrap();
            assert_eq!(answer.text().await.unwrap(), "ok");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn only_plain_http_upstreams_with_a_host_are_taken() {
        for bad in ["https://mcp.example.com/mcp", "/mcp", "unix:/run/mcp"] {
            let uri: Uri = match bad.parse() {
                Ok(uri) => uri,
                Err(_) => continue,
            };
            assert!(UpstreamPool::new(&uri, Duration::from_secs(1)).is_err(), "{bad}");
        }
        let ok: Uri = "http://[::1]/mcp".parse().unwrap();
        assert_eq!(UpstreamPool::new(&ok, Duration::from_secs(1)).unwrap().shared.addr, "[::1]:80");
    }
}
