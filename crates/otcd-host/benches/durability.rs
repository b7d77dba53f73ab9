//! Durable command throughput through the runner (engine thread + journal group commit, real fsync): deposits,
//! and trades (a firm RFQ quote, then its acceptance: two durable commands per trade, the second settling both
//! legs on the ledger); and recovery time of a journal of 1,000,000 events.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::{fixtures, Actor, Command, Desk, JournalRecord, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;
use otcd_host::events::{EventFilter, EventHub};
use otcd_host::metrics::Metrics;
use otcd_host::runner::{EngineHandle, Runner, RunnerConfig};
use otcd_host::store;
use otcd_journal::{FileJournal, Journal, JournalOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `otcd` binary runs with, so that these figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 100;

fn setup_commands() -> Vec<Command> {
    let mut commands = vec![fixtures::initialize_desk()];
    for index in 0..CLIENTS {
        commands.push(Command::CreateClient(fixtures::approved_client(
            &format!("Client {index}"),
            Settlement::Prefunded,
            None,
        )));
    }
    commands
}

fn deposit(index: u64) -> Command {
    Command::Deposit(NewDeposit {
        client_id: ClientId::parse(&format!("cl_{:08}", index % CLIENTS as u64 + 1)).unwrap(),
        asset: AssetCode::parse("USD").unwrap(),
        amount: i128::from(index % 1_000 + 1),
        reference: ClientReference::parse(&format!("bench-{index}")).unwrap(),
        notional_usd: None,
    })
}

/// Submits `count` deposits from `concurrency` tasks on a fresh desk; returns the wall time. `signed`: the
/// checkpoint thread signs the head as the server does (every 1,000 records or 100 ms: line, mark and witness,
/// each fsynced), so the figure shows what the checkpoints cost the durable path.
fn durable_deposits(count: u64, concurrency: u64, signed: bool) -> Duration {
    let desk = if signed { TradingDesk::start_signed() } else { TradingDesk::start(Feed::None) };
    let elapsed = desk.runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for task in 0..concurrency {
            let engine = desk.engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut index = task;
                while index < count {
                    engine.submit(Actor::default(), deposit(index)).await.unwrap();
                    index += concurrency;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        started.elapsed()
    });
    desk.stop();
    elapsed
}

/// A desk of `CLIENTS` funded clients behind a running runner, on a fresh data directory.
struct TradingDesk {
    _directory: tempfile::TempDir,
    runner: Runner,
    engine: EngineHandle,
    runtime: tokio::runtime::Runtime,
    /// A desk-wide event subscriber that drains the feed, when the benchmark measures events too.
    _events: Option<tokio::task::JoinHandle<()>>,
}

impl TradingDesk {
    /// `Feed::Subscriber`: a subscriber takes every event, so every record's events are derived and published
    /// (as on a desk with stream clients or webhooks); `Feed::Ring`: no subscriber, but the feed keeps the resume
    /// ring (the server's default), so every record's events are derived and retained; `Feed::None`: the feed
    /// has no subscriber and costs nothing.
    fn start(feed: Feed) -> Self {
        Self::start_with(feed, false)
    }

    /// No event feed; checkpoints signed as the server's defaults ask, with a witness file beside the desk.
    fn start_signed() -> Self {
        Self::start_with(Feed::None, true)
    }

    fn start_with(feed: Feed, signed: bool) -> Self {
        let with_events = feed == Feed::Subscriber;
        let directory = tempfile::tempdir().unwrap();
        let checks = store::StartChecks {
            witness: signed.then(|| directory.path().join("witness.jsonl")),
            ..store::StartChecks::default()
        };
        let data_dir = directory.path().join("desk");
        let opened = store::open_checked(&data_dir, &otcd_host::clock::SystemClock, &checks).unwrap();
        let hub = match feed {
            Feed::Ring => EventHub::with_retention(None, otcd_host::events::Retention::DEFAULT),
            Feed::None | Feed::Subscriber => EventHub::new(None),
        };
        let checkpoints = signed.then(|| otcd_host::runner::CheckpointSettings {
            log: opened.checkpoints,
            every_records: otcd_host::runner::CHECKPOINT_EVERY_RECORDS_DEFAULT,
            every: otcd_host::runner::CHECKPOINT_EVERY_DEFAULT,
        });
        let config = RunnerConfig { events: Some(hub.clone()), checkpoints, ..RunnerConfig::default() };
        let runner =
            Runner::start(opened.desk, Box::new(opened.journal), opened.snapshots, config, Arc::new(Metrics::new()));
        let engine = runner.handle();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async {
            for command in setup_commands() {
                engine.submit(Actor::default(), command).await.unwrap();
            }
            for client in 0..CLIENTS {
                engine.submit(Actor::default(), Command::Deposit(funding(client))).await.unwrap();
            }
        });
        let events = with_events.then(|| {
            let mut subscription = hub.subscribe(EventFilter::All, 1 << 20).unwrap();
            runtime.spawn(async move { while subscription.recv().await.is_ok() {} })
        });
        Self { _directory: directory, runner, engine, runtime, _events: events }
    }

    fn stop(self) {
        drop(self.engine);
        self.runner.shutdown();
    }
}

fn funding(client: usize) -> NewDeposit {
    NewDeposit {
        client_id: client_id(client as u64),
        asset: AssetCode::parse("USD").unwrap(),
        amount: 1_000_000_000_000,
        reference: ClientReference::parse("bench-funding").unwrap(),
        notional_usd: None,
    }
}

fn client_id(index: u64) -> ClientId {
    ClientId::parse(&format!("cl_{:08}", index % CLIENTS as u64 + 1)).unwrap()
}

/// Trade `index`'s RFQ (see [`common::quote_request`]).
fn quote_request(index: u64, book: &otcd_core::market::VenueBook) -> Command {
    common::quote_request(client_id(index), book)
}

fn accept(index: u64, quote_id: String) -> Command {
    common::accept(client_id(index), index, quote_id)
}

/// Submits trade `index`'s RFQ and returns the quote's id.
async fn request_quote(engine: &EngineHandle, index: u64, book: &otcd_core::market::VenueBook) -> String {
    let executed = engine.submit(Actor::default(), quote_request(index, book)).await.unwrap();
    let Outcome::Quote(quote) = executed.outcome else { panic!("a quote") };
    quote.quote_id
}

/// Runs `work(index)` for every index below `count` on `concurrency` tasks; returns the wall time.
fn in_parallel<F, Work>(desk: &TradingDesk, count: u64, concurrency: u64, work: Work) -> Duration
where
    Work: Fn(EngineHandle, u64) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send,
{
    desk.runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for task in 0..concurrency {
            let (engine, work) = (desk.engine.clone(), work.clone());
            tasks.push(tokio::spawn(async move {
                let mut index = task;
                while index < count {
                    work(engine.clone(), index).await;
                    index += concurrency;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        started.elapsed()
    })
}

/// `count` trades from `concurrency` tasks, each an RFQ quote then its acceptance; returns the wall time.
fn durable_trades(count: u64, concurrency: u64) -> Duration {
    let desk = TradingDesk::start(Feed::None);
    let book = common::btc_usd_book();
    let elapsed = in_parallel(&desk, count, concurrency, move |engine, index| {
        let book = book.clone();
        async move {
            let quote_id = request_quote(&engine, index, &book).await;
            engine.submit(Actor::default(), accept(index, quote_id)).await.unwrap();
        }
    });
    desk.stop();
    elapsed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    None,
    Subscriber,
    Ring,
}

/// Quote acceptance alone: `count` quotes are issued first (not timed), then only their acceptances are timed,
/// from `concurrency` tasks; returns the wall time of the acceptances.
fn durable_accepts(count: u64, concurrency: u64, feed: Feed) -> Duration {
    let desk = TradingDesk::start(feed);
    let book = common::btc_usd_book();
    let quote_ids: Arc<parking_lot::Mutex<Vec<Option<String>>>> =
        Arc::new(parking_lot::Mutex::new(vec![None; count as usize]));
    let issued = quote_ids.clone();
    in_parallel(&desk, count, concurrency, move |engine, index| {
        let (book, issued) = (book.clone(), issued.clone());
        async move {
            let quote_id = request_quote(&engine, index, &book).await;
            issued.lock()[index as usize] = Some(quote_id);
        }
    });
    let quote_ids: Arc<Vec<String>> =
        Arc::new(quote_ids.lock().iter_mut().map(|quote_id| quote_id.take().unwrap()).collect());
    let elapsed = in_parallel(&desk, count, concurrency, move |engine, index| {
        let quote_id = quote_ids[index as usize].clone();
        async move {
            engine.submit(Actor::default(), accept(index, quote_id)).await.unwrap();
        }
    });
    desk.stop();
    elapsed
}

/// Writes a journal of `count` records (setup plus deposits) the way the runner does, without a snapshot.
fn write_journal(directory: &std::path::Path, count: u64) {
    let (mut journal, _) =
        FileJournal::open(&store::journal_dir(directory), JournalOptions::default(), 0, None, |_, _| Ok(())).unwrap();
    let mut desk = Desk::new();
    let setup = setup_commands();
    let setup_count = setup.len() as u64;
    let commands = setup.into_iter().chain((0..count - setup_count).map(deposit));
    for (index, command) in commands.enumerate() {
        let record =
            JournalRecord { at: TimestampMs(1_700_000_000_000 + index as i64), actor: Actor::default(), command };
        desk.execute(&record).unwrap();
        journal.append(&serde_json::to_vec(&record).unwrap()).unwrap();
        if index % 10_000 == 0 {
            journal.sync().unwrap();
        }
    }
    journal.sync().unwrap();
}

fn benchmarks(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("durable_commands");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    const DEPOSITS: u64 = 100_000;
    group.throughput(Throughput::Elements(DEPOSITS));
    for concurrency in [256, 2_048] {
        group.bench_function(format!("deposits_{concurrency}_in_flight"), |bencher| {
            bencher
                .iter_custom(|iterations| (0..iterations).map(|_| durable_deposits(DEPOSITS, concurrency, false)).sum())
        });
    }
    group.bench_function("deposits_256_in_flight_signed_with_witness", |bencher| {
        bencher.iter_custom(|iterations| (0..iterations).map(|_| durable_deposits(DEPOSITS, 256, true)).sum())
    });
    group.finish();

    let mut group = criterion.benchmark_group("durable_trades");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    const TRADES: u64 = 50_000;
    group.throughput(Throughput::Elements(TRADES));
    for concurrency in [256, 2_048] {
        group.bench_function(format!("rfq_and_accept_{concurrency}_in_flight"), |bencher| {
            bencher.iter_custom(|iterations| (0..iterations).map(|_| durable_trades(TRADES, concurrency)).sum())
        });
    }
    for concurrency in [256, 2_048] {
        group.bench_function(format!("accept_only_{concurrency}_in_flight"), |bencher| {
            bencher.iter_custom(|iterations| {
                (0..iterations).map(|_| durable_accepts(TRADES, concurrency, Feed::None)).sum()
            })
        });
    }
    // The same with a desk-wide event subscriber: every trade's order, trade and balance events are derived on
    // the engine thread and published after the sync.
    group.bench_function("accept_only_256_in_flight_with_events", |bencher| {
        bencher.iter_custom(|iterations| (0..iterations).map(|_| durable_accepts(TRADES, 256, Feed::Subscriber)).sum())
    });
    // No subscriber, but the stream's resume ring (the server's default): every record's events are derived and
    // kept in the bounded ring.
    group.bench_function("accept_only_256_in_flight_with_resume_ring", |bencher| {
        bencher.iter_custom(|iterations| (0..iterations).map(|_| durable_accepts(TRADES, 256, Feed::Ring)).sum())
    });
    group.finish();

    let mut group = criterion.benchmark_group("recovery");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    const EVENTS: u64 = 1_000_000;
    group.throughput(Throughput::Elements(EVENTS));
    let directory = tempfile::tempdir().unwrap();
    let mut written = false;
    group.bench_function("open_1m_events_no_snapshot", |bencher| {
        // Written only when this benchmark runs (not when a filter selects others): it takes a while.
        if !std::mem::replace(&mut written, true) {
            write_journal(directory.path(), EVENTS);
        }
        bencher.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| {
                    let started = Instant::now();
                    let opened = store::open(directory.path(), &otcd_host::clock::SystemClock).unwrap();
                    assert_eq!(opened.recovery.head_seq, EVENTS);
                    started.elapsed()
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
