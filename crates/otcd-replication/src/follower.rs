//! The standby's copy of the stream: an ordered consumer from the node's journal head, each record appended to
//! the node's own file journal, its chain hash checked against the leader's, synced in groups.

use crate::error::ReplicationError;
use crate::CHAIN_HASH_HEADER;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use otcd_host::cluster::ClusterStatus;
use otcd_journal::{FileJournal, Journal};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records appended between two syncs of the local journal at most (a bound on what a standby crash re-fetches).
const SYNC_EVERY_RECORDS: u64 = 4_096;

pub struct StreamFollower {
    journal: FileJournal,
    stream: stream::Stream,
    status: Arc<ClusterStatus>,
    messages: Option<Ordered>,
}

impl StreamFollower {
    pub fn new(journal: FileJournal, stream: stream::Stream, status: Arc<ClusterStatus>) -> Self {
        status.set_applied_seq(journal.durable_head().seq);
        Self { journal, stream, status, messages: None }
    }

    pub fn applied_seq(&self) -> u64 {
        self.journal.durable_head().seq
    }

    /// Gives the node's journal back (to open the desk on it as the leader).
    pub fn into_journal(self) -> FileJournal {
        self.journal
    }

    async fn messages(&mut self) -> Result<&mut Ordered, ReplicationError> {
        if self.messages.is_none() {
            let start_sequence = self.journal.head().seq + 1;
            let config = OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                ..Default::default()
            };
            let consumer = self
                .stream
                .create_consumer(config)
                .await
                .map_err(|error| ReplicationError::jetstream("create consumer", error))?;
            let messages = consumer.messages().await.map_err(|error| ReplicationError::jetstream("consume", error))?;
            self.messages = Some(messages);
        }
        Ok(self.messages.as_mut().expect("set above"))
    }

    /// Copies what the stream has beyond the node's journal, for at most `window`; returns the applied seq.
    pub async fn follow_for(&mut self, window: Duration) -> Result<u64, ReplicationError> {
        let deadline = Instant::now() + window;
        let mut unsynced = 0u64;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let next = match self.messages().await {
                Ok(messages) => tokio::time::timeout(deadline - now, messages.next()).await,
                Err(error) => {
                    tracing::warn!(%error, "cannot follow the stream; retrying");
                    tokio::time::sleep(deadline - now).await;
                    break;
                }
            };
            let message = match next {
                Err(_elapsed) => break,
                Ok(Some(Ok(message))) => message,
                Ok(other) => {
                    if let Some(Err(error)) = other {
                        tracing::warn!(%error, "the stream consumer failed; recreating it");
                    }
                    self.messages = None;
                    continue;
                }
            };
            let (seq, pending) = match message.info() {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(error) => return Err(ReplicationError::jetstream("message info", error)),
            };
            self.status.set_stream_seq(seq + pending);
            self.apply(seq, &message)?;
            unsynced += 1;
            if pending == 0 || unsynced >= SYNC_EVERY_RECORDS {
                self.sync()?;
                unsynced = 0;
            }
        }
        self.sync()?;
        Ok(self.applied_seq())
    }

    fn apply(&mut self, seq: u64, message: &async_nats::jetstream::Message) -> Result<(), ReplicationError> {
        let expected = self.journal.head().seq + 1;
        if seq < expected {
            return Ok(()); // delivered twice (a recreated consumer)
        }
        if seq > expected {
            self.messages = None;
            return Err(ReplicationError::Diverged { seq: expected, detail: format!("the stream skipped to {seq}") });
        }
        self.journal.append(&message.payload)?;
        let computed = self.journal.head().hash_hex();
        let stated =
            message.headers.as_ref().and_then(|headers| headers.get(CHAIN_HASH_HEADER)).map(|value| value.as_str());
        if stated != Some(computed.as_str()) {
            return Err(ReplicationError::Diverged {
                seq,
                detail: format!("chain hash {computed} here, {stated:?} on the stream"),
            });
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), ReplicationError> {
        let head = self.journal.sync()?;
        self.status.set_applied_seq(head.seq);
        Ok(())
    }

    /// Copies the stream up to `seq` (the stream's end when the lease was taken), however long that takes.
    pub async fn catch_up_to(&mut self, seq: u64) -> Result<(), ReplicationError> {
        while self.applied_seq() < seq {
            self.follow_for(Duration::from_millis(500)).await?;
        }
        Ok(())
    }
}
