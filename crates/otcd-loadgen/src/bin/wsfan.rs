//! `otcd-wsfan`: WebSocket fan-out benchmark. Opens many `/v1/stream` connections, each subscribed to a quotes
//! ladder on several instruments, and measures tick-to-client latency (the ladder's `tick_at`, the newest
//! market update behind it, to the moment the client reads it; same machine, same clock), message rates and
//! disconnects.

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use otcd_loadgen::{create_client_keys, now_ms, signature, Key};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Room for several ladders (~600 bytes each) per read. tungstenite zero-fills the whole buffer before every read,
/// including the one that finds the socket empty, so a larger buffer costs a larger `memset` per message: at 16 KiB
/// that was still a tenth of this generator's CPU.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// How many of the slowest messages the report lists.
const SLOWEST_KEPT: usize = 20;

#[derive(Debug, Parser)]
struct Arguments {
    #[arg(long, default_value = "127.0.0.1:8080")]
    address: SocketAddr,
    #[arg(long)]
    admin_key_file: PathBuf,
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    #[arg(long, default_value = "BTC-USD,ETH-USD,ETH-BTC")]
    instruments: String,
    #[arg(long, default_value = "0.1,1,5")]
    levels: String,
    #[arg(long, default_value_t = 20)]
    duration_seconds: u64,
    /// Connections per key (the server allows 20).
    #[arg(long, default_value_t = 20)]
    connections_per_key: usize,
    /// Distinct clients the keys belong to: each client gets its own firm ladder (and quote ids) per tick, so
    /// more clients means more pricing, journaling and serialization per tick on the desk.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Runtime worker threads. The load generator shares the machine with the server, so it takes as few
    /// cores as it can measure with: every thread it adds competes with the server being measured.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    firm: AtomicU64,
    closed_early: AtomicU64,
    errors: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let runtime = if arguments.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(arguments.threads).enable_all().build()?
    };
    runtime.block_on(run(arguments))
}

async fn run(arguments: Arguments) -> anyhow::Result<()> {
    let admin = Key::from_file(&arguments.admin_key_file)?;
    let key_count = arguments.connections.div_ceil(arguments.connections_per_key);
    let clients = arguments.clients.clamp(1, key_count);
    let mut keys = Vec::with_capacity(key_count);
    for client in 0..clients {
        let count = key_count / clients + usize::from(client < key_count % clients);
        keys.extend(create_client_keys(arguments.address, &admin, count).await?);
    }
    let instruments: Vec<String> = arguments.instruments.split(',').map(str::to_owned).collect();
    let levels: Vec<String> = arguments.levels.split(',').map(str::to_owned).collect();
    let counters = Arc::new(Counters::default());
    let measure_from = Instant::now() + Duration::from_secs(3);
    let stop_at = measure_from + Duration::from_secs(arguments.duration_seconds);
    let last_timestamps: Vec<Arc<AtomicU64>> = keys.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut tasks = Vec::new();
    for index in 0..arguments.connections {
        let key = keys[index / arguments.connections_per_key].clone();
        let connection = Connection {
            address: arguments.address,
            // Connections sharing a key sign at distinct milliseconds, or the later ones would be replays.
            last_timestamp: last_timestamps[index / arguments.connections_per_key].clone(),
            key,
            instruments: instruments.clone(),
            levels: levels.clone(),
            counters: counters.clone(),
            measure_from,
            stop_at,
        };
        tasks.push(tokio::spawn(connection.run()));
        if index % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut latency_ms = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    let mut slowest = Slowest::default();
    for task in tasks {
        match task.await? {
            Ok(measured) => {
                latency_ms.add(&measured.latency_ms)?;
                measured.slowest.kept.into_iter().for_each(|message| slowest.keep(message));
            }
            Err(error) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("connection failed: {error:#}");
            }
        }
    }
    let seconds = arguments.duration_seconds as f64;
    let messages = counters.messages.load(Ordering::Relaxed);
    let subscriptions = (arguments.connections * instruments.len()) as f64;
    println!(
        "{{\"connections\": {}, \"clients\": {clients}, \"instruments\": {}, \"levels\": {}, \"seconds\": {}, \"messages\": {}, \"messages_per_second\": {:.0}, \"per_subscription_per_second\": {:.2}, \"firm_share\": {:.3}, \"tick_to_client_ms\": {{\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}}}, \"closed_early\": {}, \"errors\": {}, \"slowest\": [{}]}}",
        arguments.connections,
        instruments.len(),
        levels.len(),
        arguments.duration_seconds,
        messages,
        messages as f64 / seconds,
        messages as f64 / seconds / subscriptions,
        counters.firm.load(Ordering::Relaxed) as f64 / messages.max(1) as f64,
        latency_ms.value_at_quantile(0.50),
        latency_ms.value_at_quantile(0.90),
        latency_ms.value_at_quantile(0.99),
        latency_ms.max(),
        counters.closed_early.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
        slowest.to_json(),
    );
    Ok(())
}

struct Connection {
    address: SocketAddr,
    last_timestamp: Arc<AtomicU64>,
    key: Key,
    instruments: Vec<String>,
    levels: Vec<String>,
    counters: Arc<Counters>,
    measure_from: Instant,
    stop_at: Instant,
}

/// What one connection measured.
struct Measured {
    latency_ms: Histogram<u64>,
    slowest: Slowest,
}

/// One slow message: its tick-to-client latency, when it was received (milliseconds from the start of the measured
/// window) and its instrument. Ordered by latency first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SlowMessage {
    latency_ms: u64,
    received_at_ms: u64,
    instrument: String,
}

/// The `SLOWEST_KEPT` slowest messages, to tell a steady cost per frame within each burst (slow messages spread
/// over the whole window) from stalls (slow messages clustered at a few moments).
#[derive(Debug, Default)]
struct Slowest {
    kept: Vec<SlowMessage>,
}

impl Slowest {
    /// Whether a message this slow would be kept: checked before building a `SlowMessage`, so that the usual
    /// message costs one comparison.
    fn wants(&self, latency_ms: u64) -> bool {
        self.kept.len() < SLOWEST_KEPT || self.kept.last().is_some_and(|fastest| latency_ms > fastest.latency_ms)
    }

    fn keep(&mut self, message: SlowMessage) {
        if !self.wants(message.latency_ms) {
            return;
        }
        self.kept.push(message);
        self.kept.sort_unstable_by(|left, right| right.cmp(left));
        self.kept.truncate(SLOWEST_KEPT);
    }

    fn to_json(&self) -> String {
        self.kept
            .iter()
            .map(|message| {
                format!(
                    "{{\"latency_ms\": {}, \"received_at_ms\": {}, \"instrument\": \"{}\"}}",
                    message.latency_ms, message.received_at_ms, message.instrument
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Connection {
    async fn run(self) -> anyhow::Result<Measured> {
        let mut measured =
            Measured { latency_ms: Histogram::<u64>::new_with_bounds(1, 600_000, 3)?, slowest: Slowest::default() };
        let now = now_ms() as u64;
        let previous =
            self.last_timestamp.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1)));
        let timestamp = u128::from(now.max(previous.unwrap_or_default() + 1));
        let mut request = format!("ws://{}/v1/stream", self.address).into_client_request()?;
        let headers = request.headers_mut();
        headers.insert("OTC-KEY", self.key.key_id.parse()?);
        headers.insert("OTC-TIMESTAMP", timestamp.to_string().parse()?);
        headers.insert("OTC-SIGNATURE", signature(&self.key, "GET", "/v1/stream", "", timestamp)?.parse()?);
        let stream = tokio::net::TcpStream::connect(self.address).await?;
        stream.set_nodelay(true)?;
        // tungstenite zero-fills its whole read buffer before every read (128 KiB by default): with one small
        // ladder per read that memset was a third of this generator's CPU, taken from the server it measures.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let (mut socket, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await.context("upgrade")?;
        for instrument in &self.instruments {
            let message = serde_json::json!({"op": "subscribe", "channel": "quotes", "instrument": instrument, "levels": self.levels});
            socket.send(Message::text(message.to_string())).await?;
        }
        // One timer for the whole run: a `timeout` per message inserted and removed a timer entry per message.
        let stop = tokio::time::sleep_until(self.stop_at.into());
        tokio::pin!(stop);
        loop {
            let next = tokio::select! {
                biased;
                next = socket.next() => next,
                () = &mut stop => break,
            };
            match next {
                Some(Ok(Message::Text(text))) => self.record(&text, &mut measured),
                Some(Ok(Message::Close(_))) | None => {
                    self.counters.closed_early.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
            }
        }
        let _ = socket.close(None).await;
        Ok(measured)
    }

    /// Reads only what the measurement needs (`type`, `firm`, `tick_at`) by searching the text, not by a full
    /// JSON parse: the generator runs on the server's cores, and its own parsing would be counted as latency.
    fn record(&self, text: &str, measured: &mut Measured) {
        let received_ms = now_ms() as i128;
        let received_at = Instant::now();
        if received_at < self.measure_from || !text.contains(r#""type":"quotes""#) {
            return;
        }
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        if text.contains(r#""firm":true"#) {
            self.counters.firm.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(tick_ms) = tick_at_ms(text) {
            let latency_ms = (received_ms - tick_ms).max(1) as u64;
            let _ = measured.latency_ms.record(latency_ms);
            if measured.slowest.wants(latency_ms) {
                measured.slowest.keep(SlowMessage {
                    latency_ms,
                    received_at_ms: received_at.duration_since(self.measure_from).as_millis() as u64,
                    instrument: instrument_of(text).unwrap_or_default().to_owned(),
                });
            }
        }
    }
}

/// The `instrument` of a quotes message, found by a text search like `tick_at`.
fn instrument_of(text: &str) -> Option<&str> {
    const FIELD: &str = r#""instrument":""#;
    let start = text.find(FIELD)? + FIELD.len();
    let length = text[start..].find('"')?;
    Some(&text[start..start + length])
}

/// The `tick_at` timestamp of a quotes message in Unix milliseconds.
fn tick_at_ms(text: &str) -> Option<i128> {
    const FIELD: &str = r#""tick_at":""#;
    let start = text.find(FIELD)? + FIELD.len();
    let length = text[start..].find('"')?;
    let tick_at =
        time::OffsetDateTime::parse(&text[start..start + length], &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(tick_at.unix_timestamp_nanos() / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::{instrument_of, tick_at_ms, SlowMessage, Slowest, SLOWEST_KEPT};

    #[test]
    fn keeps_only_the_slowest_messages() {
        let mut slowest = Slowest::default();
        for latency_ms in 0..100 {
            let message = SlowMessage { latency_ms, received_at_ms: 1_000 + latency_ms, instrument: "BTC-USD".into() };
            slowest.keep(message);
        }
        assert_eq!(slowest.kept.len(), SLOWEST_KEPT);
        assert_eq!(slowest.kept[0].latency_ms, 99);
        assert_eq!(slowest.kept[SLOWEST_KEPT - 1].latency_ms, 80);
        assert!(!slowest.wants(80) && slowest.wants(81));
        assert!(slowest
            .to_json()
            .starts_with(r#"{"latency_ms": 99, "received_at_ms": 1099, "instrument": "BTC-USD"}"#));
        assert_eq!(instrument_of(r#"{"type":"quotes","instrument":"ETH-BTC","firm":true}"#), Some("ETH-BTC"));
    }

    #[test]
    fn finds_tick_at_without_parsing_the_message() {
        let text = r#"{"as_of":"2026-11-24T10:00:00.000Z","firm":true,"levels":[],"tick_at":"2026-11-24T10:00:00.123Z","type":"quotes"}"#;
        assert_eq!(tick_at_ms(text), Some(1_795_514_400_123));
        assert_eq!(tick_at_ms(r#"{"type":"quotes"}"#), None);
    }
}
