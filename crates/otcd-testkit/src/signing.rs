//! Signing requests as an API client does (API.md, "Authentication"): the `OTC-KEY`, `OTC-TIMESTAMP` and
//! `OTC-SIGNATURE` headers over `timestamp\nMETHOD\npath_with_query\nbody`, with an HMAC-SHA256 secret (lowercase
//! hex) or an Ed25519 key (standard base64).
//!
//! The server refuses a signature it has seen before, so every request gets a timestamp no signer of the same key
//! in this process has used: two identical requests sent within one millisecond must not look like a replay.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

/// A timestamp (Unix ms) never handed out before for `key_id` in this process, shared by every [`Signer`] of that
/// key (clones and signers built again from the same credentials alike).
///
/// Strictly increasing per key, not per process: one counter for the whole process runs ahead of the clock, and out
/// of the server's 30 s window, when many keys sign quickly at once (the quote suite did); signatures of different
/// keys never collide anyway.
fn fresh_timestamp(key_id: &str) -> i64 {
    static LAST: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    let previous = last.entry(key_id.to_owned()).or_insert(0);
    *previous = now_ms().max(*previous + 1);
    *previous
}

#[derive(Clone)]
enum KeyMaterial {
    Hmac(String),
    Ed25519(SigningKey),
}

/// An API key as a client holds it.
#[derive(Clone)]
pub struct Signer {
    pub key_id: String,
    material: KeyMaterial,
}

impl Signer {
    /// An HMAC-SHA256 key: `secret` as `POST .../keys` returned it.
    pub fn hmac(key_id: &str, secret: &str) -> Self {
        Self { key_id: key_id.to_owned(), material: KeyMaterial::Hmac(secret.to_owned()) }
    }

    /// An Ed25519 key whose public half was registered with the desk.
    pub fn ed25519(key_id: &str, signing_key: SigningKey) -> Self {
        Self { key_id: key_id.to_owned(), material: KeyMaterial::Ed25519(signing_key) }
    }

    /// The `OTC-SIGNATURE` value for one request.
    pub fn signature(&self, timestamp: &str, method: &str, path_with_query: &str, body: &str) -> String {
        self.sign(&format!("{timestamp}\n{method}\n{path_with_query}\n{body}"))
    }

    fn sign(&self, message: &str) -> String {
        match &self.material {
            KeyMaterial::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
                mac.update(message.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            KeyMaterial::Ed25519(key) => {
                base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()).to_bytes())
            }
        }
    }

    /// A timestamp this key has not signed with yet in this process (see the module notes).
    pub fn fresh_timestamp(&self) -> i64 {
        fresh_timestamp(&self.key_id)
    }

    /// The three OTC-* headers for a request signed at `timestamp`, which the caller chooses (a clock ahead or
    /// behind, a replay).
    pub fn headers_at(&self, timestamp: i64, method: &str, path_with_query: &str, body: &str) -> Vec<(String, String)> {
        let timestamp = timestamp.to_string();
        let signature = self.signature(&timestamp, method, path_with_query, body);
        vec![
            ("OTC-KEY".to_owned(), self.key_id.clone()),
            ("OTC-TIMESTAMP".to_owned(), timestamp),
            ("OTC-SIGNATURE".to_owned(), signature),
        ]
    }

    /// The four headers of a request signed at `timestamp` with `OTC-NONCE: nonce` (signed as a fifth line).
    pub fn headers_with_nonce(
        &self,
        timestamp: i64,
        method: &str,
        path_with_query: &str,
        body: &str,
        nonce: &str,
    ) -> Vec<(String, String)> {
        let timestamp = timestamp.to_string();
        let signature = self.sign(&format!("{timestamp}\n{method}\n{path_with_query}\n{body}\n{nonce}"));
        vec![
            ("OTC-KEY".to_owned(), self.key_id.clone()),
            ("OTC-TIMESTAMP".to_owned(), timestamp),
            ("OTC-SIGNATURE".to_owned(), signature),
            ("OTC-NONCE".to_owned(), nonce.to_owned()),
        ]
    }

    /// The three OTC-* headers for a request signed now, at a fresh timestamp.
    pub fn headers(&self, method: &str, path_with_query: &str, body: &str) -> Vec<(String, String)> {
        self.headers_at(self.fresh_timestamp(), method, path_with_query, body)
    }
}
