//! Offline, read-only verification of a whole journal.

use std::path::Path;

use crate::error::JournalError;
use crate::scan::scan_journal;
use crate::ChainHead;

/// Result of [`verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Valid records in the journal.
    pub events: u64,
    /// The last valid record.
    pub head: ChainHead,
    /// Bytes of a torn final record (a crash during a write; never acknowledged, so not an
    /// error). `FileJournal::open` would cut them off.
    pub torn_tail_bytes: u64,
    /// Segment files read.
    pub segments: usize,
}

/// Checks every record of the journal in `dir` (checksums, seq continuity, hash chain from
/// genesis) without modifying anything and without taking the writer lock, so it can run next
/// to a live server (whose in-flight write then shows up as a torn tail).
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    let outcome = scan_journal(dir, u64::MAX, &[], |_, _| Ok(()))?;
    Ok(VerifyReport {
        events: outcome.records,
        head: outcome.head,
        torn_tail_bytes: outcome.torn_bytes(),
        segments: outcome.segment_count,
    })
}
