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

/// Byte offset of the last record in a segment (walking the record headers).
fn last_record_start(segment: &[u8]) -> usize {
    let mut start = SEGMENT_HEADER_BYTES;
    let mut last = None;
    while start + RECORD_HEADER_BYTES <= segment.len() {
        let length = u32::from_le_bytes(segment[start + 4..start + 8].try_into().unwrap()) as usize;
        last = Some(start);
        start += RECORD_HEADER_BYTES + length;
    }
    assert_eq!(start, segment.len(), "the segment ends at a record boundary");
    last.expect("the segment holds a record")
}

/// A torn write of a record that was never acknowledged: the first bytes of a record header after the last
/// acknowledged record (a crash in the middle of a write that was never fsynced).
fn append_partial_record(data_dir: &Path) {
    let last = segments(data_dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let start = last_record_start(&bytes);
    let partial = bytes[start..start + RECORD_HEADER_BYTES - 16].to_vec();
    let mut file = std::fs::OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut file, &partial).unwrap();
}

#[test]
fn a_torn_final_record_is_dropped_and_earlier_state_survives() {
    let temp = tempfile::tempdir().unwrap();
    let (desk, client_id) = desk_with_deposits(temp.path(), "torn", 3);
    desk.crash();
    append_partial_record(temp.path());

    let desk = TestDesk::start_in(temp.path());
    assert_eq!(desk.available(&client_id, "USD"), "300.00");
    let references: Vec<String> =
        desk.ledger(&client_id, 100).iter().map(|e| e["reference"].as_str().unwrap().to_owned()).collect();
    assert_eq!(references, ["torn-ref-1", "torn-ref-2", "torn-ref-3"]);
    desk.deposit(&client_id, "USD", "100.00", "torn-ref-1").expect(200);
    desk.deposit(&client_id, "USD", "100.00", "torn-ref-4").expect(201);
    assert_eq!(desk.available(&client_id, "USD"), "400.00");
    assert!(desk.terminate().success());

    let verify = run_otcd(&["verify"], temp.path());
    assert!(
        verify.status.success(),
        "the journal continues cleanly after the torn record: {}",
        combined_output(&verify)
    );
    let desk = TestDesk::start_in(temp.path());
    assert_eq!(desk.available(&client_id, "USD"), "400.00");
}

/// Checkpoints that hold: the desk refuses to start, and `otcd verify` fails, when checkpoints.jsonl or the
/// journal is behind the high-water mark (journal.high-water).
mod rollback {
    use super::*;
    use otcd_testkit::process::Launch;

    const SERVE: [&str; 5] = ["serve", "--listen", "127.0.0.1:0", "--market", "manual"];

    fn checkpoints(data_dir: &Path) -> PathBuf {
        data_dir.join("checkpoints.jsonl")
    }

    fn checkpoint_lines(data_dir: &Path) -> Vec<String> {
        std::fs::read_to_string(checkpoints(data_dir)).unwrap().lines().map(str::to_owned).collect()
    }

    /// A cleanly stopped desk with deposits spread over several checkpoints (one at least every 100 ms).
    fn stopped_desk(data_dir: &Path, tag: &str) -> String {
        desk_with_spread_deposits(data_dir, tag, false)
    }

    /// Four deposits 250 ms apart, so each is signed by its own checkpoint; then a clean stop or a `kill -9`
    /// (which leaves no snapshot at the head: only the checkpoints can tell that records were cut).
    fn desk_with_spread_deposits(data_dir: &Path, tag: &str, crash: bool) -> String {
        let desk = TestDesk::start_in(data_dir);
        let client_id = desk.new_client("Rollback Target");
        for index in 1..=4 {
            desk.deposit(&client_id, "USD", "100.00", &format!("{tag}-ref-{index}")).expect(201);
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        if crash {
            desk.crash();
        } else {
            assert!(desk.terminate().success());
        }
        assert!(checkpoint_lines(data_dir).len() >= 3, "a checkpoint at least every 100 ms while records arrive");
        client_id
    }

    /// `otcd serve` and `otcd verify` both refuse, naming the checkpoints file or the mark and the way out.
    fn assert_refused(data_dir: &Path, what: &str) {
        let serve = run_otcd(&SERVE, data_dir);
        let text = combined_output(&serve);
        assert!(!serve.status.success(), "serve started after {what}: {text}");
        assert!(text.contains("rollback detected") && text.contains("--accept-rollback"), "serve after {what}: {text}");
        assert!(text.contains("checkpoints.jsonl") || text.contains("journal"), "serve must name the file: {text}");
        let verify = run_otcd(&["verify"], data_dir);
        let text = combined_output(&verify);
        assert!(!verify.status.success(), "verify passed after {what}: {text}");
        assert!(text.contains("rollback detected"), "verify after {what}: {text}");
    }

    #[test]
    fn a_deleted_checkpoints_file_is_refused_until_the_operator_accepts_the_rollback() {
        let temp = tempfile::tempdir().unwrap();
        let client_id = stopped_desk(temp.path(), "deleted");
        std::fs::remove_file(checkpoints(temp.path())).unwrap();
        assert_refused(temp.path(), "deleting checkpoints.jsonl");

        let desk = Launch::default().data_dir(temp.path()).args(&["--accept-rollback"]).start();
        assert_eq!(desk.available(&client_id, "USD"), "400.00");
        assert!(desk.terminate().success());
        let verify = run_otcd(&["verify"], temp.path());
        assert!(verify.status.success(), "verify after an accepted rollback: {}", combined_output(&verify));
        let desk = TestDesk::start_in(temp.path());
        assert_eq!(desk.available(&client_id, "USD"), "400.00");
    }

    #[test]
    fn a_deleted_last_checkpoint_line_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        stopped_desk(temp.path(), "line");
        let mut lines = checkpoint_lines(temp.path());
        lines.pop();
        std::fs::write(checkpoints(temp.path()), lines.iter().map(|line| format!("{line}\n")).collect::<String>())
            .unwrap();
        assert_refused(temp.path(), "deleting the last checkpoint line");
    }

    #[test]
    fn records_cut_at_a_record_boundary_with_their_checkpoint_line_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        desk_with_spread_deposits(temp.path(), "cut", true);
        let last = segments(temp.path()).pop().unwrap();
        let bytes = std::fs::read(&last).unwrap();
        let start = last_record_start(&bytes);
        std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(start as u64).unwrap();
        let mut lines = checkpoint_lines(temp.path());
        lines.pop();
        std::fs::write(checkpoints(temp.path()), lines.iter().map(|line| format!("{line}\n")).collect::<String>())
            .unwrap();
        assert_refused(temp.path(), "cutting the last record and its checkpoint line");
    }

    #[test]
    fn a_signed_record_cut_at_a_boundary_or_mid_record_is_refused() {
        for (tag, keep) in [("boundary", 0), ("middle", 30)] {
            let temp = tempfile::tempdir().unwrap();
            stopped_desk(temp.path(), tag);
            let last = segments(temp.path()).pop().unwrap();
            let bytes = std::fs::read(&last).unwrap();
            let cut = last_record_start(&bytes) + keep;
            std::fs::OpenOptions::new().write(true).open(&last).unwrap().set_len(cut as u64).unwrap();
            let serve = run_otcd(&SERVE, temp.path());
            assert!(!serve.status.success(), "serve started after a {tag} cut: {}", combined_output(&serve));
            let verify = run_otcd(&["verify"], temp.path());
            assert!(!verify.status.success(), "verify passed a {tag} cut: {}", combined_output(&verify));
        }
    }

    #[test]
    fn an_undamaged_desk_and_a_fresh_desk_start() {
        let temp = tempfile::tempdir().unwrap();
        let client_id = stopped_desk(temp.path(), "intact");
        assert!(temp.path().join("journal.high-water").exists(), "the mark is written beside checkpoints.jsonl");
        let verify = run_otcd(&["verify"], temp.path());
        assert!(verify.status.success(), "verify of an intact desk: {}", combined_output(&verify));
        let desk = TestDesk::start_in(temp.path());
        assert_eq!(desk.available(&client_id, "USD"), "400.00");
        assert!(desk.terminate().success());

        let fresh = tempfile::tempdir().unwrap();
        let desk = TestDesk::start_in(fresh.path());
        desk.new_client("Fresh");
        desk.crash();
        let desk = TestDesk::start_in(fresh.path());
        assert!(desk.terminate().success());
    }
}

/// The checkpoint witness (`checkpoint_witness_file`): a copy of every checkpoint outside the data directory
/// catches a rollback of the whole directory, which the directory alone cannot show.
mod witness {
    use super::*;
    use otcd_testkit::process::Launch;

    const SERVE: [&str; 5] = ["serve", "--listen", "127.0.0.1:0", "--market", "manual"];

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn witnessed(data_dir: &Path, witness: &Path, extra: &[&str]) -> TestDesk {
        let mut args = vec!["--checkpoint-witness-file", witness.to_str().unwrap()];
        args.extend_from_slice(extra);
        Launch::default().data_dir(data_dir).args(&args).start()
    }

    #[test]
    fn a_whole_data_directory_restored_from_an_older_copy_is_caught_by_the_witness() {
        let temp = tempfile::tempdir().unwrap();
        let (data_dir, backup) = (temp.path().join("desk"), temp.path().join("backup"));
        let witness = temp.path().join("elsewhere").join("witness.jsonl");
        std::fs::create_dir_all(witness.parent().unwrap()).unwrap();

        let desk = witnessed(&data_dir, &witness, &[]);
        let client_id = desk.new_client("Witnessed");
        desk.deposit(&client_id, "USD", "100.00", "witness-ref-1").expect(201);
        assert!(desk.terminate().success());
        copy_dir(&data_dir, &backup);
        let desk = witnessed(&data_dir, &witness, &[]);
        for index in 2..=3 {
            desk.deposit(&client_id, "USD", "100.00", &format!("witness-ref-{index}")).expect(201);
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        desk.crash();
        let witness_lines = std::fs::read_to_string(&witness).unwrap().lines().count();
        assert!(witness_lines >= 3, "every checkpoint is witnessed ({witness_lines} lines)");

        // Journal, checkpoints and mark restored together: consistent, so the directory alone cannot tell.
        std::fs::remove_dir_all(&data_dir).unwrap();
        copy_dir(&backup, &data_dir);
        let verify = run_otcd(&["verify"], &data_dir);
        assert!(verify.status.success(), "without the witness the rollback is invisible: {}", combined_output(&verify));

        let witness_arg = witness.to_str().unwrap();
        let verify = run_otcd(&["verify", "--witness", witness_arg], &data_dir);
        let text = combined_output(&verify);
        assert!(!verify.status.success(), "verify --witness passed a rolled-back directory: {text}");
        assert!(text.contains("rollback detected by the checkpoint witness"), "{text}");
        let serve = run_otcd(&[&SERVE[..], &["--checkpoint-witness-file", witness_arg]].concat(), &data_dir);
        let text = combined_output(&serve);
        assert!(!serve.status.success(), "serve started behind its witness: {text}");
        assert!(text.contains("witness") && text.contains("--accept-rollback"), "{text}");
        assert_eq!(
            std::fs::read_to_string(&witness).unwrap().lines().count(),
            witness_lines,
            "a refusal writes nothing"
        );

        // The operator knowingly restored the backup: the old witness is kept aside, a new one begins.
        let desk = witnessed(&data_dir, &witness, &["--accept-rollback"]);
        assert_eq!(desk.available(&client_id, "USD"), "100.00");
        assert!(desk.terminate().success());
        let aside: Vec<_> = std::fs::read_dir(witness.parent().unwrap())
            .unwrap()
            .filter_map(|entry| entry.ok().map(|entry| file_name(&entry.path())))
            .filter(|name| name.starts_with("witness.jsonl.rolled-back-"))
            .collect();
        assert_eq!(aside.len(), 1, "the old witness is kept as evidence");
        let verify = run_otcd(&["verify", "--witness", witness_arg], &data_dir);
        let text = combined_output(&verify);
        assert!(verify.status.success() && text.contains("witness agrees"), "{text}");
    }

    #[test]
    fn a_witness_given_in_the_config_file_follows_the_desk_and_verify_agrees() {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().join("desk");
        let witness = temp.path().join("witness.jsonl");
        let config = format!("checkpoint_witness_file = {:?}\n", witness.to_str().unwrap());
        let desk = Launch::default().data_dir(&data_dir).config(&config).start();
        let client_id = desk.new_client("Configured");
        desk.deposit(&client_id, "USD", "100.00", "configured-ref-1").expect(201);
        assert!(desk.terminate().success());
        let local = std::fs::read_to_string(data_dir.join("checkpoints.jsonl")).unwrap();
        assert_eq!(std::fs::read_to_string(&witness).unwrap(), local, "the witness holds every checkpoint line");
        let verify = run_otcd(&["verify", "--witness", witness.to_str().unwrap()], &data_dir);
        assert!(verify.status.success(), "{}", combined_output(&verify));
    }
}
