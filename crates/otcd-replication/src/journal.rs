//! The leader's journal: each group commit goes to the stream first (on a quorum), then to the node's own file
//! journal. See the crate documentation for why in this order.

use crate::lease::Lease;
use crate::CHAIN_HASH_HEADER;
use async_nats::jetstream::context::{Publish, PublishErrorKind};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use otcd_host::cluster::ClusterStatus;
use otcd_journal::{chain_hash, ChainHead, FileJournal, Journal, JournalError, JournalReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pause between two attempts at a group JetStream did not acknowledge (no quorum, a server restarting).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

struct PendingRecord {
    seq: u64,
    hash: [u8; 32],
    payload: Bytes,
}

/// How one attempt at publishing a group ended.
enum Attempt {
    /// Every record from the first unacknowledged one on must be sent again.
    Retry { landed: usize, detail: String },
    /// Another leader appended: never publish again.
    Fenced(String),
}

/// Where the leader publishes, and what it tells the rest of the process.
pub struct Replication {
    pub runtime: tokio::runtime::Handle,
    pub jetstream: jetstream::Context,
    pub stream: stream::Stream,
    pub subject: String,
    pub lease: Arc<Lease>,
    pub status: Arc<ClusterStatus>,
    /// Closed while the stream does not acknowledge (the runner's write gate: requests get 503 at once).
    pub gate: Arc<AtomicBool>,
    /// Time from the first publish of a group to its last acknowledgement.
    pub append_seconds: prometheus_client::metrics::histogram::Histogram,
}

pub struct ReplicatedJournal {
    local: FileJournal,
    pending: Vec<PendingRecord>,
    head: ChainHead,
    replication: Replication,
    fenced: bool,
}

impl ReplicatedJournal {
    /// Wraps the node's file journal, which must hold exactly the stream's records (the standby caught up).
    pub fn new(local: FileJournal, replication: Replication) -> Self {
        let head = local.durable_head();
        replication.status.set_applied_seq(head.seq);
        Self { local, pending: Vec::new(), head, replication, fenced: false }
    }

    fn refuse(&self, detail: &str) -> JournalError {
        JournalError::Replication(detail.to_owned())
    }

    /// Publishes every pending record, retrying until JetStream acknowledges them all or this node is no longer
    /// the leader.
    fn replicate(&mut self) -> Result<(), JournalError> {
        let started = Instant::now();
        let mut landed = 0;
        loop {
            if !self.replication.lease.holds() {
                self.replication.lease.give_up("the lease is not held");
                return Err(self.refuse("this node no longer holds the lease"));
            }
            let attempt = self.replication.runtime.block_on(self.publish_from(landed));
            match attempt {
                Ok(()) => break,
                Err(Attempt::Fenced(detail)) => {
                    self.replication.lease.give_up(&detail);
                    return Err(self.refuse(&detail));
                }
                Err(Attempt::Retry { landed: now_landed, detail }) => {
                    landed = now_landed;
                    if self.replication.gate.swap(false, Ordering::AcqRel) {
                        tracing::warn!(%detail, "JetStream does not acknowledge; refusing writes until it does");
                    }
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
        }
        if !self.replication.gate.swap(true, Ordering::AcqRel) {
            tracing::info!("JetStream acknowledges again; accepting writes");
        }
        self.replication.append_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn publish_from(&self, first: usize) -> Result<(), Attempt> {
        let mut acks = Vec::with_capacity(self.pending.len() - first);
        for (index, record) in self.pending.iter().enumerate().skip(first) {
            let publish = Publish::build()
                .payload(record.payload.clone())
                .expected_last_sequence(record.seq - 1)
                .header(CHAIN_HASH_HEADER, hex::encode(record.hash).as_str());
            match self.replication.jetstream.send_publish(self.replication.subject.clone(), publish).await {
                Ok(ack) => acks.push((index, ack)),
                Err(error) => {
                    if acks.is_empty() {
                        return Err(Attempt::Retry { landed: index, detail: error.to_string() });
                    }
                    break;
                }
            }
        }
        let mut landed = first;
        for (index, ack) in acks {
            let record = &self.pending[index];
            match ack.await {
                Ok(ack) if ack.sequence == record.seq => landed = index + 1,
                Ok(ack) => {
                    return Err(Attempt::Fenced(format!("record {} landed at stream seq {}", record.seq, ack.sequence)))
                }
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                    match self.landed_earlier(record).await {
                        Some(true) => landed = index + 1,
                        Some(false) => {
                            return Err(Attempt::Fenced(format!("another leader appended record {} first", record.seq)))
                        }
                        None => return Err(Attempt::Retry { landed, detail: error.to_string() }),
                    }
                }
                Err(error) => return Err(Attempt::Retry { landed, detail: error.to_string() }),
            }
        }
        if landed == self.pending.len() {
            Ok(())
        } else {
            Err(Attempt::Retry { landed, detail: "a publish was not sent".into() })
        }
    }

    /// After a refused expected-last-sequence: is the stream's record at this seq this very record (an earlier
    /// attempt landed but its acknowledgement was lost)? `None`: the stream has no record there yet.
    async fn landed_earlier(&self, record: &PendingRecord) -> Option<bool> {
        match self.replication.stream.get_raw_message(record.seq).await {
            Ok(message) => Some(message.payload == record.payload),
            Err(_) => None,
        }
    }
}

impl Journal for ReplicatedJournal {
    fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        if self.fenced {
            return Err(self.refuse("this node stepped down"));
        }
        let seq = self.head.seq + 1;
        let max = self.local.options().payload_bytes_max;
        if payload.len() > max as usize {
            return Err(JournalError::PayloadTooLarge { seq, len: payload.len(), max });
        }
        let hash = chain_hash(&self.head.hash, seq, payload);
        self.pending.push(PendingRecord { seq, hash, payload: Bytes::copy_from_slice(payload) });
        self.head = ChainHead { seq, hash };
        Ok(seq)
    }

    fn sync(&mut self) -> Result<ChainHead, JournalError> {
        if self.fenced {
            return Err(self.refuse("this node stepped down"));
        }
        if self.pending.is_empty() {
            return self.local.sync();
        }
        if let Err(error) = self.replicate() {
            // The pending records are on no quorum this node knows of; its in-memory desk is ahead of the stream
            // and is discarded when it steps down.
            self.fenced = true;
            return Err(error);
        }
        for record in self.pending.drain(..) {
            let seq = self.local.append(&record.payload)?;
            assert_eq!(seq, record.seq, "the local journal is the stream's prefix");
        }
        let durable = self.local.sync()?;
        assert_eq!(durable, self.head, "the local chain is the stream's chain");
        self.replication.status.set_applied_seq(durable.seq);
        Ok(durable)
    }

    fn head(&self) -> ChainHead {
        self.head
    }

    fn durable_head(&self) -> ChainHead {
        self.local.durable_head()
    }

    fn reader(&self) -> Option<Box<dyn JournalReader>> {
        self.local.reader()
    }
}
