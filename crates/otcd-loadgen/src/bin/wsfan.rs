//! `otcd-wsfan`: WebSocket fan-out benchmark. Opens many `/v1/stream` connections, each subscribed to a quotes
//! ladder on several instruments, and measures tick-to-client latency (the ladder's `tick_at`, the newest
//! market update behind it, to the moment the client reads it; same machine, same clock), message rates and
//! disconnects.

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use otcd_loadgen::{create_client_keys, now_ms, signature, Key};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Room for several ladders (~600 bytes each) per read. tungstenite zero-fills the whole buffer before every read,
/// including the one that finds the socket empty, so a larger buffer costs a larger `memset` per message: at 16 KiB
/// that was still a tenth of this generator's CPU.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// How many of the slowest ticks the report lists.
const SLOWEST_KEPT: usize = 20;
/// Most ticks followed (3 instruments at 10 a second over a 20 s window are 600); later ticks are not tracked.
const TICKS_TRACKED_MAX: usize = 100_000;

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
    let ticks = Arc::new(Mutex::new(Ticks::default()));
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
            ticks: ticks.clone(),
            measure_from,
            stop_at,
        };
        tasks.push(tokio::spawn(connection.run()));
        if index % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut latency_ms = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    for task in tasks {
        match task.await? {
            Ok(histogram) => latency_ms.add(&histogram)?,
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
        "{{\"connections\": {}, \"clients\": {clients}, \"instruments\": {}, \"levels\": {}, \"seconds\": {}, \"messages\": {}, \"messages_per_second\": {:.0}, \"per_subscription_per_second\": {:.2}, \"firm_share\": {:.3}, \"tick_to_client_ms\": {{\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}}}, \"closed_early\": {}, \"errors\": {}, \"ticks\": {}}}",
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
        ticks.lock().expect("no connection panicked holding the ticks").to_json(&instruments)?,
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
    ticks: Arc<Mutex<Ticks>>,
    measure_from: Instant,
    stop_at: Instant,
}

/// One tick of one instrument as all connections saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TickSeen {
    /// Latency of the tick's first and last ladder to arrive, at any connection.
    first_ms: u64,
    last_ms: u64,
    /// When the last one arrived, in milliseconds from the start of the measured window.
    last_received_at_ms: u64,
    received: u32,
}

/// Ladders per (instrument, `tick_at`). Splits tick-to-client time into the wait before a tick's first ladder
/// reaches any client (pricing, journaling and its fsync, the first frame) and the spread of the tick's burst (its
/// frames written by the server and read by this generator one after another), and lists the slowest ticks with
/// when they arrived: every burst slow is a steady cost per frame, a few slow ticks are stalls.
#[derive(Debug, Default)]
struct Ticks {
    seen: HashMap<(usize, i128), TickSeen>,
}

impl Ticks {
    fn record(&mut self, instrument: usize, tick_ms: i128, latency_ms: u64, received_at_ms: u64) {
        let tracked = self.seen.len();
        match self.seen.entry((instrument, tick_ms)) {
            Entry::Occupied(mut entry) => {
                let tick = entry.get_mut();
                tick.first_ms = tick.first_ms.min(latency_ms);
                if latency_ms >= tick.last_ms {
                    tick.last_ms = latency_ms;
                    tick.last_received_at_ms = received_at_ms;
                }
                tick.received += 1;
            }
            Entry::Vacant(entry) => {
                if tracked < TICKS_TRACKED_MAX {
                    entry.insert(TickSeen {
                        first_ms: latency_ms,
                        last_ms: latency_ms,
                        last_received_at_ms: received_at_ms,
                        received: 1,
                    });
                }
            }
        }
    }

    fn to_json(&self, instruments: &[String]) -> anyhow::Result<String> {
        let mut first_ms = Histogram::<u64>::new(3)?;
        let mut spread_ms = Histogram::<u64>::new(3)?;
        for tick in self.seen.values() {
            first_ms.record(tick.first_ms)?;
            spread_ms.record(tick.last_ms - tick.first_ms)?;
        }
        let quantiles = |histogram: &Histogram<u64>| {
            format!(
                "{{\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}}}",
                histogram.value_at_quantile(0.50),
                histogram.value_at_quantile(0.90),
                histogram.value_at_quantile(0.99),
                histogram.max()
            )
        };
        let mut slowest: Vec<(&(usize, i128), &TickSeen)> = self.seen.iter().collect();
        slowest.sort_unstable_by_key(|(_, tick)| std::cmp::Reverse(tick.last_ms));
        let slowest = slowest
            .iter()
            .take(SLOWEST_KEPT)
            .map(|((instrument, _), tick)| {
                format!(
                    "{{\"instrument\": \"{}\", \"received_at_ms\": {}, \"first_ms\": {}, \"last_ms\": {}, \"received\": {}}}",
                    instruments.get(*instrument).map_or("?", String::as_str),
                    tick.last_received_at_ms,
                    tick.first_ms,
                    tick.last_ms,
                    tick.received
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(format!(
            "{{\"count\": {}, \"first_ms\": {}, \"spread_ms\": {}, \"slowest\": [{slowest}]}}",
            self.seen.len(),
            quantiles(&first_ms),
            quantiles(&spread_ms)
        ))
    }
}

impl Connection {
    async fn run(self) -> anyhow::Result<Histogram<u64>> {
        let mut latency_ms = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
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
                Some(Ok(Message::Text(text))) => self.record(&text, &mut latency_ms),
                Some(Ok(Message::Close(_))) | None => {
                    self.counters.closed_early.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.into()),
            }
        }
        let _ = socket.close(None).await;
        Ok(latency_ms)
    }

    /// Reads only what the measurement needs (`type`, `firm`, `tick_at`) by searching the text, not by a full
    /// JSON parse: the generator runs on the server's cores, and its own parsing would be counted as latency.
    fn record(&self, text: &str, latency_ms: &mut Histogram<u64>) {
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
            let latency = (received_ms - tick_ms).max(1) as u64;
            let _ = latency_ms.record(latency);
            let instrument = instrument_of(text)
                .and_then(|symbol| self.instruments.iter().position(|known| known == symbol))
                .unwrap_or(usize::MAX);
            let received_at_ms = received_at.duration_since(self.measure_from).as_millis() as u64;
            // Uncontended: the generator runs its connections on one thread by default.
            self.ticks.lock().expect("no connection panicked holding the ticks").record(
                instrument,
                tick_ms,
                latency,
                received_at_ms,
            );
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
    use super::{instrument_of, tick_at_ms, TickSeen, Ticks};

    #[test]
    fn ticks_split_the_wait_before_a_burst_from_its_spread() {
        let mut ticks = Ticks::default();
        // Tick 1 of BTC-USD reaches three connections 4, 9 and 6 ms after it; tick 2 one connection after 30 ms.
        ticks.record(0, 1_000, 4, 100);
        ticks.record(0, 1_000, 9, 105);
        ticks.record(0, 1_000, 6, 102);
        ticks.record(1, 1_009, 30, 135);
        assert_eq!(
            ticks.seen[&(0, 1_000)],
            TickSeen { first_ms: 4, last_ms: 9, last_received_at_ms: 105, received: 3 }
        );
        let json = ticks.to_json(&["BTC-USD".to_owned(), "ETH-USD".to_owned()]).unwrap();
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["count"], 2);
        assert_eq!(report["first_ms"]["max"], 30);
        assert_eq!(report["spread_ms"]["max"], 5);
        assert_eq!(report["slowest"][0]["instrument"], "ETH-USD");
        assert_eq!(report["slowest"][1]["received_at_ms"], 105);
        assert_eq!(instrument_of(r#"{"type":"quotes","instrument":"ETH-BTC","firm":true}"#), Some("ETH-BTC"));
    }

    #[test]
    fn finds_tick_at_without_parsing_the_message() {
        let text = r#"{"as_of":"2026-11-24T10:00:00.000Z","firm":true,"levels":[],"tick_at":"2026-11-24T10:00:00.123Z","type":"quotes"}"#;
        assert_eq!(tick_at_ms(text), Some(1_795_514_400_123));
        assert_eq!(tick_at_ms(r#"{"type":"quotes"}"#), None);
    }
}
