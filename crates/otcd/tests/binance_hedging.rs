//! Black-box hedging at a (fake) Binance: `otcd serve --market venues` prices BTC-USDT from the fake's depth
//! stream and, with the venue's API credentials in the environment, sends the hedge's child orders to the fake's
//! signed order entry (`POST /api/v3/order`), which fills them; the hedge is booked and shows in the admin view
//! with the venue's own balances.

use otcd_testkit::http::text;
use otcd_testkit::process::{TestDesk, RELAXED_CONFIG};
use otcd_venues::config::VenueKind;
use otcd_venues::fake::{FakeBook, FakeVenue};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "test-binance-api-key";
const SECRET: &str = "test-binance-api-secret";

fn venues_file(fake: &FakeVenue) -> String {
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
order_timeout_ms = 2000
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

#[test]
fn a_client_buy_is_hedged_with_signed_orders_that_the_fake_binance_fills() {
    let _timing = otcd_testkit::process::timing_lock();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let fake = runtime.block_on(FakeVenue::start(VenueKind::Binance)).unwrap();
    let book = [("49990.00", "5.00000000")];
    let asks = [("50010.00", "0.60000000"), ("50020.00", "5.00000000")];
    fake.serve_book(vec![FakeBook::new("BTCUSDT", &book, &asks)], Duration::from_millis(100));
    let trading = fake.enable_trading(KEY, SECRET, 1_000);
    trading.set_book("BTCUSDT", "BTC", "USDT", &book, &asks);
    trading.set_balance("USDT", "1000000");
    trading.set_balance("BTC", "10");

    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("venues.toml");
    std::fs::write(&path, venues_file(&fake)).unwrap();
    let desk = TestDesk::launch()
        .config(RELAXED_CONFIG)
        .args(&["--market", "venues", "--venues-config", path.to_str().unwrap()])
        .env("OTCD_TEST_BINANCE_KEY", KEY)
        .env("OTCD_TEST_BINANCE_SECRET", SECRET)
        .start();
    assert!(!desk.log().contains(SECRET), "the secret is never logged");
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

    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let view = hedging(&desk);
        let settled = view["active"].as_array().is_some_and(Vec::is_empty)
            && view["recent"].as_array().is_some_and(|recent| !recent.is_empty())
            && text(&view["positions"][0]["position"]) == "0.00000000";
        if settled {
            break view;
        }
        assert!(Instant::now() < deadline, "not hedged at the fake Binance: {view:#}\n{}", desk.log());
        std::thread::sleep(Duration::from_millis(50));
    };
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
        let view = hedging(&desk);
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
    drop(desk);
    drop(fake);
}
