//! `otcd serve --market venues` against two fake exchanges on loopback (Kraken and Coinbase, each speaking its
//! real WebSocket protocol): an RFQ is priced from the consolidated book of both, exactly, and a venue that goes
//! silent leaves the next quote within its maximum book age.

use otcd_core::market::pricing::{client_price, executable};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::time::TimestampMs;
use otcd_testkit::process::TestDesk;
use otcd_venues::config::VenueKind;
use otcd_venues::fake::{FakeBook, FakeVenue};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MAX_AGE_MS: u64 = 1_500;

fn venues_file(kraken: &FakeVenue, coinbase: &FakeVenue) -> String {
    format!(
        r#"
[[venues]]
name = "kraken"
kind = "kraken"
ws_url = "{}"
depth = 10
max_book_age_ms = {MAX_AGE_MS}
fee_bps = "26"
reconnect_delay_ms_min = 50
[venues.symbols]
"BTC-USD" = "BTC/USD"

[[venues]]
name = "coinbase"
kind = "coinbase"
ws_url = "{}"
max_book_age_ms = {MAX_AGE_MS}
fee_bps = "60"
reconnect_delay_ms_min = 50
[venues.symbols]
"BTC-USD" = "BTC-USD"
"#,
        kraken.ws_url(),
        coinbase.ws_url()
    )
}

fn wait_for_venues(desk: &TestDesk, live: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let feeds = desk.get(&desk.admin, "/v1/admin/market/venues").expect(200)["data"].as_array().unwrap().clone();
        if feeds.iter().filter(|feed| feed["state"] == json!("live")).count() == live {
            return feeds;
        }
        assert!(Instant::now() < deadline, "venues never became live: {feeds:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn level(price: i128, quantity: i128) -> Level {
    Level { price, quantity }
}

#[test]
fn an_rfq_is_the_vwap_of_both_fake_venues_plus_the_spread_and_a_silent_venue_drops_out() {
    let _timing = otcd_testkit::process::timing_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kraken = runtime.block_on(FakeVenue::start(VenueKind::Kraken)).unwrap();
    let coinbase = runtime.block_on(FakeVenue::start(VenueKind::Coinbase)).unwrap();
    kraken.serve_book(
        vec![FakeBook::new(
            "BTC/USD",
            &[("49990.0", "0.50000000"), ("49980.0", "1.00000000")],
            &[("50010.0", "0.50000000"), ("50020.0", "1.00000000")],
        )],
        Duration::from_millis(100),
    );
    coinbase.serve_book(
        vec![FakeBook::new(
            "BTC-USD",
            &[("49995.00", "0.3"), ("49970.00", "2")],
            &[("50005.00", "0.3"), ("50030.00", "2")],
        )],
        Duration::from_millis(100),
    );
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("venues.toml");
    std::fs::write(&path, venues_file(&kraken, &coinbase)).unwrap();
    let desk = TestDesk::launch().args(&["--market", "venues", "--venues-config", path.to_str().unwrap()]).start();
    let feeds = wait_for_venues(&desk, 2);
    let kraken_feed = feeds.iter().find(|feed| feed["venue"] == json!("kraken")).unwrap();
    assert_eq!(kraken_feed["kind"], json!("kraken"), "{kraken_feed}");
    assert_eq!(kraken_feed["venue_symbol"], json!("BTC/USD"));
    assert_eq!(kraken_feed["fee_bps"], json!("26"));
    assert_eq!(kraken_feed["max_book_age_ms"], json!(MAX_AGE_MS));

    // The consolidated buy of 1 BTC, by hand: 0.3 @ 50005.00 (Coinbase) + 0.5 @ 50010.0 (Kraken) + 0.2 @ 50020.0
    // (Kraken) = 15001.50 + 25005.00 + 10004.00 = 50010.50 per BTC; the standard tier's 20 bps: 50010.50 × 1.002
    // = 50110.521 → up to 50110.53. The core's own functions agree.
    let btc = 100_000_000;
    let books = [
        VenueBook {
            venue: "kraken".into(),
            instrument: "BTC-USD".into(),
            bids: vec![level(4_999_000, btc / 2), level(4_998_000, btc)],
            asks: vec![level(5_001_000, btc / 2), level(5_002_000, btc)],
            as_of: TimestampMs(0),
        },
        VenueBook {
            venue: "coinbase".into(),
            instrument: "BTC-USD".into(),
            bids: vec![level(4_999_500, 3 * btc / 10), level(4_997_000, 2 * btc)],
            asks: vec![level(5_000_500, 3 * btc / 10), level(5_003_000, 2 * btc)],
            as_of: TimestampMs(0),
        },
    ];
    let walk = executable(&books, Side::Buy, btc, TimestampMs(0), 1).unwrap();
    assert_eq!(client_price(&walk, Side::Buy, 2_000, 0, 1).unwrap(), 5_011_053);
    let trader = desk.trader("Venue Trader");
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "buy", "1"), "50110.53");
    // The sell side: 0.3 @ 49995.00 + 0.5 @ 49990.0 + 0.2 @ 49980.0 = 14998.50 + 24995.00 + 9996.00 = 49989.50;
    // × 0.998 = 49889.5221 → down to 49889.52.
    let walk = executable(&books, Side::Sell, btc, TimestampMs(0), 1).unwrap();
    assert_eq!(client_price(&walk, Side::Sell, 2_000, 0, 1).unwrap(), 4_988_952);
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "sell", "1"), "49889.52");

    let metrics = desk.public_get("/metrics").text;
    assert!(
        metrics.contains("otcd_venue_state{venue=\"coinbase\",instrument=\"BTC-USD\",state=\"live\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("otcd_venue_updates_total{venue=\"kraken\",instrument=\"BTC-USD\"}"), "{metrics}");

    // Coinbase goes silent (no updates, no heartbeats, the connection stays up): within its max age the next
    // quote is Kraken's alone: 0.5 @ 50010.0 + 0.5 @ 50020.0 = 50015.00; × 1.002 = 50115.03.
    coinbase.pause();
    std::thread::sleep(Duration::from_millis(MAX_AGE_MS + 300));
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "buy", "1"), "50115.03");
    let feeds = desk.get(&desk.admin, "/v1/admin/market/venues").expect(200)["data"].clone();
    let silent = feeds.as_array().unwrap().iter().find(|feed| feed["venue"] == json!("coinbase")).unwrap().clone();
    assert_eq!(silent["state"], json!("stale"), "{silent}");
    assert!(silent["age_ms"].as_i64().unwrap() > MAX_AGE_MS as i64, "{silent}");

    // Back: priced from both again.
    coinbase.resume();
    wait_for_venues(&desk, 2);
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "buy", "1"), "50110.53");
    drop(desk);
    drop(runtime);
}

#[test]
fn a_bad_venues_file_is_a_clear_startup_error() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("venues.toml");
    std::fs::write(
        &path,
        "[[venues]]\nname = \"k\"\nkind = \"kraken\"\ncolour = \"red\"\n[venues.symbols]\n\"BTC-USD\" = \"BTC/USD\"\n",
    )
    .unwrap();
    let data = scratch.path().join("desk");
    let output = otcd_testkit::process::run_otcd(
        &["serve", "--listen", "127.0.0.1:0", "--market", "venues", "--venues-config", path.to_str().unwrap()],
        &data,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
    std::fs::write(
        &path,
        "[[venues]]\nname = \"k\"\nkind = \"kraken\"\n[venues.symbols]\n\"DOGE-USD\" = \"DOGE/USD\"\n",
    )
    .unwrap();
    let output = otcd_testkit::process::run_otcd(
        &["serve", "--listen", "127.0.0.1:0", "--market", "venues", "--venues-config", path.to_str().unwrap()],
        &data,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"DOGE-USD\" is not in the desk's catalog"), "{stderr}");
    let output = otcd_testkit::process::run_otcd(&["serve", "--listen", "127.0.0.1:0", "--market", "venues"], &data);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--market venues needs --venues-config FILE"));
}
