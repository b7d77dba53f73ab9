//! Snapshots without stopping the engine: a follower desk on its own thread.
//!
//! A snapshot used to start as a copy of the live desk taken on the engine thread, and that copy grows with the
//! desk's history, during which no command ran (BENCHMARKS.md, "engine stalls"). Instead, this thread keeps
//! its own desk and re-executes every durable record read back through the journal's reader (the
//! `JournalReader` port: the files today), exactly as recovery does: the
//! engine is deterministic (time and inputs are in the record), so the follower holds the same state as the
//! engine had at each seq. Every `every_records` records it serializes its desk and writes the snapshot. The
//! engine thread never waits for it and never copies anything for it.
//!
//! Costs, paid off the trade path at a lower CPU priority (`background.rs`): the desk's memory twice, and
//! decoding and executing each record a second time (a few microseconds each). It reads only records at or below
//! the durable seq, so a snapshot never covers a record that a crash could undo. If re-executing a record fails
//! (the journal and the code disagree), the follower stops with an error in the log; the desk goes on, and
//! recovery simply replays more of the journal (and would report the same disagreement).
//!
//! A standby of a replicated desk (`otcd serve --replication`) runs the same follower over the journal it copies
//! from the stream ([`start_standby`]): its desk is then always live, it keeps its own snapshots, and when it
//! takes the lease [`FollowerHandle::hand_over`] re-executes only the records it has not yet (the tail) and hands
//! its desk to the leader's composition, instead of a recovery from the newest snapshot plus the journal. For
//! that hand-over it also remembers what recovery gathers on the way: the signatures of the last timestamp
//! window (the replay guard) and the events of the newest records (the event feed's resume ring).
//!
//! A standby configured to serve stale reads (`standby_reads`) also answers the read-only services' queries
//! ([`crate::runner::EngineHandle::for_standby`]) from its desk, between the records it re-executes, after
//! catching up with what the node's journal holds: the desk then holds a whole number of records, all durable,
//! and no other thread ever touches it.

use crate::cluster::ClusterStatus;
use crate::events::RecordEvents;
use crate::runner::{Request, StandbyRequests};
use crate::store::RecentEvents;
use otcd_core::engine::{Desk, EventScope};
use otcd_journal::{ChainHead, JournalReader, SnapshotStore};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the follower reads what became durable (a bound on how far behind it is between reads).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

pub struct FollowerSettings {
    /// Reads the durable records back (from the journal's files, or wherever the journal keeps them).
    pub reader: Box<dyn JournalReader>,
    pub snapshots: SnapshotStore,
    /// Records between two snapshots.
    pub every_records: u64,
}

/// What a standby's follower remembers beside its desk, for the hand-over (see the module's documentation).
pub struct StandbyMemory {
    /// Written with the newest re-executed seq (`executed_seq` of `GET /v1/admin/cluster`).
    pub status: Arc<ClusterStatus>,
    /// Signatures (fingerprint hex, signed-at ms) of the records within two timestamp windows of the newest one.
    pub recent_signatures: Vec<(String, i64)>,
    /// The events of the newest records, at most `events_max` events (0: derive none).
    pub events_max: usize,
    /// Which events are derived: the scope of the event feed the node will publish as leader.
    pub event_scope: EventScope,
    pub replayed_events: Vec<RecordEvents>,
    /// Every event of a record after this seq is in `replayed_events`.
    pub replayed_events_floor_seq: u64,
    /// Reads to answer from the desk (`None`: the standby serves no reads).
    pub reads: Option<StandbyRequests>,
}

/// A standby's desk, handed to the leader's composition when the node takes the lease.
pub struct HandedOver {
    pub desk: Desk,
    /// The desk's seq and chain hash (the journal's durable head at the hand-over).
    pub head: ChainHead,
    pub snapshots: SnapshotStore,
    /// The records re-executed during the hand-over: the tail the follower had not reached yet.
    pub tail_records: u64,
    pub recent_signatures: Vec<(String, i64)>,
    pub replayed_events: Vec<RecordEvents>,
    pub replayed_events_floor_seq: u64,
}

enum Stop {
    /// Catch up, write a last snapshot, end.
    Finish(ChainHead),
    /// Catch up, hand the desk back.
    HandOver(ChainHead),
}

/// Stops the follower: it catches up with the final durable head, writes a last snapshot and ends.
pub struct FollowerHandle {
    finish: flume::Sender<Stop>,
    thread: JoinHandle<Option<HandedOver>>,
}

impl FollowerHandle {
    pub fn finish(self, durable: ChainHead) {
        let _ = self.finish.send(Stop::Finish(durable));
        let _ = self.thread.join();
    }

    /// Re-executes the records up to `durable` the follower has not reached yet and hands its desk over (blocks
    /// for that tail). `None` when the follower had stopped on an error (the caller recovers from the files).
    pub fn hand_over(self, durable: ChainHead) -> Option<HandedOver> {
        let _ = self.finish.send(Stop::HandOver(durable));
        self.thread.join().ok().flatten()
    }
}

struct Follower {
    desk: Desk,
    head: ChainHead,
    last_snapshot_seq: u64,
    reader: Box<dyn JournalReader>,
    snapshots: SnapshotStore,
    every_records: u64,
    standby: Option<Standby>,
    /// A standby's reads ([`StandbyMemory::reads`]); `None` once every handle to them is gone.
    reads: Option<StandbyRequests>,
}

/// What wakes the follower.
enum Wake {
    /// Time to read what became durable.
    Follow,
    Stop(Stop),
    Read(Request),
    /// The reads' handles are all gone (the standby's HTTP server stopped).
    ReadsClosed,
    /// The handle is gone without a stop.
    Abandoned,
}

/// [`StandbyMemory`] as the follower keeps it.
struct Standby {
    status: Arc<ClusterStatus>,
    recent_signatures: VecDeque<(String, i64)>,
    events: RecentEvents,
    /// The events derived for the ring (`None`: none kept).
    derive_events: Option<EventScope>,
}

/// Starts following from `desk` (a copy of the engine's desk when it started) at `head`; `durable_seq` reads the
/// journal's durable seq.
pub fn start(
    desk: Desk,
    head: ChainHead,
    settings: FollowerSettings,
    durable_seq: impl Fn() -> u64 + Send + 'static,
) -> FollowerHandle {
    let follower = Follower::new(desk, head, settings, None);
    spawn(follower, durable_seq, true)
}

/// [`start`] on a standby: the desk is the one recovered at the node's start, and the follower also keeps the
/// [`StandbyMemory`] for [`FollowerHandle::hand_over`]. Its thread keeps the normal priority: following is the
/// standby's whole job, and a promotion waits for it.
pub fn start_standby(
    desk: Desk,
    head: ChainHead,
    settings: FollowerSettings,
    memory: StandbyMemory,
    durable_seq: impl Fn() -> u64 + Send + 'static,
) -> FollowerHandle {
    let mut events = RecentEvents::new(memory.events_max);
    events.dropped_seq = memory.replayed_events_floor_seq;
    memory.replayed_events.into_iter().for_each(|record| events.push(record));
    memory.status.set_executed_seq(head.seq);
    let standby = Standby {
        status: memory.status,
        recent_signatures: memory.recent_signatures.into(),
        events,
        derive_events: (memory.events_max > 0).then_some(memory.event_scope),
    };
    let mut follower = Follower::new(desk, head, settings, Some(standby));
    follower.reads = memory.reads;
    spawn(follower, durable_seq, false)
}

fn spawn(follower: Follower, durable_seq: impl Fn() -> u64 + Send + 'static, background: bool) -> FollowerHandle {
    let (finish, finished) = flume::bounded::<Stop>(1);
    let thread = std::thread::Builder::new()
        .name("otcd-snapshot".into())
        .spawn(move || {
            if background {
                crate::background::lower_current_thread_priority();
            }
            match follower.run(&finished, &durable_seq) {
                Ok(handed) => handed,
                Err(error) => {
                    tracing::error!(%error, "the snapshot follower stopped; recovery will replay more of the journal");
                    None
                }
            }
        })
        .expect("spawn snapshot thread");
    FollowerHandle { finish, thread }
}

impl Follower {
    fn new(desk: Desk, head: ChainHead, settings: FollowerSettings, standby: Option<Standby>) -> Self {
        let FollowerSettings { reader, snapshots, every_records } = settings;
        Follower { desk, head, last_snapshot_seq: head.seq, reader, snapshots, every_records, standby, reads: None }
    }

    fn run(
        mut self,
        finished: &flume::Receiver<Stop>,
        durable_seq: &dyn Fn() -> u64,
    ) -> Result<Option<HandedOver>, String> {
        let mut follow_at = Instant::now() + FOLLOW_INTERVAL;
        loop {
            match self.next_wake(finished, follow_at) {
                Wake::Follow => {
                    self.catch_up(durable_seq())?;
                    if self.head.seq - self.last_snapshot_seq >= self.every_records.max(1) {
                        self.write_snapshot();
                    }
                    follow_at = Instant::now() + FOLLOW_INTERVAL;
                }
                Wake::Read(request) => {
                    // What the node's journal holds now: a read is behind the leader by the node's copy lag only.
                    self.catch_up(durable_seq())?;
                    let reads = self.reads.as_ref().expect("a read arrives only while reads are served");
                    reads.answer(request, &self.desk, self.head.seq);
                }
                Wake::ReadsClosed => self.reads = None,
                Wake::Stop(Stop::Finish(durable)) => {
                    // A clean stop: the last snapshot covers everything, so the next start replays nothing.
                    self.catch_up(durable.seq)?;
                    if self.head.seq > self.last_snapshot_seq {
                        self.write_snapshot();
                    }
                    return Ok(None);
                }
                Wake::Stop(Stop::HandOver(durable)) => return self.hand_over(durable).map(Some),
                Wake::Abandoned => return Ok(None),
            }
        }
    }

    /// Waits for a stop or a read until `follow_at`. Following is never starved by reads: once `follow_at` has
    /// passed, the follower follows before it answers anything else.
    fn next_wake(&self, finished: &flume::Receiver<Stop>, follow_at: Instant) -> Wake {
        if Instant::now() >= follow_at {
            return match finished.try_recv() {
                Ok(stop) => Wake::Stop(stop),
                Err(flume::TryRecvError::Empty) => Wake::Follow,
                Err(flume::TryRecvError::Disconnected) => Wake::Abandoned,
            };
        }
        let Some(reads) = &self.reads else {
            return match finished.recv_deadline(follow_at) {
                Ok(stop) => Wake::Stop(stop),
                Err(flume::RecvTimeoutError::Timeout) => Wake::Follow,
                Err(flume::RecvTimeoutError::Disconnected) => Wake::Abandoned,
            };
        };
        flume::Selector::new()
            .recv(finished, |stop| stop.map_or(Wake::Abandoned, Wake::Stop))
            .recv(reads.receiver(), |read| read.map_or(Wake::ReadsClosed, Wake::Read))
            .wait_deadline(follow_at)
            .unwrap_or(Wake::Follow)
    }

    fn hand_over(mut self, durable: ChainHead) -> Result<HandedOver, String> {
        let before = self.head.seq;
        self.catch_up(durable.seq)?;
        if self.head != durable {
            return Err(format!("the follower reached {:?}, the journal's head is {durable:?}", self.head));
        }
        let standby = self.standby.ok_or("only a standby's follower hands its desk over")?;
        Ok(HandedOver {
            desk: self.desk,
            head: self.head,
            snapshots: self.snapshots,
            tail_records: self.head.seq - before,
            recent_signatures: standby.recent_signatures.into(),
            replayed_events_floor_seq: standby.events.dropped_seq,
            replayed_events: standby.events.records.into(),
        })
    }

    /// Re-executes records `head + 1 ..= up_to` from the journal files.
    fn catch_up(&mut self, up_to: u64) -> Result<(), String> {
        if up_to <= self.head.seq {
            return Ok(());
        }
        let (desk, standby) = (&mut self.desk, &mut self.standby);
        self.reader
            .read_through(self.head.seq, up_to, &mut |seq, payload| match standby {
                None => crate::store::replay(desk, seq, payload).map(|_| ()),
                Some(standby) => standby.replay(desk, seq, payload),
            })
            .map_err(|error| error.to_string())?;
        self.head = self.reader.position().expect("a read that reached `up_to` remembers where it stopped");
        assert_eq!(self.head.seq, up_to, "the follower read exactly up to the durable seq");
        if let Some(standby) = &self.standby {
            standby.status.set_executed_seq(up_to);
        }
        Ok(())
    }

    fn write_snapshot(&mut self) {
        let bytes = serde_json::to_vec(&self.desk).expect("the desk serializes");
        match self.snapshots.write(self.head, &bytes) {
            Ok(()) => {
                self.last_snapshot_seq = self.head.seq;
                tracing::debug!(seq = self.head.seq, bytes = bytes.len(), "snapshot written");
            }
            Err(error) => tracing::warn!(%error, "snapshot failed; recovery will replay more of the journal"),
        }
    }
}

impl Standby {
    /// Re-executes one record as recovery does, remembering its signature and (when kept) its events.
    fn replay(&mut self, desk: &mut Desk, seq: u64, payload: &[u8]) -> Result<(), String> {
        let record = if let Some(scope) = self.derive_events {
            let (record, events) = crate::store::replay_with_events(desk, seq, payload, scope)?;
            self.events.push(RecordEvents { seq, at: record.at, events });
            record
        } else {
            crate::store::replay(desk, seq, payload)?
        };
        if let (Some(signature), Some(signed_at)) = (record.actor.signature, record.actor.signed_at_ms) {
            self.recent_signatures.push_back((signature, signed_at));
        }
        // The window recovery keeps (`store::open_checked`), measured from the newest record's time.
        let oldest_ms = record.at.0 - 2 * otcd_core::model::SIGNATURE_WINDOW_MS;
        while self.recent_signatures.front().is_some_and(|(_, signed_at)| *signed_at < oldest_ms) {
            self.recent_signatures.pop_front();
        }
        Ok(())
    }
}
