//! The audit trail: full verification of a journal against its signed checkpoints, and
//! self-contained export bundles an auditor verifies without the data directory.
//!
//! # Export bundle (JSON lines, format `otcd-audit-export-v1`)
//!
//! 1. A header: `{"type":"header","format":"otcd-audit-export-v1","from","to","from_ms","to_ms",
//!    "algorithm":"ed25519","public_key":"<64 hex>","window_first_seq","window_last_seq","first_seq",
//!    "last_seq","records","checkpoints","start_anchor"}`.
//! 2. Records in seq order: `{"type":"record","seq","prev_hash","hash","in_window","payload"}` where
//!    `payload` is the journaled payload as a JSON string (its exact bytes, UTF-8; a payload that is
//!    not UTF-8 is given as `payload_hex` instead). `hash = SHA-256(prev_hash || seq u64 LE || payload)`.
//!    Records with `in_window: false` before the window lead back to the previous checkpoint (when it
//!    is at most [`EXPORT_LEADING_RECORDS_MAX`] records back), so the window's first `prev_hash` is
//!    signed too; those after the window lead up to the first checkpoint at or after the window's
//!    last record (the anchor), so the window's end is signed.
//! 3. Checkpoints: `{"type":"checkpoint","checkpoint":{...one line of the checkpoints file...}}`,
//!    every checkpoint from the one just before the first record (if any) to the anchor.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{read_checkpoints, Checkpoint, CheckpointError, SignatureCheck};
use crate::error::JournalError;
use crate::scan::scan_journal_observed;
use crate::verify::VerifyReport;
use crate::{chain_hash, Anchor, Hash};

/// Most records one export may hold (window plus leading and trailing records).
pub const EXPORT_RECORDS_MAX: usize = 50_000;
/// Most records before the window included to reach the previous checkpoint.
pub const EXPORT_LEADING_RECORDS_MAX: usize = 10_000;
/// The `format` of the bundle header.
pub const EXPORT_FORMAT: &str = "otcd-audit-export-v1";

/// Everything the audit functions can report.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Journal(#[from] JournalError),

    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),

    #[error("cannot {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("export bundle line {line}{location}: {reason}")]
    Bundle { line: usize, location: String, seq: Option<u64>, index: Option<u64>, reason: String },

    #[error("the bundle was exported for desk key {bundle_key_hex} but the key supplied is {supplied_key_hex}")]
    KeyMismatch { bundle_key_hex: String, supplied_key_hex: String },

    #[error("no journal records were stamped between {from} and {to}")]
    EmptyWindow { from: String, to: String },

    #[error("the export would hold more than {limit} records (window from seq {first_seq}); choose a narrower window")]
    TooLarge { limit: usize, first_seq: u64 },

    #[error(
        "record seq {seq} is not yet covered by a signed checkpoint (one is written within 100 ms while the desk \
         runs, and at every start and clean stop); retry shortly"
    )]
    NotAnchored { seq: u64 },
}

impl AuditError {
    /// The journal seq the error is about, when there is one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Journal(error) => error.seq(),
            Self::Checkpoint(error) => error.seq(),
            Self::Bundle { seq, .. } => *seq,
            Self::NotAnchored { seq } => Some(*seq),
            _ => None,
        }
    }

    /// The checkpoint index the error is about, when there is one.
    pub fn checkpoint_index(&self) -> Option<u64> {
        match self {
            Self::Journal(error) => error.checkpoint_index(),
            Self::Checkpoint(error) => error.index(),
            Self::Bundle { index, .. } => *index,
            _ => None,
        }
    }
}

/// Result of [`verify_audit`].
#[derive(Clone, Debug)]
pub struct AuditReport {
    pub journal: VerifyReport,
    /// Checkpoints verified (signature, chain, hash at their seq in the journal).
    pub checkpoints: u64,
    pub last_checkpoint: Option<Checkpoint>,
    /// Bytes of an interrupted final checkpoint line (not an error).
    pub checkpoint_torn_bytes: u64,
    /// Records after the last checkpoint: intact by the chain, not yet signed.
    pub unanchored_records: u64,
}

/// Verifies the journal in `journal_dir` and the checkpoints file at `checkpoints_path`: every
/// checkpoint's signature with `public_key`, the checkpoint chain, every record (checksums, seqs,
/// hash chain), that the journal has exactly each checkpoint's hash at its seq, and that it reaches
/// the last checkpoint. Read-only; safe next to a running desk (checkpoints are read first, and a
/// checkpoint is only ever written after the records it covers are durable).
pub fn verify_audit(
    journal_dir: &Path,
    checkpoints_path: &Path,
    public_key: &VerifyingKey,
) -> Result<AuditReport, AuditError> {
    verify_audit_observed(journal_dir, checkpoints_path, public_key, &|_| {})
}

/// [`verify_audit`], telling `progress` how many bytes of segment files were read so far (of
/// [`crate::journal_bytes`]).
pub fn verify_audit_observed(
    journal_dir: &Path,
    checkpoints_path: &Path,
    public_key: &VerifyingKey,
    progress: &dyn Fn(u64),
) -> Result<AuditReport, AuditError> {
    // The mark first: a desk running beside us only ever moves it after the checkpoint line it describes.
    let mark = crate::high_water::read_high_water(checkpoints_path)?;
    let file = read_checkpoints(checkpoints_path, SignatureCheck::All(public_key))?;
    let anchors: Vec<Anchor> =
        file.checkpoints.iter().map(|checkpoint| Anchor::checkpoint(checkpoint.index, checkpoint.head())).collect();
    let outcome = scan_journal_observed(journal_dir, u64::MAX, &anchors, |_, _| Ok(()), progress)?;
    crate::high_water::check_rollback(checkpoints_path, mark, &file, outcome.head.seq)?;
    let last_checkpoint = file.checkpoints.last().cloned();
    let anchored = last_checkpoint.as_ref().map_or(0, |checkpoint| checkpoint.seq);
    Ok(AuditReport {
        journal: VerifyReport {
            events: outcome.records,
            head: outcome.head,
            torn_tail_bytes: outcome.torn_bytes(),
            segments: outcome.segment_count,
        },
        checkpoints: file.checkpoints.len() as u64,
        last_checkpoint,
        checkpoint_torn_bytes: file.torn_bytes,
        unanchored_records: outcome.head.seq - anchored,
    })
}

/// The time window of an export: records stamped in `[from_ms, to_ms)`.
#[derive(Clone, Debug)]
pub struct ExportWindow {
    pub from_ms: i64,
    pub to_ms: i64,
    /// `from` and `to` as the caller wrote them (RFC 3339), copied into the header.
    pub from: String,
    pub to: String,
}

/// What [`export`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub window_first_seq: u64,
    pub window_last_seq: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: u64,
    pub checkpoints: u64,
    /// `checkpoint #N` (the first record's previous hash is signed), `genesis` (the bundle starts at
    /// seq 1) or `none`.
    pub start_anchor: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BundleLine {
    Header(BundleHeader),
    Record(BundleRecord),
    Checkpoint { checkpoint: Checkpoint },
}

#[derive(Debug, Serialize, Deserialize)]
struct BundleHeader {
    format: String,
    from: String,
    to: String,
    from_ms: i64,
    to_ms: i64,
    algorithm: String,
    public_key: String,
    #[serde(flatten)]
    summary: ExportSummary,
}

#[derive(Debug, Serialize, Deserialize)]
struct BundleRecord {
    seq: u64,
    prev_hash: String,
    hash: String,
    in_window: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_hex: Option<String>,
}

impl BundleRecord {
    fn new(seq: u64, prev: &Hash, hash: &Hash, payload: &[u8], in_window: bool) -> Self {
        let (text, hex_text) = match std::str::from_utf8(payload) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(hex::encode(payload))),
        };
        Self {
            seq,
            prev_hash: hex::encode(prev),
            hash: hex::encode(hash),
            in_window,
            payload: text,
            payload_hex: hex_text,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    /// A record stamped at or after `to` came before any in the window.
    Empty,
    In,
    /// Past the window, collecting up to the anchor checkpoint.
    After {
        anchor_seq: u64,
    },
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StartAnchor {
    Genesis,
    Checkpoint(u64),
    None,
}

/// Writes the export bundle of the records stamped in `window` (see the module documentation) to
/// `out`. `timestamp_of` reads a record's time (Unix ms) from its payload. Reads the journal from
/// the start, checking the chain and every checkpoint's hash as it goes, and stops at the anchor.
pub fn export(
    journal_dir: &Path,
    checkpoints_path: &Path,
    public_key: &VerifyingKey,
    window: &ExportWindow,
    records_max: usize,
    timestamp_of: impl Fn(&[u8]) -> Option<i64>,
    out: &mut dyn Write,
) -> Result<ExportSummary, AuditError> {
    let source = ExportSource { journal_dir, checkpoints_path, public_key };
    export_observed(&source, window, records_max, timestamp_of, out, &|_| {})
}

/// Where [`export_observed`] reads from.
pub struct ExportSource<'a> {
    pub journal_dir: &'a Path,
    pub checkpoints_path: &'a Path,
    pub public_key: &'a VerifyingKey,
}

/// [`export`], telling `progress` how many bytes of segment files were read so far (of [`crate::journal_bytes`];
/// the export stops reading at its anchor, so the last report may be below the total).
pub fn export_observed(
    source: &ExportSource<'_>,
    window: &ExportWindow,
    records_max: usize,
    timestamp_of: impl Fn(&[u8]) -> Option<i64>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary, AuditError> {
    let ExportSource { journal_dir, checkpoints_path, public_key } = *source;
    let file = read_checkpoints(checkpoints_path, SignatureCheck::Last(public_key))?;
    let checkpoints = file.checkpoints;
    let anchors: Vec<Anchor> =
        checkpoints.iter().map(|checkpoint| Anchor::checkpoint(checkpoint.index, checkpoint.head())).collect();
    let checkpoint_at = |seq: u64| checkpoints.binary_search_by_key(&seq, |checkpoint| checkpoint.seq).ok();
    let first_checkpoint_from = |seq: u64| checkpoints.iter().find(|checkpoint| checkpoint.seq >= seq);

    let mut previous: Hash = [0; 32];
    let mut phase = Phase::Before;
    let mut records: Vec<BundleRecord> = Vec::new();
    let mut start = StartAnchor::Genesis;
    let mut leading_overflow = false;
    let (mut window_first, mut window_last) = (0, 0);
    let mut too_large = false;
    const STOP: &str = "export collected everything it needs";
    let scanned = scan_journal_observed(
        journal_dir,
        0,
        &anchors,
        |seq, payload| {
            let hash = chain_hash(&previous, seq, payload);
            let prev = std::mem::replace(&mut previous, hash);
            let push = |records: &mut Vec<BundleRecord>, in_window: bool| {
                records.push(BundleRecord::new(seq, &prev, &hash, payload, in_window));
            };
            match phase {
                Phase::Before => {
                    let at = timestamp_of(payload);
                    if at.is_some_and(|at| at >= window.to_ms) {
                        phase = Phase::Empty;
                        return Err(STOP.into());
                    }
                    if at.is_some_and(|at| at >= window.from_ms) {
                        phase = Phase::In;
                        (window_first, window_last) = (seq, seq);
                        push(&mut records, true);
                    } else {
                        if !leading_overflow {
                            push(&mut records, false);
                            if records.len() > EXPORT_LEADING_RECORDS_MAX {
                                records.clear();
                                leading_overflow = true;
                                start = StartAnchor::None;
                            }
                        }
                        if let Some(position) = checkpoint_at(seq) {
                            records.clear();
                            leading_overflow = false;
                            start = StartAnchor::Checkpoint(checkpoints[position].index);
                        }
                    }
                }
                Phase::In => {
                    if timestamp_of(payload).is_some_and(|at| at >= window.to_ms) {
                        let Some(anchor) = first_checkpoint_from(window_last) else {
                            return Err(STOP.into());
                        };
                        if anchor.seq == window_last {
                            phase = Phase::Done;
                            return Err(STOP.into());
                        }
                        phase = Phase::After { anchor_seq: anchor.seq };
                        push(&mut records, false);
                    } else {
                        window_last = seq;
                        push(&mut records, true);
                    }
                }
                Phase::After { .. } => push(&mut records, false),
                Phase::Empty | Phase::Done => return Err(STOP.into()),
            }
            if let Phase::After { anchor_seq } = phase {
                if seq == anchor_seq {
                    phase = Phase::Done;
                    return Err(STOP.into());
                }
            }
            if matches!(phase, Phase::In | Phase::After { .. }) && records.len() > records_max {
                too_large = true;
                return Err(STOP.into());
            }
            Ok(())
        },
        progress,
    );
    match scanned {
        Ok(_) => {}
        Err(JournalError::Visit(message)) if message.ends_with(STOP) => {}
        Err(error) => return Err(error.into()),
    }
    if too_large {
        return Err(AuditError::TooLarge { limit: records_max, first_seq: window_first });
    }
    let anchor = match phase {
        Phase::Before | Phase::Empty => {
            return Err(AuditError::EmptyWindow { from: window.from.clone(), to: window.to.clone() })
        }
        // The journal ended inside the window, or the window ended with no checkpoint after it.
        Phase::In | Phase::After { .. } => match first_checkpoint_from(window_last) {
            Some(anchor) if records.last().is_some_and(|last| last.seq == anchor.seq) => anchor,
            _ => return Err(AuditError::NotAnchored { seq: window_last }),
        },
        Phase::Done => first_checkpoint_from(window_last).expect("the anchor was found"),
    };
    let first_seq = records.first().map_or(window_first, |record| record.seq);
    let included: Vec<&Checkpoint> = checkpoints
        .iter()
        .filter(|checkpoint| checkpoint.seq + 1 >= first_seq && checkpoint.seq <= anchor.seq)
        .collect();
    let start_anchor = match start {
        StartAnchor::Genesis if first_seq == 1 => "genesis".to_owned(),
        StartAnchor::Checkpoint(index) => format!("checkpoint #{index}"),
        _ => "none".to_owned(),
    };
    let summary = ExportSummary {
        window_first_seq: window_first,
        window_last_seq: window_last,
        first_seq,
        last_seq: anchor.seq,
        records: records.len() as u64,
        checkpoints: included.len() as u64,
        start_anchor,
    };
    let header = BundleHeader {
        format: EXPORT_FORMAT.to_owned(),
        from: window.from.clone(),
        to: window.to.clone(),
        from_ms: window.from_ms,
        to_ms: window.to_ms,
        algorithm: "ed25519".to_owned(),
        public_key: hex::encode(public_key.as_bytes()),
        summary: summary.clone(),
    };
    let write_error = |source| AuditError::Io { operation: "write", path: PathBuf::from("the export"), source };
    let mut write_line = |line: &BundleLine| -> Result<(), AuditError> {
        serde_json::to_writer(&mut *out, line).map_err(|error| write_error(error.into()))?;
        out.write_all(b"\n").map_err(write_error)
    };
    write_line(&BundleLine::Header(header))?;
    for record in records {
        write_line(&BundleLine::Record(record))?;
    }
    for checkpoint in included {
        write_line(&BundleLine::Checkpoint { checkpoint: checkpoint.clone() })?;
    }
    out.flush().map_err(write_error)?;
    Ok(summary)
}

/// Result of [`verify_export`].
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub public_key_hex: String,
    pub window_first_seq: u64,
    pub window_last_seq: u64,
    pub window_records: u64,
    pub records: u64,
    pub checkpoints: u64,
    /// The checkpoint whose signature anchors the window's end: (index, seq).
    pub anchor: (u64, u64),
    /// How the first record's previous hash is anchored (`checkpoint #N`, `genesis` or `none`).
    pub start_anchor: String,
}

fn bundle_error(line: usize, seq: Option<u64>, index: Option<u64>, reason: impl Into<String>) -> AuditError {
    let location = match (seq, index) {
        (_, Some(index)) => match seq {
            Some(seq) => format!(", checkpoint #{index} (seq {seq})"),
            None => format!(", checkpoint #{index}"),
        },
        (Some(seq), None) => format!(", record seq {seq}"),
        (None, None) => String::new(),
    };
    AuditError::Bundle { line, location, seq, index, reason: reason.into() }
}

fn parse_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok().map(|()| hash)
}

/// Verifies an export bundle on its own: recomputes every record's hash from its payload and the
/// previous hash, checks seq continuity and the window's shape, every checkpoint's signature (with
/// `public_key` when given, else the key the bundle names) and chain, that each checkpoint's hash
/// equals the recomputed chain at its seq, and that the window's last record is covered by a
/// checkpoint. Any failure names the bundle line and the record seq or checkpoint index.
pub fn verify_export(input: impl BufRead, public_key: Option<&VerifyingKey>) -> Result<ExportReport, AuditError> {
    let mut header: Option<BundleHeader> = None;
    let mut records: Vec<(usize, BundleRecord, Hash)> = Vec::new();
    let mut checkpoints: Vec<(usize, Checkpoint)> = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let line_number = number + 1;
        let line = line.map_err(|source| AuditError::Io { operation: "read", path: "the export".into(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: BundleLine = serde_json::from_str(&line)
            .map_err(|error| bundle_error(line_number, None, None, format!("not a bundle line: {error}")))?;
        match parsed {
            BundleLine::Header(found) if line_number == 1 => header = Some(found),
            BundleLine::Header(_) => return Err(bundle_error(line_number, None, None, "a second header")),
            _ if header.is_none() => return Err(bundle_error(line_number, None, None, "the header must come first")),
            BundleLine::Record(record) => {
                let seq = Some(record.seq);
                if !checkpoints.is_empty() {
                    return Err(bundle_error(line_number, seq, None, "records must come before the checkpoints"));
                }
                let payload = match (&record.payload, &record.payload_hex) {
                    (Some(text), None) => text.as_bytes().to_vec(),
                    (None, Some(hex_text)) => hex::decode(hex_text)
                        .map_err(|error| bundle_error(line_number, seq, None, format!("bad payload_hex: {error}")))?,
                    _ => return Err(bundle_error(line_number, seq, None, "needs exactly one of payload, payload_hex")),
                };
                let prev = parse_hash(&record.prev_hash)
                    .ok_or_else(|| bundle_error(line_number, seq, None, "prev_hash is not 64 hex digits"))?;
                let stated = parse_hash(&record.hash)
                    .ok_or_else(|| bundle_error(line_number, seq, None, "hash is not 64 hex digits"))?;
                if let Some((_, before, before_hash)) = records.last() {
                    if record.seq != before.seq + 1 {
                        let expected = before.seq + 1;
                        let reason = format!(
                            "missing: this line holds seq {} where seq {expected} should follow seq {} \
                             (records removed or reordered)",
                            record.seq, before.seq
                        );
                        return Err(bundle_error(line_number, Some(expected), None, reason));
                    }
                    if prev != *before_hash {
                        let reason = format!(
                            "prev_hash {} is not the hash of seq {} ({})",
                            record.prev_hash,
                            before.seq,
                            hex::encode(before_hash)
                        );
                        return Err(bundle_error(line_number, seq, None, reason));
                    }
                } else if record.seq == 1 && prev != [0; 32] {
                    return Err(bundle_error(line_number, seq, None, "the first record's prev_hash must be all zeros"));
                }
                let computed = chain_hash(&prev, record.seq, &payload);
                if computed != stated {
                    let reason = format!(
                        "the payload does not hash to the stated hash: stated {}, recomputed {} (payload or hash altered)",
                        record.hash,
                        hex::encode(computed)
                    );
                    return Err(bundle_error(line_number, seq, None, reason));
                }
                records.push((line_number, record, computed));
            }
            BundleLine::Checkpoint { checkpoint } => checkpoints.push((line_number, checkpoint)),
        }
    }
    let header = header.ok_or_else(|| bundle_error(1, None, None, "the bundle is empty (no header)"))?;
    if header.format != EXPORT_FORMAT || header.algorithm != "ed25519" {
        let reason = format!("unsupported format {:?} / algorithm {:?}", header.format, header.algorithm);
        return Err(bundle_error(1, None, None, reason));
    }
    let bundle_key = parse_hash(&header.public_key)
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| bundle_error(1, None, None, "public_key is not an Ed25519 public key in hex"))?;
    let key = match public_key {
        Some(supplied) if supplied != &bundle_key => {
            return Err(AuditError::KeyMismatch {
                bundle_key_hex: header.public_key.clone(),
                supplied_key_hex: hex::encode(supplied.as_bytes()),
            })
        }
        Some(supplied) => *supplied,
        None => bundle_key,
    };
    let (Some((_, first, _)), Some((last_line, last, _))) = (records.first(), records.last()) else {
        return Err(bundle_error(1, None, None, "the bundle holds no records"));
    };
    let (first_seq, last_seq, last_line) = (first.seq, last.seq, *last_line);
    let first_prev = parse_hash(&first.prev_hash).expect("checked above");
    // The window: a contiguous run of in_window records.
    let window: Vec<u64> = records.iter().filter(|(_, record, _)| record.in_window).map(|(_, r, _)| r.seq).collect();
    let (Some(&window_first), Some(&window_last)) = (window.first(), window.last()) else {
        return Err(bundle_error(1, None, None, "no record is marked in_window"));
    };
    if window_last - window_first + 1 != window.len() as u64 {
        return Err(bundle_error(1, None, None, "the in_window records are not contiguous"));
    }
    let summary = &header.summary;
    let stated = (summary.window_first_seq, summary.window_last_seq, summary.first_seq, summary.last_seq);
    if stated != (window_first, window_last, first_seq, last_seq) || summary.records != records.len() as u64 {
        let reason = format!(
            "the header states window seq {}..={} and records seq {}..={} ({} records) but the bundle holds window \
             seq {window_first}..={window_last} and records seq {first_seq}..={last_seq} ({} records)",
            stated.0,
            stated.1,
            stated.2,
            stated.3,
            summary.records,
            records.len()
        );
        return Err(bundle_error(1, None, None, reason));
    }
    let mut start_anchor = if first_seq == 1 { "genesis".to_owned() } else { "none".to_owned() };
    let mut anchor = None;
    let mut previous: Option<&Checkpoint> = None;
    for (line, checkpoint) in &checkpoints {
        let (seq, index) = (Some(checkpoint.seq), Some(checkpoint.index));
        if !checkpoint.signature_is_valid(&key) {
            let reason = format!(
                "invalid signature: not signed by the desk key {} (forged, edited, or signed with another key)",
                hex::encode(key.as_bytes())
            );
            return Err(bundle_error(*line, seq, index, reason));
        }
        if let Some(previous) = previous {
            checkpoint.check_follows(Some(previous)).map_err(|reason| bundle_error(*line, seq, index, reason))?;
        }
        previous = Some(checkpoint);
        if checkpoint.seq + 1 == first_seq {
            if checkpoint.head_hash != first_prev {
                let reason = format!(
                    "it signs hash {} for seq {} but the first record's prev_hash is {}",
                    hex::encode(checkpoint.head_hash),
                    checkpoint.seq,
                    hex::encode(first_prev)
                );
                return Err(bundle_error(*line, seq, index, reason));
            }
            start_anchor = format!("checkpoint #{}", checkpoint.index);
            continue;
        }
        if checkpoint.seq < first_seq || checkpoint.seq > last_seq {
            let reason = format!("its seq lies outside the bundle's records (seq {first_seq}..={last_seq})");
            return Err(bundle_error(*line, seq, index, reason));
        }
        let (_, _, recomputed) = &records[(checkpoint.seq - first_seq) as usize];
        if checkpoint.head_hash != *recomputed {
            let reason = format!(
                "it signs chain hash {} but the records recompute {} at seq {}",
                hex::encode(checkpoint.head_hash),
                hex::encode(recomputed),
                checkpoint.seq
            );
            return Err(bundle_error(*line, seq, index, reason));
        }
        if anchor.is_none() && checkpoint.seq >= window_last {
            anchor = Some((checkpoint.index, checkpoint.seq));
        }
    }
    let Some(anchor) = anchor else {
        let reason = format!("the window's last record (seq {window_last}) is not covered by any signed checkpoint");
        return Err(bundle_error(last_line, Some(window_last), None, reason));
    };
    if anchor.1 != last_seq {
        let reason = format!("records continue past the anchoring checkpoint #{} at seq {}", anchor.0, anchor.1);
        return Err(bundle_error(last_line, Some(last_seq), None, reason));
    }
    Ok(ExportReport {
        public_key_hex: hex::encode(key.as_bytes()),
        window_first_seq: window_first,
        window_last_seq: window_last,
        window_records: window.len() as u64,
        records: records.len() as u64,
        checkpoints: checkpoints.len() as u64,
        anchor,
        start_anchor,
    })
}
