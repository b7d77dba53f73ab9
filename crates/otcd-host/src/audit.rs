//! The desk's audit trail files: the Ed25519 signing key that signs journal checkpoints, its published
//! public key, the checkpoints file, and the data-directory level verify and export used by both the HTTP
//! endpoints and the CLI. Formats and the auditor's procedure: docs/audit.md.
//!
//! ```text
//! DATA_DIR/
//!   desk-signing.key    the Ed25519 secret seed, 64 hex digits (0600); created with the desk, or at the next
//!                       start of a desk that predates checkpoints
//!   desk-signing.pub    the public key, 64 hex digits: what the operator hands to auditors
//!   checkpoints.jsonl   signed, hash-chained checkpoints of the journal (append-only)
//! ```

use crate::store::journal_dir;
use ed25519_dalek::{SigningKey, VerifyingKey};
use otcd_journal::{AuditError, AuditReport, ExportSummary, ExportWindow};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub fn signing_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("desk-signing.key")
}

pub fn public_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("desk-signing.pub")
}

pub fn checkpoints_path(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoints.jsonl")
}

#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("cannot use {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} does not hold a 32-byte key as 64 hex digits")]
    Malformed { path: PathBuf },
    #[error(
        "the desk signing key {key} is missing but {checkpoints} holds signed checkpoints: restore the key from \
         backup (a new key would make every existing checkpoint unverifiable)"
    )]
    Missing { key: PathBuf, checkpoints: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> AuditKeyError + '_ {
    move |source| AuditKeyError::Io { path: path.to_owned(), source }
}

fn parse_key_hex(text: &str, path: &Path) -> Result<[u8; 32], AuditKeyError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| AuditKeyError::Malformed { path: path.to_owned() })?;
    Ok(bytes)
}

/// Reads the desk signing key, creating it (0600, synced) for a new desk or one that predates checkpoints, and
/// (re)writes `desk-signing.pub` when it is missing or does not match.
pub fn load_or_create_signing_key(data_dir: &Path) -> Result<SigningKey, AuditKeyError> {
    let path = signing_key_path(data_dir);
    let key = match fs::read_to_string(&path) {
        Ok(text) => SigningKey::from_bytes(&parse_key_hex(&text, &path)?),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let checkpoints = checkpoints_path(data_dir);
            if fs::metadata(&checkpoints).is_ok_and(|metadata| metadata.len() > 0) {
                return Err(AuditKeyError::Missing { key: path, checkpoints });
            }
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let mut file =
                fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io_error(&path))?;
            file.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes()).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
            fs::File::open(data_dir).and_then(|dir| dir.sync_all()).map_err(io_error(data_dir))?;
            tracing::info!(path = %path.display(), "created the desk signing key for journal checkpoints");
            key
        }
        Err(error) => return Err(io_error(&path)(error)),
    };
    let public_path = public_key_path(data_dir);
    let public_text = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
    if fs::read_to_string(&public_path).ok().as_deref() != Some(public_text.as_str()) {
        let temporary = public_path.with_extension("pub.tmp");
        fs::write(&temporary, &public_text)
            .and_then(|()| fs::File::open(&temporary)?.sync_all())
            .and_then(|()| fs::rename(&temporary, &public_path))
            .map_err(io_error(&public_path))?;
    }
    Ok(key)
}

/// Parses a public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| "a public key is 64 hex digits".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// The desk's published public key (`desk-signing.pub`).
pub fn read_public_key(data_dir: &Path) -> Result<VerifyingKey, String> {
    let path = public_key_path(data_dir);
    let text = fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse_public_key(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// Verifies the data directory's journal against its checkpoints, with `public_key` or the published one.
pub fn verify_data_dir(data_dir: &Path, public_key: Option<&VerifyingKey>) -> Result<AuditReport, VerifyFailure> {
    verify_data_dir_observed(data_dir, public_key, &|_| {})
}

/// [`verify_data_dir`], telling `progress` how many bytes of journal segments were read so far (of
/// [`otcd_journal::journal_bytes`] of `DATA_DIR/journal`).
pub fn verify_data_dir_observed(
    data_dir: &Path,
    public_key: Option<&VerifyingKey>,
    progress: &dyn Fn(u64),
) -> Result<AuditReport, VerifyFailure> {
    let no_checkpoints = fs::metadata(checkpoints_path(data_dir)).map_or(true, |metadata| metadata.len() == 0);
    let key = match public_key {
        Some(key) => *key,
        // A desk that predates checkpoints (not restarted since) has neither key nor checkpoints: its records are
        // still verified, and no signature is checked, so any key will do.
        None if no_checkpoints && !public_key_path(data_dir).exists() => {
            SigningKey::from_bytes(&[1; 32]).verifying_key()
        }
        None => read_public_key(data_dir).map_err(VerifyFailure::Key)?,
    };
    otcd_journal::verify_audit_observed(&journal_dir(data_dir), &checkpoints_path(data_dir), &key, progress)
        .map_err(VerifyFailure::Audit)
}

/// What `otcd verify --witness` found: the witness agrees with the data directory.
#[derive(Clone, Copy, Debug)]
pub struct WitnessReport {
    pub agreement: otcd_journal::WitnessAgreement,
    /// Checkpoints between the witness's first and last that it does not hold (writes that failed).
    pub missing: u64,
    /// Bytes of an interrupted final witness line (not an error).
    pub torn_bytes: u64,
}

/// Checks every checkpoint of the witness at `witness` (each signed by the desk key) against the data
/// directory's checkpoints file: each must be there, identical. Run after [`verify_data_dir`], which ties the
/// checkpoints to the journal.
pub fn verify_witness(
    data_dir: &Path,
    public_key: Option<&VerifyingKey>,
    witness: &Path,
) -> Result<WitnessReport, VerifyFailure> {
    let key = match public_key {
        Some(key) => *key,
        None => read_public_key(data_dir).map_err(VerifyFailure::Key)?,
    };
    let checkpoints = checkpoints_path(data_dir);
    let audit = |error: otcd_journal::CheckpointError| VerifyFailure::Audit(error.into());
    let local = otcd_journal::read_checkpoints(&checkpoints, otcd_journal::SignatureCheck::All(&key)).map_err(audit)?;
    let contents = otcd_journal::read_witness(witness, &key).map_err(audit)?;
    let agreement = otcd_journal::check_witness(&local, &contents.checkpoints, witness, &checkpoints).map_err(audit)?;
    Ok(WitnessReport { agreement, missing: contents.missing, torn_bytes: contents.torn_bytes })
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    #[error("no usable public key: {0}")]
    Key(String),
    #[error(transparent)]
    Audit(AuditError),
}

impl VerifyFailure {
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Key(_) => None,
            Self::Audit(error) => error.seq(),
        }
    }

    pub fn checkpoint_index(&self) -> Option<u64> {
        match self {
            Self::Key(_) => None,
            Self::Audit(error) => error.checkpoint_index(),
        }
    }
}

/// A journal record's time, read from its payload (a JSON `JournalRecord`: its `at`).
pub fn record_timestamp_ms(payload: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Stamp {
        at: otcd_core::time::TimestampMs,
    }
    serde_json::from_slice::<Stamp>(payload).ok().map(|stamp| stamp.at.0)
}

/// Writes the export bundle of the records stamped in `[from, to)` to `out`.
pub fn export_data_dir(
    data_dir: &Path,
    window: &ExportWindow,
    records_max: usize,
    out: &mut dyn Write,
) -> Result<ExportSummary, VerifyFailure> {
    export_data_dir_observed(data_dir, window, records_max, out, &|_| {})
}

/// [`export_data_dir`], telling `progress` how many bytes of journal segments were read so far.
pub fn export_data_dir_observed(
    data_dir: &Path,
    window: &ExportWindow,
    records_max: usize,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary, VerifyFailure> {
    let key = read_public_key(data_dir).map_err(VerifyFailure::Key)?;
    let (journal, checkpoints) = (journal_dir(data_dir), checkpoints_path(data_dir));
    let source = otcd_journal::ExportSource { journal_dir: &journal, checkpoints_path: &checkpoints, public_key: &key };
    otcd_journal::export_observed(&source, window, records_max, record_timestamp_ms, out, progress)
        .map_err(VerifyFailure::Audit)
}
