//! The engine's worst single command over a long run: RFQ then accept, `TRADES` times, on the bare engine (no
//! journal, no threads), timing every command. Throughput benchmarks average stalls away; a desk's p99 latency
//! is made of them. Growing histories used to double (copy everything, fault in twice the memory) all at once, a
//! stall of every command that grew with the desk's age. Prints percentiles and the slowest commands with the
//! trade they belonged to, so a stall that recurs at powers of two is easy to see.
//!
//! `cargo bench -p otcd-core --bench engine_stalls` (`OTCD_STALL_TRADES` to change the length of the run).

use otcd_core::engine::orders::AcceptQuote;
use otcd_core::engine::{Command, Desk, Outcome, QuoteRequest};
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use otcd_core::model::RequestedSize;
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::{deep_book, funded_client, initialized_desk, record, reference};
use std::time::{Duration, Instant};

const TRADES_DEFAULT: u64 = 400_000;
const CLIENTS: u64 = 16;
const SLOWEST_SHOWN: usize = 8;

struct Bench {
    desk: Desk,
    at: i64,
}

impl Bench {
    fn timed(&mut self, command: Command) -> (Outcome, Duration) {
        self.at += 1;
        let record = record(self.at, command);
        let started = Instant::now();
        let executed = self.desk.execute(&record).expect("the bench's commands are valid");
        (executed.outcome, started.elapsed())
    }
}

fn client_id(index: u64) -> ClientId {
    ClientId::parse(&format!("cl_{:08}", index % CLIENTS + 1)).unwrap()
}

/// `CLIENTS` prefunded clients (`client_id(0..CLIENTS)`) holding ample USD and BTC.
fn set_up() -> Bench {
    let mut bench = Bench { desk: initialized_desk(), at: 1_000_000 };
    for index in 0..CLIENTS {
        let created = funded_client(&mut bench.desk, bench.at, &format!("Client {index}"));
        assert_eq!(created, client_id(index));
    }
    bench
}

/// One trade: an RFQ for 0.01 BTC (alternately bought and sold) and its acceptance; both commands' durations.
fn trade(bench: &mut Bench, index: u64) -> [Duration; 2] {
    let request = Command::RequestQuote(QuoteRequest {
        client_id: client_id(index),
        client_rfq_id: None,
        instrument: "BTC-USD".into(),
        side: if index.is_multiple_of(2) { Side::Buy } else { Side::Sell },
        size: RequestedSize::Base(1_000_000),
        validity_ms: 5_000,
        notional_usd: None,
        books: vec![deep_book(TimestampMs(bench.at))],
        cross: None,
    });
    let (Outcome::Quote(quote), quote_took) = bench.timed(request) else { panic!("a quote") };
    let accept = Command::AcceptQuote(AcceptQuote {
        client_id: client_id(index),
        client_order_id: reference(&format!("t-{index}")),
        quote_id: quote.quote_id,
        side: None,
        notional_usd: None,
    });
    let (_, accept_took) = bench.timed(accept);
    [quote_took, accept_took]
}

fn main() {
    // `cargo bench` passes `--bench`; a plain run of this harness-less binary (`cargo test --benches`) stays short.
    let benchmarking = std::env::args().any(|argument| argument == "--bench");
    let trades = std::env::var("OTCD_STALL_TRADES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if benchmarking { TRADES_DEFAULT } else { 2_000 });
    let mut bench = set_up();
    let mut durations: Vec<(Duration, u64)> = Vec::with_capacity(2 * trades as usize);
    let started = Instant::now();
    for index in 0..trades {
        for took in trade(&mut bench, index) {
            durations.push((took, index));
        }
    }
    let elapsed = started.elapsed();
    report(trades, elapsed, durations);
    // What the runner does on the engine thread before handing a snapshot to its writer.
    let cloning = Instant::now();
    let copy = bench.desk.clone();
    println!("cloning the desk (as a snapshot does): {:.2?}", cloning.elapsed());
    drop(copy);
}

fn report(trades: u64, elapsed: Duration, mut durations: Vec<(Duration, u64)>) {
    let mut sorted: Vec<Duration> = durations.iter().map(|(took, _)| *took).collect();
    sorted.sort_unstable();
    let at = |quantile: f64| sorted[((sorted.len() - 1) as f64 * quantile) as usize];
    println!(
        "{trades} trades ({} commands) in {:.2?}: {:.0} trades/s; per command p50 {:.2?}, p99 {:.2?}, p99.9 {:.2?}, p99.99 {:.2?}, max {:.2?}",
        sorted.len(),
        elapsed,
        trades as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(0.999),
        at(0.9999),
        sorted[sorted.len() - 1]
    );
    durations.sort_unstable_by(|left, right| right.cmp(left));
    let slowest: Vec<String> =
        durations.iter().take(SLOWEST_SHOWN).map(|(took, index)| format!("{took:.2?} at trade {index}")).collect();
    println!("slowest: {}", slowest.join(", "));
}
