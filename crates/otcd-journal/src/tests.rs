//! Unit tests that need crate internals (fault injection); the black-box tests live in `tests/`.

use crate::file_journal::{Fault, IoEvent};
use crate::{chain_hash, ChainHead, FileJournal, Journal, JournalError, JournalOptions};

fn open_empty(dir: &std::path::Path) -> FileJournal {
    FileJournal::open(dir, JournalOptions::default(), 0, None, |_, _| Ok(())).expect("open").0
}

fn reopen_payloads(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut payloads = Vec::new();
    FileJournal::open(dir, JournalOptions::default(), 0, None, |_, payload| {
        payloads.push(payload.to_vec());
        Ok(())
    })
    .expect("reopen");
    payloads
}

#[test]
fn chain_hash_matches_the_documented_rule() {
    use sha2::{Digest, Sha256};
    let previous = [3u8; 32];
    let mut input = previous.to_vec();
    input.extend_from_slice(&7u64.to_le_bytes());
    input.extend_from_slice(b"abc");
    let expected: [u8; 32] = Sha256::digest(&input).into();
    assert_eq!(chain_hash(&previous, 7, b"abc"), expected);
    assert_ne!(chain_hash(&previous, 8, b"abc"), expected);
}

#[test]
fn genesis_is_seq_zero_with_zero_hash() {
    let genesis = ChainHead::genesis();
    assert_eq!(genesis.seq, 0);
    assert_eq!(genesis.hash_hex(), "0".repeat(64));
}

#[test]
fn failed_sync_poisons_the_journal() {
    let temp = tempfile::tempdir().unwrap();
    let mut journal = open_empty(temp.path());
    journal.append(b"one").unwrap();
    journal.sync().unwrap();
    journal.append(b"two").unwrap();
    journal.inject_fault(Fault::Sync);
    assert!(matches!(journal.sync(), Err(JournalError::Io { .. })));
    assert!(journal.is_poisoned());
    assert!(matches!(journal.append(b"three"), Err(JournalError::Poisoned)));
    assert!(matches!(journal.sync(), Err(JournalError::Poisoned)));
    assert_eq!(journal.durable_head().seq, 1, "a failed sync must not advance the durable head");
    drop(journal);
    // Record 2 was written (only its fsync "failed"), so it may or may not survive; record 1
    // must, and the journal must still open cleanly.
    let payloads = reopen_payloads(temp.path());
    assert_eq!(payloads[0], b"one");
    assert!(payloads.len() <= 2);
}

#[test]
fn failed_write_poisons_the_journal() {
    let temp = tempfile::tempdir().unwrap();
    let mut journal = open_empty(temp.path());
    journal.append(b"one").unwrap();
    journal.sync().unwrap();
    journal.append(b"two").unwrap();
    journal.inject_fault(Fault::Write);
    assert!(matches!(journal.sync(), Err(JournalError::Io { .. })));
    assert!(matches!(journal.append(b"three"), Err(JournalError::Poisoned)));
    assert!(matches!(journal.sync(), Err(JournalError::Poisoned)));
    assert_eq!(journal.durable_head().seq, 1);
    drop(journal);
    assert_eq!(reopen_payloads(temp.path()), vec![b"one".to_vec()]);
}

#[test]
fn failed_sync_during_segment_roll_poisons_the_journal() {
    let temp = tempfile::tempdir().unwrap();
    let options = JournalOptions { segment_bytes_max: 100, ..JournalOptions::default() };
    let (mut journal, _) = FileJournal::open(temp.path(), options, 0, None, |_, _| Ok(())).unwrap();
    journal.append(&[1u8; 30]).unwrap();
    journal.append(&[2u8; 30]).unwrap();
    journal.inject_fault(Fault::Sync);
    assert!(journal.sync().is_err());
    assert!(matches!(journal.append(b"x"), Err(JournalError::Poisoned)));
}

#[test]
fn oversized_payload_is_refused_without_poisoning() {
    let temp = tempfile::tempdir().unwrap();
    let options = JournalOptions { payload_bytes_max: 8, ..JournalOptions::default() };
    let (mut journal, _) = FileJournal::open(temp.path(), options, 0, None, |_, _| Ok(())).unwrap();
    let error = journal.append(&[0u8; 9]).unwrap_err();
    assert!(matches!(error, JournalError::PayloadTooLarge { seq: 1, len: 9, max: 8 }));
    assert_eq!(journal.append(&[0u8; 8]).unwrap(), 1);
    assert_eq!(journal.sync().unwrap().seq, 1);
}

#[test]
fn large_unsynced_batches_are_flushed_but_not_made_durable() {
    let temp = tempfile::tempdir().unwrap();
    let mut journal = open_empty(temp.path());
    let payload = vec![5u8; 64 << 10];
    for _ in 0..100 {
        journal.append(&payload).unwrap();
    }
    assert_eq!(journal.durable_head(), ChainHead::genesis());
    assert_eq!(journal.head().seq, 100);
    assert_eq!(journal.sync().unwrap().seq, 100);
    drop(journal);
    assert_eq!(reopen_payloads(temp.path()).len(), 100);
}

#[test]
fn a_group_is_committed_with_one_write_and_one_fdatasync() {
    let temp = tempfile::tempdir().unwrap();
    let mut journal = open_empty(temp.path());
    for index in 0..1000u32 {
        journal.append(&index.to_le_bytes()).unwrap();
    }
    journal.sync().unwrap();
    let segment = temp.path().join("00000000000000000001.seg");
    assert_eq!(journal.take_io_events(), vec![IoEvent::Write(segment.clone()), IoEvent::Sync(segment)]);
    journal.sync().unwrap();
    assert!(journal.take_io_events().is_empty(), "nothing to sync means no fsync");
}

#[test]
fn the_old_segment_is_synced_before_the_next_one_is_created() {
    let temp = tempfile::tempdir().unwrap();
    let options = JournalOptions { segment_bytes_max: 100, ..JournalOptions::default() };
    let (mut journal, _) = FileJournal::open(temp.path(), options, 0, None, |_, _| Ok(())).unwrap();
    for _ in 0..3 {
        journal.append(&[7u8; 30]).unwrap();
    }
    journal.sync().unwrap();
    let segment = |seq: u64| temp.path().join(crate::segment_file_name(seq));
    assert_eq!(
        journal.take_io_events(),
        vec![
            IoEvent::Write(segment(1)),
            IoEvent::Sync(segment(1)),
            IoEvent::Create(segment(2)),
            IoEvent::Write(segment(2)),
            IoEvent::Sync(segment(2)),
            IoEvent::Create(segment(3)),
            IoEvent::Write(segment(3)),
            IoEvent::Sync(segment(3)),
        ]
    );
}

#[test]
fn a_scan_reports_its_progress_in_bytes_up_to_the_size_of_the_segments() {
    let temp = tempfile::tempdir().unwrap();
    // 3 MiB in segments of 1 MiB: reports at least per MiB and at each segment's end.
    let options = JournalOptions { segment_bytes_max: 1 << 20, ..JournalOptions::default() };
    let (mut journal, _) = FileJournal::open(temp.path(), options, 0, None, |_, _| Ok(())).unwrap();
    let payload = vec![7u8; 16 << 10];
    for _ in 0..192 {
        journal.append(&payload).unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    let total = crate::journal_bytes(temp.path()).unwrap();
    assert!(total > 3 << 20, "{total}");
    let reports = std::cell::RefCell::new(Vec::new());
    let mut visited = 0;
    crate::read_records_observed(
        temp.path(),
        0,
        u64::MAX,
        |_, _| {
            visited += 1;
            Ok(())
        },
        &|bytes| reports.borrow_mut().push(bytes),
    )
    .unwrap();
    let reports = reports.into_inner();
    assert_eq!(visited, 192);
    assert!(reports.len() >= 3, "{reports:?}");
    assert!(reports.windows(2).all(|pair| pair[0] <= pair[1]), "never goes back: {reports:?}");
    assert_eq!(reports.last(), Some(&total), "ends at the size of the segments read");
}
