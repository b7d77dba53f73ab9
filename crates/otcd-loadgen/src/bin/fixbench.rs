//! `otcd-fixbench`: RFQ then trade over the FIX gateway (QuoteRequest → Quote, then NewOrderSingle `OrdType` D →
//! ExecutionReport), the same pair `otcd-loadgen --trade` sends over HTTP, so the two paths compare in one run.
//!
//! One funded client and key per session (created through the admin API over HTTP), a signed Logon, then pairs
//! alternating buy and sell: closed loop (each session sends its next pair when the last one is answered), or at
//! `--pairs-per-second` in all (each session paces its share; latency is measured from sending, and a session
//! that falls behind sends at once). One-second warm-up, then `--duration-seconds` measured.

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use hmac::Mac;
use otcd_fix::codec::{next_frame, Builder, Header, Message};
use otcd_loadgen::{now_ms, Key};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(about = "RFQ-then-trade load over otcd's FIX gateway")]
struct Arguments {
    /// The desk's HTTP address (set-up only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    address: SocketAddr,
    /// The desk's FIX address (`--fix-listen`).
    #[arg(long, default_value = "127.0.0.1:9878")]
    fix_address: SocketAddr,
    #[arg(long)]
    admin_key_file: PathBuf,
    /// Instrument and quantity, e.g. `BTC-USD:0.01`.
    #[arg(long, default_value = "BTC-USD:0.01")]
    trade: String,
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Pairs per second in all; 0: closed loop.
    #[arg(long, default_value_t = 0)]
    pairs_per_second: u64,
    #[arg(long, default_value_t = 10)]
    duration_seconds: u64,
}

struct Report {
    rfq_us: Histogram<u64>,
    order_us: Histogram<u64>,
    pair_us: Histogram<u64>,
    pairs: u64,
}

impl Report {
    fn new() -> anyhow::Result<Self> {
        let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
        Ok(Self { rfq_us: histogram()?, order_us: histogram()?, pair_us: histogram()?, pairs: 0 })
    }

    fn merge(&mut self, other: Report) -> anyhow::Result<()> {
        self.rfq_us.add(other.rfq_us)?;
        self.order_us.add(other.order_us)?;
        self.pair_us.add(other.pair_us)?;
        self.pairs += other.pairs;
        Ok(())
    }
}

struct Session {
    stream: TcpStream,
    buffer: Vec<u8>,
    key: Key,
    seq: u64,
}

impl Session {
    async fn send(&mut self, builder: Builder) -> anyhow::Result<()> {
        self.seq += 1;
        let sending_time = otcd_fix::timestamps::format(otcd_core_now());
        let header = Header {
            sender: &self.key.key_id,
            target: "OTCD",
            seq_num: self.seq,
            sending_time: &sending_time,
            orig_sending_time: None,
        };
        self.stream.write_all(&builder.encode(&header)).await?;
        Ok(())
    }

    /// The next application message of `msg_type` (admin messages answered or skipped).
    async fn expect(&mut self, msg_type: &str) -> anyhow::Result<Message> {
        loop {
            if let Some((message, used)) = next_frame(&self.buffer)? {
                self.buffer.drain(..used);
                let message = message?;
                match message.msg_type() {
                    Some(got) if got == msg_type => return Ok(message),
                    Some("1") => {
                        let id = message.get(112).unwrap_or("").to_owned();
                        self.send(Builder::new("0").field(112, id)).await?;
                    }
                    Some("0") | Some("8") => {}
                    other => bail!("expected {msg_type}, got {other:?}: {message:?}"),
                }
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = self.stream.read(&mut chunk).await?;
            if read == 0 {
                bail!("the desk closed the session");
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    async fn logon(&mut self) -> anyhow::Result<()> {
        let sending_time = otcd_fix::timestamps::format(otcd_core_now());
        let seq = self.seq + 1;
        let payload = [sending_time.as_str(), "A", &seq.to_string(), &self.key.key_id, "OTCD"].join("\x01");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.key.secret.as_bytes())?;
        mac.update(payload.as_bytes());
        let signature = base64_standard(&mac.finalize().into_bytes());
        let logon = Builder::new("A")
            .field(98, "0")
            .field(108, "30")
            .field(141, "Y")
            .field(95, signature.len().to_string())
            .field(96, signature);
        self.seq = seq;
        let header = Header {
            sender: &self.key.key_id,
            target: "OTCD",
            seq_num: seq,
            sending_time: &sending_time,
            orig_sending_time: None,
        };
        self.stream.write_all(&logon.encode(&header)).await?;
        self.expect("A").await?;
        Ok(())
    }
}

fn otcd_core_now() -> otcd_core::time::TimestampMs {
    otcd_core::time::TimestampMs(now_ms() as i64)
}

/// Standard base64, by hand: the one encoding this tool needs, not worth a dependency.
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let value =
            chunk.iter().enumerate().fold(0u32, |value, (index, byte)| value | (u32::from(*byte) << (16 - 8 * index)));
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(char::from(ALPHABET[(value >> (18 - 6 * index)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn run_session(
    arguments: &Arguments,
    key: Key,
    symbol: String,
    quantity: String,
    index: usize,
    start: Instant,
) -> anyhow::Result<Report> {
    let stream = TcpStream::connect(arguments.fix_address).await?;
    stream.set_nodelay(true)?;
    let mut session = Session { stream, buffer: Vec::new(), key, seq: 0 };
    session.logon().await?;
    let warm_up_end = start + Duration::from_secs(1);
    let end = warm_up_end + Duration::from_secs(arguments.duration_seconds);
    let interval = (arguments.pairs_per_second > 0)
        .then(|| Duration::from_secs_f64(arguments.sessions as f64 / arguments.pairs_per_second as f64));
    let mut report = Report::new()?;
    let mut next_due =
        start + interval.map_or(Duration::ZERO, |every| every.mul_f64(index as f64 / arguments.sessions as f64));
    let mut pair = 0u64;
    while Instant::now() < end {
        if let Some(every) = interval {
            tokio::time::sleep_until(next_due.into()).await;
            next_due += every;
        }
        pair += 1;
        let side = if pair & 1 == 0 { "1" } else { "2" };
        let request_id = format!("b{index}-{}-{pair}", now_ms());
        let sent = Instant::now();
        let rfq = Builder::new("R").field(131, request_id.clone()).field(146, "1").field(55, symbol.clone());
        session.send(rfq.field(54, side).field(38, quantity.clone())).await?;
        let quote = session.expect("S").await?;
        let quoted = Instant::now();
        let quote_id = quote.get(117).context("QuoteID")?.to_owned();
        let order = Builder::new("D")
            .field(11, request_id.clone())
            .field(55, symbol.clone())
            .field(54, side)
            .field(60, otcd_fix::timestamps::format(otcd_core_now()))
            .field(38, quantity.clone())
            .field(40, "D")
            .field(117, quote_id);
        session.send(order).await?;
        loop {
            let report = session.expect("8").await?;
            if report.get(11) == Some(request_id.as_str()) {
                if report.get(150) != Some("F") {
                    bail!("the trade was not filled: {report:?}");
                }
                break;
            }
        }
        let done = Instant::now();
        if sent >= warm_up_end {
            report.rfq_us.record((quoted - sent).as_micros().max(1) as u64)?;
            report.order_us.record((done - quoted).as_micros().max(1) as u64)?;
            report.pair_us.record((done - sent).as_micros().max(1) as u64)?;
            report.pairs += 1;
        }
    }
    session.send(Builder::new("5")).await?;
    Ok(report)
}

fn line(name: &str, histogram: &Histogram<u64>) {
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1_000.0;
    println!(
        "{name:>6}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        histogram.max() as f64 / 1_000.0
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = std::sync::Arc::new(Arguments::parse());
    let admin = Key::from_file(&arguments.admin_key_file)?;
    let (symbol, quantity) = arguments.trade.split_once(':').context("--trade BASE-QUOTE:QUANTITY")?;
    let (base, quote) = symbol.split_once('-').context("an instrument BASE-QUOTE")?;
    let mut keys = Vec::with_capacity(arguments.sessions);
    for _ in 0..arguments.sessions {
        keys.push(otcd_loadgen::trade::funded_client_keys(arguments.address, &admin, &[base, quote], 1).await?);
    }
    let start = Instant::now() + Duration::from_millis(200);
    let mut workers = Vec::new();
    for (index, mut key) in keys.into_iter().enumerate() {
        let arguments = arguments.clone();
        let (symbol, quantity) = (symbol.to_owned(), quantity.to_owned());
        let key = key.pop().context("a key")?;
        workers.push(tokio::spawn(async move { run_session(&arguments, key, symbol, quantity, index, start).await }));
    }
    let mut report = Report::new()?;
    for worker in workers {
        report.merge(worker.await??)?;
    }
    println!(
        "FIX RFQ-then-trade, {} sessions, {}: {} pairs in {} s = {:.0} pairs/s",
        arguments.sessions,
        if arguments.pairs_per_second == 0 {
            "closed loop".to_owned()
        } else {
            format!("{}/s asked", arguments.pairs_per_second)
        },
        report.pairs,
        arguments.duration_seconds,
        report.pairs as f64 / arguments.duration_seconds as f64
    );
    line("R->S", &report.rfq_us);
    line("D->8", &report.order_us);
    line("pair", &report.pair_us);
    Ok(())
}
