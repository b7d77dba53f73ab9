mod common;

use std::fs;

use common::*;
use otcd_journal::{snapshot_file_name, ChainHead, Journal, JournalOptions, Snapshot, SnapshotStore};

fn head(seq: u64) -> ChainHead {
    ChainHead { seq, hash: [seq as u8; 32] }
}

fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn empty_store_has_no_snapshot() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(&temp.path().join("snapshots")).unwrap();
    assert_eq!(store.load_newest().unwrap(), None);
}

#[test]
fn newest_snapshot_is_loaded() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(temp.path()).unwrap();
    store.write(head(10), b"state at ten").unwrap();
    store.write(head(20), b"state at twenty").unwrap();
    let loaded = store.load_newest().unwrap().unwrap();
    assert_eq!(loaded, Snapshot { at: head(20), state: b"state at twenty".to_vec() });
}

#[test]
fn only_the_newest_two_are_kept() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(temp.path()).unwrap();
    for seq in [5, 10, 15, 20, 25] {
        store.write(head(seq), format!("state {seq}").as_bytes()).unwrap();
    }
    assert_eq!(snapshot_files(temp.path()), vec![snapshot_file_name(20), snapshot_file_name(25)]);
}

#[test]
fn damaged_newest_falls_back_to_the_older_one() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(temp.path()).unwrap();
    store.write(head(10), b"older state").unwrap();
    store.write(head(20), b"newer state").unwrap();
    flip_byte(&temp.path().join(snapshot_file_name(20)), 100, 0x01);
    let loaded = store.load_newest().unwrap().unwrap();
    assert_eq!(loaded.at, head(10));
    assert_eq!(loaded.state, b"older state");
}

#[test]
fn truncated_newest_falls_back_and_all_damaged_means_none() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(temp.path()).unwrap();
    store.write(head(10), b"older state").unwrap();
    store.write(head(20), b"newer state").unwrap();
    truncate(&temp.path().join(snapshot_file_name(20)), 50);
    assert_eq!(store.load_newest().unwrap().unwrap().at, head(10));
    flip_byte(&temp.path().join(snapshot_file_name(10)), 13, 0x01);
    assert_eq!(store.load_newest().unwrap(), None);
}

#[test]
fn leftover_temp_files_are_ignored_and_cleaned_up() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(temp.path()).unwrap();
    store.write(head(10), b"state").unwrap();
    let leftover = temp.path().join(format!("{}.tmp", snapshot_file_name(30)));
    fs::write(&leftover, b"half written").unwrap();
    assert_eq!(store.load_newest().unwrap().unwrap().at, head(10));
    let store = SnapshotStore::new(temp.path()).unwrap();
    assert!(!leftover.exists());
    assert_eq!(store.load_newest().unwrap().unwrap().at, head(10));
}

#[test]
fn snapshot_plus_journal_replay_restores_everything() {
    let temp = tempfile::tempdir().unwrap();
    let journal_dir = temp.path().join("journal");
    let store = SnapshotStore::new(&temp.path().join("snapshots")).unwrap();
    let payloads = sample_payloads(40);
    let mut opened = open_default(&journal_dir).unwrap();
    let at = append_all(&mut opened.journal, &payloads[..25], 10);
    store.write(at, b"state after 25").unwrap();
    append_all(&mut opened.journal, &payloads[25..], 10);
    assert_eq!(opened.journal.durable_head().seq, 40);
    drop(opened);

    let snapshot = store.load_newest().unwrap().unwrap();
    let reopened = open_with(&journal_dir, JournalOptions::default(), snapshot.at.seq, Some(snapshot.at)).unwrap();
    let replayed: Vec<Vec<u8>> = reopened.visited.into_iter().map(|(_, payload)| payload).collect();
    assert_eq!(replayed, payloads[25..]);
}

#[test]
fn snapshot_and_journal_may_share_a_directory() {
    let temp = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(temp.path()).unwrap();
    let at = write_journal(temp.path(), JournalOptions::default(), &sample_payloads(5));
    store.write(at, b"state").unwrap();
    let opened = open_with(temp.path(), JournalOptions::default(), at.seq, Some(at)).unwrap();
    assert_eq!(opened.report.records, 5);
}
