//! The data directory: opening it, recovering the desk from the newest snapshot plus the journal, and the
//! files that live beside them.
//!
//! ```text
//! DATA_DIR/
//!   LOCK             held (flock) while a process uses the directory
//!   master.key       32-byte key sealing HMAC secrets (0600)
//!   admin-key.json   the first operator key, written on creation (0600)
//!   desk-signing.key / desk-signing.pub / checkpoints.jsonl   the audit trail (see `audit.rs`)
//!   journal/         hash-chained segments (otcd-journal)
//!   snapshots/       periodic snapshots of the desk state
//! ```

use crate::clock::Clock;
use crate::secrets::MasterKey;
use otcd_core::engine::{Desk, EventScope, JournalRecord};
use otcd_journal::{Anchor, CheckpointError, CheckpointLog, FileJournal, JournalError, JournalOptions, SnapshotStore};
use serde::de::IgnoredAny;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("data directory {0} is in use by another otcd process")]
    Locked(PathBuf),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("snapshot at seq {seq} cannot be loaded: {detail}")]
    Snapshot { seq: u64, detail: String },
    #[error(transparent)]
    SigningKey(#[from] crate::audit::AuditKeyError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("recovered state breaks a ledger invariant: {0}")]
    Invariant(String),
}

pub struct OpenedDesk {
    pub desk: Desk,
    pub journal: FileJournal,
    pub snapshots: SnapshotStore,
    pub master_key: MasterKey,
    /// The signed checkpoints file, checked against the journal (its newest checkpoint must be in it).
    pub checkpoints: CheckpointLog,
    pub recovery: RecoveryReport,
    /// Signatures of commands journaled within the last timestamp window (fingerprint hex, signed-at ms):
    /// the replay guard starts with them.
    pub recent_signatures: Vec<(String, i64)>,
    /// Held for the life of the process: a second otcd on the same directory would corrupt it.
    pub lock: File,
    /// The client-visible events of the newest replayed records (at most `events_max` events, whole records),
    /// re-derived during replay for the event feed's resume ring ([`crate::events::EventHub::start_at`]).
    pub replayed_events: Vec<crate::events::RecordEvents>,
    /// Every event of a record after this seq is in `replayed_events` (the snapshot's seq, or the newest record
    /// whose events were dropped for the bound).
    pub replayed_events_floor_seq: u64,
}

#[derive(Debug, Clone)]
pub struct RecoveryReport {
    pub snapshot_seq: u64,
    pub replayed_records: u64,
    pub head_seq: u64,
    pub head_hash: String,
    pub torn_bytes_truncated: u64,
    pub elapsed: Duration,
}

impl OpenedDesk {
    /// A reader of the journal's durable records, for a thread that follows it.
    pub fn journal_reader(&self) -> Box<dyn otcd_journal::JournalReader> {
        otcd_journal::Journal::reader(&self.journal).expect("a file journal can be read back")
    }
}

pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

pub fn admin_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-key.json")
}

/// Refuses (or, accepted, forgets) a rollback behind the high-water mark, then records what is on disk as the
/// mark: a desk that predates the mark, or has no new records to checkpoint, has one from now on.
fn check_high_water(
    checkpoints_path: &Path,
    mark: Option<otcd_journal::HighWater>,
    file: &otcd_journal::CheckpointFile,
    journal_head_seq: u64,
    rollback: Rollback,
) -> Result<(), StoreError> {
    match otcd_journal::check_rollback(checkpoints_path, mark, file, journal_head_seq) {
        Ok(()) => {}
        Err(error) if rollback == Rollback::Accept => {
            tracing::warn!(%error, "accepting a rollback (--accept-rollback): the high-water mark is reset");
        }
        Err(error) => return Err(error.into()),
    }
    let current = otcd_journal::high_water_of(file);
    if mark != Some(current) {
        otcd_journal::write_high_water(checkpoints_path, current)?;
    }
    Ok(())
}

/// Opens the checkpoint witness and checks the data directory's checkpoints against it; a rollback the operator
/// accepts sets the old witness aside and begins a new one.
fn open_witness(
    path: &Path,
    log: &CheckpointLog,
    file: &otcd_journal::CheckpointFile,
    rollback: Rollback,
    clock: &dyn Clock,
) -> Result<otcd_journal::WitnessLog, StoreError> {
    let key = log.public_key();
    let opened = match otcd_journal::WitnessLog::open(path, &key, file, log.path()) {
        Err(error @ CheckpointError::Witness { .. }) if rollback == Rollback::Accept => {
            let aside = otcd_journal::set_witness_aside(path, clock.now().0)?;
            tracing::warn!(%error, aside = %aside.display(), "accepting a rollback (--accept-rollback): a new checkpoint witness begins");
            otcd_journal::WitnessLog::open(path, &key, file, log.path())?
        }
        other => other?,
    };
    let (witness, agreement) = opened;
    tracing::info!(
        witness = %path.display(),
        witnessed_index = agreement.last_index,
        caught_up = agreement.lagging,
        "checkpoint witness agrees with the data directory"
    );
    Ok(witness)
}

/// Opens (creating if needed) a data directory and recovers the desk: newest valid snapshot, then replay of
/// every later journal record. Any integrity problem stops here with an error naming the record and file.
///
/// `clock` dates the window of recent signatures handed back for the replay guard.
pub fn open(data_dir: &Path, clock: &dyn Clock) -> Result<OpenedDesk, StoreError> {
    open_with_events(data_dir, clock, 0)
}

/// [`open`], also re-deriving the events of the replayed records and keeping those of the newest ones, at most
/// `events_max` events (recovery then costs the events' derivation as well).
pub fn open_with_events(data_dir: &Path, clock: &dyn Clock, events_max: usize) -> Result<OpenedDesk, StoreError> {
    open_checked(data_dir, clock, &StartChecks { events_max, ..StartChecks::default() })
}

/// Whether [`open_checked`] refuses a data directory behind its high-water mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollback {
    /// A checkpoints file or journal behind the mark stops the start (the default).
    Refuse,
    /// The operator knowingly restored a backup: the mark is reset to what is on disk (`--accept-rollback`).
    Accept,
}

/// How [`open_checked`] opens a data directory.
#[derive(Clone, Debug)]
pub struct StartChecks {
    /// Events of the newest replayed records kept for the stream's resume ring (0: derive none).
    pub events_max: usize,
    /// Which events recovery re-derives for the ring: the scope the event feed publishes ([`EventHub::scope`]).
    ///
    /// [`EventHub::scope`]: crate::events::EventHub::scope
    pub event_scope: EventScope,
    /// Whether a data directory behind its high-water mark or its witness is refused.
    pub rollback: Rollback,
    /// The checkpoint witness outside the data directory (`checkpoint_witness_file`), checked at start and
    /// appended to with every checkpoint.
    pub witness: Option<PathBuf>,
}

impl Default for StartChecks {
    fn default() -> Self {
        Self { events_max: 0, event_scope: EventScope::CLIENT_VISIBLE, rollback: Rollback::Refuse, witness: None }
    }
}

/// [`open_with_events`], with the operator's choices: a data directory behind its high-water mark or witness,
/// and the witness.
///
/// Recovery is pipelined: a second thread reads the journal, checks it (checksums, chain, anchors, torn tail) and
/// decodes the records to replay, while this one loads the snapshot and then executes those records in seq order
/// (see `otcd_journal::FileJournal::open_anchored_pipelined`). The outcome, errors included, is
/// [`open_checked_sequential`]'s.
pub fn open_checked(data_dir: &Path, clock: &dyn Clock, checks: &StartChecks) -> Result<OpenedDesk, StoreError> {
    open_recovering(data_dir, clock, checks, Recovery::Pipelined)
}

/// [`open_checked`] on one thread: snapshot, then each record read, checked, decoded and executed before the
/// next is read. The reference the pipelined recovery is tested against, and the benchmarks' "before".
pub fn open_checked_sequential(
    data_dir: &Path,
    clock: &dyn Clock,
    checks: &StartChecks,
) -> Result<OpenedDesk, StoreError> {
    open_recovering(data_dir, clock, checks, Recovery::Sequential)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Recovery {
    Pipelined,
    Sequential,
}

fn open_recovering(
    data_dir: &Path,
    clock: &dyn Clock,
    checks: &StartChecks,
    recovery: Recovery,
) -> Result<OpenedDesk, StoreError> {
    let rollback = checks.rollback;
    let started = Instant::now();
    let io_error = |source| StoreError::Io { path: data_dir.to_owned(), source };
    std::fs::create_dir_all(data_dir).map_err(io_error)?;
    let lock = lock_directory(data_dir)?;
    let master_key = MasterKey::load_or_create(&data_dir.join("master.key")).map_err(io_error)?;
    let signing_key = crate::audit::load_or_create_signing_key(data_dir)?;
    let checkpoints_path = crate::audit::checkpoints_path(data_dir);
    let mark = otcd_journal::read_high_water(&checkpoints_path)?;
    let (mut checkpoints, checkpoint_file) = CheckpointLog::open(&checkpoints_path, signing_key)?;
    if let Some(witness) = &checks.witness {
        let witness = open_witness(witness, &checkpoints, &checkpoint_file, rollback, clock)?;
        checkpoints.attach_witness(witness);
    }
    let snapshots = SnapshotStore::new(&data_dir.join("snapshots"))?;
    let snapshot = snapshots.load_newest()?;
    let snapshot_head = snapshot.as_ref().map(|snapshot| snapshot.at);
    let snapshot_seq = snapshot_head.map_or(0, |head| head.seq);
    let recent_after_ms = clock.now().0 - 2 * otcd_core::model::SIGNATURE_WINDOW_MS;
    // The journal must hold the snapshot's head and reach the newest signed checkpoint with exactly its hash: a
    // checkpoint is only written after its records were fsynced, so one beyond the journal means signed,
    // durable records were removed (never a torn tail).
    // (Checkpoint first: at the same seq, its mismatch is the one reported.)
    let anchors: Vec<Anchor> = checkpoints
        .last()
        .map(|checkpoint| Anchor::checkpoint(checkpoint.index, checkpoint.head()))
        .into_iter()
        .chain(snapshot_head.map(Anchor::snapshot))
        .collect();
    let journal_dir = journal_dir(data_dir);
    let options = JournalOptions::default();
    let (journal, report, replay) = match recovery {
        Recovery::Sequential => {
            let mut replay = Replay::new(load_snapshot(snapshot, recovery)?, checks, recent_after_ms);
            let (journal, report) =
                FileJournal::open_anchored(&journal_dir, options, snapshot_seq, &anchors, |seq, payload| {
                    replay.apply(seq, decode_record(seq, payload)?)
                })?;
            (journal, report, replay)
        }
        Recovery::Pipelined => {
            FileJournal::open_anchored_pipelined(
                &journal_dir,
                options,
                snapshot_seq,
                &anchors,
                decode_record,
                |records| {
                    // The snapshot is decoded here while the other thread checks the journal's chain up to it.
                    let mut replay = Replay::new(load_snapshot(snapshot, recovery)?, checks, recent_after_ms);
                    records.execute(|seq, record| replay.apply(seq, record))?;
                    Ok::<_, StoreError>(replay)
                },
            )?
        }
    };
    check_high_water(&checkpoints_path, mark, &checkpoint_file, report.head.seq, rollback)?;
    let Replay { desk, records: replayed_records, recent_signatures, events: replayed_events, .. } = replay;
    desk.ledger().check_invariants().map_err(|error| StoreError::Invariant(error.to_string()))?;
    let recovery = RecoveryReport {
        snapshot_seq,
        replayed_records,
        head_seq: report.head.seq,
        head_hash: report.head.hash_hex(),
        torn_bytes_truncated: report.truncated_torn_bytes,
        elapsed: started.elapsed(),
    };
    let replayed_events_floor_seq = snapshot_seq.max(replayed_events.dropped_seq);
    let replayed_events = replayed_events.records.into();
    Ok(OpenedDesk {
        desk,
        journal,
        snapshots,
        master_key,
        checkpoints,
        recovery,
        recent_signatures,
        lock,
        replayed_events,
        replayed_events_floor_seq,
    })
}

/// The desk of the newest valid snapshot, its indexes rebuilt; a new desk without one. Pipelined, the snapshot's
/// ledger is decoded on a second thread ([`decode_snapshot_in_two`]).
fn load_snapshot(snapshot: Option<otcd_journal::Snapshot>, recovery: Recovery) -> Result<Desk, StoreError> {
    let Some(snapshot) = snapshot else { return Ok(Desk::new()) };
    let in_two = match recovery {
        Recovery::Pipelined => decode_snapshot_in_two(&snapshot.state),
        Recovery::Sequential => None,
    };
    let mut desk = match in_two {
        Some(desk) => desk,
        None => {
            let mut desk: Desk = serde_json::from_slice(&snapshot.state)
                .map_err(|error| StoreError::Snapshot { seq: snapshot.at.seq, detail: error.to_string() })?;
            desk.rebuild_indexes();
            desk
        }
    };
    desk.align_seq(snapshot.at.seq);
    Ok(desk)
}

/// How a snapshot's JSON document begins: the desk's first field, then its second, the ledger (the fields of
/// [`Desk`] in declaration order, as `serde_json` writes them).
const SNAPSHOT_PREFIX: &[u8] = br#"{"catalog":"#;
const LEDGER_KEY: &[u8] = br#","ledger":"#;
/// The key after the ledger's value.
const CLIENTS_KEY: &[u8] = br#","clients":"#;

/// Decodes a snapshot's ledger (two thirds of a long history's snapshot: its transactions and entries) on a
/// second thread while this one decodes the rest, each rebuilding its indexes. `None` whenever the document is
/// not laid out as expected or either part fails to decode: the caller then decodes it whole, as it always did,
/// and reports that decoding's error.
///
/// Exact: the ledger's text is taken to end at the first `,"clients":` after it starts only if it decodes as a
/// whole JSON value there (a `"` in a JSON string is always escaped, so the bytes can only be a key, and a
/// prefix of an object's text is never a whole object); the rest is the document with an empty ledger's text in
/// its place, so the fields decode from the same text in the same order.
fn decode_snapshot_in_two(state: &[u8]) -> Option<Desk> {
    let (ledger_start, ledger_end) = ledger_span(state)?;
    let empty_ledger = serde_json::to_vec(&otcd_core::ledger::Ledger::new()).expect("an empty ledger serializes");
    let mut rest = Vec::with_capacity(state.len() - (ledger_end - ledger_start) + empty_ledger.len());
    rest.extend_from_slice(&state[..ledger_start]);
    rest.extend_from_slice(&empty_ledger);
    rest.extend_from_slice(&state[ledger_end..]);
    std::thread::scope(|scope| {
        let ledger = std::thread::Builder::new()
            .name("snapshot-ledger".to_owned())
            .spawn_scoped(scope, || {
                let mut ledger: otcd_core::ledger::Ledger =
                    serde_json::from_slice(&state[ledger_start..ledger_end]).ok()?;
                ledger.rebuild_indexes();
                Some(ledger)
            })
            .expect("a thread for the snapshot's ledger can be started");
        let desk = serde_json::from_slice::<Desk>(&rest).ok().map(|mut desk| {
            drop(std::mem::take(&mut rest));
            desk.rebuild_indexes_but_ledger();
            desk
        });
        let ledger = ledger.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (mut desk, ledger) = (desk?, ledger?);
        let empty = desk.put_decoded_ledger(ledger);
        assert_eq!(serde_json::to_vec(&empty).ok(), Some(empty_ledger), "the rest was decoded with an empty ledger");
        Some(desk)
    })
}

/// Where the ledger's value lies in a snapshot's text: after the catalog's, to the first `,"clients":` after it.
fn ledger_span(state: &[u8]) -> Option<(usize, usize)> {
    let catalog_start = SNAPSHOT_PREFIX.len();
    if !state.starts_with(SNAPSHOT_PREFIX) {
        return None;
    }
    // The catalog is small: decode it to find where it ends.
    let mut catalog = serde_json::Deserializer::from_slice(&state[catalog_start..]).into_iter::<IgnoredAny>();
    catalog.next()?.ok()?;
    let ledger_key = catalog_start + catalog.byte_offset();
    if !state[ledger_key..].starts_with(LEDGER_KEY) {
        return None;
    }
    let ledger_start = ledger_key + LEDGER_KEY.len();
    let ledger_len = memchr::memmem::find(&state[ledger_start..], CLIENTS_KEY)?;
    Some((ledger_start, ledger_start + ledger_len))
}

/// What recovery builds while replaying records after the snapshot.
struct Replay<'c> {
    desk: Desk,
    records: u64,
    recent_signatures: Vec<(String, i64)>,
    events: RecentEvents,
    recent_after_ms: i64,
    checks: &'c StartChecks,
}

impl<'c> Replay<'c> {
    fn new(desk: Desk, checks: &'c StartChecks, recent_after_ms: i64) -> Self {
        let events = RecentEvents::new(checks.events_max);
        Self { desk, records: 0, recent_signatures: Vec::new(), events, recent_after_ms, checks }
    }

    /// Executes one decoded record (the next in seq order), keeping its events and recent signature.
    fn apply(&mut self, seq: u64, record: JournalRecord) -> Result<(), String> {
        self.records += 1;
        if self.checks.events_max == 0 {
            execute_record(&mut self.desk, seq, &record, None)?;
        } else {
            let events = execute_record(&mut self.desk, seq, &record, Some(self.checks.event_scope))?;
            self.events.push(crate::events::RecordEvents { seq, at: record.at, events });
        }
        if let (Some(signature), Some(signed_at)) = (record.actor.signature, record.actor.signed_at_ms) {
            if signed_at >= self.recent_after_ms {
                self.recent_signatures.push((signature, signed_at));
            }
        }
        Ok(())
    }
}

/// The events of the newest replayed records, at most `events_max` events (whole records, oldest dropped).
/// Kept by recovery and by a standby's follower (`snapshot_follower::start_standby`).
pub(crate) struct RecentEvents {
    pub(crate) records: std::collections::VecDeque<crate::events::RecordEvents>,
    events: usize,
    events_max: usize,
    /// The newest record whose events were dropped.
    pub(crate) dropped_seq: u64,
}

impl RecentEvents {
    pub(crate) fn new(events_max: usize) -> Self {
        Self { records: std::collections::VecDeque::new(), events: 0, events_max, dropped_seq: 0 }
    }

    pub(crate) fn push(&mut self, record: crate::events::RecordEvents) {
        if record.events.is_empty() {
            return;
        }
        self.events += record.events.len();
        self.records.push_back(record);
        while self.events > self.events_max {
            let Some(oldest) = self.records.pop_front() else { break };
            self.events -= oldest.events.len();
            self.dropped_seq = oldest.seq;
        }
    }
}

/// [`replay`], deriving the record's events as the engine did when it first executed it.
pub(crate) fn replay_with_events(
    desk: &mut Desk,
    seq: u64,
    payload: &[u8],
    scope: EventScope,
) -> Result<(JournalRecord, Vec<otcd_core::engine::DeskEvent>), String> {
    let record = decode_record(seq, payload)?;
    let events = execute_record(desk, seq, &record, Some(scope))?;
    Ok((record, events))
}

/// Re-executes one journaled record. It was accepted once, so it must be accepted again: anything else means
/// the journal and the code disagree, and continuing would build a different state than the one acknowledged.
pub fn replay(desk: &mut Desk, seq: u64, payload: &[u8]) -> Result<JournalRecord, String> {
    let record = decode_record(seq, payload)?;
    execute_record(desk, seq, &record, None)?;
    Ok(record)
}

/// A journal record's payload, decoded (the half of [`replay`] the pipelined recovery runs on its other thread).
pub fn decode_record(seq: u64, payload: &[u8]) -> Result<JournalRecord, String> {
    serde_json::from_slice(payload).map_err(|error| format!("record {seq} cannot be decoded: {error}"))
}

/// The other half of [`replay`]: the decoded record must be accepted again, and change the desk. With a scope,
/// the record's events in it are derived too (none without one).
fn execute_record(
    desk: &mut Desk,
    seq: u64,
    record: &JournalRecord,
    events: Option<EventScope>,
) -> Result<Vec<otcd_core::engine::DeskEvent>, String> {
    let executed = match events {
        None => desk.execute(record).map(|executed| (executed, Vec::new())),
        Some(scope) => desk.execute_with_events_in(record, scope),
    };
    match executed {
        Ok((executed, events)) if executed.changed => Ok(events),
        Ok(_) => Err(format!("record {seq} replays as a no-op; the journal and this version disagree")),
        Err(error) => Err(format!("record {seq} is refused on replay: {error}")),
    }
}

fn lock_directory(data_dir: &Path) -> Result<File, StoreError> {
    let path = data_dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::Io { path: path.clone(), source })?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return Err(StoreError::Locked(data_dir.to_owned()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use otcd_testkit::sim;

    fn desk_with_history() -> (Desk, otcd_core::ids::ClientId) {
        let mut desk = sim::initialized_desk();
        let client = sim::funded_client(&mut desk, 1_000, "Ledger Split");
        for index in 0..50 {
            let command = sim::deposit(&client, "USD", 100 + index, &format!("split-{index}"));
            desk.execute(&sim::record(2_000 + index as i64, command)).unwrap();
        }
        (desk, client)
    }

    #[test]
    fn a_snapshot_decoded_in_two_is_the_snapshot_decoded_whole() {
        let (desk, client) = desk_with_history();
        let state = serde_json::to_vec(&desk).unwrap();
        let (start, end) = ledger_span(&state).expect("a desk's snapshot is laid out as expected");
        assert!(state[start..end].starts_with(b"{\"accounts\":"));
        let mut whole: Desk = serde_json::from_slice(&state).unwrap();
        whole.rebuild_indexes();
        let mut in_two = decode_snapshot_in_two(&state).expect("decoded in two");
        sim::assert_same(&sim::serialize(&whole), &sim::serialize(&in_two), "decoded in two");
        // The rebuilt indexes too: a repeated deposit (the idempotency index) and a new one (the ledger's).
        for (at, reference) in [(9_000, "split-7"), (9_001, "split-new")] {
            let record = sim::record(at, sim::deposit(&client, "USD", 107, reference));
            assert_eq!(whole.execute(&record).unwrap(), in_two.execute(&record).unwrap());
        }
        sim::assert_same(&sim::serialize(&whole), &sim::serialize(&in_two), "after two more deposits");
    }

    #[test]
    fn a_snapshot_not_laid_out_as_expected_is_decoded_whole() {
        let state = serde_json::to_vec(&desk_with_history().0).unwrap();
        let text = String::from_utf8(state.clone()).unwrap();
        // A duplicate key after the ledger, a document that does not start with the catalog, a broken document:
        // never a desk from the split, so the whole decoding (and its error) decides.
        let duplicate = text.replacen(",\"clients\":", ",\"clients\":{},\"clients\":", 1);
        assert!(serde_json::from_slice::<Desk>(duplicate.as_bytes()).is_err());
        assert!(decode_snapshot_in_two(duplicate.as_bytes()).is_none());
        assert!(decode_snapshot_in_two(&state[1..]).is_none());
        assert!(decode_snapshot_in_two(&state[..state.len() - 1]).is_none());
        let reordered = text.replacen("{\"catalog\":", "{\"seq\":0,\"catalog\":", 1);
        assert!(decode_snapshot_in_two(reordered.as_bytes()).is_none());
    }
}
