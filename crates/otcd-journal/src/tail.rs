//! Following a journal that another thread or process is appending to: [`JournalTail`] remembers where its last
//! read stopped (segment, byte offset, seq and chain hash), so the next read starts there instead of re-reading
//! every segment from genesis. Reading the records that arrived since costs what they take, whatever the length
//! of the journal.
//!
//! Where the reader resumes, for `read(after_seq, ..)`:
//! - at its remembered position, when that is exactly `after_seq` or earlier in the same segment as record
//!   `after_seq + 1` (records up to `after_seq` are then read and chained but not visited);
//! - else at the start of the segment holding record `after_seq + 1` (the caller got the records in between
//!   some other way, or this is the first read). The chain is then checked from that segment's first record on,
//!   anchored at that record's stored hash; records before it were checked by the writer when it opened the
//!   journal and are checked again by `verify`.
//!
//! A remembered position that no longer fits the files (a segment gone, a file shorter than the offset, a record
//! that is not the expected seq) is dropped and the reader falls back to the segment holding `after_seq + 1`,
//! so a stale position can cost a re-read, never a wrong record. Rotation needs nothing special: at the end of a
//! segment the reader moves on to the next one, which must start at the next seq.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{corrupt, io_error, JournalError};
use crate::format::{decode_segment_header, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::scan::{list_segments, SegmentFile};
use crate::{chain_hash, ChainHead, Hash};

/// Where a reader stopped: just after the record `head`, `offset` bytes into the segment starting at
/// `segment_first_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailPosition {
    pub head: ChainHead,
    pub segment_first_seq: u64,
    pub offset: u64,
}

/// What one [`JournalTail::read`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailRead {
    /// Records handed to the visitor.
    pub visited: u64,
    /// Bytes read from segment files (the cost of the read).
    pub bytes_read: u64,
    /// False when the remembered position could not be used (first read, or it no longer fitted the files).
    pub resumed: bool,
}

/// A resumable reader of a journal directory. See the module documentation.
#[derive(Debug)]
pub struct JournalTail {
    dir: PathBuf,
    position: Option<TailPosition>,
    buffer: Vec<u8>,
}

/// The point a read starts from.
struct Start {
    segment_index: usize,
    offset: u64,
    seq: u64,
    /// `None`: the chain is anchored at the first record's stored hash.
    hash: Option<Hash>,
    resumed: bool,
}

impl JournalTail {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), position: None, buffer: Vec::new() }
    }

    /// [`read`](Self::read) for a reader that follows the writer's durable seq: every record up to `up_to_seq`
    /// must be there, so a journal that ends before it is an error ([`JournalError::EndsBefore`]).
    pub fn read_through<V>(&mut self, after_seq: u64, up_to_seq: u64, visit: V) -> Result<TailRead, JournalError>
    where
        V: FnMut(u64, &[u8]) -> Result<(), String>,
    {
        let read = self.read(after_seq, up_to_seq, visit)?;
        let reached = after_seq + read.visited;
        if reached < up_to_seq {
            return Err(JournalError::EndsBefore { reached, wanted: up_to_seq });
        }
        Ok(read)
    }

    /// Where the last read stopped.
    pub fn position(&self) -> Option<TailPosition> {
        self.position
    }

    /// Hands every record with `after_seq < seq <= up_to_seq` to `visit`, in order, and remembers where it
    /// stopped. Records beyond `up_to_seq` are not read, so a reader that passes the writer's durable seq never
    /// sees a record that is not yet fsynced. An incomplete record at the end of the newest segment (being
    /// written right now) ends the read quietly.
    pub fn read<V>(&mut self, after_seq: u64, up_to_seq: u64, mut visit: V) -> Result<TailRead, JournalError>
    where
        V: FnMut(u64, &[u8]) -> Result<(), String>,
    {
        if up_to_seq <= after_seq {
            return Ok(TailRead::default());
        }
        let segments = list_segments(&self.dir)?;
        let Some(start) = self.start(&segments, after_seq) else { return Ok(TailRead::default()) };
        let resumed = start.resumed;
        let mut outcome = TailRead { resumed, ..TailRead::default() };
        match self.read_segments(&segments, start, after_seq, up_to_seq, &mut visit, &mut outcome) {
            // The remembered position did not fit the files (nothing was visited yet): read as if it were new.
            Err(_) if resumed && outcome.visited == 0 => {
                self.position = None;
                let Some(start) = self.start(&segments, after_seq) else { return Ok(outcome) };
                outcome.resumed = false;
                self.read_segments(&segments, start, after_seq, up_to_seq, &mut visit, &mut outcome)?;
                Ok(outcome)
            }
            result => result.map(|()| outcome),
        }
    }

    fn read_segments<V>(
        &mut self,
        segments: &[SegmentFile],
        start: Start,
        after_seq: u64,
        up_to_seq: u64,
        visit: &mut V,
        outcome: &mut TailRead,
    ) -> Result<(), JournalError>
    where
        V: FnMut(u64, &[u8]) -> Result<(), String>,
    {
        let mut cursor = Cursor { seq: start.seq, hash: start.hash, after_seq, up_to_seq };
        let mut offset = start.offset;
        for (index, segment) in segments.iter().enumerate().skip(start.segment_index) {
            let is_last = index + 1 == segments.len();
            outcome.bytes_read += read_from(&segment.path, offset, &mut self.buffer)?;
            // A resumed read starts at a record boundary; a segment read from its start begins with its header.
            let (local, file_base) = if offset > 0 {
                (0, offset)
            } else {
                match check_header(segment, &self.buffer, cursor.seq + 1, is_last)? {
                    HeaderCheck::Valid => (SEGMENT_HEADER_LEN, 0),
                    HeaderCheck::BeingCreated => break,
                }
            };
            let ended = cursor.scan(segment, &self.buffer, local, file_base, is_last, visit, outcome)?;
            if let Some(position) = cursor.position(segment.first_seq, file_base + ended.consumed as u64) {
                self.position = Some(position);
            }
            if ended.stop || is_last {
                break;
            }
            offset = 0;
        }
        Ok(())
    }

    /// Decides where to start (see the module documentation); `None` when the journal has no segment.
    fn start(&mut self, segments: &[SegmentFile], after_seq: u64) -> Option<Start> {
        let holding = segments.partition_point(|segment| segment.first_seq <= after_seq + 1).checked_sub(1)?;
        if let Some(position) = self.position.take() {
            let remembered = segments.iter().position(|segment| segment.first_seq == position.segment_first_seq);
            let usable = remembered.filter(|index| {
                position.head.seq <= after_seq && (position.head.seq == after_seq || *index == holding)
            });
            if let Some(segment_index) = usable {
                return Some(Start {
                    segment_index,
                    offset: position.offset,
                    seq: position.head.seq,
                    hash: Some(position.head.hash),
                    resumed: true,
                });
            }
        }
        let first_seq = segments[holding].first_seq;
        let hash = (first_seq == 1).then(|| ChainHead::genesis().hash);
        Some(Start { segment_index: holding, offset: 0, seq: first_seq - 1, hash, resumed: false })
    }
}

enum HeaderCheck {
    Valid,
    /// The newest segment's header is not complete yet (the writer is creating it): nothing to read there.
    BeingCreated,
}

fn check_header(
    segment: &SegmentFile,
    bytes: &[u8],
    expected_first: u64,
    is_last: bool,
) -> Result<HeaderCheck, JournalError> {
    if segment.first_seq != expected_first {
        return Err(JournalError::MissingSegment {
            expected: expected_first,
            found: segment.first_seq,
            file: segment.path.clone(),
        });
    }
    let Some(header) = bytes.get(..SEGMENT_HEADER_LEN).filter(|header| header.iter().any(|byte| *byte != 0)) else {
        if is_last {
            return Ok(HeaderCheck::BeingCreated);
        }
        return Err(corrupt(expected_first, &segment.path, 0, "segment header is incomplete or zero-filled"));
    };
    let header: &[u8; SEGMENT_HEADER_LEN] = header.try_into().expect("sliced to the header length");
    let declared = decode_segment_header(header).map_err(|reason| corrupt(expected_first, &segment.path, 0, reason))?;
    if declared != segment.first_seq {
        let reason =
            format!("segment header declares first seq {declared} but the file name says {}", segment.first_seq);
        return Err(corrupt(expected_first, &segment.path, 0, reason));
    }
    Ok(HeaderCheck::Valid)
}

/// Reads `path` from `offset` to its end into `buffer`; returns the bytes read.
fn read_from(path: &Path, offset: u64, buffer: &mut Vec<u8>) -> Result<u64, JournalError> {
    buffer.clear();
    let mut file = File::open(path).map_err(io_error("open journal segment", path))?;
    let len = file.metadata().map_err(io_error("stat journal segment", path))?.len();
    if len < offset {
        return Err(corrupt(0, path, offset, "the segment is shorter than where the reader stopped"));
    }
    file.seek(SeekFrom::Start(offset)).map_err(io_error("seek journal segment", path))?;
    buffer.reserve(usize::try_from(len - offset).unwrap_or(0));
    file.read_to_end(buffer).map_err(io_error("read journal segment", path))?;
    Ok(buffer.len() as u64)
}

struct Cursor {
    seq: u64,
    hash: Option<Hash>,
    after_seq: u64,
    up_to_seq: u64,
}

struct SegmentEnd {
    /// Bytes of the buffer taken by complete records read (from the start of the buffer).
    consumed: usize,
    /// The read is over (`up_to_seq` reached, or an incomplete record at the end of the newest segment).
    stop: bool,
}

impl Cursor {
    fn position(&self, segment_first_seq: u64, offset: u64) -> Option<TailPosition> {
        let hash = self.hash?;
        Some(TailPosition { head: ChainHead { seq: self.seq, hash }, segment_first_seq, offset })
    }

    /// Reads the records of `bytes` from `position`; `file_base` is the file offset of `bytes[0]` (for errors).
    #[allow(clippy::too_many_arguments)]
    fn scan<V>(
        &mut self,
        segment: &SegmentFile,
        bytes: &[u8],
        mut position: usize,
        file_base: u64,
        is_last: bool,
        visit: &mut V,
        outcome: &mut TailRead,
    ) -> Result<SegmentEnd, JournalError>
    where
        V: FnMut(u64, &[u8]) -> Result<(), String>,
    {
        loop {
            if self.seq >= self.up_to_seq {
                return Ok(SegmentEnd { consumed: position, stop: true });
            }
            let rest = &bytes[position..];
            if rest.is_empty() {
                return Ok(SegmentEnd { consumed: position, stop: false });
            }
            let offset = file_base + position as u64;
            let expected = self.seq + 1;
            let Some(header_bytes) = rest.get(..RECORD_HEADER_LEN) else {
                return incomplete(segment, expected, offset, is_last, position);
            };
            let header_bytes: &[u8; RECORD_HEADER_LEN] = header_bytes.try_into().expect("sliced to the header length");
            if header_bytes.iter().all(|byte| *byte == 0) {
                return incomplete(segment, expected, offset, is_last, position);
            }
            let header = RecordHeader::decode(header_bytes)
                .map_err(|reason| corrupt(expected, &segment.path, offset, reason))?;
            if header.seq != expected {
                return Err(JournalError::Gap { expected, found: header.seq, file: segment.path.clone(), offset });
            }
            let Some(payload) = rest.get(RECORD_HEADER_LEN..header.record_len()) else {
                return incomplete(segment, expected, offset, is_last, position);
            };
            self.accept(&header, payload, segment, offset)?;
            if header.seq > self.after_seq {
                (visit)(header.seq, payload).map_err(|message| {
                    JournalError::Visit(format!("seq {} from {}: {message}", header.seq, segment.path.display()))
                })?;
                outcome.visited += 1;
            }
            position += header.record_len();
        }
    }

    fn accept(
        &mut self,
        header: &RecordHeader,
        payload: &[u8],
        segment: &SegmentFile,
        offset: u64,
    ) -> Result<(), JournalError> {
        if crc32c::crc32c(payload) != header.payload_crc {
            return Err(corrupt(header.seq, &segment.path, offset, "payload checksum mismatch"));
        }
        if let Some(previous) = self.hash {
            let computed = chain_hash(&previous, header.seq, payload);
            if computed != header.hash {
                return Err(JournalError::ChainBroken {
                    seq: header.seq,
                    file: segment.path.clone(),
                    offset,
                    stored_hex: hex::encode(header.hash),
                    computed_hex: hex::encode(computed),
                });
            }
        }
        self.seq = header.seq;
        self.hash = Some(header.hash);
        Ok(())
    }
}

/// An incomplete record is a write in progress at the end of the newest segment; anywhere else it is damage.
fn incomplete(
    segment: &SegmentFile,
    expected: u64,
    offset: u64,
    is_last: bool,
    position: usize,
) -> Result<SegmentEnd, JournalError> {
    if is_last {
        return Ok(SegmentEnd { consumed: position, stop: true });
    }
    Err(corrupt(expected, &segment.path, offset, "incomplete record in a segment that is not the newest"))
}
