//! Connection limits of the HTTP edge: how many connections, from one address and in all, how many WebSockets,
//! and how long a connection may take to send its request headers or sit without moving a byte.
//!
//! A connection past a cap is refused at accept time, before any HTTP parsing: the socket is closed with a reset
//! (`SO_LINGER` 0, so it leaves no `TIME_WAIT` behind on the desk), a metric counts it and a log line says so at
//! most once a second. Without these, 1,100 idle sockets from one address exhausted a 1,024-descriptor limit and
//! shut every client out, silently (issue 15).

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The limits, from the configuration file (docs/configuration.md); the defaults suit a small desk host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in all (HTTP and WebSocket); sized under the process's file-descriptor limit at start.
    pub connections_max: usize,
    /// Open connections from one source address.
    pub connections_per_address_max: usize,
    /// Open WebSocket streams in all (each also counts as a connection).
    pub websockets_max: usize,
    /// From the connection's start, or the end of the previous response, to the end of the next request's
    /// headers: a slow-header client and an idle keep-alive connection are both closed after it.
    pub header_read_timeout: Duration,
    /// A connection that moves no byte in either direction for this long is closed (a stalled reader, a peer
    /// gone silent).
    pub idle_timeout: Duration,
    /// Longest time to receive a request's body.
    pub body_read_timeout: Duration,
    /// Largest read buffer of one HTTP connection (headers and body chunks pass through it).
    pub read_buffer_bytes_max: usize,
}

pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
pub const CONNECTIONS_PER_ADDRESS_MAX_DEFAULT: usize = 256;
pub const WEBSOCKETS_MAX_DEFAULT: usize = 5_000;
pub const HEADER_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
pub const BODY_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// hyper's smallest allowed read buffer is 8 KiB; a request's headers and a 64 KiB body's chunks fit in this.
pub const READ_BUFFER_BYTES_MAX_DEFAULT: usize = 64 * 1024;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            connections_max: CONNECTIONS_MAX_DEFAULT,
            connections_per_address_max: CONNECTIONS_PER_ADDRESS_MAX_DEFAULT,
            websockets_max: WEBSOCKETS_MAX_DEFAULT,
            header_read_timeout: HEADER_READ_TIMEOUT_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            body_read_timeout: BODY_READ_TIMEOUT_DEFAULT,
            read_buffer_bytes_max: READ_BUFFER_BYTES_MAX_DEFAULT,
        }
    }
}

impl ConnectionLimits {
    /// The limits sized under a file-descriptor limit of `descriptors`: `reserved` descriptors stay for the
    /// journal, snapshots, reports and the listener, and the caps never exceed what is left.
    pub fn sized_under(mut self, descriptors: u64, reserved: u64) -> Self {
        let available = usize::try_from(descriptors.saturating_sub(reserved)).unwrap_or(usize::MAX).max(1);
        self.connections_max = self.connections_max.min(available);
        self.connections_per_address_max = self.connections_per_address_max.min(self.connections_max);
        self.websockets_max = self.websockets_max.min(self.connections_max);
        self
    }
}

/// Why a connection or a WebSocket was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    Connections,
    PerAddress,
    WebSockets,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Connections => "connections_max",
            Refusal::PerAddress => "connections_per_address_max",
            Refusal::WebSockets => "websockets_max",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    limit: &'static str,
}

/// Open connections and WebSockets, and the limits they are held to.
pub struct ConnectionTracker {
    pub limits: ConnectionLimits,
    open: AtomicUsize,
    websockets: AtomicUsize,
    /// Open connections per source address; an address leaves the map with its last connection, so the map holds
    /// at most `connections_max` entries.
    per_address: Mutex<HashMap<IpAddr, usize>>,
    open_gauge: Gauge,
    websockets_gauge: Gauge,
    refused: Family<RefusalLabels, Counter>,
    log: LogThrottle,
}

impl ConnectionTracker {
    /// Registers `http_connections_open`, `http_websockets_open` and `http_connections_refused{limit}`.
    pub fn new(limits: ConnectionLimits, metrics: &otcd_host::metrics::Metrics) -> Self {
        assert!(limits.connections_max > 0 && limits.connections_per_address_max > 0 && limits.websockets_max > 0);
        let tracker = Self {
            limits,
            open: AtomicUsize::new(0),
            websockets: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            open_gauge: Gauge::default(),
            websockets_gauge: Gauge::default(),
            refused: Family::default(),
            log: LogThrottle::default(),
        };
        metrics.register(
            "http_connections_open",
            "open HTTP connections (WebSockets included)",
            tracker.open_gauge.clone(),
        );
        metrics.register("http_websockets_open", "open WebSocket streams", tracker.websockets_gauge.clone());
        metrics.register(
            "http_connections_refused",
            "connections and WebSockets refused at a limit, by limit",
            tracker.refused.clone(),
        );
        tracker
    }

    /// A connection from `address` may stay open as long as the permit lives; `Err` past a cap.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionPermit, Refusal> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.limits.connections_max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(Refusal::Connections, address));
        }
        let mut per_address = self.per_address.lock();
        let count = per_address.entry(address).or_insert(0);
        if *count >= self.limits.connections_per_address_max {
            drop(per_address);
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(Refusal::PerAddress, address));
        }
        *count += 1;
        drop(per_address);
        self.open_gauge.inc();
        Ok(ConnectionPermit { tracker: self.clone(), address })
    }

    /// A WebSocket may stay open as long as the permit lives; `Err` at `websockets_max`.
    pub fn admit_websocket(self: &Arc<Self>, address: IpAddr) -> Result<WebSocketPermit, Refusal> {
        if self.websockets.fetch_add(1, Ordering::AcqRel) >= self.limits.websockets_max {
            self.websockets.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(Refusal::WebSockets, address));
        }
        self.websockets_gauge.inc();
        Ok(WebSocketPermit { tracker: self.clone() })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn refuse(&self, refusal: Refusal, address: IpAddr) -> Refusal {
        self.refused.get_or_create(&RefusalLabels { limit: refusal.as_str() }).inc();
        if let Some(suppressed) = self.log.admit() {
            tracing::warn!(limit = refusal.as_str(), %address, open = self.open(), suppressed,
                "connection refused at a limit (at most one such line a second; `suppressed` counts the others)");
        }
        refusal
    }

    /// A failed `accept` (out of file descriptors, most often): logged at most once a second.
    pub fn accept_failed(&self, error: &io::Error) {
        if let Some(suppressed) = self.log.admit() {
            tracing::warn!(%error, open = self.open(), suppressed, "accepting a connection failed");
        }
    }
}

/// One open connection; dropping it frees its place.
pub struct ConnectionPermit {
    tracker: Arc<ConnectionTracker>,
    address: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut per_address = self.tracker.per_address.lock();
        if let Some(count) = per_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&self.address);
            }
        } else {
            debug_assert!(false, "a permit's address is counted");
        }
        drop(per_address);
        self.tracker.open.fetch_sub(1, Ordering::AcqRel);
        self.tracker.open_gauge.dec();
    }
}

/// One open WebSocket; dropping it frees its place.
pub struct WebSocketPermit {
    tracker: Arc<ConnectionTracker>,
}

impl Drop for WebSocketPermit {
    fn drop(&mut self) {
        self.tracker.websockets.fetch_sub(1, Ordering::AcqRel);
        self.tracker.websockets_gauge.dec();
    }
}

/// At most one log line a second; counts the lines it held back.
#[derive(Default)]
struct LogThrottle {
    last_second: AtomicI64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// `Some(lines held back since the last one)` when a line may be written now.
    fn admit(&self) -> Option<u64> {
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
        let last = self.last_second.load(Ordering::Relaxed);
        if second != last
            && self.last_second.compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// A TCP connection that holds its place (the permit) and fails with `TimedOut` once it has moved no byte for
/// `idle`. The timer is reset lazily: activity only records an instant, and the sleep is re-armed when it fires
/// early, so a busy connection costs no timer operation per read or write.
pub struct GuardedStream {
    stream: TcpStream,
    idle: Duration,
    last_activity: Instant,
    deadline: Pin<Box<Sleep>>,
    _permit: ConnectionPermit,
}

impl GuardedStream {
    pub fn new(stream: TcpStream, idle: Duration, permit: ConnectionPermit) -> Self {
        let now = Instant::now();
        Self {
            stream,
            idle,
            last_activity: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle)),
            _permit: permit,
        }
    }

    /// `true` once the connection has been idle for `idle`; otherwise the task is woken when it may be.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_activity + self.idle;
            if due <= Instant::now() {
                return true;
            }
            self.deadline.as_mut().reset(due);
        }
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>, moved: bool) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(Ok(value)) => {
                if moved {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(Ok(value))
            }
            Poll::Pending if self.idle_expired(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the connection was idle too long")))
            }
            other => other,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        let moved = buf.filled().len() > before;
        this.progress(cx, result, moved)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, data);
        let moved = matches!(result, Poll::Ready(Ok(written)) if written > 0);
        this.progress(cx, result, moved)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, data);
        let moved = matches!(result, Poll::Ready(Ok(written)) if written > 0);
        this.progress(cx, result, moved)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(limits: ConnectionLimits) -> Arc<ConnectionTracker> {
        Arc::new(ConnectionTracker::new(limits, &otcd_host::metrics::Metrics::new()))
    }

    #[test]
    fn caps_hold_and_dropped_permits_free_their_places() {
        let limits = ConnectionLimits { connections_max: 3, connections_per_address_max: 2, ..Default::default() };
        let tracker = tracker(limits);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = tracker.admit(a).unwrap();
        let _second = tracker.admit(a).unwrap();
        assert_eq!(tracker.admit(a).err(), Some(Refusal::PerAddress));
        let _third = tracker.admit(b).unwrap();
        assert_eq!(tracker.admit(b).err(), Some(Refusal::Connections));
        assert_eq!(tracker.open(), 3);
        drop(first);
        assert_eq!(tracker.open(), 2);
        let _again = tracker.admit(a).unwrap();
        assert_eq!(tracker.per_address.lock().len(), 2);
    }

    #[test]
    fn websockets_have_their_own_cap() {
        let tracker = tracker(ConnectionLimits { websockets_max: 1, ..Default::default() });
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        let first = tracker.admit_websocket(address).unwrap();
        assert_eq!(tracker.admit_websocket(address).err(), Some(Refusal::WebSockets));
        drop(first);
        assert!(tracker.admit_websocket(address).is_ok());
    }

    #[test]
    fn caps_are_sized_under_the_descriptor_limit() {
        let sized = ConnectionLimits::default().sized_under(1_024, 256);
        assert_eq!((sized.connections_max, sized.connections_per_address_max, sized.websockets_max), (768, 256, 768));
        let roomy = ConnectionLimits::default().sized_under(1 << 20, 256);
        assert_eq!(roomy.connections_max, CONNECTIONS_MAX_DEFAULT);
    }

    #[test]
    fn the_log_throttle_admits_one_line_a_second() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.admit(), Some(0));
        let held_back = (0..100).filter(|_| throttle.admit().is_none()).count();
        assert!(held_back >= 99, "{held_back}");
    }

    #[tokio::test]
    async fn an_idle_connection_times_out_and_a_busy_one_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(address).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let tracker = tracker(ConnectionLimits::default());
        let idle = Duration::from_millis(400);
        let mut guarded = GuardedStream::new(server, idle, tracker.admit(peer.ip()).unwrap());
        let mut buffer = [0u8; 8];
        let started = Instant::now();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(guarded.read(&mut buffer).await.unwrap(), 1, "activity keeps it open past the idle time");
        }
        assert!(started.elapsed() > idle);
        let quiet = Instant::now();
        let error = guarded.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(quiet.elapsed() >= idle - Duration::from_millis(10), "{:?}", quiet.elapsed());
        drop(guarded);
        assert_eq!(tracker.open(), 0);
    }
}
