//! The command line as a new user meets it: one rule for the data directory of the offline commands, friendly
//! times, `otcd sign` refusing what the server could not verify, one-line errors, and a busy port found before a
//! desk is created.

use otcd_testkit::process::{otcd_binary, run_otcd_in, TestDesk};
use std::path::Path;
use std::process::Output;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A desk with one deposit in `directory`, stopped cleanly.
fn desk_in(directory: &Path) {
    let desk = TestDesk::launch().data_dir(directory).start();
    let client_id = desk.new_client("Cli Ltd");
    desk.deposit(&client_id, "USD", "100.00", "cli-1").expect(201);
    assert!(desk.terminate().success());
}

#[test]
fn offline_commands_find_the_demo_desk_or_name_the_flag() {
    let cwd = tempfile::tempdir().unwrap();
    let empty = run_otcd_in(&["report", "trades"], cwd.path(), &[]);
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("pass --data-dir DIR"), "{}", stderr(&empty));

    desk_in(&cwd.path().join("otcd-demo"));
    let report = run_otcd_in(&["report", "statement", "--client-id", "cl_00000001"], cwd.path(), &[]);
    assert!(report.status.success(), "{}", stderr(&report));
    assert!(stderr(&report).contains("using the demo desk in ./otcd-demo"), "{}", stderr(&report));
    assert!(String::from_utf8_lossy(&report.stdout).contains("100.00"), "the statement shows the deposit");
    let verify = run_otcd_in(&["verify"], cwd.path(), &[]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    desk_in(&cwd.path().join("otcd-data"));
    let served = run_otcd_in(&["verify"], cwd.path(), &[]);
    assert!(served.status.success() && !stderr(&served).contains("demo"), "./otcd-data comes first");
}

#[test]
fn friendly_times_are_taken_and_wrong_ones_say_what_to_type() {
    let cwd = tempfile::tempdir().unwrap();
    desk_in(&cwd.path().join("otcd-data"));
    for (from, to) in [("now-24h", "now"), ("yesterday", "2099-01-01"), ("2020-01-01", "now-1s")] {
        let output = run_otcd_in(&["report", "trades", "--from", from, "--to", to], cwd.path(), &[]);
        assert!(output.status.success(), "--from {from} --to {to}: {}", stderr(&output));
    }
    let wrong = run_otcd_in(&["report", "trades", "--from", "last tuesday"], cwd.path(), &[]);
    assert!(!wrong.status.success());
    let message = stderr(&wrong);
    assert!(message.contains("--from \"last tuesday\"") && message.contains("now-24h"), "{message}");
    let export = cwd.path().join("bundle.jsonl");
    let export = export.to_str().unwrap();
    let bad_window =
        run_otcd_in(&["audit-export", "--from", "now", "--to", "yesterday", "--out", export], cwd.path(), &[]);
    assert!(stderr(&bad_window).contains("--to must be after --from"), "{}", stderr(&bad_window));
}

#[test]
fn sign_refuses_what_the_server_could_not_verify_in_one_line_even_with_backtraces_on() {
    let cwd = tempfile::tempdir().unwrap();
    let key_file = cwd.path().join("key.json");
    std::fs::write(&key_file, r#"{"key_id": "k_1", "secret": "s", "algorithm": "hmac"}"#).unwrap();
    let key_file = key_file.to_str().unwrap();
    let backtraces = [("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")];
    for (args, says) in [
        (vec!["sign", "--key-file", key_file, "v1/balances"], "starts with /"),
        (vec!["sign", "--key-file", key_file, "http://127.0.0.1:8080/v1/balances"], "is a URL"),
        (vec!["sign", "--key-file", key_file, "--method", "FOO", "/v1/balances"], "GET, POST, PUT, PATCH or DELETE"),
    ] {
        let output = run_otcd_in(&args, cwd.path(), &backtraces);
        assert!(!output.status.success(), "{args:?}");
        let message = stderr(&output);
        assert!(message.contains(says), "{args:?}: {message}");
        assert_eq!(message.trim_end().lines().count(), 1, "one line, no backtrace: {message}");
    }
    let verbose = run_otcd_in(&["--verbose", "sign", "--key-file", key_file, "v1/x"], cwd.path(), &backtraces);
    assert!(stderr(&verbose).lines().count() > 1, "--verbose shows the backtrace");
    let good = run_otcd_in(&["sign", "--key-file", key_file, "--method", "post", "/v1/rfq"], cwd.path(), &[]);
    assert!(String::from_utf8_lossy(&good.stdout).starts_with("-X POST -H OTC-KEY:k_1"), "{good:?}");
}

#[test]
fn a_busy_port_is_found_before_a_desk_is_created() {
    let cwd = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = run_otcd_in(&["demo", "--listen", &address, "--data-dir", "demo"], cwd.path(), &[]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains(&format!("cannot listen on {address}")), "{}", stderr(&output));
    assert!(!cwd.path().join("demo").join("journal").exists(), "no desk was created");
}

#[test]
fn progress_is_drawn_on_a_terminal_and_nowhere_else() {
    let cwd = tempfile::tempdir().unwrap();
    let data_dir = cwd.path().join("otcd-data");
    desk_in(&data_dir);
    let export = cwd.path().join("bundle.jsonl");
    let export = export.to_str().unwrap();
    let commands: [&[&str]; 3] =
        [&["verify"], &["report", "trades"], &["audit-export", "--from", "2020-01-01", "--to", "now", "--out", export]];
    for arguments in commands {
        let piped = run_otcd_in(arguments, cwd.path(), &[]);
        assert!(piped.status.success(), "{arguments:?}: {}", stderr(&piped));
        assert!(!stderr(&piped).contains("the journal ["), "no bar without a terminal: {}", stderr(&piped));
    }
    // Under a pseudo-terminal (util-linux `script`), the bar is drawn on stderr.
    let command = format!("{} verify --data-dir {}", otcd_binary().display(), data_dir.display());
    let Ok(output) = std::process::Command::new("script").args(["-qec", &command, "/dev/null"]).output() else {
        eprintln!("SKIPPED (the terminal half): util-linux `script` is not installed");
        return;
    };
    let seen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{seen}");
    assert!(seen.contains("verifying the journal [") && seen.contains("journal intact"), "{seen}");
}
