//! A crash between any two steps of a withdrawal resumes correctly: kill -9 while withdrawals are pending and
//! submitted, restart, and every acknowledged withdrawal completes exactly once with no reservation lost.

use otcd_testkit::http::text;
use otcd_testkit::process::TestDesk;
use serde_json::json;
use std::time::{Duration, Instant};

const CONFIG: &str = "settlement_confirm_after_ms = 1500\n";

#[test]
fn kill_9_mid_settlement_pays_every_acknowledged_withdrawal_exactly_once() {
    let desk = TestDesk::with_config(CONFIG);
    let client_id = desk.new_client("Crash Withdrawer");
    let signer = desk.client_key(&client_id, &["read", "withdraw"]);
    desk.deposit(&client_id, "BTC", "1", "crash-btc").expect(201);
    let destination = desk
        .post(
            &signer,
            "/v1/destinations",
            &json!({"asset": "BTC", "address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}),
        )
        .expect(201)
        .clone();
    let mut ids = Vec::new();
    for number in 0..5 {
        let body = json!({"client_withdrawal_id": format!("cw-{number}"), "asset": "BTC", "amount": "0.1",
            "destination_id": destination["destination_id"]});
        ids.push(text(&desk.post(&signer, "/v1/withdrawals", &body).expect(201)["withdrawal_id"]));
        std::thread::sleep(Duration::from_millis(150));
    }
    // Some are submitted to the custodian by now, some still pending; none confirmed yet (1.5 s).
    let desk = desk.crash_and_restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let statuses: Vec<String> = ids
            .iter()
            .map(|id| text(&desk.get(&signer, &format!("/v1/withdrawals/{id}")).expect(200)["status"]))
            .collect();
        if statuses.iter().all(|status| status == "completed") {
            break;
        }
        assert!(Instant::now() < deadline, "withdrawals did not all complete after the restart: {statuses:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let btc = desk.balances(&client_id).into_iter().find(|(asset, _, _)| asset == "BTC").unwrap();
    assert_eq!(
        (btc.1.as_str(), btc.2.as_str()),
        ("0.50000000", "0.00000000"),
        "exactly 0.5 BTC paid out, nothing held"
    );
    // Each withdrawal moved out of the reserved balance exactly once.
    let entries = desk.ledger(&client_id, 100);
    let posted = entries.iter().filter(|entry| entry.to_string().contains("reservation_posted")).count();
    assert_eq!(posted, 5, "{entries:?}");
    let verified = desk.get(&desk.admin, "/v1/admin/audit/verify").expect(200).clone();
    assert_eq!(verified["valid"], json!(true), "{verified}");
}
