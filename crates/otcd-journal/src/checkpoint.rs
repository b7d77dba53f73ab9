//! Signed checkpoints: the desk's Ed25519 signature over a durable chain head, appended to an
//! append-only, hash-chained file beside the journal.
//!
//! The record chain alone proves that nothing was changed *inside* the journal; it cannot show that
//! its tail was cut off cleanly or replaced by a re-computed chain. A checkpoint signs
//! `{index, seq, record_count, head_hash, timestamp_ms, prev_checkpoint_hash}` with the desk's
//! signing key, so a journal that no longer reaches a signed seq, or has another hash there, is
//! detected by anyone holding the desk's public key.
//!
//! # File format
//!
//! One JSON object per line, each line ending in `\n`:
//!
//! ```json
//! {"index":1,"seq":1000,"record_count":1000,"head_hash":"<64 hex>","timestamp_ms":1767225600000,
//!  "prev_checkpoint_hash":"<64 hex>","signature":"<128 hex>"}
//! ```
//!
//! * `index` counts checkpoints from 1, consecutive; `seq` strictly increases.
//! * `record_count` is the number of journal records up to and including `seq` (equal to `seq`,
//!   since seqs start at 1 and are consecutive; signed separately so that a reader need not know that).
//! * The signed message is the bytes [`CHECKPOINT_DOMAIN`] followed by index, seq, record_count (u64
//!   little-endian), head_hash (32 bytes), timestamp_ms (i64 little-endian) and
//!   prev_checkpoint_hash (32 bytes). The signature is Ed25519 (RFC 8032) over that message.
//! * The checkpoint's own hash is SHA-256 of the signed message; `prev_checkpoint_hash` is the
//!   previous checkpoint's hash (all zeros for index 1). Deleting, reordering or editing a line
//!   breaks the chain of the lines after it.
//!
//! # Crash rules
//!
//! A checkpoint is appended only after the journal records it covers were fsynced, so on disk it
//! may lag the journal but is never ahead of it. A final line without its `\n` is a checkpoint
//! whose write was interrupted: [`CheckpointLog::open`] cuts it off (it signed records that are
//! durable anyway, and the next checkpoint covers them again); [`read_checkpoints`] only reports
//! it. Every other defect is an error naming the checkpoint index.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ChainHead, Hash};

/// Domain separation prefix of the signed message.
pub const CHECKPOINT_DOMAIN: &[u8] = b"otcd-checkpoint-v1";

/// One signed checkpoint (one line of the checkpoints file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub index: u64,
    pub seq: u64,
    pub record_count: u64,
    #[serde(with = "hex_bytes")]
    pub head_hash: Hash,
    pub timestamp_ms: i64,
    #[serde(with = "hex_bytes")]
    pub prev_checkpoint_hash: Hash,
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Signs the chain head `head` as checkpoint `index`, chained to `prev_checkpoint_hash`.
    pub fn sign(index: u64, head: ChainHead, timestamp_ms: i64, prev_checkpoint_hash: Hash, key: &SigningKey) -> Self {
        let mut checkpoint = Checkpoint {
            index,
            seq: head.seq,
            record_count: head.seq,
            head_hash: head.hash,
            timestamp_ms,
            prev_checkpoint_hash,
            signature: [0; 64],
        };
        checkpoint.signature = key.sign(&checkpoint.signed_message()).to_bytes();
        checkpoint
    }

    /// The exact bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 3 * 8 + 32 + 8 + 32);
        message.extend_from_slice(CHECKPOINT_DOMAIN);
        message.extend_from_slice(&self.index.to_le_bytes());
        message.extend_from_slice(&self.seq.to_le_bytes());
        message.extend_from_slice(&self.record_count.to_le_bytes());
        message.extend_from_slice(&self.head_hash);
        message.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        message.extend_from_slice(&self.prev_checkpoint_hash);
        message
    }

    /// This checkpoint's hash: what the next checkpoint names as `prev_checkpoint_hash`.
    pub fn hash(&self) -> Hash {
        Sha256::digest(self.signed_message()).into()
    }

    /// The journal chain head this checkpoint signs.
    pub fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: self.head_hash }
    }

    /// True when `key` made the signature (strict verification: no malleable or small-order forms).
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(&self.signed_message(), &Signature::from_bytes(&self.signature)).is_ok()
    }

    /// The line written to the checkpoints file, with its `\n`.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("checkpoints serialize");
        line.push('\n');
        line
    }

    /// Checks this checkpoint's place in the chain after `previous` (`None` for the first line).
    pub fn check_follows(&self, previous: Option<&Checkpoint>) -> Result<(), String> {
        let (expected_index, expected_prev, previous_seq) = match previous {
            Some(previous) => (previous.index + 1, previous.hash(), Some(previous.seq)),
            None => (1, [0; 32], None),
        };
        if self.index != expected_index {
            return Err(format!(
                "its index is {} but checkpoint #{expected_index} was expected (a checkpoint is missing or out of order)",
                self.index
            ));
        }
        if self.prev_checkpoint_hash != expected_prev {
            return Err(format!(
                "it names previous checkpoint hash {} but the previous checkpoint hashes to {}",
                hex::encode(self.prev_checkpoint_hash),
                hex::encode(expected_prev)
            ));
        }
        if self.record_count != self.seq {
            return Err(format!("record_count {} differs from seq {}", self.record_count, self.seq));
        }
        if let Some(previous_seq) = previous_seq {
            if self.seq <= previous_seq {
                return Err(format!(
                    "its seq {} does not advance past the previous checkpoint's {previous_seq}",
                    self.seq
                ));
            }
        }
        Ok(())
    }
}

/// Everything that can go wrong with the checkpoints file. Integrity errors name the checkpoint
/// index (its line number) and, when it could be read, the seq it signs.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint I/O error while trying to {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("checkpoint #{index} (line {index} of {path}) is malformed: {reason}")]
    Malformed { index: u64, path: PathBuf, reason: String },

    #[error("checkpoint #{index} (seq {seq}) in {path} breaks the checkpoint chain: {reason}")]
    Chain { index: u64, seq: u64, path: PathBuf, reason: String },

    #[error(
        "checkpoint #{index} (seq {seq}) in {path} has an invalid signature: it was not signed by the desk key \
         {public_key_hex} (forged, edited, or signed with another key)"
    )]
    Signature { index: u64, seq: u64, path: PathBuf, public_key_hex: String },

    #[error("cannot checkpoint seq {seq}: the last checkpoint already covers seq {last_seq}")]
    NotAdvancing { seq: u64, last_seq: u64 },

    #[error("the checkpoints file is poisoned by an earlier write or sync failure; restart the desk")]
    Poisoned,

    #[error(
        "rollback detected: {reason} (high-water mark {high_water}); if this data directory was knowingly restored \
         from a backup, start once with `otcd serve --accept-rollback`"
    )]
    Rollback { reason: String, high_water: PathBuf },

    #[error(
        "rollback detected by the checkpoint witness {witness}: {reason}; if this data directory was knowingly \
         restored from a backup, start once with `otcd serve --accept-rollback` (the witness is set aside and a new \
         one begins)"
    )]
    Witness { reason: String, witness: PathBuf },
}

impl CheckpointError {
    /// The checkpoint index the error is about, when there is one.
    pub fn index(&self) -> Option<u64> {
        match self {
            Self::Malformed { index, .. } | Self::Chain { index, .. } | Self::Signature { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The journal seq the checkpoint signs, when it could be read.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Chain { seq, .. } | Self::Signature { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

fn io_error<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io { operation, path: path.to_path_buf(), source }
}

/// Which signatures [`read_checkpoints`] verifies. The chain of checkpoint hashes is always checked.
#[derive(Clone, Copy, Debug)]
pub enum SignatureCheck<'a> {
    /// None (the chain is still checked).
    None,
    /// Only the newest checkpoint (enough at startup to catch a wrong or replaced key).
    Last(&'a VerifyingKey),
    /// Every checkpoint (offline verification).
    All(&'a VerifyingKey),
}

/// The parsed checkpoints file.
#[derive(Clone, Debug, Default)]
pub struct CheckpointFile {
    pub checkpoints: Vec<Checkpoint>,
    /// Bytes of the complete lines.
    pub valid_len: u64,
    /// Bytes of an interrupted final line (no `\n`): a crash during a checkpoint write.
    pub torn_bytes: u64,
}

impl CheckpointFile {
    pub fn last(&self) -> Option<&Checkpoint> {
        self.checkpoints.last()
    }
}

/// Reads and checks the checkpoints file at `path` (missing = no checkpoints yet): JSON of every
/// line, index continuity, the hash chain, increasing seqs, and the signatures `check` asks for.
/// Read-only; a torn final line is reported in `torn_bytes`.
pub fn read_checkpoints(path: &Path, check: SignatureCheck<'_>) -> Result<CheckpointFile, CheckpointError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(CheckpointFile::default()),
        Err(error) => return Err(io_error("read checkpoints file", path)(error)),
    };
    let complete_len = bytes.iter().rposition(|&byte| byte == b'\n').map_or(0, |position| position + 1);
    let mut file = CheckpointFile {
        checkpoints: Vec::new(),
        valid_len: complete_len as u64,
        torn_bytes: (bytes.len() - complete_len) as u64,
    };
    for (line_number, line) in bytes[..complete_len].split_inclusive(|&byte| byte == b'\n').enumerate() {
        let line = &line[..line.len() - 1];
        let index = line_number as u64 + 1;
        let checkpoint: Checkpoint = serde_json::from_slice(line).map_err(|error| CheckpointError::Malformed {
            index,
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        checkpoint.check_follows(file.checkpoints.last()).map_err(|reason| CheckpointError::Chain {
            index,
            seq: checkpoint.seq,
            path: path.to_path_buf(),
            reason,
        })?;
        if let SignatureCheck::All(key) = check {
            check_signature(&checkpoint, key, path)?;
        }
        file.checkpoints.push(checkpoint);
    }
    if let (SignatureCheck::Last(key), Some(last)) = (check, file.checkpoints.last()) {
        check_signature(last, key, path)?;
    }
    Ok(file)
}

fn check_signature(checkpoint: &Checkpoint, key: &VerifyingKey, path: &Path) -> Result<(), CheckpointError> {
    if checkpoint.signature_is_valid(key) {
        return Ok(());
    }
    Err(CheckpointError::Signature {
        index: checkpoint.index,
        seq: checkpoint.seq,
        path: path.to_path_buf(),
        public_key_hex: hex::encode(key.as_bytes()),
    })
}

/// The writer of the checkpoints file. Used by one thread; every [`append`](Self::append) is
/// durable (write + fdatasync) before it returns. After a failed write or sync it is poisoned.
pub struct CheckpointLog {
    path: PathBuf,
    file: File,
    key: SigningKey,
    last: Option<Checkpoint>,
    poisoned: bool,
    /// The copy of every checkpoint outside the data directory, when configured.
    witness: Option<crate::witness::WitnessLog>,
}

impl CheckpointLog {
    /// Opens (creating if missing) the checkpoints file: checks the chain and that the newest
    /// checkpoint was signed by `key`, and cuts off a torn final line.
    pub fn open(path: &Path, key: SigningKey) -> Result<(CheckpointLog, CheckpointFile), CheckpointError> {
        let contents = read_checkpoints(path, SignatureCheck::Last(&key.verifying_key()))?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error("open checkpoints file for append", path))?;
        if contents.torn_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = contents.torn_bytes,
                "cut off an interrupted checkpoint line; the next checkpoint covers its records"
            );
            file.set_len(contents.valid_len).map_err(io_error("truncate torn checkpoint line", path))?;
            file.sync_all().map_err(io_error("fsync checkpoints file", path))?;
        }
        if !existed {
            file.sync_all().map_err(io_error("fsync checkpoints file", path))?;
            if let Some(parent) = path.parent() {
                File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_error("fsync directory", parent))?;
            }
        }
        let last = contents.last().cloned();
        Ok((CheckpointLog { path: path.to_path_buf(), file, key, last, poisoned: false, witness: None }, contents))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Witnesses every checkpoint appended from now on in `witness` (opened, checked and caught up already).
    pub fn attach_witness(&mut self, witness: crate::witness::WitnessLog) {
        self.witness = Some(witness);
    }

    /// Witness lines that could not be written since the start (0 without a witness).
    pub fn witness_failures(&self) -> u64 {
        self.witness.as_ref().map_or(0, crate::witness::WitnessLog::failures)
    }

    /// The newest checkpoint written (or found at open).
    pub fn last(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }

    /// Signs `head` (which the caller guarantees is durable in the journal) and appends it durably.
    pub fn append(&mut self, head: ChainHead, timestamp_ms: i64) -> Result<Checkpoint, CheckpointError> {
        if self.poisoned {
            return Err(CheckpointError::Poisoned);
        }
        let (index, prev, last_seq) = match &self.last {
            Some(last) => (last.index + 1, last.hash(), last.seq),
            None => (1, [0; 32], 0),
        };
        if head.seq <= last_seq {
            return Err(CheckpointError::NotAdvancing { seq: head.seq, last_seq });
        }
        let checkpoint = Checkpoint::sign(index, head, timestamp_ms, prev, &self.key);
        let line = checkpoint.to_line();
        let written = self
            .file
            .write_all(line.as_bytes())
            .map_err(io_error("write checkpoints file", &self.path))
            .and_then(|()| self.file.sync_data().map_err(io_error("fdatasync checkpoints file", &self.path)));
        if let Err(error) = written {
            self.poisoned = true;
            return Err(error);
        }
        self.last = Some(checkpoint.clone());
        // After the line is durable, so the mark never runs ahead of the checkpoints file.
        let mark = crate::high_water::HighWater { seq: checkpoint.seq, checkpoints: checkpoint.index };
        if let Err(error) = crate::high_water::write_high_water(&self.path, mark) {
            self.poisoned = true;
            return Err(error);
        }
        // Last: the witness lags the data directory, never leads it.
        if let Some(witness) = &mut self.witness {
            witness.append(&checkpoint);
        }
        Ok(checkpoint)
    }
}

/// Fixed-size byte arrays as lowercase hex strings.
mod hex_bytes {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; N];
        hex::decode_to_slice(text.as_ref(), &mut bytes)
            .map_err(|error| D::Error::custom(format!("expected {} hex digits: {error}", 2 * N)))?;
        Ok(bytes)
    }
}
