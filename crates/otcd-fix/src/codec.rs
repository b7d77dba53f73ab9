//! The FIX tag=value wire format: framing (`8=FIX.4.4|9=len|...|10=sum|`), BodyLength and CheckSum checks,
//! and the encoder.
//!
//! Written by hand rather than taken from a crate: the FIX crates on crates.io are either unmaintained or whole
//! engines with their own session layer and I/O, and the acceptor needs only this small, bounded parser whose
//! every limit it controls. It never panics on outside input (property-tested below and in
//! `tests/codec_props.rs`).

/// The field separator.
pub const SOH: u8 = 0x01;
/// Largest message accepted (bytes from `8=` through the checksum's SOH).
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024;
/// Most fields in one message.
pub const FIELDS_MAX: usize = 512;
pub const BEGIN_STRING: &str = "FIX.4.4";

/// One parsed message: its fields in wire order (header, body and trailer alike, without 8, 9 and 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub fields: Vec<(u32, String)>,
}

/// Why bytes on the wire are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the message does not start with 8=FIX.4.4")]
    BeginString,
    #[error("BodyLength (9) missing or not a number")]
    BodyLength,
    #[error("message longer than {MESSAGE_BYTES_MAX} bytes")]
    TooLong,
    #[error("CheckSum (10) missing or malformed at the declared BodyLength")]
    Trailer,
    #[error("CheckSum {declared} does not match {computed}")]
    CheckSum { declared: u32, computed: u32 },
    #[error("malformed field {0}")]
    Field(usize),
    #[error("more than {FIELDS_MAX} fields")]
    TooManyFields,
}

impl FrameError {
    /// A framing error loses the stream's boundaries: the connection must end. A message that framed but has a
    /// bad field is rejected and the session goes on.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::BeginString | FrameError::BodyLength | FrameError::TooLong | FrameError::Trailer)
    }
}

/// One framed message (or why its contents are bad) and the bytes it took.
pub type Frame = (Result<Message, FrameError>, usize);

/// The next complete message in `buffer`: `Ok(None)` when more bytes are needed, else the result and the bytes it
/// took (also for a checksum or field error, so the caller can skip that message and go on).
pub fn next_frame(buffer: &[u8]) -> Result<Option<Frame>, FrameError> {
    const PREFIX: &[u8] = b"8=FIX.4.4\x019=";
    let prefix_len = PREFIX.len().min(buffer.len());
    if buffer[..prefix_len] != PREFIX[..prefix_len] {
        return Err(FrameError::BeginString);
    }
    if buffer.len() < PREFIX.len() {
        return Ok(None);
    }
    let rest = &buffer[PREFIX.len()..];
    let Some(length_end) = rest.iter().take(8).position(|byte| *byte == SOH) else {
        return if rest.len() >= 8 { Err(FrameError::BodyLength) } else { Ok(None) };
    };
    let body_len = parse_digits(&rest[..length_end]).ok_or(FrameError::BodyLength)?;
    let body_start = PREFIX.len() + length_end + 1;
    // The trailer is `10=NNN<SOH>`: 7 bytes.
    let total = body_start.checked_add(body_len).and_then(|len| len.checked_add(7)).ok_or(FrameError::TooLong)?;
    if total > MESSAGE_BYTES_MAX {
        return Err(FrameError::TooLong);
    }
    if buffer.len() < total {
        return Ok(None);
    }
    let trailer = &buffer[body_start + body_len..total];
    if &trailer[..3] != b"10=" || trailer[6] != SOH {
        return Err(FrameError::Trailer);
    }
    let declared = parse_digits(&trailer[3..6]).ok_or(FrameError::Trailer)? as u32;
    let computed = checksum(&buffer[..body_start + body_len]);
    if declared != computed {
        return Ok(Some((Err(FrameError::CheckSum { declared, computed }), total)));
    }
    Ok(Some((parse_fields(&buffer[body_start..body_start + body_len]), total)))
}

fn parse_digits(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || bytes.len() > 7 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0usize, |value, digit| value * 10 + usize::from(digit - b'0')))
}

/// Sum of the bytes modulo 256.
pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |sum, byte| (sum + u32::from(*byte)) % 256)
}

/// The body's fields (`tag=value<SOH>` each); values must be UTF-8 text without SOH.
fn parse_fields(body: &[u8]) -> Result<Message, FrameError> {
    let mut fields = Vec::new();
    if body.last() != Some(&SOH) {
        return Err(FrameError::Field(0));
    }
    for (index, field) in body[..body.len() - 1].split(|byte| *byte == SOH).enumerate() {
        if fields.len() >= FIELDS_MAX {
            return Err(FrameError::TooManyFields);
        }
        let equals = field.iter().position(|byte| *byte == b'=').ok_or(FrameError::Field(index))?;
        let tag = parse_digits(&field[..equals]).filter(|tag| *tag > 0).ok_or(FrameError::Field(index))? as u32;
        let value = std::str::from_utf8(&field[equals + 1..]).map_err(|_| FrameError::Field(index))?;
        if value.is_empty() {
            return Err(FrameError::Field(index));
        }
        fields.push((tag, value.to_owned()));
    }
    Ok(Message { fields })
}

impl Message {
    /// The first value of `tag`.
    pub fn get(&self, tag: u32) -> Option<&str> {
        self.fields.iter().find(|(field, _)| *field == tag).map(|(_, value)| value.as_str())
    }

    pub fn msg_type(&self) -> Option<&str> {
        self.get(35)
    }

    pub fn seq_num(&self) -> Option<u64> {
        self.get(34).and_then(|text| text.parse().ok())
    }

    pub fn poss_dup(&self) -> bool {
        self.get(43) == Some("Y")
    }

    /// The fields from the first `tag` on (a repeating group and what follows it).
    pub fn from_tag(&self, tag: u32) -> &[(u32, String)] {
        let start = self.fields.iter().position(|(field, _)| *field == tag).unwrap_or(self.fields.len());
        &self.fields[start..]
    }
}

/// A message being built: its type and body fields; the header and trailer are added by [`Builder::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    pub msg_type: String,
    pub body: Vec<(u32, String)>,
}

/// The header values a session stamps on each message it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub sender: &'a str,
    pub target: &'a str,
    pub seq_num: u64,
    pub sending_time: &'a str,
    /// A resend: PossDupFlag=Y with OrigSendingTime.
    pub orig_sending_time: Option<&'a str>,
}

impl Builder {
    pub fn new(msg_type: &str) -> Self {
        Self { msg_type: msg_type.to_owned(), body: Vec::new() }
    }

    pub fn field(mut self, tag: u32, value: impl Into<String>) -> Self {
        self.body.push((tag, value.into()));
        self
    }

    pub fn optional(self, tag: u32, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.field(tag, value),
            None => self,
        }
    }

    /// The message on the wire. Values are sanitized: an SOH in a value (never produced by the desk) becomes a
    /// space, so a message is always well framed.
    pub fn encode(&self, header: &Header) -> Vec<u8> {
        let mut body = Vec::with_capacity(256);
        push_field(&mut body, 35, &self.msg_type);
        push_field(&mut body, 49, header.sender);
        push_field(&mut body, 56, header.target);
        push_field(&mut body, 34, &header.seq_num.to_string());
        if let Some(original) = header.orig_sending_time {
            push_field(&mut body, 43, "Y");
            push_field(&mut body, 52, header.sending_time);
            push_field(&mut body, 122, original);
        } else {
            push_field(&mut body, 52, header.sending_time);
        }
        for (tag, value) in &self.body {
            push_field(&mut body, *tag, value);
        }
        let mut message = Vec::with_capacity(body.len() + 32);
        message.extend_from_slice(format!("8={BEGIN_STRING}\x019={}\x01", body.len()).as_bytes());
        message.extend_from_slice(&body);
        let sum = checksum(&message);
        message.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        message
    }

    /// The builder of a message this desk sent (for a resend): its type and body, header fields dropped.
    pub fn from_sent(message: &Message) -> Option<Self> {
        const HEADER: [u32; 7] = [35, 49, 56, 34, 52, 43, 122];
        let msg_type = message.msg_type()?.to_owned();
        let body = message.fields.iter().filter(|(tag, _)| !HEADER.contains(tag)).cloned().collect();
        Some(Self { msg_type, body })
    }
}

fn push_field(out: &mut Vec<u8>, tag: u32, value: &str) {
    out.extend_from_slice(tag.to_string().as_bytes());
    out.push(b'=');
    out.extend(value.bytes().map(|byte| if byte == SOH { b' ' } else { byte }));
    out.push(SOH);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let header = Header {
            sender: "OTCD",
            target: "k_1",
            seq_num: 7,
            sending_time: "20260101-00:00:00.000",
            orig_sending_time: None,
        };
        Builder::new("0").field(112, "hello").encode(&header)
    }

    #[test]
    fn an_encoded_message_frames_back_with_its_fields() {
        let bytes = sample();
        let (message, used) = next_frame(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let message = message.unwrap();
        assert_eq!((message.msg_type(), message.seq_num(), message.get(112)), (Some("0"), Some(7), Some("hello")));
    }

    #[test]
    fn partial_input_asks_for_more_and_bad_input_is_named() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert_eq!(next_frame(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        let mut bad_sum = bytes.clone();
        let at = bad_sum.len() - 2;
        bad_sum[at] = if bad_sum[at] == b'0' { b'1' } else { b'0' };
        assert!(matches!(next_frame(&bad_sum), Ok(Some((Err(FrameError::CheckSum { .. }), _)))));
        assert_eq!(next_frame(b"8=FIX.4.2\x019=5\x01"), Err(FrameError::BeginString));
        assert_eq!(next_frame(b"8=FIX.4.4\x019=99999999\x01"), Err(FrameError::BodyLength));
        assert_eq!(next_frame(b"8=FIX.4.4\x019=999999\x01"), Err(FrameError::TooLong));
        let mut wrong_length = b"8=FIX.4.4\x019=3\x0135=0\x01".to_vec();
        wrong_length.extend_from_slice(b"10=000\x01");
        assert_eq!(next_frame(&wrong_length), Err(FrameError::Trailer));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = next_frame(&bytes);
            let mut prefixed = b"8=FIX.4.4\x019=".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = next_frame(&prefixed);
        }

        #[test]
        fn mutated_messages_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut bytes = sample();
            for (index, byte) in flips {
                let at = index.index(bytes.len());
                bytes[at] = byte;
            }
            if let Ok(Some((Ok(message), used))) = next_frame(&bytes) {
                prop_assert!(used <= bytes.len());
                prop_assert!(message.fields.len() <= FIELDS_MAX);
            }
        }

        #[test]
        fn any_field_values_round_trip(values in proptest::collection::vec("[ -~]{1,40}", 1..20)) {
            let header = Header { sender: "A", target: "B", seq_num: 1, sending_time: "t", orig_sending_time: None };
            let builder = values.iter().enumerate().fold(Builder::new("R"), |builder, (index, value)| builder.field(1000 + index as u32, value.clone()));
            let bytes = builder.encode(&header);
            let (message, _) = next_frame(&bytes).unwrap().unwrap();
            let message = message.unwrap();
            for (index, value) in values.iter().enumerate() {
                prop_assert_eq!(message.get(1000 + index as u32), Some(value.as_str()));
            }
        }
    }
}
