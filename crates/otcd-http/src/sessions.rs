//! Browser session tokens (`POST /v1/sessions`): short-lived, stateless bearer tokens a host application's
//! backend mints with a signed request and hands to its web page, so that components in the browser never see an
//! API secret.
//!
//! A token is `otcd_sess_` + base64url(payload JSON) + `.` + base64url(HMAC-SHA256(session key, payload text)),
//! the session key being derived from the desk's master key (`otcd_host::secrets`). The payload names the issuing key,
//! its client, the granted scopes and the expiry. A token is accepted while its MAC matches, it has not expired,
//! the issuing key exists and is not revoked (revoking the key kills its sessions), and the source address is in
//! the key's allow-list. Tokens are not journaled: they are stateless, and the commands made with one are journaled
//! with the issuing key as their actor like any other.

use crate::auth::Principal;
use crate::problem::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use otcd_core::model::Scope;
use otcd_services::keys::KeyRegistry;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Arc;

pub const TOKEN_PREFIX: &str = "otcd_sess_";
pub const TTL_SECONDS_MIN: u32 = 60;
pub const TTL_SECONDS_MAX: u32 = 3_600;
pub const TTL_SECONDS_DEFAULT: u32 = 900;
/// Longest token accepted (a payload with every scope is far shorter); longer ones are refused unread.
const TOKEN_BYTES_MAX: usize = 1_024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPayload {
    /// The issuing key.
    pub key_id: String,
    pub client_id: Option<String>,
    pub scopes: Vec<Scope>,
    pub expires_at_ms: i64,
    /// Random, so that two tokens are never equal.
    pub nonce: String,
}

fn mac(session_key: &[u8; 32], payload_text: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_key).expect("any key length");
    mac.update(payload_text.as_bytes());
    mac
}

/// Mints a token for `payload` (the nonce is filled in here).
pub fn mint(session_key: &[u8; 32], mut payload: TokenPayload) -> String {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    payload.nonce = URL_SAFE_NO_PAD.encode(nonce);
    let payload_text = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("serializable"));
    let tag = mac(session_key, &payload_text).finalize().into_bytes();
    format!("{TOKEN_PREFIX}{payload_text}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The payload of a token whose MAC matches; `None` for anything else (malformed or tampered).
fn open(session_key: &[u8; 32], token: &str) -> Option<(TokenPayload, [u8; 16])> {
    if token.len() > TOKEN_BYTES_MAX {
        return None;
    }
    let (payload_text, tag_text) = token.strip_prefix(TOKEN_PREFIX)?.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag_text).ok()?;
    mac(session_key, payload_text).verify_slice(&tag).ok()?;
    let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload_text).ok()?).ok()?;
    Some((payload, tag.get(..16)?.try_into().ok()?))
}

/// Authenticates a request carrying a session token: the principal is the issuing key narrowed to the token's
/// scopes. The "fingerprint" journaled with its commands is the token's MAC prefix, which ties them to the session.
pub fn authenticate(
    registry: &KeyRegistry,
    token: &str,
    source_ip: IpAddr,
    now_ms: i64,
) -> Result<Principal, ApiError> {
    let (payload, fingerprint) = open(registry.master_key().session_key(), token)
        .ok_or_else(|| ApiError::unauthenticated("the session token is malformed or was altered"))?;
    if now_ms >= payload.expires_at_ms {
        return Err(ApiError::unauthenticated("the session token has expired; ask the host application for a new one"));
    }
    let key = registry
        .get(&payload.key_id)
        .ok_or_else(|| ApiError::unauthenticated("the key that issued this session token is unknown"))?;
    if key.revoked {
        return Err(ApiError::unauthenticated("the key that issued this session token was revoked"));
    }
    if key.client_id.as_ref().map(|id| id.as_str()) != payload.client_id.as_deref() {
        return Err(ApiError::unauthenticated("the session token does not match its key"));
    }
    if !key.allows(source_ip) {
        return Err(ApiError::forbidden(format!("source address {source_ip} is not in this key's allow-list")));
    }
    Ok(Principal {
        key: Arc::new(key.narrowed(&payload.scopes)),
        source_ip,
        fingerprint,
        signed_at_ms: now_ms,
        session_expires_at_ms: Some(payload.expires_at_ms),
    })
}

/// The scopes a key may hand to a session: a subset of its own, never `withdraw` or `admin` unless it is an
/// admin key. `requested` `None`: every scope it may hand out.
pub fn grantable(key_scopes: &[Scope], requested: Option<&[Scope]>) -> Result<Vec<Scope>, ApiError> {
    let admin_key = key_scopes.contains(&Scope::Admin);
    let allowed = |scope: &Scope| admin_key || !matches!(scope, Scope::Withdraw | Scope::Admin);
    let Some(requested) = requested else {
        return Ok(key_scopes.iter().copied().filter(allowed).collect());
    };
    if requested.is_empty() {
        return Err(ApiError::invalid("scopes", "name at least one scope, or leave scopes out"));
    }
    let mut granted = Vec::new();
    for scope in requested {
        if !key_scopes.contains(scope) {
            return Err(ApiError::forbidden(format!("this key lacks the {} scope", scope.as_str())));
        }
        if !allowed(scope) {
            return Err(ApiError::forbidden(format!(
                "the {} scope is not granted to browser sessions of client keys",
                scope.as_str()
            )));
        }
        if !granted.contains(scope) {
            granted.push(*scope);
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> TokenPayload {
        TokenPayload {
            key_id: "k_1".into(),
            client_id: Some("cl_00000001".into()),
            scopes: vec![Scope::Read],
            expires_at_ms: 10,
            nonce: String::new(),
        }
    }

    #[test]
    fn tokens_open_only_untouched_and_with_the_same_key() {
        let key = [7u8; 32];
        let token = mint(&key, payload());
        let (opened, _) = open(&key, &token).expect("a fresh token opens");
        assert_eq!((opened.key_id.as_str(), opened.expires_at_ms), ("k_1", 10));
        assert!(open(&[8u8; 32], &token).is_none());
        let (body, tag) = token.split_once('.').unwrap();
        let mut altered = body.to_owned();
        altered.push('A');
        assert!(open(&key, &format!("{altered}.{tag}")).is_none());
        assert!(open(&key, &token.replace(TOKEN_PREFIX, "otcd_x_")).is_none());
        assert_ne!(mint(&key, payload()), token, "tokens carry a nonce");
    }

    #[test]
    fn expired_tokens_and_revoked_keys_are_refused() {
        use otcd_core::ids::{ClientId, KeyId};
        use otcd_core::model::{ApiKey, KeyAlgorithm, KeyOwner};
        use otcd_core::time::TimestampMs;
        let dir = tempfile::tempdir().unwrap();
        let master_key = Arc::new(otcd_host::secrets::MasterKey::load_or_create(&dir.path().join("m")).unwrap());
        let registry = KeyRegistry::new(master_key.clone());
        let mut record = ApiKey {
            key_id: KeyId::parse("k_1").unwrap(),
            owner: KeyOwner::Client(ClientId::parse("cl_00000001").unwrap()),
            scopes: vec![Scope::Read, Scope::Trade],
            algorithm: KeyAlgorithm::Hmac,
            credential: master_key.seal("k_1", b"secret"),
            allowed_ips: vec![],
            created_at: TimestampMs(0),
            created_by: None,
            revoked_at: None,
        };
        registry.upsert(&record);
        let token = mint(master_key.session_key(), payload());
        let ip = "127.0.0.1".parse().unwrap();
        let principal = authenticate(&registry, &token, ip, 9).expect("valid before expiry");
        assert_eq!(principal.key.scopes, vec![Scope::Read], "narrowed to the token's scopes");
        assert_eq!(principal.session_expires_at_ms, Some(10));
        assert_eq!(authenticate(&registry, &token, ip, 10).err().unwrap().code, "unauthenticated");
        record.revoked_at = Some(TimestampMs(5));
        registry.upsert(&record);
        let refused = authenticate(&registry, &token, ip, 9).err().unwrap();
        assert_eq!((refused.code, refused.detail.contains("revoked")), ("unauthenticated", true));
    }

    #[test]
    fn client_keys_never_hand_out_withdraw_or_admin() {
        let client = [Scope::Read, Scope::Trade, Scope::Withdraw];
        assert_eq!(grantable(&client, None).unwrap(), vec![Scope::Read, Scope::Trade]);
        assert_eq!(grantable(&client, Some(&[Scope::Read])).unwrap(), vec![Scope::Read]);
        assert_eq!(grantable(&client, Some(&[Scope::Withdraw])).unwrap_err().code, "forbidden");
        assert_eq!(grantable(&[Scope::Read], Some(&[Scope::Trade])).unwrap_err().code, "forbidden");
        assert_eq!(grantable(&client, Some(&[])).unwrap_err().code, "invalid_request");
        let admin = [Scope::Read, Scope::Admin];
        assert_eq!(grantable(&admin, None).unwrap(), vec![Scope::Read, Scope::Admin]);
    }
}
