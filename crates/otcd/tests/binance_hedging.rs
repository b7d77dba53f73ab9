//! Black-box hedging at a (fake) Binance: `otcd serve --market venues` prices BTC-USDT from the fake's depth
//! stream and, with the venue's API credentials in the environment, sends the hedge's child orders to the fake's
//! signed order entry (`POST /api/v3/order`), which fills them; the hedge is booked and shows in the admin view
//! with the venue's own balances. A venue that rejects, answers after the timeout and fails with a 5xx still ends
//! with exactly the intended quantity: no order is ever sent twice.

use otcd_testkit::http::text;
use otcd_testkit::process::{TestDesk, RELAXED_CONFIG};
use otcd_venues::config::VenueKind;
use otcd_venues::fake::{FakeBook, FakeVenue};
use otcd_venues::fake_binance::{FakeBinanceTrading, Fault};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "test-binance-api-key";
const SECRET: &str = "test-binance-api-secret";

fn venues_file(fake: &FakeVenue, order_timeout_ms: u64) -> String {
    format!(
        r#"
[[venues]]
name = "binance"
kind = "binance"
ws_url = "{}"
rest_url = "{}"
fee_bps = "10"
max_book_age_ms = 3000
reconnect_delay_ms_min = 50
api_key_env = "OTCD_TEST_BINANCE_KEY"
api_secret_env = "OTCD_TEST_BINANCE_SECRET"
order_timeout_ms = {order_timeout_ms}
[venues.symbols]
"BTC-USDT" = "BTCUSDT"
"#,
        fake.ws_url(),
        fake.rest_url()
    )
}

fn wait_live(desk: &TestDesk) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let feeds = desk.get(&desk.admin, "/v1/admin/market/venues").expect(200)["data"].clone();
        if feeds.as_array().is_some_and(|feeds| feeds.iter().any(|feed| feed["state"] == json!("live"))) {
            return;
        }
        assert!(Instant::now() < deadline, "the fake Binance never became live: {feeds}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hedging(desk: &TestDesk) -> Value {
    desk.get(&desk.admin, "/v1/admin/hedging").expect(200).clone()
}

/// A fake Binance (market data and order entry, its books alike) and a desk hedging BTC at it, after a client
/// bought 2 BTC against a 0.5 BTC band.
struct Hedged {
    desk: TestDesk,
    trading: Arc<FakeBinanceTrading>,
    _fake: FakeVenue,
    _scratch: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

fn hedged(order_timeout_ms: u64, faults: Vec<Fault>) -> Hedged {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let fake = runtime.block_on(FakeVenue::start(VenueKind::Binance)).unwrap();
    let book = [("49990.00", "5.00000000")];
    let asks = [("50010.00", "0.60000000"), ("50020.00", "5.00000000")];
    fake.serve_book(vec![FakeBook::new("BTCUSDT", &book, &asks)], Duration::from_millis(100));
    let trading = fake.enable_trading(KEY, SECRET, 1_000);
    trading.set_book("BTCUSDT", "BTC", "USDT", &book, &asks);
    trading.set_balance("USDT", "1000000");
    trading.set_balance("BTC", "10");
    faults.into_iter().for_each(|fault| trading.fault(fault));

    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("venues.toml");
    std::fs::write(&path, venues_file(&fake, order_timeout_ms)).unwrap();
    let desk = TestDesk::launch()
        .config(RELAXED_CONFIG)
        .args(&["--market", "venues", "--venues-config", path.to_str().unwrap()])
        .env("OTCD_TEST_BINANCE_KEY", KEY)
        .env("OTCD_TEST_BINANCE_SECRET", SECRET)
        .start();
    wait_live(&desk);

    desk.put_tier("zero", &json!({"spread_bps": "0"}));
    let (client_id, trader) = desk.client("Binance Hedged", "zero", "approved");
    desk.deposit(&client_id, "USDT", "1000000", "binance-usdt").expect(201);
    let policy = json!({"enabled": true, "band": "0.5", "instruments": ["BTC-USDT"], "venues": ["binance"],
        "order_quantity_max": "1", "slippage_bps_max": "50", "attempts_max": 10});
    desk.put(&desk.admin, "/v1/admin/hedging/BTC", &policy).expect(200);
    let body = json!({"client_order_id": "b-1", "type": "market", "instrument": "BTC-USDT", "side": "buy",
        "quantity": "2"});
    desk.post(&trader, "/v1/orders", &body).expect(201);
    Hedged { desk, trading, _fake: fake, _scratch: scratch, _runtime: runtime }
}

/// Waits until no hedge is active and the position is back at zero.
fn wait_settled(desk: &TestDesk, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let view = hedging(desk);
        let settled = view["active"].as_array().is_some_and(Vec::is_empty)
            && view["recent"].as_array().is_some_and(|recent| !recent.is_empty())
            && text(&view["positions"][0]["position"]) == "0.00000000";
        if settled {
            return view;
        }
        assert!(Instant::now() < deadline, "not hedged at the fake Binance: {view:#}\n{}", desk.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_buy_is_hedged_with_signed_orders_that_the_fake_binance_fills() {
    let _timing = otcd_testkit::process::timing_lock();
    let Hedged { desk, trading, .. } = &hedged(2_000, Vec::new());
    assert!(!desk.log().contains(SECRET), "the secret is never logged");
    let view = wait_settled(desk, Duration::from_secs(10));
    let hedge = &view["recent"][0];
    assert_eq!((hedge["state"].clone(), hedge["filled"].clone()), (json!("filled"), json!("2.00000000")), "{hedge:#}");
    // The children reached the fake Binance under their client order ids, signed, and were filled there.
    let orders = trading.orders();
    let children: Vec<String> =
        hedge["children"].as_array().unwrap().iter().map(|child| text(&child["client_order_id"])).collect();
    let sent: Vec<String> = orders.iter().map(|order| order.client_order_id.clone()).collect();
    assert_eq!(sent, children, "each child sent once: {hedge:#}");
    assert!(orders.iter().all(|order| order.order_type == "LIMIT" && order.side == "BUY"), "{orders:?}");
    let executed: i128 = orders.iter().map(|order| order.executed_qty).sum();
    assert_eq!(executed, 200_000_000, "the venue filled exactly 2 BTC: {orders:?}");
    // The first child took the 0.6 at 50010.00 and 0.4 at 50020.00: a partial level walk.
    assert_eq!(orders[0].trades.len(), 2, "{orders:?}");
    assert_eq!(trading.balance("BTC"), "12.00000000");
    // The admin view shows the venue's own balances, read from GET /api/v3/account.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let view = hedging(desk);
        let binance =
            view["venues"].as_array().unwrap().iter().find(|venue| venue["venue"] == json!("binance")).cloned();
        if binance.as_ref().is_some_and(|venue| venue["balances"]["BTC"] == json!("12.00000000")) {
            break;
        }
        assert!(Instant::now() < deadline, "binance balances not shown: {view:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Booked: the hedging report has the hedge with its venue price.
    let report = desk.get(&desk.admin, "/v1/admin/reports/hedging").expect(200).clone();
    assert_eq!(report["items"].as_array().unwrap().len(), 1, "{report:#}");
    assert!(!desk.log().contains(SECRET), "the secret is never logged");
}

#[test]
fn a_reject_a_slow_answer_and_a_5xx_end_with_exactly_the_intended_quantity_and_no_order_sent_twice() {
    let _timing = otcd_testkit::process::timing_lock();
    // The first child is rejected, the second answered after the 500 ms timeout (taken and filled), the
    // rejected quantity's retry answered with a 503 after being taken: every unknown outcome is found by asking.
    let faults = vec![
        Fault::Reject("Account has insufficient balance for requested action.".into()),
        Fault::Slow(Duration::from_millis(1_500)),
        Fault::ServerError { taken: true },
    ];
    let Hedged { desk, trading, .. } = &hedged(500, faults);
    let view = wait_settled(desk, Duration::from_secs(20));
    let hedges = view["recent"].as_array().unwrap();
    let filled: Vec<String> = hedges.iter().map(|hedge| text(&hedge["filled"])).collect();
    assert_eq!(filled, ["2.00000000"], "one hedge, exactly 2 BTC: {view:#}");
    let orders = trading.orders();
    let executed: i128 = orders.iter().map(|order| order.executed_qty).sum();
    assert_eq!(executed, 200_000_000, "the venue filled exactly 2 BTC: {orders:?}");
    let mut ids: Vec<&str> = orders.iter().map(|order| order.client_order_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), orders.len(), "no client order id twice: {orders:?}");
    assert_eq!(orders.len(), 2, "the rejected order never existed; the others once each: {orders:?}");
    let children = hedges[0]["children"].as_array().unwrap();
    assert_eq!(children.len(), 3, "the rejected child was routed again: {:#}", hedges[0]);
    assert_eq!(trading.faults_pending(), 0, "every fault was met");
    // The fake refuses a known client order id, so the proof of no resend is the requests: one POST per child,
    // however often the worker asked for the order afterwards.
    let posts = trading.requests().iter().filter(|request| *request == "POST /api/v3/order").count();
    assert_eq!(posts, 3, "{:?}", trading.requests());
    assert_eq!(trading.balance("BTC"), "12.00000000");
}

#[test]
fn missing_credentials_stop_the_desk_at_startup_naming_the_variable() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("venues.toml");
    let file = "[[venues]]\nname = \"binance\"\nkind = \"binance\"\nrest_url = \"http://127.0.0.1:9\"\n\
                api_key_env = \"OTCD_TEST_UNSET_BINANCE_KEY\"\napi_secret_env = \"OTCD_TEST_UNSET_BINANCE_SECRET\"\n\
                [venues.symbols]\n\"BTC-USDT\" = \"BTCUSDT\"\n";
    std::fs::write(&path, file).unwrap();
    let output = otcd_testkit::process::run_otcd(
        &["serve", "--listen", "127.0.0.1:0", "--market", "venues", "--venues-config", path.to_str().unwrap()],
        &scratch.path().join("desk"),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("venue binance") && stderr.contains("OTCD_TEST_UNSET_BINANCE_KEY"), "{stderr}");
}
