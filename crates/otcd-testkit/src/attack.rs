//! What the denial-of-service tests do to a desk: TCP connections from other loopback addresses (127.0.0.2 and
//! up, so that a well-behaved client on 127.0.0.1 is a different source address), slow or idle sockets, raw
//! keep-alive requests, and reading the desk's metrics.

use crate::process::TestDesk;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// A TCP connection to `address` (IPv4) from `source` (any port): `bind` before `connect`, which std cannot do.
pub fn connect_from(source: Ipv4Addr, address: &str) -> std::io::Result<TcpStream> {
    let address: SocketAddrV4 = address.parse().expect("an IPv4 listening address");
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket creation; the descriptor is handed to a TcpStream (which closes it) at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket owned by nothing else.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let local = sockaddr(source, 0);
    // SAFETY: `local` is a valid sockaddr_in and `length` its size.
    if unsafe { libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), length) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let peer = sockaddr(*address.ip(), address.port());
    // SAFETY: `peer` is a valid sockaddr_in and `length` its size.
    if unsafe { libc::connect(fd, (&peer as *const libc::sockaddr_in).cast(), length) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stream)
}

/// The `n`th attacker address: 127.0.0.2, 127.0.0.3, ...
pub fn attacker_address(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + n)
}

/// Has the desk closed (or reset) `stream` within `within`? Reads until end of stream or an error; `false` when
/// the socket is still open (a read timed out) at the deadline.
pub fn closed_within(stream: &TcpStream, within: Duration) -> bool {
    let mut reader = stream;
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("set a read timeout");
        match reader.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue, // an error response before the close
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// A keep-alive HTTP/1.1 connection that sends requests as given and reads sized answers: a flood's client.
pub struct RawClient {
    stream: TcpStream,
    address: String,
    buffer: Vec<u8>,
}

impl RawClient {
    pub fn connect_from(source: Ipv4Addr, address: &str) -> std::io::Result<Self> {
        let stream = connect_from(source, address)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, address: address.to_owned(), buffer: Vec::new() })
    }

    /// Sends `method path` with `headers` and no body; answers the status. `Err` on transport failures.
    pub fn request(&mut self, method: &str, path: &str, headers: &[(String, String)]) -> std::io::Result<u16> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.address);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.stream.write_all(request.as_bytes())?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> std::io::Result<u16> {
        let closed = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed mid-answer");
        let head_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill()?.then_some(()).ok_or_else(closed)?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_string();
        let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).ok_or_else(closed)?;
        let length: usize = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        while self.buffer.len() < head_end + length {
            self.fill()?.then_some(()).ok_or_else(closed)?;
        }
        self.buffer.drain(..head_end + length);
        Ok(status)
    }

    /// `false` at end of stream.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let read = self.stream.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read > 0)
    }
}

/// The value of the metric line that starts with `name_and_labels` (`otcd_http_connections_open`, or
/// `otcd_http_connections_refused_total{limit="websockets_max"}`), 0 when absent.
pub fn metric(desk: &TestDesk, name_and_labels: &str) -> f64 {
    let reply = desk.public_get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
        .text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name_and_labels).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// The desk process's resident memory (VmRSS), bytes.
pub fn resident_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the desk's /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}
