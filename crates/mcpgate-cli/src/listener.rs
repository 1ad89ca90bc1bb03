//! The gateway's listener: every accepted connection gets TCP_NODELAY, and the peer address
//! reaches the handlers as `ConnectInfo<SocketAddr>` (the rate limits key on it).
//!
//! Without TCP_NODELAY a response written in parts (an SSE event, then the end of the chunked
//! body) waits for the client's delayed ACK: ~40 ms a request through the gateway, measured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::extract::{ConnectInfo, Request, connect_info::Connected};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::shutdown::{GRACE, InFlight};

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

/// Serves `app` on `listener` until `shutdown` completes; then the requests in flight finish
/// (within [`GRACE`](crate::shutdown::GRACE)) and the remaining connections, event streams
/// among them, are dropped. Each request has its peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve<S>(
    listener: NoDelayListener,
    app: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let in_flight = InFlight::default();
    // Layers of their own, not a router around `app`: the gateway's app is swapped whole at a
    // reload, and one more router on every request would be paid for nothing.
    let app = tower::ServiceBuilder::new()
        .layer(axum::middleware::map_request(|mut request: Request| async move {
            if let Some(ConnectInfo(Peer(addr))) = request.extensions().get::<ConnectInfo<Peer>>().copied() {
                request.extensions_mut().insert(ConnectInfo(addr));
            }
            request
        }))
        .layer(axum::middleware::from_fn({
            let in_flight = in_flight.clone();
            move |request, next| in_flight.clone().track(request, next)
        }))
        .service(app);
    let signalled = Arc::new(Notify::new());
    let stop_accepting = {
        let signalled = signalled.clone();
        async move {
            shutdown.await;
            signalled.notify_one();
        }
    };
    let server =
        axum::serve(listener, axum::ServiceExt::<Request>::into_make_service_with_connect_info::<Peer>(app))
            .with_graceful_shutdown(stop_accepting)
            .into_future();
    let drained = async {
        signalled.notified().await;
        if tokio::time::timeout(GRACE, in_flight.drained()).await.is_err() {
            tracing::warn!("requests still in flight after {GRACE:?}: stopping anyway");
        }
    };
    tokio::select! {
        served = server => served,
        () = drained => Ok(()),
    }
}
