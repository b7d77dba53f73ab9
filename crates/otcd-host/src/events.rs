//! The event feed: client-visible changes, published only after the records they come from are durable.
//!
//! The engine thread derives each record's events once, when it executes the record
//! (`Desk::execute_with_events`: a deterministic function of the record and the state before it, so re-executing
//! the journal yields the same events). They travel with the record to the journal thread, which hands them to
//! this hub after the group's sync succeeded and before it releases any reply of that group. So a subscriber
//! sees an event only for a change a crash cannot undo, in seq order, once; nothing else in the desk publishes.
//!
//! Subscribers are either one client's (the WebSocket stream of that client, later its FIX drop copy) or the
//! whole desk's (webhooks, an external event stream). Each has its own bounded queue. Publishing never waits: a
//! subscriber whose queue is full is dropped, and its next `recv` says it fell behind (it missed events, so it
//! must not go on as if it had them all; the stream closes the connection as a slow consumer).
//!
//! Resume: the hub keeps the most recent events in a ring bounded by events and by estimated bytes
//! ([`Retention`]), so a subscriber that reconnects with the last seq it processed gets what it missed and then
//! the live events, with no gap and no duplicate: the backlog is copied and the subscriber registered under the
//! lock `publish` takes. Everything after `floor_seq` is in the ring; a resume from before it is refused
//! ([`Resume::TooOld`]). While the hub retains, the engine derives every record's events (`has_subscribers`).
//! After a restart the ring holds the events recovery re-derived from the records it replayed after the
//! newest snapshot ([`EventHub::start_at`]).

use otcd_core::engine::events::{DeskEvent, EventScope};
use otcd_core::ids::ClientId;
use otcd_core::time::TimestampMs;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events waiting for one subscriber; a subscriber further behind is dropped.
pub const SUBSCRIBER_QUEUE_DEFAULT: usize = 4_096;
/// Subscribers at once (stream connections are bounded per key before this).
pub const SUBSCRIBERS_MAX: usize = 65_536;

/// Default bounds of the resume ring: about the last 100k events, at most 64 MiB (estimated).
pub const RETAINED_EVENTS_DEFAULT: usize = 100_000;
pub const RETAINED_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Hard ceilings on what a configuration may ask for.
pub const RETAINED_EVENTS_MAX: usize = 10_000_000;
pub const RETAINED_BYTES_MAX: usize = 4 * 1024 * 1024 * 1024;

/// How many recent events the hub keeps for resuming subscribers (`events_max == 0`: none, no resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events_max: usize,
    /// Estimated heap and inline bytes of the retained events ([`estimated_bytes`]).
    pub bytes_max: usize,
}

impl Retention {
    pub const NONE: Retention = Retention { events_max: 0, bytes_max: 0 };
    pub const DEFAULT: Retention = Retention { events_max: RETAINED_EVENTS_DEFAULT, bytes_max: RETAINED_BYTES_DEFAULT };

    fn enabled(&self) -> bool {
        self.events_max > 0 && self.bytes_max > 0
    }
}

/// What a subscription that asked to resume gets besides the live events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Every retained event the filter selects with a seq above the one asked for, in order; live events follow.
    Backlog(Vec<Arc<SequencedEvent>>),
    /// The events after the asked seq are no longer (or not) all retained: only resuming from `oldest_seq` or
    /// later is possible. Live events follow; the subscriber must re-read its state.
    TooOld { oldest_seq: u64 },
}

/// One event and the journal record it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedEvent {
    /// The record's seq: events of one record share it, and they arrive in seq order.
    pub seq: u64,
    /// The record's time.
    pub at: TimestampMs,
    pub event: DeskEvent,
}

/// The events of one executed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEvents {
    pub seq: u64,
    pub at: TimestampMs,
    pub events: Vec<DeskEvent>,
}

/// Whose events a subscriber gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    Client(ClientId),
    /// Every event of the desk.
    All,
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionEnded {
    #[error("the subscriber fell behind and missed events")]
    FellBehind,
    #[error("the event feed closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event feed has the maximum number of subscribers")]
pub struct TooManySubscribers;

struct Subscriber {
    id: u64,
    sender: mpsc::Sender<Arc<SequencedEvent>>,
    fell_behind: Arc<AtomicBool>,
}

#[derive(Default)]
struct Subscribers {
    by_client: HashMap<ClientId, Vec<Subscriber>>,
    all: Vec<Subscriber>,
    count: usize,
    retained: Retained,
}

/// The resume ring: every published event with a seq above `floor_seq`, oldest first.
#[derive(Default)]
struct Retained {
    events: VecDeque<Arc<SequencedEvent>>,
    bytes: usize,
    /// Events with this seq or lower may be missing from the ring.
    floor_seq: u64,
    /// The newest seq whose events were published (or the durable seq the hub started at).
    published_seq: u64,
    limits: Option<Retention>,
}

impl Retained {
    fn push(&mut self, event: &Arc<SequencedEvent>) {
        let Some(limits) = self.limits else { return };
        self.bytes += estimated_bytes(event);
        self.events.push_back(event.clone());
        while self.events.len() > limits.events_max || self.bytes > limits.bytes_max {
            let Some(evicted) = self.events.pop_front() else { break };
            self.bytes -= estimated_bytes(&evicted);
            self.floor_seq = self.floor_seq.max(evicted.seq);
        }
    }

    fn resume(&self, after_seq: u64, filter: &EventFilter) -> Resume {
        if self.limits.is_none() || after_seq < self.floor_seq || after_seq > self.published_seq {
            return Resume::TooOld { oldest_seq: self.floor_seq };
        }
        // The ring is in seq order: find the first event after `after_seq` by bisection, then filter the rest.
        let start = self.events.partition_point(|event| event.seq <= after_seq);
        let selected = self.events.range(start..).filter(|event| filter.selects(&event.event)).cloned().collect();
        Resume::Backlog(selected)
    }
}

/// An estimate of the memory one retained event holds (inline size plus its largest heap parts), for the byte
/// bound of the ring: exact accounting of every string would cost more than the bound is worth.
pub fn estimated_bytes(event: &SequencedEvent) -> usize {
    const STRING_BYTES_ESTIMATE: usize = 32;
    let inline = std::mem::size_of::<SequencedEvent>() + std::mem::size_of::<Arc<SequencedEvent>>();
    let heap = match &event.event {
        DeskEvent::Order(order) => {
            let trades = order.trades.len()
                * (std::mem::size_of::<otcd_core::engine::orders::Trade>() + 4 * STRING_BYTES_ESTIMATE);
            trades + order.order.trade_ids.len() * STRING_BYTES_ESTIMATE + 8 * STRING_BYTES_ESTIMATE
        }
        _ => 8 * STRING_BYTES_ESTIMATE,
    };
    inline + heap
}

impl EventFilter {
    fn selects(&self, event: &DeskEvent) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Client(client_id) => event.client_id() == Some(client_id),
        }
    }
}

struct HubInner {
    subscribers: Mutex<Subscribers>,
    /// `subscribers.count`, readable without the lock (the engine thread asks it per command).
    subscriber_count: AtomicUsize,
    /// Whether the hub keeps a resume ring (then every record's events are wanted).
    retains: bool,
    /// Which events the engine derives for this feed: desk-level ledger transactions only when a consumer that
    /// books them (the external event stream) is configured, so they never take resume-ring slots otherwise.
    scope: EventScope,
    next_id: AtomicU64,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// The publishing and subscribing side of the feed; cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

impl EventHub {
    pub fn new(metrics: Option<Arc<crate::metrics::Metrics>>) -> Self {
        Self::with_retention(metrics, Retention::NONE)
    }

    /// A hub that keeps recent events for resuming subscribers, within `retention` (clamped to the ceilings), and
    /// carries the client-visible events only.
    pub fn with_retention(metrics: Option<Arc<crate::metrics::Metrics>>, retention: Retention) -> Self {
        Self::with_scope(metrics, retention, EventScope::CLIENT_VISIBLE)
    }

    /// [`EventHub::with_retention`], carrying the events of `scope` ([`EventScope::ALL`] when a desk-wide
    /// consumer books ledger transactions).
    pub fn with_scope(metrics: Option<Arc<crate::metrics::Metrics>>, retention: Retention, scope: EventScope) -> Self {
        let retention = Retention {
            events_max: retention.events_max.min(RETAINED_EVENTS_MAX),
            bytes_max: retention.bytes_max.min(RETAINED_BYTES_MAX),
        };
        let retained = Retained { limits: retention.enabled().then_some(retention), ..Retained::default() };
        let retains = retained.limits.is_some();
        let inner = HubInner {
            subscribers: Mutex::new(Subscribers { retained, ..Subscribers::default() }),
            retains,
            scope,
            subscriber_count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            metrics,
        };
        Self { inner: Arc::new(inner) }
    }

    /// Where the feed starts after recovery: `durable_seq` is the journal's head, and `replayed` the events
    /// recovery re-derived from the records it replayed (in seq order; all of them after `floor_seq`, the
    /// snapshot's seq). Called once, before anything is published.
    pub fn start_at(&self, floor_seq: u64, durable_seq: u64, replayed: Vec<RecordEvents>) {
        let mut subscribers = self.inner.subscribers.lock();
        let retained = &mut subscribers.retained;
        assert!(retained.events.is_empty() && retained.published_seq == 0, "the feed starts once, before publishing");
        assert!(floor_seq <= durable_seq);
        retained.floor_seq = floor_seq;
        retained.published_seq = durable_seq;
        for RecordEvents { seq, at, events } in replayed {
            assert!(seq > floor_seq && seq <= durable_seq, "replayed events lie between the snapshot and the head");
            for event in events {
                retained.push(&Arc::new(SequencedEvent { seq, at, event }));
            }
        }
    }

    /// The newest seq whose events were published (what a subscriber registered now has seen everything up to).
    pub fn published_seq(&self) -> u64 {
        self.inner.subscribers.lock().retained.published_seq
    }

    /// A new subscription; it receives every event published from now on that `filter` selects.
    pub fn subscribe(&self, filter: EventFilter, queue: usize) -> Result<EventSubscription, TooManySubscribers> {
        self.subscribe_from(filter, queue, None).map(|(subscription, _, _)| subscription)
    }

    /// A new subscription, and when `resume_after` is given, the retained events after that seq which it
    /// missed (or why they cannot be given), and the published seq at registration. The backlog and the live
    /// events join without a gap or a duplicate: both are decided under the lock `publish` takes.
    pub fn subscribe_from(
        &self,
        filter: EventFilter,
        queue: usize,
        resume_after: Option<u64>,
    ) -> Result<(EventSubscription, Option<Resume>, u64), TooManySubscribers> {
        let mut subscribers = self.inner.subscribers.lock();
        if subscribers.count >= SUBSCRIBERS_MAX {
            return Err(TooManySubscribers);
        }
        let resume = resume_after.map(|after_seq| subscribers.retained.resume(after_seq, &filter));
        let published_seq = subscribers.retained.published_seq;
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let fell_behind = Arc::new(AtomicBool::new(false));
        let subscriber = Subscriber { id, sender, fell_behind: fell_behind.clone() };
        match &filter {
            EventFilter::Client(client_id) => {
                subscribers.by_client.entry(client_id.clone()).or_default().push(subscriber)
            }
            EventFilter::All => subscribers.all.push(subscriber),
        }
        subscribers.count += 1;
        self.inner.subscriber_count.store(subscribers.count, Ordering::Release);
        let subscription = EventSubscription { receiver, fell_behind, id, filter, hub: Arc::downgrade(&self.inner) };
        Ok((subscription, resume, published_seq))
    }

    /// Hands the events of durable records to their subscribers, in order. Called by the journal thread after a
    /// successful sync; never waits. The events are moved, not copied: each becomes one shared `Arc` that every
    /// subscriber it is for receives.
    pub fn publish(&self, records: Vec<RecordEvents>) {
        if records.is_empty() {
            return;
        }
        let mut subscribers = self.inner.subscribers.lock();
        let mut published = 0u64;
        for RecordEvents { seq, at, events } in records {
            debug_assert!(seq > subscribers.retained.published_seq, "records are published once, in seq order");
            subscribers.retained.published_seq = subscribers.retained.published_seq.max(seq);
            for event in events {
                debug_assert!(self.inner.scope.includes(&event), "the engine derives the feed's scope only");
                let retains = self.inner.retains;
                if retains || subscribers.wants(&event) {
                    let event = Arc::new(SequencedEvent { seq, at, event });
                    if subscribers.wants(&event.event) {
                        subscribers.deliver(&event, self.inner.metrics.as_deref());
                    }
                    subscribers.retained.push(&event);
                }
                published += 1;
            }
        }
        self.inner.subscriber_count.store(subscribers.count, Ordering::Release);
        if let Some(metrics) = &self.inner.metrics {
            metrics.events_published.inc_by(published);
        }
    }

    /// Whether anybody listens. The engine thread derives a record's events only then: a subscription receives
    /// the events of the records executed after it was registered.
    pub fn has_subscribers(&self) -> bool {
        self.inner.retains || self.inner.subscriber_count.load(Ordering::Acquire) > 0
    }

    /// Which events the engine derives for this feed.
    pub fn scope(&self) -> EventScope {
        self.inner.scope
    }

    pub fn subscriber_count(&self) -> usize {
        self.inner.subscriber_count.load(Ordering::Acquire)
    }
}

impl Subscribers {
    fn wants(&self, event: &DeskEvent) -> bool {
        !self.all.is_empty() || event.client_id().is_some_and(|client_id| self.by_client.contains_key(client_id))
    }

    fn deliver(&mut self, event: &Arc<SequencedEvent>, metrics: Option<&crate::metrics::Metrics>) {
        let mut dropped = 0;
        if let Some(client_id) = event.event.client_id() {
            if let Some(list) = self.by_client.get_mut(client_id) {
                dropped += offer(list, event);
                if list.is_empty() {
                    self.by_client.remove(client_id);
                }
            }
        }
        dropped += offer(&mut self.all, event);
        self.count -= dropped;
        if let (Some(metrics), true) = (metrics, dropped > 0) {
            metrics.event_subscribers_dropped.inc_by(dropped as u64);
        }
    }

    fn remove(&mut self, id: u64, filter: &EventFilter) {
        let list = match filter {
            EventFilter::Client(client_id) => self.by_client.get_mut(client_id),
            EventFilter::All => Some(&mut self.all),
        };
        let Some(list) = list else { return };
        let before = list.len();
        list.retain(|subscriber| subscriber.id != id);
        self.count -= before - list.len();
        if let EventFilter::Client(client_id) = filter {
            if self.by_client.get(client_id).is_some_and(Vec::is_empty) {
                self.by_client.remove(client_id);
            }
        }
    }
}

/// Offers `event` to every subscriber of `list`; drops (and counts) those whose queue is full or gone.
fn offer(list: &mut Vec<Subscriber>, event: &Arc<SequencedEvent>) -> usize {
    let before = list.len();
    list.retain(|subscriber| match subscriber.sender.try_send(event.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            subscriber.fell_behind.store(true, Ordering::Release);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    before - list.len()
}

/// The receiving side of one subscriber; unsubscribes when dropped.
pub struct EventSubscription {
    receiver: mpsc::Receiver<Arc<SequencedEvent>>,
    fell_behind: Arc<AtomicBool>,
    id: u64,
    filter: EventFilter,
    hub: std::sync::Weak<HubInner>,
}

impl EventSubscription {
    /// The next event, or why there will be none.
    pub async fn recv(&mut self) -> Result<Arc<SequencedEvent>, SubscriptionEnded> {
        match self.receiver.recv().await {
            Some(event) => Ok(event),
            None if self.fell_behind.load(Ordering::Acquire) => Err(SubscriptionEnded::FellBehind),
            None => Err(SubscriptionEnded::Closed),
        }
    }

    /// The next event if one is queued now (tests and batch consumers).
    pub fn try_recv(&mut self) -> Option<Arc<SequencedEvent>> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut subscribers = hub.subscribers.lock();
            subscribers.remove(self.id, &self.filter);
            hub.subscriber_count.store(subscribers.count, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otcd_core::catalog::AssetCode;
    use otcd_core::engine::events::BalanceEvent;

    fn balance(client: &str, available: i128) -> DeskEvent {
        DeskEvent::Balance(BalanceEvent {
            client_id: ClientId::parse(client).unwrap(),
            asset: AssetCode::parse("USD").unwrap(),
            available,
            reserved: 0,
        })
    }

    fn record(seq: u64, events: Vec<DeskEvent>) -> RecordEvents {
        RecordEvents { seq, at: TimestampMs(seq as i64), events }
    }

    #[tokio::test]
    async fn a_client_gets_its_own_events_in_order_and_the_desk_gets_all() {
        let hub = EventHub::new(None);
        let mut own = hub.subscribe(EventFilter::Client(ClientId::parse("cl_00000001").unwrap()), 16).unwrap();
        let mut all = hub.subscribe(EventFilter::All, 16).unwrap();
        hub.publish(vec![
            record(1, vec![balance("cl_00000001", 5)]),
            record(2, vec![balance("cl_00000002", 7), balance("cl_00000001", 6)]),
        ]);
        let seqs = |subscription: &mut EventSubscription| {
            std::iter::from_fn(|| subscription.try_recv()).map(|event| event.seq).collect::<Vec<_>>()
        };
        assert_eq!(seqs(&mut own), [1, 2]);
        assert_eq!(seqs(&mut all), [1, 2, 2]);
        assert_eq!(hub.subscriber_count(), 2);
        drop(own);
        assert_eq!(hub.subscriber_count(), 1, "a dropped subscription unsubscribes");
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_dropped_and_told_so() {
        let hub = EventHub::new(None);
        let mut slow = hub.subscribe(EventFilter::All, 2).unwrap();
        let mut fast = hub.subscribe(EventFilter::All, 16).unwrap();
        hub.publish(vec![record(
            1,
            vec![balance("cl_00000001", 1), balance("cl_00000001", 2), balance("cl_00000001", 3)],
        )]);
        assert_eq!(hub.subscriber_count(), 1);
        assert!(slow.recv().await.is_ok());
        assert!(slow.recv().await.is_ok());
        assert_eq!(slow.recv().await, Err(SubscriptionEnded::FellBehind));
        for _ in 0..3 {
            assert!(fast.recv().await.is_ok());
        }
        drop(hub);
        assert_eq!(fast.recv().await, Err(SubscriptionEnded::Closed));
    }

    fn seqs_of(resume: Option<Resume>) -> Vec<u64> {
        match resume {
            Some(Resume::Backlog(events)) => events.iter().map(|event| event.seq).collect(),
            other => panic!("expected a backlog, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_resumed_subscription_gets_what_it_missed_then_live_events_without_gap_or_duplicate() {
        let hub = EventHub::with_retention(None, Retention::DEFAULT);
        hub.start_at(0, 0, Vec::new());
        let client = || EventFilter::Client(ClientId::parse("cl_00000001").unwrap());
        hub.publish(vec![
            record(1, vec![balance("cl_00000001", 1)]),
            record(2, vec![balance("cl_00000002", 2)]),
            record(3, vec![balance("cl_00000001", 3), balance("cl_00000001", 4)]),
        ]);
        let (mut live, resume, published) = hub.subscribe_from(client(), 16, Some(1)).unwrap();
        assert_eq!(published, 3);
        assert_eq!(seqs_of(resume), [3, 3], "only the client's events after seq 1");
        hub.publish(vec![record(4, vec![balance("cl_00000001", 5)])]);
        assert_eq!(live.try_recv().map(|event| event.seq), Some(4));
        assert!(live.try_recv().is_none());
        let (_, resume, _) = hub.subscribe_from(client(), 16, Some(4)).unwrap();
        assert_eq!(seqs_of(resume), Vec::<u64>::new(), "up to date: nothing missed");
        let (_, resume, _) = hub.subscribe_from(client(), 16, Some(9)).unwrap();
        assert_eq!(resume, Some(Resume::TooOld { oldest_seq: 0 }), "a seq the desk never published");
    }

    #[tokio::test]
    async fn the_ring_is_bounded_and_refuses_resumes_from_before_what_it_keeps() {
        let hub = EventHub::with_retention(None, Retention { events_max: 3, bytes_max: usize::MAX });
        hub.start_at(10, 12, vec![record(11, vec![balance("cl_00000001", 1)]), record(12, vec![])]);
        let (_, resume, _) = hub.subscribe_from(EventFilter::All, 16, Some(9)).unwrap();
        assert_eq!(resume, Some(Resume::TooOld { oldest_seq: 10 }), "before the snapshot recovery started from");
        let (_, resume, _) = hub.subscribe_from(EventFilter::All, 16, Some(10)).unwrap();
        assert_eq!(seqs_of(resume), [11]);
        hub.publish((13..=15).map(|seq| record(seq, vec![balance("cl_00000001", seq as i128)])).collect());
        let (_, resume, _) = hub.subscribe_from(EventFilter::All, 16, Some(10)).unwrap();
        assert_eq!(resume, Some(Resume::TooOld { oldest_seq: 11 }), "seq 11 was evicted");
        let (_, resume, _) = hub.subscribe_from(EventFilter::All, 16, Some(11)).unwrap();
        assert_eq!(seqs_of(resume), [13, 14, 15], "record 12 had no events");
        let without = EventHub::new(None);
        assert!(!without.has_subscribers() && hub.has_subscribers(), "a retaining hub wants every event");
        let (_, resume, _) = without.subscribe_from(EventFilter::All, 16, Some(0)).unwrap();
        assert_eq!(resume, Some(Resume::TooOld { oldest_seq: 0 }), "no ring, no resume");
    }
}
