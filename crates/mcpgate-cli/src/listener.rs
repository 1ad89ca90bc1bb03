//! The gateway's listener: every accepted connection gets TCP_NODELAY, and the peer address
//! reaches the handlers as `ConnectInfo<SocketAddr>` (the rate limits key on it).
//!
//! Without TCP_NODELAY a response written in parts (an SSE event, then the end of the chunked
//! body) waits for the client's delayed ACK: ~40 ms a request through the gateway, measured.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, connect_info::Connected};
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections send small writes at once.
pub struct NoDelayListener(TcpListener);

impl NoDelayListener {
    /// Listens on `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self(TcpListener::bind(addr).await?))
    }
}

impl Listener for NoDelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                    return (stream, peer);
                }
                // Out of file descriptors and the like: wait rather than spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The peer of a connection accepted by [`NoDelayListener`].
#[derive(Debug, Clone, Copy)]
pub struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, NoDelayListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, NoDelayListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Serves `app` on `listener` until `shutdown` completes, with each request's peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: NoDelayListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::map_request(|mut request: Request| async move {
        if let Some(ConnectInfo(Peer(addr))) = request.extensions().get::<ConnectInfo<Peer>>().copied() {
            request.extensions_mut().insert(ConnectInfo(addr));
        }
        request
    }));
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}
