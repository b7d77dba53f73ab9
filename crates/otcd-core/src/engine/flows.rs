//! Each client's flows as the AML rules see them: its deposits in time order, the deposits inside the current
//! structuring band and window (a queue with expiry at the front), and when each kind of alert was last raised
//! for it. With these, a rule's work per command depends on the rule's thresholds and on the client's own
//! activity inside the window, never on the desk's history or on other clients (before this, every deposit
//! walked back over up to 10,000 deposits of every client, and silently stopped at that cap: issue #16).
//!
//! All of it is derived: rebuilt from the desk's deposits and alerts after a snapshot is loaded (and so never in
//! a snapshot), and changed only by journaled commands, so replay, the snapshot follower and a restored desk hold
//! the same state. The structuring queue is a pure function of the client's deposits, the band in force and the
//! time of the last check: a queue built for another band (the rules changed, or nothing was built since a
//! snapshot was loaded) is rebuilt from the client's deposits inside the window at its next deposit.

use super::alerts::{Alert, AlertKind};
use super::model::Deposit;
use crate::chunked_vec::ChunkedVec;
use crate::ids::ClientId;
use crate::time::TimestampMs;
use std::collections::{HashMap, VecDeque};

/// Positions per chunk of a client's deposit list: small, because a desk holds many clients and most deposit
/// rarely (a chunk is allocated whole).
const CLIENT_CHUNK_LEN: usize = 256;

/// The structuring rule's band: deposits worth at least `floor_usd` and below `threshold_usd` (USD cents),
/// counted over `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructuringBand {
    pub floor_usd: i128,
    pub threshold_usd: i128,
    pub window_ms: i64,
}

impl StructuringBand {
    fn contains(&self, deposit: &Deposit) -> bool {
        deposit.notional_usd.is_some_and(|usd| usd >= self.floor_usd && usd < self.threshold_usd)
    }
}

/// A client's deposits inside the band and the window, oldest first, as of its last deposit.
#[derive(Debug, Clone, Default)]
struct NearThreshold {
    /// The band the queue was built for; `None` until the first check after a load.
    band: Option<StructuringBand>,
    /// Positions in the desk's deposit history.
    positions: VecDeque<usize>,
}

#[derive(Debug, Clone, Default)]
struct ClientFlows {
    /// Positions of the client's deposits in the desk's deposit history, oldest first (times never decrease).
    deposits: ChunkedVec<usize, CLIENT_CHUNK_LEN>,
    near_threshold: NearThreshold,
    /// The time of the newest alert of each kind raised for the client (a handful of kinds: a list).
    last_alert_at: Vec<(AlertKind, TimestampMs)>,
}

/// Every client's flows (clients without deposits or alerts have no entry).
#[derive(Debug, Clone, Default)]
pub struct FlowsIndex {
    by_client: HashMap<ClientId, ClientFlows>,
}

impl FlowsIndex {
    /// Rebuilds the index from the desk's histories (after a snapshot is loaded). Structuring queues are built
    /// at each client's next deposit.
    pub fn rebuild(&mut self, deposits: &ChunkedVec<Deposit>, alerts: &[Alert]) {
        self.by_client.clear();
        for (position, deposit) in deposits.iter().enumerate() {
            self.record_deposit(position, deposit);
        }
        for alert in alerts {
            if let Some(client_id) = &alert.client_id {
                self.record_alert(client_id, alert.kind, alert.created_at);
            }
        }
    }

    /// Records the deposit at `position` of the desk's history (the newest).
    pub fn record_deposit(&mut self, position: usize, deposit: &Deposit) {
        let flows = self.by_client.entry(deposit.client_id.clone()).or_default();
        debug_assert!(flows.deposits.last().is_none_or(|last| *last < position), "deposits are recorded in order");
        flows.deposits.push(position);
    }

    /// Brings the client's structuring queue up to date after its deposit at `position` (already recorded) was
    /// made at `at`: its deposits inside `band` within `band.window_ms` before `at`. Returns how many there are.
    pub fn near_threshold_after_deposit(
        &mut self,
        deposits: &ChunkedVec<Deposit>,
        position: usize,
        band: StructuringBand,
        at: TimestampMs,
    ) -> usize {
        let deposit = &deposits[position];
        let flows = self.by_client.get_mut(&deposit.client_id).expect("the deposit was recorded");
        debug_assert_eq!(flows.deposits.last(), Some(&position), "the newest deposit is the client's last");
        let since = at.0 - band.window_ms;
        let near = &mut flows.near_threshold;
        if near.band == Some(band) {
            if band.contains(deposit) {
                near.positions.push_back(position);
            }
            // The engine's time never goes back, so a deposit that left the window never comes back into it.
            while near.positions.front().is_some_and(|oldest| deposits[*oldest].created_at.0 < since) {
                near.positions.pop_front();
            }
        } else {
            let count = flows.deposits.len();
            let first = flows.deposits.partition_point_in(0..count, |each| deposits[*each].created_at.0 < since);
            near.positions.clear();
            near.positions
                .extend(flows.deposits.range(first..count).copied().filter(|each| band.contains(&deposits[*each])));
            near.band = Some(band);
        }
        near.positions.len()
    }

    /// Positions of the client's deposits in its structuring queue as of its last deposit, oldest first.
    pub fn near_threshold(&self, client_id: &ClientId) -> impl DoubleEndedIterator<Item = usize> + '_ {
        self.by_client.get(client_id).into_iter().flat_map(|flows| flows.near_threshold.positions.iter().copied())
    }

    /// The position of the client's newest deposit.
    pub fn last_deposit(&self, client_id: &ClientId) -> Option<usize> {
        self.by_client.get(client_id).and_then(|flows| flows.deposits.last().copied())
    }

    pub fn record_alert(&mut self, client_id: &ClientId, kind: AlertKind, at: TimestampMs) {
        let last_alert_at = &mut self.by_client.entry(client_id.clone()).or_default().last_alert_at;
        match last_alert_at.iter_mut().find(|(each, _)| *each == kind) {
            Some((_, last)) => *last = (*last).max(at),
            None => last_alert_at.push((kind, at)),
        }
    }

    /// Whether an alert of `kind` was raised for the client at or after `since`.
    pub fn alerted_since(&self, client_id: &ClientId, kind: AlertKind, since: i64) -> bool {
        self.by_client
            .get(client_id)
            .is_some_and(|flows| flows.last_alert_at.iter().any(|(each, at)| *each == kind && at.0 >= since))
    }
}
