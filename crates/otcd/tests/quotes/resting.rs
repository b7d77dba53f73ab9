//! Resting limit orders over HTTP: `gtc` rests with its funds reserved and fills when a price change reaches it,
//! with no request arriving; `gtd` expires on time; cancel and cancel-all release reservations; trading controls
//! (kill switch, halts, desk position limits) refuse with their codes.

use otcd_testkit::http::{assert_invalid, assert_problem, text, Reply};
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::time::Duration;

fn funded(desk: &TestDesk, name: &str) -> (String, Signer) {
    desk.put_tier("zero", &json!({"spread_bps": "0"}));
    let (client_id, signer) = desk.client(name, "zero", "approved");
    desk.deposit(&client_id, "USD", "100000.00", &format!("{name}-usd").replace(' ', "-")).expect(201);
    (client_id, signer)
}

fn limit(desk: &TestDesk, signer: &Signer, id: &str, price: &str, tif: &str, expire_at: Option<String>) -> Reply {
    let mut body = json!({"client_order_id": id, "type": "limit", "instrument": "BTC-USD", "side": "buy",
        "quantity": "1", "limit_price": price, "time_in_force": tif});
    if let Some(expire_at) = expire_at {
        body["expire_at"] = json!(expire_at);
    }
    desk.post(signer, "/v1/orders", &body)
}

/// Polls the order until its status is `status` (the watcher acts within ~100 ms; allow 5 s on a busy machine).
fn wait_for_status(desk: &TestDesk, signer: &Signer, order_id: &str, status: &str) -> Value {
    desk.wait_for_status(signer, &format!("/v1/orders/{order_id}"), status, Duration::from_secs(5))
}

fn rfc3339_in(ms: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn a_gtc_order_rests_reserved_and_fills_when_the_price_reaches_it_without_a_request() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded(&desk, "Resting Buyer");
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let order = limit(&desk, &trader, "gtc-1", "50050.00", "gtc", None).expect(201).clone();
    assert_eq!(order["status"], json!("open"), "{order}");
    assert_eq!(order["time_in_force"], json!("gtc"), "{order}");
    assert_eq!(order["limit_price"], json!("50050.00"), "{order}");
    assert_eq!(desk.own_balance(&trader, "USD"), ("49950.00".into(), "50050.00".into()));
    let open = desk.get(&trader, "/v1/orders?status=open").expect(200).clone();
    assert_eq!(open["items"].as_array().unwrap().len(), 1, "{open}");
    // The ask drops to 50020.00: the watcher fills the order at 50020.00 (0 bps tier) and releases 30.00.
    desk.set_price("BTC-USD", "49990.00", "50020.00");
    let filled = wait_for_status(&desk, &trader, &text(&order["order_id"]), "filled");
    assert_eq!(filled["average_price"], json!("50020.00"), "{filled}");
    assert_eq!(filled["trades"].as_array().unwrap().len(), 1, "{filled}");
    assert_eq!(desk.own_balance(&trader, "USD"), ("49980.00".into(), "0.00".into()));
    // A filled order cannot be cancelled; the same client_order_id returns the original order.
    let path = format!("/v1/orders/{}", text(&order["order_id"]));
    assert_problem(&desk.signed(&trader, "DELETE", &path, ""), 409, "order_not_cancelable");
    assert_eq!(limit(&desk, &trader, "gtc-1", "50050.00", "gtc", None).expect(200)["order_id"], order["order_id"]);
}

#[test]
fn a_gtd_order_expires_on_time_and_its_funds_come_back() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded(&desk, "Expiring Buyer");
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let order = limit(&desk, &trader, "gtd-1", "40000.00", "gtd", Some(rfc3339_in(1_500))).expect(201).clone();
    assert_eq!(order["status"], json!("open"), "{order}");
    assert!(order["expire_at"].is_string(), "{order}");
    assert_eq!(desk.own_balance(&trader, "USD").1, "40000.00");
    wait_for_status(&desk, &trader, &text(&order["order_id"]), "expired");
    assert_eq!(desk.own_balance(&trader, "USD"), ("100000.00".into(), "0.00".into()));
    // gtd needs a future expire_at; other time in force refuse one.
    assert_invalid(&limit(&desk, &trader, "gtd-2", "40000.00", "gtd", None), "expire_at");
    assert_invalid(&limit(&desk, &trader, "gtd-3", "40000.00", "gtd", Some(rfc3339_in(-5_000))), "expire_at");
    assert_invalid(&limit(&desk, &trader, "gtc-x", "40000.00", "gtc", Some(rfc3339_in(5_000))), "expire_at");
}

#[test]
fn cancel_and_cancel_all_release_the_reservations() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded(&desk, "Canceller");
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let first = limit(&desk, &trader, "c-1", "30000.00", "gtc", None).expect(201).clone();
    limit(&desk, &trader, "c-2", "31000.00", "gtc", None).expect(201);
    limit(&desk, &trader, "c-3", "32000.00", "gtc", None).expect(201);
    assert_eq!(desk.own_balance(&trader, "USD").1, "93000.00");
    let path = format!("/v1/orders/{}", text(&first["order_id"]));
    let cancelled = desk.signed(&trader, "DELETE", &path, "").expect(200).clone();
    assert_eq!(cancelled["status"], json!("cancelled"), "{cancelled}");
    assert_eq!(desk.own_balance(&trader, "USD").1, "63000.00");
    assert_problem(&desk.signed(&trader, "DELETE", &path, ""), 409, "order_not_cancelable");
    // Another client cannot see or cancel it.
    let other = desk.trader("Someone Else");
    assert_problem(&desk.signed(&other, "DELETE", &path, ""), 404, "not_found");
    let all = desk.signed(&trader, "DELETE", "/v1/orders?instrument=BTC-USD", "").expect(200).clone();
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(desk.own_balance(&trader, "USD"), ("100000.00".into(), "0.00".into()));
    assert_problem(&desk.signed(&trader, "DELETE", "/v1/orders?instrument=NOPE-USD", ""), 400, "instrument_unknown");
}

#[test]
fn kill_switch_halts_and_position_limits_refuse_with_their_codes() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded(&desk, "Controlled");
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    desk.put(&desk.admin, "/v1/admin/desk/kill-switch", &json!({"engaged": true, "reason": "drill"})).expect(200);
    let rfq = desk.rfq(&trader, &json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.1"}));
    assert_problem(&rfq, 409, "trading_halted");
    desk.put(&desk.admin, "/v1/admin/desk/kill-switch", &json!({"engaged": false})).expect(200);
    desk.put(&desk.admin, "/v1/admin/instruments/BTC-USD", &json!({"halted": true, "reason": "venue outage"}))
        .expect(200);
    assert_problem(&limit(&desk, &trader, "h-1", "50100.00", "ioc", None), 409, "trading_halted");
    desk.put(&desk.admin, "/v1/admin/instruments/BTC-USD", &json!({"halted": false})).expect(200);
    // The desk may go only 0.5 BTC short: a market order for 1 BTC is refused whole, an ioc fills 0.5.
    desk.put(&desk.admin, "/v1/admin/desk/position-limits/BTC", &json!({"short_max": "0.5"})).expect(200);
    let market =
        json!({"client_order_id": "m-1", "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": "1"});
    assert_problem(&desk.post(&trader, "/v1/orders", &market), 422, "limit_exceeded");
    let ioc = limit(&desk, &trader, "i-1", "50100.00", "ioc", None).expect(201).clone();
    assert_eq!(
        (ioc["status"].clone(), ioc["filled_quantity"].clone()),
        (json!("cancelled"), json!("0.50000000")),
        "{ioc}"
    );
    let controls = desk.get(&desk.admin, "/v1/admin/trading").expect(200).clone();
    assert_eq!(controls["position_limits"][0]["short_max"], json!("0.50000000"), "{controls}");
    assert_eq!(controls["position_limits"][0]["position"], json!("-0.50000000"), "{controls}");
    assert_eq!(controls["kill_switch"]["engaged"], json!(false), "{controls}");
}

#[test]
fn jurisdiction_rules_apply_to_the_next_command_and_carry_a_version() {
    let desk = TestDesk::relaxed();
    let (_, trader) = funded(&desk, "Jurisdiction Client"); // in DE (the test support's default)
    desk.set_price("USDT-USD", "0.9990", "1.0010");
    desk.set_price("BTC-USD", "50000.00", "50100.00");
    let usdt = json!({"instrument": "USDT-USD", "side": "buy", "quantity": "100"});
    desk.rfq(&trader, &usdt).expect(201);
    let rule =
        desk.put(&desk.admin, "/v1/admin/jurisdictions/DE", &json!({"blocked": false, "blocked_assets": ["USDT"]}));
    assert_eq!(rule.expect(200)["version"], json!(1));
    assert_problem(&desk.rfq(&trader, &usdt), 403, "jurisdiction_restricted");
    let btc = json!({"instrument": "BTC-USD", "side": "buy", "quantity": "0.1"});
    desk.rfq(&trader, &btc).expect(201);
    let blocked = desk.put(&desk.admin, "/v1/admin/jurisdictions/DE", &json!({"blocked": true}));
    assert_eq!(blocked.expect(200)["version"], json!(2));
    assert_problem(&desk.rfq(&trader, &btc), 403, "jurisdiction_restricted");
    assert_problem(&limit(&desk, &trader, "j-1", "50100.00", "ioc", None), 403, "jurisdiction_restricted");
    assert_invalid(&desk.put(&desk.admin, "/v1/admin/jurisdictions/germany", &json!({"blocked": true})), "code");
    assert_invalid(
        &desk.put(&desk.admin, "/v1/admin/jurisdictions/FR", &json!({"blocked": false, "blocked_assets": ["XYZ"]})),
        "blocked_assets",
    );
    let listed = desk.get(&desk.admin, "/v1/admin/jurisdictions").expect(200).clone();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}
