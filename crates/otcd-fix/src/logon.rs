//! Authenticating a Logon (A): the key named by SenderCompID signs `SendingTime SOH MsgType SOH MsgSeqNum SOH
//! SenderCompID SOH TargetCompID` (values only); RawData (96) carries the signature in standard base64 (HMAC-SHA256
//! with the key's secret for `hmac` keys, Ed25519 for `ed25519` keys). The key material and its check are the
//! services' (`otcd_services::keys`), shared with the HTTP edge.

use crate::codec::Message;
use base64::Engine;
use otcd_core::model::Scope;
use otcd_core::time::TimestampMs;
use otcd_services::keys::{AuthKey, KeyRegistry};
use std::net::IpAddr;
use std::sync::Arc;

/// How far a Logon's SendingTime may be from the desk's clock.
pub const SENDING_TIME_WINDOW_MS: i64 = 30_000;
/// Bounds of HeartBtInt (108), seconds.
pub const HEARTBEAT_SECONDS_MIN: u64 = 1;
pub const HEARTBEAT_SECONDS_MAX: u64 = 300;
const SIGNATURE_TEXT_BYTES_MAX: usize = 200;

/// Why a Logon is refused: the stable code journaled with the failed authentication and the Text (58) of the
/// Logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub text: String,
}

impl Refusal {
    fn new(code: &'static str, text: impl Into<String>) -> Self {
        Self { code, text: text.into() }
    }
}

/// An authenticated Logon.
pub struct Authenticated {
    pub key: Arc<AuthKey>,
    pub heartbeat_seconds: u64,
    pub reset_seq_num: bool,
}

/// The bytes a client signs.
pub fn signed_payload(logon: &Message) -> Vec<u8> {
    let parts = [52, 35, 34, 49, 56].map(|tag| logon.get(tag).unwrap_or(""));
    parts.join("\x01").into_bytes()
}

/// Checks a Logon addressed to `target_comp_id` from `source`, at `now`.
pub fn authenticate(
    logon: &Message,
    keys: &KeyRegistry,
    target_comp_id: &str,
    source: IpAddr,
    now: TimestampMs,
) -> Result<Authenticated, Refusal> {
    if logon.get(56) != Some(target_comp_id) {
        return Err(Refusal::new("unauthenticated", format!("TargetCompID must be {target_comp_id}")));
    }
    let sender = logon.get(49).unwrap_or("");
    let key = keys.get(sender).ok_or_else(|| Refusal::new("unauthenticated", "unknown SenderCompID (key id)"))?;
    let sent_at = logon.get(52).and_then(crate::timestamps::parse);
    let Some(sent_at) = sent_at else {
        return Err(Refusal::new("unauthenticated", "SendingTime missing or malformed"));
    };
    if (sent_at.0 - now.0).abs() > SENDING_TIME_WINDOW_MS {
        return Err(Refusal::new("unauthenticated", "SendingTime is more than 30 s from the desk's clock"));
    }
    let signature = logon.get(96).filter(|text| text.len() <= SIGNATURE_TEXT_BYTES_MAX);
    let signature = signature.and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok());
    let Some(signature) = signature else {
        return Err(Refusal::new("unauthenticated", "RawData (96) must hold the base64 signature of the Logon"));
    };
    if logon.get(95).and_then(|length| length.parse::<usize>().ok()) != logon.get(96).map(str::len) {
        return Err(Refusal::new("unauthenticated", "RawDataLength (95) must be the length of RawData (96)"));
    }
    if key.verify(&[&signed_payload(logon)], &signature).is_none() {
        return Err(Refusal::new("unauthenticated", "bad signature"));
    }
    if key.revoked {
        return Err(Refusal::new("unauthenticated", "the key is revoked"));
    }
    if !key.allows(source) {
        return Err(Refusal::new("forbidden", "the key's IP allow-list does not include this address"));
    }
    if !key.has_scope(Scope::Trade) && !key.has_scope(Scope::Read) {
        return Err(Refusal::new("forbidden", "FIX sessions need a key with the trade or read scope"));
    }
    if logon.get(98) != Some("0") {
        return Err(Refusal::new("invalid_request", "EncryptMethod (98) must be 0"));
    }
    let heartbeat_seconds = logon.get(108).and_then(|text| text.parse::<u64>().ok());
    let heartbeat_seconds = heartbeat_seconds
        .filter(|seconds| (HEARTBEAT_SECONDS_MIN..=HEARTBEAT_SECONDS_MAX).contains(seconds))
        .ok_or_else(|| Refusal::new("invalid_request", "HeartBtInt (108) must be 1 to 300 seconds"))?;
    Ok(Authenticated { key, heartbeat_seconds, reset_seq_num: logon.get(141) == Some("Y") })
}
