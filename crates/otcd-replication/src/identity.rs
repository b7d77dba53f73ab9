//! The desk's identity on the stream: which keys its nodes must hold.
//!
//! Every node of a desk needs the desk's `master.key` (it seals the API keys' HMAC secrets, which are in the
//! journal) and `desk-signing.key` (it signs checkpoints). They are never sent through NATS: the operator copies
//! both files into a new node's data directory before its first start (docs/operations.md). What the stream
//! holds is their fingerprints: SHA-256 over a domain tag and the master key file (a one-way digest of 32 random
//! bytes), and the desk's signing public key. A node that has no keys while the stream already holds a desk,
//! or whose keys differ, refuses to start; so a second desk is never initialized over the first one's stream.

use crate::error::ReplicationError;
use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

const IDENTITY_KEY: &str = "identity";
const MASTER_KEY_DOMAIN: &[u8] = b"otcd master key fingerprint v1\0";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskIdentity {
    pub master_key_sha256: String,
    pub signing_public_key: String,
}

impl DeskIdentity {
    /// The fingerprints of the keys in `data_dir`, `None` when either key file is missing.
    pub fn of_data_dir(data_dir: &Path) -> Result<Option<Self>, ReplicationError> {
        let master = data_dir.join("master.key");
        if !master.exists() || !otcd_host::audit::signing_key_path(data_dir).exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&master)
            .map_err(|error| ReplicationError::Identity(format!("{}: {error}", master.display())))?;
        let mut digest = Sha256::new();
        digest.update(MASTER_KEY_DOMAIN);
        digest.update(bytes);
        // Loads the existing key (and rewrites desk-signing.pub from it); it exists, so nothing is created.
        let signing = otcd_host::audit::load_or_create_signing_key(data_dir)
            .map_err(|error| ReplicationError::Identity(error.to_string()))?;
        Ok(Some(Self {
            master_key_sha256: hex::encode(digest.finalize()),
            signing_public_key: hex::encode(signing.verifying_key().as_bytes()),
        }))
    }
}

/// What the stream says about the desk's keys.
pub async fn published(bucket: &kv::Store) -> Result<Option<DeskIdentity>, ReplicationError> {
    let entry = bucket.get(IDENTITY_KEY).await.map_err(|error| ReplicationError::jetstream("read identity", error))?;
    entry
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|error| ReplicationError::Identity(format!("identity entry: {error}")))
        })
        .transpose()
}

/// Checks this node's keys against the desk's (publishing them for a new desk); `stream_seq` is the stream's
/// newest record.
pub async fn check(bucket: &kv::Store, local: Option<&DeskIdentity>, stream_seq: u64) -> Result<(), ReplicationError> {
    let copy_hint = "copy master.key and desk-signing.key from a node of this desk into the data \
                     directory before starting (docs/operations.md)";
    match (published(bucket).await?, local) {
        (Some(desk), Some(local)) if &desk == local => Ok(()),
        (Some(_), Some(_)) => {
            Err(ReplicationError::Identity(format!("this node's keys are not the desk's keys: {copy_hint}")))
        }
        (Some(_), None) => Err(ReplicationError::Identity(format!("this node has no desk keys: {copy_hint}"))),
        (None, _) if stream_seq > 0 => Err(ReplicationError::Identity(
            "the stream holds records but no desk identity; refusing to guess which keys are the desk's".into(),
        )),
        (None, None) => Err(ReplicationError::Identity("create the keys first (internal ordering error)".into())),
        (None, Some(local)) => {
            let bytes = serde_json::to_vec(local).expect("identities serialize");
            match bucket.create(IDENTITY_KEY, bytes.into()).await {
                Ok(_) => Ok(()),
                // Another new node published first: compare with it.
                Err(_) => match published(bucket).await? {
                    Some(desk) if &desk == local => Ok(()),
                    _ => Err(ReplicationError::Identity(format!(
                        "another node created this desk with other keys first: {copy_hint}"
                    ))),
                },
            }
        }
    }
}
