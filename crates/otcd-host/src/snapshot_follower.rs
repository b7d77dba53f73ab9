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

use otcd_core::engine::Desk;
use otcd_journal::{ChainHead, JournalReader, SnapshotStore};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the follower reads what became durable (a bound on how far behind it is between reads).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

pub struct FollowerSettings {
    /// Reads the durable records back (from the journal's files, or wherever the journal keeps them).
    pub reader: Box<dyn JournalReader>,
    pub snapshots: SnapshotStore,
    /// Records between two snapshots.
    pub every_records: u64,
}

/// Stops the follower: it catches up with the final durable head, writes a last snapshot and ends.
pub struct FollowerHandle {
    finish: flume::Sender<ChainHead>,
    thread: JoinHandle<()>,
}

impl FollowerHandle {
    pub fn finish(self, durable: ChainHead) {
        let _ = self.finish.send(durable);
        let _ = self.thread.join();
    }
}

struct Follower {
    desk: Desk,
    head: ChainHead,
    last_snapshot_seq: u64,
    reader: Box<dyn JournalReader>,
    snapshots: SnapshotStore,
    every_records: u64,
}

/// Starts following from `desk` (a copy of the engine's desk when it started) at `head`; `durable_seq` reads the
/// journal's durable seq.
pub fn start(
    desk: Desk,
    head: ChainHead,
    settings: FollowerSettings,
    durable_seq: impl Fn() -> u64 + Send + 'static,
) -> FollowerHandle {
    let (finish, finished) = flume::bounded::<ChainHead>(1);
    let FollowerSettings { reader, snapshots, every_records } = settings;
    let mut follower = Follower { desk, head, last_snapshot_seq: head.seq, reader, snapshots, every_records };
    let thread = std::thread::Builder::new()
        .name("otcd-snapshot".into())
        .spawn(move || {
            crate::background::lower_current_thread_priority();
            if let Err(error) = follower.run(&finished, &durable_seq) {
                tracing::error!(%error, "the snapshot follower stopped; recovery will replay more of the journal");
            }
        })
        .expect("spawn snapshot thread");
    FollowerHandle { finish, thread }
}

impl Follower {
    fn run(&mut self, finished: &flume::Receiver<ChainHead>, durable_seq: &dyn Fn() -> u64) -> Result<(), String> {
        loop {
            match finished.recv_timeout(FOLLOW_INTERVAL) {
                Err(flume::RecvTimeoutError::Timeout) => {
                    self.catch_up(durable_seq())?;
                    if self.head.seq - self.last_snapshot_seq >= self.every_records.max(1) {
                        self.write_snapshot();
                    }
                }
                Ok(durable) => {
                    // A clean stop: the last snapshot covers everything, so the next start replays nothing.
                    self.catch_up(durable.seq)?;
                    if self.head.seq > self.last_snapshot_seq {
                        self.write_snapshot();
                    }
                    return Ok(());
                }
                Err(flume::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Re-executes records `head + 1 ..= up_to` from the journal files.
    fn catch_up(&mut self, up_to: u64) -> Result<(), String> {
        if up_to <= self.head.seq {
            return Ok(());
        }
        let desk = &mut self.desk;
        self.reader
            .read_through(self.head.seq, up_to, &mut |seq, payload| {
                crate::store::replay(desk, seq, payload).map(|_| ())
            })
            .map_err(|error| error.to_string())?;
        self.head = self.reader.position().expect("a read that reached `up_to` remembers where it stopped");
        assert_eq!(self.head.seq, up_to, "the follower read exactly up to the durable seq");
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
