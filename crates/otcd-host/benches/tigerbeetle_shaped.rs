//! A benchmark shaped like TigerBeetle's own `benchmark` (issue #16), through the runner as the server runs it:
//! 10,000 client accounts; deposits (each one balanced ledger transaction) submitted in batches of 8,189 as a
//! client library would (the whole batch in flight, the next batch once every reply is back) and one at a time;
//! every reply only once its record is durable (journal group commit, fsync on the real disk). Reports
//! throughput, acknowledgement latency p50/p99/max, resident memory at the end, and the recovery time of the
//! resulting data directory (with the final snapshot, as a restart finds it, and from the journal alone). The
//! same for quote acceptances: each batch's quotes are issued first (not timed), then accepted as one batch.
//!
//! `cargo bench -p otcd-host --bench tigerbeetle_shaped -- deposits 1000000` (or `accepts`, `deposits_single
//! 20000`, `accepts_single 20000`). A batch goes as one request per command, all in flight at once (`deposits`,
//! `accepts`), or as one request for the whole batch (`deposits_many`, `accepts_many`: `EngineHandle::submit_many`,
//! as a client library's batch message). The data directory is created under `$OTCD_BENCH_DIR` (default: the system
//! temporary directory, which must be on the disk being measured), and deleted at the end unless `OTCD_BENCH_KEEP`
//! is set. Recovery is timed both ways, pipelined (`store::open_checked`) and sequential (the recovery before it);
//! `-- recover <data directory>` times only that, on an existing directory, and `-- recover_one <data directory>
//! <pipelined|sequential>` one recovery in its own process (`OTCD_BENCH_SKIP_RECOVERY` keeps the directory and
//! times none).

mod common;

use otcd_core::catalog::AssetCode;
use otcd_core::engine::{fixtures, Actor, Command, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::model::Settlement;
use otcd_host::metrics::Metrics;
use otcd_host::runner::{EngineHandle, Runner, RunnerConfig};
use otcd_host::store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `otcd` binary runs with, so that these figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: u64 = 10_000;
/// The `otcd` binary's default `engine_prefault_mib`.
const ENGINE_PREFAULT_MIB: usize = 512;
/// TigerBeetle's largest batch of transfers (8,190 minus one), used by its benchmark.
const BATCH: u64 = 8_189;

fn client_id(index: u64) -> ClientId {
    ClientId::parse(&format!("cl_{:08}", index % CLIENTS + 1)).unwrap()
}

fn deposit(index: u64, reference: &str, cents: i128) -> Command {
    Command::Deposit(NewDeposit {
        client_id: client_id(index),
        asset: AssetCode::parse("USD").unwrap(),
        amount: cents,
        reference: ClientReference::parse(reference).unwrap(),
        // A USD value, as the edge gives it, so the AML structuring rule evaluates every deposit.
        notional_usd: Some(cents),
    })
}

/// Trade `index`'s RFQ (see [`common::quote_request`]).
fn quote_request(index: u64, book: &otcd_core::market::VenueBook) -> Command {
    common::quote_request(client_id(index), book)
}

fn accept(index: u64, quote_id: String) -> Command {
    common::accept(client_id(index), index, quote_id)
}

struct Desk {
    directory: tempfile::TempDir,
    runner: Runner,
    engine: EngineHandle,
    runtime: tokio::runtime::Runtime,
}

impl Desk {
    /// A fresh data directory with `CLIENTS` prefunded clients (set up through the runner, not timed).
    fn start() -> Self {
        let parent = std::env::var_os("OTCD_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
        let directory = tempfile::tempdir_in(parent).unwrap();
        let opened = store::open(directory.path(), &otcd_host::clock::SystemClock).unwrap();
        // The server's default prefault (`ENGINE_PREFAULT_MIB_DEFAULT` in the binary), so the history's growth
        // does not page-fault inside commands here either.
        let config = RunnerConfig { engine_prefault_mib: ENGINE_PREFAULT_MIB, ..RunnerConfig::default() };
        let runner =
            Runner::start(opened.desk, Box::new(opened.journal), opened.snapshots, config, Arc::new(Metrics::new()));
        let engine = runner.handle();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let desk = Self { directory, runner, engine, runtime };
        desk.submit_all(vec![fixtures::initialize_desk()]);
        let clients = (0..CLIENTS).map(|index| {
            Command::CreateClient(fixtures::approved_client(&format!("Client {index}"), Settlement::Prefunded, None))
        });
        desk.submit_all(clients.collect());
        desk.submit_all((0..CLIENTS).map(|index| deposit(index, "funding", 1_000_000_000_000)).collect());
        desk
    }

    /// Submits every command at once (a client library's batch) and waits for all replies; returns each one's
    /// outcome and latency (from the moment the batch was submitted, as its client sees it).
    fn submit_all(&self, commands: Vec<Command>) -> Vec<(Outcome, Duration)> {
        self.runtime.block_on(async {
            let started = Instant::now();
            let tasks: Vec<_> = commands
                .into_iter()
                .map(|command| {
                    let engine = self.engine.clone();
                    tokio::spawn(async move {
                        let executed = engine.submit(Actor::default(), command).await.expect("accepted");
                        (executed.outcome, started.elapsed())
                    })
                })
                .collect();
            let mut replies = Vec::with_capacity(tasks.len());
            for task in tasks {
                replies.push(task.await.unwrap());
            }
            replies
        })
    }

    /// Submits the commands as one request (`submit_many`) and waits for its reply: every command's latency is the
    /// batch's.
    fn submit_many(&self, commands: Vec<Command>) -> Vec<(Outcome, Duration)> {
        self.runtime.block_on(async {
            let started = Instant::now();
            let results = self.engine.submit_many(Actor::default(), commands).await.expect("the batch is taken");
            let latency = started.elapsed();
            results.into_iter().map(|result| (result.expect("accepted").outcome, latency)).collect()
        })
    }

    /// Submits one command and waits for its reply.
    fn submit_one(&self, command: Command) -> (Outcome, Duration) {
        self.runtime.block_on(async {
            let started = Instant::now();
            let executed = self.engine.submit(Actor::default(), command).await.expect("accepted");
            (executed.outcome, started.elapsed())
        })
    }
}

/// How a batch reaches the runner.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Submit {
    /// One command at a time, each waited for.
    Single,
    /// One request per command, the whole batch in flight.
    PerCommand,
    /// One request for the whole batch.
    Many,
}

/// Work `count` commands of a kind: `batch` at a time (1: one at a time), timing only the measured ones.
fn run(desk: &Desk, kind: &str, count: u64, batch: u64, submit: Submit) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count as usize);
    let mut next = 0;
    while next < count {
        let indexes = next..(next + batch).min(count);
        next = indexes.end;
        let measured: Vec<Command> = match kind {
            "deposits" => {
                indexes.map(|index| deposit(index, &format!("d-{index}"), (index % 1_000 + 1) as i128)).collect()
            }
            "accepts" => {
                let book = common::btc_usd_book();
                let requests = indexes.clone().map(|index| quote_request(index, &book)).collect();
                let issued = match submit {
                    Submit::Many => desk.submit_many(requests),
                    _ => desk.submit_all(requests),
                };
                let quote_ids = issued.into_iter().map(|(outcome, _)| match outcome {
                    Outcome::Quote(quote) => quote.quote_id,
                    other => panic!("a quote, not {other:?}"),
                });
                indexes.zip(quote_ids).map(|(index, quote_id)| accept(index, quote_id)).collect()
            }
            other => panic!("unknown kind {other}"),
        };
        match submit {
            Submit::Single => latencies.extend(measured.into_iter().map(|command| desk.submit_one(command).1)),
            Submit::PerCommand => latencies.extend(desk.submit_all(measured).into_iter().map(|(_, latency)| latency)),
            Submit::Many => latencies.extend(desk.submit_many(measured).into_iter().map(|(_, latency)| latency)),
        }
    }
    latencies
}

fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse::<u64>().ok()).unwrap_or(0) / 1024
}

fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[(sorted.len() * per_mille / 1_000).min(sorted.len() - 1)]
}

/// Recovery times of one data directory, pipelined (`store::open`) and sequential (the recovery before it).
struct RecoveryTimes {
    head_seq: u64,
    snapshot_seq: u64,
    /// Pipelined and sequential, with the snapshot and from the journal alone.
    with_snapshot: (Duration, Duration),
    from_journal: (Duration, Duration),
}

impl std::fmt::Display for RecoveryTimes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "with the snapshot {:?} pipelined / {:?} sequential; from the journal alone {:?} pipelined / {:?} \
             sequential",
            self.with_snapshot.0, self.with_snapshot.1, self.from_journal.0, self.from_journal.1
        )
    }
}

/// Opens `data_dir` the pipelined and the sequential way, with its snapshots and then without them (they are
/// moved aside and put back): both must recover the same journal head.
fn time_recoveries(data_dir: &std::path::Path) -> RecoveryTimes {
    let checks = store::StartChecks::default();
    let clock = otcd_host::clock::SystemClock;
    let time = |sequential: bool| {
        let started = Instant::now();
        let opened = if sequential {
            store::open_checked_sequential(data_dir, &clock, &checks)
        } else {
            store::open_checked(data_dir, &clock, &checks)
        };
        let opened = opened.unwrap();
        let elapsed = started.elapsed();
        let heads = (opened.recovery.head_seq, opened.recovery.snapshot_seq);
        drop(opened);
        (elapsed, heads)
    };
    let (pipelined, heads) = time(false);
    let (sequential, sequential_heads) = time(true);
    assert_eq!(heads, sequential_heads);
    let snapshots = data_dir.join("snapshots");
    let aside = data_dir.join("snapshots.aside");
    std::fs::rename(&snapshots, &aside).unwrap();
    let (journal_pipelined, journal_heads) = time(false);
    let (journal_sequential, _) = time(true);
    assert_eq!(journal_heads.0, heads.0);
    std::fs::remove_dir_all(&snapshots).unwrap();
    std::fs::rename(&aside, &snapshots).unwrap();
    RecoveryTimes {
        head_seq: heads.0,
        snapshot_seq: heads.1,
        with_snapshot: (pipelined, sequential),
        from_journal: (journal_pipelined, journal_sequential),
    }
}

/// Each part of a recovery of `data_dir` on its own (one thread each), to see where its time goes.
fn recovery_phases(data_dir: &std::path::Path) {
    use sha2::Digest;
    let timed = |what: &str, started: Instant| println!("{what}: {:?}", started.elapsed());
    for path in std::fs::read_dir(data_dir.join("snapshots")).unwrap() {
        let started = Instant::now();
        let bytes = std::fs::read(path.unwrap().path()).unwrap();
        timed(&format!("read a snapshot file of {} bytes", bytes.len()), started);
        let started = Instant::now();
        let digest = sha2::Sha256::digest(&bytes);
        timed(&format!("SHA-256 of it ({:02x})", digest[0]), started);
    }
    let started = Instant::now();
    let snapshots = otcd_journal::SnapshotStore::new(&data_dir.join("snapshots")).unwrap();
    let snapshot = snapshots.load_newest().unwrap();
    timed("read the snapshot file (checksums)", started);
    if let Some(snapshot) = snapshot {
        let started = Instant::now();
        let mut desk: otcd_core::engine::Desk = serde_json::from_slice(&snapshot.state).unwrap();
        timed("decode the snapshot's JSON", started);
        let started = Instant::now();
        desk.rebuild_indexes();
        timed("rebuild_indexes", started);
        let started = Instant::now();
        drop(desk);
        timed("drop the desk", started);
    }
    let journal = store::journal_dir(data_dir);
    let started = Instant::now();
    otcd_journal::verify(&journal).unwrap();
    timed("verify the journal (read, checksums, chain)", started);
    let started = Instant::now();
    let mut records = 0_u64;
    otcd_journal::read_records(&journal, 0, u64::MAX, |seq, payload| {
        store::decode_record(seq, payload).map(|_| records += 1)
    })
    .unwrap();
    timed(&format!("verify and decode {records} records"), started);
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| !argument.starts_with("--")).collect();
    let mode = arguments.first().map_or("deposits", String::as_str).to_owned();
    let count: u64 = arguments.get(1).and_then(|count| count.parse().ok()).unwrap_or(1_000_000);
    if mode == "phases" {
        let data_dir = std::path::Path::new(arguments.get(1).expect("phases <data directory>"));
        recovery_phases(data_dir);
        return;
    }
    if mode == "recover_one" {
        // One recovery in a fresh process, so that neither way reuses memory the other faulted in:
        // `recover_one <data directory> <pipelined|sequential>` (its snapshots as they are).
        let data_dir = std::path::Path::new(arguments.get(1).expect("recover_one <data directory> <way>"));
        let sequential = arguments.get(2).is_some_and(|way| way == "sequential");
        let checks = store::StartChecks::default();
        let started = Instant::now();
        let opened = if sequential {
            store::open_checked_sequential(data_dir, &otcd_host::clock::SystemClock, &checks)
        } else {
            store::open_checked(data_dir, &otcd_host::clock::SystemClock, &checks)
        };
        let opened = opened.unwrap();
        let elapsed = started.elapsed();
        let way = if sequential { "sequential" } else { "pipelined" };
        let (head, snapshot) = (opened.recovery.head_seq, opened.recovery.snapshot_seq);
        println!("recover_one {way}: {elapsed:?} (head {head}, snapshot at {snapshot}, RSS {} MiB)", resident_mib());
        return;
    }
    if mode == "recover" {
        // An existing data directory (say, one kept with `OTCD_BENCH_KEEP=1`), recovered both ways.
        let data_dir = arguments.get(1).expect("recover <data directory>");
        println!("recover {data_dir}: {}", time_recoveries(std::path::Path::new(data_dir)));
        return;
    }
    let (kind, batch, submit) = if let Some(kind) = mode.strip_suffix("_single") {
        (kind.to_owned(), 1, Submit::Single)
    } else if let Some(kind) = mode.strip_suffix("_many") {
        (kind.to_owned(), BATCH, Submit::Many)
    } else {
        (mode.clone(), BATCH, Submit::PerCommand)
    };
    let desk = Desk::start();
    let resident_before_mib = resident_mib();
    let latencies = run(&desk, &kind, count, batch, submit);
    // A batch takes as long as its slowest reply (every latency counts from the batch's submission).
    let elapsed: Duration = latencies.chunks(batch as usize).map(|chunk| chunk.iter().max().copied().unwrap()).sum();
    let resident_after_mib = resident_mib();
    let mut sorted = latencies;
    sorted.sort();
    let directory = desk.directory;
    drop(desk.engine);
    let shutdown_started = Instant::now();
    desk.runner.shutdown();
    let shutdown = shutdown_started.elapsed();
    drop(desk.runtime);
    if std::env::var_os("OTCD_BENCH_KEEP").is_some() {
        eprintln!("data directory kept (OTCD_BENCH_KEEP): {}", directory.path().display());
    }

    if std::env::var_os("OTCD_BENCH_SKIP_RECOVERY").is_some() {
        // Recovery timed apart, one process per recovery (`recover_one`), on the kept directory.
        let _ = directory.keep();
        println!(
            "{mode} count={count} batch={batch} clients={CLIENTS}: {:.0}/s ({:.2} s); ack p50 {:?} p99 {:?} max {:?}; \
             RSS {resident_after_mib} MiB at the end ({resident_before_mib} MiB after setup, {:.0} B per command); \
             shutdown (final snapshot) {shutdown:?}",
            count as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            percentile(&sorted, 500),
            percentile(&sorted, 990),
            sorted.last().unwrap(),
            (resident_after_mib.saturating_sub(resident_before_mib) * 1024 * 1024) as f64 / count as f64,
        );
        return;
    }
    let recovery = time_recoveries(directory.path());
    let (head, snapshot_seq) = (recovery.head_seq, recovery.snapshot_seq);
    let per_second = count as f64 / elapsed.as_secs_f64();
    println!(
        "{mode} count={count} batch={batch} clients={CLIENTS}: {per_second:.0}/s ({:.2} s); ack p50 {:?} p99 {:?} max \
         {:?}; RSS {resident_after_mib} MiB at the end ({resident_before_mib} MiB after setup, {:.0} B per command); \
         shutdown (final snapshot) {shutdown:?}; recovery of {head} records (snapshot at seq {snapshot_seq}): \
         {recovery}",
        elapsed.as_secs_f64(),
        percentile(&sorted, 500),
        percentile(&sorted, 990),
        sorted.last().unwrap(),
        (resident_after_mib.saturating_sub(resident_before_mib) * 1024 * 1024) as f64 / count as f64,
    );
    if std::env::var_os("OTCD_BENCH_KEEP").is_some() {
        let _ = directory.keep();
    }
}
