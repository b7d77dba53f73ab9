//! Black-box hedging with the paper venue (`--market manual`: one venue, `manual`, filled by the paper adapter):
//! a client buy of 2 BTC against a 0.5 BTC band is hedged back within a second and shows in the admin view, the
//! report and the ledger; rejects and timeouts end with exactly the intended quantity; the kill switch stops new
//! hedges; kill -9 between a child's send and its acknowledgement does not double the hedge.

use otcd_testkit::http::{assert_invalid, assert_problem, text};
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
    // A restart after `kill -9` recovers the hedge from its journaled venue reports (fills included) exactly.
    let before = desk.get(&desk.admin, "/v1/admin/hedging").expect(200).clone();
    let desk = desk.crash_and_restart();
    let after = desk.get(&desk.admin, "/v1/admin/hedging").expect(200).clone();
    assert_eq!(after["recent"], before["recent"], "the hedges after recovery");
    let report_after = desk.get(&desk.admin, "/v1/admin/reports/hedging").expect(200).clone();
    assert_eq!(report_after["items"], report["items"], "the hedging report after recovery");
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
    // The misbehaviour happened: at least one child rejected and one timed out (then found by status).
    let children = hedges[0]["children"].as_array().unwrap();
    assert!(children.iter().any(|child| child["state"] == json!("rejected")), "a reject: {view:#}");
    assert!(children.iter().any(|child| child["timed_out"] == json!(true)), "a timeout: {view:#}");
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

/// Paper venues that open empty: they hold only what the desk transfers to them.
fn ledger_funded_config() -> String {
    format!("{RELAXED_CONFIG}paper_opening_balances = false\n")
}

fn transfer(desk: &TestDesk, venue: &str, body: &Value) -> otcd_testkit::http::Reply {
    desk.post(&desk.admin, &format!("/v1/admin/venues/{venue}/transfers"), body)
}

fn reconciliation(desk: &TestDesk) -> Value {
    desk.get(&desk.admin, "/v1/admin/reconciliation").expect(200).clone()
}

fn venue_line<'a>(report: &'a Value, venue: &str, asset: &str) -> &'a Value {
    let lines = report["venues"].as_array().expect("venue lines");
    lines.iter().find(|line| line["venue"] == json!(venue) && line["asset"] == json!(asset)).unwrap_or_else(|| {
        panic!("no {venue} {asset} line: {report:#}");
    })
}

#[test]
fn venue_transfers_are_journaled_idempotent_and_refused_with_stable_codes() {
    let desk = TestDesk::with_config(&ledger_funded_config());
    desk.post(&desk.admin, "/v1/admin/desk/funding", &json!({"asset": "BTC", "amount": "10", "reference": "cap-btc"}))
        .expect(201);
    let body = json!({"asset": "BTC", "amount": "4", "direction": "to_venue", "reference": "v-1"});
    let created = transfer(&desk, "manual", &body).expect(201).clone();
    assert_eq!(created["venue_balance"], json!("4.00000000"), "{created:#}");
    assert_eq!(created["direction"], json!("to_venue"));
    let repeated = transfer(&desk, "manual", &body).expect(200).clone();
    assert_eq!(repeated["transfer_id"], created["transfer_id"], "a repeat answers the original");
    let conflicting = json!({"asset": "BTC", "amount": "5", "direction": "to_venue", "reference": "v-1"});
    assert_problem(&transfer(&desk, "manual", &conflicting), 409, "conflict");
    let fresh = |amount: &str, direction: &str| json!({"asset": "BTC", "amount": amount, "direction": direction, "reference": "v-2"});
    assert_problem(&transfer(&desk, "nowhere", &fresh("1", "to_venue")), 404, "not_found");
    let unknown_asset = json!({"asset": "XYZ", "amount": "1", "direction": "to_venue", "reference": "v-2"});
    assert_eq!(transfer(&desk, "manual", &unknown_asset).body["code"], json!("invalid_request"));
    assert_problem(&transfer(&desk, "manual", &fresh("7", "to_venue")), 422, "insufficient_funds");
    assert_problem(&transfer(&desk, "manual", &fresh("5", "from_venue")), 422, "insufficient_funds");
    assert_invalid(&transfer(&desk, "manual", &fresh("0", "to_venue")), "amount");
    assert_invalid(&transfer(&desk, "manual", &fresh("-1", "to_venue")), "amount");
    assert_invalid(&transfer(&desk, "manual", &fresh("1", "sideways")), "direction");
    // Back from the venue; the ledger's custody and venue accounts, the rail and the paper venue all agree.
    transfer(&desk, "manual", &fresh("1.5", "from_venue")).expect(201);
    let report = reconciliation(&desk);
    assert_eq!(report["status"], json!("matched"), "the custodian was told: {report:#}");
    let btc = venue_line(&report, "manual", "BTC");
    assert_eq!((btc["ledger"].clone(), btc["at_venue"].clone()), (json!("2.50000000"), json!("2.50000000")));
    assert_eq!(report["venue_status"], json!("matched"), "{report:#}");
    let custody = report["lines"].as_array().unwrap().iter().find(|line| line["asset"] == json!("BTC")).unwrap();
    assert_eq!(custody["ledger"], json!("7.50000000"), "{custody:#}");
    let view = hedging(&desk);
    let manual = view["venues"].as_array().unwrap().iter().find(|venue| venue["venue"] == json!("manual")).unwrap();
    assert_eq!(manual["balances"]["BTC"], json!("2.50000000"), "{manual:#}");
    // Survives a restart (journaled; the paper venue keeps its file).
    let desk = desk.crash_and_restart();
    let report = reconciliation(&desk);
    assert_eq!(venue_line(&report, "manual", "BTC")["ledger"], json!("2.50000000"));
    assert_eq!(report["venue_status"], json!("matched"), "{report:#}");
}

#[test]
fn venue_balances_reconcile_with_the_ledger_and_a_difference_is_a_break() {
    // Ledger-funded venues: a hedge's fills move both sides alike, so nothing breaks.
    let desk = TestDesk::with_config(&ledger_funded_config());
    let trader = setup(&desk);
    desk.post(&desk.admin, "/v1/admin/desk/funding", &json!({"asset": "USD", "amount": "500000", "reference": "cap"}))
        .expect(201);
    let usd = json!({"asset": "USD", "amount": "300000", "direction": "to_venue", "reference": "usd-1"});
    transfer(&desk, "manual", &usd).expect(201);
    buy(&desk, &trader, "rec-1", "2");
    wait_settled(&desk, "0.00000000", Duration::from_secs(2));
    let report = reconciliation(&desk);
    assert_eq!(
        (report["venue_status"].clone(), report["venue_breaks"].clone()),
        (json!("matched"), json!(0)),
        "{report:#}"
    );
    assert_eq!(venue_line(&report, "manual", "BTC")["at_venue"], json!("2.00000000"), "{report:#}");
    assert_eq!(venue_line(&report, "manual", "USD")["status"], json!("matched"), "{report:#}");
    // Venues that open with balances the ledger does not know: every one of them is a break.
    let desk = TestDesk::with_config(RELAXED_CONFIG);
    let report = reconciliation(&desk);
    let btc = venue_line(&report, "manual", "BTC");
    assert_eq!((btc["ledger"].clone(), btc["at_venue"].clone()), (json!("0.00000000"), json!("1000.00000000")));
    assert_eq!((btc["status"].clone(), btc["difference"].clone()), (json!("break"), json!("1000.00000000")));
    assert_eq!(report["venue_status"], json!("breaks"), "{report:#}");
    assert_eq!(report["status"], json!("matched"), "the rails' lines are apart from the venues': {report:#}");
}

/// `otcd demo` on a free port with a fast, short client flow; killed when dropped.
struct Demo {
    child: std::process::Child,
    address: String,
    admin: Signer,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(flow: &[&str]) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("demo");
        let mut child = std::process::Command::new(otcd_testkit::process::otcd_binary())
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(flow)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn otcd demo");
        let stdout = child.stdout.take().unwrap();
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.split("running at http://").nth(1) {
                    let _ = found.send(at.trim().to_owned());
                }
            }
        });
        let address = address.recv_timeout(Duration::from_secs(60)).expect("the demo prints its address once seeded");
        let admin = otcd_testkit::process::read_admin_key(&data_dir);
        Self { child, address, admin, _dir: dir }
    }

    fn get(&self, path: &str) -> Value {
        let headers = self.admin.headers("GET", path, "");
        let agent = otcd_testkit::http::agent();
        let url = format!("http://{}{path}", self.address);
        otcd_testkit::http::try_send(&agent, &url, "GET", "", &headers).expect("the demo answers").expect(200).clone()
    }
}

/// A decimal string as 18-decimal units, signed.
fn signed_units(value: &Value) -> i128 {
    let text = text(value);
    let scale = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
    otcd_testkit::http::units(&text, scale) * 10i128.pow(18 - scale as u32)
}

fn units(value: &Value) -> i128 {
    signed_units(value).abs()
}

#[test]
fn the_demo_hedges_its_simulated_client_flow_and_keeps_positions_inside_their_bands() {
    // 40 trades, one every 100 ms: BTC 0.05 to 0.5 against a 0.5 band, ETH 0.5 to 5 against a 5 band.
    let demo = Demo::start(&["--client-flow-interval-ms", "100", "--client-flow-trades", "40"]);
    let view = demo.get("/v1/admin/hedging");
    let policies: Vec<String> = view["policies"].as_array().unwrap().iter().map(|p| text(&p["asset"])).collect();
    assert_eq!(policies, ["BTC", "ETH"], "{view:#}");
    // The venues hold what the ledger transferred to them: the demo starts reconciled.
    let report = demo.get("/v1/admin/reconciliation");
    assert_eq!(report["venue_status"], json!("matched"), "{report:#}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = demo.get("/v1/admin/hedging");
        let hedges = view["active"].as_array().unwrap().len() + view["recent"].as_array().unwrap().len();
        if hedges > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no hedge within 10 s of the flow: {view:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // After the flow (40 trades at 100 ms) and its hedges: every position within band + the largest client trade.
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let trades = demo.get("/v1/admin/trades?limit=1000");
        let view = demo.get("/v1/admin/hedging");
        let done = trades["items"].as_array().is_some_and(|items| items.len() >= 40);
        if done && view["active"].as_array().is_some_and(Vec::is_empty) {
            std::thread::sleep(Duration::from_millis(300));
            let again = demo.get("/v1/admin/hedging");
            if again["active"].as_array().is_some_and(Vec::is_empty) {
                break again;
            }
        }
        assert!(Instant::now() < deadline, "the flow did not end with its hedges done: {view:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The desk's capital (100 BTC, 1,000 ETH) is each policy's target.
    let whole = 10i128.pow(18);
    for (asset, target, bound) in [("BTC", 100, whole / 2 + whole / 2), ("ETH", 1_000, 5 * whole + 5 * whole)] {
        let policy = view["policies"].as_array().unwrap().iter().find(|p| p["asset"] == json!(asset)).unwrap();
        assert_eq!(units(&policy["target"]), target * whole, "{policy:#}");
        let line = view["positions"].as_array().unwrap().iter().find(|line| line["asset"] == json!(asset)).unwrap();
        let away = (signed_units(&line["position"]) - target * whole).abs();
        assert!(away <= bound, "{asset} outside band + largest trade: {view:#}");
    }
    assert!(view["recent"].as_array().unwrap().iter().all(|hedge| hedge["state"] == json!("filled")), "{view:#}");
    let report = demo.get("/v1/admin/reports/hedging");
    assert!(report["items"].as_array().is_some_and(|rows| rows.iter().any(|row| row["pnl"].is_string())), "{report:#}");
    let reconciliation = demo.get("/v1/admin/reconciliation");
    assert_eq!(reconciliation["venue_status"], json!("matched"), "{reconciliation:#}");
    assert_eq!(reconciliation["status"], json!("matched"), "{reconciliation:#}");
}
