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

use otcd_core::engine::events::DeskEvent;
use otcd_core::ids::ClientId;
use otcd_core::time::TimestampMs;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events waiting for one subscriber; a subscriber further behind is dropped.
pub const SUBSCRIBER_QUEUE_DEFAULT: usize = 4_096;
/// Subscribers at once (stream connections are bounded per key before this).
pub const SUBSCRIBERS_MAX: usize = 65_536;

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
}

struct HubInner {
    subscribers: Mutex<Subscribers>,
    /// `subscribers.count`, readable without the lock (the engine thread asks it per command).
    subscriber_count: AtomicUsize,
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
        let inner = HubInner {
            subscribers: Mutex::new(Subscribers::default()),
            subscriber_count: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            metrics,
        };
        Self { inner: Arc::new(inner) }
    }

    /// A new subscription; it receives every event published from now on that `filter` selects.
    pub fn subscribe(&self, filter: EventFilter, queue: usize) -> Result<EventSubscription, TooManySubscribers> {
        let mut subscribers = self.inner.subscribers.lock();
        if subscribers.count >= SUBSCRIBERS_MAX {
            return Err(TooManySubscribers);
        }
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
        Ok(EventSubscription { receiver, fell_behind, id, filter, hub: Arc::downgrade(&self.inner) })
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
            for event in events {
                if subscribers.wants(&event) {
                    subscribers.deliver(&Arc::new(SequencedEvent { seq, at, event }), self.inner.metrics.as_deref());
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
        self.inner.subscriber_count.load(Ordering::Acquire) > 0
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
}
