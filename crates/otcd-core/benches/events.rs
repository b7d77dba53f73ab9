//! What deriving domain events costs on the engine thread: `Desk::execute` against deriving the client-visible
//! events (what the server does without an event stream) and every event (with the event stream's ledger
//! transactions), for the two most frequent changing commands, a quote acceptance and a deposit.
//!
//! Each measured batch runs on a fresh clone of a prepared desk (one prefunded client with ample USD and BTC) and
//! prepares its records outside the measurement: for acceptances, one RFQ per acceptance (alternately buy and
//! sell, 0.01 BTC) is executed before the clock starts. Deposits are a day apart, so the structuring rule looks at
//! one deposit, not at the whole batch. The time measured includes dropping each result (and its events).
//!
//! After criterion's figures, the three variants are measured again in interleaved batches (see `paired`).
//!
//! `cargo bench -p otcd-core --bench events`.

use criterion::{criterion_group, Criterion};
use otcd_core::engine::orders::AcceptQuote;
use otcd_core::engine::{Command, Desk, EventScope, JournalRecord, NewDeposit, Outcome, QuoteRequest};
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use otcd_core::model::RequestedSize;
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::{code, deep_book, funded_client, initialized_desk, record, reference};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Commands per fresh desk: the histories stay small, so both variants measure the command, not growth.
const BATCH: u64 = 1_000;
const START: i64 = 1_000_000;
const DAY_MS: i64 = 86_400_000;

fn run(desk: &mut Desk, at: i64, command: Command) -> Outcome {
    desk.execute(&record(at, command)).expect("the bench's commands are valid").outcome
}

/// A desk with one prefunded client holding ample USD and BTC.
fn prepared_desk() -> (Desk, ClientId) {
    let mut desk = initialized_desk();
    let client_id = funded_client(&mut desk, START, "Bench Capital");
    (desk, client_id)
}

/// Requests `count` quotes on `desk` (not measured) and returns the records that accept them.
fn acceptances(desk: &mut Desk, client_id: &ClientId, count: u64) -> Vec<JournalRecord> {
    (0..count)
        .map(|index| {
            let at = START + 1 + index as i64;
            let request = QuoteRequest {
                client_id: client_id.clone(),
                client_rfq_id: None,
                instrument: "BTC-USD".into(),
                side: if index % 2 == 0 { Side::Buy } else { Side::Sell },
                size: RequestedSize::Base(1_000_000),
                validity_ms: 60_000,
                notional_usd: None,
                books: vec![deep_book(TimestampMs(at))],
                cross: None,
            };
            let Outcome::Quote(quote) = run(desk, at, Command::RequestQuote(request)) else { panic!("a quote") };
            let accept = AcceptQuote {
                client_id: client_id.clone(),
                client_order_id: reference(&format!("order-{index}")),
                quote_id: quote.quote_id,
                side: None,
                notional_usd: None,
            };
            record(at, Command::AcceptQuote(accept))
        })
        .collect()
}

/// `count` deposits of USD, a day apart (after every RFQ's time).
fn deposits(_: &mut Desk, client_id: &ClientId, count: u64) -> Vec<JournalRecord> {
    (0..count)
        .map(|index| {
            let deposit = NewDeposit {
                client_id: client_id.clone(),
                asset: code("USD"),
                amount: 100_000,
                reference: reference(&format!("wire-{index}")),
                notional_usd: Some(1_000),
            };
            record(START + (1 + index as i64) * DAY_MS, Command::Deposit(deposit))
        })
        .collect()
}

type Prepare = fn(&mut Desk, &ClientId, u64) -> Vec<JournalRecord>;

/// Runs `iterations` commands in batches on fresh clones of the prepared desk; only the commands are timed.
fn measure(iterations: u64, prepare: Prepare, scope: Option<EventScope>) -> Duration {
    let (base, client_id) = prepared_desk();
    let mut measured = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let count = left.min(BATCH);
        measured += batch(&base, &client_id, prepare, scope, count);
        left -= count;
    }
    measured
}

/// `count` commands on a fresh clone of `base`: the time they took, preparation and the clone not included.
/// `scope`: the events derived (`None`: plain `execute`).
fn batch(base: &Desk, client_id: &ClientId, prepare: Prepare, scope: Option<EventScope>, count: u64) -> Duration {
    let mut desk = base.clone();
    let records = prepare(&mut desk, client_id, count);
    let started = Instant::now();
    for record in &records {
        match scope {
            Some(scope) => {
                black_box(desk.execute_with_events_in(record, scope).expect("accepted"));
            }
            None => {
                black_box(desk.execute(record).expect("accepted"));
            }
        }
    }
    started.elapsed()
}

/// The variants measured: plain `execute`, the client-visible events (what the server derives without an event
/// stream), and every event (with the event stream's ledger transactions).
const VARIANTS: [(&str, Option<EventScope>); 3] = [
    ("execute", None),
    ("execute_with_events_client_visible", Some(EventScope::CLIENT_VISIBLE)),
    ("execute_with_events", Some(EventScope::ALL)),
];

const COMMANDS: [(&str, Prepare); 2] = [("accept_quote", acceptances), ("deposit", deposits)];

fn events(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("events");
    group.measurement_time(Duration::from_secs(4));
    for (name, prepare) in COMMANDS {
        for (variant, scope) in VARIANTS {
            group.bench_function(format!("{name}/{variant}"), |bencher| {
                bencher.iter_custom(|iterations| measure(iterations, prepare, scope))
            });
        }
    }
    group.finish();
}

/// Batches interleaved, each variant first in every other round. Criterion measures one variant after the
/// other, seconds apart; on a machine shared with other builds the load changes in between, so its two figures
/// can differ by more than the cost measured. Interleaved batches see the same load; the medians are printed.
fn paired(rounds: usize) {
    for (name, prepare) in COMMANDS {
        let (base, client_id) = prepared_desk();
        let mut nanos: [Vec<i128>; 3] = Default::default();
        for round in 0..rounds {
            // Each variant first in turn, so none always runs on the warmest caches.
            for offset in 0..VARIANTS.len() {
                let variant = (round + offset) % VARIANTS.len();
                let took = batch(&base, &client_id, prepare, VARIANTS[variant].1, BATCH);
                nanos[variant].push((took.as_nanos() / u128::from(BATCH)) as i128);
            }
        }
        let extra = |variant: usize| {
            let differences = nanos[variant].iter().zip(&nanos[0]).map(|(with, plain)| with - plain).collect();
            median(differences)
        };
        println!(
            "events/{name} paired, median of {rounds} interleaved batches of {BATCH}: execute {} ns, \
             client-visible events {} ns (+{} ns), all events {} ns (+{} ns)",
            median(nanos[0].clone()),
            median(nanos[1].clone()),
            extra(1),
            median(nanos[2].clone()),
            extra(2)
        );
    }
}

fn median<T: Ord + Copy>(mut values: Vec<T>) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

criterion_group!(benches, events);

fn main() {
    benches();
    // `cargo bench` passes `--bench`; a plain run (`cargo test --benches`) stays short.
    let benchmarking = std::env::args().any(|argument| argument == "--bench");
    paired(if benchmarking { 300 } else { 2 });
    Criterion::default().configure_from_args().final_summary();
}
