//! Leadership: one key in a JetStream KV bucket whose entries expire `lease` after they were written.
//!
//! - taking the lease: `create` (succeeds only while the key is absent, that is after the last leader's entry
//!   expired or was deleted);
//! - renewing: `update` with the revision this node wrote last (compare-and-set); a refused update means another
//!   node holds the lease now, and this node steps down at once;
//! - the local deadline: the leader treats its lease as held only until three quarters of `lease` after the start
//!   of its last successful renewal. The entry expires on the servers no earlier than `lease` after that moment,
//!   so the old leader has stopped publishing before any standby can take over, even when it was paused (SIGSTOP,
//!   a long GC-like stall): after a pause its deadline has passed. Correctness does not rest on clocks: the
//!   stream's expected-last-sequence condition still refuses any append of a leader that lost the race;
//! - releasing: a leader that stops cleanly deletes its entry, so a standby takes over without waiting.

use crate::error::ReplicationError;
use async_nats::jetstream::kv;
use otcd_host::cluster::LeaderInfo;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEADER_KEY: &str = "leader";

pub struct Lease {
    bucket: kv::Store,
    me: LeaderInfo,
    duration: Duration,
    renew_every: Duration,
    revision: AtomicU64,
    /// Until when this node may act as the leader (`None`: it does not hold the lease).
    valid_until: Mutex<Option<Instant>>,
    lost: tokio::sync::watch::Sender<bool>,
}

impl Lease {
    pub fn new(bucket: kv::Store, me: LeaderInfo, duration: Duration, renew_every: Duration) -> Arc<Self> {
        Arc::new(Self {
            bucket,
            me,
            duration,
            renew_every,
            revision: AtomicU64::new(0),
            valid_until: Mutex::new(None),
            lost: tokio::sync::watch::channel(false).0,
        })
    }

    /// The lease holder's entry, `None` while nobody holds it.
    pub async fn holder(&self) -> Result<Option<LeaderInfo>, ReplicationError> {
        let entry =
            self.bucket.get(LEADER_KEY).await.map_err(|error| ReplicationError::jetstream("read lease", error))?;
        Ok(entry.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Tries to take the lease; true when this node holds it now.
    pub async fn try_acquire(&self) -> Result<bool, ReplicationError> {
        let started = Instant::now();
        let value = serde_json::to_vec(&self.me).expect("leader entries serialize");
        match self.bucket.create(LEADER_KEY, value.into()).await {
            Ok(revision) => {
                self.revision.store(revision, Ordering::Release);
                *self.valid_until.lock() = Some(started + self.valid_for());
                self.lost.send_replace(false);
                Ok(true)
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(ReplicationError::jetstream("take lease", error)),
        }
    }

    fn valid_for(&self) -> Duration {
        self.duration * 3 / 4
    }

    /// True while this node may publish as the leader.
    pub fn holds(&self) -> bool {
        self.valid_until.lock().is_some_and(|until| Instant::now() < until)
    }

    /// Resolves once this node has lost (or given up) the lease it held.
    pub fn lost(&self) -> tokio::sync::watch::Receiver<bool> {
        self.lost.subscribe()
    }

    /// Stops acting as the leader at once (fenced by another leader's append, or the lease could not be renewed).
    pub fn give_up(&self, reason: &str) {
        if self.valid_until.lock().take().is_some() {
            tracing::warn!(reason, "leadership lost; stepping down to standby");
        }
        self.lost.send_replace(true);
    }

    /// Renews the lease every `renew_every` until it is lost; run as a task while leading.
    pub async fn keep_renewed(self: Arc<Self>) {
        let mut lost = self.lost();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.renew_every) => {}
                _ = lost.wait_for(|lost| *lost) => return,
            }
            if !self.holds() {
                self.give_up("the lease ran out before it could be renewed");
                return;
            }
            let started = Instant::now();
            let value = serde_json::to_vec(&self.me).expect("leader entries serialize");
            match self.bucket.update(LEADER_KEY, value.into(), self.revision.load(Ordering::Acquire)).await {
                Ok(revision) => {
                    self.revision.store(revision, Ordering::Release);
                    let mut until = self.valid_until.lock();
                    if until.is_some() {
                        *until = Some(started + self.valid_for());
                    }
                }
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    self.give_up("another node holds the lease");
                    return;
                }
                // No quorum, a server restarting: the next renewal tries again while the deadline allows.
                Err(error) => tracing::warn!(%error, "lease renewal failed"),
            }
        }
    }

    /// Deletes this node's entry (a clean stop): a standby takes over without waiting for the expiry.
    pub async fn release(&self) {
        let revision = self.revision.load(Ordering::Acquire);
        if self.valid_until.lock().take().is_some() {
            if let Err(error) = self.bucket.delete_expect_revision(LEADER_KEY, Some(revision)).await {
                tracing::warn!(%error, "could not release the lease; it expires by itself");
            }
        }
        self.lost.send_replace(true);
    }
}
