//! Rate limits (API.md): per key per request class (the standard tier allows 100 a second of one class from
//! one key), per source address, `429 rate_limited` with `Retry-After`, then allowed again.

use otcd_testkit::http::assert_problem;
use otcd_testkit::process::TestDesk;
use serde_json::json;
use std::time::Duration;

#[test]
fn a_standard_key_over_100_reads_a_second_is_told_to_retry_later() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Busy Reader");
    let replies: Vec<_> = (0..150).map(|_| desk.get(&trader, "/v1/balances")).collect();
    let limited: Vec<_> = replies.iter().filter(|reply| reply.status == 429).collect();
    assert!(!limited.is_empty(), "150 reads in well under a second must exceed 100 a second");
    assert!(replies.iter().filter(|reply| reply.status == 200).count() >= 100, "the first 100 pass");
    let problem = assert_problem(limited[0], 429, "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("reads"), "{problem}");
    let retry_after: u64 = limited[0].header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Another class has its own budget: an RFQ-class request is not refused for the reads flood.
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    desk.quote(&trader, "BTC-USD", "buy", "1");
    std::thread::sleep(Duration::from_secs(retry_after));
    desk.get(&trader, "/v1/balances").expect(200);
}

#[test]
fn a_tier_can_allow_more() {
    let desk = TestDesk::relaxed();
    desk.put_tier("fast", &json!({"spread_bps": "10", "rate_limits": {"reads": 1000}}));
    let tier = desk.get(&desk.admin, "/v1/admin/tiers").expect(200).clone();
    let fast = tier["items"].as_array().unwrap().iter().find(|item| item["tier"] == json!("fast")).unwrap().clone();
    assert_eq!(fast["rate_limits"], json!({"reads": 1000, "rfq": 100, "orders": 100, "withdrawals": 100}));
    let (_, signer) = desk.client("Fast Reader", "fast", "approved");
    for _ in 0..150 {
        desk.get(&signer, "/v1/balances").expect(200);
    }
}

#[test]
fn one_source_address_has_its_own_budget() {
    let desk = TestDesk::with_config("max_book_age_ms = 60000\nrate_limit_per_ip_per_second = 20\n");
    let replies: Vec<_> = (0..30).map(|_| desk.get(&desk.admin, "/v1/admin/tiers")).collect();
    let limited =
        replies.iter().find(|reply| reply.status == 429).expect("30 admin reads exceed 20 a second per address");
    let problem = assert_problem(limited, 429, "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("address"), "{problem}");
}
