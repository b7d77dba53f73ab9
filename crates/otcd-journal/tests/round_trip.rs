mod common;

use common::*;
use otcd_journal::{chain_hash, verify, ChainHead, FileJournal, Journal, JournalError, JournalOptions};

#[test]
fn round_trip_preserves_payloads_order_and_heads() {
    let temp = tempfile::tempdir().unwrap();
    let mut payloads = sample_payloads(500);
    payloads[10] = Vec::new(); // empty payloads are legal
    payloads[20] = vec![0u8; 300]; // and so are zero bytes inside a payload
    let mut opened = open_default(temp.path()).unwrap();
    assert_eq!(opened.report.head, ChainHead::genesis());
    assert_eq!(opened.report.records, 0);
    let head = append_all(&mut opened.journal, &payloads, 64);
    assert_eq!(head.seq, 500);
    assert_eq!(opened.journal.head(), head);
    assert_eq!(opened.journal.durable_head(), head);
    drop(opened);

    let reopened = open_default(temp.path()).unwrap();
    assert_eq!(reopened.report.head, head);
    assert_eq!(reopened.report.records, 500);
    assert_eq!(reopened.report.truncated_torn_bytes, 0);
    assert_eq!(reopened.journal.head(), head);
    assert_eq!(reopened.journal.durable_head(), head);
    let expected: Vec<(u64, Vec<u8>)> = (1..).zip(payloads).collect();
    assert_eq!(reopened.visited, expected);
}

#[test]
fn heads_follow_the_chain_rule() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(20);
    let head = write_journal(temp.path(), JournalOptions::default(), &payloads);
    let mut expected = ChainHead::genesis();
    for (seq, payload) in (1..).zip(&payloads) {
        expected = ChainHead { seq, hash: chain_hash(&expected.hash, seq, payload) };
    }
    assert_eq!(head, expected);
}

#[test]
fn append_returns_consecutive_seqs_and_durable_head_lags_until_sync() {
    let temp = tempfile::tempdir().unwrap();
    let mut journal = open_default(temp.path()).unwrap().journal;
    assert_eq!(journal.append(b"a").unwrap(), 1);
    assert_eq!(journal.append(b"b").unwrap(), 2);
    assert_eq!(journal.head().seq, 2);
    assert_eq!(journal.durable_head(), ChainHead::genesis());
    let durable = journal.sync().unwrap();
    assert_eq!(durable, journal.head());
    assert_eq!(journal.sync().unwrap(), durable, "an empty sync is a no-op");
    assert_eq!(journal.append(b"c").unwrap(), 3);
}

#[test]
fn appends_after_reopen_continue_seq_and_chain() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(30);
    write_journal(temp.path(), JournalOptions::default(), &payloads[..10]);
    let mut opened = open_default(temp.path()).unwrap();
    append_all(&mut opened.journal, &payloads[10..], 5);
    drop(opened);
    let reopened = open_default(temp.path()).unwrap();
    let visited: Vec<Vec<u8>> = reopened.visited.into_iter().map(|(_, payload)| payload).collect();
    assert_eq!(visited, payloads);
    assert_eq!(verify(temp.path()).unwrap().events, 30);
}

#[test]
fn replay_after_seq_skips_earlier_records() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(50);
    write_journal(temp.path(), JournalOptions::default(), &payloads);
    let opened = open_with(temp.path(), JournalOptions::default(), 42, None).unwrap();
    let seqs: Vec<u64> = opened.visited.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (43..=50).collect::<Vec<_>>());
    assert_eq!(opened.visited[0].1, payloads[42]);
    assert_eq!(opened.report.records, 50, "all records are still verified");
}

/// The head a journal of `payloads` has after record `seq`.
fn head_at(payloads: &[Vec<u8>], seq: u64) -> ChainHead {
    let mut head = ChainHead::genesis();
    for (current, payload) in (1..=seq).zip(payloads) {
        head = ChainHead { seq: current, hash: chain_hash(&head.hash, current, payload) };
    }
    head
}

#[test]
fn expected_at_matching_head_is_accepted() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(30);
    write_journal(temp.path(), JournalOptions::default(), &payloads);
    let at = head_at(&payloads, 17);
    let opened = open_with(temp.path(), JournalOptions::default(), 17, Some(at)).unwrap();
    assert_eq!(opened.visited.len(), 13);
    drop(opened);
    let genesis = Some(ChainHead::genesis());
    assert!(open_with(temp.path(), JournalOptions::default(), 0, genesis).is_ok());
}

#[test]
fn expected_at_with_a_different_hash_is_rejected() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(30);
    write_journal(temp.path(), JournalOptions::default(), &payloads);
    let mut at = head_at(&payloads, 17);
    at.hash[0] ^= 1;
    let error =
        open_with(temp.path(), JournalOptions::default(), 17, Some(at)).err().expect("mismatch must be detected");
    assert!(matches!(error, JournalError::SnapshotMismatch { seq: 17, .. }), "{error}");
    assert_eq!(error.seq(), Some(17));
    assert!(error.to_string().contains(".seg"), "{error}");
}

#[test]
fn expected_at_beyond_the_end_of_the_journal_is_rejected() {
    let temp = tempfile::tempdir().unwrap();
    let payloads = sample_payloads(31);
    write_journal(temp.path(), JournalOptions::default(), &payloads[..30]);
    let at = head_at(&payloads, 31);
    let error = open_with(temp.path(), JournalOptions::default(), 31, Some(at))
        .err()
        .expect("a journal shorter than the snapshot must be rejected");
    assert!(matches!(error, JournalError::SnapshotMismatch { seq: 31, .. }), "{error}");
}

#[test]
fn visitor_error_aborts_open_and_names_the_seq() {
    let temp = tempfile::tempdir().unwrap();
    write_journal(temp.path(), JournalOptions::default(), &sample_payloads(10));
    let mut seen = Vec::new();
    let result = FileJournal::open(temp.path(), JournalOptions::default(), 0, None, |seq, _| {
        seen.push(seq);
        if seq == 4 {
            return Err("insufficient funds".to_string());
        }
        Ok(())
    });
    let error = result.err().expect("visitor error must abort open");
    match &error {
        JournalError::Visit(message) => {
            assert!(message.contains("seq 4") && message.contains("insufficient funds"), "{message}")
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(seen, vec![1, 2, 3, 4]);
}

#[test]
fn second_writer_on_the_same_directory_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let first = open_default(temp.path()).unwrap();
    let error = open_default(temp.path()).err().expect("second open must fail");
    assert!(matches!(error, JournalError::Locked { .. }), "{error}");
    drop(first);
    assert!(open_default(temp.path()).is_ok(), "the lock is released on drop");
}

#[test]
fn verify_of_a_fresh_and_a_missing_directory() {
    let temp = tempfile::tempdir().unwrap();
    let report = verify(temp.path()).unwrap();
    assert_eq!(report.events, 0);
    assert_eq!(report.head, ChainHead::genesis());
    let missing = temp.path().join("missing");
    assert!(matches!(verify(&missing), Err(JournalError::Io { .. })));
}

#[test]
fn verify_counts_records_and_never_writes() {
    let temp = tempfile::tempdir().unwrap();
    let head = write_journal(temp.path(), JournalOptions::default(), &sample_payloads(25));
    let before = segment_contents(temp.path());
    let report = verify(temp.path()).unwrap();
    assert_eq!(report.events, 25);
    assert_eq!(report.head, head);
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(before, segment_contents(temp.path()));
}

#[test]
fn open_creates_the_directory() {
    let temp = tempfile::tempdir().unwrap();
    let nested = temp.path().join("a/b/journal");
    let mut opened = open_default(&nested).unwrap();
    opened.journal.append(b"x").unwrap();
    opened.journal.sync().unwrap();
    assert_eq!(verify(&nested).unwrap().events, 1);
}
