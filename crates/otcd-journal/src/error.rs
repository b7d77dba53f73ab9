//! The single error type of the crate.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong with a journal or a snapshot store.
///
/// Integrity errors always name the sequence number and the file (and the byte offset where
/// one is meaningful) so that an operator can go straight to the damaged record.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error while trying to {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("journal record seq {seq} in {file} at offset {offset} is corrupt: {reason}")]
    Corrupt { seq: u64, file: PathBuf, offset: u64, reason: String },

    #[error(
        "journal record seq {seq} in {file} at offset {offset} breaks the hash chain: \
         stored hash {stored_hex}, recomputed hash {computed_hex}"
    )]
    ChainBroken { seq: u64, file: PathBuf, offset: u64, stored_hex: String, computed_hex: String },

    #[error(
        "journal sequence gap: expected record seq {expected} in {file} at offset {offset} \
         but found seq {found}"
    )]
    Gap { expected: u64, found: u64, file: PathBuf, offset: u64 },

    #[error(
        "journal segment missing: expected a segment starting at seq {expected} but the next \
         segment is {file}, starting at seq {found}"
    )]
    MissingSegment { expected: u64, found: u64, file: PathBuf },

    #[error("snapshot taken at seq {seq} does not match the journal in {file}: {reason}")]
    SnapshotMismatch { seq: u64, file: PathBuf, reason: String },

    #[error("signed checkpoint #{index} at seq {seq} does not match the journal in {file}: {reason}")]
    CheckpointMismatch { index: u64, seq: u64, file: PathBuf, reason: String },

    #[error("journal payload for seq {seq} is {len} bytes, more than the maximum of {max} bytes")]
    PayloadTooLarge { seq: u64, len: usize, max: u32 },

    #[error("journal replay aborted by the visitor: {0}")]
    Visit(String),

    /// A replicated journal could not make records durable on its quorum, or was fenced by another leader.
    #[error("replicated journal: {0}")]
    Replication(String),

    #[error(
        "journal directory {path} is locked by another open journal (another process or \
         another FileJournal in this process)"
    )]
    Locked { path: PathBuf },

    #[error(
        "journal is poisoned by an earlier write or sync failure; nothing more can be \
         acknowledged until the process reopens the journal"
    )]
    Poisoned,

    /// A reader following the writer's durable seq found fewer records than that seq promises.
    #[error("the journal ends at seq {reached} before the durable seq {wanted}")]
    EndsBefore { reached: u64, wanted: u64 },
}

impl JournalError {
    /// The sequence number the error is about, when there is one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Corrupt { seq, .. }
            | Self::ChainBroken { seq, .. }
            | Self::SnapshotMismatch { seq, .. }
            | Self::CheckpointMismatch { seq, .. }
            | Self::PayloadTooLarge { seq, .. } => Some(*seq),
            Self::Gap { expected, .. } | Self::MissingSegment { expected, .. } => Some(*expected),
            Self::EndsBefore { reached, .. } => Some(reached + 1),
            Self::Io { .. } | Self::Visit(_) | Self::Replication(_) | Self::Locked { .. } | Self::Poisoned => None,
        }
    }

    /// The index of the signed checkpoint the error is about, when there is one.
    pub fn checkpoint_index(&self) -> Option<u64> {
        match self {
            Self::CheckpointMismatch { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The file the error is about, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. } | Self::Locked { path } => Some(path),
            Self::Corrupt { file, .. }
            | Self::ChainBroken { file, .. }
            | Self::Gap { file, .. }
            | Self::MissingSegment { file, .. }
            | Self::SnapshotMismatch { file, .. }
            | Self::CheckpointMismatch { file, .. } => Some(file),
            Self::PayloadTooLarge { .. }
            | Self::Visit(_)
            | Self::Replication(_)
            | Self::Poisoned
            | Self::EndsBefore { .. } => None,
        }
    }

    /// True for errors that mean the stored data is damaged or inconsistent (as opposed to
    /// I/O trouble, misuse or a poisoned journal).
    pub fn is_integrity_error(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. }
                | Self::ChainBroken { .. }
                | Self::Gap { .. }
                | Self::MissingSegment { .. }
                | Self::SnapshotMismatch { .. }
                | Self::CheckpointMismatch { .. }
                | Self::EndsBefore { .. }
        )
    }
}

/// Builds a closure for `map_err` that wraps an `io::Error` with what was being done and where.
pub(crate) fn io_error<'path>(
    operation: &'static str,
    path: &'path Path,
) -> impl FnOnce(io::Error) -> JournalError + 'path {
    move |source| JournalError::Io { operation, path: path.to_path_buf(), source }
}

pub(crate) fn corrupt(seq: u64, file: &Path, offset: u64, reason: impl Into<String>) -> JournalError {
    JournalError::Corrupt { seq, file: file.to_path_buf(), offset, reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_message_names_seq_file_and_offset() {
        let error = corrupt(1234, Path::new("/x/journal/00000000000000001201.seg"), 5678, "body checksum mismatch");
        assert_eq!(
            error.to_string(),
            "journal record seq 1234 in /x/journal/00000000000000001201.seg at offset 5678 \
             is corrupt: body checksum mismatch"
        );
        assert_eq!(error.seq(), Some(1234));
        assert!(error.is_integrity_error());
    }

    #[test]
    fn gap_reports_the_expected_seq() {
        let error = JournalError::Gap { expected: 7, found: 9, file: PathBuf::from("/j/1.seg"), offset: 10 };
        assert_eq!(error.seq(), Some(7));
        let message = error.to_string();
        assert!(message.contains("seq 7") && message.contains("/j/1.seg"), "{message}");
    }
}
