//! Strangers cannot grow the journal (issue 15, item 2): a flood of badly signed requests is journaled as one
//! counted summary per interval, and stays auditable in `GET /v1/admin/audit/events`.

use otcd_testkit::http::{agent, try_send};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::{now_ms, Signer};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes in the journal's segment files.
pub fn journal_bytes(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir.join("journal"))
        .expect("a journal directory")
        .map(|entry| entry.expect("a directory entry").metadata().expect("metadata").len())
        .sum()
}

/// Sends `count` requests signed by `signer` (a made-up key or a wrong secret) from `threads` threads; every one
/// must be refused with 401. Answers how many were sent.
pub fn flood(desk: &TestDesk, signer: &Signer, count: usize, threads: usize) -> usize {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let agent = agent();
                    let url = desk.url("/v1/balances");
                    for _ in 0..count / threads {
                        let headers = signer.headers_at(now_ms(), "GET", "/v1/balances", "");
                        let reply = try_send(&agent, &url, "GET", "", &headers).expect("the desk answers");
                        assert_eq!(reply.status, 401, "{}", reply.text);
                    }
                    count / threads
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a flood thread")).sum()
    })
}

/// The failed-authentication groups the audit trail lists, waiting until they count `expected` failures.
fn failure_groups(desk: &TestDesk, expected: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = desk.get(&desk.admin, "/v1/admin/audit/events?kind=authentication_failed").expect(200).clone();
        let items = events["items"].as_array().expect("items").clone();
        let counted: u64 = items.iter().map(|item| item["count"].as_u64().unwrap_or(1)).sum();
        if counted >= expected {
            assert_eq!(counted, expected, "{events}");
            return items;
        }
        assert!(Instant::now() < deadline, "only {counted} of {expected} failures listed: {events}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_flood_of_bad_signatures_adds_a_few_kilobytes_to_the_journal_and_stays_auditable() {
    let desk = TestDesk::with_config("auth_failure_interval_ms = 5000\n");
    let journal_before = journal_bytes(&desk.data_dir);
    let made_up = Signer::hmac("k_made_up_by_a_stranger", "no-secret");
    let wrong_secret = Signer::hmac(&desk.admin.key_id, "not-the-admin-secret");
    let sent = flood(&desk, &made_up, 50_000, 4) + flood(&desk, &wrong_secret, 50_000, 4);
    let groups = failure_groups(&desk, sent as u64);
    let grown = journal_bytes(&desk.data_dir) - journal_before;
    eprintln!("{sent} failed authentications grew the journal by {grown} bytes");
    // One record per interval (5 s here, a minute by default): on main every failure was a record of ~463 bytes
    // (46 MB here).
    assert!(grown < 8 * 1024, "{sent} failed authentications grew the journal by {grown} bytes");
    let group_of = |key: &str| {
        groups
            .iter()
            .filter(|group| group["claimed_key_id"] == key)
            .map(|group| group["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(group_of(&made_up.key_id), 50_000, "{groups:?}");
    assert_eq!(group_of(&desk.admin.key_id), 50_000, "{groups:?}");
    let mismatch = groups.iter().find(|group| group["claimed_key_id"] == desk.admin.key_id.as_str()).unwrap();
    assert_eq!(mismatch["detail"], "signature does not match", "{mismatch}");
    assert_eq!(mismatch["source_ip"], "127.0.0.1", "{mismatch}");
    assert!(mismatch["first_at"].is_string() && mismatch["last_at"].is_string(), "{mismatch}");
    // The summaries are part of the verified journal.
    let verified = desk.get(&desk.admin, "/v1/admin/audit/verify").expect(200).clone();
    assert_eq!(verified["valid"], true, "{verified}");
}
