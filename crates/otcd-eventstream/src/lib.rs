//! The desk's event stream for downstream systems: every durable event (orders, trades, ledger transactions,
//! balances, withdrawals, settlement instructions, alerts) published to a NATS JetStream stream, one message
//! per event, on `<prefix>.<type>` (default `otcd.events.trade`, ...), in journal seq order.
//!
//! Exactly once into the stream: each message carries its journal position, `Otcd-Seq` (the record's seq) and
//! `Otcd-Index` (the event's place among that record's events), and `Nats-Msg-Id: <seq>-<index>`. On every
//! (re)start the publisher reads the stream's last message and resumes from the event after it, through the
//! event feed's resume ring; JetStream's duplicate window drops a message whose publish was in flight when a
//! connection broke and which is sent again. So a restart of the desk, a lost connection or a failover (the new
//! leader resumes from the same stream) neither skips nor repeats an event, within the ring (below).
//!
//! Source: the host's event feed (`EventFilter::All`), which hands out events only after their records are
//! durable; the publisher never sees anything a crash could undo.
//!
//! Limit (documented in docs/events.md): the resume ring holds the most recent events (100,000 by default,
//! `stream_resume_events`), and after a restart the events of the records replayed since the newest snapshot.
//! A publisher further behind than that (NATS unreachable for a long time) cannot republish what the ring no
//! longer holds: it publishes one `gap` message naming the seq range it missed, counts it
//! (`otcd_event_stream_gaps_total`) and goes on with the live events. Consumers treat a gap as "re-read state
//! through the API".
//!
//! Bounds: at most [`Settings::inflight_max`] publishes awaiting their acknowledgement, a subscription queue of
//! [`QUEUE_EVENTS`], reconnects with a backoff capped at [`Settings::backoff_max`].
//!
//! Architecture invariant: this crate depends on the desk services and the host's event feed, never on an edge
//! (`otcd-http`); the binary hands it the renderer of the event objects.

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use otcd_host::events::{EventFilter, EventSubscription, Resume, SequencedEvent, SubscriptionEnded};
use otcd_services::DeskServices;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The version of the message envelope; a change that is not an addition gets a new one.
pub const SCHEMA: &str = "otcd.event.v1";
/// Header: the journal seq of the record the event comes from.
pub const HEADER_SEQ: &str = "Otcd-Seq";
/// Header: the event's index among its record's events (0-based).
pub const HEADER_INDEX: &str = "Otcd-Index";
/// Events waiting in the subscription; a publisher further behind is dropped by the hub and resumes.
pub const QUEUE_EVENTS: usize = 65_536;
/// Attempts to join the resume ring before the session gives up and starts over.
const SUBSCRIBE_ATTEMPTS_MAX: usize = 4;
/// Subject token of the gap message.
pub const GAP_TYPE: &str = "gap";

/// What the renderer makes of one event: its type (the subject's last token) and its `data` object.
pub struct Rendered {
    pub event_type: &'static str,
    /// RFC 3339 time of the record.
    pub at: String,
    pub data: Value,
}

/// Renders an event; `None`: not published (none today: every kind has a rendering).
pub type Render = Arc<dyn Fn(&DeskServices, &SequencedEvent) -> Option<Rendered> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// NATS server URLs (`nats://host:port`), any of the cluster's.
    pub servers: Vec<String>,
    /// Subjects are `<subject_prefix>.<type>`.
    pub subject_prefix: String,
    /// The JetStream stream's name; created (subjects `<subject_prefix>.>`) when missing.
    pub stream_name: String,
    /// Replicas of the stream when this publisher creates it (1 to 5).
    pub replicas: usize,
    /// JetStream's duplicate window: a message id seen within it is stored once.
    pub duplicate_window: Duration,
    /// Publishes awaiting their acknowledgement at once.
    pub inflight_max: usize,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            servers: vec!["nats://127.0.0.1:4222".to_owned()],
            subject_prefix: "otcd.events".to_owned(),
            stream_name: "OTCD_EVENTS".to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            inflight_max: 1_024,
            backoff_first: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("event stream: at least one NATS server URL is needed")]
    NoServers,
    #[error("event stream: {0}")]
    ServerUrl(String),
    #[error("event stream: subject prefix {0:?} must be dot-separated tokens without spaces or wildcards")]
    SubjectPrefix(String),
    #[error("event stream: stream name {0:?} must be 1 to 64 letters, digits, '-' or '_'")]
    StreamName(String),
    #[error("event stream: replicas must be 1 to 5, got {0}")]
    Replicas(usize),
}

impl Settings {
    /// The servers as the client connects to them (one list: the client fails over between them).
    fn server_addresses(&self) -> Result<Vec<async_nats::ServerAddr>, String> {
        let parse = |url: &String| {
            url.trim().parse::<async_nats::ServerAddr>().map_err(|error| format!("NATS server URL {url:?}: {error}"))
        };
        self.servers.iter().map(parse).collect()
    }

    /// Checks what an operator wrote, before anything starts.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.servers.is_empty() {
            return Err(SettingsError::NoServers);
        }
        self.server_addresses().map_err(SettingsError::ServerUrl)?;
        let token_ok =
            |token: &str| !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if self.subject_prefix.len() > 128 || !self.subject_prefix.split('.').all(token_ok) {
            return Err(SettingsError::SubjectPrefix(self.subject_prefix.clone()));
        }
        if self.stream_name.len() > 64 || !token_ok(&self.stream_name) {
            return Err(SettingsError::StreamName(self.stream_name.clone()));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(SettingsError::Replicas(self.replicas));
        }
        Ok(())
    }
}

/// A journal position: the record's seq and the event's index among its events. Ordered as the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub seq: u64,
    pub index: u32,
}

impl Position {
    /// The index of a gap message: after every event of its seq.
    pub const GAP_INDEX: u32 = u32::MAX;

    /// The seq to resume the event feed after: the record before this one (its later events are still to come),
    /// or this one when the position closes its record (a gap).
    fn resume_after_seq(self) -> u64 {
        if self.index == Self::GAP_INDEX {
            self.seq
        } else {
            self.seq.saturating_sub(1)
        }
    }

    /// The message id JetStream deduplicates on.
    pub fn message_id(self) -> String {
        format!("{}-{}", self.seq, self.index)
    }
}

/// The publisher's metrics (registered in the desk's registry as `otcd_event_stream_*`).
#[derive(Clone, Default)]
struct StreamMetrics {
    published: Counter,
    gaps: Counter,
    reconnects: Counter,
    /// The journal seq of the newest event acknowledged by JetStream.
    acknowledged_seq: Gauge,
    connected: Gauge,
}

impl StreamMetrics {
    fn register(desk: &DeskServices) -> Self {
        let metrics = Self::default();
        let registry = &desk.metrics;
        registry.register("event_stream_published", "events acknowledged by JetStream", metrics.published.clone());
        registry.register("event_stream_gaps", "gaps: events the resume ring no longer held", metrics.gaps.clone());
        registry.register("event_stream_reconnects", "publisher restarts after an error", metrics.reconnects.clone());
        registry.register(
            "event_stream_acknowledged_seq",
            "journal seq of the newest event JetStream acknowledged",
            metrics.acknowledged_seq.clone(),
        );
        registry.register("event_stream_connected", "1 while the publisher is connected", metrics.connected.clone());
        metrics
    }
}

/// Why one publishing session ended (the worker then reconnects with backoff).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connecting to NATS: {0}")]
    Connect(String),
    #[error("the JetStream stream: {0}")]
    Stream(String),
    #[error("publishing: {0}")]
    Publish(String),
    #[error("the stream's last message has no journal position headers: is another system publishing to it?")]
    ForeignMessage,
    #[error("the publisher fell behind the event feed")]
    FellBehind,
    #[error("the event feed has the maximum number of subscribers")]
    TooManySubscribers,
    #[error(
        "the stream holds events up to seq {stream_seq} but this desk only up to {desk_seq}: another desk's \
        stream, or a desk restored from an older backup"
    )]
    StreamAhead { stream_seq: u64, desk_seq: u64 },
}

/// Starts the publisher: it runs until `stop` turns true or the event feed closes.
pub fn start(
    desk: Arc<DeskServices>,
    render: Render,
    settings: Settings,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // The stream's contract includes every ledger transaction: the feed must derive them (the composition root
    // builds the hub with `EventScope::ALL` when the stream is configured).
    assert!(desk.events.scope().ledger_transactions, "the event stream needs a feed that carries ledger transactions");
    let metrics = StreamMetrics::register(&desk);
    tokio::spawn(run(desk, render, settings, metrics, stop))
}

async fn run(
    desk: Arc<DeskServices>,
    render: Render,
    settings: Settings,
    metrics: StreamMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = settings.backoff_first;
    loop {
        let publisher = Publisher { desk: &desk, render: &render, settings: &settings, metrics: &metrics };
        let outcome = tokio::select! {
            outcome = publisher.session() => outcome,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        metrics.connected.set(0);
        match outcome {
            Ok(()) => return, // the event feed closed: the desk is stopping
            Err(error) => {
                metrics.reconnects.inc();
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "event stream: publisher restarts");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
}

struct Publisher<'a> {
    desk: &'a DeskServices,
    render: &'a Render,
    settings: &'a Settings,
    metrics: &'a StreamMetrics,
}

impl Publisher<'_> {
    /// One connection's life: find where the stream stands, then publish from the event after it.
    async fn session(&self) -> Result<(), SessionError> {
        let servers = self.settings.server_addresses().map_err(SessionError::Connect)?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("otcd-eventstream")
            .connect(servers)
            .await
            .map_err(|error| SessionError::Connect(error.to_string()))?;
        let context = jetstream::new(client);
        let mut stream = context.get_or_create_stream(self.stream_config()).await.map_err(stream_error)?;
        let last = last_position(&mut stream).await?;
        self.metrics.connected.set(1);
        self.metrics.acknowledged_seq.set(i64::try_from(last.seq).unwrap_or(i64::MAX));
        tracing::info!(stream = %self.settings.stream_name, after_seq = last.seq, after_index = last.index,
            "event stream: publishing");
        self.publish_from(&context, last).await
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.settings.stream_name.clone(),
            subjects: vec![format!("{}.>", self.settings.subject_prefix)],
            num_replicas: self.settings.replicas,
            duplicate_window: self.settings.duplicate_window,
            ..Default::default()
        }
    }

    /// Publishes every event after `last`, the retained ones first, then the live ones, until an error.
    async fn publish_from(&self, context: &jetstream::Context, last: Position) -> Result<(), SessionError> {
        let mut sender = Sender::new(context, self.settings.inflight_max, self.metrics);
        let (mut subscription, backlog, last) = self.subscribe_after(&mut sender, last).await?;
        let mut numbering = Numbering::default();
        for event in backlog {
            self.publish_event(&mut sender, &mut numbering, last, &event).await?;
        }
        loop {
            sender.settle_ready().await?;
            let event = tokio::select! {
                received = subscription.recv() => received,
                settled = sender.settle_oldest(), if sender.has_inflight() => { settled?; continue; }
            };
            match event {
                Ok(event) => self.publish_event(&mut sender, &mut numbering, last, &event).await?,
                Err(SubscriptionEnded::FellBehind) => return Err(SessionError::FellBehind),
                Err(SubscriptionEnded::Closed) => return sender.settle_all().await,
            }
        }
    }

    /// A subscription to the events after `last` with the retained ones it missed. When the ring no longer
    /// holds them all, a gap message through the ring's floor is published first and the position moves there.
    async fn subscribe_after(
        &self,
        sender: &mut Sender<'_>,
        mut last: Position,
    ) -> Result<(EventSubscription, Vec<Arc<SequencedEvent>>, Position), SessionError> {
        // Each attempt after a gap starts at the ring's floor, which only moves forward: a few attempts suffice
        // unless the desk evicts faster than this loop runs.
        for _ in 0..SUBSCRIBE_ATTEMPTS_MAX {
            let (subscription, resume, published_seq) = self
                .desk
                .events
                .subscribe_from(EventFilter::All, QUEUE_EVENTS, Some(last.resume_after_seq()))
                .map_err(|_| SessionError::TooManySubscribers)?;
            if last.seq > published_seq {
                return Err(SessionError::StreamAhead { stream_seq: last.seq, desk_seq: published_seq });
            }
            match resume {
                Some(Resume::Backlog(events)) => return Ok((subscription, events, last)),
                Some(Resume::TooOld { oldest_seq }) => {
                    drop(subscription);
                    self.publish_gap(sender, last, oldest_seq).await?;
                    last = Position { seq: oldest_seq, index: Position::GAP_INDEX };
                }
                None => unreachable!("subscribe_from with a resume seq always answers a resume"),
            }
        }
        Err(SessionError::FellBehind)
    }

    async fn publish_event(
        &self,
        sender: &mut Sender<'_>,
        numbering: &mut Numbering,
        last: Position,
        event: &SequencedEvent,
    ) -> Result<(), SessionError> {
        let position = numbering.position_of(event.seq);
        if position <= last {
            return Ok(()); // already in the stream
        }
        let Some(rendered) = (self.render)(self.desk, event) else { return Ok(()) };
        let body = json!({"schema": SCHEMA, "seq": position.seq, "index": position.index,
            "type": rendered.event_type, "at": rendered.at, "data": rendered.data});
        let subject = format!("{}.{}", self.settings.subject_prefix, rendered.event_type);
        sender.send(subject, position, body).await
    }

    async fn publish_gap(&self, sender: &mut Sender<'_>, last: Position, through_seq: u64) -> Result<(), SessionError> {
        self.metrics.gaps.inc();
        tracing::error!(
            after_seq = last.seq,
            through_seq,
            "event stream: the resume ring no longer holds the \
            events after the stream's last message; publishing a gap"
        );
        // Positioned after every event of `through_seq`, so a consumer's position stays monotonic.
        let position = Position { seq: through_seq, index: Position::GAP_INDEX };
        let body = json!({"schema": SCHEMA, "seq": through_seq, "index": position.index, "type": GAP_TYPE,
            "data": {"after_seq": last.seq, "after_index": last.index, "through_seq": through_seq}});
        let subject = format!("{}.{}", self.settings.subject_prefix, GAP_TYPE);
        sender.send(subject, position, body).await?;
        sender.settle_all().await
    }
}

/// Gives each event its index among its record's events: events arrive in seq order, a record's together.
#[derive(Default)]
struct Numbering {
    seq: u64,
    next_index: u32,
}

impl Numbering {
    fn position_of(&mut self, seq: u64) -> Position {
        if seq != self.seq {
            debug_assert!(seq > self.seq, "the event feed hands out records in seq order");
            self.seq = seq;
            self.next_index = 0;
        }
        let position = Position { seq, index: self.next_index };
        self.next_index = self.next_index.saturating_add(1);
        position
    }
}

/// Publishes with a bounded number of acknowledgements outstanding, settling them in order.
struct Sender<'a> {
    context: &'a jetstream::Context,
    inflight: VecDeque<(Position, PublishAckFuture)>,
    inflight_max: usize,
    metrics: &'a StreamMetrics,
}

impl<'a> Sender<'a> {
    fn new(context: &'a jetstream::Context, inflight_max: usize, metrics: &'a StreamMetrics) -> Self {
        Self { context, inflight: VecDeque::new(), inflight_max: inflight_max.max(1), metrics }
    }

    async fn send(&mut self, subject: String, position: Position, body: Value) -> Result<(), SessionError> {
        if self.inflight.len() >= self.inflight_max {
            self.settle_oldest().await?;
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", position.message_id().as_str());
        headers.insert(HEADER_SEQ, position.seq.to_string().as_str());
        headers.insert(HEADER_INDEX, position.index.to_string().as_str());
        let payload = Bytes::from(body.to_string());
        let ack = self
            .context
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|error| SessionError::Publish(error.to_string()))?;
        self.inflight.push_back((position, ack));
        Ok(())
    }

    fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Waits for the oldest outstanding acknowledgement (pending forever when none: a select branch guards it).
    async fn settle_oldest(&mut self) -> Result<(), SessionError> {
        let Some((position, ack)) = self.inflight.pop_front() else { return std::future::pending().await };
        ack.await.map_err(|error| SessionError::Publish(error.to_string()))?;
        self.metrics.published.inc();
        self.metrics.acknowledged_seq.set(i64::try_from(position.seq).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Settles acknowledgements while the queue is full beyond half (keeps the pipeline from stalling at once).
    async fn settle_ready(&mut self) -> Result<(), SessionError> {
        while self.inflight.len() > self.inflight_max / 2 {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    async fn settle_all(&mut self) -> Result<(), SessionError> {
        while self.has_inflight() {
            self.settle_oldest().await?;
        }
        Ok(())
    }
}

fn stream_error(error: impl std::fmt::Display) -> SessionError {
    SessionError::Stream(error.to_string())
}

/// The journal position of the stream's last message; the start for an empty stream.
async fn last_position(stream: &mut stream::Stream) -> Result<Position, SessionError> {
    let last_sequence = stream.info().await.map_err(stream_error)?.state.last_sequence;
    if last_sequence == 0 {
        return Ok(Position::default());
    }
    let message = stream.get_raw_message(last_sequence).await.map_err(stream_error)?;
    position_of_headers(&message.headers).ok_or(SessionError::ForeignMessage)
}

/// Reads a message's journal position from its headers.
pub fn position_of_headers(headers: &HeaderMap) -> Option<Position> {
    let seq = headers.get(HEADER_SEQ)?.as_str().parse().ok()?;
    let index = headers.get(HEADER_INDEX)?.as_str().parse().ok()?;
    Some(Position { seq, index })
}

/// For consumers: the first stream sequence whose event comes after `after` (a journal position the consumer
/// processed last), or `None` when the stream holds nothing after it. A consumer that starts an ordered
/// consumer there (`DeliverPolicy::ByStartSequence`) sees every later event once. Bisection over the stream:
/// messages are in journal order, and a limits-retention stream only loses its oldest ones.
pub async fn stream_sequence_after(stream: &mut stream::Stream, after: Position) -> Result<Option<u64>, String> {
    let state = stream.info().await.map_err(|error| error.to_string())?.state.clone();
    if state.messages == 0 {
        return Ok(None);
    }
    let (mut low, mut high) = (state.first_sequence, state.last_sequence + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let message = stream.get_raw_message(middle).await.map_err(|error| error.to_string())?;
        let position = position_of_headers(&message.headers).ok_or("a message without journal position headers")?;
        if position <= after {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok((low <= state.last_sequence).then_some(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_restarts_at_every_record() {
        let mut numbering = Numbering::default();
        let positions: Vec<Position> = [3, 3, 3, 5, 6, 6].into_iter().map(|seq| numbering.position_of(seq)).collect();
        let expected = [(3, 0), (3, 1), (3, 2), (5, 0), (6, 0), (6, 1)].map(|(seq, index)| Position { seq, index });
        assert_eq!(positions, expected);
    }

    #[test]
    fn positions_order_as_the_stream_does() {
        assert!(Position { seq: 3, index: 9 } < Position { seq: 4, index: 0 });
        assert!(Position { seq: 4, index: 0 } < Position { seq: 4, index: 1 });
        assert_eq!(Position { seq: 12, index: 3 }.message_id(), "12-3");
    }

    #[test]
    fn headers_round_trip_and_foreign_messages_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_SEQ, "41");
        headers.insert(HEADER_INDEX, "2");
        assert_eq!(position_of_headers(&headers), Some(Position { seq: 41, index: 2 }));
        headers.insert(HEADER_INDEX, "two");
        assert_eq!(position_of_headers(&headers), None);
        assert_eq!(position_of_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn settings_are_checked() {
        assert!(Settings::default().validate().is_ok());
        let with = |change: fn(&mut Settings)| {
            let mut settings = Settings::default();
            change(&mut settings);
            settings.validate()
        };
        assert!(matches!(with(|s| s.servers.clear()), Err(SettingsError::NoServers)));
        assert!(matches!(with(|s| s.servers = vec!["nats://h:99999".into()]), Err(SettingsError::ServerUrl(_))));
        let three =
            |s: &mut Settings| s.servers = vec!["nats://a:4222".into(), "nats://b:4222".into(), "c:4222".into()];
        assert!(with(three).is_ok());
        assert!(matches!(with(|s| s.subject_prefix = "otcd.>".into()), Err(SettingsError::SubjectPrefix(_))));
        assert!(matches!(with(|s| s.subject_prefix = "otcd..x".into()), Err(SettingsError::SubjectPrefix(_))));
        assert!(matches!(with(|s| s.stream_name = "a.b".into()), Err(SettingsError::StreamName(_))));
        assert!(matches!(with(|s| s.replicas = 0), Err(SettingsError::Replicas(_))));
    }
}
