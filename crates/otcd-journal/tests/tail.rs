//! `JournalTail`: a reader that follows a journal being appended to resumes where it stopped (across segment
//! rotation and a restart of the writer) instead of re-reading from genesis, and never visits a record twice
//! or out of order.

use otcd_journal::{read_records, FileJournal, Journal, JournalOptions, JournalTail};
use std::path::Path;

/// Small segments so that a few dozen records rotate several times.
fn options() -> JournalOptions {
    JournalOptions { segment_bytes_max: 400, ..JournalOptions::default() }
}

fn payload(seq: u64) -> Vec<u8> {
    format!("{{\"record\":{seq},\"padding\":\"................\"}}").into_bytes()
}

fn open(dir: &Path) -> FileJournal {
    FileJournal::open(dir, options(), u64::MAX, None, |_, _| Ok(())).expect("open").0
}

/// Appends records up to `last` (one sync per record, as small groups would).
fn append_through(journal: &mut FileJournal, last: u64) {
    while journal.head().seq < last {
        let seq = journal.head().seq + 1;
        assert_eq!(journal.append(&payload(seq)).unwrap(), seq);
        journal.sync().unwrap();
    }
}

fn read(tail: &mut JournalTail, after: u64, up_to: u64) -> (Vec<u64>, otcd_journal::TailRead) {
    let mut seen = Vec::new();
    let outcome = tail
        .read(after, up_to, |seq, bytes| {
            assert_eq!(bytes, payload(seq).as_slice(), "record {seq}");
            seen.push(seq);
            Ok(())
        })
        .unwrap();
    (seen, outcome)
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

fn journal_bytes(dir: &Path) -> u64 {
    segment_files(dir).iter().map(|path| std::fs::metadata(path).unwrap().len()).sum()
}

#[test]
fn a_tail_resumes_where_it_stopped_across_rotation() {
    let directory = tempfile::tempdir().unwrap();
    let mut journal = open(directory.path());
    append_through(&mut journal, 12);
    let mut tail = JournalTail::new(directory.path());
    let (seen, first) = read(&mut tail, 0, 12);
    assert_eq!(seen, (1..=12).collect::<Vec<_>>());
    assert!(!first.resumed);
    assert_eq!(tail.position().unwrap().head, journal.durable_head());

    let before = journal_bytes(directory.path());
    append_through(&mut journal, 40);
    assert!(segment_files(directory.path()).len() >= 4, "the records rotated through several segments");
    let (seen, second) = read(&mut tail, 12, 40);
    assert_eq!(seen, (13..=40).collect::<Vec<_>>());
    assert!(second.resumed);
    // Only what was appended since (new segments include their 24-byte headers).
    assert_eq!(second.bytes_read, journal_bytes(directory.path()) - before);

    // Damage to the first segment is not seen by a resumed read (it does not go back there), while a read
    // from genesis stops at it: the catch-up really starts where the last one ended.
    let first_segment = &segment_files(directory.path())[0];
    let mut bytes = std::fs::read(first_segment).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(first_segment, bytes).unwrap();
    append_through(&mut journal, 45);
    let (seen, third) = read(&mut tail, 40, 45);
    assert_eq!(seen, (41..=45).collect::<Vec<_>>());
    assert!(third.resumed);
    assert!(read_records(directory.path(), 0, 45, |_, _| Ok(())).is_err());
}

#[test]
fn records_delivered_another_way_are_skipped_without_rereading_earlier_segments() {
    let directory = tempfile::tempdir().unwrap();
    let mut journal = open(directory.path());
    append_through(&mut journal, 5);
    let mut tail = JournalTail::new(directory.path());
    assert_eq!(read(&mut tail, 0, 5).0, (1..=5).collect::<Vec<_>>());
    // Records 6..=30 reached the reader through its queue; it is asked for 31..=35 only.
    append_through(&mut journal, 35);
    let (seen, outcome) = read(&mut tail, 30, 35);
    assert_eq!(seen, (31..=35).collect::<Vec<_>>());
    assert!(outcome.bytes_read < journal_bytes(directory.path()) / 2, "read {} bytes", outcome.bytes_read);
    // Within one segment it continues from its position, reading but not visiting what it already has.
    append_through(&mut journal, 37);
    assert_eq!(read(&mut tail, 36, 37).0, vec![37]);
    assert_eq!(read(&mut tail, 37, 37).0, Vec::<u64>::new());
}

#[test]
fn a_tail_follows_the_journal_across_a_restart_of_the_writer() {
    let directory = tempfile::tempdir().unwrap();
    let mut journal = open(directory.path());
    append_through(&mut journal, 10);
    // A crash mid-write: bytes of a record that was never acknowledged at the end of the newest segment.
    journal.append(&payload(11)).unwrap();
    drop(journal);
    let newest = segment_files(directory.path()).pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.extend_from_slice(&[0x4f, 0x54, 0x43, 0x52, 1, 2, 3]);
    std::fs::write(&newest, bytes).unwrap();

    let mut tail = JournalTail::new(directory.path());
    assert_eq!(read(&mut tail, 0, 10).0, (1..=10).collect::<Vec<_>>());
    // Reading beyond the durable seq meets the torn bytes and stops quietly.
    let (seen, _) = read(&mut tail, 10, 20);
    assert!(seen.len() <= 1, "{seen:?}");
    let after = *seen.last().unwrap_or(&10);

    // The writer restarts (truncating the torn tail) and appends; the tail goes on from where it was.
    let mut journal = open(directory.path());
    let durable = journal.durable_head().seq;
    append_through(&mut journal, durable + 8);
    let (seen, outcome) = read(&mut tail, after, durable + 8);
    assert_eq!(seen, (after + 1..=durable + 8).collect::<Vec<_>>());
    assert!(outcome.resumed || after < durable);
}

#[test]
fn a_position_that_no_longer_fits_the_files_falls_back_to_a_full_read() {
    let directory = tempfile::tempdir().unwrap();
    let mut journal = open(directory.path());
    append_through(&mut journal, 20);
    let mut tail = JournalTail::new(directory.path());
    assert_eq!(read(&mut tail, 0, 20).0.len(), 20);
    drop(journal);
    // A new, shorter journal in the same place (a restored directory, say).
    for file in segment_files(directory.path()) {
        std::fs::remove_file(file).unwrap();
    }
    let mut journal = open(directory.path());
    append_through(&mut journal, 3);
    let (seen, outcome) = read(&mut tail, 0, 3);
    assert_eq!(seen, vec![1, 2, 3]);
    assert!(!outcome.resumed);

    // Replaced again by a journal whose records are longer: the remembered offset (end of record 3 of the one
    // before) now falls inside a record; the read notices and starts over from the segment start.
    drop(journal);
    for file in segment_files(directory.path()) {
        std::fs::remove_file(file).unwrap();
    }
    let (mut journal, _) = FileJournal::open(directory.path(), options(), u64::MAX, None, |_, _| Ok(())).unwrap();
    for seq in 1..=5 {
        journal.append(&[payload(seq), vec![b' '; 7]].concat()).unwrap();
        journal.sync().unwrap();
    }
    let mut seen = Vec::new();
    let outcome = tail
        .read(3, 5, |seq, _| {
            seen.push(seq);
            Ok(())
        })
        .unwrap();
    assert_eq!((seen, outcome.resumed), (vec![4, 5], false));
}

/// A reader following the durable seq must find every record up to it: `read_through` says where the journal
/// ended instead of returning quietly short.
#[test]
fn read_through_refuses_a_journal_that_ends_before_the_seq_asked_for() {
    let directory = tempfile::tempdir().unwrap();
    let mut journal = open(directory.path());
    append_through(&mut journal, 12);
    let mut tail = JournalTail::new(directory.path());
    let outcome = tail.read_through(0, 12, |_, _| Ok(())).unwrap();
    assert_eq!(outcome.visited, 12);
    let error = JournalTail::new(directory.path()).read_through(3, 20, |_, _| Ok(())).unwrap_err();
    assert!(matches!(error, otcd_journal::JournalError::EndsBefore { reached: 12, wanted: 20 }), "{error}");
    assert_eq!(error.seq(), Some(13));
}
