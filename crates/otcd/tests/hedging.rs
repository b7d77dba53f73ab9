//! Black-box hedging with the paper venue (`--market manual`: one venue, `manual`, filled by the paper adapter):
//! a client buy of 2 BTC against a 0.5 BTC band is hedged back within a second and shows in the admin view, the
//! report and the ledger; rejects and timeouts end with exactly the intended quantity; the kill switch stops new
//! hedges; kill -9 between a child's send and its acknowledgement does not double the hedge.

use otcd_testkit::http::text;
use otcd_testkit::process::{TestDesk, RELAXED_CONFIG};
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn policy() -> Value {
    json!({"enabled": true, "band": "0.5", "instruments": ["BTC-USD"], "venues": ["manual"],
        "order_quantity_max": "1", "slippage_bps_max": "50", "attempts_max": 10})
}

fn setup(desk: &TestDesk) -> Signer {
    desk.put_tier("zero", &json!({"spread_bps": "0"}));
    let (client_id, trader) = desk.client("Hedged Client", "zero", "approved");
    desk.deposit(&client_id, "USD", "1000000.00", "hedge-usd").expect(201);
    desk.set_price("BTC-USD", "49990.00", "50010.00");
    desk.put(&desk.admin, "/v1/admin/hedging/BTC", &policy()).expect(200);
    trader
}

fn buy(desk: &TestDesk, trader: &Signer, id: &str, quantity: &str) {
    let body =
        json!({"client_order_id": id, "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": quantity});
    desk.post(trader, "/v1/orders", &body).expect(201);
}

fn hedging(desk: &TestDesk) -> Value {
    desk.get(&desk.admin, "/v1/admin/hedging").expect(200).clone()
}

fn position(view: &Value) -> String {
    text(&view["positions"][0]["position"])
}

/// Waits until no hedge is active and the position is back at `expected`.
fn wait_settled(desk: &TestDesk, expected: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let view = hedging(desk);
        if view["active"].as_array().is_some_and(Vec::is_empty) && position(&view) == expected {
            return view;
        }
        assert!(Instant::now() < deadline, "not hedged back to {expected} in {within:?}: {view:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_buy_of_2_btc_is_hedged_back_inside_the_band_within_a_second() {
    let desk = TestDesk::with_config(RELAXED_CONFIG);
    let trader = setup(&desk);
    buy(&desk, &trader, "h-1", "2");
    let started = Instant::now();
    let view = wait_settled(&desk, "0.00000000", Duration::from_secs(1));
    eprintln!("hedged back in {:?}", started.elapsed());
    let hedge = &view["recent"][0];
    assert_eq!((hedge["state"].clone(), hedge["filled"].clone()), (json!("filled"), json!("2.00000000")), "{hedge:#}");
    assert_eq!(hedge["side"], json!("buy"));
    assert_eq!(hedge["children"].as_array().unwrap().len(), 2, "1 BTC largest order: {hedge:#}");
    assert_eq!(hedge["children"][0]["client_order_id"], json!("hg_0000000001-1-0"));
    // The paper venue's balance moved: 2 BTC more at `manual`.
    let manual = view["venues"].as_array().unwrap().iter().find(|venue| venue["venue"] == json!("manual")).unwrap();
    assert_eq!(manual["balances"]["BTC"], json!("1002.00000000"), "{manual:#}");
    // The report: hedge price 50010.00 against the client's 50010.00 (zero spread, manual book), no fee.
    let report = desk.get(&desk.admin, "/v1/admin/reports/hedging").expect(200).clone();
    let row = &report["items"][0];
    assert_eq!(row["hedge_price"], json!("50010.00"), "{report:#}");
    assert_eq!(row["client_price"], json!("50010.00"), "{report:#}");
    assert_eq!(row["pnl"], json!("0.00"), "{report:#}");
    let csv = desk.get(&desk.admin, "/v1/admin/reports/hedging?format=csv");
    assert!(csv.text.starts_with("hedge_id,asset,instrument,side"), "{}", csv.text);
    // Audit: the journal verifies with the hedge's records in it.
    let verified = desk.get(&desk.admin, "/v1/admin/audit/verify").expect(200).clone();
    assert_eq!(verified["valid"], json!(true));
}

#[test]
fn rejects_and_timeouts_end_with_exactly_the_intended_quantity() {
    let config = format!("{RELAXED_CONFIG}paper_reject_percent = 30\npaper_timeout_percent = 30\n");
    let desk = TestDesk::with_config(&config);
    let trader = setup(&desk);
    buy(&desk, &trader, "r-1", "3");
    let view = wait_settled(&desk, "0.00000000", Duration::from_secs(10));
    let hedges = view["recent"].as_array().unwrap();
    let filled: Vec<String> = hedges.iter().map(|hedge| text(&hedge["filled"])).collect();
    assert_eq!(filled, ["3.00000000"], "one hedge, exactly 3 BTC: {view:#}");
    let manual = view["venues"].as_array().unwrap().iter().find(|venue| venue["venue"] == json!("manual")).unwrap();
    assert_eq!(manual["balances"]["BTC"], json!("1003.00000000"), "the venue saw exactly 3 BTC: {manual:#}");
}

#[test]
fn the_kill_switch_stops_new_hedges() {
    let desk = TestDesk::with_config(RELAXED_CONFIG);
    let trader = setup(&desk);
    // Hedging off while the client trades, then the kill switch, then hedging on: the position stays outside
    // the band until the switch is released.
    desk.put(
        &desk.admin,
        "/v1/admin/hedging/BTC",
        &json!({"enabled": false, "band": "0.5",
        "instruments": ["BTC-USD"], "venues": ["manual"], "order_quantity_max": "1"}),
    )
    .expect(200);
    buy(&desk, &trader, "k-2", "1");
    desk.put(&desk.admin, "/v1/admin/desk/kill-switch", &json!({"engaged": true})).expect(200);
    desk.put(&desk.admin, "/v1/admin/hedging/BTC", &policy()).expect(200);
    std::thread::sleep(Duration::from_millis(500));
    let view = hedging(&desk);
    assert_eq!(position(&view), "-1.00000000", "no hedge under the kill switch: {view:#}");
    assert_eq!(view["active"].as_array().unwrap().len(), 0);
    desk.put(&desk.admin, "/v1/admin/desk/kill-switch", &json!({"engaged": false})).expect(200);
    wait_settled(&desk, "0.00000000", Duration::from_secs(2));
}

#[test]
fn kill_9_between_send_and_acknowledgement_does_not_double_the_hedge() {
    // The paper venue aborts the process right after it saved the first order it took: the engine holds the
    // child as pending, the venue holds the order.
    let config = format!("{RELAXED_CONFIG}paper_crash_after_send = true\npaper_latency_ms = 0\n");
    let desk = TestDesk::with_config(&config);
    let trader = setup(&desk);
    buy(&desk, &trader, "c-1", "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    // The aborted child stays a zombie until the harness reaps it.
    let exited = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
    };
    while !exited(desk.pid()) {
        assert!(Instant::now() < deadline, "the paper venue did not abort the desk");
        std::thread::sleep(Duration::from_millis(20));
    }
    let desk = desk.crash_and_restart();
    let view = wait_settled(&desk, "0.00000000", Duration::from_secs(5));
    let hedge = &view["recent"][0];
    assert_eq!(hedge["filled"], json!("1.00000000"), "{hedge:#}");
    assert_eq!(hedge["children"].as_array().unwrap().len(), 1, "the child was not sent twice: {hedge:#}");
    let manual = view["venues"].as_array().unwrap().iter().find(|venue| venue["venue"] == json!("manual")).unwrap();
    assert_eq!(manual["balances"]["BTC"], json!("1001.00000000"), "the venue filled exactly 1 BTC: {manual:#}");
}
