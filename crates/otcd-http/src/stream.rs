//! `GET /v1/stream`: the WebSocket. A signed upgrade, then JSON messages:
//! `{"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": ["0.5", "1"]}`,
//! `{"op": "subscribe", "channel": "orders" | "trades" | "balances"}` and `{"op": "unsubscribe", ...}`.
//!
//! Each connection has one bounded outbound queue drained by a writer task. Producers never wait on it: a
//! full queue means the client is not reading, and the connection is closed with a reason (a slow consumer
//! never holds back anyone else). Quote subscriptions go to the services' ladder publishers
//! (`otcd_services::ladders`), which render each distinct ladder once with [`Outbound`]'s [`LadderSink`]; the
//! `orders`, `trades` and `balances` channels subscribe to the host's event feed for the connection's client,
//! which carries only changes already durable, in seq order.
//!
//! Every message of those channels carries `seq`, the journal seq of the record it came from. A subscribe with
//! `"resume_from": N` (the last seq the client processed) first gets the channel's messages with a seq above N
//! that the feed still retains (`otcd_host::events::Resume`), then the live ones, without a gap or a duplicate;
//! when N is older than what the feed retains it gets `{"type": "resync_required", "oldest_seq": ...}` and is
//! subscribed live. The `subscribed` ack of these channels carries `seq`, the feed's published seq at
//! registration: a client that saw no message yet resumes from it.

use crate::app::{AppState, Signed};
use crate::json::{format_timestamp, parse_quantity, DecimalText};
use crate::problem::{ApiError, ApiResult};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use otcd_core::decimal::format_scaled;
use otcd_core::engine::events::DeskEvent;
use otcd_core::ids::{ClientId, KeyId};
use otcd_core::model::Scope;
use otcd_host::events::{EventFilter, Resume, SequencedEvent, SubscriptionEnded, SUBSCRIBER_QUEUE_DEFAULT};
use otcd_services::ladders::{Ladder, LadderSink};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Messages waiting for one client; beyond this the client is too slow and is disconnected.
pub const OUTBOUND_BUFFER: usize = 256;
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = 20;
pub const CONNECTIONS_PER_KEY_MAX: usize = 20;
pub const CLIENT_MESSAGE_BYTES_MAX: usize = 4_096;
/// tungstenite's outgoing buffer: a write that would grow it beyond this fails (the connection is closed) rather
/// than growing without bound; the outbound queue before it is bounded in messages.
const WRITE_BUFFER_BYTES_MAX: usize = 1 << 20;
/// Bytes tungstenite gathers before writing to the socket (its default, 128 KiB, is per connection).
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// A connection that answered no ping for this long is closed.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(45);
/// Longest a single message may take to leave; a client that reads slower than this is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket close code for policy violations (RFC 6455), used for slow consumers and limits.
const CLOSE_POLICY: u16 = 1008;

/// Open stream connections per key.
#[derive(Default)]
pub struct ConnectionCounter {
    counts: parking_lot::Mutex<HashMap<KeyId, usize>>,
}

struct ConnectionSlot {
    state: AppState,
    key_id: KeyId,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.state.stream_connections.counts.lock();
        if let Some(count) = counts.get_mut(&self.key_id) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key_id);
            }
        }
    }
}

fn take_slot(state: &AppState, key_id: &KeyId) -> ApiResult<ConnectionSlot> {
    let mut counts = state.stream_connections.counts.lock();
    let count = counts.entry(key_id.clone()).or_default();
    if *count >= CONNECTIONS_PER_KEY_MAX {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many stream connections for this key",
        )
        .with_retry_after(5));
    }
    *count += 1;
    Ok(ConnectionSlot { state: state.clone(), key_id: key_id.clone() })
}

/// `GET /v1/stream`. Both extractions are taken as results so that every refusal is problem+json: axum's own
/// upgrade rejection answers `text/plain`. A request that is no WebSocket upgrade is refused first, as before.
pub async fn stream(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    signed: Result<Signed, ApiError>,
) -> ApiResult<Response> {
    let upgrade = upgrade.map_err(upgrade_problem)?;
    let signed = signed?;
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Trade))?;
    let client_id =
        signed.principal.key.client_id.clone().ok_or_else(|| ApiError::forbidden("the stream is for client keys"))?;
    let slot = take_slot(&state, &signed.principal.key.key_id)?;
    let websocket = state.connections.admit_websocket(signed.principal.source_ip).map_err(|_| {
        ApiError::unavailable("the desk holds the maximum number of stream connections; retry shortly", 5)
    })?;
    let can_trade = signed.principal.key.has_scope(Scope::Trade);
    // Bounded per connection: client frames and messages of 4 KiB at most, read in 4 KiB chunks (tungstenite's
    // default read buffer is 128 KiB per connection), writes batched up to 16 KiB (the stream flushes every few
    // messages anyway) and the write buffer capped; the outbound queue before it is bounded in messages.
    let upgrade = upgrade
        .max_message_size(CLIENT_MESSAGE_BYTES_MAX)
        .max_frame_size(CLIENT_MESSAGE_BYTES_MAX)
        .read_buffer_size(CLIENT_MESSAGE_BYTES_MAX)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES_MAX);
    Ok(upgrade.on_upgrade(move |socket| async move {
        Connection::new(state, client_id, can_trade).run(socket).await;
        drop(slot);
        drop(websocket);
    }))
}

/// axum's reason for refusing an upgrade, as a problem: `405 method_not_allowed` for a method other than GET,
/// `426 upgrade_required` when the connection cannot be upgraded, else `400 invalid_request` naming the header.
fn upgrade_problem(rejection: WebSocketUpgradeRejection) -> ApiError {
    use axum::http::StatusCode;
    let detail = rejection.body_text();
    match rejection.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail),
        StatusCode::UPGRADE_REQUIRED => ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_required", detail),
        _ => ApiError::invalid("upgrade", format!("a WebSocket upgrade is required: {detail}")),
    }
}

/// What may close a connection from inside.
#[derive(Debug, Clone)]
pub enum CloseReason {
    SlowConsumer,
    HeartbeatTimeout,
}

/// The channels of a client's own activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Orders,
    Trades,
    Balances,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Orders => "orders",
            Channel::Trades => "trades",
            Channel::Balances => "balances",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "orders" => Some(Channel::Orders),
            "trades" => Some(Channel::Trades),
            "balances" => Some(Channel::Balances),
            _ => None,
        }
    }
}

/// The producer side of a connection's outbound queue: never waits.
#[derive(Clone)]
pub struct Outbound {
    sender: mpsc::Sender<Message>,
    close: watch::Sender<Option<CloseReason>>,
}

impl LadderSink for Outbound {
    type Message = Utf8Bytes;

    fn render(ladder: &Ladder<'_>) -> Utf8Bytes {
        LadderMessage::from(ladder).to_text()
    }

    fn push(&self, message: Utf8Bytes) {
        Outbound::push(self, message);
    }
}

impl Outbound {
    /// Queues a message, waiting for room (a resume backlog may be longer than the queue); `false` when the
    /// connection is gone. The writer gives up on a client that stops reading (`SEND_TIMEOUT`), which ends this.
    pub async fn push_waiting(&self, text: impl Into<Utf8Bytes>) -> bool {
        self.sender.send(Message::Text(text.into())).await.is_ok()
    }

    /// Queues a message; when the queue is full, asks the connection to close as a slow consumer.
    pub fn push(&self, text: impl Into<Utf8Bytes>) -> bool {
        match self.sender.try_send(Message::Text(text.into())) {
            Ok(()) => true,
            Err(_) => {
                self.close.send_replace(Some(CloseReason::SlowConsumer));
                false
            }
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Most queued messages written with one flush: a writer that fell behind catches up with one `write` for a few
/// messages instead of one each. Small, because the frame buffer keeps the capacity it grew to for the life of
/// the connection.
const MESSAGES_PER_FLUSH_MAX: usize = 4;

/// Drains the connection's outbound queue to the socket until the queue closes, a write fails or stalls
/// (`SEND_TIMEOUT`), or a close is requested (then a close frame with the reason is sent).
///
/// Per message this costs one queue pop, one frame and one flush: the close request is checked with a load
/// between messages, and its wake-up is registered only while the writer waits for the queue or the socket.
async fn write_loop(
    mut sink: Sink,
    mut receiver: mpsc::Receiver<Message>,
    mut close_requested: watch::Receiver<Option<CloseReason>>,
) {
    loop {
        if close_requested.has_changed().unwrap_or(true) {
            return send_close(&mut sink, &close_requested).await;
        }
        let message = tokio::select! {
            biased;
            message = receiver.recv() => message,
            _ = close_requested.changed() => return send_close(&mut sink, &close_requested).await,
        };
        let Some(message) = message else { return };
        // A client that stops reading stalls this write: give up on it when the connection is asked to close
        // (slow consumer) or after SEND_TIMEOUT.
        tokio::select! {
            biased;
            sent = tokio::time::timeout(SEND_TIMEOUT, send_queued(&mut sink, message, &mut receiver)) => {
                if !matches!(sent, Ok(Ok(()))) { return }
            }
            _ = close_requested.changed() => return,
        }
    }
}

/// Writes `first` and whatever else is already queued (up to `MESSAGES_PER_FLUSH_MAX`), then flushes once.
async fn send_queued(
    sink: &mut Sink,
    first: Message,
    receiver: &mut mpsc::Receiver<Message>,
) -> Result<(), axum::Error> {
    sink.feed(first).await?;
    for _ in 1..MESSAGES_PER_FLUSH_MAX {
        let Ok(message) = receiver.try_recv() else { break };
        sink.feed(message).await?;
    }
    sink.flush().await
}

async fn send_close(sink: &mut Sink, close_requested: &watch::Receiver<Option<CloseReason>>) {
    let reason = close_requested.borrow().clone();
    let text = match reason {
        Some(CloseReason::SlowConsumer) => "slow consumer: outbound buffer full",
        Some(CloseReason::HeartbeatTimeout) => "no pong within 45 s",
        None => "closing",
    };
    let frame = CloseFrame { code: CLOSE_POLICY, reason: Utf8Bytes::from(text) };
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
}

struct Connection {
    state: AppState,
    client_id: ClientId,
    can_trade: bool,
    subscriptions: HashMap<String, JoinHandle<()>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    op: String,
    channel: String,
    instrument: Option<String>,
    levels: Option<Vec<DecimalText>>,
    /// The last seq the client processed on an `orders`, `trades` or `balances` channel.
    resume_from: Option<u64>,
}

impl Connection {
    fn new(state: AppState, client_id: ClientId, can_trade: bool) -> Self {
        Self { state, client_id, can_trade, subscriptions: HashMap::new() }
    }

    async fn run(mut self, socket: WebSocket) {
        let (sink, mut source) = socket.split();
        let (sender, receiver) = mpsc::channel::<Message>(OUTBOUND_BUFFER);
        let (close, close_requested) = watch::channel(None);
        let outbound = Outbound { sender, close };
        let writer = tokio::spawn(write_loop(sink, receiver, close_requested));
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut last_seen = tokio::time::Instant::now();
        let mut closing = outbound.close.subscribe();
        loop {
            tokio::select! {
                incoming = source.next() => match incoming {
                    Some(Ok(Message::Text(text))) => { last_seen = tokio::time::Instant::now(); self.handle(&text, &outbound).await }
                    Some(Ok(Message::Pong(_) | Message::Ping(_) | Message::Binary(_))) => last_seen = tokio::time::Instant::now(),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                },
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > HEARTBEAT_TIMEOUT {
                        outbound.close.send_replace(Some(CloseReason::HeartbeatTimeout));
                    } else if outbound.sender.try_send(Message::Ping(Default::default())).is_err() {
                        outbound.close.send_replace(Some(CloseReason::SlowConsumer));
                    }
                }
                _ = closing.changed() => break,
            }
        }
        for (_, task) in self.subscriptions.drain() {
            task.abort();
        }
        drop(outbound);
        let _ = writer.await;
    }

    async fn handle(&mut self, text: &str, outbound: &Outbound) {
        let reply = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => match self.check_compliance(&message).await {
                Ok(()) => self.apply(message, outbound),
                Err(error) => Err(error),
            },
            Err(error) => Err(ApiError::invalid("message", error)),
        };
        let reply = match reply {
            Ok(Some(reply)) => reply,
            // The subscription answered itself (its ack must precede its backlog).
            Ok(None) => return,
            Err(error) => json!({"type": "error", "code": error.code, "detail": error.detail}),
        };
        outbound.push(reply.to_string());
    }

    /// Jurisdiction rules and sanctions gate quote subscriptions (KYC only decides firm vs indicative).
    async fn check_compliance(&self, message: &ClientMessage) -> ApiResult<()> {
        let (true, "quotes", Some(symbol)) = (message.op == "subscribe", &message.channel[..], &message.instrument)
        else {
            return Ok(());
        };
        let (client_id, symbol) = (self.client_id.clone(), symbol.clone());
        self.state.desk.read(move |desk| desk.check_client_instrument(&client_id, &symbol)).await??;
        Ok(())
    }

    fn apply(&mut self, message: ClientMessage, outbound: &Outbound) -> ApiResult<Option<serde_json::Value>> {
        let key = match (&message.channel[..], &message.instrument) {
            ("quotes", Some(instrument)) => format!("quotes:{instrument}"),
            ("quotes", None) => return Err(ApiError::invalid("instrument", "quotes subscriptions name an instrument")),
            (channel, _) if Channel::parse(channel).is_some() => channel.to_owned(),
            _ => return Err(ApiError::invalid("channel", "must be quotes, orders, trades or balances")),
        };
        if message.resume_from.is_some() && (message.op != "subscribe" || Channel::parse(&message.channel).is_none()) {
            return Err(ApiError::invalid("resume_from", "only subscriptions to orders, trades or balances resume"));
        }
        match &message.op[..] {
            "subscribe" => self.subscribe(key, &message, outbound),
            "unsubscribe" => {
                let found = self.subscriptions.remove(&key).map(|task| task.abort()).is_some();
                Ok(Some(
                    json!({"type": "unsubscribed", "channel": message.channel, "instrument": message.instrument, "found": found}),
                ))
            }
            _ => Err(ApiError::invalid("op", "must be subscribe or unsubscribe")),
        }
    }

    fn subscribe(
        &mut self,
        key: String,
        message: &ClientMessage,
        outbound: &Outbound,
    ) -> ApiResult<Option<serde_json::Value>> {
        if !self.subscriptions.contains_key(&key) && self.subscriptions.len() >= SUBSCRIPTIONS_PER_CONNECTION_MAX {
            return Err(ApiError::invalid("op", "at most 20 subscriptions per connection"));
        }
        let mut answered = false;
        let task = match Channel::parse(&message.channel) {
            Some(channel) => {
                answered = true;
                self.spawn_events(channel, outbound.clone(), message.resume_from)?
            }
            None => {
                let desk = &self.state.desk;
                let instrument = desk.instrument(message.instrument.as_deref().unwrap_or_default())?.clone();
                let levels = message.levels.as_deref().unwrap_or_default();
                if levels.is_empty() || levels.len() > otcd_core::engine::quotes::LADDER_SIZES_MAX {
                    return Err(ApiError::invalid("levels", "1 to 10 sizes"));
                }
                let sizes = levels
                    .iter()
                    .enumerate()
                    .map(|(index, level)| parse_quantity(desk, &instrument, &format!("levels[{index}]"), level))
                    .collect::<ApiResult<Vec<_>>>()?;
                let subscriber = otcd_services::ladders::Subscriber {
                    client_id: self.client_id.clone(),
                    sizes,
                    firm_allowed: self.can_trade,
                    sink: outbound.clone(),
                };
                let registration = self.state.ladders.subscribe(desk, &instrument, subscriber);
                // The task only holds the registration: aborting it (unsubscribe, close) unregisters.
                tokio::spawn(async move {
                    let _registration = registration;
                    std::future::pending::<()>().await;
                })
            }
        };
        if let Some(previous) = self.subscriptions.insert(key, task) {
            previous.abort();
        }
        if answered {
            return Ok(None);
        }
        Ok(Some(json!({"type": "subscribed", "channel": message.channel, "instrument": message.instrument})))
    }

    /// Answers the subscription (`resync_required` first when a resume is too old, then `subscribed`), then
    /// forwards the client's durable events of `channel` in seq order: the missed ones of a resume, then the
    /// live ones. A subscriber that falls behind the feed missed events, so its connection is closed as a slow
    /// consumer rather than go on without them.
    fn spawn_events(
        &self,
        channel: Channel,
        outbound: Outbound,
        resume_from: Option<u64>,
    ) -> ApiResult<JoinHandle<()>> {
        let filter = EventFilter::Client(self.client_id.clone());
        let (mut events, resume, published_seq) = self
            .state
            .desk
            .events
            .subscribe_from(filter, SUBSCRIBER_QUEUE_DEFAULT, resume_from)
            .map_err(|error| ApiError::unavailable(format!("{error}; retry shortly"), 5))?;
        let name = channel.name();
        let backlog = match resume {
            Some(Resume::Backlog(backlog)) => backlog,
            Some(Resume::TooOld { oldest_seq }) => {
                outbound
                    .push(json!({"type": "resync_required", "channel": name, "oldest_seq": oldest_seq}).to_string());
                Vec::new()
            }
            None => Vec::new(),
        };
        outbound
            .push(json!({"type": "subscribed", "channel": name, "instrument": null, "seq": published_seq}).to_string());
        let state = self.state.clone();
        Ok(tokio::spawn(async move {
            for event in backlog {
                let Some(message) = event_message(&state, &event, channel) else { continue };
                if !outbound.push_waiting(message).await {
                    return;
                }
            }
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let Some(message) = event_message(&state, &event, channel) else { continue };
                        if !outbound.push(message) {
                            return;
                        }
                    }
                    Err(SubscriptionEnded::FellBehind) => {
                        outbound.close.send_replace(Some(CloseReason::SlowConsumer));
                        return;
                    }
                    Err(SubscriptionEnded::Closed) => return,
                }
            }
        }))
    }
}

/// The stream message (API.md § Streaming) of an event on `channel`; `None` when the event is not on it.
/// Orders go to `orders`, trades to `trades`, balances and withdrawals to `balances`.
fn event_message(state: &AppState, event: &SequencedEvent, channel: Channel) -> Option<String> {
    let on = match &event.event {
        DeskEvent::Order(_) => Channel::Orders,
        DeskEvent::Trade(_) => Channel::Trades,
        DeskEvent::Balance(_) | DeskEvent::Withdrawal(_) => Channel::Balances,
        DeskEvent::Instruction(_) | DeskEvent::Alert(_) | DeskEvent::LedgerTransaction(_) => return None,
    };
    if on != channel {
        return None;
    }
    let mut message = event_data(&state.desk, &event.event)?;
    message["type"] = json!(event_type(&event.event));
    message["seq"] = json!(event.seq);
    Some(message.to_string())
}

/// The object a stream message or a webhook delivery carries for an event (without `type` and `seq`): the
/// order, trade, withdrawal or settlement instruction as the REST API shows it, or a balance. `None` for alerts.
pub fn event_data(desk: &otcd_services::DeskServices, event: &DeskEvent) -> Option<serde_json::Value> {
    let catalog = &desk.catalog;
    match event {
        DeskEvent::Order(order) => {
            let view = crate::views::order_view(catalog, &order.order, &order.trades)?;
            let mut message = serde_json::to_value(&view).ok()?;
            message["order_type"] = json!(view.order_type);
            Some(message)
        }
        DeskEvent::Trade(trade) => serde_json::to_value(crate::views::trade_view(catalog, trade)?).ok(),
        DeskEvent::Balance(balance) => {
            let scale = desk.scale(&balance.asset);
            Some(json!({"asset": balance.asset.to_string(), "available": format_scaled(balance.available, scale),
                "reserved": format_scaled(balance.reserved, scale)}))
        }
        DeskEvent::Withdrawal(withdrawal) => {
            serde_json::to_value(crate::views::withdrawal_view(catalog, withdrawal)).ok()
        }
        DeskEvent::Instruction(instruction) => {
            serde_json::to_value(crate::views::instruction_view(catalog, instruction)).ok()
        }
        DeskEvent::Alert(_) | DeskEvent::LedgerTransaction(_) => None,
    }
}

/// The object the desk's event stream (docs/events.md) carries for any event, desk-level ones included: what
/// [`event_data`] gives, an alert as `GET /v1/admin/alerts` shows it, and a ledger transaction with its entries.
pub fn desk_event_data(desk: &otcd_services::DeskServices, event: &DeskEvent) -> Option<serde_json::Value> {
    match event {
        DeskEvent::Alert(alert) => {
            serde_json::to_value(crate::routes::compliance::alert_view(alert, Some(&desk.catalog))).ok()
        }
        DeskEvent::LedgerTransaction(posted) => Some(ledger_transaction_data(desk, posted)),
        DeskEvent::Balance(balance) => {
            // A client's own stream knows whose balance it is; the desk's stream says it.
            let mut data = event_data(desk, event)?;
            data["client_id"] = json!(balance.client_id.to_string());
            Some(data)
        }
        _ => event_data(desk, event),
    }
}

fn ledger_transaction_data(
    desk: &otcd_services::DeskServices,
    posted: &otcd_core::engine::events::LedgerTransactionEvent,
) -> serde_json::Value {
    let (kind, reference) = posted.transaction.kind.label();
    let entries: Vec<serde_json::Value> = posted
        .entries
        .iter()
        .map(|entry| {
            let scale = desk.scale(&entry.account.asset);
            let owner = match &entry.account.owner {
                otcd_core::ledger::Owner::Desk => "desk".to_owned(),
                otcd_core::ledger::Owner::Client(client_id) => client_id.to_string(),
                otcd_core::ledger::Owner::Venue(venue) => format!("venue:{venue}"),
            };
            json!({"owner": owner, "asset": entry.account.asset.to_string(),
                "account": crate::json::enum_text(entry.account.purpose),
                "amount": format_scaled(entry.amount, scale), "balance": format_scaled(entry.balance_after, scale)})
        })
        .collect();
    json!({"transaction_id": posted.transaction.id.0.to_string(),
        "created_at": crate::json::format_timestamp(posted.transaction.at), "type": kind, "reference": reference,
        "reversed_by": posted.transaction.reversed_by.map(|id| id.0.to_string()), "entries": entries})
}

pub fn event_type(event: &DeskEvent) -> &'static str {
    match event {
        DeskEvent::Order(_) => "order",
        DeskEvent::Trade(_) => "trade",
        DeskEvent::Balance(_) => "balance",
        DeskEvent::Withdrawal(_) => "withdrawal",
        DeskEvent::Instruction(_) => "instruction",
        DeskEvent::Alert(_) => "alert",
        DeskEvent::LedgerTransaction(_) => "ledger_transaction",
    }
}

/// A `quotes` message as sent (API.md § Streaming), serialized straight from typed fields: building a
/// `serde_json::Value` first cost a map allocation per field for every distinct ladder of every tick.
/// `tick_at` (an extension of API.md's message): the newest market update behind the ladder.
#[derive(Serialize)]
struct LadderMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    instrument: &'a str,
    firm: bool,
    as_of: String,
    tick_at: String,
    levels: Vec<LevelMessage<'a>>,
}

#[derive(Serialize)]
struct LevelMessage<'a> {
    quantity: String,
    bid: Option<String>,
    ask: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quote_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
}

impl<'a> From<&'a Ladder<'a>> for LadderMessage<'a> {
    fn from(ladder: &'a Ladder<'a>) -> Self {
        let price = |value: Option<i128>| value.map(|price| format_scaled(price, ladder.price_scale));
        let levels = ladder
            .levels
            .iter()
            .map(|level| LevelMessage {
                quantity: format_scaled(level.quantity, ladder.quantity_scale),
                bid: price(level.bid),
                ask: price(level.ask),
                quote_id: level.quote_id,
                valid_until: level.valid_until.map(format_timestamp),
            })
            .collect();
        Self {
            kind: "quotes",
            instrument: ladder.instrument,
            firm: ladder.firm,
            as_of: format_timestamp(ladder.as_of),
            tick_at: format_timestamp(ladder.tick_at),
            levels,
        }
    }
}

impl LadderMessage<'_> {
    fn to_text(&self) -> Utf8Bytes {
        Utf8Bytes::from(serde_json::to_string(self).expect("a ladder message serializes"))
    }
}
