//! Tamper tests of the audit trail: signed checkpoints against the journal, and export bundles.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::{
    export, read_checkpoints, verify_audit, verify_export, Anchor, AuditError, ChainHead, Checkpoint, CheckpointError,
    CheckpointLog, ExportWindow, FileJournal, Journal, JournalError, JournalOptions, SignatureCheck, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};

const RECORDS: u64 = 30;
const CHECKPOINT_EVERY: u64 = 10;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[8; 32])
}

/// Fixed-length payloads that start with their timestamp: seq n is stamped at 1_000_000 + n * 1000 ms.
fn payload(seq: u64) -> Vec<u8> {
    format!("{:013}|record {seq:04}", 1_000_000 + seq * 1000).into_bytes()
}

fn timestamp_of(payload: &[u8]) -> Option<i64> {
    std::str::from_utf8(payload.get(..13)?).ok()?.parse().ok()
}

fn record_len() -> usize {
    RECORD_HEADER_LEN + payload(1).len()
}

struct Desk {
    _temp: tempfile::TempDir,
    journal: PathBuf,
    checkpoints: PathBuf,
}

/// A journal of `RECORDS` records with a checkpoint every `CHECKPOINT_EVERY`, written the way the
/// runner does: sync, then checkpoint the durable head.
fn desk() -> Desk {
    let temp = tempfile::tempdir().unwrap();
    let journal_dir = temp.path().join("journal");
    let checkpoints = temp.path().join("checkpoints.jsonl");
    let (mut journal, _) = FileJournal::open(&journal_dir, JournalOptions::default(), 0, None, |_, _| Ok(())).unwrap();
    let (mut log, _) = CheckpointLog::open(&checkpoints, key()).unwrap();
    for seq in 1..=RECORDS {
        journal.append(&payload(seq)).unwrap();
        if seq % CHECKPOINT_EVERY == 0 {
            let head = journal.sync().unwrap();
            log.append(head, seq as i64).unwrap();
        }
    }
    Desk { _temp: temp, journal: journal_dir, checkpoints }
}

fn segment(desk: &Desk) -> PathBuf {
    desk.journal.join(crate::segment_file_name(1))
}

/// Byte offset of record `seq` in the single segment.
fn offset_of(seq: u64) -> usize {
    SEGMENT_HEADER_LEN + (seq as usize - 1) * record_len()
}

fn verify(desk: &Desk) -> Result<crate::AuditReport, AuditError> {
    verify_audit(&desk.journal, &desk.checkpoints, &key().verifying_key())
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();
}

#[test]
fn an_intact_desk_verifies_with_its_checkpoints() {
    let desk = desk();
    let report = verify(&desk).unwrap();
    assert_eq!(report.journal.events, RECORDS);
    assert_eq!(report.checkpoints, 3);
    assert_eq!(report.last_checkpoint.unwrap().seq, 30);
    assert_eq!(report.unanchored_records, 0);
    let file = read_checkpoints(&desk.checkpoints, SignatureCheck::All(&key().verifying_key())).unwrap();
    assert_eq!(file.checkpoints.iter().map(|checkpoint| checkpoint.index).collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn a_changed_byte_names_its_record() {
    let desk = desk();
    let mut bytes = std::fs::read(segment(&desk)).unwrap();
    bytes[offset_of(14) + RECORD_HEADER_LEN + 15] ^= 0x01;
    std::fs::write(segment(&desk), &bytes).unwrap();
    let error = verify(&desk).unwrap_err();
    assert_eq!(error.seq(), Some(14), "{error}");
    assert!(error.to_string().contains("seq 14"), "{error}");
}

#[test]
fn a_deleted_record_in_the_middle_is_a_gap() {
    let desk = desk();
    let mut bytes = std::fs::read(segment(&desk)).unwrap();
    bytes.drain(offset_of(12)..offset_of(13));
    std::fs::write(segment(&desk), &bytes).unwrap();
    let error = verify(&desk).unwrap_err();
    assert!(matches!(error, AuditError::Journal(JournalError::Gap { expected: 12, found: 13, .. })), "{error}");
    assert!(error.to_string().contains("expected record seq 12"), "{error}");
}

#[test]
fn a_reordered_pair_of_records_is_detected_at_the_first() {
    let desk = desk();
    let mut bytes = std::fs::read(segment(&desk)).unwrap();
    let (five, six) = (offset_of(5), offset_of(6));
    let record_five = bytes[five..six].to_vec();
    let record_six = bytes[six..six + record_len()].to_vec();
    bytes[five..six].copy_from_slice(&record_six);
    bytes[six..six + record_len()].copy_from_slice(&record_five);
    std::fs::write(segment(&desk), &bytes).unwrap();
    let error = verify(&desk).unwrap_err();
    assert!(matches!(error, AuditError::Journal(JournalError::Gap { expected: 5, found: 6, .. })), "{error}");
}

#[test]
fn a_cleanly_truncated_tail_after_a_checkpoint_is_detected() {
    let desk = desk();
    // Whole records 26..=30 removed: checksums and chain of what is left are perfect.
    let file = std::fs::OpenOptions::new().write(true).open(segment(&desk)).unwrap();
    file.set_len(offset_of(26) as u64).unwrap();
    drop(file);
    assert_eq!(crate::verify(&desk.journal).unwrap().events, 25, "the record chain alone cannot see it");
    let error = verify(&desk).unwrap_err();
    assert_eq!((error.checkpoint_index(), error.seq()), (Some(3), Some(30)), "{error}");
    let message = error.to_string();
    assert!(message.contains("checkpoint #3") && message.contains("seq 26 onwards were removed"), "{message}");
    // The desk refuses to start on it too.
    let anchors = [Anchor::checkpoint(
        3,
        read_checkpoints(&desk.checkpoints, SignatureCheck::None).unwrap().checkpoints[2].head(),
    )];
    let opened = FileJournal::open_anchored(&desk.journal, JournalOptions::default(), 0, &anchors, |_, _| Ok(()));
    assert!(matches!(opened, Err(JournalError::CheckpointMismatch { index: 3, seq: 30, .. })));
}

#[test]
fn a_replaced_tail_with_a_recomputed_chain_is_detected_by_the_checkpoint() {
    let desk = desk();
    let before = std::fs::read_to_string(&desk.checkpoints).unwrap();
    // Rewrite the journal from scratch with records 22..=30 changed: a fully consistent chain.
    std::fs::remove_dir_all(&desk.journal).unwrap();
    let (mut journal, _) = FileJournal::open(&desk.journal, JournalOptions::default(), 0, None, |_, _| Ok(())).unwrap();
    for seq in 1..=RECORDS {
        let mut bytes = payload(seq);
        if seq >= 22 {
            bytes[14] = b'R';
        }
        journal.append(&bytes).unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    assert!(crate::verify(&desk.journal).is_ok());
    assert_eq!(std::fs::read_to_string(&desk.checkpoints).unwrap(), before);
    let error = verify(&desk).unwrap_err();
    assert!(
        matches!(error, AuditError::Journal(JournalError::CheckpointMismatch { index: 3, seq: 30, .. })),
        "{error}"
    );
}

#[test]
fn a_checkpoint_signed_with_another_key_is_forged() {
    let desk = desk();
    let mut lines = lines(&desk.checkpoints);
    let original: Checkpoint = serde_json::from_str(&lines[1]).unwrap();
    let forged =
        Checkpoint::sign(2, original.head(), original.timestamp_ms, original.prev_checkpoint_hash, &other_key());
    lines[1] = forged.to_line().trim_end().to_owned();
    write_lines(&desk.checkpoints, &lines);
    let error = verify(&desk).unwrap_err();
    assert!(matches!(error, AuditError::Checkpoint(CheckpointError::Signature { index: 2, seq: 20, .. })), "{error}");
    assert!(error.to_string().contains("checkpoint #2 (seq 20)") && error.to_string().contains("invalid signature"));
}

#[test]
fn a_changed_checkpoint_field_breaks_its_signature() {
    let desk = desk();
    let mut lines = lines(&desk.checkpoints);
    let mut edited: Checkpoint = serde_json::from_str(&lines[1]).unwrap();
    edited.timestamp_ms += 1;
    lines[1] = edited.to_line().trim_end().to_owned();
    write_lines(&desk.checkpoints, &lines);
    let error = verify(&desk).unwrap_err();
    assert_eq!(error.checkpoint_index(), Some(2), "{error}");
    assert!(error.to_string().contains("invalid signature"), "{error}");
}

#[test]
fn a_deleted_checkpoint_line_in_the_middle_breaks_the_checkpoint_chain() {
    let desk = desk();
    let mut lines = lines(&desk.checkpoints);
    lines.remove(1);
    write_lines(&desk.checkpoints, &lines);
    let error = verify(&desk).unwrap_err();
    assert!(matches!(error, AuditError::Checkpoint(CheckpointError::Chain { index: 2, seq: 30, .. })), "{error}");
    assert!(error.to_string().contains("checkpoint #2 was expected"), "{error}");
}

#[test]
fn a_torn_checkpoint_line_is_cut_off_and_the_next_checkpoint_continues_the_chain() {
    let desk = desk();
    let mut bytes = std::fs::read(&desk.checkpoints).unwrap();
    bytes.extend_from_slice(b"{\"index\":4,\"seq\":3");
    std::fs::write(&desk.checkpoints, &bytes).unwrap();
    let report = verify(&desk).unwrap();
    assert_eq!((report.checkpoints, report.checkpoint_torn_bytes), (3, 18));
    let (mut log, file) = CheckpointLog::open(&desk.checkpoints, key()).unwrap();
    assert_eq!(file.torn_bytes, 18);
    let refused = log.append(ChainHead { seq: 30, hash: [0; 32] }, 0).unwrap_err();
    assert!(refused.to_string().contains("already covers"), "{refused}");
    drop(log);
    assert_eq!(verify(&desk).unwrap().checkpoint_torn_bytes, 0);
}

#[test]
fn opening_the_checkpoint_log_with_another_key_fails() {
    let desk = desk();
    let error = CheckpointLog::open(&desk.checkpoints, other_key()).err().expect("wrong key refused");
    assert!(matches!(error, CheckpointError::Signature { index: 3, .. }), "{error}");
}

fn window(from_seq: u64, to_seq: u64) -> ExportWindow {
    let ms = |seq: u64| 1_000_000 + seq as i64 * 1000;
    ExportWindow { from_ms: ms(from_seq), to_ms: ms(to_seq), from: "from".into(), to: "to".into() }
}

fn export_bundle(
    desk: &Desk,
    window: &ExportWindow,
    limit: usize,
) -> Result<(crate::ExportSummary, String), AuditError> {
    let mut out = Vec::new();
    let summary =
        export(&desk.journal, &desk.checkpoints, &key().verifying_key(), window, limit, timestamp_of, &mut out)?;
    Ok((summary, String::from_utf8(out).unwrap()))
}

fn verify_bundle(bundle: &str) -> Result<crate::ExportReport, AuditError> {
    verify_export(bundle.as_bytes(), Some(&key().verifying_key()))
}

#[test]
fn an_export_is_anchored_at_both_ends_and_verifies_on_its_own() {
    let desk = desk();
    // Records 13..=16 are in the window; 11..=12 lead back to checkpoint #1 (seq 10), 17..=20 reach #2.
    let (summary, bundle) = export_bundle(&desk, &window(13, 17), 1000).unwrap();
    assert_eq!((summary.window_first_seq, summary.window_last_seq), (13, 16));
    assert_eq!((summary.first_seq, summary.last_seq, summary.records), (11, 20, 10));
    assert_eq!(summary.start_anchor, "checkpoint #1");
    assert_eq!(summary.checkpoints, 2);
    let report = verify_bundle(&bundle).unwrap();
    assert_eq!((report.window_first_seq, report.window_last_seq, report.window_records), (13, 16, 4));
    assert_eq!(report.anchor, (2, 20));
    assert_eq!(report.start_anchor, "checkpoint #1");
    // With the key the bundle names (no --public-key) it verifies too; with another key it does not.
    assert!(verify_export(bundle.as_bytes(), None).is_ok());
    let error = verify_export(bundle.as_bytes(), Some(&other_key().verifying_key())).unwrap_err();
    assert!(matches!(error, AuditError::KeyMismatch { .. }), "{error}");
}

#[test]
fn an_export_ending_on_a_checkpoint_and_one_from_genesis_verify() {
    let desk = desk();
    let (summary, bundle) = export_bundle(&desk, &window(1, 11), 1000).unwrap();
    assert_eq!((summary.first_seq, summary.last_seq, summary.start_anchor.as_str()), (1, 10, "genesis"));
    assert_eq!(verify_bundle(&bundle).unwrap().anchor, (1, 10));
    let (summary, bundle) = export_bundle(&desk, &window(25, 99), 1000).unwrap();
    assert_eq!((summary.window_first_seq, summary.window_last_seq, summary.last_seq), (25, 30, 30));
    verify_bundle(&bundle).unwrap();
}

fn edit_line(bundle: &str, line: usize, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut lines: Vec<String> = bundle.lines().map(str::to_owned).collect();
    let mut value: serde_json::Value = serde_json::from_str(&lines[line - 1]).unwrap();
    edit(&mut value);
    lines[line - 1] = value.to_string();
    lines.join("\n") + "\n"
}

#[test]
fn an_export_with_one_record_altered_is_refused_naming_the_seq() {
    let desk = desk();
    let (_, bundle) = export_bundle(&desk, &window(13, 17), 1000).unwrap();
    // Line 1 is the header, line 2 is seq 11, so seq 14 is line 5.
    let altered = edit_line(&bundle, 5, |record| {
        assert_eq!(record["seq"], 14);
        record["payload"] = serde_json::Value::String(record["payload"].as_str().unwrap().replace("record", "RECORD"));
    });
    let error = verify_bundle(&altered).unwrap_err();
    assert_eq!(error.seq(), Some(14), "{error}");
    let message = error.to_string();
    assert!(message.contains("line 5, record seq 14") && message.contains("does not hash"), "{message}");

    // Altering the payload and its hash moves the break to the next record.
    let rehashed = edit_line(&bundle, 5, |record| {
        let text = record["payload"].as_str().unwrap().replace("record", "RECORD");
        let prev: [u8; 32] = hex::decode(record["prev_hash"].as_str().unwrap()).unwrap().try_into().unwrap();
        record["hash"] = hex::encode(crate::chain_hash(&prev, 14, text.as_bytes())).into();
        record["payload"] = text.into();
    });
    let error = verify_bundle(&rehashed).unwrap_err();
    assert_eq!(error.seq(), Some(15), "{error}");
    assert!(error.to_string().contains("is not the hash of seq 14"), "{error}");
}

#[test]
fn an_export_with_a_record_removed_or_a_checkpoint_forged_is_refused() {
    let desk = desk();
    let (_, bundle) = export_bundle(&desk, &window(13, 17), 1000).unwrap();
    let mut lines: Vec<&str> = bundle.lines().collect();
    lines.remove(5);
    let error = verify_bundle(&(lines.join("\n") + "\n")).unwrap_err();
    assert_eq!(error.seq(), Some(15), "{error}");
    assert!(error.to_string().contains("line 6, record seq 15: missing"), "{error}");

    let total = bundle.lines().count();
    let forged = edit_line(&bundle, total, |line| {
        line["checkpoint"]["timestamp_ms"] = 5.into();
    });
    let error = verify_bundle(&forged).unwrap_err();
    assert_eq!((error.checkpoint_index(), error.seq()), (Some(2), Some(20)), "{error}");
    assert!(error.to_string().contains("invalid signature"), "{error}");

    // Cutting the trailing records and the anchor leaves the window's end unsigned.
    let unanchored: Vec<&str> = bundle.lines().take(1 + 6).collect();
    let error = verify_bundle(&(unanchored.join("\n") + "\n")).unwrap_err();
    assert!(error.to_string().contains("header states") || error.to_string().contains("not covered"), "{error}");
}

#[test]
fn export_refuses_empty_too_large_and_unanchored_windows() {
    let desk = desk();
    assert!(matches!(export_bundle(&desk, &window(40, 50), 1000), Err(AuditError::EmptyWindow { .. })));
    let error = export_bundle(&desk, &window(1, 30), 5).unwrap_err();
    assert!(matches!(error, AuditError::TooLarge { limit: 5, first_seq: 1 }), "{error}");
    // Records after the last checkpoint are not anchored yet.
    let (mut journal, _) = FileJournal::open(&desk.journal, JournalOptions::default(), 0, None, |_, _| Ok(())).unwrap();
    journal.append(&payload(31)).unwrap();
    journal.sync().unwrap();
    drop(journal);
    let error = export_bundle(&desk, &window(29, 99), 1000).unwrap_err();
    assert!(matches!(error, AuditError::NotAnchored { seq: 31 }), "{error}");
}
