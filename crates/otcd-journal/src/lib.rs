//! Append-only, durable, tamper-evident journal of opaque byte payloads, plus snapshot files.
//!
//! This crate is the "nothing lost" guarantee of otcd: a caller acknowledges a command to a
//! client only after [`Journal::sync`] has returned `Ok` for it, and the journal never silently
//! drops a synced record. Every record is chained to its predecessor by SHA-256, so any edit,
//! deletion or reordering is detected when the journal is opened or [`verify`]-ed.
//!
//! # Chain
//!
//! `hash_0 = [0; 32]`, `hash_n = SHA-256(hash_{n-1} || seq_n as u64 little-endian || payload_n)`.
//! Sequence numbers start at 1 and are consecutive. [`ChainHead`] `{ seq, hash }` names a point
//! of the chain; `{ 0, [0; 32] }` is the empty journal (genesis).
//!
//! # On-disk format (version 1)
//!
//! The journal directory holds segment files named `{first_seq:020}.seg` (for example
//! `00000000000000001201.seg`, whose first record has seq 1201). Other files are ignored. All
//! integers are little-endian.
//!
//! Segment file header, 24 bytes:
//!
//! | offset | bytes | field                                  |
//! |--------|-------|----------------------------------------|
//! | 0      | 8     | magic `b"OTCDJNL1"`                    |
//! | 8      | 4     | format version, `1`                    |
//! | 12     | 8     | first_seq (must match the file name)   |
//! | 20     | 4     | crc32c of bytes 0..20                  |
//!
//! followed by records, back to back. Record header, 56 bytes, then the payload:
//!
//! | offset | bytes | field                                        |
//! |--------|-------|----------------------------------------------|
//! | 0      | 4     | magic `0x5243_544F` (the bytes `b"OTCR"`)     |
//! | 4      | 4     | payload_len                                  |
//! | 8      | 8     | seq                                          |
//! | 16     | 32    | chain hash of this record                    |
//! | 48     | 4     | crc32c of the payload                        |
//! | 52     | 4     | crc32c of header bytes 0..52                 |
//! | 56     | n     | payload                                      |
//!
//! A new segment starts when appending a record would make the current one exceed
//! [`JournalOptions::segment_bytes_max`] (a segment always holds at least one record). The old
//! segment is fdatasync-ed before the new file is created, and the directory is fsync-ed after
//! the creation, so only the newest segment can ever hold unsynced bytes.
//!
//! # Torn tail
//!
//! A crash in the middle of a write can leave the last record of the last segment incomplete.
//! That record was never acknowledged (its sync did not return), so [`FileJournal::open`]
//! truncates it (`set_len` + fsync) and reports the bytes; [`verify`] only reports them. The
//! last record is torn exactly when, at the end of the last segment,
//!
//! * fewer bytes than a record header remain, or
//! * the record header and every byte after it are zero (a file extended but never filled), or
//! * the record header is valid (checksum, magic, expected seq) but the payload runs past the end
//!   of the file.
//!
//! A last segment file shorter than its header, or entirely zero, is a crash right after its
//! creation; it is torn as a whole and rewritten with a fresh header.
//!
//! Everything else is an error naming the seq, the file and the offset, and nothing is
//! truncated or skipped: a checksum mismatch anywhere (including in a complete final record), a
//! wrong hash chain, a seq gap or duplicate, a bad segment header, a missing segment (a segment
//! whose first_seq does not continue the previous one).
//!
//! # Failure model
//!
//! After a failed write or sync the [`FileJournal`] is poisoned: every later `append` or `sync`
//! returns [`JournalError::Poisoned`]. A failed fsync is never retried, because the kernel may
//! already have dropped the dirty pages and a second fsync would falsely report success
//! ("fsyncgate"). The process has to reopen the journal, which re-reads what really is on disk.
//!
//! # Performance
//!
//! Targets (release build, measured by `cargo bench -p otcd-journal`): at least 200,000
//! records/s for ~150-byte payloads appended in groups of ~1,000 per sync, and opening (verify +
//! replay) 1,000,000 such records in under 1.5 s. `append` only encodes into a reused buffer;
//! `sync` does one `write` and one `fdatasync` per group; open reads each segment with one large
//! read.

mod audit;
mod checkpoint;
mod error;
mod file_journal;
mod format;
mod fs_util;
mod high_water;
mod pipeline;
mod scan;
mod snapshot;
mod tail;
mod verify;
mod witness;

use sha2::{Digest, Sha256};

pub use audit::{
    export, export_observed, verify_audit, verify_audit_observed, verify_export, AuditError, AuditReport, ExportReport,
    ExportSource, ExportSummary, ExportWindow, EXPORT_LEADING_RECORDS_MAX, EXPORT_RECORDS_MAX,
};
pub use checkpoint::{
    read_checkpoints, Checkpoint, CheckpointError, CheckpointFile, CheckpointLog, SignatureCheck, CHECKPOINT_DOMAIN,
};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::JournalError;
pub use file_journal::{FileJournal, JournalOptions, OpenReport};
pub use format::{
    parse_segment_file_name, segment_file_name, FORMAT_VERSION, RECORD_HEADER_LEN, RECORD_MAGIC, SEGMENT_HEADER_LEN,
    SEGMENT_MAGIC,
};
pub use high_water::{
    check_rollback, high_water_of, high_water_path, read_high_water, write_high_water, HighWater,
    CHECKPOINT_EVERY_RECORDS_MAX, HIGH_WATER_FILE, UNSIGNED_RECORDS_MAX,
};
pub use pipeline::Replayed;
pub use scan::journal_bytes;
pub use snapshot::{snapshot_file_name, Snapshot, SnapshotStore};
pub use tail::{JournalTail, TailPosition, TailRead};
pub use verify::{verify, VerifyReport};
pub use witness::{check_witness, read_witness, set_witness_aside, WitnessAgreement, WitnessContents, WitnessLog};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// A point of the hash chain: the seq of a record and the chain hash up to and including it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: Hash,
}

impl ChainHead {
    /// The empty journal: seq 0 and an all-zero hash.
    pub fn genesis() -> Self {
        Self { seq: 0, hash: [0; 32] }
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

impl Default for ChainHead {
    fn default() -> Self {
        Self::genesis()
    }
}

impl std::fmt::Display for ChainHead {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "seq {} hash {}", self.seq, self.hash_hex())
    }
}

/// A chain head the journal must contain exactly (same hash at that seq), and reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub head: ChainHead,
    pub kind: AnchorKind,
}

/// Where an [`Anchor`] comes from (it decides the error reported on a mismatch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorKind {
    /// The head a snapshot was taken at.
    Snapshot,
    /// A signed checkpoint, by its index in the checkpoints file (from 1).
    Checkpoint { index: u64 },
}

impl Anchor {
    pub fn snapshot(head: ChainHead) -> Self {
        Self { head, kind: AnchorKind::Snapshot }
    }

    pub fn checkpoint(index: u64, head: ChainHead) -> Self {
        Self { head, kind: AnchorKind::Checkpoint { index } }
    }
}

/// The chain rule: `SHA-256(previous || seq as u64 little-endian || payload)`.
pub fn chain_hash(previous: &Hash, seq: u64, payload: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize().into()
}

/// Reads a journal directory without opening it for writing (another process may be appending): checks every
/// record as [`verify`] does and hands each one with `after_seq < seq <= up_to_seq` to `visit`, in order. Records
/// beyond `up_to_seq` are read but not visited, so a reader that passes the writer's durable seq never sees a
/// record that is not yet fsynced. A torn tail (a record being written right now) ends the scan quietly.
pub fn read_records<V>(
    dir: &std::path::Path,
    after_seq: u64,
    up_to_seq: u64,
    visit: V,
) -> Result<ChainHead, JournalError>
where
    V: FnMut(u64, &[u8]) -> Result<(), String>,
{
    read_records_observed(dir, after_seq, up_to_seq, visit, &|_| {})
}

/// [`read_records`], telling `progress` how many bytes of segment files were read so far (for a progress bar;
/// the total is [`journal_bytes`]).
pub fn read_records_observed<V>(
    dir: &std::path::Path,
    after_seq: u64,
    up_to_seq: u64,
    mut visit: V,
    progress: &dyn Fn(u64),
) -> Result<ChainHead, JournalError>
where
    V: FnMut(u64, &[u8]) -> Result<(), String>,
{
    let outcome = scan::scan_journal_observed(
        dir,
        after_seq,
        &[],
        |seq, payload| {
            if seq <= up_to_seq {
                visit(seq, payload)
            } else {
                Ok(())
            }
        },
        progress,
    )?;
    Ok(outcome.head)
}

/// The port the engine runner talks to (a PostgreSQL-backed journal will implement it later).
pub trait Journal: Send {
    /// Buffers one record; assigns and returns the next seq. Not durable until [`sync`].
    ///
    /// [`sync`]: Journal::sync
    fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError>;
    /// Makes every appended record durable (one write + fdatasync for the whole group: group
    /// commit) and returns the durable head. Only after this returns `Ok` may the records be
    /// acknowledged.
    fn sync(&mut self) -> Result<ChainHead, JournalError>;
    /// The last appended record.
    fn head(&self) -> ChainHead;
    /// The last synced record.
    fn durable_head(&self) -> ChainHead;
    /// A reader of this journal's durable records, for the threads that follow it (the snapshot writer, the
    /// reports projection); `None` when the records are not kept where another thread can read them back.
    fn reader(&self) -> Option<Box<dyn JournalReader>> {
        None
    }
}

/// What a reader hands each record to: its seq and payload; an error stops the read.
pub type RecordVisitor<'a> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 'a;

/// The port through which followers read durable records back, in seq order: the file journal's
/// [`JournalTail`] today, a replicated journal's stream later. A reader remembers where its last read stopped,
/// so following the writer costs what is new, whatever the journal's length.
pub trait JournalReader: Send {
    /// Hands every record with `after_seq < seq <= up_to_seq` to `visit`, in order. Every record up to
    /// `up_to_seq` must exist (callers pass a durable seq): a journal that ends before it is
    /// [`JournalError::EndsBefore`]. An error returned by `visit` stops the read and is returned.
    fn read_through(
        &mut self,
        after_seq: u64,
        up_to_seq: u64,
        visit: &mut RecordVisitor<'_>,
    ) -> Result<TailRead, JournalError>;
    /// The last record read: its seq and chain hash.
    fn position(&self) -> Option<ChainHead>;
}

impl JournalReader for JournalTail {
    fn read_through(
        &mut self,
        after_seq: u64,
        up_to_seq: u64,
        visit: &mut RecordVisitor<'_>,
    ) -> Result<TailRead, JournalError> {
        JournalTail::read_through(self, after_seq, up_to_seq, visit)
    }

    fn position(&self) -> Option<ChainHead> {
        JournalTail::position(self).map(|position| position.head)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod audit_tests;
