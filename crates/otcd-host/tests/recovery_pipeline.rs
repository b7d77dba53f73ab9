//! The pipelined recovery (`store::open_checked`: the journal read, checked and decoded on a second thread, the
//! records executed on the caller's) against the sequential one (`store::open_checked_sequential`) on the same
//! data directories: the same desk to the byte, the same report, and the same error, at the same record, for a
//! journal refused in the middle.

use otcd_core::engine::{fixtures, Actor, Command};
use otcd_core::ids::ClientId;
use otcd_core::model::Settlement;
use otcd_host::clock::SystemClock;
use otcd_host::metrics::Metrics;
use otcd_host::runner::{EngineHandle, Runner, RunnerConfig};
use otcd_host::store::{self, OpenedDesk, StartChecks};
use otcd_journal::{FileJournal, Journal, JournalOptions};
use otcd_testkit::sim::{assert_same, serialize};
use std::path::Path;
use std::sync::Arc;

const CLIENTS: u64 = 7;
/// More than two of the pipeline's batches (1,024 records), so that batches are handed over one after another.
const DEPOSITS_PER_RUN: u64 = 2_500;

fn client(index: u64) -> ClientId {
    ClientId::parse(&format!("cl_{:08}", index % CLIENTS + 1)).unwrap()
}

/// Opens `directory`, runs `commands` through the runner, shuts down (which writes a final snapshot).
fn run(directory: &Path, commands: Vec<Command>) {
    let opened = store::open(directory, &SystemClock).unwrap();
    let runner = Runner::start(
        opened.desk,
        Box::new(opened.journal),
        opened.snapshots,
        RunnerConfig::default(),
        Arc::new(Metrics::new()),
    );
    let engine: EngineHandle = runner.handle();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for command in commands {
            engine.submit(Actor::default(), command).await.expect("accepted");
        }
    });
    drop(engine);
    runner.shutdown();
}

fn setup() -> Vec<Command> {
    let mut commands = vec![fixtures::initialize_desk()];
    for index in 0..CLIENTS {
        let new = fixtures::approved_client(&format!("Client {index}"), Settlement::Prefunded, None);
        commands.push(Command::CreateClient(new));
    }
    commands
}

/// Deposits of every client with distinct amounts and references: executed in another order, or with one
/// missing, the desk's deposit history and balances differ.
fn deposits(run: u64) -> Vec<Command> {
    (0..DEPOSITS_PER_RUN)
        .map(|index| {
            let reference = format!("run-{run}-{index}");
            otcd_testkit::sim::deposit(&client(index), "USD", i128::from(index * 7 + run + 1), &reference)
        })
        .collect()
}

fn checks() -> StartChecks {
    StartChecks { events_max: 5_000, ..StartChecks::default() }
}

/// What both recoveries must agree on: the desk as a snapshot stores it, the report, the replayed events' seqs.
fn recovered(opened: &OpenedDesk) -> (String, String) {
    let report = &opened.recovery;
    let events: Vec<(u64, usize)> =
        opened.replayed_events.iter().map(|record| (record.seq, record.events.len())).collect();
    let summary = format!(
        "snapshot {} replayed {} head {} {} torn {} signatures {:?} events {:?} floor {}",
        report.snapshot_seq,
        report.replayed_records,
        report.head_seq,
        report.head_hash,
        report.torn_bytes_truncated,
        opened.recent_signatures,
        events,
        opened.replayed_events_floor_seq,
    );
    (serialize(&opened.desk), summary)
}

fn assert_both_recover_the_same(directory: &Path, context: &str) -> (u64, u64) {
    let sequential = store::open_checked_sequential(directory, &SystemClock, &checks()).unwrap();
    let (sequential_desk, sequential_summary) = recovered(&sequential);
    let counts = (sequential.recovery.snapshot_seq, sequential.recovery.replayed_records);
    drop(sequential);
    let pipelined = store::open_checked(directory, &SystemClock, &checks()).unwrap();
    let (pipelined_desk, pipelined_summary) = recovered(&pipelined);
    drop(pipelined);
    assert_eq!(pipelined_summary, sequential_summary, "{context}");
    assert_same(&sequential_desk, &pipelined_desk, context);
    counts
}

fn snapshot_files(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> =
        std::fs::read_dir(directory.join("snapshots")).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn pipelined_recovery_builds_the_sequential_desk_from_a_snapshot_and_from_the_journal_alone() {
    let directory = tempfile::tempdir().unwrap();
    let mut first = setup();
    first.extend(deposits(1));
    run(directory.path(), first);
    run(directory.path(), deposits(2));

    // The final snapshot: nothing to replay, the whole chain checked.
    let (snapshot_seq, replayed) = assert_both_recover_the_same(directory.path(), "with the final snapshot");
    assert_eq!(replayed, 0);
    assert!(snapshot_seq > 2 * DEPOSITS_PER_RUN);

    // The first run's snapshot: the second run's records replayed after it.
    let snapshots = snapshot_files(directory.path());
    assert_eq!(snapshots.len(), 2, "the newest two snapshots are kept");
    std::fs::remove_file(&snapshots[1]).unwrap();
    let (snapshot_seq, replayed) = assert_both_recover_the_same(directory.path(), "with the first run's snapshot");
    assert_eq!(replayed, DEPOSITS_PER_RUN);
    assert!(snapshot_seq > DEPOSITS_PER_RUN);

    // No snapshot: every record replayed.
    std::fs::remove_dir_all(directory.path().join("snapshots")).unwrap();
    let (snapshot_seq, replayed) = assert_both_recover_the_same(directory.path(), "from the journal alone");
    assert_eq!(snapshot_seq, 0);
    assert_eq!(replayed, 2 * DEPOSITS_PER_RUN + 1 + CLIENTS);
}

/// Appends raw payloads to the data directory's journal (chained and checksummed as the runner would).
fn append_raw(directory: &Path, payloads: &[Vec<u8>]) -> u64 {
    let journal_dir = store::journal_dir(directory);
    let (mut journal, _) =
        FileJournal::open(&journal_dir, JournalOptions::default(), u64::MAX, None, |_, _| Ok(())).unwrap();
    let first = journal.head().seq + 1;
    for payload in payloads {
        journal.append(payload).unwrap();
    }
    journal.sync().unwrap();
    first
}

/// The payload of the journal's record `seq`.
fn payload_of(directory: &Path, seq: u64) -> Vec<u8> {
    let mut found = None;
    otcd_journal::read_records(&store::journal_dir(directory), seq - 1, seq, |_, payload| {
        found = Some(payload.to_vec());
        Ok(())
    })
    .unwrap();
    found.expect("the record exists")
}

/// Both recoveries' errors, as text (the same error type, displayed).
fn both_errors(directory: &Path) -> (String, String) {
    let sequential = store::open_checked_sequential(directory, &SystemClock, &checks()).err().expect("refused");
    let pipelined = store::open_checked(directory, &SystemClock, &checks()).err().expect("refused");
    (sequential.to_string(), pipelined.to_string())
}

/// A data directory of one run, without snapshots (every record is replayed), and the journal's head.
fn journal_only_directory() -> tempfile::TempDir {
    let directory = tempfile::tempdir().unwrap();
    let mut commands = setup();
    commands.extend(deposits(1));
    run(directory.path(), commands);
    std::fs::remove_dir_all(directory.path().join("snapshots")).unwrap();
    directory
}

#[test]
fn a_record_that_cannot_be_decoded_in_the_middle_is_refused_at_its_seq_by_both() {
    let directory = journal_only_directory();
    let bad = append_raw(directory.path(), &[b"not a journal record".to_vec()]);
    // A valid record after it (another client created): a recovery that skipped the bad record would succeed.
    append_raw(directory.path(), &[payload_of(directory.path(), 2)]);
    let (sequential, pipelined) = both_errors(directory.path());
    assert!(sequential.contains(&format!("replay of seq {bad} from ")), "{sequential}");
    assert!(sequential.contains(&format!("record {bad} cannot be decoded")), "{sequential}");
    assert_eq!(pipelined, sequential);
}

#[test]
fn a_record_refused_on_replay_is_reported_before_a_later_corrupt_one_by_both() {
    let directory = journal_only_directory();
    // The desk's initialization again: valid JSON with a valid chain link, refused when re-executed.
    let initialize = payload_of(directory.path(), 1);
    let refused = append_raw(directory.path(), &[initialize, payload_of(directory.path(), 2)]);
    // The last record's payload altered on disk: a checksum mismatch after the refused record.
    let segment = std::fs::read_dir(store::journal_dir(directory.path())).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let (sequential, pipelined) = both_errors(directory.path());
    assert!(sequential.contains(&format!("record {refused} ")), "{sequential}");
    assert!(!sequential.contains("checksum"), "{sequential}");
    assert_eq!(pipelined, sequential);
}

#[test]
fn a_corrupt_record_in_the_middle_is_refused_with_the_same_error_by_both() {
    let directory = journal_only_directory();
    let segment = std::fs::read_dir(store::journal_dir(directory.path())).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&segment).unwrap();
    // A byte in the middle of the journal, inside a record's payload or header: checksum or chain.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let (sequential, pipelined) = both_errors(directory.path());
    assert!(sequential.contains("journal"), "{sequential}");
    assert_eq!(pipelined, sequential);
    // And neither truncated anything: the same refusal again.
    assert_eq!(both_errors(directory.path()).1, sequential);
}
