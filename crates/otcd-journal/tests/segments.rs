mod common;

use std::fs;

use common::*;
use otcd_journal::{parse_segment_file_name, verify, Journal, SEGMENT_HEADER_LEN};

#[test]
fn tiny_segments_roll_and_reopen_across_them() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(100);
    let options = small_segments(600);
    let head = write_journal(temp.path(), options, &payloads);
    let paths = segment_paths(temp.path());
    assert!(paths.len() >= 20, "expected many segments, got {}", paths.len());

    let mut next_seq = 1;
    for path in &paths {
        let bytes = fs::read(path).unwrap();
        assert!(bytes.len() as u64 <= 600, "{} has {} bytes", path.display(), bytes.len());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_segment_file_name(name), Some(next_seq));
        let spans = record_spans(&bytes);
        assert!(!spans.is_empty());
        assert_eq!(spans[0].seq, next_seq);
        next_seq += spans.len() as u64;
    }
    assert_eq!(next_seq, 101);

    let report = verify(temp.path()).unwrap();
    assert_eq!((report.events, report.head, report.segments), (100, head, paths.len()));
    let opened = open_with(temp.path(), options, 0, None).unwrap();
    assert_eq!(opened.report.segments, paths.len());
    assert_eq!(opened.report.head, head);
    let visited: Vec<Vec<u8>> = opened.visited.into_iter().map(|(_, payload)| payload).collect();
    assert_eq!(visited, payloads);
}

#[test]
fn rolling_continues_after_reopen() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(60);
    let options = small_segments(1000);
    write_journal(temp.path(), options, &payloads[..25]);
    let segments_before = segment_paths(temp.path()).len();
    let mut opened = open_with(temp.path(), options, 0, None).unwrap();
    append_all(&mut opened.journal, &payloads[25..], 3);
    drop(opened);
    assert!(segment_paths(temp.path()).len() > segments_before);
    let opened = open_with(temp.path(), options, 0, None).unwrap();
    assert_eq!(opened.visited.len(), 60);
    assert_eq!(opened.visited[59].1, payloads[59]);
}

#[test]
fn a_record_larger_than_the_segment_limit_gets_its_own_segment() {
    let temp = tempfile::tempdir().unwrap();
    let options = small_segments(100);
    let payloads = vec![vec![1u8; 10], vec![2u8; 500], vec![3u8; 10]];
    write_journal(temp.path(), options, &payloads);
    let paths = segment_paths(temp.path());
    assert_eq!(paths.len(), 3);
    let second = fs::read(&paths[1]).unwrap();
    assert_eq!(second.len(), SEGMENT_HEADER_LEN + 56 + 500);
    assert_eq!(verify(temp.path()).unwrap().events, 3);
}

#[test]
fn segment_limit_is_respected_within_one_group() {
    let temp = tempfile::tempdir().unwrap();
    let options = small_segments(2000);
    let mut opened = open_with(temp.path(), options, 0, None).unwrap();
    for payload in sample_payloads(200) {
        opened.journal.append(&payload).unwrap();
    }
    opened.journal.sync().unwrap();
    drop(opened);
    let paths = segment_paths(temp.path());
    assert!(paths.len() > 10);
    for path in &paths {
        assert!(file_len(path) <= 2000);
    }
    assert_eq!(verify(temp.path()).unwrap().events, 200);
}
