//! [`RequestMetricsLayer`]: a `tower` layer that counts and times HTTP requests, as
//! sprockets-statsd's Tornado mixins and aiostatsd's `FastAPI` middleware do for Python users.
//!
//! Per request it records a counter (`http.requests`) and a duration histogram
//! (`http.request.duration`, a `Duration`, so seconds), both labelled by `method`, `route`
//! and `status`. The route comes from a pluggable [`RouteSource`]; this module reads no
//! framework type (axum's `MatchedPath` is plugged in by the user, see
//! [`RequestMetricsLayer::with_route_source`]).
//!
//! Cardinality is bounded by construction: methods outside the standard nine are labelled
//! `other`, statuses are the three-digit code, and a request whose route is unknown is
//! labelled with one constant (`unmatched`), never with its raw path.
//!
//! Nothing here allocates per request except what the `metrics` macros need for the label
//! list, and a copy of the route when the route source returns an owned string.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::Request;
use metrics::SharedString;

mod labels;
mod service;

pub use service::{RequestMetrics, RequestMetricsFuture};

/// Where the `route` label comes from: the matched route template of a request, if the
/// framework exposes one. Implemented for every closure
/// `Fn(&http::Request<B>) -> Option<S>` with `S: Into<metrics::SharedString>` (a `String`,
/// a `&'static str`, an `Arc<str>`...).
///
/// Return a *template* (`/users/{id}`), never the raw path: every distinct value is a new
/// series. `None` labels the request with the unmatched route
/// ([`RequestMetricsLayer::with_unmatched_route`]).
///
/// ```
/// use metrics_exporter_statsd_graphite::RouteSource;
///
/// /// Routes by the first path segment, for a service without a router.
/// #[derive(Debug)]
/// struct FirstSegment;
///
/// impl<B> RouteSource<B> for FirstSegment {
///     fn route(&self, request: &http::Request<B>) -> Option<metrics::SharedString> {
///         match request.uri().path().split('/').nth(1)? {
///             "api" => Some("/api".into()),
///             "static" => Some("/static".into()),
///             _ => None,
///         }
///     }
/// }
/// # let request = http::Request::get("/api/items/7").body(()).unwrap();
/// # assert_eq!(FirstSegment.route(&request).as_deref(), Some("/api"));
/// ```
pub trait RouteSource<B> {
    /// The route template of `request`, or `None` when it is unknown.
    fn route(&self, request: &Request<B>) -> Option<SharedString>;
}

impl<B, F, S> RouteSource<B> for F
where
    F: Fn(&Request<B>) -> Option<S>,
    S: Into<SharedString>,
{
    fn route(&self, request: &Request<B>) -> Option<SharedString> {
        self(request).map(Into::into)
    }
}

/// The default [`RouteSource`]: knows no route, so every request is labelled with the
/// unmatched route. Plug in your framework's route with
/// [`RequestMetricsLayer::with_route_source`].
///
/// ```
/// use metrics_exporter_statsd_graphite::{NoRoute, RouteSource};
///
/// let request = http::Request::get("/users/7").body(()).unwrap();
/// assert!(NoRoute.route(&request).is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRoute;

impl<B> RouteSource<B> for NoRoute {
    fn route(&self, _: &Request<B>) -> Option<SharedString> {
        None
    }
}

/// A [`tower_layer::Layer`] that records, for every HTTP request, a counter and a duration
/// histogram labelled by method, route and status. Works with any
/// `Service<http::Request<B>, Response = http::Response<R>>`.
///
/// | recorded | default name | value |
/// |---|---|---|
/// | counter | `http.requests` | 1 per request |
/// | histogram | `http.request.duration` | a `Duration` (seconds; sent as milliseconds for `\|ms` timers) |
///
/// | label | default key | value |
/// |---|---|---|
/// | method | `method` | `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`, `PATCH`, else `other` |
/// | route | `route` | from the [`RouteSource`], else `unmatched` |
/// | status | `status` | the three-digit status code, or `error` when the inner service failed |
///
/// The time runs from the call into the service until its response future resolves, that
/// is until the response *head* is ready: streaming the body is not included. A request
/// whose future is dropped before it resolves (the client went away) records nothing.
///
/// With axum, add the layer with `Router::layer` (it then runs after routing, so the matched
/// route is in the request's extensions) and read `MatchedPath`:
///
/// ```
/// use std::sync::Arc;
///
/// use axum::{Router, body::Body, extract::MatchedPath, routing::get};
/// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
///
/// let metrics = RequestMetricsLayer::new().with_route_source(|request: &http::Request<Body>| {
///     // The template (`/users/{id}`), never the raw path. An `Arc<str>` is copied once
///     // per request; the counter and the histogram share it.
///     let path = request.extensions().get::<MatchedPath>()?;
///     Some(Arc::<str>::from(path.as_str()))
/// });
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "a user" }))
///     .layer(metrics); // requests no route matched (404) get route=unmatched
/// # drop(app);
/// ```
///
/// Wrapping the whole router instead (`ServiceBuilder`, or `layer(router)`) times routing
/// too, but the route is not known yet at that point: every request is then `unmatched`.
pub struct RequestMetricsLayer<R = NoRoute> {
    prefix: Cow<'static, str>,
    counter: Cow<'static, str>,
    histogram: Cow<'static, str>,
    method_key: Cow<'static, str>,
    route_key: Cow<'static, str>,
    status_key: Cow<'static, str>,
    unmatched: Cow<'static, str>,
    route: Arc<R>,
}

impl RequestMetricsLayer {
    /// A layer with the default names and labels and no route source ([`NoRoute`]).
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// let layer = RequestMetricsLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> Self {
        Self {
            prefix: Cow::Borrowed("http"),
            counter: Cow::Borrowed("requests"),
            histogram: Cow::Borrowed("request.duration"),
            method_key: Cow::Borrowed("method"),
            route_key: Cow::Borrowed("route"),
            status_key: Cow::Borrowed("status"),
            unmatched: Cow::Borrowed("unmatched"),
            route: Arc::new(NoRoute),
        }
    }
}

impl Default for RequestMetricsLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> RequestMetricsLayer<R> {
    /// The first part of both metric names. Defaults to `http` (`http.requests`,
    /// `http.request.duration`); empty for no prefix. The exporter's own prefix
    /// (`ExporterBuilder::with_prefix`) still goes in front.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// // api.requests and api.request.duration
    /// let layer = RequestMetricsLayer::new().with_prefix("api");
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The counter's name after the prefix. Defaults to `requests`.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// // web.hits and web.latency
    /// let layer = RequestMetricsLayer::new()
    ///     .with_prefix("web")
    ///     .with_counter_name("hits")
    ///     .with_histogram_name("latency");
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn with_counter_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.counter = name.into();
        self
    }

    /// The duration histogram's name after the prefix. Defaults to `request.duration`.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// let layer = RequestMetricsLayer::new().with_histogram_name("latency"); // http.latency
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn with_histogram_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.histogram = name.into();
        self
    }

    /// The label keys for the method, the route and the status. Default to `method`,
    /// `route` and `status`.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// let layer = RequestMetricsLayer::new().with_label_keys("verb", "endpoint", "code");
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn with_label_keys(
        mut self,
        method: impl Into<Cow<'static, str>>,
        route: impl Into<Cow<'static, str>>,
        status: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.method_key = method.into();
        self.route_key = route.into();
        self.status_key = status.into();
        self
    }

    /// The route label of a request whose route is unknown (the route source returned
    /// `None`: a 404 from axum, for one). Defaults to `unmatched`.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// let layer = RequestMetricsLayer::new().with_unmatched_route("none");
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn with_unmatched_route(mut self, route: impl Into<Cow<'static, str>>) -> Self {
        self.unmatched = route.into();
        self
    }

    /// Where the route label comes from: a closure
    /// `Fn(&http::Request<B>) -> Option<impl Into<SharedString>>` or any [`RouteSource`].
    /// Defaults to [`NoRoute`]. The type-level example shows axum's `MatchedPath`.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::RequestMetricsLayer;
    ///
    /// // A service with one route: every request is `/`.
    /// let layer = RequestMetricsLayer::new().with_route_source(|_: &http::Request<()>| Some("/"));
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn with_route_source<R2>(self, route: R2) -> RequestMetricsLayer<R2> {
        RequestMetricsLayer {
            prefix: self.prefix,
            counter: self.counter,
            histogram: self.histogram,
            method_key: self.method_key,
            route_key: self.route_key,
            status_key: self.status_key,
            unmatched: self.unmatched,
            route: Arc::new(route),
        }
    }

    /// The final names and keys, each made shareable once so that cloning it per request is
    /// a reference-count increment at most.
    fn names(&self) -> Names {
        let join = |name: &Cow<'static, str>| {
            if self.prefix.is_empty() {
                shared(name.clone())
            } else {
                shared(Cow::Owned(format!("{}.{name}", self.prefix)))
            }
        };
        Names {
            counter: join(&self.counter),
            histogram: join(&self.histogram),
            method_key: shared(self.method_key.clone()),
            route_key: shared(self.route_key.clone()),
            status_key: shared(self.status_key.clone()),
            unmatched: shared(self.unmatched.clone()),
        }
    }
}

/// A `&'static str` stays borrowed; an owned string becomes an `Arc<str>`, so clones of the
/// result never allocate.
fn shared(text: Cow<'static, str>) -> SharedString {
    match text {
        Cow::Borrowed(text) => SharedString::from(text),
        Cow::Owned(text) => SharedString::from(Arc::<str>::from(text)),
    }
}

impl<R> Clone for RequestMetricsLayer<R> {
    fn clone(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            counter: self.counter.clone(),
            histogram: self.histogram.clone(),
            method_key: self.method_key.clone(),
            route_key: self.route_key.clone(),
            status_key: self.status_key.clone(),
            unmatched: self.unmatched.clone(),
            route: Arc::clone(&self.route),
        }
    }
}

impl<R> fmt::Debug for RequestMetricsLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMetricsLayer")
            .field("prefix", &self.prefix)
            .field("counter", &self.counter)
            .field("histogram", &self.histogram)
            .field("method_key", &self.method_key)
            .field("route_key", &self.route_key)
            .field("status_key", &self.status_key)
            .field("unmatched", &self.unmatched)
            .field("route", &std::any::type_name::<R>())
            .finish()
    }
}

/// What [`RequestMetricsLayer`] builds once per wrapped service.
#[derive(Debug)]
struct Names {
    counter: SharedString,
    histogram: SharedString,
    method_key: SharedString,
    route_key: SharedString,
    status_key: SharedString,
    unmatched: SharedString,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_the_prefix_with_a_dot_and_an_empty_prefix_adds_none() {
        let names = RequestMetricsLayer::new().names();
        assert_eq!(&*names.counter, "http.requests");
        assert_eq!(&*names.histogram, "http.request.duration");
        let names = RequestMetricsLayer::new()
            .with_counter_name("hits")
            .with_prefix("")
            .names();
        assert_eq!(&*names.counter, "hits");
        assert_eq!(&*names.histogram, "request.duration");
    }
}
