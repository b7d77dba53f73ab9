mod common;

use std::fs;
use std::io::Write;

use common::*;
use otcd_journal::{
    chain_hash, verify, ChainHead, Journal, JournalError, JournalOptions, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    segment_paths(dir).pop().expect("at least one segment")
}

/// After the torn record is gone, appending must produce the seq and hash the chain requires,
/// and the new record must survive a reopen.
fn assert_appends_continue(dir: &std::path::Path, options: JournalOptions, head: ChainHead) {
    let mut opened = open_with(dir, options, 0, None).unwrap();
    let new_payload = b"after the torn tail".to_vec();
    assert_eq!(opened.journal.append(&new_payload).unwrap(), head.seq + 1);
    let synced = opened.journal.sync().unwrap();
    assert_eq!(synced, ChainHead { seq: head.seq + 1, hash: chain_hash(&head.hash, head.seq + 1, &new_payload) });
    drop(opened);
    let reopened = open_with(dir, options, 0, None).unwrap();
    assert_eq!(reopened.report.head, synced);
    assert_eq!(reopened.report.truncated_torn_bytes, 0);
    assert_eq!(reopened.visited.last().unwrap().1, new_payload);
}

#[test]
fn truncating_the_last_record_at_every_offset_drops_only_that_record() {
    let template = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(6);
    let head_before_last = write_journal(template.path(), JournalOptions::default(), &payloads[..5]);
    write_journal(template.path(), JournalOptions::default(), &payloads[5..]);
    let template_bytes = fs::read(last_segment(template.path())).unwrap();
    let last = *record_spans(&template_bytes).last().unwrap();
    assert_eq!(last.seq, 6);

    for cut in 1..last.len {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join(last_segment(template.path()).file_name().unwrap());
        let kept = last.offset + cut;
        fs::write(&path, &template_bytes[..kept]).unwrap();

        let verified = verify(temp.path()).unwrap();
        assert_eq!(verified.events, 5, "cut {cut}");
        assert_eq!(verified.torn_tail_bytes, cut as u64);
        assert_eq!(file_len(&path), kept as u64, "verify must not truncate");

        let opened = open_default(temp.path()).unwrap();
        assert_eq!(opened.report.records, 5, "cut {cut}");
        assert_eq!(opened.report.head, head_before_last);
        assert_eq!(opened.report.truncated_torn_bytes, cut as u64);
        assert_eq!(opened.visited.len(), 5);
        assert_eq!(file_len(&path), last.offset as u64, "torn bytes are cut off");
        drop(opened);
        assert_appends_continue(temp.path(), JournalOptions::default(), head_before_last);
    }
}

#[test]
fn zero_filled_tail_is_torn() {
    for zeros in [1usize, 10, RECORD_HEADER_LEN - 1, RECORD_HEADER_LEN, 300, 4096] {
        let temp = tempfile::tempdir().unwrap();
        let head = write_journal(temp.path(), JournalOptions::default(), &sample_payloads(4));
        let path = last_segment(temp.path());
        let clean_len = file_len(&path);
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&vec![0u8; zeros]).unwrap();
        drop(file);

        assert_eq!(verify(temp.path()).unwrap().torn_tail_bytes, zeros as u64);
        let opened = open_default(temp.path()).unwrap();
        assert_eq!(opened.report.head, head, "zeros {zeros}");
        assert_eq!(opened.report.truncated_torn_bytes, zeros as u64);
        assert_eq!(file_len(&path), clean_len);
        drop(opened);
        assert_appends_continue(temp.path(), JournalOptions::default(), head);
    }
}

#[test]
fn last_record_overwritten_with_zeros_is_torn() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(5);
    let head_before_last = write_journal(temp.path(), JournalOptions::default(), &payloads[..4]);
    write_journal(temp.path(), JournalOptions::default(), &payloads[4..]);
    let path = last_segment(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    let last = *record_spans(&bytes).last().unwrap();
    bytes[last.offset..].fill(0);
    fs::write(&path, &bytes).unwrap();

    let opened = open_default(temp.path()).unwrap();
    assert_eq!(opened.report.head, head_before_last);
    assert_eq!(opened.report.truncated_torn_bytes, last.len as u64);
}

#[test]
fn zeroed_header_of_the_last_record_with_payload_bytes_after_it_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    write_journal(temp.path(), JournalOptions::default(), &sample_payloads(5));
    let path = last_segment(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    let last = *record_spans(&bytes).last().unwrap();
    bytes[last.offset..last.payload_offset()].fill(0);
    fs::write(&path, &bytes).unwrap();
    assert_detected(temp.path(), 5, &path);
}

#[test]
fn empty_or_partial_new_last_segment_is_torn_and_reused() {
    for (content, label) in [
        (Vec::new(), "empty"),
        (vec![0u8; 10], "ten zero bytes"),
        (b"OTCDJNL1\x01\x00".to_vec(), "partial header"),
        (vec![0u8; 100], "zero-filled"),
    ] {
        let temp = tempfile::tempdir().unwrap();
        let options = small_segments(400);
        let head = write_journal(temp.path(), options, &sample_payloads(6));
        let segments_before = segment_paths(temp.path()).len();
        let new_segment = temp.path().join(format!("{:020}.seg", head.seq + 1));
        fs::write(&new_segment, &content).unwrap();

        assert_eq!(verify(temp.path()).unwrap().torn_tail_bytes, content.len() as u64);
        let opened = open_with(temp.path(), options, 0, None).unwrap();
        assert_eq!(opened.report.head, head, "{label}");
        assert_eq!(opened.report.segments, segments_before + 1);
        assert_eq!(opened.report.truncated_torn_bytes, content.len() as u64);
        assert_eq!(file_len(&new_segment), SEGMENT_HEADER_LEN as u64, "{label}");
        drop(opened);
        assert_appends_continue(temp.path(), options, head);
        assert_eq!(segment_paths(temp.path()).len(), segments_before + 1);
    }
}

#[test]
fn incomplete_segment_that_is_not_the_last_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    let options = small_segments(400);
    write_journal(temp.path(), options, &sample_payloads(12));
    let paths = segment_paths(temp.path());
    assert!(paths.len() >= 3);
    let first_seq_of_second = record_spans(&fs::read(&paths[1]).unwrap())[0].seq;
    truncate(&paths[1], 10);
    assert_detected(temp.path(), first_seq_of_second, &paths[1]);
}

#[test]
fn truncated_record_in_an_earlier_segment_is_corruption() {
    let temp = tempfile::tempdir().unwrap();
    let options = small_segments(600);
    write_journal(temp.path(), options, &sample_payloads(12));
    let paths = segment_paths(temp.path());
    let bytes = fs::read(&paths[0]).unwrap();
    let last = *record_spans(&bytes).last().unwrap();
    truncate(&paths[0], (last.offset + 20) as u64);
    assert_detected(temp.path(), last.seq, &paths[0]);
}

#[test]
fn zeroed_middle_record_is_corruption_not_a_torn_tail() {
    let temp = tempfile::tempdir().unwrap();
    write_journal(temp.path(), JournalOptions::default(), &sample_payloads(8));
    let path = last_segment(temp.path());
    let mut bytes = fs::read(&path).unwrap();
    let middle = record_spans(&bytes)[3];
    bytes[middle.offset..middle.end()].fill(0);
    fs::write(&path, &bytes).unwrap();
    let error = assert_detected(temp.path(), middle.seq, &path);
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
}

#[test]
fn whole_journal_cut_inside_the_first_record_leaves_an_empty_journal() {
    let temp = tempfile::tempdir().unwrap();
    write_journal(temp.path(), JournalOptions::default(), &sample_payloads(1));
    let path = last_segment(temp.path());
    truncate(&path, (SEGMENT_HEADER_LEN + 30) as u64);
    let opened = open_default(temp.path()).unwrap();
    assert_eq!(opened.report.head, ChainHead::genesis());
    drop(opened);
    assert_appends_continue(temp.path(), JournalOptions::default(), ChainHead::genesis());
}
