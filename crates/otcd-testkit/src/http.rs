//! HTTP as the black-box tests see it: one request sent with explicit headers, its answer as a [`Reply`] whatever
//! the status, the assertions on otcd's RFC 9457 problems, and small readers of the JSON values in answers.

use serde_json::{json, Value};
use std::time::Duration;

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    /// The body parsed as JSON, `Null` when it is not JSON.
    pub body: Value,
}

impl Reply {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body, after asserting the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "expected HTTP {status}, got {}: {}", self.status, self.text);
        &self.body
    }

    fn from_response(response: ureq::Response) -> Self {
        let status = response.status();
        let headers = response
            .headers_names()
            .iter()
            .map(|name| (name.clone(), response.header(name).unwrap_or("").to_owned()))
            .collect();
        let text = response.into_string().expect("a readable response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, text, body }
    }
}

/// Asserts an RFC 9457 problem response with otcd's stable code; returns the body for further checks.
#[track_caller]
pub fn assert_problem<'a>(reply: &'a Reply, status: u16, code: &str) -> &'a Value {
    assert_eq!(reply.status, status, "expected a {status} {code} problem, got {}: {}", reply.status, reply.text);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "problem content type: {reply:?}");
    let body = &reply.body;
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "problem member {member} must be a string: {}", reply.text);
    }
    assert_eq!(body["status"], json!(status), "problem status member: {}", reply.text);
    assert_eq!(body["code"], json!(code), "problem code: {}", reply.text);
    body
}

/// `400 invalid_request` naming `field`.
#[track_caller]
pub fn assert_invalid(reply: &Reply, field: &str) {
    let body = assert_problem(reply, 400, "invalid_request");
    assert_eq!(body["field"], json!(field), "the problem must name the field: {}", reply.text);
}

/// An HTTP client with the harness's timeouts: a busy machine may be slow to answer, a hung desk must not hang the
/// suite.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout_read(Duration::from_secs(30))
        .timeout_write(Duration::from_secs(30))
        .build()
}

/// Sends one request (`Content-Type: application/json` when `body` is not empty); `Err` only for transport
/// failures (connection refused or reset, timeouts), which crash tests expect.
pub fn try_send(
    agent: &ureq::Agent,
    url: &str,
    method: &str,
    body: &str,
    headers: &[(String, String)],
) -> Result<Reply, String> {
    let mut request = agent.request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = if body.is_empty() {
        request.call()
    } else {
        request.set("Content-Type", "application/json").send_string(body)
    };
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => Ok(Reply::from_response(response)),
        Err(ureq::Error::Transport(transport)) => Err(transport.to_string()),
    }
}

/// A string member of a JSON value.
#[track_caller]
pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

/// Parses a non-negative decimal string with exactly `scale` decimals into integer units.
#[track_caller]
pub fn units(amount: &str, scale: usize) -> i128 {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    assert_eq!(fraction.len(), scale, "{amount:?} must have exactly {scale} decimals");
    format!("{whole}{fraction}").parse().unwrap_or_else(|_| panic!("{amount:?} is not a decimal"))
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

/// Sends `head` (the request line and headers, without the blank line) and `body` over a fresh TCP connection
/// exactly as given, with `Connection: close`, and parses the answer. For what [`try_send`] cannot send: no
/// `Content-Type`, another one, or a header set ureq would change. Transport failures are `Err`.
pub fn raw_request(address: &str, head: &str, body: &[u8]) -> Result<Reply, String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|error| error.to_string())?;
    let request = format!("{head}\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(request.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|error| error.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|error| error.to_string())?;
    parse_raw_reply(&answer)
}

/// An HTTP/1.1 answer as bytes: status line, headers, and a body that is either sized or chunked.
fn parse_raw_reply(answer: &[u8]) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(answer);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no header end in {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked"));
    let text = if chunked { dechunk(rest) } else { rest.to_owned() };
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Reply { status, headers, text, body })
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
