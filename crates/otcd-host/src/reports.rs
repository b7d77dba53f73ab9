//! The reports projection, run on its own thread and fed only by durable records.
//!
//! The journal thread, after each successful group fsync, offers the group's payloads to the projector through a
//! bounded queue with `try_send`: it never waits for the projector, so reports can never slow down trading. A
//! full queue drops the offer; the projector notices the gap (the next batch starts beyond its seq, or it is
//! idle while the durable seq is ahead) and reads the missing records from the journal files, up to the durable
//! seq and never beyond (a record not yet fsynced is never projected). At start it rebuilds the same way from the
//! whole journal. Queries wait (at most [`QUERY_WAIT`]) until the projection reaches the durable seq of the
//! moment they arrived, so a report reflects every command acknowledged before it; then they read the projection
//! under a shared lock on a blocking thread.

use crate::runner::EngineHandle;
use otcd_journal::JournalReader;
use otcd_reports::{Projection, SurveillanceConfig};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Durable groups waiting for the projector; beyond this they are dropped and re-read from the journal files.
pub const PROJECTION_QUEUE_CAPACITY: usize = 1_024;
/// Records applied under one write lock (readers wait at most this much work).
const APPLY_CHUNK: usize = 512;
/// Longest a report waits for the projection to catch up before answering 503.
pub const QUERY_WAIT: Duration = Duration::from_secs(10);

/// A group of durable records: seqs `first_seq ..` in order, as the engine executed them (already decoded).
pub struct DurableRecords {
    pub first_seq: u64,
    pub records: Vec<otcd_core::engine::JournalRecord>,
}

/// A record to apply: from the runner (decoded) or from the journal files (bytes). Items live in short chunks;
/// boxing the record would cost an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
enum Item {
    Record(otcd_core::engine::JournalRecord),
    Payload(Vec<u8>),
}

pub type ProjectionSender = flume::Sender<DurableRecords>;
pub type ProjectionReceiver = flume::Receiver<DurableRecords>;

pub fn channel() -> (ProjectionSender, ProjectionReceiver) {
    flume::bounded(PROJECTION_QUEUE_CAPACITY)
}

struct Inner {
    projection: RwLock<Projection>,
    applied: AtomicU64,
    failed: RwLock<Option<String>>,
}

/// Cloneable access to the projection for the protocol edges.
#[derive(Clone)]
pub struct ReportsService {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportsUnavailable {
    #[error("reports are catching up with the journal (at seq {applied} of {wanted}); retry shortly")]
    CatchingUp { applied: u64, wanted: u64 },
    #[error("the reports projection stopped: {0}")]
    Failed(String),
}

impl ReportsService {
    /// Starts the projector thread, fed by `receiver`; `reader` reads back what it missed.
    pub fn start(
        reader: Box<dyn JournalReader>,
        config: SurveillanceConfig,
        receiver: ProjectionReceiver,
        engine: EngineHandle,
    ) -> (ReportsService, JoinHandle<()>) {
        let inner = Arc::new(Inner {
            projection: RwLock::new(Projection::new(config)),
            applied: AtomicU64::new(0),
            failed: RwLock::new(None),
        });
        let service = ReportsService { inner: inner.clone() };
        let thread = std::thread::Builder::new()
            .name("otcd-reports".into())
            .spawn(move || {
                crate::background::lower_current_thread_priority();
                let mut projector = Projector { inner, reader };
                if let Err(error) = projector.run(&receiver, &engine) {
                    tracing::error!(%error, "reports projection stopped; reports answer 503 until restart");
                    *projector.inner.failed.write() = Some(error);
                }
            })
            .expect("spawn reports thread");
        (service, thread)
    }

    /// A service that answers every read with 503 (`reports = false` in the config): reports then come from the
    /// `otcd report` CLI, off the desk's host.
    pub fn disabled() -> ReportsService {
        let inner = Arc::new(Inner {
            projection: RwLock::new(Projection::default()),
            applied: AtomicU64::new(0),
            failed: RwLock::new(Some("reports are disabled on this desk (`reports = false` in --config)".into())),
        });
        ReportsService { inner }
    }

    pub fn applied_seq(&self) -> u64 {
        self.inner.applied.load(Ordering::Acquire)
    }

    /// Runs `read` on the projection once it has applied every record up to `min_seq`, on a blocking thread.
    pub async fn read<R: Send + 'static>(
        &self,
        min_seq: u64,
        read: impl FnOnce(&Projection) -> R + Send + 'static,
    ) -> Result<R, ReportsUnavailable> {
        let deadline = tokio::time::Instant::now() + QUERY_WAIT;
        loop {
            if let Some(error) = self.inner.failed.read().clone() {
                return Err(ReportsUnavailable::Failed(error));
            }
            let applied = self.applied_seq();
            if applied >= min_seq {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ReportsUnavailable::CatchingUp { applied, wanted: min_seq });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || read(&inner.projection.read()))
            .await
            .map_err(|error| ReportsUnavailable::Failed(error.to_string()))
    }
}

struct Projector {
    inner: Arc<Inner>,
    /// Remembers where the last read of the journal stopped, so a catch-up reads only what is new.
    reader: Box<dyn JournalReader>,
}

impl Projector {
    fn run(&mut self, receiver: &ProjectionReceiver, engine: &EngineHandle) -> Result<(), String> {
        self.catch_up(engine.durable_seq())?;
        loop {
            match receiver.recv_timeout(Duration::from_millis(200)) {
                Ok(batch) => {
                    let applied = self.applied();
                    if batch.first_seq > applied + 1 {
                        // Earlier offers were dropped (full queue): read them back from the files.
                        self.catch_up(batch.first_seq - 1)?;
                    }
                    let applied = self.applied();
                    let mut chunk = Vec::with_capacity(batch.records.len());
                    for (offset, record) in batch.records.into_iter().enumerate() {
                        let seq = batch.first_seq + offset as u64;
                        if seq > applied {
                            chunk.push((seq, Item::Record(record)));
                        }
                    }
                    apply(&self.inner, &chunk)?;
                }
                Err(flume::RecvTimeoutError::Timeout) => {
                    let durable = engine.durable_seq();
                    if self.applied() < durable {
                        self.catch_up(durable)?;
                    }
                }
                Err(flume::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn applied(&self) -> u64 {
        self.inner.applied.load(Ordering::Acquire)
    }

    /// Reads records `applied + 1 ..= up_to` from the journal files, resuming where the last read stopped.
    fn catch_up(&mut self, up_to: u64) -> Result<(), String> {
        let after = self.applied();
        if up_to <= after {
            return Ok(());
        }
        let inner = self.inner.clone();
        let mut chunk: Vec<(u64, Item)> = Vec::with_capacity(APPLY_CHUNK);
        let mut failure = None;
        let read = self
            .reader
            .read_through(after, up_to, &mut |seq, payload| {
                chunk.push((seq, Item::Payload(payload.to_vec())));
                if chunk.len() >= APPLY_CHUNK {
                    if let Err(error) = apply(&inner, &chunk) {
                        failure = Some(error.clone());
                        return Err(error);
                    }
                    chunk.clear();
                }
                Ok(())
            })
            .map_err(|error| failure.clone().unwrap_or_else(|| error.to_string()))?;
        apply(&inner, &chunk)?;
        tracing::debug!(after, up_to, bytes_read = read.bytes_read, resumed = read.resumed, "projection caught up");
        Ok(())
    }
}

fn apply(inner: &Inner, records: &[(u64, Item)]) -> Result<(), String> {
    for chunk in records.chunks(APPLY_CHUNK) {
        let mut projection = inner.projection.write();
        for (seq, item) in chunk {
            match item {
                Item::Record(record) => projection.apply(*seq, record),
                Item::Payload(payload) => projection.apply_payload(*seq, payload),
            }
            .map_err(|error| error.to_string())?;
        }
        inner.applied.store(projection.applied_seq(), Ordering::Release);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::runner::{Runner, RunnerConfig};

    use otcd_core::engine::{Actor, Command, Desk, TierSpec};
    use otcd_core::ids::TierName;

    use otcd_journal::{FileJournal, JournalOptions, SnapshotStore};

    fn tier(name: &str) -> Command {
        Command::PutTier(TierSpec {
            name: TierName::parse(name).unwrap(),
            spread_centi_bps: 100,
            bands: Vec::new(),
            trade_notional_usd_max: None,
            daily_notional_usd_max: None,
            rate_limits: None,
            fee_centi_bps: 0,
        })
    }

    /// Every offer dropped (the runner has no projection sender here): the projector notices it is behind the
    /// durable seq and reads the records from the journal files; a read waits for it and sees every record. Small
    /// segments make the journal rotate between catch-ups, which resume where the previous one stopped.
    #[tokio::test]
    async fn dropped_offers_are_read_back_from_the_journal_files() {
        let directory = tempfile::tempdir().unwrap();
        let journal_dir = directory.path().join("journal");
        let options = JournalOptions { segment_bytes_max: 1_500, ..JournalOptions::default() };
        let (journal, _) = FileJournal::open(&journal_dir, options, 0, None, |_, _| Ok(())).unwrap();
        let snapshots = SnapshotStore::new(&directory.path().join("snapshots")).unwrap();
        let runner =
            Runner::start(Desk::new(), Box::new(journal), snapshots, RunnerConfig::default(), Arc::new(Metrics::new()));
        let engine = runner.handle();
        engine.submit(Actor::default(), otcd_core::engine::fixtures::initialize_desk()).await.unwrap();
        let (_sender, receiver) = channel();
        let reader = Box::new(otcd_journal::JournalTail::new(&journal_dir));
        let (service, _thread) = ReportsService::start(reader, SurveillanceConfig::default(), receiver, engine.clone());
        for round in 1..=3u64 {
            for index in 0..10 {
                engine.submit(Actor::default(), tier(&format!("tier{round}x{index}"))).await.unwrap();
            }
            let durable = engine.durable_seq();
            assert_eq!(durable, 1 + 10 * round);
            let (applied, tiers) = service
                .read(durable, |projection| (projection.applied_seq(), projection.desk().tiers().count()))
                .await
                .unwrap();
            assert_eq!((applied, tiers as u64), (durable, durable));
        }
        let segments = std::fs::read_dir(&journal_dir).unwrap().count();
        assert!(segments >= 3, "the journal rotated ({segments} segments)");
        drop(engine);
        runner.shutdown();
    }
}
