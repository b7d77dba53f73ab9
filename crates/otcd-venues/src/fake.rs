//! Fake venues on loopback for tests and demos (feature `fake`): a WebSocket server and a REST server per venue,
//! speaking the venue's documented formats.
//!
//! A [`FakeVenue`] is driven two ways, which mix:
//!
//! - **scripted**: the test sends exact messages ([`FakeVenue::send`], [`FakeVenue::send_raw`]), sets REST bodies
//!   ([`FakeVenue::push_rest`]), drops connections ([`FakeVenue::disconnect`]) and reads what clients sent;
//! - **market**: [`FakeVenue::serve_book`] answers subscriptions with a snapshot of a fixed book in the venue's
//!   format and then keeps it alive with a valid update every interval (Coinbase and Kraken also send their
//!   heartbeats), until [`FakeVenue::pause`] makes it go silent.
//!
//! The formatters ([`binance_event`], [`coinbase_l2`], [`kraken_book`], [`bitstamp_diff`], ...) build each
//! venue's messages from text levels, so fixtures read like the venues' documentation.

use crate::config::VenueKind;
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Text levels: (price, quantity).
pub type TextLevels = Vec<(String, String)>;

/// Longest HTTP request head the fake REST server reads.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// A fixed book the fake venue serves in [`FakeVenue::serve_book`] mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeBook {
    /// The venue's symbol (`BTCUSDT`, `BTC-USD`, `BTC/USD`, `btcusd`).
    pub symbol: String,
    /// Best first.
    pub bids: TextLevels,
    /// Best first.
    pub asks: TextLevels,
}

impl FakeBook {
    pub fn new(symbol: &str, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> FakeBook {
        let owned = |levels: &[(&str, &str)]| levels.iter().map(|(p, q)| (p.to_string(), q.to_string())).collect();
        FakeBook { symbol: symbol.to_owned(), bids: owned(bids), asks: owned(asks) }
    }
}

enum Command {
    Send(Message),
    Close,
}

/// What a market-mode connection does on each received text and each tick.
trait Script: Send {
    fn on_text(&mut self, text: &str) -> Vec<String>;
    fn tick(&mut self) -> Vec<String>;
}

type ScriptFactory = Arc<dyn Fn() -> Box<dyn Script> + Send + Sync>;
type RestResponder = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Default)]
struct Shared {
    clients: Mutex<Vec<mpsc::UnboundedSender<Command>>>,
    received: Mutex<Vec<String>>,
    rest_bodies: Mutex<HashMap<String, VecDeque<String>>>,
    rest_requests: Mutex<Vec<String>>,
    connections: AtomicUsize,
    paused: AtomicBool,
    script: Mutex<Option<ScriptFactory>>,
    rest_responder: Mutex<Option<RestResponder>>,
    interval_ms: AtomicU64,
    trading: Mutex<Option<Arc<crate::fake_binance::FakeBinanceTrading>>>,
}

/// One fake venue: a WebSocket listener and a REST listener on 127.0.0.1. Dropping it stops both.
pub struct FakeVenue {
    kind: VenueKind,
    ws_address: SocketAddr,
    rest_address: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeVenue {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
        self.disconnect();
    }
}

impl FakeVenue {
    /// Starts a fake venue of `kind` on two free loopback ports.
    pub async fn start(kind: VenueKind) -> std::io::Result<FakeVenue> {
        let ws = TcpListener::bind("127.0.0.1:0").await?;
        let rest = TcpListener::bind("127.0.0.1:0").await?;
        let shared = Arc::new(Shared::default());
        shared.interval_ms.store(100, Ordering::Relaxed);
        let (ws_address, rest_address) = (ws.local_addr()?, rest.local_addr()?);
        let tasks = vec![tokio::spawn(accept_ws(ws, shared.clone())), tokio::spawn(accept_rest(rest, shared.clone()))];
        Ok(FakeVenue { kind, ws_address, rest_address, shared, tasks })
    }

    pub fn kind(&self) -> VenueKind {
        self.kind
    }

    /// The WebSocket URL to configure as `ws_url`.
    pub fn ws_url(&self) -> String {
        let path = match self.kind {
            VenueKind::Binance => "/ws",
            VenueKind::Kraken => "/v2",
            _ => "",
        };
        format!("ws://{}{path}", self.ws_address)
    }

    /// The REST base URL to configure as `rest_url`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_address)
    }

    /// Sends `text` to every connected client.
    pub fn send(&self, text: &str) {
        self.send_raw(Message::Text(text.to_owned().into()));
    }

    /// Sends any WebSocket message (binary, oversized, ...) to every connected client.
    pub fn send_raw(&self, message: Message) {
        let clients = self.shared.clients.lock().expect("not poisoned");
        for client in clients.iter() {
            let _ = client.send(Command::Send(message.clone()));
        }
    }

    /// Drops every client connection (without a close handshake: the network went away).
    pub fn disconnect(&self) {
        let mut clients = self.shared.clients.lock().expect("not poisoned");
        for client in clients.drain(..) {
            let _ = client.send(Command::Close);
        }
    }

    /// Queues a REST body for the request target `target` (path and query). Bodies are served in order; the last
    /// one keeps being served.
    pub fn push_rest(&self, target: &str, body: &str) {
        let mut bodies = self.shared.rest_bodies.lock().expect("not poisoned");
        bodies.entry(target.to_owned()).or_default().push_back(body.to_owned());
    }

    /// Texts received from clients so far, in order.
    pub fn received(&self) -> Vec<String> {
        self.shared.received.lock().expect("not poisoned").clone()
    }

    /// REST request targets received so far, in order.
    pub fn rest_requests(&self) -> Vec<String> {
        self.shared.rest_requests.lock().expect("not poisoned").clone()
    }

    /// WebSocket connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` connections were accepted.
    pub async fn wait_connections(&self, count: usize, timeout: Duration) -> bool {
        wait(timeout, || self.connections() >= count).await
    }

    /// Waits until a client sent a text containing `needle`, `count` times in all.
    pub async fn wait_received(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait(timeout, || self.received().iter().filter(|text| text.contains(needle)).count() >= count).await
    }

    /// Waits until the REST server answered `count` requests.
    pub async fn wait_rest_requests(&self, count: usize, timeout: Duration) -> bool {
        wait(timeout, || self.rest_requests().len() >= count).await
    }

    /// Market mode: serves `books` in the venue's format (snapshots on subscription or over REST, then an update
    /// every `interval` that re-states each best bid, and heartbeats where the venue has them).
    pub fn serve_book(&self, books: Vec<FakeBook>, interval: Duration) {
        self.shared.interval_ms.store(interval.as_millis().max(1) as u64, Ordering::Relaxed);
        let books = Arc::new(books);
        let counter = Arc::new(AtomicU64::new(1_000));
        let factory: ScriptFactory = match self.kind {
            VenueKind::Binance => {
                let (books, counter) = (books.clone(), counter.clone());
                Arc::new(move || {
                    Box::new(BinanceScript { books: books.clone(), counter: counter.clone() }) as Box<dyn Script>
                })
            }
            VenueKind::Bitstamp => {
                let (books, counter) = (books.clone(), counter.clone());
                Arc::new(move || {
                    Box::new(BitstampScript { books: books.clone(), counter: counter.clone() }) as Box<dyn Script>
                })
            }
            VenueKind::Coinbase => {
                let books = books.clone();
                Arc::new(move || {
                    Box::new(CoinbaseScript { books: books.clone(), sequence: 0, subscribed: false }) as Box<dyn Script>
                })
            }
            VenueKind::Kraken => {
                let books = books.clone();
                Arc::new(move || Box::new(KrakenScript { books: books.clone(), subscribed: false }) as Box<dyn Script>)
            }
            VenueKind::Sim => return,
        };
        *self.shared.script.lock().expect("not poisoned") = Some(factory);
        let kind = self.kind;
        let responder: RestResponder = Arc::new(move |target: &str| {
            let book = books.iter().find(|book| match kind {
                VenueKind::Binance => target.contains(&format!("symbol={}&", book.symbol.to_ascii_uppercase())),
                _ => target.contains(&format!("/order_book/{}/", book.symbol.to_ascii_lowercase())),
            })?;
            let now = counter.load(Ordering::SeqCst);
            Some(match kind {
                VenueKind::Binance => binance_snapshot(now, &book.bids, &book.asks),
                _ => bitstamp_snapshot(now, &book.bids, &book.asks),
            })
        });
        *self.shared.rest_responder.lock().expect("not poisoned") = Some(responder);
    }

    /// Turns on Binance order entry on the REST port (kind Binance): signed with `api_key` and `secret`, taker
    /// commission `taker_fee_centi_bps` (see [`crate::fake_binance`]). The handle sets books, balances and faults.
    pub fn enable_trading(
        &self,
        api_key: &str,
        secret: &str,
        taker_fee_centi_bps: i128,
    ) -> Arc<crate::fake_binance::FakeBinanceTrading> {
        let trading = Arc::new(crate::fake_binance::FakeBinanceTrading::new(api_key, secret, taker_fee_centi_bps));
        *self.shared.trading.lock().expect("not poisoned") = Some(trading.clone());
        trading
    }

    /// Market mode goes silent (no updates, no heartbeats; connections stay open) until [`FakeVenue::resume`].
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
    }
}

async fn wait(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

async fn accept_ws(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_ws(stream, shared.clone()));
    }
}

async fn serve_ws(stream: TcpStream, shared: Arc<Shared>) {
    let Ok(socket) = tokio_tungstenite::accept_async(stream).await else { return };
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let (sender, mut commands) = mpsc::unbounded_channel();
    shared.clients.lock().expect("not poisoned").push(sender);
    let mut script = shared.script.lock().expect("not poisoned").as_ref().map(|factory| factory());
    let (mut sink, mut stream) = socket.split();
    let interval = Duration::from_millis(shared.interval_ms.load(Ordering::Relaxed));
    let mut ticker = tokio::time::interval(interval);
    loop {
        let outgoing: Vec<String> = tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(message)) => {
                    if sink.send(message).await.is_err() { return; }
                    continue;
                }
                Some(Command::Close) | None => return,
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    shared.received.lock().expect("not poisoned").push(text.to_string());
                    script.as_mut().map(|script| script.on_text(text.as_str())).unwrap_or_default()
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return,
            },
            _ = ticker.tick() => {
                if shared.paused.load(Ordering::SeqCst) { continue; }
                script.as_mut().map(|script| script.tick()).unwrap_or_default()
            }
        };
        for text in outgoing {
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

async fn accept_rest(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_rest(stream, shared.clone()));
    }
}

async fn serve_rest(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    let head_end = loop {
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if head.len() > REQUEST_HEAD_BYTES_MAX {
            return;
        }
    };
    let text = String::from_utf8_lossy(&head[..head_end]).into_owned();
    let mut words = text.split_whitespace();
    let method = words.next().unwrap_or("GET").to_owned();
    let target = words.next().unwrap_or("/").to_owned();
    let header = |name: &str| {
        text.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length").and_then(|value| value.parse().ok()).unwrap_or(0);
    if length > REQUEST_HEAD_BYTES_MAX {
        return;
    }
    let mut body = head[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => body.extend_from_slice(&buffer[..read]),
        }
    }
    shared.rest_requests.lock().expect("not poisoned").push(target.clone());
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let trading = shared.trading.lock().expect("not poisoned").clone();
    if let Some(trading) = trading.filter(|_| crate::fake_binance::FakeBinanceTrading::handles(path)) {
        let body = String::from_utf8_lossy(&body).into_owned();
        let answer = trading.handle(&method, path, query, &body, header("x-mbx-apikey").as_deref());
        tokio::time::sleep(answer.delay).await;
        let reason = if answer.status == 200 { "OK" } else { "Error" };
        let response = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    let queued = {
        let mut bodies = shared.rest_bodies.lock().expect("not poisoned");
        bodies
            .get_mut(&target)
            .and_then(|queue| if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() })
    };
    let responder = shared.rest_responder.lock().expect("not poisoned").clone();
    let body = queued.or_else(|| responder.and_then(|responder| responder(&target)));
    let response = match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn pairs(levels: &[(String, String)]) -> serde_json::Value {
    levels.iter().map(|(price, quantity)| serde_json::json!([price, quantity])).collect()
}

/// A Binance `depthUpdate` event.
pub fn binance_event(
    symbol: &str,
    first: u64,
    last: u64,
    bids: &[(String, String)],
    asks: &[(String, String)],
) -> String {
    serde_json::json!({"e": "depthUpdate", "E": 1_700_000_000_000_u64, "s": symbol.to_ascii_uppercase(),
        "U": first, "u": last, "b": pairs(bids), "a": pairs(asks)})
    .to_string()
}

/// A Binance `GET /api/v3/depth` body.
pub fn binance_snapshot(last_update_id: u64, bids: &[(String, String)], asks: &[(String, String)]) -> String {
    serde_json::json!({"lastUpdateId": last_update_id, "bids": pairs(bids), "asks": pairs(asks)}).to_string()
}

/// The request target of a Binance snapshot (as the connector asks for it, `snapshot_limit` 1000).
pub fn binance_snapshot_target(symbol: &str) -> String {
    format!("/api/v3/depth?symbol={}&limit=1000", symbol.to_ascii_uppercase())
}

/// A Coinbase `l2_data` message with one event.
pub fn coinbase_l2(
    sequence: u64,
    kind: &str,
    product: &str,
    bids: &[(String, String)],
    asks: &[(String, String)],
) -> String {
    let side = |side: &str, levels: &[(String, String)]| -> Vec<serde_json::Value> {
        levels
            .iter()
            .map(|(price, quantity)| {
                serde_json::json!({"side": side, "event_time": "2023-02-09T20:32:50.714964855Z",
                    "price_level": price, "new_quantity": quantity})
            })
            .collect()
    };
    let mut updates = side("bid", bids);
    updates.extend(side("offer", asks));
    serde_json::json!({"channel": "l2_data", "client_id": "", "timestamp": "2023-02-09T20:32:50.714964855Z",
        "sequence_num": sequence, "events": [{"type": kind, "product_id": product, "updates": updates}]})
    .to_string()
}

/// A Coinbase `heartbeats` message.
pub fn coinbase_heartbeat(sequence: u64) -> String {
    serde_json::json!({"channel": "heartbeats", "client_id": "", "timestamp": "2023-06-23T20:31:26.122969572Z",
        "sequence_num": sequence, "events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC",
        "heartbeat_counter": sequence.to_string()}]})
    .to_string()
}

/// A Kraken v2 `book` message (numbers written as JSON numbers in full precision) with `checksum`.
pub fn kraken_book(
    kind: &str,
    symbol: &str,
    bids: &[(String, String)],
    asks: &[(String, String)],
    checksum: u32,
) -> String {
    let levels = |levels: &[(String, String)]| {
        levels.iter().map(|(price, qty)| format!(r#"{{"price":{price},"qty":{qty}}}"#)).collect::<Vec<_>>().join(",")
    };
    format!(
        r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
        levels(bids),
        levels(asks)
    )
}

/// The checksum Kraken would send for a full book (best first on both sides).
pub fn kraken_checksum(bids: &[(String, String)], asks: &[(String, String)]) -> u32 {
    crate::kraken::checksum_of_text(&text_refs(asks), &text_refs(bids))
}

fn text_refs(levels: &[(String, String)]) -> Vec<(&str, &str)> {
    levels.iter().map(|(price, quantity)| (price.as_str(), quantity.as_str())).collect()
}

/// A Bitstamp `diff_order_book` data message.
pub fn bitstamp_diff(pair: &str, microtimestamp: u64, bids: &[(String, String)], asks: &[(String, String)]) -> String {
    serde_json::json!({"data": {"timestamp": (microtimestamp / 1_000_000).to_string(),
        "microtimestamp": microtimestamp.to_string(), "bids": pairs(bids), "asks": pairs(asks)},
        "channel": format!("diff_order_book_{pair}"), "event": "data"})
    .to_string()
}

/// A Bitstamp `GET /api/v2/order_book/{pair}/` body.
pub fn bitstamp_snapshot(microtimestamp: u64, bids: &[(String, String)], asks: &[(String, String)]) -> String {
    serde_json::json!({"timestamp": (microtimestamp / 1_000_000).to_string(),
        "microtimestamp": microtimestamp.to_string(), "bids": pairs(bids), "asks": pairs(asks)})
    .to_string()
}

/// The request target of a Bitstamp snapshot.
pub fn bitstamp_snapshot_target(pair: &str) -> String {
    format!("/api/v2/order_book/{}/", pair.to_ascii_lowercase())
}

fn best_bid(book: &FakeBook) -> Vec<(String, String)> {
    book.bids.first().cloned().into_iter().collect()
}

struct BinanceScript {
    books: Arc<Vec<FakeBook>>,
    counter: Arc<AtomicU64>,
}

impl Script for BinanceScript {
    fn on_text(&mut self, text: &str) -> Vec<String> {
        if text.contains("SUBSCRIBE") {
            vec![r#"{"result":null,"id":1}"#.to_owned()]
        } else {
            Vec::new()
        }
    }

    fn tick(&mut self) -> Vec<String> {
        let id = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        // One update id per tick, shared by every book (each book's events are consecutive); the REST snapshot
        // answers the current id, so a snapshot always lines up with the stream.
        self.books.iter().map(|book| binance_event(&book.symbol, id, id, &best_bid(book), &[])).collect()
    }
}

struct BitstampScript {
    books: Arc<Vec<FakeBook>>,
    counter: Arc<AtomicU64>,
}

impl Script for BitstampScript {
    fn on_text(&mut self, text: &str) -> Vec<String> {
        let channel = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|value| value["data"]["channel"].as_str().map(str::to_owned));
        match channel {
            Some(channel) if text.contains("bts:subscribe") => vec![serde_json::json!({
                "event": "bts:subscription_succeeded", "channel": channel, "data": {}})
            .to_string()],
            _ if text.contains("bts:heartbeat") => {
                vec![r#"{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}"#.to_owned()]
            }
            _ => Vec::new(),
        }
    }

    fn tick(&mut self) -> Vec<String> {
        let micro = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.books
            .iter()
            .map(|book| bitstamp_diff(&book.symbol.to_ascii_lowercase(), micro, &best_bid(book), &[]))
            .collect()
    }
}

struct CoinbaseScript {
    books: Arc<Vec<FakeBook>>,
    sequence: u64,
    subscribed: bool,
}

impl CoinbaseScript {
    fn next(&mut self) -> u64 {
        let sequence = self.sequence;
        self.sequence += 1;
        sequence
    }
}

impl Script for CoinbaseScript {
    fn on_text(&mut self, text: &str) -> Vec<String> {
        if !(text.contains("\"subscribe\"") && text.contains("\"level2\"")) {
            return Vec::new();
        }
        self.subscribed = true;
        let mut out = vec![serde_json::json!({"channel": "subscriptions", "client_id": "",
            "timestamp": "2023-02-09T20:32:50.714964855Z", "sequence_num": self.next(), "events": []})
        .to_string()];
        for book in self.books.clone().iter() {
            let sequence = self.next();
            out.push(coinbase_l2(sequence, "snapshot", &book.symbol, &book.bids, &book.asks));
        }
        out
    }

    fn tick(&mut self) -> Vec<String> {
        if !self.subscribed {
            return Vec::new();
        }
        let mut out = Vec::new();
        for book in self.books.clone().iter() {
            let sequence = self.next();
            out.push(coinbase_l2(sequence, "update", &book.symbol, &best_bid(book), &[]));
        }
        let sequence = self.next();
        out.push(coinbase_heartbeat(sequence));
        out
    }
}

struct KrakenScript {
    books: Arc<Vec<FakeBook>>,
    subscribed: bool,
}

impl Script for KrakenScript {
    fn on_text(&mut self, text: &str) -> Vec<String> {
        if text.contains("\"ping\"") {
            return vec![
                r#"{"method":"pong","time_in":"2023-10-06T17:35:55.440295Z","time_out":"2023-10-06T17:35:55.440512Z"}"#
                    .to_owned(),
            ];
        }
        if !text.contains("\"subscribe\"") {
            return Vec::new();
        }
        self.subscribed = true;
        let mut out = Vec::new();
        for book in self.books.iter() {
            out.push(format!(r#"{{"method":"subscribe","result":{{"channel":"book","depth":10,"snapshot":true,"symbol":"{}"}},"success":true,"time_in":"2023-10-06T17:35:55.440295Z","time_out":"2023-10-06T17:35:55.440512Z"}}"#, book.symbol));
            let checksum = kraken_checksum(&book.bids, &book.asks);
            out.push(kraken_book("snapshot", &book.symbol, &book.bids, &book.asks, checksum));
        }
        out
    }

    fn tick(&mut self) -> Vec<String> {
        if !self.subscribed {
            return Vec::new();
        }
        let mut out: Vec<String> = self
            .books
            .iter()
            .map(|book| {
                kraken_book("update", &book.symbol, &best_bid(book), &[], kraken_checksum(&book.bids, &book.asks))
            })
            .collect();
        out.push(r#"{"channel":"heartbeat"}"#.to_owned());
        out
    }
}
