//! Signed requests: `OTC-KEY`, `OTC-TIMESTAMP` (Unix ms) and `OTC-SIGNATURE` over
//! `TIMESTAMP "\n" METHOD "\n" PATH_WITH_QUERY "\n" BODY`, with HMAC-SHA256 (lowercase hex) or Ed25519
//! (standard base64) keys, a 30 s window, replay rejection, revocation, scopes and IP allow-lists.

use crate::problem::ApiError;
use otcd_core::engine::Actor;
use otcd_core::model::{KeyAlgorithm, Scope, SIGNATURE_WINDOW_MS};
use otcd_services::keys::{AuthKey, KeyRegistry};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// How far a request's timestamp may be from the server's clock.
pub const TIMESTAMP_WINDOW_MS: i64 = SIGNATURE_WINDOW_MS;
/// Signatures remembered for replay rejection. Bounded: at the limit new requests are turned away (503) rather
/// than forgetting signatures that are still inside their window.
pub const REPLAY_ENTRIES_MAX: usize = 4_000_000;

/// Signatures seen inside their validity window.
///
/// Kept in one set per second of expiry rather than one map for the whole window: a single map of the ~120,000
/// signatures of a busy 30 s window rehashed everything (and its expiry queue copied everything) each time it
/// doubled, under the lock every signed request takes, which stalled every request for milliseconds. Per-second
/// sets grow to one second's requests at most, and expiry drops a whole set. A replay carries the same signed
/// timestamp, so it always lands in the set of the original.
pub struct ReplayGuard {
    state: Mutex<ReplayState>,
}

#[derive(Default)]
struct ReplayState {
    /// Signatures by the second (Unix) in which they expire.
    by_expiry_second: BTreeMap<i64, HashSet<[u8; 16]>>,
    len: usize,
}

impl ReplayState {
    /// Forgets every set whose signatures have all expired at `now_ms`.
    fn forget_expired(&mut self, now_ms: i64) {
        while let Some(entry) = self.by_expiry_second.first_entry() {
            if second_end_ms(*entry.key()) >= now_ms {
                break;
            }
            self.len -= entry.remove().len();
        }
    }

    /// `false` when `fingerprint` is already there.
    fn insert(&mut self, fingerprint: [u8; 16], expires_at_ms: i64) -> bool {
        let inserted = self.by_expiry_second.entry(expires_at_ms.div_euclid(1_000)).or_default().insert(fingerprint);
        self.len += usize::from(inserted);
        inserted
    }

    fn contains(&self, fingerprint: &[u8; 16], expires_at_ms: i64) -> bool {
        self.by_expiry_second.get(&expires_at_ms.div_euclid(1_000)).is_some_and(|set| set.contains(fingerprint))
    }
}

/// The last millisecond of Unix second `second`.
fn second_end_ms(second: i64) -> i64 {
    second * 1_000 + 999
}

impl ReplayGuard {
    pub fn new() -> Self {
        Self { state: Mutex::new(ReplayState::default()) }
    }

    /// Seeds the guard with a signature journaled before a restart (`signed_at_ms` is its request timestamp).
    pub fn seed(&self, fingerprint_hex: &str, signed_at_ms: i64) {
        let Ok(bytes) = hex::decode(fingerprint_hex) else { return };
        let Ok(fingerprint) = <[u8; 16]>::try_from(bytes.as_slice()) else { return };
        let mut state = self.state.lock();
        if state.len < REPLAY_ENTRIES_MAX {
            state.insert(fingerprint, signed_at_ms + TIMESTAMP_WINDOW_MS);
        }
    }

    /// Records a signature; `Err` when it was seen before (a replay) or the guard is full.
    fn remember(&self, fingerprint: [u8; 16], expires_at_ms: i64, now_ms: i64) -> Result<(), ApiError> {
        let mut state = self.state.lock();
        state.forget_expired(now_ms);
        if state.contains(&fingerprint, expires_at_ms) {
            return Err(ApiError::unauthenticated("this signature was already used"));
        }
        if state.len >= REPLAY_ENTRIES_MAX {
            return Err(ApiError::unavailable("too many signed requests in flight; retry shortly", 1));
        }
        let inserted = state.insert(fingerprint, expires_at_ms);
        debug_assert!(inserted, "checked absent above");
        Ok(())
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new()
    }
}

/// Who made an authenticated request.
#[derive(Clone)]
pub struct Principal {
    pub key: Arc<AuthKey>,
    pub source_ip: IpAddr,
    /// The signature's replay fingerprint and timestamp, journaled with the commands it causes.
    pub fingerprint: [u8; 16],
    pub signed_at_ms: i64,
    /// When the request came with a session token (`Authorization: Bearer`): the token's expiry, Unix ms.
    pub session_expires_at_ms: Option<i64>,
}

impl Principal {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this key lacks the {} scope", scope.as_str())))
        }
    }

    /// A read-only operator: a desk key (no client) with `read` and without `admin`. It may read every operator
    /// endpoint (`GET`) and change nothing, so the console can be used to watch the desk.
    pub fn is_read_only_operator(&self) -> bool {
        self.key.client_id.is_none() && self.key.has_scope(Scope::Read) && !self.key.has_scope(Scope::Admin)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            key_id: Some(self.key.key_id.clone()),
            source_ip: Some(self.source_ip.to_string()),
            signature: Some(hex::encode(self.fingerprint)),
            signed_at_ms: Some(self.signed_at_ms),
        }
    }
}

/// What a request presents for authentication.
pub struct SignedParts<'a> {
    pub key_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    /// `OTC-NONCE`, when sent: signed as a fifth line, so identical requests can be told apart.
    pub nonce: Option<&'a str>,
    pub method: &'a str,
    pub path_with_query: &'a str,
    pub body: &'a [u8],
    pub source_ip: IpAddr,
}

/// Checks a request. `started_at_ms`: the server's start; earlier timestamps are refused because signatures
/// seen before a restart are not remembered (a client whose clock lags by d is refused for d after a restart).
pub fn authenticate(
    registry: &KeyRegistry,
    replay: &ReplayGuard,
    parts: &SignedParts<'_>,
    now_ms: i64,
    started_at_ms: i64,
) -> Result<Principal, ApiError> {
    let (Some(key_id), Some(timestamp), Some(signature)) = (parts.key_id, parts.timestamp, parts.signature) else {
        return Err(ApiError::unauthenticated("OTC-KEY, OTC-TIMESTAMP and OTC-SIGNATURE headers are required"));
    };
    let timestamp_ms: i64 = timestamp
        .parse()
        .ok()
        .filter(|_| timestamp.bytes().all(|byte| byte.is_ascii_digit()))
        .ok_or_else(|| ApiError::unauthenticated("OTC-TIMESTAMP must be Unix time in milliseconds"))?;
    if (now_ms - timestamp_ms).abs() > TIMESTAMP_WINDOW_MS {
        return Err(ApiError::unauthenticated("OTC-TIMESTAMP is more than 30 s from server time"));
    }
    if timestamp_ms < started_at_ms {
        return Err(ApiError::unauthenticated("OTC-TIMESTAMP predates the server's start; sign the request again"));
    }
    if parts.nonce.is_some_and(|nonce| !nonce_valid(nonce)) {
        return Err(ApiError::unauthenticated("OTC-NONCE must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"));
    }
    let key = registry.get(key_id).ok_or_else(|| ApiError::unauthenticated("unknown key"))?;
    if key.revoked {
        return Err(ApiError::unauthenticated("this key was revoked"));
    }
    let fingerprint = signature_matches(&key, timestamp, parts, signature)
        .ok_or_else(|| ApiError::unauthenticated("signature does not match"))?;
    replay.remember(fingerprint, timestamp_ms + TIMESTAMP_WINDOW_MS, now_ms)?;
    if !key.allows(parts.source_ip) {
        return Err(ApiError::forbidden(format!("source address {} is not in this key's allow-list", parts.source_ip)));
    }
    Ok(Principal {
        key,
        source_ip: parts.source_ip,
        fingerprint,
        signed_at_ms: timestamp_ms,
        session_expires_at_ms: None,
    })
}

/// Longest `OTC-NONCE`.
pub const NONCE_BYTES_MAX: usize = 64;

fn nonce_valid(nonce: &str) -> bool {
    (1..=NONCE_BYTES_MAX).contains(&nonce.len())
        && nonce.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// The signed text is `timestamp "\n" METHOD "\n" PATH_WITH_QUERY "\n" BODY`, and `"\n" NONCE` after it when the
/// request sends `OTC-NONCE`; HMAC signatures arrive as lowercase hex, Ed25519 ones as standard base64. The replay
/// guard keys on the signature, so requests alike but for their nonces are all accepted, once each.
fn signature_matches(key: &AuthKey, timestamp: &str, parts: &SignedParts<'_>, signature: &str) -> Option<[u8; 16]> {
    let presented = match key.algorithm() {
        KeyAlgorithm::Hmac => {
            hex::decode(signature).ok().filter(|_| signature.bytes().all(|b| !b.is_ascii_uppercase()))?
        }
        KeyAlgorithm::Ed25519 => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(signature).ok()?
        }
    };
    let nonce = parts.nonce.map_or(&b""[..], str::as_bytes);
    let separator = if parts.nonce.is_some() { &b"\n"[..] } else { b"" };
    let message: [&[u8]; 9] = [
        timestamp.as_bytes(),
        b"\n",
        parts.method.as_bytes(),
        b"\n",
        parts.path_with_query.as_bytes(),
        b"\n",
        parts.body,
        separator,
        nonce,
    ];
    key.verify(&message, &presented)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use otcd_core::ids::KeyId;
    use otcd_core::model::{ApiKey, KeyOwner};
    use otcd_core::time::TimestampMs;
    use otcd_host::secrets::MasterKey;
    use sha2::Sha256;

    fn registry_with(secret: &str, allowed_ips: Vec<String>) -> KeyRegistry {
        let dir = tempfile::tempdir().unwrap();
        let master_key = Arc::new(MasterKey::load_or_create(&dir.path().join("m")).unwrap());
        let registry = KeyRegistry::new(master_key.clone());
        registry.upsert(&ApiKey {
            key_id: KeyId::parse("k_1").unwrap(),
            owner: KeyOwner::Desk,
            scopes: vec![Scope::Read],
            algorithm: KeyAlgorithm::Hmac,
            credential: master_key.seal("k_1", secret.as_bytes()),
            allowed_ips,
            created_at: TimestampMs(0),
            created_by: None,
            revoked_at: None,
        });
        registry
    }

    fn sign(secret: &str, message: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn parts<'a>(timestamp: &'a str, signature: &'a str) -> SignedParts<'a> {
        SignedParts {
            key_id: Some("k_1"),
            timestamp: Some(timestamp),
            signature: Some(signature),
            nonce: None,
            method: "GET",
            path_with_query: "/v1/balances",
            body: b"",
            source_ip: "127.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn the_replay_guard_refuses_repeats_until_expiry_and_forgets_whole_seconds() {
        let guard = ReplayGuard::new();
        let (first, second) = ([1u8; 16], [2u8; 16]);
        assert!(guard.remember(first, 31_500, 1_500).is_ok());
        assert!(guard.remember(second, 32_200, 2_200).is_ok());
        assert!(guard.remember(first, 31_500, 1_600).is_err(), "a repeat inside the window");
        assert!(guard.remember(first, 31_500, 31_999).is_err(), "still remembered in its last millisecond");
        assert_eq!(guard.state.lock().len, 2);
        assert!(guard.remember([3u8; 16], 62_000, 32_000).is_ok(), "a request after second 31 ended");
        assert_eq!(guard.state.lock().len, 2, "second 31's set is gone, the new one is counted");
        assert!(guard.remember(second, 32_200, 32_100).is_err(), "second 32's set is kept");
        guard.seed(&hex::encode(first), 2_000);
        assert_eq!(guard.state.lock().len, 3, "a seeded signature counts");
        assert!(guard.remember(first, 32_000, 32_100).is_err(), "a seeded signature is refused");
    }

    #[test]
    fn accepts_a_good_signature_once() {
        let registry = registry_with("s3cret", vec![]);
        let replay = ReplayGuard::new();
        let signature = sign("s3cret", "1000\nGET\n/v1/balances\n");
        assert!(authenticate(&registry, &replay, &parts("1000", &signature), 1_000, 0).is_ok());
        let again = authenticate(&registry, &replay, &parts("1000", &signature), 1_001, 0).err().unwrap();
        assert_eq!(again.detail, "this signature was already used");
    }

    #[test]
    fn refuses_bad_signatures_stale_timestamps_and_foreign_addresses() {
        let registry = registry_with("s3cret", vec!["10.0.0.0/8".into()]);
        let replay = ReplayGuard::new();
        let good = sign("s3cret", "1000\nGET\n/v1/balances\n");
        let wrong = sign("other", "1000\nGET\n/v1/balances\n");
        let status = |result: Result<Principal, ApiError>| result.err().map(|error| error.status.as_u16());
        assert_eq!(status(authenticate(&registry, &replay, &parts("1000", &wrong), 1_000, 0)), Some(401));
        assert_eq!(status(authenticate(&registry, &replay, &parts("1000", &good), 31_001, 0)), Some(401));
        assert_eq!(status(authenticate(&registry, &replay, &parts("1000", &good), 1_000, 2_000)), Some(401));
        assert_eq!(status(authenticate(&registry, &replay, &parts("1000", &good.to_uppercase()), 1_000, 0)), Some(401));
        assert_eq!(status(authenticate(&registry, &replay, &parts("1000", &good), 1_000, 0)), Some(403));
    }

    #[test]
    fn a_nonce_is_signed_as_a_fifth_line_and_tells_identical_requests_apart() {
        let registry = registry_with("s3cret", vec![]);
        let replay = ReplayGuard::new();
        let with_nonce = |nonce: &'static str| {
            let signature = sign("s3cret", &format!("1000\nGET\n/v1/balances\n\n{nonce}"));
            (nonce, signature)
        };
        for nonce in ["a", "b-2", "C_3"] {
            let (nonce, signature) = with_nonce(nonce);
            let parts = SignedParts { nonce: Some(nonce), ..parts("1000", &signature) };
            assert!(authenticate(&registry, &replay, &parts, 1_000, 0).is_ok(), "nonce {nonce}");
        }
        let (nonce, signature) = with_nonce("a");
        let again = SignedParts { nonce: Some(nonce), ..parts("1000", &signature) };
        assert_eq!(
            authenticate(&registry, &replay, &again, 1_000, 0).err().unwrap().detail,
            "this signature was already used"
        );
        let unsigned = SignedParts { nonce: Some("zzz"), ..parts("1000", &signature) };
        assert_eq!(authenticate(&registry, &replay, &unsigned, 1_000, 0).err().unwrap().code, "unauthenticated");
        for bad in ["", "has space", "ü", &"x".repeat(65)] {
            let parts = SignedParts { nonce: Some(bad), ..parts("1000", &signature) };
            let error = authenticate(&registry, &replay, &parts, 1_000, 0).err().unwrap();
            assert!(error.detail.starts_with("OTC-NONCE"), "{bad:?}: {}", error.detail);
        }
    }
}
