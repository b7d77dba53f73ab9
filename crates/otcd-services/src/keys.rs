//! The authentication view of every API key, shared by every protocol edge (HTTP signatures and session tokens
//! today, FIX logons next): who a key belongs to, its scopes and allow-list, whether it is revoked, and a
//! verifier for its signatures. Each edge decides what is signed and how the signature is carried; the key
//! material and its check live here once.
//!
//! Kept in step with the engine: loaded at start from the recovered desk, and updated by the services from each
//! key command's outcome after it is durable and before its answer leaves.

use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use otcd_core::ids::{ClientId, KeyId};
use otcd_core::model::{ApiKey, KeyAlgorithm, Scope};
use otcd_host::secrets::MasterKey;
use parking_lot::RwLock;
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Bytes of a signature kept as its replay fingerprint (and journaled with the commands it causes).
pub const FINGERPRINT_BYTES: usize = 16;

pub struct AuthKey {
    pub key_id: KeyId,
    pub client_id: Option<ClientId>,
    pub scopes: Vec<Scope>,
    pub allowed_ips: Vec<IpNet>,
    pub revoked: bool,
    verifier: Verifier,
}

#[derive(Clone)]
enum Verifier {
    /// An HMAC already keyed with the secret; cloned per request instead of re-keyed.
    Hmac(Hmac<Sha256>),
    Ed25519(VerifyingKey),
}

impl AuthKey {
    fn from_record(record: &ApiKey, master_key: &MasterKey) -> Option<Self> {
        let verifier = match record.algorithm {
            KeyAlgorithm::Hmac => {
                let secret = master_key.open(record.key_id.as_str(), &record.credential)?;
                Verifier::Hmac(Hmac::<Sha256>::new_from_slice(&secret).ok()?)
            }
            KeyAlgorithm::Ed25519 => {
                let bytes: [u8; 32] = record.credential.as_slice().try_into().ok()?;
                Verifier::Ed25519(VerifyingKey::from_bytes(&bytes).ok()?)
            }
        };
        Some(Self {
            key_id: record.key_id.clone(),
            client_id: record.client_id().cloned(),
            scopes: record.scopes.clone(),
            allowed_ips: record.allowed_ips.iter().filter_map(|cidr| cidr.parse().ok()).collect(),
            revoked: record.revoked_at.is_some(),
            verifier,
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.verifier {
            Verifier::Hmac(_) => KeyAlgorithm::Hmac,
            Verifier::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Checks `presented` (the signature's bytes, decoded by the edge) over the concatenation of `message`;
    /// answers the signature's replay fingerprint (its first 16 bytes) when it matches.
    pub fn verify(&self, message: &[&[u8]], presented: &[u8]) -> Option<[u8; FINGERPRINT_BYTES]> {
        match &self.verifier {
            Verifier::Hmac(keyed) => {
                let mut mac = keyed.clone();
                message.iter().for_each(|part| mac.update(part));
                mac.verify_slice(presented).ok()?;
            }
            Verifier::Ed25519(public_key) => {
                let signature = Signature::from_slice(presented).ok()?;
                public_key.verify_strict(&message.concat(), &signature).ok()?;
            }
        }
        presented.get(..FINGERPRINT_BYTES)?.try_into().ok()
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether requests from `address` may use this key (an empty allow-list allows any).
    pub fn allows(&self, address: IpAddr) -> bool {
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|network| network.contains(&address))
    }

    /// The same key with only `scopes` (those it has): what a session token made by this key may do.
    pub fn narrowed(&self, scopes: &[Scope]) -> AuthKey {
        AuthKey {
            key_id: self.key_id.clone(),
            client_id: self.client_id.clone(),
            scopes: self.scopes.iter().copied().filter(|scope| scopes.contains(scope)).collect(),
            allowed_ips: self.allowed_ips.clone(),
            revoked: self.revoked,
            verifier: self.verifier.clone(),
        }
    }
}

/// Every key's authentication view, by key id.
pub struct KeyRegistry {
    keys: RwLock<HashMap<KeyId, Arc<AuthKey>>>,
    master_key: Arc<MasterKey>,
}

impl KeyRegistry {
    /// Seals a secret with the desk's master key (bound to `id`), for journaling it.
    pub fn seal(&self, id: &str, secret: &[u8]) -> Vec<u8> {
        self.master_key.seal(id, secret)
    }

    /// Opens what [`KeyRegistry::seal`] sealed for `id`.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.master_key.open(id, sealed)
    }

    pub fn new(master_key: Arc<MasterKey>) -> Self {
        Self { keys: RwLock::new(HashMap::new()), master_key }
    }

    pub fn upsert(&self, record: &ApiKey) {
        match AuthKey::from_record(record, &self.master_key) {
            Some(key) => {
                self.keys.write().insert(record.key_id.clone(), Arc::new(key));
            }
            None => {
                tracing::error!(key_id = %record.key_id, "key credential cannot be opened with this desk's master key")
            }
        }
    }

    pub fn get(&self, key_id: &str) -> Option<Arc<AuthKey>> {
        let key_id = KeyId::parse(key_id).ok()?;
        self.keys.read().get(&key_id).cloned()
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otcd_core::model::KeyOwner;
    use otcd_core::time::TimestampMs;

    fn registry(algorithm: KeyAlgorithm, credential: impl FnOnce(&MasterKey) -> Vec<u8>) -> KeyRegistry {
        let directory = tempfile::tempdir().unwrap();
        let master_key = Arc::new(MasterKey::load_or_create(&directory.path().join("m")).unwrap());
        let registry = KeyRegistry::new(master_key.clone());
        registry.upsert(&ApiKey {
            key_id: KeyId::parse("k_1").unwrap(),
            owner: KeyOwner::Desk,
            scopes: vec![Scope::Read],
            algorithm,
            credential: credential(&master_key),
            allowed_ips: vec!["10.0.0.0/8".into()],
            created_at: TimestampMs(0),
            created_by: None,
            revoked_at: None,
        });
        registry
    }

    #[test]
    fn an_hmac_key_verifies_its_own_signature_over_the_joined_parts_only() {
        let registry = registry(KeyAlgorithm::Hmac, |master| master.seal("k_1", b"s3cret"));
        let key = registry.get("k_1").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"a\nb");
        let signature = mac.finalize().into_bytes();
        assert_eq!(key.verify(&[b"a", b"\n", b"b"], &signature), Some(signature[..16].try_into().unwrap()));
        assert_eq!(key.verify(&[b"a", b"\n", b"c"], &signature), None);
        assert!(key.allows("10.1.2.3".parse().unwrap()) && !key.allows("192.168.0.1".parse().unwrap()));
    }

    #[test]
    fn an_ed25519_key_verifies_strictly() {
        use ed25519_dalek::{Signer, SigningKey};
        let signing = SigningKey::from_bytes(&[7; 32]);
        let public = signing.verifying_key().to_bytes().to_vec();
        let registry = registry(KeyAlgorithm::Ed25519, |_| public);
        let key = registry.get("k_1").unwrap();
        let signature = signing.sign(b"payload").to_bytes();
        assert!(key.verify(&[b"pay", b"load"], &signature).is_some());
        assert!(key.verify(&[b"payload!"], &signature).is_none());
        assert!(key.verify(&[b"payload"], &signature[..63]).is_none());
    }
}
