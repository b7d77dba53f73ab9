//! Prometheus metrics. The host owns the registry and the engine's and journal's metrics; each adapter registers
//! its own families into the same registry at start (the HTTP crate its request counts and latencies, the
//! services their ladder latency), so `/metrics` shows the whole desk.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

pub struct Metrics {
    registry: parking_lot::Mutex<Registry>,
    pub engine_queue_depth: Gauge,
    /// Time the engine thread spends on one batch of requests: every request queued behind a batch waits this
    /// long, so a long batch is a stall of the whole desk.
    pub engine_batch_seconds: Histogram,
    pub journal_fsync_seconds: Histogram,
    /// Client-visible events handed to the event feed after their records were durable.
    pub events_published: prometheus_client::metrics::counter::Counter,
    /// Event subscribers closed because they fell behind (their queue was full).
    pub event_subscribers_dropped: prometheus_client::metrics::counter::Counter,
    /// Per checkpoint: how long its oldest record had been durable without a signed checkpoint (the window in
    /// which a cut at a record boundary is not detectable from the data directory).
    pub checkpoint_unsigned_seconds: Histogram,
    /// Checkpoint witness lines that could not be written (the next checkpoint is witnessed again).
    pub checkpoint_witness_failures: prometheus_client::metrics::counter::Counter,
}

/// Latency buckets from 50 µs to 5 s: the interesting range for a desk that answers in about a millisecond.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0].into_iter()
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Self {
            registry: parking_lot::Mutex::new(Registry::with_prefix("otcd")),
            engine_queue_depth: Gauge::default(),
            engine_batch_seconds: Histogram::new(latency_buckets()),
            journal_fsync_seconds: Histogram::new(latency_buckets()),
            events_published: Default::default(),
            event_subscribers_dropped: Default::default(),
            checkpoint_unsigned_seconds: Histogram::new([
                0.01, 0.05, 0.1, 0.11, 0.125, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
            ]),
            checkpoint_witness_failures: Default::default(),
        };
        metrics.register("engine_queue_depth", "Requests waiting for the engine", metrics.engine_queue_depth.clone());
        metrics.register(
            "engine_batch_seconds",
            "Time the engine thread takes for one batch of requests",
            metrics.engine_batch_seconds.clone(),
        );
        metrics.register(
            "journal_fsync_seconds",
            "Journal group-commit sync latency",
            metrics.journal_fsync_seconds.clone(),
        );
        metrics.register(
            "events_published",
            "Client-visible events published after their records were durable",
            metrics.events_published.clone(),
        );
        metrics.register(
            "event_subscribers_dropped",
            "Event subscribers closed because they fell behind",
            metrics.event_subscribers_dropped.clone(),
        );
        metrics.register(
            "checkpoint_unsigned_seconds",
            "How long the oldest record a checkpoint signs had been durable and unsigned",
            metrics.checkpoint_unsigned_seconds.clone(),
        );
        metrics.register(
            "checkpoint_witness_failures",
            "Checkpoint witness lines that could not be written",
            metrics.checkpoint_witness_failures.clone(),
        );
        metrics
    }

    /// Adds a metric (a clone of it: metrics are shared handles) to the registry under `otcd_<name>`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry.lock().register(name, help, metric);
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry.lock()).expect("writing to a String cannot fail");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
