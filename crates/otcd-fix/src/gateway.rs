//! The acceptor: the listener with its connection cap, one task per connection running the session (Logon,
//! sequence numbers through the store, heartbeats, resend, rate limit) and the client's ExecutionReports from the
//! durable event feed.

use crate::app::{business_reject, Caller, SessionReject};
use crate::codec::{next_frame, Builder, FrameError, Header, Message};
use crate::logon::{authenticate, Authenticated};
use crate::market_data::{FixLadders, MarketData, RenderedLadder};
use crate::rate::{Bucket, TierBuckets};
use crate::session::{check_seq, gap_fill, is_admin, is_fix44_type, plan_resend, Resend, SeqCheck, HEADER_REQUIRED};
use crate::store::SessionStore;
use crate::timestamps;
use otcd_core::engine::events::DeskEvent;
use otcd_host::events::{EventFilter, EventSubscription, Resume, SequencedEvent, SubscriptionEnded};
use otcd_services::auth_failures::AuthFailureLog;
use otcd_services::ladders::LadderHub;
use otcd_services::DeskServices;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// How the gateway runs (`fix_*` keys of the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// TargetCompID of the desk.
    pub target_comp_id: String,
    /// Connections at once (logged on or not).
    pub connections_max: usize,
    /// Messages per second one session may send (burst: the same number); beyond, it is logged out.
    pub messages_per_second: u32,
    /// Time from connect to a Logon.
    pub logon_timeout: Duration,
    /// Where each session's store file lives.
    pub store_dir: PathBuf,
}

pub const TARGET_COMP_ID_DEFAULT: &str = "OTCD";
pub const CONNECTIONS_MAX_DEFAULT: usize = 1_000;
pub const MESSAGES_PER_SECOND_DEFAULT: u32 = 100;
/// ExecutionReports waiting for one session; a session further behind is disconnected (it resumes on logon).
const EVENT_QUEUE: usize = 4_096;
/// A write that takes longer ends the connection (a peer that does not read).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK_BYTES: usize = 8 * 1024;

impl Settings {
    pub fn new(store_dir: PathBuf) -> Self {
        Self {
            target_comp_id: TARGET_COMP_ID_DEFAULT.to_owned(),
            connections_max: CONNECTIONS_MAX_DEFAULT,
            messages_per_second: MESSAGES_PER_SECOND_DEFAULT,
            logon_timeout: Duration::from_secs(10),
            store_dir,
        }
    }
}

pub struct Gateway {
    desk: Arc<DeskServices>,
    settings: Settings,
    connections: Arc<Semaphore>,
    /// SenderCompIDs with a live session.
    live: Mutex<HashSet<String>>,
    pub auth_failures: AuthFailureLog,
    ladders: LadderHub<FixLadders>,
}

impl Gateway {
    pub fn new(desk: Arc<DeskServices>, settings: Settings, auth_failure_interval_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            connections: Arc::new(Semaphore::new(settings.connections_max)),
            desk,
            settings,
            live: Mutex::new(HashSet::new()),
            auth_failures: AuthFailureLog::new(auth_failure_interval_ms),
            ladders: LadderHub::default(),
        })
    }
}

/// Accepts connections until `stop` turns true; journals failed logons once per interval.
pub async fn serve(gateway: Arc<Gateway>, listener: TcpListener, stop: watch::Receiver<bool>) {
    let mut stopping = stop.clone();
    let mut flush = tokio::time::interval(Duration::from_millis(gateway.auth_failures.interval_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let Ok(permit) = gateway.connections.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "FIX connection refused: the gateway is at its connection cap");
                    continue;
                };
                let gateway = gateway.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    stream.set_nodelay(true).ok();
                    connection(gateway, stream, peer, stop).await;
                });
            }
            _ = flush.tick() => gateway.auth_failures.flush(&gateway.desk.engine),
            _ = stopping.wait_for(|stopped| *stopped) => break,
        }
    }
    gateway.auth_failures.flush(&gateway.desk.engine);
}

/// What woke a session up.
enum Input {
    Wire(Result<Option<Result<Message, FrameError>>, FrameError>),
    Event(Result<Arc<SequencedEvent>, SubscriptionEnded>),
    Ladder(Option<(Arc<str>, Arc<RenderedLadder>)>),
    Tick,
    Stop,
}

/// Why a session ends.
#[derive(Debug)]
enum End {
    /// Log out with this text, then close.
    Logout(String),
    /// Close without a word (the peer left, or broke framing).
    Close(&'static str),
}

struct Wire {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Wire {
    /// The next framed message (or a per-message error to reject); `None` when the peer closed.
    async fn next(&mut self) -> Result<Option<Result<Message, FrameError>>, FrameError> {
        loop {
            if let Some((message, used)) = next_frame(&self.buffer)? {
                self.buffer.drain(..used);
                return Ok(Some(message));
            }
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let read = self.stream.read(&mut chunk).await.unwrap_or(0);
            if read == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), End> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Close("write failed or timed out")),
        }
    }
}

async fn connection(gateway: Arc<Gateway>, stream: TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>) {
    let mut wire = Wire { stream, buffer: Vec::new() };
    let first = match tokio::time::timeout(gateway.settings.logon_timeout, wire.next()).await {
        Ok(Ok(Some(Ok(message)))) => message,
        _ => return,
    };
    if first.msg_type() != Some("A") {
        tracing::info!(%peer, "FIX connection closed: the first message was not a Logon");
        return;
    }
    let now = gateway.desk.clock.now();
    let sender = first.get(49).unwrap_or("").to_owned();
    let authenticated = match authenticate(&first, &gateway.desk.keys, &gateway.settings.target_comp_id, peer.ip(), now)
    {
        Ok(authenticated) => authenticated,
        Err(refusal) => {
            gateway.auth_failures.record(peer.ip(), Some(&sender), refusal.code, &refusal.text, "FIX Logon", now);
            tracing::info!(%peer, sender = %sender, reason = %refusal.text, "FIX logon refused");
            let logout = Builder::new("5").field(58, refusal.text);
            let _ = wire.send(&encode(&logout, &gateway.settings.target_comp_id, &sender, 1, now)).await;
            return;
        }
    };
    if !gateway.live.lock().insert(sender.clone()) {
        let logout = Builder::new("5").field(58, "a session for this SenderCompID is already connected");
        let _ = wire.send(&encode(&logout, &gateway.settings.target_comp_id, &sender, 1, now)).await;
        return;
    }
    let ended = run_session(&gateway, &mut wire, peer, first, authenticated, stop).await;
    gateway.live.lock().remove(&sender);
    let _ = wire.stream.shutdown().await;
    let reason = match &ended {
        End::Logout(text) => text.as_str(),
        End::Close(reason) => reason,
    };
    tracing::info!(%peer, sender = %sender, reason, "FIX session ended");
}

/// `builder` with the session header of a message from the desk to `target`.
fn encode(builder: &Builder, sender: &str, target: &str, seq_num: u64, now: otcd_core::time::TimestampMs) -> Vec<u8> {
    let sending_time = timestamps::format(now);
    builder.encode(&Header { sender, target, seq_num, sending_time: &sending_time, orig_sending_time: None })
}

/// One logged-on session.
struct Session<'a> {
    gateway: &'a Gateway,
    wire: &'a mut Wire,
    store: SessionStore,
    sender: String,
    caller_key: Arc<otcd_services::keys::AuthKey>,
    peer: SocketAddr,
    /// The seq that made us send a ResendRequest: until the peer's messages pass it, do not ask again.
    resend_pending_until: Option<u64>,
    last_received: Instant,
    last_sent: Instant,
    test_request_sent: Option<Instant>,
    heartbeat: Duration,
    /// Every message (`fix_messages_per_second`): beyond it, the session ends.
    messages: Bucket,
    /// The key's tier limits per application message class: beyond them, a BusinessMessageReject.
    tier: TierBuckets,
    /// Events missed while away, sent right after the Logon.
    pending_events: Vec<Arc<SequencedEvent>>,
    /// Encoded messages waiting to leave after the store is written (and synced, for state changes).
    outbox: Vec<Vec<u8>>,
    market_data: MarketData,
    /// Accepted OrderCancelRequests whose canceled report has not been sent yet: the order's ClOrdID (the F's
    /// OrigClOrdID) to the F's ClOrdID, so the report names both as FIX asks. At most `CANCELS_PENDING_MAX`.
    cancels_pending: std::collections::HashMap<String, String>,
}

/// Cancel requests remembered per session; past it a canceled report names only the order's ClOrdID.
const CANCELS_PENDING_MAX: usize = 1_024;

async fn run_session(
    gateway: &Gateway,
    wire: &mut Wire,
    peer: SocketAddr,
    logon: Message,
    authenticated: Authenticated,
    mut stop: watch::Receiver<bool>,
) -> End {
    let Authenticated { key, heartbeat_seconds, reset_seq_num } = authenticated;
    let sender = key.key_id.as_str().to_owned();
    let store = match SessionStore::open(&gateway.settings.store_dir, &sender) {
        Ok(store) => store,
        Err(error) => {
            tracing::error!(%error, "cannot open the FIX session store");
            return End::Close("session store unavailable");
        }
    };
    let tier = TierBuckets::new(tier_limits(&gateway.desk, &key).await);
    let mut session = Session {
        gateway,
        wire,
        store,
        sender,
        caller_key: key,
        peer,
        resend_pending_until: None,
        last_received: Instant::now(),
        last_sent: Instant::now(),
        test_request_sent: None,
        heartbeat: Duration::from_secs(heartbeat_seconds),
        messages: Bucket::new(gateway.settings.messages_per_second),
        tier,
        pending_events: Vec::new(),
        outbox: Vec::new(),
        market_data: MarketData::default(),
        cancels_pending: std::collections::HashMap::new(),
    };
    let mut subscription = match session.logon(&logon, reset_seq_num, heartbeat_seconds).await {
        Ok(subscription) => subscription,
        Err(end) => return session.finish(end).await,
    };
    let end = session.serve(&mut subscription, &mut stop).await;
    session.finish(end).await
}

impl Session<'_> {
    fn now(&self) -> otcd_core::time::TimestampMs {
        self.gateway.desk.clock.now()
    }

    /// Answers the Logon: seq checks, the Logon reply, a ResendRequest for a gap, and the event subscription
    /// with what the session missed while away.
    async fn logon(&mut self, logon: &Message, reset: bool, heartbeat_seconds: u64) -> Result<EventSubscription, End> {
        let seq = logon.seq_num().ok_or_else(|| End::Logout("MsgSeqNum missing".into()))?;
        if reset {
            if seq != 1 {
                return Err(End::Logout("ResetSeqNumFlag=Y needs MsgSeqNum 1".into()));
            }
            self.store.reset().map_err(store_failed)?;
        }
        let next_in = self.store.state.next_in;
        let mut gap = None;
        match check_seq(logon, next_in) {
            SeqCheck::Process => self.store.set_next_in(seq + 1).map_err(store_failed)?,
            SeqCheck::Gap { from } => gap = Some((from, seq)),
            SeqCheck::TooLow(text) => return Err(End::Logout(text)),
            SeqCheck::Duplicate | SeqCheck::Missing => {
                return Err(End::Logout(format!("MsgSeqNum too low, expecting {next_in} but received {seq}")))
            }
        }
        let mut reply = Builder::new("A").field(98, "0").field(108, heartbeat_seconds.to_string());
        if reset {
            reply = reply.field(141, "Y");
        }
        self.send_admin(reply).await?;
        if let Some((from, seq)) = gap {
            self.resend_pending_until = Some(seq);
            self.send_admin(Builder::new("2").field(7, from.to_string()).field(16, "0")).await?;
        }
        let subscription = self.subscribe()?;
        tracing::info!(peer = %self.peer, sender = %self.sender, next_in = self.store.state.next_in, next_out = self.store.state.next_out, "FIX session logged on");
        Ok(subscription)
    }

    /// The client's events (every client's for a desk key) from the last one this session turned into
    /// reports; the missed ones are sent at once.
    fn subscribe(&mut self) -> Result<EventSubscription, End> {
        let filter = match &self.caller_key.client_id {
            Some(client_id) => EventFilter::Client(client_id.clone()),
            None => EventFilter::All,
        };
        let after = (self.store.state.event_seq > 0).then_some(self.store.state.event_seq);
        let events = &self.gateway.desk.events;
        let (subscription, resume, published_seq) = events
            .subscribe_from(filter, EVENT_QUEUE, after)
            .map_err(|_| End::Logout("the desk has too many event subscribers; retry later".into()))?;
        self.pending_events = match resume {
            Some(Resume::Backlog(backlog)) => backlog,
            Some(Resume::TooOld { oldest_seq }) => {
                tracing::warn!(sender = %self.sender, after = ?after, oldest_seq, "FIX session missed events beyond the feed's resume ring; the client must ask OrderStatusRequest");
                Vec::new()
            }
            None => Vec::new(),
        };
        if after.is_none() {
            self.store.set_event_seq(published_seq).map_err(store_failed)?;
        }
        Ok(subscription)
    }
}

impl Session<'_> {
    fn target(&self) -> String {
        self.gateway.settings.target_comp_id.clone()
    }

    /// Queues an admin message (its seq is written to the store, not synced).
    fn queue_admin(&mut self, builder: Builder) -> Result<(), End> {
        let seq = self.store.take_admin_seq().map_err(store_failed)?;
        let bytes = encode(&builder, &self.target(), &self.sender, seq, self.now());
        self.outbox.push(bytes);
        Ok(())
    }

    /// Queues an application message, kept in the store for resends.
    fn queue_app(&mut self, builder: Builder) -> Result<(), End> {
        let (target, sender, now) = (self.target(), self.sender.clone(), self.now());
        let bytes = self.store.record_app(|seq| encode(&builder, &target, &sender, seq, now)).map_err(store_failed)?;
        self.outbox.push(bytes);
        Ok(())
    }

    /// Sends what is queued; with `durable`, after an fsync of the store.
    async fn flush(&mut self, durable: bool) -> Result<(), End> {
        if self.outbox.is_empty() && !durable {
            return Ok(());
        }
        if durable {
            let file = self.store.sync_handle().map_err(store_failed)?;
            let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
            synced.unwrap_or_else(|_| Err(std::io::Error::other("the fsync task failed"))).map_err(store_failed)?;
            self.store.compact_if_large().map_err(store_failed)?;
        }
        let outbox = std::mem::take(&mut self.outbox);
        for bytes in outbox {
            self.wire.send(&bytes).await?;
        }
        self.last_sent = Instant::now();
        Ok(())
    }

    async fn send_admin(&mut self, builder: Builder) -> Result<(), End> {
        self.queue_admin(builder)?;
        self.flush(false).await
    }

    async fn finish(mut self, end: End) -> End {
        if let End::Logout(text) = &end {
            if self.queue_admin(Builder::new("5").field(58, text.clone())).is_ok() {
                let _ = self.flush(true).await;
            }
        }
        // The connection is closed by `connection`, after the key is free again and the session store dropped: a
        // peer that reconnects the moment it sees the close must find neither still held.
        end
    }

    async fn serve(&mut self, subscription: &mut EventSubscription, stop: &mut watch::Receiver<bool>) -> End {
        let backlog = std::mem::take(&mut self.pending_events);
        if let Err(end) = self.deliver(backlog, subscription).await {
            return end;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let input = tokio::select! {
                next = self.wire.next() => Input::Wire(next),
                event = subscription.recv() => Input::Event(event),
                ladder = self.market_data.receiver.recv() => Input::Ladder(ladder),
                _ = tick.tick() => Input::Tick,
                _ = stop.wait_for(|stopped| *stopped) => Input::Stop,
            };
            let step = match input {
                Input::Wire(Err(error)) => Err(End::Logout(format!("malformed message stream: {error}"))),
                Input::Wire(Ok(None)) => Err(End::Close("the peer closed the connection")),
                Input::Wire(Ok(Some(Err(error)))) => {
                    // A garbled message (bad CheckSum, bad field) is ignored, as FIX asks: its MsgSeqNum cannot be
                    // trusted; the gap it leaves is resent.
                    tracing::info!(sender = %self.sender, %error, "garbled FIX message ignored");
                    self.last_received = Instant::now();
                    self.spend_token()
                }
                Input::Wire(Ok(Some(Ok(message)))) => {
                    self.last_received = Instant::now();
                    self.test_request_sent = None;
                    self.on_message(message, subscription).await
                }
                Input::Event(Ok(event)) => self.deliver(vec![event], subscription).await,
                Input::Event(Err(SubscriptionEnded::FellBehind)) => {
                    Err(End::Logout("the session fell behind the desk's events; log on again to resume".into()))
                }
                Input::Event(Err(SubscriptionEnded::Closed)) | Input::Stop => {
                    Err(End::Logout("the desk is shutting down".into()))
                }
                Input::Ladder(Some((request_id, ladder))) => self.ladder(&request_id, &ladder).await,
                Input::Ladder(None) => Ok(()),
                Input::Tick => self.on_tick().await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Heartbeats when quiet, a TestRequest when the peer is, and the end when it does not answer.
    async fn on_tick(&mut self) -> Result<(), End> {
        if let Some(sent) = self.test_request_sent {
            if sent.elapsed() > self.heartbeat {
                return Err(End::Close("no answer to a TestRequest"));
            }
        } else if self.last_received.elapsed() > self.heartbeat + self.heartbeat / 5 + Duration::from_millis(500) {
            self.test_request_sent = Some(Instant::now());
            self.send_admin(Builder::new("1").field(112, format!("TEST-{}", self.now().0))).await?;
        }
        if self.last_sent.elapsed() >= self.heartbeat {
            self.send_admin(Builder::new("0")).await?;
        }
        Ok(())
    }

    /// One message from the peer's token bucket; beyond the rate, the session ends.
    fn spend_token(&mut self) -> Result<(), End> {
        if !self.messages.take() {
            let rate = self.gateway.settings.messages_per_second;
            return Err(End::Logout(format!("more than {rate} messages per second")));
        }
        Ok(())
    }

    async fn on_message(&mut self, message: Message, subscription: &mut EventSubscription) -> Result<(), End> {
        self.spend_token()?;
        let target = self.gateway.settings.target_comp_id.as_str();
        if let Some(tag) = HEADER_REQUIRED.iter().find(|tag| message.get(**tag).is_none()) {
            return Err(End::Logout(format!("required header tag {tag} missing")));
        }
        if message.get(49) != Some(self.sender.as_str()) || message.get(56) != Some(target) {
            return Err(End::Logout("CompID problem: SenderCompID or TargetCompID differs from the Logon".into()));
        }
        let msg_type = message.msg_type().unwrap_or("").to_owned();
        if msg_type == "4" && message.get(123) != Some("Y") {
            return self.sequence_reset(&message).await;
        }
        match check_seq(&message, self.store.state.next_in) {
            SeqCheck::Process => {}
            SeqCheck::Duplicate => return Ok(()),
            SeqCheck::Missing => return Err(End::Logout("MsgSeqNum missing".into())),
            SeqCheck::TooLow(text) => return Err(End::Logout(text)),
            SeqCheck::Gap { from } => {
                let seq = message.seq_num().unwrap_or(from);
                if self.resend_pending_until.is_none() {
                    self.resend_pending_until = Some(seq);
                    self.queue_admin(Builder::new("2").field(7, from.to_string()).field(16, "0"))?;
                }
                match msg_type.as_str() {
                    "2" => self.answer_resend(&message)?,
                    "5" => return Err(End::Logout("logout acknowledged".into())),
                    _ => {}
                }
                return self.flush(false).await;
            }
        }
        let seq = message.seq_num().unwrap_or(0);
        let mut next_in = seq + 1;
        let mut durable = false;
        match msg_type.as_str() {
            "0" | "3" => {}
            "1" => {
                let id = message.get(112).unwrap_or("").to_owned();
                self.queue_admin(Builder::new("0").field(112, id))?;
            }
            "2" => self.answer_resend(&message)?,
            "4" => match message.get(36).and_then(|text| text.parse::<u64>().ok()) {
                Some(new_seq) if new_seq > seq => next_in = new_seq,
                _ => self.queue_admin(reject(&message, Some(36), "5", "NewSeqNo must be above MsgSeqNum"))?,
            },
            "5" => {
                self.store.set_next_in(next_in).map_err(store_failed)?;
                return Err(End::Logout("logout acknowledged".into()));
            }
            "A" => return Err(End::Logout("already logged on".into())),
            other if !is_fix44_type(other) => {
                self.queue_admin(reject(&message, Some(35), "11", "invalid MsgType"))?;
            }
            other if is_admin(other) => {}
            other => {
                durable = true;
                self.application(&message, other, subscription).await?;
            }
        }
        self.store.set_next_in(next_in).map_err(store_failed)?;
        if self.resend_pending_until.is_some_and(|until| next_in > until) {
            self.resend_pending_until = None;
        }
        self.flush(durable).await
    }

    /// An application message: through the services; then the events it caused (already durable and queued on
    /// the subscription, published before the service answered) become reports in the same flush.
    async fn application(
        &mut self,
        message: &Message,
        msg_type: &str,
        subscription: &mut EventSubscription,
    ) -> Result<(), End> {
        let caller = Caller { desk: &self.gateway.desk, key: &self.caller_key, source_ip: self.peer.ip().to_string() };
        let read_only = !self.caller_key.has_scope(otcd_core::model::Scope::Trade);
        let answer = if !self.tier.allow(msg_type) {
            let text = "rate_limited: over the tier's rate limit for this message class; nothing was done";
            Ok(vec![business_reject(message, msg_type, "0", text)])
        } else if msg_type == "V" {
            let answer = if self.caller_key.has_scope(otcd_core::model::Scope::Read) {
                let (desk, hub) = (&self.gateway.desk, &self.gateway.ladders);
                self.market_data.request(desk, hub, &self.caller_key, message)
            } else {
                Some(business_reject(message, msg_type, "6", "forbidden: market data needs the read scope"))
            };
            Ok(answer.into_iter().collect())
        } else if read_only {
            Ok(vec![business_reject(message, msg_type, "6", "forbidden: this key has no trade scope")])
        } else {
            caller.handle(message).await
        };
        match answer {
            Ok(builders) => {
                // An accepted cancel answers nothing now: its report comes from the durable event feed.
                if msg_type == "F" && builders.is_empty() && self.cancels_pending.len() < CANCELS_PENDING_MAX {
                    if let (Some(original), Some(request)) = (message.get(41), message.get(11)) {
                        self.cancels_pending.insert(original.to_owned(), request.to_owned());
                    }
                }
                for builder in builders {
                    self.queue_app(builder)?;
                }
            }
            Err(SessionReject { tag, reason, text }) => self.queue_admin(reject(message, tag, reason, &text))?,
        }
        let mut events = Vec::new();
        while let Some(event) = subscription.try_recv() {
            events.push(event);
        }
        self.reports(events)
    }

    /// A ladder of a market data subscription: W first, then X. Market data is not kept for resends (a resend
    /// gap-fills it: stale prices are worthless) and is not fsynced.
    async fn ladder(&mut self, request_id: &Arc<str>, ladder: &RenderedLadder) -> Result<(), End> {
        if let Some(message) = self.market_data.render(request_id, ladder) {
            self.queue_admin(message)?;
        }
        self.flush(false).await
    }

    /// Events to reports, queued (not sent).
    fn reports(&mut self, events: Vec<Arc<SequencedEvent>>) -> Result<(), End> {
        let Some(last_seq) = events.last().map(|event| event.seq) else { return Ok(()) };
        for event in &events {
            if let DeskEvent::Order(order) = &event.event {
                let cancel_request = match order.order.status {
                    otcd_core::engine::orders::OrderStatus::Cancelled => {
                        self.cancels_pending.remove(order.order.client_order_id.as_str())
                    }
                    _ => None,
                };
                let reports =
                    crate::reports::from_event(&self.gateway.desk, order, event.seq, event.at, cancel_request);
                for report in reports {
                    self.queue_app(report)?;
                }
            }
        }
        self.store.set_event_seq(last_seq).map_err(store_failed)
    }

    /// Events that arrived on their own (a resting order filled or expired, an order placed over REST): every
    /// event queued now, as reports, durable before they leave.
    async fn deliver(
        &mut self,
        mut events: Vec<Arc<SequencedEvent>>,
        subscription: &mut EventSubscription,
    ) -> Result<(), End> {
        while let Some(event) = subscription.try_recv() {
            events.push(event);
        }
        if events.is_empty() {
            return Ok(());
        }
        self.reports(events)?;
        // Events that made no report (balances, trades) only move the stored event seq: no fsync for them.
        let durable = !self.outbox.is_empty();
        self.flush(durable).await
    }

    /// Queues the answer to a ResendRequest: kept application messages again (PossDupFlag=Y, OrigSendingTime),
    /// gap fills for the rest.
    fn answer_resend(&mut self, message: &Message) -> Result<(), End> {
        let number = |tag| message.get(tag).and_then(|text: &str| text.parse::<u64>().ok());
        let (Some(begin), Some(end)) = (number(7), number(16)) else {
            return self.queue_admin(reject(message, Some(7), "5", "BeginSeqNo and EndSeqNo must be numbers"));
        };
        let now = timestamps::format(self.now());
        let target = self.target();
        for resend in plan_resend(&self.store.state.sent, begin, end, self.store.state.next_out) {
            let bytes = match resend {
                Resend::Message { seq, original } => {
                    let Ok(Some((Ok(sent), _))) = next_frame(&original) else { continue };
                    let Some(builder) = Builder::from_sent(&sent) else { continue };
                    let original_time = sent.get(52).unwrap_or(&now).to_owned();
                    builder.encode(&Header {
                        sender: &target,
                        target: &self.sender,
                        seq_num: seq,
                        sending_time: &now,
                        orig_sending_time: Some(&original_time),
                    })
                }
                Resend::GapFill { seq, new_seq } => gap_fill(new_seq).encode(&Header {
                    sender: &target,
                    target: &self.sender,
                    seq_num: seq,
                    sending_time: &now,
                    orig_sending_time: Some(&now),
                }),
            };
            self.outbox.push(bytes);
        }
        Ok(())
    }

    /// SequenceReset in reset mode: the next incoming seq is NewSeqNo, whatever the MsgSeqNum.
    async fn sequence_reset(&mut self, message: &Message) -> Result<(), End> {
        match message.get(36).and_then(|text| text.parse::<u64>().ok()) {
            Some(new_seq) if new_seq >= self.store.state.next_in => {
                self.store.set_next_in(new_seq).map_err(store_failed)?;
                self.resend_pending_until = None;
            }
            _ => self.queue_admin(reject(message, Some(36), "5", "NewSeqNo must not lower the expected MsgSeqNum"))?,
        }
        self.flush(false).await
    }
}

/// Reject (3): RefSeqNum, RefTagID, RefMsgType, SessionRejectReason and Text.
fn reject(message: &Message, tag: Option<u32>, reason: &'static str, text: &str) -> Builder {
    Builder::new("3")
        .field(45, message.seq_num().unwrap_or(0).to_string())
        .optional(371, tag.map(|tag| tag.to_string()))
        .optional(372, message.msg_type())
        .field(373, reason)
        .field(58, text)
}

/// The rate limits of the key's client's tier (the defaults for a desk key, or when the tier cannot be read).
async fn tier_limits(desk: &DeskServices, key: &otcd_services::keys::AuthKey) -> otcd_core::model::RateLimits {
    let Some(client_id) = key.client_id.clone() else { return otcd_core::model::RateLimits::default() };
    let limits = desk
        .read(move |desk| {
            desk.client(&client_id).and_then(|client| desk.tier(&client.tier)).map(|tier| tier.rate_limits)
        })
        .await;
    limits.ok().flatten().unwrap_or_default()
}

fn store_failed(error: std::io::Error) -> End {
    tracing::error!(%error, "FIX session store write failed");
    End::Logout("the desk cannot persist this session right now".into())
}
