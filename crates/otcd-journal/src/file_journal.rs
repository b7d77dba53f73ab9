//! The file-backed journal: segment files, group commit, torn-tail repair and poisoning.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_error, JournalError};
use crate::format::{
    encode_segment_header, peek_record_seq, segment_file_name, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::scan::{scan_journal, LastSegment, ScanOutcome};
use crate::{chain_hash, fs_util, Anchor, ChainHead, Journal};

/// Buffered records are handed to the OS once this many bytes are pending, so that a caller
/// that syncs rarely does not grow the buffer without bound. This is not a durability point.
const PENDING_FLUSH_BYTES: usize = 4 << 20;

/// Tunables of a [`FileJournal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// A new segment starts when the current one would grow beyond this (a segment always holds
    /// at least one record, so a single record larger than this gets a segment of its own).
    pub segment_bytes_max: u64,
    /// `append` refuses payloads longer than this.
    pub payload_bytes_max: u32,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self { segment_bytes_max: 64 << 20, payload_bytes_max: 1 << 20 }
    }
}

/// What `FileJournal::open` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The last valid record (genesis for an empty journal).
    pub head: ChainHead,
    /// Records in the journal (all of them, not only the replayed ones).
    pub records: u64,
    /// Segment files read.
    pub segments: usize,
    /// Bytes of a torn final record (never acknowledged) that were cut off the last segment.
    pub truncated_torn_bytes: u64,
}

/// Where in the pending buffer a new segment file has to begin.
#[derive(Clone, Copy, Debug)]
struct PendingRoll {
    buffer_offset: usize,
    first_seq: u64,
}

/// The segment file currently receiving writes.
struct ActiveFile {
    file: File,
    path: PathBuf,
}

/// Test-only failure injection: real write and fsync failures cannot be provoked reliably
/// (tests run as root, so read-only files do not help).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Write,
    Sync,
}

/// Test-only record of the I/O the journal performed, to check ordering and group commit.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IoEvent {
    Write(PathBuf),
    Sync(PathBuf),
    Create(PathBuf),
}

/// An append-only journal stored as segment files in one directory.
///
/// `append` only encodes into an in-memory buffer (plus, rarely, a write to the OS page cache);
/// `sync` writes the buffer with one `write` call and one `fdatasync`. After any failed write or
/// sync the journal is poisoned.
pub struct FileJournal {
    dir: PathBuf,
    /// Holds the exclusive lock on the directory and is used to fsync it.
    directory: File,
    options: JournalOptions,
    active: ActiveFile,
    /// Encoded records not yet handed to the OS; reused between groups.
    pending: Vec<u8>,
    pending_rolls: Vec<PendingRoll>,
    /// Bytes of the newest segment, counting pending records (drives segment rolling).
    segment_len: u64,
    segment_records: u64,
    /// Last seq handed to the OS with `write`.
    written_seq: u64,
    head: ChainHead,
    durable: ChainHead,
    poisoned: bool,
    #[cfg(test)]
    fault: Option<Fault>,
    #[cfg(test)]
    io_events: Vec<IoEvent>,
}

impl FileJournal {
    /// Opens (creating the directory if missing) the journal in `dir`.
    ///
    /// Reads every segment in order and checks every record's checksums, seq continuity and
    /// the hash chain from genesis; truncates a torn final record; calls `visit(seq, payload)`
    /// for every record with seq > `replay_after_seq`, in order. If `expected_at` is given (the
    /// chain head stored with a snapshot), the record at that seq must have exactly that hash.
    /// The tail of the journal is fsynced before returning, so everything replayed is durable
    /// even if the previous process died between a write and its sync.
    pub fn open(
        dir: &Path,
        options: JournalOptions,
        replay_after_seq: u64,
        expected_at: Option<ChainHead>,
        visit: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<(FileJournal, OpenReport), JournalError> {
        let anchors: Vec<Anchor> = expected_at.into_iter().map(Anchor::snapshot).collect();
        Self::open_anchored(dir, options, replay_after_seq, &anchors, visit)
    }

    /// [`open`](Self::open) with any number of anchors: chain heads (of a snapshot, of signed checkpoints)
    /// the journal must match exactly at their seq, and must reach. A checkpoint beyond the end of the
    /// journal means signed, durable records were removed: that is an error, never a torn tail.
    pub fn open_anchored(
        dir: &Path,
        options: JournalOptions,
        replay_after_seq: u64,
        anchors: &[Anchor],
        visit: impl FnMut(u64, &[u8]) -> Result<(), String>,
    ) -> Result<(FileJournal, OpenReport), JournalError> {
        let directory = Self::lock_for_open(dir)?;
        let outcome = scan_journal(dir, replay_after_seq, anchors, visit)?;
        Self::finish_open(dir, directory, options, &outcome)
    }

    /// Creates (if needed) and locks the journal directory, before its scan.
    pub(crate) fn lock_for_open(dir: &Path) -> Result<File, JournalError> {
        fs::create_dir_all(dir).map_err(io_error("create journal directory", dir))?;
        fs_util::lock_directory(dir)
    }

    /// After a complete scan: repairs a torn tail and opens the newest segment for appending.
    pub(crate) fn finish_open(
        dir: &Path,
        directory: File,
        options: JournalOptions,
        outcome: &ScanOutcome,
    ) -> Result<(FileJournal, OpenReport), JournalError> {
        let report = OpenReport {
            head: outcome.head,
            records: outcome.records,
            segments: outcome.segment_count,
            truncated_torn_bytes: outcome.torn_bytes(),
        };
        let (active, segment_len, segment_records) = prepare_active_segment(dir, &directory, outcome)?;
        if report.truncated_torn_bytes > 0 {
            tracing::warn!(
                dir = %dir.display(),
                bytes = report.truncated_torn_bytes,
                head_seq = report.head.seq,
                "truncated a torn, never acknowledged record at the end of the journal"
            );
        }
        let journal = FileJournal {
            dir: dir.to_path_buf(),
            directory,
            options,
            active,
            pending: Vec::with_capacity(256 << 10),
            pending_rolls: Vec::new(),
            segment_len,
            segment_records,
            written_seq: outcome.head.seq,
            head: outcome.head,
            durable: outcome.head,
            poisoned: false,
            #[cfg(test)]
            fault: None,
            #[cfg(test)]
            io_events: Vec::new(),
        };
        Ok((journal, report))
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> JournalOptions {
        self.options
    }

    /// True once a write or sync has failed; every later `append`/`sync` returns `Poisoned`.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    #[cfg(test)]
    pub(crate) fn inject_fault(&mut self, fault: Fault) {
        self.fault = Some(fault);
    }

    #[cfg(test)]
    pub(crate) fn take_io_events(&mut self) -> Vec<IoEvent> {
        std::mem::take(&mut self.io_events)
    }

    #[cfg(test)]
    fn injected(&self, fault: Fault) -> std::io::Result<()> {
        if self.fault == Some(fault) {
            return Err(std::io::Error::other(format!("injected {fault:?} failure")));
        }
        Ok(())
    }

    fn ensure_usable(&self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        Ok(())
    }

    /// Runs an I/O step; any failure poisons the journal because the OS may have kept, dropped
    /// or half-written the data and we can no longer tell which (see "fsyncgate").
    fn poison_on_error<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let result = step(self);
        if let Err(error) = &result {
            tracing::error!(dir = %self.dir.display(), %error, "journal poisoned");
            self.poisoned = true;
        }
        result
    }

    fn check_payload_size(&self, seq: u64, payload: &[u8]) -> Result<(), JournalError> {
        let max = self.options.payload_bytes_max;
        if payload.len() > max as usize {
            return Err(JournalError::PayloadTooLarge { seq, len: payload.len(), max });
        }
        Ok(())
    }

    /// Starts a new segment (in the plan) when this record would push the current one past
    /// the limit; an empty segment always takes the record, however large.
    fn plan_segment_for(&mut self, seq: u64, record_len: u64) {
        let would_exceed = self.segment_len + record_len > self.options.segment_bytes_max;
        if self.segment_records > 0 && would_exceed {
            self.pending_rolls.push(PendingRoll { buffer_offset: self.pending.len(), first_seq: seq });
            self.segment_len = SEGMENT_HEADER_LEN as u64;
            self.segment_records = 0;
        }
        self.segment_len += record_len;
        self.segment_records += 1;
    }

    fn encode_record(&mut self, seq: u64, payload: &[u8]) {
        let hash = chain_hash(&self.head.hash, seq, payload);
        let header = RecordHeader::for_payload(seq, hash, payload);
        self.pending.extend_from_slice(&header.encode());
        self.pending.extend_from_slice(payload);
        self.head = ChainHead { seq, hash };
    }

    /// Hands every pending record to the OS, creating new segment files where planned.
    fn write_pending(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Taken out so that `write_chunk` can borrow `self` mutably; put back to keep capacity.
        let pending = std::mem::take(&mut self.pending);
        let rolls = std::mem::take(&mut self.pending_rolls);
        let result = self.write_chunks(&pending, &rolls);
        self.pending = pending;
        self.pending.clear();
        self.pending_rolls = rolls;
        self.pending_rolls.clear();
        result
    }

    fn write_chunks(&mut self, pending: &[u8], rolls: &[PendingRoll]) -> Result<(), JournalError> {
        let mut start = 0;
        for roll in rolls {
            self.write_chunk(&pending[start..roll.buffer_offset], roll.first_seq - 1)?;
            self.start_segment(roll.first_seq)?;
            start = roll.buffer_offset;
        }
        let last_seq = self.head.seq;
        self.write_chunk(&pending[start..], last_seq)
    }

    /// Writes encoded records `written_seq + 1 ..= last_seq` to the active segment.
    fn write_chunk(&mut self, chunk: &[u8], last_seq: u64) -> Result<(), JournalError> {
        if chunk.is_empty() {
            assert_eq!(last_seq, self.written_seq, "records missing from the write buffer");
            return Ok(());
        }
        assert_eq!(peek_record_seq(chunk), self.written_seq + 1, "journal write would break seq continuity");
        #[cfg(test)]
        self.injected(Fault::Write).map_err(io_error("write journal segment", &self.active.path))?;
        self.active.file.write_all(chunk).map_err(io_error("write journal segment", &self.active.path))?;
        #[cfg(test)]
        self.io_events.push(IoEvent::Write(self.active.path.clone()));
        self.written_seq = last_seq;
        Ok(())
    }

    /// Closes the active segment and creates the next one. The old segment is made durable
    /// first: otherwise a crash could keep the new segment but lose the end of the old one,
    /// a hole that open() must (and would) refuse.
    fn start_segment(&mut self, first_seq: u64) -> Result<(), JournalError> {
        assert_eq!(first_seq, self.written_seq + 1, "new segment must continue the chain");
        self.sync_active_file()?;
        self.active = create_segment(&self.dir, &self.directory, first_seq)?;
        #[cfg(test)]
        self.io_events.push(IoEvent::Create(self.active.path.clone()));
        Ok(())
    }

    fn sync_active_file(&mut self) -> Result<(), JournalError> {
        #[cfg(test)]
        self.injected(Fault::Sync).map_err(io_error("fdatasync journal segment", &self.active.path))?;
        self.active.file.sync_data().map_err(io_error("fdatasync journal segment", &self.active.path))?;
        #[cfg(test)]
        self.io_events.push(IoEvent::Sync(self.active.path.clone()));
        Ok(())
    }
}

impl Journal for FileJournal {
    fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        self.ensure_usable()?;
        let seq = self.head.seq + 1;
        self.check_payload_size(seq, payload)?;
        self.plan_segment_for(seq, (RECORD_HEADER_LEN + payload.len()) as u64);
        self.encode_record(seq, payload);
        if self.pending.len() >= PENDING_FLUSH_BYTES {
            self.poison_on_error(Self::write_pending)?;
        }
        Ok(seq)
    }

    fn sync(&mut self) -> Result<ChainHead, JournalError> {
        self.ensure_usable()?;
        if self.durable == self.head {
            return Ok(self.durable);
        }
        self.poison_on_error(|journal| {
            journal.write_pending()?;
            journal.sync_active_file()
        })?;
        self.durable = self.head;
        Ok(self.durable)
    }

    fn head(&self) -> ChainHead {
        self.head
    }

    fn durable_head(&self) -> ChainHead {
        self.durable
    }

    fn reader(&self) -> Option<Box<dyn crate::JournalReader>> {
        Some(Box::new(crate::JournalTail::new(&self.dir)))
    }
}

/// Repairs a torn tail and returns the file to append to, with its length and record count.
fn prepare_active_segment(
    dir: &Path,
    directory: &File,
    outcome: &ScanOutcome,
) -> Result<(ActiveFile, u64, u64), JournalError> {
    let Some(last) = &outcome.last_segment else {
        let active = create_segment(dir, directory, 1)?;
        sync_all(&active)?;
        return Ok((active, SEGMENT_HEADER_LEN as u64, 0));
    };
    let active = if last.header_torn { rewrite_segment_header(last)? } else { reopen_for_append(last)? };
    // Whatever the previous process wrote but did not sync is now part of the replayed state,
    // so it must become durable before anyone builds on it.
    sync_all(&active)?;
    let segment_records = outcome.head.seq + 1 - last.first_seq;
    let segment_len = if last.header_torn { SEGMENT_HEADER_LEN as u64 } else { last.valid_len };
    Ok((active, segment_len, segment_records))
}

fn reopen_for_append(last: &LastSegment) -> Result<ActiveFile, JournalError> {
    let file = OpenOptions::new()
        .append(true)
        .open(&last.path)
        .map_err(io_error("open journal segment for append", &last.path))?;
    if last.torn_bytes() > 0 {
        file.set_len(last.valid_len).map_err(io_error("truncate torn tail of journal segment", &last.path))?;
    }
    Ok(ActiveFile { file, path: last.path.clone() })
}

/// A segment whose header never made it to disk: start it over (it holds no records).
fn rewrite_segment_header(last: &LastSegment) -> Result<ActiveFile, JournalError> {
    let mut file = OpenOptions::new()
        .append(true)
        .open(&last.path)
        .map_err(io_error("open journal segment for append", &last.path))?;
    file.set_len(0).map_err(io_error("truncate torn journal segment", &last.path))?;
    file.write_all(&encode_segment_header(last.first_seq))
        .map_err(io_error("write journal segment header", &last.path))?;
    Ok(ActiveFile { file, path: last.path.clone() })
}

/// Creates a segment file with its header and makes its name durable (directory fsync).
/// The header bytes become durable with the first sync of the records that follow.
fn create_segment(dir: &Path, directory: &File, first_seq: u64) -> Result<ActiveFile, JournalError> {
    let path = dir.join(segment_file_name(first_seq));
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error("create journal segment", &path))?;
    file.write_all(&encode_segment_header(first_seq)).map_err(io_error("write journal segment header", &path))?;
    directory.sync_all().map_err(io_error("fsync journal directory", dir))?;
    Ok(ActiveFile { file, path })
}

fn sync_all(active: &ActiveFile) -> Result<(), JournalError> {
    active.file.sync_all().map_err(io_error("fsync journal segment", &active.path))
}
