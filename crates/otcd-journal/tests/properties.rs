mod common;

use std::fs;

use common::*;
use otcd_journal::{verify, JournalOptions, SEGMENT_HEADER_LEN};
use proptest::prelude::*;

fn payloads_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..40)
}

/// Where a byte of the journal belongs: the seq an error about it must name.
fn owner_seq(segment: &[u8], position: usize) -> u64 {
    let spans = record_spans(segment);
    if position < SEGMENT_HEADER_LEN {
        return spans[0].seq;
    }
    spans
        .iter()
        .find(|span| position >= span.offset && position < span.end())
        .expect("every byte after the header belongs to a record")
        .seq
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_payloads_round_trip(
        payloads in payloads_strategy(),
        group in 1usize..10,
        segment_bytes_max in 100u64..3000,
    ) {
        let temp = tempfile::tempdir().unwrap();
        let options = JournalOptions { segment_bytes_max, ..JournalOptions::default() };
        let mut opened = open_with(temp.path(), options, 0, None).unwrap();
        let head = append_all(&mut opened.journal, &payloads, group);
        drop(opened);
        let reopened = open_with(temp.path(), options, 0, None).unwrap();
        prop_assert_eq!(reopened.report.head, head);
        let visited: Vec<Vec<u8>> = reopened.visited.into_iter().map(|(_, payload)| payload).collect();
        prop_assert_eq!(visited, payloads.clone());
        prop_assert_eq!(verify(temp.path()).unwrap().events, payloads.len() as u64);
    }

    #[test]
    fn any_single_byte_flip_is_detected(
        payloads in payloads_strategy(),
        file_choice in any::<prop::sample::Index>(),
        byte_choice in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let temp = tempfile::tempdir().unwrap();
        write_journal(temp.path(), small_segments(1500), &payloads);
        let paths = segment_paths(temp.path());
        let path = &paths[file_choice.index(paths.len())];
        let bytes = fs::read(path).unwrap();
        let position = byte_choice.index(bytes.len());
        let expected_seq = owner_seq(&bytes, position);
        flip_byte(path, position, mask);

        let verified = verify(temp.path());
        let before = segment_contents(temp.path());
        match open_default(temp.path()) {
            Err(error) => {
                prop_assert_eq!(error.seq(), Some(expected_seq), "{}", error);
                prop_assert!(error.to_string().contains(&path.display().to_string()));
                prop_assert_eq!(&before, &segment_contents(temp.path()));
                let verify_error = verified.expect_err("verify must agree with open");
                prop_assert_eq!(verify_error.seq(), Some(expected_seq));
            }
            // The only acceptable success: the flip made the final record look torn, so
            // exactly that record (never acknowledged in that shape) is dropped.
            Ok(opened) => {
                prop_assert_eq!(opened.report.records, payloads.len() as u64 - 1);
                prop_assert!(opened.report.truncated_torn_bytes > 0);
                let visited: Vec<Vec<u8>> = opened.visited.into_iter().map(|(_, payload)| payload).collect();
                prop_assert_eq!(&visited[..], &payloads[..payloads.len() - 1]);
                prop_assert_eq!(verified.expect("verify must agree with open").events, payloads.len() as u64 - 1);
            }
        }
    }

    #[test]
    fn any_truncation_of_the_last_segment_keeps_a_valid_prefix(
        payloads in payloads_strategy(),
        cut_choice in any::<prop::sample::Index>(),
    ) {
        let temp = tempfile::tempdir().unwrap();
        write_journal(temp.path(), small_segments(1500), &payloads);
        let last = segment_paths(temp.path()).pop().unwrap();
        let bytes = fs::read(&last).unwrap();
        let cut = cut_choice.index(bytes.len() + 1);
        truncate(&last, cut as u64);
        let complete_records = record_spans(&bytes).iter().filter(|span| span.end() <= cut).count();
        let records_before_last = payloads.len() - record_spans(&bytes).len();

        let opened = open_default(temp.path()).unwrap();
        let kept = records_before_last + complete_records;
        prop_assert_eq!(opened.report.records, kept as u64);
        let visited: Vec<Vec<u8>> = opened.visited.into_iter().map(|(_, payload)| payload).collect();
        prop_assert_eq!(&visited[..], &payloads[..kept]);
    }
}
