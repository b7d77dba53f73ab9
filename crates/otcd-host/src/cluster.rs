//! What this node knows about its desk's cluster (replication, `otcd serve --replication`): its role, who leads,
//! how far it has applied the replicated journal. Written by the replication adapter, read by the HTTP edge
//! (`GET /v1/admin/cluster`, the standby's `503 not_leader`) and by metrics. Plain data: no NATS here.

use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A node's part in its desk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the lease and acknowledges writes.
    Leader,
    /// Follows the replicated journal; refuses writes.
    Standby,
}

/// Who holds the lease, as its lease entry says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LeaderInfo {
    pub node_id: String,
    /// The leader's HTTP address as clients should reach it (`--advertise`).
    pub advertise: String,
}

/// The cluster as this node sees it (one per process, shared).
pub struct ClusterStatus {
    pub node_id: String,
    pub advertise: String,
    leader_role: AtomicBool,
    leader: Mutex<Option<LeaderInfo>>,
    applied_seq: AtomicU64,
    stream_seq: AtomicU64,
    executed_seq: AtomicU64,
    promotion: Mutex<Option<Promotion>>,
}

/// How this node last became the leader (`last_promotion` of `GET /v1/admin/cluster`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// The seq the node started serving at.
    pub head_seq: u64,
    /// Records re-executed between taking the lease and serving: the tail its live desk had not reached, or
    /// every record after the newest snapshot when it had to recover from its files.
    pub replayed_records: u64,
    /// Whether the standby's live desk was handed over (false: a recovery from snapshot and journal).
    pub live_state: bool,
    /// From taking the lease to the desk ready to serve.
    pub elapsed_ms: u64,
}

/// `GET /v1/admin/cluster`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub node_id: String,
    pub role: Role,
    /// The leader's node id and advertised address, `null` while no node holds the lease.
    pub leader: Option<LeaderInfo>,
    /// The newest record this node has in its own journal (durable there).
    pub applied_seq: u64,
    /// The newest record of the replicated journal this node has seen.
    pub stream_seq: u64,
    /// `stream_seq - applied_seq`.
    pub lag_records: u64,
    /// The newest record re-executed into this node's desk state (the leader's: `applied_seq`; a standby's
    /// follower trails its journal copy by at most a fraction of a second).
    pub executed_seq: u64,
    /// How this node last took over, `null` if it never has since it started.
    pub last_promotion: Option<Promotion>,
}

impl ClusterStatus {
    pub fn new(node_id: String, advertise: String) -> Self {
        Self {
            node_id,
            advertise,
            leader_role: AtomicBool::new(false),
            leader: Mutex::new(None),
            applied_seq: AtomicU64::new(0),
            stream_seq: AtomicU64::new(0),
            executed_seq: AtomicU64::new(0),
            promotion: Mutex::new(None),
        }
    }

    pub fn role(&self) -> Role {
        if self.leader_role.load(Ordering::Acquire) {
            Role::Leader
        } else {
            Role::Standby
        }
    }

    pub fn set_role(&self, role: Role) {
        self.leader_role.store(role == Role::Leader, Ordering::Release);
        if role == Role::Leader {
            *self.leader.lock() = Some(LeaderInfo { node_id: self.node_id.clone(), advertise: self.advertise.clone() });
        }
    }

    pub fn leader(&self) -> Option<LeaderInfo> {
        self.leader.lock().clone()
    }

    pub fn set_leader(&self, leader: Option<LeaderInfo>) {
        *self.leader.lock() = leader;
    }

    pub fn set_applied_seq(&self, seq: u64) {
        self.applied_seq.store(seq, Ordering::Release);
        self.stream_seq.fetch_max(seq, Ordering::AcqRel);
    }

    /// The newest record durable in this node's own journal.
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// The newest record re-executed into a standby's live desk.
    pub fn executed_seq(&self) -> u64 {
        self.executed_seq.load(Ordering::Acquire)
    }

    pub fn set_executed_seq(&self, seq: u64) {
        self.executed_seq.store(seq, Ordering::Release);
    }

    pub fn set_promotion(&self, promotion: Promotion) {
        *self.promotion.lock() = Some(promotion);
    }

    pub fn set_stream_seq(&self, seq: u64) {
        self.stream_seq.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn view(&self) -> ClusterView {
        let applied_seq = self.applied_seq.load(Ordering::Acquire);
        let stream_seq = self.stream_seq.load(Ordering::Acquire).max(applied_seq);
        let role = self.role();
        let executed_seq = match role {
            Role::Leader => applied_seq,
            Role::Standby => self.executed_seq(),
        };
        ClusterView {
            node_id: self.node_id.clone(),
            role,
            leader: self.leader(),
            applied_seq,
            stream_seq,
            lag_records: stream_seq - applied_seq,
            executed_seq,
            last_promotion: self.promotion.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_names_itself_and_lag_is_never_negative() {
        let status = ClusterStatus::new("a".into(), "http://127.0.0.1:1".into());
        status.set_stream_seq(10);
        status.set_applied_seq(7);
        status.set_executed_seq(6);
        assert_eq!(status.view().lag_records, 3);
        assert_eq!(status.view().role, Role::Standby);
        assert_eq!(status.view().executed_seq, 6, "a standby's live desk trails its journal copy");
        status.set_role(Role::Leader);
        status.set_applied_seq(12);
        let view = status.view();
        assert_eq!((view.role, view.stream_seq, view.lag_records, view.executed_seq), (Role::Leader, 12, 0, 12));
        assert_eq!(view.leader.unwrap().node_id, "a");
    }
}
