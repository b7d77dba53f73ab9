//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use otcd_journal::{
    ChainHead, FileJournal, Journal, JournalError, JournalOptions, OpenReport, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};

/// A JSON-looking payload of roughly 150 bytes whose length varies with `seq`.
pub fn sample_payload(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"type":"place_order","client_order_id":"c-{seq:08}","instrument":"BTC-USD","side":"buy","quantity":"1.25","price":"64000.{}"}}"#,
        seq % 1000
    )
    .into_bytes()
}

pub fn small_segments(segment_bytes_max: u64) -> JournalOptions {
    JournalOptions { segment_bytes_max, ..JournalOptions::default() }
}

pub struct Opened {
    pub journal: FileJournal,
    pub report: OpenReport,
    pub visited: Vec<(u64, Vec<u8>)>,
}

pub fn open_with(
    dir: &Path,
    options: JournalOptions,
    replay_after_seq: u64,
    expected_at: Option<ChainHead>,
) -> Result<Opened, JournalError> {
    let mut visited = Vec::new();
    let (journal, report) = FileJournal::open(dir, options, replay_after_seq, expected_at, |seq, payload| {
        visited.push((seq, payload.to_vec()));
        Ok(())
    })?;
    Ok(Opened { journal, report, visited })
}

pub fn open_default(dir: &Path) -> Result<Opened, JournalError> {
    open_with(dir, JournalOptions::default(), 0, None)
}

/// Appends `payloads`, syncing every `group` records and at the end; returns the durable head.
pub fn append_all(journal: &mut FileJournal, payloads: &[Vec<u8>], group: usize) -> ChainHead {
    for (index, payload) in payloads.iter().enumerate() {
        journal.append(payload).expect("append");
        if (index + 1) % group.max(1) == 0 {
            journal.sync().expect("sync");
        }
    }
    journal.sync().expect("sync")
}

/// Creates a journal in `dir` holding `payloads`, closed again; returns its head.
pub fn write_journal(dir: &Path, options: JournalOptions, payloads: &[Vec<u8>]) -> ChainHead {
    let mut opened = open_with(dir, options, 0, None).expect("open new journal");
    append_all(&mut opened.journal, payloads, 7)
}

pub fn sample_payloads(count: u64) -> Vec<Vec<u8>> {
    (1..=count).map(sample_payload).collect()
}

/// Segment files of `dir` in seq order.
pub fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    paths.sort();
    paths
}

/// A record located by the test-side parser (which trusts the stored lengths).
#[derive(Clone, Copy, Debug)]
pub struct RecordSpan {
    pub seq: u64,
    pub offset: usize,
    pub len: usize,
}

impl RecordSpan {
    pub fn payload_offset(&self) -> usize {
        self.offset + RECORD_HEADER_LEN
    }
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
}

pub fn record_spans(segment: &[u8]) -> Vec<RecordSpan> {
    let mut spans = Vec::new();
    let mut position = SEGMENT_HEADER_LEN;
    while position + RECORD_HEADER_LEN <= segment.len() {
        let payload_len = u32::from_le_bytes(segment[position + 4..position + 8].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(segment[position + 8..position + 16].try_into().unwrap());
        let len = RECORD_HEADER_LEN + payload_len;
        spans.push(RecordSpan { seq, offset: position, len });
        position += len;
    }
    spans
}

/// Recomputes both checksums of the record at `offset` so that only the hash chain can tell
/// that something was changed.
pub fn reseal_record(segment: &mut [u8], offset: usize) {
    let payload_len = u32::from_le_bytes(segment[offset + 4..offset + 8].try_into().unwrap()) as usize;
    let payload_start = offset + RECORD_HEADER_LEN;
    let payload_crc = crc32c::crc32c(&segment[payload_start..payload_start + payload_len]);
    segment[offset + 48..offset + 52].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&segment[offset..offset + 52]);
    segment[offset + 52..offset + 56].copy_from_slice(&header_crc.to_le_bytes());
}

pub fn flip_byte(path: &Path, offset: usize, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= mask;
    fs::write(path, bytes).unwrap();
}

pub fn truncate(path: &Path, len: u64) {
    fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Snapshot of every segment file's bytes, to prove a failed open changed nothing.
pub fn segment_contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    segment_paths(dir)
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Asserts that both `open` and `verify` fail on `dir` with an integrity error about `seq`
/// that names `file`, and that the failed open modified nothing.
pub fn assert_detected(dir: &Path, seq: u64, file: &Path) -> JournalError {
    let before = segment_contents(dir);
    let open_error = open_default(dir).err().expect("open must fail");
    assert_eq!(before, segment_contents(dir), "a failed open must not modify the journal");
    let verify_error = otcd_journal::verify(dir).expect_err("verify must fail");
    for error in [&open_error, &verify_error] {
        assert!(error.is_integrity_error(), "unexpected error kind: {error}");
        assert_eq!(error.seq(), Some(seq), "wrong seq in: {error}");
        let message = error.to_string();
        assert!(message.contains(&format!("seq {seq}")), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
    }
    open_error
}
