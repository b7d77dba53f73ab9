//! The audit trail, black-box: signed checkpoints published by a running desk, `otcd verify` against them
//! (intact, after kill -9, and with a truncated journal tail, a forged or deleted checkpoint), and export
//! bundles from the API and the CLI checked by `otcd verify --export`.

use otcd_testkit::process::{combined_output, run_otcd, TestDesk};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEGMENT_HEADER_BYTES: usize = 24;
const RECORD_HEADER_BYTES: usize = 56;

/// Checkpoints every 3 records and every 200 ms.
const CHECKPOINT_CONFIG: &str = "checkpoint_every_records = 3\ncheckpoint_every_ms = 200\n";

/// A desk on `data_dir` with [`CHECKPOINT_CONFIG`].
fn start(data_dir: &Path) -> TestDesk {
    TestDesk::launch().data_dir(data_dir).config(CHECKPOINT_CONFIG).start()
}

/// A desk with a client and `deposits` deposits: records 1 (desk), 2 (client), 3.. (deposits).
fn session(data_dir: &Path, tag: &str, deposits: usize) -> (TestDesk, String) {
    let desk = start(data_dir);
    let client_id = desk.new_client("Audit Target");
    for index in 1..=deposits {
        desk.deposit(&client_id, "USD", "10.00", &format!("{tag}-{index}")).expect(201);
    }
    (desk, client_id)
}

fn checkpoints_lines(data_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(data_dir.join("checkpoints.jsonl")).unwrap().lines().map(str::to_owned).collect()
}

fn public_key(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("desk-signing.pub")).unwrap().trim().to_owned()
}

fn last_segment(data_dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("journal"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files.pop().expect("a segment")
}

/// (seq, byte offset) of every record in a segment.
fn record_offsets(segment: &[u8]) -> Vec<(u64, usize)> {
    let mut offsets = Vec::new();
    let mut start = SEGMENT_HEADER_BYTES;
    while start + RECORD_HEADER_BYTES <= segment.len() {
        let length = u32::from_le_bytes(segment[start + 4..start + 8].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(segment[start + 8..start + 16].try_into().unwrap());
        offsets.push((seq, start));
        start += RECORD_HEADER_BYTES + length;
    }
    offsets
}

fn wait_for_checkpoint_at(desk: &TestDesk, seq: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = desk.get(&desk.admin, "/v1/admin/audit/checkpoints").expect(200).clone();
        if page["items"][0]["seq"].as_u64() == Some(seq) {
            return page;
        }
        assert!(Instant::now() < deadline, "no checkpoint at seq {seq}: {page}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_session_is_checkpointed_published_and_verified() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (desk, _) = session(&data_dir, "happy", 6);
    // 8 records: checkpoints by count, then by time for the tail.
    let page = wait_for_checkpoint_at(&desk, 8);
    assert_eq!(page["algorithm"], "ed25519");
    assert_eq!(page["public_key"], public_key(&data_dir));
    let items = page["items"].as_array().unwrap();
    assert!(items.len() >= 2, "{page}");
    assert!(items[0]["index"].as_u64() > items[1]["index"].as_u64(), "newest first: {page}");
    assert!(items[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    let mode = std::fs::metadata(data_dir.join("desk-signing.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let paged = desk.get(&desk.admin, "/v1/admin/audit/checkpoints?limit=1").expect(200).clone();
    let cursor = paged["next_cursor"].as_str().expect("a next page");
    let next =
        desk.get(&desk.admin, &format!("/v1/admin/audit/checkpoints?limit=1&cursor={cursor}")).expect(200).clone();
    assert_eq!(next["items"][0]["index"], items[1]["index"]);

    let verified = desk.get(&desk.admin, "/v1/admin/audit/verify").expect(200).clone();
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["events"], 8);
    assert_eq!(verified["last_checkpoint_seq"], 8);
    assert!(verified["head"].as_str().unwrap().len() == 64 && verified["checkpoints"].as_u64().unwrap() >= 2);
    assert!(desk.terminate().success());

    let output = run_otcd(&["verify"], &data_dir);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert!(combined_output(&output).contains("checkpoints intact"), "{}", combined_output(&output));
    let key = public_key(&data_dir);
    let output = run_otcd(&["verify", "--public-key", &key], &data_dir);
    assert!(output.status.success(), "{}", combined_output(&output));
    let other = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key().as_bytes());
    let output = run_otcd(&["verify", "--public-key", &other], &data_dir);
    let text = combined_output(&output);
    assert!(!output.status.success() && text.contains("checkpoint #1") && text.contains("invalid signature"), "{text}");
}

#[test]
fn verify_passes_after_kill_9_and_restart_and_the_restart_signs_the_tail() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (desk, client_id) = session(&data_dir, "crash", 5);
    desk.crash();
    let output = run_otcd(&["verify"], &data_dir);
    assert!(output.status.success(), "a crashed desk verifies (checkpoints may lag): {}", combined_output(&output));
    let desk = start(&data_dir);
    wait_for_checkpoint_at(&desk, 7);
    desk.deposit(&client_id, "USD", "10.00", "after-crash").expect(201);
    wait_for_checkpoint_at(&desk, 8);
    assert!(desk.terminate().success());
    let output = run_otcd(&["verify"], &data_dir);
    assert!(output.status.success(), "{}", combined_output(&output));
}

#[test]
fn a_cleanly_truncated_tail_after_a_checkpoint_is_named_and_stops_serve() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (desk, _) = session(&data_dir, "truncate", 5);
    assert!(desk.terminate().success());
    // Remove the last two whole records (6 and 7): every checksum and hash of what is left is fine.
    let segment = last_segment(&data_dir);
    let bytes = std::fs::read(&segment).unwrap();
    let offsets = record_offsets(&bytes);
    let (seq, cut) = offsets[offsets.len() - 2];
    assert_eq!(seq, 6);
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(cut as u64).unwrap();
    // The first checkpoint that covers a removed record is the one named.
    let first_beyond = checkpoints_lines(&data_dir)
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|checkpoint| checkpoint["seq"].as_u64().unwrap() >= 6)
        .expect("a checkpoint covers the removed records");

    let output = run_otcd(&["verify"], &data_dir);
    let text = combined_output(&output);
    assert!(!output.status.success(), "verify passed a truncated journal: {text}");
    assert!(text.contains(&format!("checkpoint #{}", first_beyond["index"])), "{text}");
    assert!(text.contains("seq 6 onwards were removed"), "{text}");

    let serve = run_otcd(&["serve", "--listen", "127.0.0.1:0", "--market", "manual"], &data_dir);
    let text = combined_output(&serve);
    assert!(!serve.status.success() && text.contains("seq 6 onwards were removed"), "{text}");
}

#[test]
fn a_deleted_or_forged_checkpoint_is_named() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (desk, _) = session(&data_dir, "forge", 7);
    assert!(desk.terminate().success());
    let original = checkpoints_lines(&data_dir);
    assert!(original.len() >= 3, "{original:?}");
    let path = data_dir.join("checkpoints.jsonl");
    let write = |lines: &[String]| {
        std::fs::write(&path, lines.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap()
    };

    let mut deleted = original.clone();
    deleted.remove(1);
    write(&deleted);
    let output = run_otcd(&["verify"], &data_dir);
    let text = combined_output(&output);
    assert!(!output.status.success() && text.contains("checkpoint #2") && text.contains("chain"), "{text}");

    let mut forged = original.clone();
    let checkpoint: otcd_journal::Checkpoint = serde_json::from_str(&original[1]).unwrap();
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let resigned = otcd_journal::Checkpoint::sign(
        2,
        checkpoint.head(),
        checkpoint.timestamp_ms,
        checkpoint.prev_checkpoint_hash,
        &other,
    );
    forged[1] = resigned.to_line().trim_end().to_owned();
    write(&forged);
    let output = run_otcd(&["verify"], &data_dir);
    let text = combined_output(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(&format!("checkpoint #2 (seq {})", checkpoint.seq)) && text.contains("invalid signature"),
        "{text}"
    );

    let mut edited = original.clone();
    edited[1] = original[1].replace(&format!("\"seq\":{}", checkpoint.seq), &format!("\"seq\":{}", checkpoint.seq - 1));
    edited[1] = edited[1]
        .replace(&format!("\"record_count\":{}", checkpoint.seq), &format!("\"record_count\":{}", checkpoint.seq - 1));
    write(&edited);
    let output = run_otcd(&["verify"], &data_dir);
    let text = combined_output(&output);
    assert!(!output.status.success() && text.contains("checkpoint #2") && text.contains("invalid signature"), "{text}");

    write(&original);
    assert!(run_otcd(&["verify"], &data_dir).status.success());
}

#[test]
fn exports_from_the_api_and_the_cli_verify_offline_and_an_altered_record_is_named() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (desk, _) = session(&data_dir, "export", 4);
    wait_for_checkpoint_at(&desk, 6);
    let path = "/v1/admin/audit/export?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let reply = desk.get(&desk.admin, path);
    assert_eq!(reply.status, 200, "{reply:?}");
    let bundle = reply.text.clone();
    let lines: Vec<&str> = bundle.lines().collect();
    assert_eq!(lines.len(), 1 + 6 + checkpoints_lines(&data_dir).len(), "{bundle}");
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!((header["type"].as_str(), header["records"].as_u64()), (Some("header"), Some(6)));
    assert_eq!(header["public_key"], public_key(&data_dir));
    let empty = desk.get(&desk.admin, "/v1/admin/audit/export?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z");
    assert_eq!(empty.status, 404, "{empty:?}");
    let backwards = desk.get(&desk.admin, "/v1/admin/audit/export?from=2021-01-01T00:00:00Z&to=2020-01-02T00:00:00Z");
    assert_eq!(backwards.status, 400, "{backwards:?}");
    assert!(desk.terminate().success());

    let file = temp.path().join("api-bundle.jsonl");
    std::fs::write(&file, &bundle).unwrap();
    let key = public_key(&data_dir);
    let output = run_otcd(&["verify", "--export", file.to_str().unwrap(), "--public-key", &key], &data_dir);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert!(combined_output(&output).contains("export intact"), "{}", combined_output(&output));

    // One record altered: the payload of seq 4 (a deposit) gets another time stamp.
    let altered: Vec<String> = lines
        .iter()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            if value["seq"] == 4 && value["type"] == "record" {
                let payload = value["payload"].as_str().unwrap().replacen("\"at\":1", "\"at\":2", 1);
                value["payload"] = payload.into();
                value.to_string()
            } else {
                (*line).to_owned()
            }
        })
        .collect();
    assert_ne!(altered.join("\n"), lines.join("\n"), "the test changed nothing");
    std::fs::write(&file, altered.join("\n") + "\n").unwrap();
    let output = run_otcd(&["verify", "--export", file.to_str().unwrap(), "--public-key", &key], &data_dir);
    let text = combined_output(&output);
    assert!(!output.status.success(), "an altered export verified: {text}");
    assert!(text.contains("record seq 4") && text.contains("does not hash"), "{text}");

    // The CLI export of the stopped desk verifies too.
    let out = temp.path().join("cli-bundle.jsonl");
    let output = run_otcd(
        &[
            "audit-export",
            "--from",
            "2020-01-01T00:00:00Z",
            "--to",
            "2100-01-01T00:00:00Z",
            "--out",
            out.to_str().unwrap(),
        ],
        &data_dir,
    );
    assert!(output.status.success(), "{}", combined_output(&output));
    let output = run_otcd(&["verify", "--export", out.to_str().unwrap()], &data_dir);
    assert!(output.status.success(), "{}", combined_output(&output));
}

#[test]
fn a_desk_from_before_checkpoints_verifies_and_gets_a_key_and_a_checkpoint_at_its_next_start() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (desk, _) = session(&data_dir, "legacy", 2);
    assert!(desk.terminate().success());
    // A desk from before checkpoints had none of these (nor the high-water mark that came later).
    for file in ["desk-signing.key", "desk-signing.pub", "checkpoints.jsonl", "journal.high-water"] {
        std::fs::remove_file(data_dir.join(file)).unwrap();
    }
    let output = run_otcd(&["verify"], &data_dir);
    assert!(
        output.status.success() && combined_output(&output).contains("no signed checkpoints"),
        "{}",
        combined_output(&output)
    );

    let desk = start(&data_dir);
    let page = wait_for_checkpoint_at(&desk, 4);
    assert_eq!(page["count"], 1, "one checkpoint at start covers the whole history: {page}");
    assert!(desk.terminate().success());
    let output = run_otcd(&["verify", "--public-key", &public_key(&data_dir)], &data_dir);
    assert!(output.status.success(), "{}", combined_output(&output));

    // Losing the key once checkpoints exist stops the desk instead of silently starting a new key.
    std::fs::remove_file(data_dir.join("desk-signing.key")).unwrap();
    let serve = run_otcd(&["serve", "--listen", "127.0.0.1:0", "--market", "manual"], &data_dir);
    assert!(
        !serve.status.success() && combined_output(&serve).contains("restore the key"),
        "{}",
        combined_output(&serve)
    );
}
