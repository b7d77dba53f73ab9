//! The engine runner: the adapter that drives the deterministic [`Desk`] and makes its changes durable.
//!
//! Two threads, two bounded queues:
//! - the **engine thread** owns the `Desk`. It takes requests in batches, executes commands at the current time
//!   (read here, outside the core), runs queries, and hands each accepted command's serialized record to the
//!   journal thread together with the replies that depend on it. The record's JSON is encoded by the submitting
//!   task before the command is queued ([`PayloadTail`]: the payload is the command, not its result), so the
//!   engine thread only adds the time;
//! - the **journal thread** appends the records, syncs once per group (group commit), and only then releases
//!   the replies. A reply (2xx or a read that may have seen a new change) therefore never leaves before the
//!   records it depends on are on disk.
//!
//! After a sync, the journal thread may hand the durable head to the **checkpoint thread**, which signs it and
//! appends it to the checkpoints file (every `every_records` records, at least every `every` while records
//! arrive, at start when the journal is ahead of the last checkpoint, and at shutdown). Signing and its fsync
//! never delay a group commit, and a checkpoint never covers a record that is not yet durable.
//!
//! After a successful sync, and before it releases any reply of the group, the journal thread hands the group's
//! client-visible events (derived by the engine thread when it executed each record) to the event feed
//! (`events.rs`), in seq order: the only way an event reaches a subscriber. It also offers the group's records
//! (moved from the engine thread, already decoded) to the reports projection (`reports.rs`) with `try_send`:
//! never waiting for it, and never offering a record that is not durable.
//!
//! Snapshots are not taken here at all: the **snapshot thread** (`snapshot_follower.rs`) keeps its own desk by
//! re-executing the durable records read back through the journal's reader and writes a snapshot every
//! `snapshot_every_records` records and at shutdown. Copying the live desk for a snapshot stalled every command
//! for as long as the copy took, which grows with the desk's history (BENCHMARKS.md, "engine stalls").
//!
//! If the journal fails, the runner is poisoned: the in-memory state may be ahead of the disk, so every pending
//! and later request is answered `Unavailable` (503) until an operator restarts the desk, which recovers exactly
//! the durable state.

use crate::clock::{Clock, SystemClock};
use crate::events::{EventHub, RecordEvents};
use crate::metrics::Metrics;
use crate::snapshot_follower::{FollowerHandle, FollowerSettings};
use otcd_core::engine::{Actor, Command, CommandError, Desk, Executed, JournalRecord};
use otcd_core::time::TimestampMs;
use otcd_journal::{ChainHead, CheckpointLog, Journal, SnapshotStore};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Requests waiting for the engine. Beyond this a submit is refused as overloaded (HTTP answers 503 with
/// Retry-After) rather than letting latency grow without bound.
pub const ENGINE_QUEUE_CAPACITY: usize = 16_384;
/// Commands the engine takes in one batch (a request of [`EngineHandle::submit_many`] counts as its commands; the
/// one that crosses the bound is still taken whole).
pub const ENGINE_BATCH_MAX: usize = 4_096;
/// Commands in one [`EngineHandle::submit_many`] request: a client library's batch (TigerBeetle's is 8,189).
pub const SUBMIT_MANY_MAX: usize = 8_192;
/// Batches waiting for the journal thread; a full queue slows the engine down to the disk's pace.
pub const JOURNAL_QUEUE_CAPACITY: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// The journal failed or the desk is shutting down; nothing is acknowledged.
    #[error("the desk cannot make changes durable right now")]
    Unavailable,
    /// The engine queue is full.
    #[error("the desk is overloaded")]
    Overloaded,
}

type Delivery = Box<dyn FnOnce(bool) + Send>;

pub(crate) enum Request {
    Command {
        actor: Actor,
        command: Box<Command>,
        /// The command's journal payload without its time (see [`PayloadTail`]), encoded by the submitter.
        tail: PayloadTail,
        reply: oneshot::Sender<Result<Executed, SubmitError>>,
    },
    /// Commands of one submitter executed in order, each its own journal record, answered together once the last
    /// is durable: one queue entry and one reply for the batch instead of one per command.
    Commands {
        actor: Actor,
        commands: Vec<(Command, PayloadTail)>,
        reply: oneshot::Sender<Vec<Result<Executed, SubmitError>>>,
    },
    Query {
        run: Box<dyn FnOnce(&Desk) -> Delivery + Send>,
    },
    /// A read whose answer is released at once (see [`EngineHandle::peek`]).
    Peek {
        run: Box<dyn FnOnce(&Desk) + Send>,
    },
    /// Ends the engine loop after everything queued before it.
    Stop,
}

struct JournalBatch {
    payloads: Vec<Vec<u8>>,
    /// The same records, decoded, for the reports projection (empty when it is off): it gets them without
    /// decoding the payloads again.
    records: Vec<JournalRecord>,
    /// The client-visible events of the batch's records, published after the sync (empty when no feed).
    events: Vec<RecordEvents>,
    deliveries: Vec<Delivery>,
}

pub struct RunnerConfig {
    /// Accepted records between two snapshots.
    pub snapshot_every_records: u64,
    /// Signed checkpoints of the journal (none in unit tests that run without a data directory).
    pub checkpoints: Option<CheckpointSettings>,
    /// Where durable records are offered to the reports projection (`try_send`: never waited for).
    pub projection: Option<crate::reports::ProjectionSender>,
    /// Memory the engine thread touches once before its first command (see [`prefault_heap`]).
    pub engine_prefault_mib: usize,
    /// Where commands are stamped with their time.
    pub clock: Arc<dyn Clock>,
    /// Where the client-visible events of durable records go (`None`: events are not derived at all).
    pub events: Option<EventHub>,
    /// Closed (false) while the journal cannot make anything durable for a while without being broken (a
    /// replicated journal without a quorum): commands and queries are answered `Unavailable` at once instead of
    /// queueing behind it. `None`: always open.
    pub write_gate: Option<Arc<AtomicBool>>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            snapshot_every_records: SNAPSHOT_EVERY_RECORDS_DEFAULT,
            checkpoints: None,
            projection: None,
            engine_prefault_mib: 0,
            clock: Arc::new(SystemClock),
            events: None,
            write_gate: None,
        }
    }
}

impl Request {
    /// How many commands the request carries, for the engine batch's bound.
    fn commands(&self) -> usize {
        match self {
            Request::Commands { commands, .. } => commands.len(),
            _ => 1,
        }
    }
}

/// Reads waiting for a standby's desk ([`EngineHandle::for_standby`]). Beyond this a read is refused as
/// overloaded (503 with Retry-After): the follower answers them between the records it re-executes.
pub const STANDBY_READS_QUEUED_MAX: usize = 1_024;

/// The other end of [`EngineHandle::for_standby`]: a standby's snapshot follower answers the reads from its desk.
pub struct StandbyRequests {
    receiver: flume::Receiver<Request>,
    shared: Arc<Shared>,
}

impl StandbyRequests {
    pub(crate) fn receiver(&self) -> &flume::Receiver<Request> {
        &self.receiver
    }

    /// Answers `request` from `desk`, which has executed every record up to `executed_seq` and nothing else. Every
    /// such record is durable (the follower reads only records the stream acknowledged), so a read's answer leaves
    /// at once. A command is refused `Unavailable`: a standby changes nothing (its HTTP edge never sends one).
    pub(crate) fn answer(&self, request: Request, desk: &Desk, executed_seq: u64) {
        self.shared.durable_seq.store(executed_seq, Ordering::Release);
        match request {
            Request::Query { run } => run(desk)(true),
            Request::Peek { run } => run(desk),
            Request::Command { reply, .. } => {
                let _ = reply.send(Err(SubmitError::Unavailable));
            }
            Request::Commands { commands, reply, .. } => {
                let _ = reply.send(commands.iter().map(|_| Err(SubmitError::Unavailable)).collect());
            }
            Request::Stop => {}
        }
    }
}

/// The audit event of a signed request's refused command (who, from where, what, why).
fn refused_audit(refusal: &CommandError, name: &str) -> otcd_core::engine::audit::AuditEvent {
    otcd_core::engine::audit::AuditEvent {
        kind: otcd_core::engine::audit::AuditKind::Refused,
        code: refusal.code().to_owned(),
        detail: truncated(&refusal.to_string()),
        what: name.to_owned(),
        claimed_key_id: None,
        failures: None,
    }
}

/// When the journal thread asks for a signed checkpoint of the durable head.
pub struct CheckpointSettings {
    pub log: CheckpointLog,
    /// A checkpoint at least every this many records...
    pub every_records: u64,
    /// ...and at least this often while records arrive (unsigned records wait at most this long).
    pub every: Duration,
}

/// Records between two checkpoints by default.
pub const CHECKPOINT_EVERY_RECORDS_DEFAULT: u64 = 1_000;
/// Longest time a durable record waits for a checkpoint by default: short, so that records cut off after the
/// newest checkpoint (which no high-water mark can see) are at most this window's worth.
pub const CHECKPOINT_EVERY_DEFAULT: Duration = Duration::from_millis(100);

/// Records between snapshots by default: recovery replays at most this many (about a second's work).
pub const SNAPSHOT_EVERY_RECORDS_DEFAULT: u64 = 500_000;

struct Shared {
    poisoned: AtomicBool,
    /// See [`RunnerConfig::write_gate`].
    write_gate: Option<Arc<AtomicBool>>,
    durable_seq: AtomicU64,
    metrics: Arc<Metrics>,
}

/// A cheap, cloneable handle the desk services submit commands and queries through.
#[derive(Clone)]
pub struct EngineHandle {
    sender: flume::Sender<Request>,
    shared: Arc<Shared>,
}

pub struct Runner {
    handle: Option<EngineHandle>,
    engine_thread: Option<JoinHandle<()>>,
    journal_thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Starts the two threads over a recovered desk and an opened journal positioned at `head`.
    pub fn start(
        desk: Desk,
        journal: Box<dyn Journal>,
        snapshots: SnapshotStore,
        mut config: RunnerConfig,
        metrics: Arc<Metrics>,
    ) -> Runner {
        let head = journal.durable_head();
        let shared = Arc::new(Shared {
            poisoned: AtomicBool::new(false),
            write_gate: config.write_gate.take(),
            durable_seq: AtomicU64::new(head.seq),
            metrics,
        });
        let (sender, receiver) = flume::bounded(ENGINE_QUEUE_CAPACITY);
        let (journal_sender, journal_receiver) = flume::bounded(JOURNAL_QUEUE_CAPACITY);
        let checkpoints = config.checkpoints.take();
        let projection = config.projection.take();
        let keep_records = projection.is_some();
        let prefault_mib = config.engine_prefault_mib;
        let events = config.events.take();
        let derive_events = events.clone();
        let clock = config.clock.clone();
        let follower = journal.reader().map(|reader| {
            let settings = FollowerSettings { reader, snapshots, every_records: config.snapshot_every_records };
            let shared = shared.clone();
            // The one copy of the desk a snapshot costs the caller, made before the engine starts.
            crate::snapshot_follower::start(desk.clone(), head, settings, move || {
                shared.durable_seq.load(Ordering::Acquire)
            })
        });
        let engine_shared = shared.clone();
        let engine_thread = std::thread::Builder::new()
            .name("otcd-engine".into())
            .spawn(move || {
                prefault_heap(prefault_mib);
                EngineLoop {
                    desk,
                    shared: engine_shared,
                    journal: journal_sender,
                    last_seq: head.seq,
                    keep_records,
                    derive_events,
                    clock,
                }
                .run(receiver)
            })
            .expect("spawn engine thread");
        let journal_shared = shared.clone();
        let journal_thread = std::thread::Builder::new()
            .name("otcd-journal".into())
            .spawn(move || {
                let outlets = Outlets { checkpoints, projection, events, clock: config.clock };
                journal_loop(journal, follower, outlets, journal_receiver, &journal_shared)
            })
            .expect("spawn journal thread");
        Runner {
            handle: Some(EngineHandle { sender, shared }),
            engine_thread: Some(engine_thread),
            journal_thread: Some(journal_thread),
        }
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone().expect("runner is running")
    }

    /// Finishes every request queued so far, syncs the journal, writes a final snapshot and joins the threads.
    /// Handles still held elsewhere (a connection that never finished) get `Unavailable` afterwards.
    pub fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            // Blocking send: the stop must not be lost to a full queue.
            let _ = handle.sender.send(Request::Stop);
        }
        if let Some(thread) = self.engine_thread.take() {
            let _ = thread.join();
        }
        if let Some(thread) = self.journal_thread.take() {
            let _ = thread.join();
        }
    }
}

impl EngineHandle {
    /// A handle for a standby's read-only services (`otcd serve --replication` with `standby_reads`): its queries
    /// are answered by the standby's snapshot follower from the desk it re-executes ([`StandbyRequests`]), stale
    /// by the follower's lag; its commands are refused `Unavailable`.
    pub fn for_standby(metrics: Arc<Metrics>) -> (EngineHandle, StandbyRequests) {
        let shared = Arc::new(Shared {
            poisoned: AtomicBool::new(false),
            write_gate: None,
            durable_seq: AtomicU64::new(0),
            metrics,
        });
        let (sender, receiver) = flume::bounded(STANDBY_READS_QUEUED_MAX);
        (EngineHandle { sender, shared: shared.clone() }, StandbyRequests { receiver, shared })
    }
}

impl EngineHandle {
    /// Executes a command; resolves once it is durable (or refused, or the desk is unavailable).
    pub async fn submit(&self, actor: Actor, command: Command) -> Result<Executed, SubmitError> {
        if !self.accepts_requests() {
            return Err(SubmitError::Unavailable);
        }
        // A signed request's refused command is itself recorded in the audit trail (who, from where, what, why).
        let audited =
            (actor.key_id.is_some() && !matches!(command, Command::Audit(_))).then(|| (actor.clone(), command.name()));
        let (reply, receiver) = oneshot::channel();
        let tail = PayloadTail::encode(&actor, &command);
        self.enqueue(Request::Command { actor, command: Box::new(command), tail, reply })?;
        let result = receiver.await.unwrap_or(Err(SubmitError::Unavailable));
        if let (Err(SubmitError::Refused(refusal)), Some((actor, name))) = (&result, audited) {
            self.record_audit(actor, refused_audit(refusal, name));
        }
        result
    }

    /// Executes commands in order as one request, each its own record (a refusal refuses only its command);
    /// resolves once all are durable, with each command's result. At most [`SUBMIT_MANY_MAX`] commands; the whole
    /// request is refused when the desk is unavailable or its queue full. One queue entry, one reply and one task
    /// for the batch is what makes it cheaper than as many [`EngineHandle::submit`]s.
    pub async fn submit_many(
        &self,
        actor: Actor,
        commands: Vec<Command>,
    ) -> Result<Vec<Result<Executed, SubmitError>>, SubmitError> {
        assert!(commands.len() <= SUBMIT_MANY_MAX, "a batch holds at most {SUBMIT_MANY_MAX} commands");
        if !self.accepts_requests() {
            return Err(SubmitError::Unavailable);
        }
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&'static str> = match actor.key_id {
            Some(_) => commands.iter().map(Command::name).collect(),
            None => Vec::new(),
        };
        // Encoded here, on the submitter's task, as a single submit's are: the engine thread only executes.
        let commands: Vec<_> = commands
            .into_iter()
            .map(|command| {
                let tail = PayloadTail::encode(&actor, &command);
                (command, tail)
            })
            .collect();
        let (reply, receiver) = oneshot::channel();
        self.enqueue(Request::Commands { actor: actor.clone(), commands, reply })?;
        let results = receiver.await.map_err(|_| SubmitError::Unavailable)?;
        // Refusals of a signed batch are audited as a single submit's are.
        for (result, name) in results.iter().zip(names) {
            if let Err(SubmitError::Refused(refusal)) = result {
                self.record_audit(actor.clone(), refused_audit(refusal, name));
            }
        }
        Ok(results)
    }

    /// Journals an audit event without waiting for it (the request it describes is answered already).
    pub fn record_audit(&self, actor: Actor, event: otcd_core::engine::audit::AuditEvent) {
        let (reply, _ignored) = oneshot::channel();
        let command = Command::Audit(event);
        let tail = PayloadTail::encode(&actor, &command);
        let request = Request::Command { actor, command: Box::new(command), tail, reply };
        if self.enqueue(request).is_err() {
            tracing::warn!("the engine queue is full: an audit event was not recorded");
        }
    }

    /// Journals one interval's summary of failed authentications without waiting for it.
    pub fn record_auth_failures(&self, summary: otcd_core::engine::audit::AuthFailureSummary) {
        let (reply, _ignored) = oneshot::channel();
        let actor = Actor::default();
        let command = Command::AuditAuthFailures(summary);
        let tail = PayloadTail::encode(&actor, &command);
        let request = Request::Command { actor, command: Box::new(command), tail, reply };
        if self.enqueue(request).is_err() {
            tracing::warn!("the engine queue is full: a summary of failed authentications was not recorded");
        }
    }

    /// Runs a read-only query in sequence with commands. The answer is released only once every change it may
    /// have observed is durable.
    pub async fn query<R: Send + 'static>(
        &self,
        query: impl FnOnce(&Desk) -> R + Send + 'static,
    ) -> Result<R, SubmitError> {
        if !self.accepts_requests() {
            return Err(SubmitError::Unavailable);
        }
        let (reply, receiver) = oneshot::channel::<Result<R, SubmitError>>();
        let run = Box::new(move |desk: &Desk| -> Delivery {
            let answer = query(desk);
            Box::new(move |durable: bool| {
                let _ = reply.send(if durable { Ok(answer) } else { Err(SubmitError::Unavailable) });
            })
        });
        self.enqueue(Request::Query { run })?;
        receiver.await.unwrap_or(Err(SubmitError::Unavailable))
    }

    /// Runs a read-only query in sequence with commands and answers at once, without waiting for the journal.
    ///
    /// Only for answers that never reach a client as they are: inputs the edge puts into a command (which is
    /// then journaled itself), or records an acknowledged command made durable already (its own trades). Anything
    /// else must use [`EngineHandle::query`], or a client could see a change that a crash would undo.
    pub async fn peek<R: Send + 'static>(
        &self,
        query: impl FnOnce(&Desk) -> R + Send + 'static,
    ) -> Result<R, SubmitError> {
        if !self.accepts_requests() {
            return Err(SubmitError::Unavailable);
        }
        let (reply, receiver) = oneshot::channel::<R>();
        let run = Box::new(move |desk: &Desk| {
            let _ = reply.send(query(desk));
        });
        self.enqueue(Request::Peek { run })?;
        receiver.await.map_err(|_| SubmitError::Unavailable)
    }

    fn enqueue(&self, request: Request) -> Result<(), SubmitError> {
        match self.sender.try_send(request) {
            Ok(()) => Ok(()),
            Err(flume::TrySendError::Full(_)) => Err(SubmitError::Overloaded),
            Err(flume::TrySendError::Disconnected(_)) => Err(SubmitError::Unavailable),
        }
    }

    pub fn queue_depth(&self) -> usize {
        self.sender.len()
    }

    /// False once the journal has failed: the desk must not trade or acknowledge anything.
    pub fn is_healthy(&self) -> bool {
        !self.shared.poisoned.load(Ordering::Acquire)
    }

    /// Healthy and the write gate open (see [`RunnerConfig::write_gate`]).
    pub fn accepts_requests(&self) -> bool {
        self.is_healthy() && self.shared.write_gate.as_ref().is_none_or(|gate| gate.load(Ordering::Acquire))
    }

    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }
}

/// Most of a desk's memory is allocated on the engine thread as its history grows. On virtual machines the first
/// touch of memory the process never used can cost far more than an allocation: a single page fault inside an
/// engine command stalls every request queued behind it (BENCHMARKS.md, "page faults"). Touching
/// `mib` MiB once here, before the first command, and freeing it leaves those pages mapped in the allocator
/// (the binary tells mimalloc never to return freed memory to the OS), so the history's growth reuses them.
/// BENCHMARKS.md, "HTTP", has the figures.
pub fn prefault_heap(mib: usize) {
    const BLOCK_BYTES: usize = 64 << 10;
    if mib == 0 {
        return;
    }
    let started = Instant::now();
    let blocks: Vec<Vec<u8>> = (0..mib * ((1 << 20) / BLOCK_BYTES)).map(|_| vec![1u8; BLOCK_BYTES]).collect();
    // Read back so the writes cannot be optimized away.
    let touched = blocks.iter().filter(|block| block[BLOCK_BYTES - 1] == 1).count();
    drop(blocks);
    tracing::info!(
        mib,
        touched_blocks = touched,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "engine heap prefaulted"
    );
}

struct EngineLoop {
    desk: Desk,
    shared: Arc<Shared>,
    journal: flume::Sender<JournalBatch>,
    last_seq: u64,
    /// Hand executed records to the reports projection (moved, not cloned).
    keep_records: bool,
    /// The event feed: each record's client-visible events are derived while it has subscribers.
    derive_events: Option<EventHub>,
    clock: Arc<dyn Clock>,
}

impl EngineLoop {
    fn run(mut self, receiver: flume::Receiver<Request>) {
        let mut batch = Vec::with_capacity(ENGINE_BATCH_MAX);
        let mut stopping = false;
        while let Ok(first) = receiver.recv() {
            let mut commands = first.commands();
            batch.push(first);
            while commands < ENGINE_BATCH_MAX {
                match receiver.try_recv() {
                    Ok(request) => {
                        commands += request.commands();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            if let Some(position) = batch.iter().position(|request| matches!(request, Request::Stop)) {
                batch.truncate(position);
                stopping = true;
            }
            self.shared.metrics.engine_queue_depth.set(receiver.len() as i64);
            let started = Instant::now();
            self.process(&mut batch);
            self.shared.metrics.engine_batch_seconds.observe(started.elapsed().as_secs_f64());
            if stopping {
                break;
            }
        }
        // Requests that raced with the stop are answered, not left hanging.
        drop(receiver);
    }

    fn process(&mut self, batch: &mut Vec<Request>) {
        let mut payloads = Vec::new();
        let mut records = Vec::new();
        let mut events = Vec::new();
        let mut deliveries: Vec<Delivery> = Vec::with_capacity(batch.len());
        let poisoned = self.shared.poisoned.load(Ordering::Acquire);
        for request in batch.drain(..) {
            match request {
                Request::Command { reply, .. } if poisoned => {
                    let _ = reply.send(Err(SubmitError::Unavailable));
                }
                Request::Commands { commands, reply, .. } if poisoned => {
                    let _ = reply.send(commands.iter().map(|_| Err(SubmitError::Unavailable)).collect());
                }
                Request::Query { run } if poisoned => run(&self.desk)(false),
                Request::Command { actor, command, tail, reply } => {
                    let outputs = Outputs { payloads: &mut payloads, records: &mut records, events: &mut events };
                    let result = self.execute(actor, *command, tail, outputs);
                    deliveries.push(Box::new(move |durable: bool| {
                        let _ = reply.send(if durable { result } else { Err(SubmitError::Unavailable) });
                    }));
                }
                Request::Commands { actor, commands, reply } => {
                    let mut results = Vec::with_capacity(commands.len());
                    for (command, tail) in commands {
                        let outputs = Outputs { payloads: &mut payloads, records: &mut records, events: &mut events };
                        results.push(self.execute(actor.clone(), command, tail, outputs));
                    }
                    deliveries.push(Box::new(move |durable: bool| {
                        let results = match durable {
                            true => results,
                            false => results.iter().map(|_| Err(SubmitError::Unavailable)).collect(),
                        };
                        let _ = reply.send(results);
                    }));
                }
                Request::Query { run } => deliveries.push(run(&self.desk)),
                Request::Peek { run } => run(&self.desk),
                Request::Stop => unreachable!("stop requests are taken out of the batch"),
            }
        }
        if deliveries.is_empty() {
            return;
        }
        let everything_durable =
            payloads.is_empty() && self.shared.durable_seq.load(Ordering::Acquire) >= self.last_seq;
        if everything_durable {
            // Nothing this batch saw is waiting for the disk: answer at once.
            deliveries.into_iter().for_each(|deliver| deliver(true));
            return;
        }
        if let Err(flume::SendError(batch)) = self.journal.send(JournalBatch { payloads, records, events, deliveries })
        {
            batch.deliveries.into_iter().for_each(|deliver| deliver(false));
        }
    }

    fn execute(
        &mut self,
        actor: Actor,
        command: Command,
        tail: PayloadTail,
        outputs: Outputs<'_>,
    ) -> Result<Executed, SubmitError> {
        let record = JournalRecord { at: self.clock.now(), actor, command };
        let wanted = self.derive_events.as_ref().filter(|hub| hub.has_subscribers());
        let (executed, events) = if let Some(hub) = wanted {
            self.desk.execute_with_events_in(&record, hub.scope())?
        } else {
            (self.desk.execute(&record)?, Vec::new())
        };
        if executed.changed {
            outputs.payloads.push(tail.payload(record.at));
            self.last_seq += 1;
            // The desk numbers its records itself (webhook outbox positions): it must agree with the journal.
            debug_assert_eq!(self.desk.seq(), self.last_seq, "the desk's seq follows the journal's");
            if !events.is_empty() {
                outputs.events.push(RecordEvents { seq: self.last_seq, at: record.at, events });
            }
            if self.keep_records {
                outputs.records.push(record);
            }
        }
        Ok(executed)
    }
}

/// What the engine thread collects from one batch for the journal thread.
struct Outputs<'a> {
    payloads: &'a mut Vec<Vec<u8>>,
    records: &'a mut Vec<JournalRecord>,
    events: &'a mut Vec<RecordEvents>,
}

/// Where the journal thread sends what follows a successful sync.
struct Outlets {
    checkpoints: Option<CheckpointSettings>,
    projection: Option<crate::reports::ProjectionSender>,
    events: Option<EventHub>,
    clock: Arc<dyn Clock>,
}

fn journal_loop(
    mut journal: Box<dyn Journal>,
    follower: Option<FollowerHandle>,
    outlets: Outlets,
    receiver: flume::Receiver<JournalBatch>,
    shared: &Shared,
) {
    let Outlets { checkpoints, projection, events, clock } = outlets;
    let (mut scheduler, checkpoint_thread) = match checkpoints {
        Some(settings) => {
            let (scheduler, thread) = CheckpointScheduler::start(settings, clock, shared.metrics.clone());
            (Some(scheduler), Some(thread))
        }
        None => (None, None),
    };
    if let Some(scheduler) = &mut scheduler {
        // A desk that stopped uncleanly (or predates checkpoints) has durable records no checkpoint covers yet.
        scheduler.offer(journal.durable_head(), true);
    }
    let followers = Followers { projection: projection.as_ref(), events: events.as_ref() };
    journal_groups(journal.as_mut(), &receiver, shared, scheduler.as_mut(), followers);
    if let Some(scheduler) = scheduler {
        scheduler.finish(journal.durable_head());
    }
    if let Some(thread) = checkpoint_thread {
        let _ = thread.join();
    }
    if let Some(follower) = follower {
        // A poisoned journal's durable head is still exact: the last snapshot covers only what is on disk.
        follower.finish(journal.durable_head());
    }
}

/// Decides, on the journal thread, when the durable head gets a signed checkpoint; the checkpoint thread signs
/// and writes it. Only heads returned by a successful `sync` are ever offered.
struct CheckpointScheduler {
    sender: flume::Sender<(ChainHead, Instant)>,
    every_records: u64,
    every: Duration,
    /// The newest head handed to the checkpoint thread.
    last_seq: u64,
    last_at: Instant,
    /// When the oldest durable record no checkpoint was asked for yet became durable (about: when it was offered).
    unsigned_since: Option<Instant>,
}

impl CheckpointScheduler {
    fn start(settings: CheckpointSettings, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> (Self, JoinHandle<()>) {
        let CheckpointSettings { mut log, every_records, every } = settings;
        let last_seq = log.last().map_or(0, |checkpoint| checkpoint.seq);
        let (sender, receiver) = flume::bounded::<(ChainHead, Instant)>(16);
        let thread = std::thread::Builder::new()
            .name("otcd-checkpoint".into())
            .spawn(move || {
                // nice only, not SCHED_IDLE: a starved signer widens the window of unsigned records.
                crate::background::lower_current_thread_nice();
                for (head, unsigned_since) in receiver {
                    let failures_before = log.witness_failures();
                    match log.append(head, clock.now().0) {
                        Ok(checkpoint) => {
                            metrics.checkpoint_unsigned_seconds.observe(unsigned_since.elapsed().as_secs_f64());
                            tracing::debug!(index = checkpoint.index, seq = checkpoint.seq, "journal checkpoint signed")
                        }
                        Err(error) => tracing::error!(%error, seq = head.seq, "journal checkpoint failed"),
                    }
                    metrics.checkpoint_witness_failures.inc_by(log.witness_failures() - failures_before);
                }
            })
            .expect("spawn checkpoint thread");
        let scheduler = Self {
            sender,
            every_records: every_records.max(1),
            every,
            last_seq,
            last_at: Instant::now(),
            unsigned_since: None,
        };
        (scheduler, thread)
    }

    /// When the journal thread must wake up to checkpoint records that are durable but not yet signed.
    fn deadline(&self, durable_seq: u64) -> Option<Instant> {
        (durable_seq > self.last_seq).then(|| self.last_at + self.every)
    }

    fn offer(&mut self, durable: ChainHead, force: bool) {
        if durable.seq <= self.last_seq {
            return;
        }
        let unsigned_since = *self.unsigned_since.get_or_insert_with(Instant::now);
        let due = force || durable.seq - self.last_seq >= self.every_records || self.last_at.elapsed() >= self.every;
        if !due {
            return;
        }
        // A full queue (a very slow disk) postpones this checkpoint; the next one covers these records.
        if self.sender.try_send((durable, unsigned_since)).is_ok() {
            self.last_seq = durable.seq;
            self.unsigned_since = None;
        }
        self.last_at = Instant::now();
    }

    /// The final checkpoint of a clean stop, then the checkpoint thread ends.
    fn finish(self, durable: ChainHead) {
        if durable.seq > self.last_seq {
            let _ = self.sender.send((durable, self.unsigned_since.unwrap_or_else(Instant::now)));
        }
    }
}

/// Who hears about durable records, after the sync and before the replies.
struct Followers<'a> {
    projection: Option<&'a crate::reports::ProjectionSender>,
    events: Option<&'a EventHub>,
}

fn journal_groups(
    journal: &mut dyn Journal,
    receiver: &flume::Receiver<JournalBatch>,
    shared: &Shared,
    mut checkpoints: Option<&mut CheckpointScheduler>,
    followers: Followers<'_>,
) {
    loop {
        let deadline = checkpoints.as_ref().and_then(|scheduler| scheduler.deadline(journal.durable_head().seq));
        let first = match deadline {
            Some(deadline) => match receiver.recv_deadline(deadline) {
                Ok(batch) => batch,
                Err(flume::RecvTimeoutError::Timeout) => {
                    if let Some(scheduler) = checkpoints.as_deref_mut() {
                        scheduler.offer(journal.durable_head(), false);
                    }
                    continue;
                }
                Err(flume::RecvTimeoutError::Disconnected) => break,
            },
            None => match receiver.recv() {
                Ok(batch) => batch,
                Err(_) => break,
            },
        };
        let mut group = vec![first];
        while let Ok(more) = receiver.try_recv() {
            group.push(more);
        }
        let first_seq = journal.head().seq + 1;
        let mut result = Ok(journal.durable_head());
        for batch in &mut group {
            for payload in &batch.payloads {
                if result.is_ok() {
                    result = journal.append(payload).map(|_| journal.head());
                }
            }
        }
        let started = Instant::now();
        let synced = result.and_then(|_| journal.sync());
        shared.metrics.journal_fsync_seconds.observe(started.elapsed().as_secs_f64());
        let durable = match synced {
            Ok(head) => {
                shared.durable_seq.store(head.seq, Ordering::Release);
                if let Some(scheduler) = checkpoints.as_deref_mut() {
                    scheduler.offer(head, false);
                }
                true
            }
            Err(error) => {
                tracing::error!(%error, "journal write failed; the desk stops acknowledging until restarted");
                shared.poisoned.store(true, Ordering::Release);
                false
            }
        };
        if durable {
            followers.hand_over(first_seq, &mut group);
        }
        for batch in group {
            batch.deliveries.into_iter().for_each(|deliver| deliver(durable));
        }
    }
}

impl Followers<'_> {
    /// Publishes the group's events (in seq order, each once) and offers its records to the projection.
    fn hand_over(&self, first_seq: u64, group: &mut [JournalBatch]) {
        if let Some(events) = self.events {
            group.iter_mut().for_each(|batch| events.publish(std::mem::take(&mut batch.events)));
        }
        if let Some(projection) = self.projection {
            let records: Vec<JournalRecord> =
                group.iter_mut().flat_map(|batch| std::mem::take(&mut batch.records)).collect();
            if !records.is_empty() {
                // Never waits: a full queue drops the offer and the projector re-reads these records from disk.
                let _ = projection.try_send(crate::reports::DurableRecords { first_seq, records });
            }
        }
    }
}

/// A journal payload (the JSON of a [`JournalRecord`]) without its leading time: `,"actor":…,"command":…}`.
///
/// The submitting task encodes it before the command reaches the engine, since the payload is the command as
/// submitted, not its result: the engine thread, the one writer everything waits for, then only prepends
/// `{"at":N` (the time it reads when it executes). The bytes are exactly `serde_json::to_vec(&record)`, so the
/// journal format does not change.
pub(crate) struct PayloadTail(Vec<u8>);

impl PayloadTail {
    fn encode(actor: &Actor, command: &Command) -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(br#","actor":"#);
        serde_json::to_writer(&mut bytes, actor).expect("actors serialize");
        bytes.extend_from_slice(br#","command":"#);
        serde_json::to_writer(&mut bytes, command).expect("commands serialize");
        bytes.push(b'}');
        Self(bytes)
    }

    /// The whole record's payload at `at`.
    fn payload(self, at: TimestampMs) -> Vec<u8> {
        let time = at.0.to_string();
        let mut payload = Vec::with_capacity(PAYLOAD_HEAD.len() + time.len() + self.0.len());
        payload.extend_from_slice(PAYLOAD_HEAD);
        payload.extend_from_slice(time.as_bytes());
        payload.extend_from_slice(&self.0);
        payload
    }
}

const PAYLOAD_HEAD: &[u8] = br#"{"at":"#;

/// Audit texts are bounded (500 bytes); a longer refusal detail is cut on a character boundary.
fn truncated(text: &str) -> String {
    let mut end = text.len().min(otcd_core::engine::audit::AUDIT_TEXT_BYTES_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    use otcd_core::engine::Outcome;
    use otcd_core::ids::KeyId;

    use otcd_journal::{FileJournal, JournalError, JournalOptions};

    /// A journal whose disk "fills up" after `appends_allowed` records.
    struct FailingJournal {
        appends_allowed: u64,
        head: ChainHead,
        durable: ChainHead,
    }

    impl Journal for FailingJournal {
        fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
            if self.head.seq >= self.appends_allowed {
                return Err(JournalError::Poisoned);
            }
            let seq = self.head.seq + 1;
            self.head = ChainHead { seq, hash: otcd_journal::chain_hash(&self.head.hash, seq, payload) };
            Ok(seq)
        }
        fn sync(&mut self) -> Result<ChainHead, JournalError> {
            self.durable = self.head;
            Ok(self.durable)
        }
        fn head(&self) -> ChainHead {
            self.head
        }
        fn durable_head(&self) -> ChainHead {
            self.durable
        }
    }

    fn initialize() -> Command {
        otcd_core::engine::fixtures::initialize_desk()
    }

    /// A runner over a journal that takes `appends_allowed` records, publishing to `hub`, with the desk
    /// initialized and one prefunded client (`cl_00000001`); the directory holds its snapshots.
    async fn feed_desk(appends_allowed: u64, hub: EventHub) -> (Runner, EngineHandle, tempfile::TempDir) {
        let directory = tempfile::tempdir().unwrap();
        let journal = FailingJournal { appends_allowed, head: ChainHead::genesis(), durable: ChainHead::genesis() };
        let config = RunnerConfig { events: Some(hub), ..RunnerConfig::default() };
        let snapshots = SnapshotStore::new(directory.path()).unwrap();
        let runner = Runner::start(Desk::new(), Box::new(journal), snapshots, config, Arc::new(Metrics::new()));
        let engine = runner.handle();
        engine.submit(Actor::default(), initialize()).await.unwrap();
        let client =
            otcd_core::engine::fixtures::approved_client("Feed", otcd_core::model::Settlement::Prefunded, None);
        engine.submit(Actor::default(), Command::CreateClient(client)).await.unwrap();
        (runner, engine, directory)
    }

    /// A deposit of 1.00 USD to `cl_00000001`.
    fn deposit(reference: &str) -> Command {
        Command::Deposit(otcd_core::engine::NewDeposit {
            client_id: otcd_core::ids::ClientId::parse("cl_00000001").unwrap(),
            asset: otcd_core::catalog::AssetCode::parse("USD").unwrap(),
            amount: 100,
            reference: otcd_core::ids::ClientReference::parse(reference).unwrap(),
            notional_usd: None,
        })
    }

    fn tier(name: &str) -> Command {
        Command::PutTier(otcd_core::engine::TierSpec {
            name: otcd_core::ids::TierName::parse(name).unwrap(),
            spread_centi_bps: 100,
            bands: Vec::new(),
            trade_notional_usd_max: None,
            daily_notional_usd_max: None,
            rate_limits: None,
            fee_centi_bps: 0,
        })
    }

    #[test]
    fn a_payload_assembled_from_its_tail_is_the_record_serialized_whole() {
        let actor = Actor {
            key_id: Some(KeyId::parse("k_client").unwrap()),
            source_ip: Some("127.0.0.1".into()),
            signature: Some("ab".repeat(16)),
            signed_at_ms: Some(1_700_000_000_000),
        };
        let level = |price| otcd_core::market::Level { price, quantity: 123_456_789 };
        let book = otcd_core::market::VenueBook {
            venue: "venue \"a\"".into(),
            instrument: "BTC-USD".into(),
            bids: vec![level(4_999_000), level(4_998_000)],
            asks: vec![level(5_000_000)],
            as_of: TimestampMs(1_700_000_000_123),
        };
        let quote = Command::RequestQuote(otcd_core::engine::QuoteRequest {
            client_id: otcd_core::ids::ClientId::parse("cl_00000001").unwrap(),
            client_rfq_id: None,
            instrument: "BTC-USD".into(),
            side: otcd_core::market::Side::Buy,
            size: otcd_core::model::RequestedSize::Base(1_000_000),
            validity_ms: 5_000,
            notional_usd: Some(-5),
            books: vec![book],
            cross: None,
        });
        for (actor, command, at) in [
            (Actor::default(), initialize(), TimestampMs(0)),
            (actor.clone(), tier("gold"), TimestampMs(-1)),
            (actor, quote, TimestampMs(1_700_000_000_999)),
        ] {
            let tail = PayloadTail::encode(&actor, &command);
            let record = JournalRecord { at, actor, command };
            assert_eq!(tail.payload(at), serde_json::to_vec(&record).unwrap());
        }
    }

    #[tokio::test]
    async fn a_failed_journal_write_is_never_acknowledged_and_stops_the_desk() {
        let directory = tempfile::tempdir().unwrap();
        let journal = FailingJournal { appends_allowed: 1, head: ChainHead::genesis(), durable: ChainHead::genesis() };
        let snapshots = SnapshotStore::new(directory.path()).unwrap();
        let runner =
            Runner::start(Desk::new(), Box::new(journal), snapshots, RunnerConfig::default(), Arc::new(Metrics::new()));
        let engine = runner.handle();
        assert_eq!(engine.submit(Actor::default(), initialize()).await.unwrap().outcome, Outcome::DeskInitialized);
        assert_eq!(engine.submit(Actor::default(), tier("gold")).await, Err(SubmitError::Unavailable));
        assert!(!engine.is_healthy());
        assert_eq!(engine.submit(Actor::default(), tier("silver")).await, Err(SubmitError::Unavailable));
        assert_eq!(engine.query(|desk| desk.tiers().count()).await, Err(SubmitError::Unavailable));
        assert_eq!(engine.durable_seq(), 1);
        drop(engine);
        runner.shutdown();
    }

    /// The events of a group whose sync failed never reach a subscriber: only durable records publish.
    #[tokio::test]
    async fn events_are_published_only_for_records_the_journal_made_durable() {
        use crate::events::{EventFilter, EventHub};
        let hub = EventHub::new(None);
        let mut events = hub.subscribe(EventFilter::All, 64).unwrap();
        let (runner, engine, _directory) = feed_desk(3, hub).await;
        engine.submit(Actor::default(), deposit("durable")).await.unwrap();
        let durable_event = events.recv().await.unwrap();
        assert_eq!(durable_event.seq, 3, "the deposit's balance event, after its record was synced");
        assert_eq!(engine.submit(Actor::default(), deposit("lost")).await, Err(SubmitError::Unavailable));
        drop(engine);
        runner.shutdown();
        // Nothing of the lost deposit (a feed of the client-visible scope: the durable one has one event).
        while let Some(event) = events.try_recv() {
            assert_eq!(event.seq, 3, "the deposit that failed to be written published nothing: {event:?}");
        }
    }

    /// A batch request executes its commands in order, each its own record; a refusal refuses only its command;
    /// a batch the journal could not make durable is answered unavailable as a whole.
    #[tokio::test]
    async fn a_batch_answers_each_command_once_all_are_durable() {
        let directory = tempfile::tempdir().unwrap();
        let journal = FailingJournal { appends_allowed: 4, head: ChainHead::genesis(), durable: ChainHead::genesis() };
        let snapshots = SnapshotStore::new(directory.path()).unwrap();
        let runner =
            Runner::start(Desk::new(), Box::new(journal), snapshots, RunnerConfig::default(), Arc::new(Metrics::new()));
        let engine = runner.handle();
        let batch = vec![initialize(), tier("gold"), initialize(), tier("silver")];
        let results = engine.submit_many(Actor::default(), batch).await.unwrap();
        let codes: Vec<_> = results.iter().map(|result| result.as_ref().err().map(ToString::to_string)).collect();
        assert!(codes[0].is_none() && codes[1].is_none() && codes[3].is_none(), "{codes:?}");
        assert!(matches!(results[2], Err(SubmitError::Refused(CommandError::AlreadyInitialized))));
        assert_eq!(engine.durable_seq(), 3, "three records, the refused command none");
        assert_eq!(engine.submit_many(Actor::default(), Vec::new()).await, Ok(Vec::new()));
        // The journal takes one more record: the batch's second append fails, so neither is acknowledged.
        let results = engine.submit_many(Actor::default(), vec![tier("bronze"), tier("iron")]).await.unwrap();
        assert_eq!(results, vec![Err(SubmitError::Unavailable), Err(SubmitError::Unavailable)]);
        assert_eq!(engine.submit_many(Actor::default(), vec![tier("tin")]).await, Err(SubmitError::Unavailable));
        drop(engine);
        runner.shutdown();
    }

    /// Desk-level ledger transaction events are derived and published only for a feed whose scope asks for
    /// them (the event stream's); otherwise a deposit publishes its balance event alone.
    #[tokio::test]
    async fn the_feed_carries_ledger_transactions_only_in_its_scope() {
        use crate::events::{EventFilter, EventHub, Retention};
        use otcd_core::engine::{DeskEvent, EventScope};
        for scope in [EventScope::CLIENT_VISIBLE, EventScope::ALL] {
            let hub = EventHub::with_scope(None, Retention::DEFAULT, scope);
            let mut events = hub.subscribe(EventFilter::All, 64).unwrap();
            let (runner, engine, _directory) = feed_desk(u64::MAX, hub).await;
            engine.submit(Actor::default(), deposit("scoped")).await.unwrap();
            drop(engine);
            runner.shutdown();
            let mut kinds = Vec::new();
            while let Some(event) = events.try_recv() {
                kinds.push(matches!(event.event, DeskEvent::LedgerTransaction(_)));
            }
            let expected = if scope.ledger_transactions { vec![false, true] } else { vec![false] };
            assert_eq!(
                kinds, expected,
                "{scope:?}: the deposit's balance event, then its ledger transaction if wanted"
            );
        }
    }

    #[tokio::test]
    async fn reads_see_every_acknowledged_command() {
        let directory = tempfile::tempdir().unwrap();
        let journal =
            FailingJournal { appends_allowed: u64::MAX, head: ChainHead::genesis(), durable: ChainHead::genesis() };
        let snapshots = SnapshotStore::new(directory.path()).unwrap();
        let runner =
            Runner::start(Desk::new(), Box::new(journal), snapshots, RunnerConfig::default(), Arc::new(Metrics::new()));
        let engine = runner.handle();
        engine.submit(Actor::default(), initialize()).await.unwrap();
        for index in 0..20 {
            engine.submit(Actor::default(), tier(&format!("tier{index}"))).await.unwrap();
            assert_eq!(engine.query(|desk| desk.tiers().count()).await, Ok(index + 2));
        }
        assert_eq!(engine.durable_seq(), 21);
        drop(engine);
        runner.shutdown();
    }

    /// The follower writes snapshots while the desk runs and a last one at shutdown, each exactly the engine's
    /// state at its seq (it re-executes the journal rather than copying the engine's desk).
    #[tokio::test]
    async fn snapshots_come_from_the_follower_and_equal_the_engine_state() {
        let directory = tempfile::tempdir().unwrap();
        let journal_dir = directory.path().join("journal");
        let (journal, _) = FileJournal::open(&journal_dir, JournalOptions::default(), 0, None, |_, _| Ok(())).unwrap();
        let snapshots_dir = directory.path().join("snapshots");
        let runner = Runner::start(
            Desk::new(),
            Box::new(journal),
            SnapshotStore::new(&snapshots_dir).unwrap(),
            RunnerConfig { snapshot_every_records: 5, ..RunnerConfig::default() },
            Arc::new(Metrics::new()),
        );
        let engine = runner.handle();
        engine.submit(Actor::default(), initialize()).await.unwrap();
        for index in 0..20 {
            engine.submit(Actor::default(), tier(&format!("tier{index}"))).await.unwrap();
        }
        let store = SnapshotStore::new(&snapshots_dir).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let running = loop {
            if let Some(snapshot) = store.load_newest().unwrap() {
                break snapshot;
            }
            assert!(Instant::now() < deadline, "no snapshot while running");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(running.at.seq >= 5, "a periodic snapshot covers at least `every_records` records");
        let live = engine.query(|desk| serde_json::to_vec(desk).unwrap()).await.unwrap();
        drop(engine);
        runner.shutdown();
        let last = store.load_newest().unwrap().expect("a snapshot at shutdown");
        assert_eq!(last.at.seq, 21, "the last snapshot covers every record");
        let mut restored: Desk = serde_json::from_slice(&last.state).unwrap();
        restored.rebuild_indexes();
        assert_eq!(serde_json::to_vec(&restored).unwrap(), live, "the snapshot is the engine's state");
    }
}
