//! Graceful shutdown: on the signal the listener stops accepting, and the gateway waits for the
//! requests in flight — POSTs and DELETEs, until their (possibly streamed) answers end — then
//! stops, at most [`GRACE`] later. A standing GET event stream is not waited for: it never ends
//! by itself, and the client reconnects elsewhere.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::sync::Notify;
use tower::{Layer, Service};

/// The longest shutdown waits for requests in flight.
pub const GRACE: Duration = Duration::from_secs(10);

/// Counts the requests in flight.
#[derive(Clone, Default)]
pub struct InFlight {
    inner: Arc<Counter>,
}

#[derive(Default)]
struct Counter {
    count: AtomicUsize,
    idle: Notify,
}

/// One request in flight; dropped when its answer has ended (or was abandoned).
struct Ticket(Arc<Counter>);

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// The layer counting every request but GETs until its response body ends.
    pub fn layer(&self) -> InFlightLayer {
        InFlightLayer(self.inner.clone())
    }

    /// Completes once no request is in flight.
    pub async fn drained(&self) {
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Counts every request but GETs, until its response body ends (a tower layer: no boxed
/// future on every request).
#[derive(Clone)]
pub struct InFlightLayer(Arc<Counter>);

impl<S> Layer<S> for InFlightLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted { inner, counter: self.0.clone() }
    }
}

/// The service of [`InFlightLayer`].
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    counter: Arc<Counter>,
}

impl<S> Service<Request> for Counted<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let ticket = (request.method() != http::Method::GET).then(|| {
            self.counter.count.fetch_add(1, Ordering::AcqRel);
            Ticket(self.counter.clone())
        });
        CountedFuture { inner: self.inner.call(request), ticket }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Counted`]: the response, with the request's ticket in its body.
    pub struct CountedFuture<F> {
        #[pin]
        inner: F,
        ticket: Option<Ticket>,
    }
}

impl<F> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        let Some(ticket) = this.ticket.take() else { return Poll::Ready(Ok(response)) };
        // The ticket rides in the body: a streamed answer counts until its last frame.
        Poll::Ready(Ok(response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _ = &ticket;
                frame
            }))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_streamed_answer_counts_until_its_body_ends() {
        let in_flight = InFlight::default();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let rx = Arc::new(std::sync::Mutex::new(Some(rx)));
        let app = Router::new()
            .route(
                "/",
                post(move || {
                    let rx = rx.lock().unwrap().take().unwrap();
                    async move { Body::from_stream(tokio_stream_from(rx)) }
                }),
            )
            .layer(in_flight.layer());
        let response = app.oneshot(http::Request::post("/").body(Body::empty()).unwrap()).await.unwrap();
        // The head is out, the body is not: still in flight.
        let drained = tokio::time::timeout(Duration::from_millis(100), in_flight.drained()).await;
        assert!(drained.is_err(), "counted as done before its body ended");
        tx.send(Ok("event".into())).await.unwrap();
        drop(tx);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"event");
        tokio::time::timeout(Duration::from_secs(1), in_flight.drained())
            .await
            .expect("drained after the body");
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Send {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
