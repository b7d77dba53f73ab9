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
use tokio_tungstenite::tungstenite::Message;

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
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    firm: AtomicU64,
    closed_early: AtomicU64,
    errors: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let admin = Key::from_file(&arguments.admin_key_file)?;
    let key_count = arguments.connections.div_ceil(arguments.connections_per_key);
    let keys = create_client_keys(arguments.address, &admin, key_count).await?;
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
        "{{\"connections\": {}, \"instruments\": {}, \"levels\": {}, \"seconds\": {}, \"messages\": {}, \"messages_per_second\": {:.0}, \"per_subscription_per_second\": {:.2}, \"firm_share\": {:.3}, \"tick_to_client_ms\": {{\"p50\": {}, \"p90\": {}, \"p99\": {}, \"max\": {}}}, \"closed_early\": {}, \"errors\": {}}}",
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
        let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await.context("upgrade")?;
        for instrument in &self.instruments {
            let message = serde_json::json!({"op": "subscribe", "channel": "quotes", "instrument": instrument, "levels": self.levels});
            socket.send(Message::text(message.to_string())).await?;
        }
        loop {
            let remaining = self.stop_at.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            let Ok(next) = tokio::time::timeout(remaining, socket.next()).await else { break };
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

    fn record(&self, text: &str, latency_ms: &mut Histogram<u64>) {
        let received_ms = now_ms() as i128;
        if Instant::now() < self.measure_from {
            return;
        }
        let Ok(message) = serde_json::from_str::<serde_json::Value>(text) else { return };
        if message["type"] != "quotes" {
            return;
        }
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        if message["firm"] == true {
            self.counters.firm.fetch_add(1, Ordering::Relaxed);
        }
        let tick_at = message["tick_at"]
            .as_str()
            .and_then(|text| time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok());
        if let Some(tick_at) = tick_at {
            let tick_ms = tick_at.unix_timestamp_nanos() / 1_000_000;
            let _ = latency_ms.record((received_ms - tick_ms).max(1) as u64);
        }
    }
}
