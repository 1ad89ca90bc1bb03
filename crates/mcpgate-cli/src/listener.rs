//! The gateway's listener and its connections' tasks: every accepted connection gets
//! TCP_NODELAY, the peer address reaches the handlers as `ConnectInfo<SocketAddr>` (the rate
//! limits key on it), and each connection's task also runs the upstream connections its
//! requests use ([`crate::hop`]).
//!
//! Without TCP_NODELAY a response written in parts (an SSE event, then the end of the chunked
//! body) waits for the client's delayed ACK: ~40 ms a request through the gateway, measured.

use std::net::SocketAddr;
use std::time::Duration;

use std::convert::Infallible;
use std::task::Poll;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::Layer;

use crate::hop::LocalConnections;
use crate::shutdown::{GRACE, InFlight};

/// A TCP listener whose connections send small writes at once.
pub struct NoDelayListener(TcpListener);

impl NoDelayListener {
    /// Listens on `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self(TcpListener::bind(addr).await?))
    }

    /// The next connection; a failure to accept (out of file descriptors and the like) is
    /// logged and waited out rather than spun on.
    async fn accept(&self) -> (TcpStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                    return (stream, peer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The address listened on.
    #[cfg(test)]
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
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
    let app = in_flight.layer().layer(app);
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            (stream, peer) = listener.accept() => {
                connections.spawn(connection(stream, peer, app.clone(), stopping.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    stopping.cancel();
    let all_closed = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        () = all_closed => {}
        drained = tokio::time::timeout(GRACE, in_flight.drained()) => {
            if drained.is_err() {
                tracing::warn!("requests still in flight after {GRACE:?}: stopping anyway");
            }
        }
    }
    // Dropping the set aborts the connections left, event streams among them.
    Ok(())
}

/// One inbound connection's task: HTTP/1.1 with keep-alive, and beside it the upstream
/// connections its requests opened. At `stopping` it finishes the request in flight and closes.
async fn connection<S>(stream: TcpStream, peer: SocketAddr, app: S, stopping: CancellationToken)
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let (local, mut drivers) = LocalConnections::new();
    let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(local.clone());
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    let served = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut served = std::pin::pin!(served);
    let mut stop = std::pin::pin!(stopping.cancelled());
    let mut closing = false;
    let ended = std::future::poll_fn(|cx| {
        if !closing && stop.as_mut().poll(cx).is_ready() {
            served.as_mut().graceful_shutdown();
            closing = true;
        }
        if let Poll::Ready(result) = served.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        // The upstream connections run in this task; they never end it.
        let Poll::Pending = drivers.poll_drive(cx);
        Poll::Pending
    })
    .await;
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended");
    }
    drivers.hand_over();
}
