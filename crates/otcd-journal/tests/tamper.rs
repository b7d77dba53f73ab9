mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use otcd_journal::{verify, JournalError, JournalOptions, SEGMENT_HEADER_LEN};

/// A single-segment journal of 10 records; returns the segment path and its record spans.
fn ten_records(dir: &Path) -> (PathBuf, Vec<RecordSpan>) {
    write_journal(dir, JournalOptions::default(), &sample_payloads(10));
    let path = segment_paths(dir).pop().unwrap();
    let spans = record_spans(&fs::read(&path).unwrap());
    assert_eq!(spans.len(), 10);
    (path, spans)
}

#[test]
fn flipped_byte_in_a_middle_payload_names_that_record() {
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    flip_byte(&path, spans[4].payload_offset() + 7, 0x01);
    let error = assert_detected(temp.path(), 5, &path);
    assert!(error.to_string().contains("payload checksum mismatch"), "{error}");
    assert!(error.to_string().contains(&format!("offset {}", spans[4].offset)), "{error}");
}

#[test]
fn flipped_byte_anywhere_in_a_middle_header_names_that_record() {
    for position in [0usize, 4, 8, 15, 20, 47, 48, 52, 55] {
        let temp = tempfile::tempdir().unwrap();
        let (path, spans) = ten_records(temp.path());
        flip_byte(&path, spans[6].offset + position, 0x40);
        assert_detected(temp.path(), 7, &path);
    }
}

#[test]
fn flipped_byte_in_the_last_complete_record_is_not_a_torn_tail() {
    for position in [0usize, 5, 30, 56, 60] {
        let temp = tempfile::tempdir().unwrap();
        let (path, spans) = ten_records(temp.path());
        let last = spans[9];
        flip_byte(&path, last.offset + position.min(last.len - 1), 0x08);
        assert_detected(temp.path(), 10, &path);
    }
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    flip_byte(&path, spans[9].end() - 1, 0x08);
    assert_detected(temp.path(), 10, &path);
}

#[test]
fn flipped_chain_hash_is_detected_by_checksum_or_by_the_chain() {
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    flip_byte(&path, spans[2].offset + 16 + 5, 0x02);
    assert_detected(temp.path(), 3, &path);

    // With the checksums recomputed, only the hash chain can tell.
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[spans[2].offset + 16 + 5] ^= 0x02;
    reseal_record(&mut bytes, spans[2].offset);
    fs::write(&path, &bytes).unwrap();
    let error = assert_detected(temp.path(), 3, &path);
    assert!(matches!(error, JournalError::ChainBroken { seq: 3, .. }), "{error}");
}

#[test]
fn resealed_payload_edit_breaks_the_chain() {
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[spans[9].payload_offset() + 3] ^= 0x20;
    reseal_record(&mut bytes, spans[9].offset);
    fs::write(&path, &bytes).unwrap();
    let error = assert_detected(temp.path(), 10, &path);
    assert!(matches!(error, JournalError::ChainBroken { .. }), "{error}");
}

#[test]
fn swapped_payloads_with_recomputed_checksums_break_the_chain() {
    let temp = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..10u8).map(|index| vec![b'a' + index; 40]).collect();
    write_journal(temp.path(), JournalOptions::default(), &payloads);
    let path = segment_paths(temp.path()).pop().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let spans = record_spans(&bytes);
    let (first, second) = (spans[3], spans[6]);
    let first_payload = bytes[first.payload_offset()..first.end()].to_vec();
    let second_payload = bytes[second.payload_offset()..second.end()].to_vec();
    bytes[first.payload_offset()..first.end()].copy_from_slice(&second_payload);
    bytes[second.payload_offset()..second.end()].copy_from_slice(&first_payload);
    reseal_record(&mut bytes, first.offset);
    reseal_record(&mut bytes, second.offset);
    fs::write(&path, &bytes).unwrap();
    let error = assert_detected(temp.path(), 4, &path);
    assert!(matches!(error, JournalError::ChainBroken { seq: 4, .. }), "{error}");
}

#[test]
fn removed_record_is_a_gap() {
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes.drain(spans[4].offset..spans[4].end());
    fs::write(&path, &bytes).unwrap();
    let error = assert_detected(temp.path(), 5, &path);
    assert!(matches!(error, JournalError::Gap { expected: 5, found: 6, .. }), "{error}");
}

#[test]
fn duplicated_record_is_a_gap() {
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    let copy = bytes[spans[4].offset..spans[4].end()].to_vec();
    let insert_at = spans[4].end();
    bytes.splice(insert_at..insert_at, copy);
    fs::write(&path, &bytes).unwrap();
    let error = assert_detected(temp.path(), 6, &path);
    assert!(matches!(error, JournalError::Gap { expected: 6, found: 5, .. }), "{error}");
}

#[test]
fn duplicated_last_record_is_a_gap_not_a_torn_tail() {
    let temp = tempfile::tempdir().unwrap();
    let (path, spans) = ten_records(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    let copy = bytes[spans[9].offset..spans[9].end()].to_vec();
    bytes.extend_from_slice(&copy[..copy.len() - 3]);
    fs::write(&path, &bytes).unwrap();
    assert_detected(temp.path(), 11, &path);
}

/// Several segments of a few records each.
fn segmented(dir: &Path) -> Vec<PathBuf> {
    write_journal(dir, small_segments(700), &sample_payloads(30));
    let paths = segment_paths(dir);
    assert!(paths.len() >= 5);
    paths
}

fn first_seq_of(path: &Path) -> u64 {
    record_spans(&fs::read(path).unwrap())[0].seq
}

#[test]
fn flipped_byte_in_a_segment_header_names_its_first_seq() {
    for position in 0..SEGMENT_HEADER_LEN {
        let temp = tempfile::tempdir().unwrap();
        let paths = segmented(temp.path());
        let seq = first_seq_of(&paths[2]);
        flip_byte(&paths[2], position, 0x04);
        let error = assert_detected(temp.path(), seq, &paths[2]);
        assert!(error.to_string().contains("offset 0"), "{error}");
    }
}

#[test]
fn flipped_byte_in_the_last_segment_header_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    let paths = segmented(temp.path());
    let last = paths.last().unwrap();
    let seq = first_seq_of(last);
    flip_byte(last, 12, 0x01);
    assert_detected(temp.path(), seq, last);
}

#[test]
fn deleted_middle_segment_is_reported_missing() {
    let temp = tempfile::tempdir().unwrap();
    let paths = segmented(temp.path());
    let missing_seq = first_seq_of(&paths[2]);
    fs::remove_file(&paths[2]).unwrap();
    let error = assert_detected(temp.path(), missing_seq, &paths[3]);
    assert!(matches!(error, JournalError::MissingSegment { .. }), "{error}");
}

#[test]
fn deleted_first_segment_is_reported_missing() {
    let temp = tempfile::tempdir().unwrap();
    let paths = segmented(temp.path());
    fs::remove_file(&paths[0]).unwrap();
    assert_detected(temp.path(), 1, &paths[1]);
}

#[test]
fn renamed_segment_is_detected() {
    let temp = tempfile::tempdir().unwrap();
    let paths = segmented(temp.path());
    let seq = first_seq_of(&paths[3]);
    let renamed = temp.path().join(format!("{:020}.seg", seq + 1));
    fs::rename(&paths[3], &renamed).unwrap();
    assert!(open_default(temp.path()).is_err());
    let error = verify(temp.path()).unwrap_err();
    assert_eq!(error.seq(), Some(seq));
}

#[test]
fn records_moved_between_segments_are_detected() {
    let temp = tempfile::tempdir().unwrap();
    let paths = segmented(temp.path());
    let mut second = fs::read(&paths[1]).unwrap();
    let spans = record_spans(&second);
    let moved = second.split_off(spans.last().unwrap().offset);
    fs::write(&paths[1], &second).unwrap();
    let mut third = fs::read(&paths[2]).unwrap();
    third.splice(SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN, moved);
    fs::write(&paths[2], &third).unwrap();
    // Every record is intact and the chain is unbroken, but segment 3 no longer starts where
    // its name says.
    let error = verify(temp.path()).unwrap_err();
    assert!(error.is_integrity_error(), "{error}");
    assert!(open_default(temp.path()).is_err());
}
