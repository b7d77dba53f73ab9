//! The tamper-evident journal: `otcd verify` on intact, edited and torn data directories, and `otcd serve`
//! refusing to start on an edited one.

use otcd_testkit::process::{combined_output, run_otcd, TestDesk};
use std::path::{Path, PathBuf};

/// Segment file header and record header lengths (see otcd-journal's format notes).
const SEGMENT_HEADER_BYTES: usize = 24;
const RECORD_HEADER_BYTES: usize = 56;

fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("journal"))
        .expect("a journal directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no journal segments in {}", data_dir.display());
    files
}

/// The seq of the record whose bytes include `offset`, walking the record headers of a segment.
fn seq_of_record_at(segment: &[u8], offset: usize) -> u64 {
    let mut start = SEGMENT_HEADER_BYTES;
    while start + RECORD_HEADER_BYTES <= segment.len() {
        let length = u32::from_le_bytes(segment[start + 4..start + 8].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(segment[start + 8..start + 16].try_into().unwrap());
        if offset < start + RECORD_HEADER_BYTES + length {
            assert!(offset >= start + RECORD_HEADER_BYTES, "offset {offset} is in the header of record {seq}");
            return seq;
        }
        start += RECORD_HEADER_BYTES + length;
    }
    panic!("offset {offset} is past the last record");
}

/// Flips one bit of the first occurrence of `needle` in the journal; returns the segment and the record's seq.
fn flip_byte_inside(data_dir: &Path, needle: &str) -> (PathBuf, u64) {
    for segment in segments(data_dir) {
        let mut bytes = std::fs::read(&segment).unwrap();
        let Some(found) = bytes.windows(needle.len()).position(|window| window == needle.as_bytes()) else { continue };
        let offset = found + needle.len() / 2;
        bytes[offset] ^= 0x01;
        std::fs::write(&segment, &bytes).unwrap();
        return (segment, seq_of_record_at(&bytes, offset));
    }
    panic!("{needle:?} is not in any journal segment");
}

/// True when `text` says "seq N" (allowing `seq=N`, `seq: N`, `seq #N`).
fn names_seq(text: &str, seq: u64) -> bool {
    let lower = text.to_lowercase();
    let wanted = seq.to_string();
    lower.match_indices("seq").any(|(position, _)| {
        let rest = lower[position + 3..].trim_start_matches([' ', '=', ':', '#']);
        rest.starts_with(&wanted) && !rest[wanted.len()..].starts_with(|c: char| c.is_ascii_digit())
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A desk with `deposits` USD deposits of 100.00 each, referenced `{tag}-ref-{n}` (n from 1).
/// Journal records: 1 initializes the desk, 2 creates the client, deposit n is record 2 + n.
fn desk_with_deposits(data_dir: &Path, tag: &str, deposits: usize) -> (TestDesk, String) {
    let desk = TestDesk::start_in(data_dir);
    let client_id = desk.new_client("Tamper Target");
    for index in 1..=deposits {
        desk.deposit(&client_id, "USD", "100.00", &format!("{tag}-ref-{index}")).expect(201);
    }
    (desk, client_id)
}

#[test]
fn verify_passes_an_intact_journal_and_counts_its_events() {
    let temp = tempfile::tempdir().unwrap();
    let (desk, _) = desk_with_deposits(temp.path(), "intact", 4);
    assert!(desk.terminate().success());
    let output = run_otcd(&["verify"], temp.path());
    let text = combined_output(&output);
    assert!(output.status.success(), "verify failed on an intact journal: {text}");
    let numbers: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).collect();
    assert!(numbers.contains(&"6"), "verify must print the event count (6): {text}");
}

#[test]
fn a_flipped_byte_is_named_by_verify_and_stops_serve() {
    let temp = tempfile::tempdir().unwrap();
    let (desk, _) = desk_with_deposits(temp.path(), "tamper", 4);
    assert!(desk.terminate().success());
    let (segment, seq) = flip_byte_inside(temp.path(), "tamper-ref-2");
    assert_eq!(seq, 4, "the second deposit is the fourth record");

    let verify = run_otcd(&["verify"], temp.path());
    let text = combined_output(&verify);
    assert!(!verify.status.success(), "verify passed an edited journal: {text}");
    assert!(names_seq(&text, seq), "verify must name seq {seq}: {text}");
    assert!(text.contains(&file_name(&segment)), "verify must name {}: {text}", segment.display());

    let serve = run_otcd(&["serve", "--listen", "127.0.0.1:0", "--market", "manual"], temp.path());
    let text = combined_output(&serve);
    assert!(!serve.status.success(), "serve started on an edited journal: {text}");
    assert!(names_seq(&text, seq), "serve must name seq {seq}: {text}");
}

#[test]
fn a_flipped_byte_in_a_crashed_desks_journal_is_found_too() {
    let temp = tempfile::tempdir().unwrap();
    let (desk, _) = desk_with_deposits(temp.path(), "crashed", 5);
    desk.crash();
    let (segment, seq) = flip_byte_inside(temp.path(), "crashed-ref-3");
    assert_eq!(seq, 5);
    let verify = run_otcd(&["verify"], temp.path());
    let text = combined_output(&verify);
    assert!(!verify.status.success() && names_seq(&text, seq), "verify output: {text}");
    assert!(text.contains(&file_name(&segment)), "verify must name the file: {text}");
    let serve = run_otcd(&["serve", "--listen", "127.0.0.1:0"], temp.path());
    assert!(!serve.status.success(), "serve started on an edited journal: {}", combined_output(&serve));
}

#[test]
fn a_torn_final_record_is_dropped_and_earlier_state_survives() {
    let temp = tempfile::tempdir().unwrap();
    let (desk, client_id) = desk_with_deposits(temp.path(), "torn", 3);
    desk.crash();
    let last = segments(temp.path()).pop().unwrap();
    let length = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(length - 5).unwrap();

    let desk = TestDesk::start_in(temp.path());
    assert_eq!(desk.available(&client_id, "USD"), "200.00");
    let references: Vec<String> =
        desk.ledger(&client_id, 100).iter().map(|e| e["reference"].as_str().unwrap().to_owned()).collect();
    assert_eq!(references, ["torn-ref-1", "torn-ref-2"]);
    desk.deposit(&client_id, "USD", "100.00", "torn-ref-1").expect(200);
    desk.deposit(&client_id, "USD", "100.00", "torn-ref-3").expect(201);
    assert_eq!(desk.available(&client_id, "USD"), "300.00");
    assert!(desk.terminate().success());

    let verify = run_otcd(&["verify"], temp.path());
    assert!(
        verify.status.success(),
        "the journal continues cleanly after the torn record: {}",
        combined_output(&verify)
    );
    let desk = TestDesk::start_in(temp.path());
    assert_eq!(desk.available(&client_id, "USD"), "300.00");
}
