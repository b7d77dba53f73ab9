//! Surveillance alerts are real alerts: a planted pattern (a wash trade, a spoofing sequence of resting orders
//! placed and cancelled) is raised in the engine by the raiser, listed with its evidence, worked as a case
//! (assignee, status, notes, escalation), and all of it survives a `kill -9`: after the restart the rebuilt projection finds the
//! same patterns again and raises nothing twice.

use otcd_testkit::http::{assert_problem, text};
use otcd_testkit::process::TestDesk;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn price(desk: &TestDesk) {
    desk.set_price("BTC-USD", "49990.00", "50010.00");
}

/// The alerts of `kind`, once at least `count` of them are listed (the raiser runs every 250 ms).
pub fn wait_for_alerts(desk: &TestDesk, kind: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = desk.get(&desk.admin, &format!("/v1/admin/alerts?kind={kind}")).expect(200).clone();
        let items = list["items"].as_array().unwrap().clone();
        if items.len() >= count {
            return items;
        }
        assert!(Instant::now() < deadline, "no {kind} alert listed; log:\n{}", desk.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_surveillance_alert_is_worked_as_a_case_and_survives_a_crash() {
    let desk = TestDesk::start();
    let client = desk.new_client("Round Trip Ltd");
    desk.deposit(&client, "USD", "500000.00", "wire-1").expect(201);
    let key = desk.client_key(&client, &["read", "trade"]);

    // A wash trade: a buy, then a sell of the same size within five minutes.
    for (id, side) in [("w-1", "buy"), ("w-2", "sell")] {
        price(&desk);
        let body =
            json!({"client_order_id": id, "type": "market", "instrument": "BTC-USD", "side": side, "quantity": "0.5"});
        desk.post(&key, "/v1/orders", &body).expect(201);
    }
    // Spoofing: five resting buy orders far from the market, each cancelled within seconds, nothing filled.
    let mut placed = Vec::new();
    for index in 0..5 {
        let body = json!({"client_order_id": format!("s-{index}"), "type": "limit", "instrument": "BTC-USD",
            "side": "buy", "quantity": "1", "limit_price": "40000.00", "time_in_force": "gtc"});
        let order = desk.post(&key, "/v1/orders", &body).expect(201).clone();
        assert_eq!(order["status"], "open", "{order}");
        placed.push(text(&order["order_id"]));
        desk.delete(&key, &format!("/v1/orders/{}", text(&order["order_id"]))).expect(200);
    }

    let wash = wait_for_alerts(&desk, "surveillance_wash_trade", 1);
    assert_eq!(wash.len(), 1);
    let alert = &wash[0];
    let alert_id = text(&alert["alert_id"]);
    assert!(alert_id.starts_with("al_"), "a surveillance alert is an engine alert: {alert}");
    assert_eq!(
        [&alert["source"], &alert["client_id"], &alert["instrument"], &alert["status"]],
        [&json!("surveillance"), &json!(client), &json!("BTC-USD"), &json!("open")]
    );
    assert_eq!(alert["trade_ids"], json!(["t_000000000001", "t_000000000002"]));
    assert_eq!(alert["figures"]["first_quantity_minor_units"], "50000000");
    assert_eq!(alert["thresholds"]["wash_window_ms"], "300000");
    assert!(alert["observed_seq"].as_u64().unwrap() > 0);
    let spoofing = wait_for_alerts(&desk, "surveillance_spoofing", 1);
    assert_eq!(spoofing[0]["order_ids"], json!(placed));
    assert_eq!(spoofing[0]["figures"]["cancelled_orders"], "5");

    // Worked as a case, like an AML alert: investigating, with a note journaled with the operator's key.
    let path = format!("/v1/admin/alerts/{alert_id}");
    let note = "round trip of 0.5 BTC in seconds; asked the client for the purpose";
    let body = json!({"status": "investigating", "note": note, "assignee": "surveillance desk"});
    let updated = desk.patch(&desk.admin, &path, &body).expect(200).clone();
    assert_eq!([&updated["status"], &updated["assignee"]], [&json!("investigating"), &json!("surveillance desk")]);
    assert_eq!(updated["notes"][0]["text"], note);
    assert_eq!(updated["trade_ids"], alert["trade_ids"]);
    assert_problem(&desk.patch(&desk.admin, "/v1/admin/alerts/al_9999999999", &json!({"note": "x"})), 404, "not_found");
    assert_problem(&desk.patch(&desk.admin, &path, &json!({"status": "parked"})), 400, "invalid_request");
    let export_before =
        desk.get(&desk.admin, "/v1/admin/reports/alerts?kind=surveillance_wash_trade").expect(200).clone();
    assert!(export_before["items"][0]["notes"].as_str().unwrap().contains(note), "{export_before}");

    // kill -9, restart: the case is as it was, and the patterns found again by the rebuilt projection are not
    // raised a second time.
    let desk = desk.crash_and_restart();
    let after = wait_for_alerts(&desk, "surveillance_wash_trade", 1);
    std::thread::sleep(Duration::from_millis(1_500)); // several raiser rounds over the rebuilt projection
    let after_rounds = wait_for_alerts(&desk, "surveillance_wash_trade", 1);
    assert_eq!(after_rounds.len(), 1, "raised once: {after_rounds:?}");
    assert_eq!(after, after_rounds);
    let alert = &after[0];
    assert_eq!([&alert["alert_id"], &alert["status"]], [&json!(alert_id), &json!("investigating")]);
    assert_eq!(alert["notes"][0]["text"], note);
    assert_eq!(wait_for_alerts(&desk, "surveillance_spoofing", 1).len(), 1);
    assert_eq!(alert["assignee"], "surveillance desk");
    let body = json!({"status": "escalated", "assignee": "MLRO", "note": "pattern repeats; for a SAR decision"});
    let escalated = desk.patch(&desk.admin, &path, &body).expect(200).clone();
    assert_eq!([&escalated["status"], &escalated["assignee"]], [&json!("escalated"), &json!("MLRO")]);
    let body = json!({"status": "closed", "note": "explained: hedge unwind"});
    let closed = desk.patch(&desk.admin, &path, &body).expect(200).clone();
    assert_eq!(closed["notes"].as_array().unwrap().len(), 3);
    let export_after =
        desk.get(&desk.admin, "/v1/admin/reports/alerts?kind=surveillance_wash_trade").expect(200).clone();
    assert_eq!(
        [&export_after["items"][0]["status"], &export_after["items"][0]["assignee"]],
        [&json!("closed"), &json!("MLRO")]
    );
    assert_eq!(export_after["items"][0]["figures"], export_before["items"][0]["figures"]);
    desk.terminate();
}
