//! `otcd-loadgen`: drives a running desk with signed requests and reports throughput and latency percentiles.
//!
//! Each connection gets its own client key (created through the admin API at start), because a signature may
//! be used once: one key sending more than one identical request per millisecond would be refused as a replay.
//! Requests on a connection are sequential (keep-alive, no pipelining); the load is the number of connections.

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use otcd_loadgen::{build_request, connect, create_client_keys, now_ms, Key};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Signed-request load generator for otcd")]
struct Arguments {
    /// The desk's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    address: SocketAddr,
    /// The desk's admin-key.json (used to create one client key per connection).
    #[arg(long)]
    admin_key_file: PathBuf,
    /// Where the keys and clients are created, when not at `--address`: the leader of a replicated desk, for reads
    /// sent to a standby that serves stale reads (docs/operations.md).
    #[arg(long)]
    setup_address: Option<SocketAddr>,
    /// Path to request, e.g. /v1/balances. `unsigned:` prefix sends it without a signature (e.g. /v1/assets).
    #[arg(long, default_value = "/v1/balances")]
    path: String,
    /// Send `POST /v1/rfq` for this instrument and quantity instead of GETs, e.g. `BTC-USD:0.5`.
    #[arg(long)]
    rfq: Option<String>,
    /// Send durable `POST /v1/admin/deposits` instead (1 USD each, a fresh reference per request, to one client
    /// created at start), signed with the admin key on every connection.
    #[arg(long)]
    deposits: bool,
    /// With `--deposits`: deposits per request. 1 sends `POST /v1/admin/deposits`; more send
    /// `POST /v1/admin/deposits/batch` with this many (at most 1,000), and only items answered 201 count.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    batch: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Keys each connection rotates through. A signature is single use and timestamps are milliseconds, so one
    /// key can send at most 1,000 identical requests a second; rotating keeps every key under that.
    #[arg(long, default_value_t = 8)]
    keys_per_connection: usize,
    /// How long to measure, after a one-second warm-up.
    #[arg(long, default_value_t = 10)]
    duration_seconds: u64,
    /// Also read this admin path (e.g. `/v1/admin/reports/volume`) back to back on one more connection with the
    /// admin key, during the same window, and print its own line (reports read concurrently with the load).
    #[arg(long)]
    admin_reader_path: Option<String>,
    /// Trade instead: a signed `POST /v1/rfq` then `POST /v1/orders` (type `quote`) per trade, alternating buy
    /// and sell, e.g. `BTC-USD:0.01`. Open loop at `--trades-per-second`, one funded client per connection.
    #[arg(long)]
    trade: Option<String>,
    /// The fixed rate of `--trade` (trades are due at this rate whether or not earlier ones finished).
    #[arg(long, default_value_t = 2_000)]
    trades_per_second: u64,
}

/// How long to wait for a standby to know the keys made at `--setup-address`.
const STANDBY_KEYS_WAIT: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let admin = Key::from_file(&arguments.admin_key_file)?;
    if let Some(spec) = &arguments.trade {
        return run_trades(&arguments, &admin, spec).await;
    }
    let setup_address = arguments.setup_address.unwrap_or(arguments.address);
    let keys = if arguments.deposits {
        vec![admin.clone(); arguments.connections * arguments.keys_per_connection]
    } else {
        create_client_keys(setup_address, &admin, arguments.connections * arguments.keys_per_connection).await?
    };
    let deposit_client = match arguments.deposits {
        true => Some(otcd_loadgen::create_deposit_client(setup_address, &admin).await?),
        false => None,
    };
    if setup_address != arguments.address {
        // A standby knows a key the leader made about a quarter of a second after it copied its record.
        tokio::time::sleep(STANDBY_KEYS_WAIT).await;
    }
    let warm_up_until = Instant::now() + Duration::from_secs(1);
    let stop_at = warm_up_until + Duration::from_secs(arguments.duration_seconds);
    let mut workers = Vec::new();
    for (connection, key_set) in keys.chunks(arguments.keys_per_connection).enumerate() {
        let key_set = key_set.to_vec();
        let request = match (&arguments.rfq, &deposit_client) {
            (_, Some(client_id)) => Planned {
                method: "POST",
                path: deposits_path(arguments.batch).into(),
                body: String::new(),
                deposit: Some(DepositPlan {
                    client_id: client_id.clone(),
                    connection,
                    run: now_ms(),
                    batch: arguments.batch,
                }),
            },
            (Some(spec), None) => {
                let (instrument, quantity) = spec.split_once(':').context("--rfq INSTRUMENT:QUANTITY")?;
                let body = format!(r#"{{"instrument":"{instrument}","side":"buy","quantity":"{quantity}"}}"#);
                Planned { method: "POST", path: "/v1/rfq".into(), body, deposit: None }
            }
            (None, None) => Planned { method: "GET", path: arguments.path.clone(), body: String::new(), deposit: None },
        };
        workers.push(tokio::spawn(run_connection(arguments.address, key_set, request, warm_up_until, stop_at)));
    }
    let reader = arguments.admin_reader_path.clone().map(|path| {
        let planned = Planned { method: "GET", path, body: String::new(), deposit: None };
        tokio::spawn(run_connection(arguments.address, vec![admin.clone()], planned, warm_up_until, stop_at))
    });
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut errors, mut requests, mut items) = (0u64, 0u64, 0u64);
    for worker in workers {
        let report = worker.await??;
        latencies.add(&report.latencies_us)?;
        errors += report.errors;
        requests += report.latencies_us.len();
        items += report.items;
    }
    let seconds = arguments.duration_seconds as f64;
    println!(
        "{{\"path\": \"{}\", \"connections\": {}, \"seconds\": {}, \"requests\": {}, \"errors\": {}, \"requests_per_second\": {:.0}, \"items_per_request\": {}, \"items_per_second\": {:.0}, \"p50_us\": {}, \"p90_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"max_us\": {}}}",
        match (&arguments.rfq, arguments.deposits) {
            (_, true) => deposits_path(arguments.batch),
            (Some(_), false) => "/v1/rfq",
            (None, false) => arguments.path.as_str(),
        },
        arguments.connections,
        arguments.duration_seconds,
        requests,
        errors,
        requests as f64 / seconds,
        if arguments.deposits { arguments.batch } else { 1 },
        items as f64 / seconds,
        latencies.value_at_quantile(0.50),
        latencies.value_at_quantile(0.90),
        latencies.value_at_quantile(0.99),
        latencies.value_at_quantile(0.999),
        latencies.max(),
    );
    if let (Some(reader), Some(path)) = (reader, &arguments.admin_reader_path) {
        let report = reader.await??;
        println!(
            "{{\"admin_reader_path\": \"{path}\", \"requests\": {}, \"errors\": {}, \"p50_us\": {}, \"p99_us\": {}}}",
            report.latencies_us.len(),
            report.errors,
            report.latencies_us.value_at_quantile(0.50),
            report.latencies_us.value_at_quantile(0.99),
        );
    }
    Ok(())
}

async fn run_trades(arguments: &Arguments, admin: &Key, spec: &str) -> anyhow::Result<()> {
    let (instrument, quantity) = spec.split_once(':').context("--trade INSTRUMENT:QUANTITY")?;
    let plan = otcd_loadgen::trade::TradePlan {
        instrument: instrument.to_owned(),
        quantity: quantity.to_owned(),
        trades_per_second: arguments.trades_per_second,
        connections: arguments.connections,
        keys_per_connection: arguments.keys_per_connection,
        warm_up: Duration::from_secs(1),
        duration: Duration::from_secs(arguments.duration_seconds),
    };
    let report = otcd_loadgen::trade::run(arguments.address, admin, plan).await?;
    if let Some(error) = &report.first_error {
        eprintln!("first error: {error}");
    }
    let percentiles = |histogram: &Histogram<u64>| {
        serde_json::json!({
            "count": histogram.len(),
            "p50_us": histogram.value_at_quantile(0.50),
            "p90_us": histogram.value_at_quantile(0.90),
            "p99_us": histogram.value_at_quantile(0.99),
            "max_us": histogram.max(),
        })
    };
    let summary = serde_json::json!({
        "mode": "rfq_then_accept",
        "instrument": instrument,
        "quantity": quantity,
        "connections": arguments.connections,
        "seconds": arguments.duration_seconds,
        "target_trades_per_second": arguments.trades_per_second,
        "achieved_trades_per_second": report.trade_us.len() as f64 / arguments.duration_seconds as f64,
        "rfq_errors": report.rfq_errors,
        "accept_errors": report.accept_errors,
        "unfinished": report.unfinished,
        "trade": percentiles(&report.trade_us),
        "trade_from_due": percentiles(&report.trade_from_due_us),
        "rfq": percentiles(&report.rfq_us),
        "accept": percentiles(&report.accept_us),
        "slowest": report.slowest.iter().map(|slow| serde_json::json!({"trade_us": slow.trade_us, "started_at_ms": slow.started_at_ms})).collect::<Vec<_>>(),
    });
    println!("{summary}");
    Ok(())
}

struct ConnectionReport {
    latencies_us: Histogram<u64>,
    errors: u64,
    /// What the successful requests did: one each, or a deposit batch's items answered 201.
    items: u64,
}

fn deposits_path(batch: u64) -> &'static str {
    match batch {
        1 => "/v1/admin/deposits",
        _ => "/v1/admin/deposits/batch",
    }
}

/// Items of a deposit batch's answer that were credited. The answer is compact JSON and a deposit's own
/// `status` is a string, so each credited item's result holds exactly one `"status":201`.
fn credited_items(body: &[u8]) -> u64 {
    const CREDITED: &[u8] = br#""status":201"#;
    body.windows(CREDITED.len()).filter(|window| *window == CREDITED).count() as u64
}

/// One kind of request a connection repeats.
#[derive(Clone)]
struct Planned {
    method: &'static str,
    path: String,
    body: String,
    /// Deposits: the body is made per request (a reference may be used once).
    deposit: Option<DepositPlan>,
}

#[derive(Clone)]
struct DepositPlan {
    client_id: String,
    connection: usize,
    /// Distinguishes the references of two runs against the same desk.
    run: u128,
    /// Deposits per request (1: the single endpoint).
    batch: u64,
}

impl DepositPlan {
    fn body(&self, index: u64) -> String {
        let DepositPlan { client_id, connection, run, batch } = self;
        let item = |reference: String| {
            format!(r#"{{"client_id":"{client_id}","asset":"USD","amount":"1","reference":"{reference}"}}"#)
        };
        if *batch == 1 {
            return item(format!("lg-{run}-{connection}-{index}"));
        }
        let items: Vec<String> = (0..*batch).map(|k| item(format!("lg-{run}-{connection}-{index}-{k}"))).collect();
        format!(r#"{{"deposits":[{}]}}"#, items.join(","))
    }
}

async fn run_connection(
    address: SocketAddr,
    keys: Vec<Key>,
    planned: Planned,
    warm_up_until: Instant,
    stop_at: Instant,
) -> anyhow::Result<ConnectionReport> {
    let mut sender = connect(address).await?;
    let mut latencies_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    let mut items = 0;
    let mut last_timestamps = vec![0u128; keys.len()];
    let mut turn = 0usize;
    let mut sent = 0u64;
    let (signed, path) = match planned.path.strip_prefix("unsigned:") {
        Some(path) => (false, path.to_owned()),
        None => (true, planned.path.clone()),
    };
    while Instant::now() < stop_at {
        // A fresh timestamp per request and key keeps every signature unique.
        turn = (turn + 1) % keys.len();
        let timestamp = now_ms().max(last_timestamps[turn] + 1);
        last_timestamps[turn] = timestamp;
        sent += 1;
        let body = match &planned.deposit {
            Some(deposit) => std::borrow::Cow::Owned(deposit.body(sent)),
            None => std::borrow::Cow::Borrowed(planned.body.as_str()),
        };
        let request = build_request(&keys[turn], planned.method, &path, &body, timestamp, signed)?;
        let started = Instant::now();
        let response = sender.send_request(request).await?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        let elapsed_us = started.elapsed().as_micros() as u64;
        if started >= warm_up_until {
            if status.is_success() {
                latencies_us.record(elapsed_us.max(1))?;
                let batch = planned.deposit.as_ref().map_or(1, |deposit| deposit.batch);
                let credited = if batch == 1 { 1 } else { credited_items(&answer) };
                items += credited;
                if credited < batch {
                    errors += 1;
                    eprintln!("a batch of {batch} credited {credited}");
                }
            } else {
                errors += 1;
                if errors == 1 {
                    eprintln!("first error: {status}");
                }
            }
        }
    }
    Ok(ConnectionReport { latencies_us, errors, items })
}
