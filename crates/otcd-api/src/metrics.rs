//! Prometheus metrics: request counts and latency per route, engine queue depth, journal sync latency.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_seconds: Family<RouteLabels, Histogram>,
    pub engine_queue_depth: Gauge,
    /// Time the engine thread spends on one batch of requests: every request queued behind a batch waits this
    /// long, so a long batch is a stall of the whole desk.
    pub engine_batch_seconds: Histogram,
    pub journal_fsync_seconds: Histogram,
    /// From a ladder's `tick_at` to its message queued for every subscriber: the desk's share of tick-to-client
    /// latency (pricing, the journal's fsync); the rest is the sockets and the client.
    pub ladder_publish_seconds: Histogram,
}

/// Latency buckets from 50 µs to 5 s: the interesting range for a desk that answers in about a millisecond.
fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0].into_iter()
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("otcd");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_request_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        let engine_queue_depth = Gauge::default();
        let engine_batch_seconds = Histogram::new(latency_buckets());
        let journal_fsync_seconds = Histogram::new(latency_buckets());
        let ladder_publish_seconds = Histogram::new(latency_buckets());
        registry.register("http_requests", "HTTP requests by method, route and status", http_requests.clone());
        registry.register("http_request_seconds", "HTTP request latency by route", http_request_seconds.clone());
        registry.register("engine_queue_depth", "Requests waiting for the engine", engine_queue_depth.clone());
        registry.register(
            "engine_batch_seconds",
            "Time the engine thread takes for one batch of requests",
            engine_batch_seconds.clone(),
        );
        registry.register("journal_fsync_seconds", "Journal group-commit sync latency", journal_fsync_seconds.clone());
        registry.register(
            "ladder_publish_seconds",
            "Streamed ladder latency from its market tick to queued for every subscriber",
            ladder_publish_seconds.clone(),
        );
        Self {
            registry,
            http_requests,
            http_request_seconds,
            engine_queue_depth,
            engine_batch_seconds,
            journal_fsync_seconds,
            ladder_publish_seconds,
        }
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
