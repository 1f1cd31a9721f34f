//! The service [`RequestMetricsLayer`] wraps around another, and its response future: they
//! label each request when it arrives and record its count and duration when it completes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Request, Response};
use metrics::{Label, SharedString};
use tower_layer::Layer;
use tower_service::Service;

use super::labels::{ERROR_STATUS, method_label, status_label};
use super::{Names, NoRoute, RequestMetricsLayer, RouteSource};

impl<S, R> Layer<S> for RequestMetricsLayer<R> {
    type Service = RequestMetrics<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            names: Arc::new(self.names()),
            route: Arc::clone(&self.route),
        }
    }
}

/// The service [`RequestMetricsLayer`] wraps around `S`: forwards every request and records
/// its count and duration when the response (or an error) is ready.
///
/// ```
/// use metrics_exporter_statsd_graphite::{RequestMetrics, RequestMetricsLayer};
/// use tower_layer::Layer;
///
/// # #[derive(Clone)] struct Inner;
/// let service: RequestMetrics<Inner> = RequestMetricsLayer::new().layer(Inner);
/// # drop(service);
/// ```
pub struct RequestMetrics<S, R = NoRoute> {
    inner: S,
    names: Arc<Names>,
    route: Arc<R>,
}

impl<S: Clone, R> Clone for RequestMetrics<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            names: Arc::clone(&self.names),
            route: Arc::clone(&self.route),
        }
    }
}

impl<S: fmt::Debug, R> fmt::Debug for RequestMetrics<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetrics")
            .field("inner", &self.inner)
            .field("names", &self.names)
            .field("route", &std::any::type_name::<R>())
            .finish()
    }
}

impl<S, R, B, RB> Service<Request<B>> for RequestMetrics<S, R>
where
    S: Service<Request<B>, Response = Response<RB>>,
    R: RouteSource<B>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = RequestMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let start = Instant::now();
        let method = method_label(request.method());
        let route = self
            .route
            .route(&request)
            .unwrap_or_else(|| self.names.unmatched.clone());
        RequestMetricsFuture {
            inner: self.inner.call(request),
            pending: Some(Pending {
                names: Arc::clone(&self.names),
                method,
                route,
                start,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestMetrics`]: the inner service's future, which records
    /// the request's count and duration when it resolves.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::future::{Ready, ready};
    /// use std::task::{Context, Poll};
    ///
    /// use metrics_exporter_statsd_graphite::{RequestMetricsFuture, RequestMetricsLayer};
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    ///
    /// #[derive(Clone)]
    /// struct NoContent;
    ///
    /// impl Service<http::Request<()>> for NoContent {
    ///     type Response = http::Response<()>;
    ///     type Error = Infallible;
    ///     type Future = Ready<Result<Self::Response, Infallible>>;
    ///
    ///     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
    ///         Poll::Ready(Ok(()))
    ///     }
    ///
    ///     fn call(&mut self, _: http::Request<()>) -> Self::Future {
    ///         let mut response = http::Response::new(());
    ///         *response.status_mut() = http::StatusCode::NO_CONTENT;
    ///         ready(Ok(response))
    ///     }
    /// }
    ///
    /// let mut service = RequestMetricsLayer::new().layer(NoContent);
    /// // Records http.requests and http.request.duration, status 204, once awaited.
    /// let future: RequestMetricsFuture<Ready<_>> = service.call(http::Request::new(()));
    /// # drop(future);
    /// ```
    pub struct RequestMetricsFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F> fmt::Debug for RequestMetricsFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetricsFuture")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for RequestMetricsFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let Some(pending) = this.pending.take() {
            let status = match &output {
                Ok(response) => status_label(response.status()),
                Err(_) => ERROR_STATUS,
            };
            pending.record(status);
        }
        Poll::Ready(output)
    }
}

/// A request in flight: what it will be labelled with, and when it started.
#[derive(Debug)]
struct Pending {
    names: Arc<Names>,
    method: &'static str,
    route: SharedString,
    start: Instant,
}

impl Pending {
    fn record(self, status: &'static str) {
        let elapsed = self.start.elapsed();
        let names = &*self.names;
        let labels = [
            Label::new(names.method_key.clone(), self.method),
            Label::new(names.route_key.clone(), self.route),
            Label::new(names.status_key.clone(), status),
        ];
        // One label list per metric is what the macros need; cloning a label is free but for
        // an owned route, which is copied once.
        metrics::counter!(names.counter.clone(), labels.to_vec()).increment(1);
        metrics::histogram!(names.histogram.clone(), Vec::from(labels)).record(elapsed);
    }
}
