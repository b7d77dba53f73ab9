//! The quote-engine harness: a real `otcd serve --market manual` per test, signed HTTP requests, problem-detail
//! assertions, RFC 3339 parsing and a small synchronous WebSocket client for `/v1/stream`.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The default configuration of the harness: manual books stay fresh for a minute, so a busy machine cannot
/// turn a quote test into a staleness test. Quote validity keeps its built-in default.
pub const RELAXED_CONFIG: &str = "max_book_age_ms = 60000\n";

/// Tests that measure wall-clock time (staleness, expiry) and the CPU-heavy slow-consumer test take this lock,
/// so that the one does not starve the other's deadlines.
pub fn timing_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// A timestamp never handed out before for this key: two identical requests signed in the same millisecond
/// must not look like a replay. Per key, not per process: a process-wide counter runs ahead of the clock (and
/// out of the server's 30 s window) when many keys sign quickly at once.
fn fresh_timestamp(last: &AtomicI64) -> i64 {
    let mut previous = last.load(Ordering::Relaxed);
    loop {
        let next = now_ms().max(previous + 1);
        match last.compare_exchange(previous, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(current) => previous = current,
        }
    }
}

/// An HMAC API key as a client holds it.
#[derive(Clone)]
pub struct Signer {
    pub key_id: String,
    secret: String,
    last_timestamp: Arc<AtomicI64>,
}

impl Signer {
    pub fn new(key_id: &str, secret: &str) -> Self {
        Self { key_id: key_id.to_owned(), secret: secret.to_owned(), last_timestamp: Arc::new(AtomicI64::new(0)) }
    }

    /// OTC-KEY, OTC-TIMESTAMP and OTC-SIGNATURE for one request.
    pub fn headers(&self, method: &str, path_with_query: &str, body: &str) -> Vec<(String, String)> {
        let timestamp = fresh_timestamp(&self.last_timestamp).to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("any key length");
        mac.update(format!("{timestamp}\n{method}\n{path_with_query}\n{body}").as_bytes());
        vec![
            ("OTC-KEY".to_owned(), self.key_id.clone()),
            ("OTC-TIMESTAMP".to_owned(), timestamp),
            ("OTC-SIGNATURE".to_owned(), hex::encode(mac.finalize().into_bytes())),
        ]
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    /// The body as JSON, `Null` when it is not JSON.
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body, after asserting the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "expected HTTP {status}, got {}: {}", self.status, self.text);
        &self.body
    }
}

/// Asserts an RFC 9457 problem with otcd's stable code; returns the body.
#[track_caller]
pub fn assert_problem<'a>(reply: &'a Reply, status: u16, code: &str) -> &'a Value {
    assert_eq!(reply.status, status, "expected a {status} {code} problem, got {}: {}", reply.status, reply.text);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "problem content type: {reply:?}");
    for member in ["type", "title", "detail"] {
        assert!(reply.body[member].is_string(), "problem member {member} must be a string: {}", reply.text);
    }
    assert_eq!(reply.body["status"], json!(status), "problem status member: {}", reply.text);
    assert_eq!(reply.body["code"], json!(code), "problem code: {}", reply.text);
    &reply.body
}

/// `400 invalid_request` naming `field`.
#[track_caller]
pub fn assert_invalid(reply: &Reply, field: &str) {
    let body = assert_problem(reply, 400, "invalid_request");
    assert_eq!(body["field"], json!(field), "the problem must name the field: {}", reply.text);
}

/// A string member of a JSON value.
#[track_caller]
pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

/// Unix milliseconds of an RFC 3339 UTC timestamp such as `2026-11-23T23:52:00.123Z` (fraction optional).
#[track_caller]
pub fn timestamp_ms(value: &Value) -> i64 {
    let text = text(value);
    let malformed = || -> ! { panic!("not an RFC 3339 UTC timestamp: {text:?}") };
    let body = text.strip_suffix('Z').unwrap_or_else(|| malformed());
    let (date, time) = body.split_once('T').unwrap_or_else(|| malformed());
    let number = |part: &str| part.parse::<i64>().unwrap_or_else(|_| malformed());
    let date: Vec<i64> = date.split('-').map(number).collect();
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let clock: Vec<i64> = clock.split(':').map(number).collect();
    if date.len() != 3 || clock.len() != 3 || fraction.is_empty() || fraction.len() > 9 {
        malformed();
    }
    let millis = number(&format!("{fraction:0<3}")[..3]);
    // Days from the civil date (Howard Hinnant's algorithm).
    let (year, month, day) = (date[0] - i64::from(date[1] <= 2), date[1], date[2]);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    ((days * 24 + clock[0]) * 60 + clock[1]) * 60_000 + clock[2] * 1_000 + millis
}

/// A running `otcd serve --market manual`; killed when dropped.
pub struct Desk {
    child: Child,
    pub address: String,
    pub admin: Signer,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    _data: TempDir,
}

impl Desk {
    /// A new desk with [`RELAXED_CONFIG`].
    pub fn start() -> Self {
        Self::with_config(Some(RELAXED_CONFIG))
    }

    /// A new desk; `config` is the text of the `--config` TOML file, if any.
    pub fn with_config(config: Option<&str>) -> Self {
        Self::with_args(config, &[])
    }

    /// A new desk with extra command-line arguments (e.g. `--sanctions-dir DIR`).
    pub fn with_args(config: Option<&str>, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("a temporary directory");
        let data_dir = data.path().join("desk");
        let mut command = Command::new(env!("CARGO_BIN_EXE_otcd"));
        command.args(["serve", "--data-dir"]).arg(&data_dir).args(["--listen", "127.0.0.1:0", "--market", "manual"]);
        command.args(extra);
        if let Some(config) = config {
            let path = data.path().join("otcd.toml");
            std::fs::write(&path, config).expect("write the config file");
            command.arg("--config").arg(path);
        }
        let mut child = command
            .env("RUST_LOG", "info")
            .env("OTCD_ENGINE_PREFAULT_MIB", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn otcd serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let captured = log.clone();
        std::thread::spawn(move || read_log(stderr, &captured, &found));
        let address = match address.recv_timeout(START_TIMEOUT) {
            Ok(address) => address,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("otcd serve reported no `otcd listening address=` ({error}); log:\n{}", log.lock().unwrap());
            }
        };
        let key_text = std::fs::read_to_string(data_dir.join("admin-key.json")).expect("DATA/admin-key.json");
        let key: Value = serde_json::from_str(&key_text).expect("admin-key.json is JSON");
        let admin = Signer::new(&text(&key["key_id"]), &text(&key["secret"]));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(30))
            .timeout_write(Duration::from_secs(30))
            .build();
        Self { child, address, admin, log, agent, _data: data }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Any request with explicit headers; panics only on transport failures.
    pub fn send(&self, method: &str, path: &str, body: &str, headers: &[(String, String)]) -> Reply {
        let mut request = self.agent.request(method, &format!("http://{}{path}", self.address));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let result = if body.is_empty() {
            request.call()
        } else {
            request.set("Content-Type", "application/json").send_string(body)
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(error)) => {
                panic!("{method} {path}: transport error {error}; log:\n{}", self.log())
            }
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .iter()
            .map(|name| (name.clone(), response.header(name).unwrap_or("").to_owned()))
            .collect();
        let text = response.into_string().expect("a readable body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    pub fn signed(&self, signer: &Signer, method: &str, path: &str, body: &str) -> Reply {
        self.send(method, path, body, &signer.headers(method, path, body))
    }

    pub fn get(&self, signer: &Signer, path: &str) -> Reply {
        self.signed(signer, "GET", path, "")
    }

    pub fn post(&self, signer: &Signer, path: &str, body: &Value) -> Reply {
        self.signed(signer, "POST", path, &body.to_string())
    }

    pub fn put(&self, signer: &Signer, path: &str, body: &Value) -> Reply {
        self.signed(signer, "PUT", path, &body.to_string())
    }

    pub fn patch(&self, signer: &Signer, path: &str, body: &Value) -> Reply {
        self.signed(signer, "PATCH", path, &body.to_string())
    }

    /// Creates a client from a full body; returns its id.
    pub fn create_client(&self, body: &Value) -> String {
        let reply = self.post(&self.admin, "/v1/admin/clients", body);
        text(&reply.expect(201)["client_id"])
    }

    /// A prefunded DE client on `tier` with `kyc_status`, and a `read`+`trade` HMAC key for it.
    pub fn client(&self, name: &str, tier: &str, kyc_status: &str) -> (String, Signer) {
        let body = json!({"name": name, "jurisdiction": "DE", "tier": tier, "kyc_status": kyc_status, "settlement": "prefunded"});
        let client_id = self.create_client(&body);
        (client_id.clone(), self.key_for(&client_id))
    }

    /// An approved client on the standard tier with its key.
    pub fn trader(&self, name: &str) -> Signer {
        self.client(name, "standard", "approved").1
    }

    pub fn key_for(&self, client_id: &str) -> Signer {
        let body = json!({"scopes": ["read", "trade"], "algorithm": "hmac"});
        let reply = self.post(&self.admin, &format!("/v1/admin/clients/{client_id}/keys"), &body);
        let key = reply.expect(201);
        Signer::new(&text(&key["key_id"]), &text(&key["secret"]))
    }

    /// `PUT /v1/admin/tiers/{tier}`; returns the tier view.
    pub fn put_tier(&self, tier: &str, body: &Value) -> Value {
        self.put(&self.admin, &format!("/v1/admin/tiers/{tier}"), body).expect(200).clone()
    }

    /// Sets the manual price of `instrument`; returns the manual market view.
    #[track_caller]
    pub fn set_price(&self, instrument: &str, bid: &str, ask: &str) -> Value {
        let reply = self.put(&self.admin, &format!("/v1/admin/market/{instrument}"), &json!({"bid": bid, "ask": ask}));
        reply.expect(200).clone()
    }

    pub fn rfq(&self, signer: &Signer, body: &Value) -> Reply {
        self.post(signer, "/v1/rfq", body)
    }

    /// A firm quote for a base quantity (asserting 201); returns the quote.
    #[track_caller]
    pub fn quote(&self, signer: &Signer, instrument: &str, side: &str, quantity: &str) -> Value {
        let reply = self.rfq(signer, &json!({"instrument": instrument, "side": side, "quantity": quantity}));
        let quote = reply.expect(201).clone();
        assert_eq!(quote["instrument"], json!(instrument), "{quote}");
        assert_eq!(quote["side"], json!(side), "{quote}");
        assert_eq!(quote["firm"], json!(true), "{quote}");
        quote
    }

    /// The price of a firm quote for a base quantity.
    #[track_caller]
    pub fn quote_price(&self, signer: &Signer, instrument: &str, side: &str, quantity: &str) -> String {
        text(&self.quote(signer, instrument, side, quantity)["price"])
    }

    /// A WebSocket to `/v1/stream` signed with `signer`.
    pub fn stream(&self, signer: &Signer) -> Stream {
        self.stream_with(&signer.headers("GET", "/v1/stream", ""))
            .unwrap_or_else(|status| panic!("stream upgrade refused: {status}"))
    }

    /// A WebSocket upgrade with explicit headers; `Err(status)` when the server answers with plain HTTP.
    pub fn stream_with(&self, headers: &[(String, String)]) -> Result<Stream, u16> {
        let socket = TcpStream::connect(&self.address).expect("connect to the desk");
        Stream::handshake(&self.address, socket, headers)
    }

    /// A WebSocket on a socket made to back up quickly when its client stops reading: a small receive buffer and
    /// a small maximum segment size, both set before connecting (the server's send buffer is sized from the
    /// segment size, and the advertised window from the receive buffer).
    pub fn small_buffer_stream(&self, signer: &Signer) -> Stream {
        let socket = small_socket(&self.address);
        let headers = signer.headers("GET", "/v1/stream", "");
        Stream::handshake(&self.address, socket, &headers)
            .unwrap_or_else(|status| panic!("stream upgrade refused: {status}"))
    }
}

/// A TCP connection to `address` (IPv4) with SO_RCVBUF = 4 KiB and TCP_MAXSEG = 536, set before `connect`.
fn small_socket(address: &str) -> TcpStream {
    use std::os::fd::FromRawFd;
    let address: std::net::SocketAddrV4 = address.parse().expect("an IPv4 listening address");
    let set = |fd: i32, level: i32, name: i32, value: i32| {
        // SAFETY: setsockopt on a socket this function owns, with a correctly sized int option value.
        let result = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        assert_eq!(result, 0, "setsockopt({level}, {name}): {}", std::io::Error::last_os_error());
    };
    // SAFETY: plain socket creation; the descriptor is handed to a TcpStream (which closes it) below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket(): {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh socket owned by nothing else.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    set(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4_096);
    set(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, 536);
    let peer = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: address.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*address.ip()).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: `peer` is a valid sockaddr_in and the length is its size.
    let connected = unsafe {
        libc::connect(
            fd,
            (&peer as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(connected, 0, "connect(): {}", std::io::Error::last_os_error());
    stream
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read_log(stderr: impl Read, log: &Mutex<String>, found: &mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if line.contains("otcd listening") {
            if let Some(address) = line.split_whitespace().find_map(|word| word.strip_prefix("address=")) {
                let _ = found.send(address.to_owned());
            }
        }
        let mut log = log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }
}

/// What one read of a stream gave.
#[derive(Debug)]
pub enum Event {
    /// A text message, parsed as JSON.
    Message(Value),
    /// A close frame: code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame (EOF, reset, protocol error).
    Ended(String),
    /// Nothing arrived in time.
    Timeout,
}

/// A synchronous `/v1/stream` client.
pub struct Stream {
    socket: tungstenite::WebSocket<TcpStream>,
}

impl Stream {
    fn handshake(address: &str, socket: TcpStream, headers: &[(String, String)]) -> Result<Self, u16> {
        let mut request = format!("ws://{address}/v1/stream").into_client_request().expect("a valid request");
        for (name, value) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a header value"));
        }
        socket.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
        match tungstenite::client(request, socket) {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                Err(response.status().as_u16())
            }
            Err(error) => panic!("WebSocket handshake failed: {error}"),
        }
    }

    /// The client's local TCP port.
    pub fn local_port(&self) -> u16 {
        self.socket.get_ref().local_addr().expect("a local address").port()
    }

    pub fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text.to_owned())).expect("send a stream message");
    }

    pub fn send(&mut self, message: &Value) {
        self.send_text(&message.to_string());
    }

    /// Subscribes to the quotes of `instrument` at `levels`.
    pub fn subscribe_quotes(&mut self, instrument: &str, levels: &[&str]) {
        self.send(&json!({"op": "subscribe", "channel": "quotes", "instrument": instrument, "levels": levels}));
    }

    /// The next event, waiting at most `timeout`.
    pub fn read(&mut self, timeout: Duration) -> Event {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Event::Timeout;
            }
            self.socket.get_ref().set_read_timeout(Some(left)).expect("set a read timeout");
            match self.socket.read() {
                Ok(Message::Text(message)) => {
                    let value = serde_json::from_str(message.as_str()).unwrap_or_else(|error| {
                        panic!("a stream message that is not JSON ({error}): {}", message.as_str())
                    });
                    return Event::Message(value);
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) =
                        frame.map_or((1005, String::new()), |frame| (u16::from(frame.code), frame.reason.to_string()));
                    return Event::Closed(code, reason);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(error) => return Event::Ended(error.to_string()),
            }
        }
    }

    /// The next message for which `wanted` holds, skipping others; panics on a close or after `timeout`.
    #[track_caller]
    pub fn next_where(&mut self, timeout: Duration, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            match self.read(deadline.saturating_duration_since(Instant::now())) {
                Event::Message(message) if wanted(&message) => return message,
                Event::Message(message) => {
                    if skipped.len() < 5 {
                        skipped.push(message);
                    }
                }
                other => panic!("waiting for {what}: got {other:?}; skipped (first 5): {skipped:?}"),
            }
        }
    }

    /// The next message that is not a `quotes` ladder (replies and errors), skipping ladders.
    #[track_caller]
    pub fn next_reply(&mut self, timeout: Duration) -> Value {
        self.next_where(timeout, "a reply", |message| message["type"] != "quotes")
    }
}

/// The `(bid, ask)` strings of every level of a ladder.
pub fn ladder_prices(message: &Value) -> Vec<(String, String)> {
    let levels = message["levels"].as_array().unwrap_or_else(|| panic!("a ladder has levels: {message}"));
    levels.iter().map(|level| (text(&level["bid"]), text(&level["ask"]))).collect()
}
