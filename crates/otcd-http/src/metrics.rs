//! The HTTP edge's metrics, registered into the desk's registry (`otcd_host::metrics`): request counts by
//! method, route and status, and latency by route.

use otcd_host::metrics::{latency_buckets, Metrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
}

impl HttpMetrics {
    /// `otcd_http_requests` and `otcd_http_request_seconds`.
    pub fn register(metrics: &Metrics) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        metrics.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        metrics.register("http_request_seconds", "HTTP request latency by route", request_seconds.clone());
        Self { requests, request_seconds }
    }
}
