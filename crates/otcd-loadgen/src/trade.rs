//! The RFQ-then-accept mode: trades at a fixed, open-loop rate, each a signed `POST /v1/rfq` followed by a
//! signed `POST /v1/orders` of type `quote` for the quote just received.
//!
//! Open loop: trade `n` is due at `start + n / rate` whatever happened to earlier trades, and its latency is
//! counted from when it was due, so a server that falls behind shows up as latency (no coordinated
//! omission). Trade `n` runs on connection `n mod connections`; each connection has its own client (funded
//! through the admin API) and rotates through its keys so that no key signs two requests in one millisecond.

use crate::{admin_call, build_request, connect, create_keys, now_ms, put_loadtest_tier, Key, Sender};
use anyhow::Context;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What one trading run does.
#[derive(Debug, Clone)]
pub struct TradePlan {
    pub instrument: String,
    /// Decimal text, e.g. `0.01`.
    pub quantity: String,
    pub trades_per_second: u64,
    pub connections: usize,
    pub keys_per_connection: usize,
    pub warm_up: Duration,
    pub duration: Duration,
}

/// Latencies in microseconds and error counts of a run.
pub struct TradeReport {
    /// From when the trade was due to the accept's response: includes the wait for a busy connection and the
    /// timer's lateness (tokio sleeps in whole milliseconds, so a trade starts up to ~1 ms after it is due).
    pub trade_from_due_us: Histogram<u64>,
    /// From sending the RFQ to the accept's response: what the desk takes for the pair.
    pub trade_us: Histogram<u64>,
    pub rfq_us: Histogram<u64>,
    pub accept_us: Histogram<u64>,
    pub rfq_errors: u64,
    pub accept_errors: u64,
    /// Trades due in the measured window that were not finished by its end plus one second.
    pub unfinished: u64,
    pub first_error: Option<String>,
    /// The slowest trades (by `trade_us`) with when they started, in milliseconds from the start of the
    /// measured window: tails that line up across connections point at a stall on the desk (or the machine).
    pub slowest: Vec<SlowTrade>,
}

/// How many of the slowest trades a report keeps.
pub const SLOWEST_KEPT: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlowTrade {
    pub trade_us: u64,
    pub started_at_ms: u64,
}

impl TradeReport {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            trade_from_due_us: histogram()?,
            trade_us: histogram()?,
            rfq_us: histogram()?,
            accept_us: histogram()?,
            rfq_errors: 0,
            accept_errors: 0,
            unfinished: 0,
            first_error: None,
            slowest: Vec::with_capacity(SLOWEST_KEPT + 1),
        })
    }

    fn merge(&mut self, other: TradeReport) -> anyhow::Result<()> {
        self.trade_from_due_us.add(&other.trade_from_due_us)?;
        self.trade_us.add(&other.trade_us)?;
        self.rfq_us.add(&other.rfq_us)?;
        self.accept_us.add(&other.accept_us)?;
        self.rfq_errors += other.rfq_errors;
        self.accept_errors += other.accept_errors;
        self.unfinished += other.unfinished;
        self.first_error = self.first_error.take().or(other.first_error);
        other.slowest.into_iter().for_each(|slow| self.keep_if_slow(slow));
        Ok(())
    }

    fn keep_if_slow(&mut self, trade: SlowTrade) {
        self.slowest.push(trade);
        self.slowest.sort_unstable_by(|left, right| right.cmp(left));
        self.slowest.truncate(SLOWEST_KEPT);
    }

    fn error(&mut self, text: String) {
        if self.first_error.is_none() {
            self.first_error = Some(text);
        }
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)
}

/// Sets up one funded client per connection, runs the trades and merges what every connection measured.
pub async fn run(address: SocketAddr, admin: &Key, plan: TradePlan) -> anyhow::Result<TradeReport> {
    let (base, _) = plan.instrument.split_once('-').context("an instrument BASE-QUOTE")?;
    let (_, quote) = plan.instrument.split_once('-').context("an instrument BASE-QUOTE")?;
    let mut key_sets = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        key_sets.push(funded_client_keys(address, admin, &[base, quote], plan.keys_per_connection).await?);
    }
    let start = Instant::now() + Duration::from_millis(200);
    let run_id = now_ms();
    let mut workers = Vec::new();
    for (connection, keys) in key_sets.into_iter().enumerate() {
        let schedule = Schedule { start, connection, plan: plan.clone(), run_id };
        workers.push(tokio::spawn(run_connection(address, keys, schedule)));
    }
    let mut report = TradeReport::new()?;
    for worker in workers {
        report.merge(worker.await??)?;
    }
    Ok(report)
}

/// A client of its own (so per-client state such as its trade history grows at 1/connections of the rate),
/// funded with plenty of both assets (trades alternate buy and sell), and its keys.
pub async fn funded_client_keys(
    address: SocketAddr,
    admin: &Key,
    assets: &[&str],
    keys: usize,
) -> anyhow::Result<Vec<Key>> {
    let mut sender = connect(address).await?;
    put_loadtest_tier(&mut sender, admin).await?;
    let body = r#"{"name":"Load Test Trader","jurisdiction":"DE","tier":"loadtest","kyc_status":"approved","settlement":"prefunded"}"#;
    let client = admin_call(&mut sender, admin, "POST", "/v1/admin/clients", body).await?;
    let client_id = client["client_id"].as_str().context("client_id")?.to_owned();
    for asset in assets {
        let amount = funding_amount(asset);
        let deposit = format!(
            r#"{{"client_id":"{client_id}","asset":"{asset}","amount":"{amount}","reference":"loadgen-{asset}-{}"}}"#,
            now_ms()
        );
        admin_call(&mut sender, admin, "POST", "/v1/admin/deposits", &deposit).await?;
    }
    create_keys(&mut sender, admin, &client_id, keys).await
}

/// Enough of an asset for hours of alternating trades of a few hundred dollars each.
fn funding_amount(asset: &str) -> &'static str {
    match asset {
        "BTC" => "10000",
        "ETH" => "100000",
        _ => "10000000000",
    }
}

struct Schedule {
    start: Instant,
    connection: usize,
    plan: TradePlan,
    run_id: u128,
}

impl Schedule {
    /// When trade `number` is due.
    fn due(&self, number: u64) -> Instant {
        let nanoseconds = u128::from(number) * 1_000_000_000 / u128::from(self.plan.trades_per_second.max(1));
        self.start + Duration::from_nanos(u64::try_from(nanoseconds).unwrap_or(u64::MAX))
    }

    fn measured_from(&self) -> Instant {
        self.start + self.plan.warm_up
    }

    fn stop_at(&self) -> Instant {
        self.measured_from() + self.plan.duration
    }
}

/// The signing keys of one connection, used in turn with strictly increasing timestamps per key.
struct KeyRing {
    keys: Vec<Key>,
    last_timestamps: Vec<u128>,
    turn: usize,
}

impl KeyRing {
    fn next(&mut self) -> (&Key, u128) {
        self.turn = (self.turn + 1) % self.keys.len();
        let timestamp = now_ms().max(self.last_timestamps[self.turn] + 1);
        self.last_timestamps[self.turn] = timestamp;
        (&self.keys[self.turn], timestamp)
    }
}

async fn run_connection(address: SocketAddr, keys: Vec<Key>, schedule: Schedule) -> anyhow::Result<TradeReport> {
    let mut sender = connect(address).await?;
    let mut ring = KeyRing { last_timestamps: vec![0; keys.len()], keys, turn: 0 };
    let mut report = TradeReport::new()?;
    let connections = schedule.plan.connections.max(1) as u64;
    let mut number = schedule.connection as u64;
    let give_up_at = schedule.stop_at() + Duration::from_secs(1);
    loop {
        let due = schedule.due(number);
        if due >= schedule.stop_at() {
            break;
        }
        let measured = due >= schedule.measured_from();
        if Instant::now() >= give_up_at {
            report.unfinished += u64::from(measured);
            number += connections;
            continue;
        }
        tokio::time::sleep_until(due.into()).await;
        let side = if (number / connections).is_multiple_of(2) { "buy" } else { "sell" };
        let outcome = trade(&mut sender, &mut ring, &schedule, number, side).await?;
        if measured {
            outcome.record(due, schedule.measured_from(), &mut report)?;
        }
        number += connections;
    }
    Ok(report)
}

/// What one trade did: each step's latency, or the error that stopped it.
struct TradeOutcome {
    rfq: Result<Duration, String>,
    accept: Option<Result<(Duration, Instant), String>>,
    started: Instant,
}

impl TradeOutcome {
    fn record(self, due: Instant, measured_from: Instant, report: &mut TradeReport) -> anyhow::Result<()> {
        match self.rfq {
            Ok(elapsed) => report.rfq_us.record(micros(elapsed))?,
            Err(text) => {
                report.rfq_errors += 1;
                report.error(text);
            }
        }
        match self.accept {
            Some(Ok((elapsed, finished))) => {
                report.accept_us.record(micros(elapsed))?;
                report.trade_from_due_us.record(micros(finished.saturating_duration_since(due)))?;
                let trade_us = micros(finished.saturating_duration_since(self.started));
                report.trade_us.record(trade_us)?;
                let started_at_ms = self.started.saturating_duration_since(measured_from).as_millis() as u64;
                report.keep_if_slow(SlowTrade { trade_us, started_at_ms });
            }
            Some(Err(text)) => {
                report.accept_errors += 1;
                report.error(text);
            }
            None => {}
        }
        Ok(())
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1)
}

async fn trade(
    sender: &mut Sender,
    ring: &mut KeyRing,
    schedule: &Schedule,
    number: u64,
    side: &str,
) -> anyhow::Result<TradeOutcome> {
    let plan = &schedule.plan;
    let body = format!(r#"{{"instrument":"{}","side":"{side}","quantity":"{}"}}"#, plan.instrument, plan.quantity);
    let started = Instant::now();
    let (status, answer) = signed_post(sender, ring, "/v1/rfq", &body).await?;
    let rfq_elapsed = started.elapsed();
    if status != 201 {
        return Ok(TradeOutcome { rfq: Err(format!("rfq: {status} {answer}")), accept: None, started });
    }
    let quote_id = serde_json::from_str::<serde_json::Value>(&answer)?["quote_id"]
        .as_str()
        .context("the quote has a quote_id")?
        .to_owned();
    let body =
        format!(r#"{{"client_order_id":"lg-{}-{number}","type":"quote","quote_id":"{quote_id}"}}"#, schedule.run_id);
    let accept_started = Instant::now();
    let (status, answer) = signed_post(sender, ring, "/v1/orders", &body).await?;
    let finished = Instant::now();
    let accept = if status == 201 {
        Ok((finished - accept_started, finished))
    } else {
        Err(format!("accept: {status} {answer}"))
    };
    Ok(TradeOutcome { rfq: Ok(rfq_elapsed), accept: Some(accept), started })
}

async fn signed_post(sender: &mut Sender, ring: &mut KeyRing, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let (key, timestamp) = ring.next();
    let request = build_request(key, "POST", path, body, timestamp, true)?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
