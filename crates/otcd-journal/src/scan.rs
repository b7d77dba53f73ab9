//! Reading and checking a journal directory: shared by `FileJournal::open` (which then repairs a
//! torn tail) and `verify` (which only reports it).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{corrupt, io_error, JournalError};
use crate::format::{
    decode_segment_header, parse_segment_file_name, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::{chain_hash, Anchor, AnchorKind, ChainHead};

/// A segment file found in the journal directory.
#[derive(Clone, Debug)]
pub(crate) struct SegmentFile {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// Segment files of `dir`, ordered by the first seq in their names. Other files are ignored so
/// that snapshots or operator notes may share the directory.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, JournalError> {
    let entries = fs::read_dir(dir).map_err(io_error("list journal directory", dir))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list journal directory", dir))?;
        let name = entry.file_name();
        let Some(first_seq) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        segments.push(SegmentFile { first_seq, path: entry.path() });
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

/// State of the newest segment after scanning, which is where a torn tail can live.
#[derive(Clone, Debug)]
pub(crate) struct LastSegment {
    pub path: PathBuf,
    pub first_seq: u64,
    pub file_len: u64,
    /// Bytes of the file holding a valid segment header and complete, valid records.
    pub valid_len: u64,
    /// The segment header itself is incomplete or zero-filled (crash right after creation).
    pub header_torn: bool,
}

impl LastSegment {
    pub fn torn_bytes(&self) -> u64 {
        self.file_len - self.valid_len
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ScanOutcome {
    pub head: ChainHead,
    pub records: u64,
    pub segment_count: usize,
    pub last_segment: Option<LastSegment>,
}

impl ScanOutcome {
    pub fn torn_bytes(&self) -> u64 {
        self.last_segment.as_ref().map_or(0, LastSegment::torn_bytes)
    }
}

/// Reads every segment of `dir` in order and checks checksums, seq continuity and the hash chain
/// from genesis. `visit` sees every record with seq > `replay_after_seq`. Every anchor (a snapshot's or a
/// signed checkpoint's chain head) must match the chain exactly at its seq, and none may lie beyond the end.
pub(crate) fn scan_journal<V>(
    dir: &Path,
    replay_after_seq: u64,
    anchors: &[Anchor],
    visit: V,
) -> Result<ScanOutcome, JournalError>
where
    V: FnMut(u64, &[u8]) -> Result<(), String>,
{
    scan_journal_observed(dir, replay_after_seq, anchors, visit, &|_| {})
}

/// Bytes read between two progress reports of a scan: often enough for a progress bar, rare enough to cost
/// nothing next to hashing the records.
const PROGRESS_EVERY_BYTES: u64 = 1 << 20;

/// The bytes of every segment file in `dir`: what a scan reads, the total of its progress reports.
pub fn journal_bytes(dir: &Path) -> Result<u64, JournalError> {
    let mut total = 0;
    for segment in list_segments(dir)? {
        total += fs::metadata(&segment.path).map_err(io_error("stat journal segment", &segment.path))?.len();
    }
    Ok(total)
}

/// [`scan_journal`], reporting to `progress` the bytes of segment files read so far (at least every
/// [`PROGRESS_EVERY_BYTES`] and at the end of each segment; the last report is [`journal_bytes`] of the files read).
pub(crate) fn scan_journal_observed<V>(
    dir: &Path,
    replay_after_seq: u64,
    anchors: &[Anchor],
    mut visit: V,
    progress: &dyn Fn(u64),
) -> Result<ScanOutcome, JournalError>
where
    V: FnMut(u64, &[u8]) -> Result<(), String>,
{
    scan_journal_in_files(dir, replay_after_seq, anchors, |_, seq, payload| visit(seq, payload), progress)
}

/// [`scan_journal_observed`], also telling `visit` the segment file each record comes from (the pipelined open
/// names it when the record's replay fails on the other thread).
pub(crate) fn scan_journal_in_files<V>(
    dir: &Path,
    replay_after_seq: u64,
    anchors: &[Anchor],
    visit: V,
    progress: &dyn Fn(u64),
) -> Result<ScanOutcome, JournalError>
where
    V: FnMut(&Path, u64, &[u8]) -> Result<(), String>,
{
    let segments = list_segments(dir)?;
    let mut anchors = anchors.to_vec();
    anchors.sort_by_key(|anchor| anchor.head.seq);
    let mut scanner = Scanner {
        head: ChainHead::genesis(),
        records: 0,
        replay_after_seq,
        anchors,
        next_anchor: 0,
        visit,
        progress,
        bytes_before: 0,
        bytes_reported: 0,
    };
    scanner.check_anchors(dir)?;
    let mut buffer = Vec::new();
    let mut last_segment = None;
    for (index, segment) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        read_whole_file(&segment.path, &mut buffer)?;
        let end = scanner.scan_segment(segment, &buffer, is_last)?;
        scanner.bytes_before += buffer.len() as u64;
        scanner.bytes_reported = scanner.bytes_before;
        (scanner.progress)(scanner.bytes_before);
        if is_last {
            last_segment = Some(describe_last_segment(segment, buffer.len(), end));
        }
    }
    let end_file = last_segment.as_ref().map_or(dir, |last| last.path.as_path());
    scanner.check_no_anchor_beyond_end(end_file)?;
    Ok(ScanOutcome { head: scanner.head, records: scanner.records, segment_count: segments.len(), last_segment })
}

fn describe_last_segment(segment: &SegmentFile, file_len: usize, end: SegmentEnd) -> LastSegment {
    let (valid_len, header_torn) = match end {
        SegmentEnd::Complete => (file_len, false),
        SegmentEnd::TornRecord { valid_len } => (valid_len, false),
        SegmentEnd::TornHeader => (0, true),
    };
    LastSegment {
        path: segment.path.clone(),
        first_seq: segment.first_seq,
        file_len: file_len as u64,
        valid_len: valid_len as u64,
        header_torn,
    }
}

/// Whole-file reads: one large sequential read per segment is the fastest way to get through
/// millions of small records, and the buffer is reused across segments.
fn read_whole_file(path: &Path, buffer: &mut Vec<u8>) -> Result<(), JournalError> {
    buffer.clear();
    let mut file = File::open(path).map_err(io_error("open journal segment", path))?;
    let len = file.metadata().map_err(io_error("stat journal segment", path))?.len();
    buffer.reserve(usize::try_from(len).unwrap_or(0));
    file.read_to_end(buffer).map_err(io_error("read journal segment", path))?;
    Ok(())
}

enum SegmentEnd {
    Complete,
    TornRecord { valid_len: usize },
    TornHeader,
}

enum RecordStep<'a> {
    EndOfSegment,
    Torn,
    Record { header: RecordHeader, payload: &'a [u8] },
}

struct Scanner<'p, V> {
    head: ChainHead,
    records: u64,
    replay_after_seq: u64,
    /// Sorted by seq; `next_anchor` is the first one not yet reached.
    anchors: Vec<Anchor>,
    next_anchor: usize,
    visit: V,
    progress: &'p dyn Fn(u64),
    /// Bytes of the segments scanned before the current one, and the last figure reported.
    bytes_before: u64,
    bytes_reported: u64,
}

impl<V> Scanner<'_, V>
where
    V: FnMut(&Path, u64, &[u8]) -> Result<(), String>,
{
    fn scan_segment(&mut self, segment: &SegmentFile, bytes: &[u8], is_last: bool) -> Result<SegmentEnd, JournalError> {
        let expected_first = self.head.seq + 1;
        if segment.first_seq != expected_first {
            return Err(JournalError::MissingSegment {
                expected: expected_first,
                found: segment.first_seq,
                file: segment.path.clone(),
            });
        }
        if segment_header_is_torn(bytes) {
            if is_last {
                return Ok(SegmentEnd::TornHeader);
            }
            let reason = "segment header is incomplete or zero-filled but later segments exist";
            return Err(corrupt(expected_first, &segment.path, 0, reason));
        }
        self.check_segment_header(segment, bytes)?;
        self.scan_records(segment, bytes, is_last)
    }

    fn check_segment_header(&self, segment: &SegmentFile, bytes: &[u8]) -> Result<(), JournalError> {
        let expected_first = self.head.seq + 1;
        let header: &[u8; SEGMENT_HEADER_LEN] =
            bytes[..SEGMENT_HEADER_LEN].try_into().expect("caller checked the length");
        let declared =
            decode_segment_header(header).map_err(|reason| corrupt(expected_first, &segment.path, 0, reason))?;
        if declared != segment.first_seq {
            let reason =
                format!("segment header declares first seq {declared} but the file name says {}", segment.first_seq);
            return Err(corrupt(expected_first, &segment.path, 0, reason));
        }
        Ok(())
    }

    fn scan_records(&mut self, segment: &SegmentFile, bytes: &[u8], is_last: bool) -> Result<SegmentEnd, JournalError> {
        // An empty segment needs no check of its own: the next segment would carry the same
        // first seq, hence the same name, so it can only be the last one.
        let mut position = SEGMENT_HEADER_LEN;
        loop {
            let expected_seq = self.head.seq + 1;
            match classify_record(bytes, position, is_last, expected_seq, &segment.path)? {
                RecordStep::EndOfSegment => break,
                RecordStep::Torn => return Ok(SegmentEnd::TornRecord { valid_len: position }),
                RecordStep::Record { header, payload } => {
                    self.accept(&header, payload, &segment.path, position as u64)?;
                    position += header.record_len();
                    let done = self.bytes_before + position as u64;
                    if done - self.bytes_reported >= PROGRESS_EVERY_BYTES {
                        self.bytes_reported = done;
                        (self.progress)(done);
                    }
                }
            }
        }
        Ok(SegmentEnd::Complete)
    }

    fn accept(&mut self, header: &RecordHeader, payload: &[u8], file: &Path, offset: u64) -> Result<(), JournalError> {
        let computed = chain_hash(&self.head.hash, header.seq, payload);
        if computed != header.hash {
            return Err(JournalError::ChainBroken {
                seq: header.seq,
                file: file.to_path_buf(),
                offset,
                stored_hex: hex::encode(header.hash),
                computed_hex: hex::encode(computed),
            });
        }
        self.head = ChainHead { seq: header.seq, hash: computed };
        self.records += 1;
        self.check_anchors(file)?;
        if header.seq > self.replay_after_seq {
            (self.visit)(file, header.seq, payload).map_err(|message| {
                JournalError::Visit(format!("replay of seq {} from {} failed: {message}", header.seq, file.display()))
            })?;
        }
        Ok(())
    }

    /// Called whenever the head moves (and once at genesis): every anchor at the head's seq must carry
    /// exactly the head's hash.
    fn check_anchors(&mut self, file: &Path) -> Result<(), JournalError> {
        while let Some(anchor) = self.anchors.get(self.next_anchor) {
            if anchor.head.seq > self.head.seq {
                return Ok(());
            }
            self.next_anchor += 1;
            if anchor.head.hash == self.head.hash {
                continue;
            }
            let reason = format!(
                "it signs chain hash {} for seq {} but the journal has {}",
                anchor.head.hash_hex(),
                anchor.head.seq,
                self.head.hash_hex()
            );
            return Err(anchor_error(anchor, file, reason));
        }
        Ok(())
    }

    fn check_no_anchor_beyond_end(&self, file: &Path) -> Result<(), JournalError> {
        match self.anchors.get(self.next_anchor) {
            Some(anchor) if anchor.head.seq > self.head.seq => {
                let reason = match anchor.kind {
                    AnchorKind::Snapshot => format!("the journal ends at seq {}, before the snapshot", self.head.seq),
                    AnchorKind::Checkpoint { .. } => format!(
                        "the journal ends at seq {} but the checkpoint covers records up to seq {}: \
                         records from seq {} onwards were removed",
                        self.head.seq,
                        anchor.head.seq,
                        self.head.seq + 1
                    ),
                };
                Err(anchor_error(anchor, file, reason))
            }
            _ => Ok(()),
        }
    }
}

fn anchor_error(anchor: &Anchor, file: &Path, reason: String) -> JournalError {
    match anchor.kind {
        AnchorKind::Snapshot => {
            let reason = reason.replace("it signs", "the snapshot expects");
            JournalError::SnapshotMismatch { seq: anchor.head.seq, file: file.to_path_buf(), reason }
        }
        AnchorKind::Checkpoint { index } => {
            JournalError::CheckpointMismatch { index, seq: anchor.head.seq, file: file.to_path_buf(), reason }
        }
    }
}

/// An incomplete or entirely zero segment file is what a crash right after creating it leaves.
fn segment_header_is_torn(bytes: &[u8]) -> bool {
    bytes.len() < SEGMENT_HEADER_LEN || is_all_zero(bytes)
}

/// Decides what the bytes at `position` are. Only the end of the last segment may be torn;
/// everywhere else the same defects are corruption.
fn classify_record<'a>(
    bytes: &'a [u8],
    position: usize,
    is_last: bool,
    expected_seq: u64,
    file: &Path,
) -> Result<RecordStep<'a>, JournalError> {
    let rest = &bytes[position..];
    if rest.is_empty() {
        return Ok(RecordStep::EndOfSegment);
    }
    let offset = position as u64;
    let torn_or_corrupt = |reason: &str| {
        if is_last {
            Ok(RecordStep::Torn)
        } else {
            Err(corrupt(expected_seq, file, offset, reason))
        }
    };
    if rest.len() < RECORD_HEADER_LEN {
        return torn_or_corrupt("incomplete record header at the end of the segment");
    }
    let header_bytes: &[u8; RECORD_HEADER_LEN] = rest[..RECORD_HEADER_LEN].try_into().expect("length checked above");
    if is_all_zero(header_bytes) {
        if is_all_zero(rest) {
            return torn_or_corrupt("zero-filled bytes at the end of the segment");
        }
        return Err(corrupt(expected_seq, file, offset, "zeroed record header followed by data"));
    }
    let header = RecordHeader::decode(header_bytes).map_err(|reason| corrupt(expected_seq, file, offset, reason))?;
    if header.seq != expected_seq {
        return Err(JournalError::Gap { expected: expected_seq, found: header.seq, file: file.to_path_buf(), offset });
    }
    if header.record_len() > rest.len() {
        return torn_or_corrupt("record payload extends past the end of the segment");
    }
    let payload = &rest[RECORD_HEADER_LEN..header.record_len()];
    if crc32c::crc32c(payload) != header.payload_crc {
        return Err(corrupt(expected_seq, file, offset, "payload checksum mismatch"));
    }
    Ok(RecordStep::Record { header, payload })
}

fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte == 0)
}
