//! A small synchronous WebSocket client for `/v1/stream`: opened signed, with a session token or with explicit
//! headers, on an ordinary socket or on one made to back up quickly (for slow-consumer tests), and read with
//! deadlines so that a silent desk fails a test instead of hanging it.

use crate::http::text;
use crate::process::TestDesk;
use crate::signing::Signer;
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::Message;

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

impl TestDesk {
    /// A WebSocket to `/v1/stream` signed with `signer`.
    pub fn stream(&self, signer: &Signer) -> Stream {
        self.stream_with(&signer.headers("GET", "/v1/stream", ""))
            .unwrap_or_else(|status| panic!("stream upgrade refused: {status}"))
    }

    /// A WebSocket upgrade with explicit headers; `Err(status)` when the server answers with plain HTTP.
    pub fn stream_with(&self, headers: &[(String, String)]) -> Result<Stream, u16> {
        let socket = TcpStream::connect(&self.address).expect("connect to the desk");
        Stream::handshake(&self.address, "/v1/stream", socket, headers)
    }

    /// `/v1/stream?token=...` with a session token instead of a signature; `Err(status)` when refused with plain
    /// HTTP.
    pub fn stream_with_token(&self, token: &str) -> Result<Stream, u16> {
        let socket = TcpStream::connect(&self.address).expect("connect to the desk");
        Stream::handshake(&self.address, &format!("/v1/stream?token={token}"), socket, &[])
    }

    /// A WebSocket on a socket made to back up quickly when its client stops reading: a small receive buffer and
    /// a small maximum segment size, both set before connecting (the server's send buffer is sized from the
    /// segment size, and the advertised window from the receive buffer).
    pub fn small_buffer_stream(&self, signer: &Signer) -> Stream {
        let socket = small_socket(&self.address);
        let headers = signer.headers("GET", "/v1/stream", "");
        Stream::handshake(&self.address, "/v1/stream", socket, &headers)
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

impl Stream {
    fn handshake(address: &str, path: &str, socket: TcpStream, headers: &[(String, String)]) -> Result<Self, u16> {
        let mut request = format!("ws://{address}{path}").into_client_request().expect("a valid request");
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            request.headers_mut().insert(name, HeaderValue::from_str(value).expect("a header value"));
        }
        // A desk that never answers the upgrade fails the test rather than hanging it.
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

    /// Every message that arrives until the stream has been quiet for `quiet` (at most `wait` in all); panics
    /// when the stream ends or never goes quiet.
    pub fn messages_until_quiet(&mut self, quiet: Duration, wait: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + wait;
        let mut messages = Vec::new();
        while std::time::Instant::now() < deadline {
            match self.read(quiet) {
                Event::Message(message) => messages.push(message),
                Event::Timeout => return messages,
                other => panic!("the stream ended: {other:?} after {messages:?}"),
            }
        }
        panic!("the stream never went quiet: {messages:?}")
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
