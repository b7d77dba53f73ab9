//! Every connector against its fake venue on loopback: the real connection life (WebSocket, REST, reconnects)
//! with fixtures in each venue's documented format. Each test ends with the exact book in the hub, level by
//! level, or the venue out of pricing.

use otcd_core::catalog::Catalog;
use otcd_core::market::{Level, VenueBook};
use otcd_market::{now_ms, FeedState, HubConfig, MarketHub};
use otcd_venues::config::{VenueKind, VenuesConfig};
use otcd_venues::fake::{self, FakeBook, FakeVenue};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

struct Running {
    hub: Arc<MarketHub>,
    _stop: watch::Sender<bool>,
    venue: String,
}

impl Running {
    /// Waits until `instrument`'s book of the venue is exactly `bids`/`asks` (levels in the desk's units).
    async fn wait_book(&self, instrument: &str, bids: &[(i128, i128)], asks: &[(i128, i128)]) -> VenueBook {
        let levels = |levels: &[(i128, i128)]| -> Vec<Level> {
            levels.iter().map(|(price, quantity)| Level { price: *price, quantity: *quantity }).collect()
        };
        let (bids, asks) = (levels(bids), levels(asks));
        let mut last = None;
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            last = self.book(instrument);
            if let Some(book) = &last {
                if book.bids == bids && book.asks == asks {
                    return book.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("expected bids {bids:?} asks {asks:?}, last book {last:?}");
    }

    fn book(&self, instrument: &str) -> Option<VenueBook> {
        self.hub.all_books(instrument).into_iter().find(|book| book.venue == self.venue)
    }

    async fn wait_withdrawn(&self, instrument: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.book(instrument).is_some() {
            assert!(tokio::time::Instant::now() < deadline, "the book was never withdrawn");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn status(&self, instrument: &str) -> otcd_market::FeedStatus {
        self.hub
            .venue_board()
            .feeds()
            .into_iter()
            .find(|status| status.venue == self.venue && status.instrument == instrument)
            .expect("a registered feed")
    }
}

/// Starts the connector of `kind` named `venue` against `fake`, for `symbols` (instrument, venue symbol).
fn start(fake: &FakeVenue, symbols: &[(&str, &str)], extra: &str) -> Running {
    let catalog = Catalog::builtin();
    let kind = match fake.kind() {
        VenueKind::Binance => "binance",
        VenueKind::Coinbase => "coinbase",
        VenueKind::Kraken => "kraken",
        VenueKind::Bitstamp => "bitstamp",
        VenueKind::Sim => unreachable!(),
    };
    let rest = match fake.kind() {
        VenueKind::Binance | VenueKind::Bitstamp => format!("rest_url = \"{}\"\n", fake.rest_url()),
        _ => String::new(),
    };
    let depth = if fake.kind() == VenueKind::Kraken { 10 } else { 20 };
    let symbols: String =
        symbols.iter().map(|(instrument, symbol)| format!("\"{instrument}\" = \"{symbol}\"\n")).collect();
    let text = format!(
        "[[venues]]\nname = \"{kind}-fake\"\nkind = \"{kind}\"\nws_url = \"{}\"\n{rest}depth = {depth}\n\
         reconnect_delay_ms_min = 10\nreconnect_delay_ms_max = 50\nping_interval_ms = 200\n{extra}\n[venues.symbols]\n{symbols}",
        fake.ws_url()
    );
    let config = VenuesConfig::parse(&text, &catalog).expect("a valid test configuration");
    let venue = config.venues[0].clone();
    let hub = MarketHub::new(
        &catalog,
        HubConfig {
            max_age_ms_by_venue: HashMap::from([(venue.name.clone(), venue.max_book_age_ms)]),
            ..HubConfig::default()
        },
    );
    let (stop, receiver) = watch::channel(false);
    drop(otcd_venues::source(&venue, &catalog).spawn(hub.clone(), receiver));
    Running { hub, _stop: stop, venue: venue.name }
}

fn levels(levels: &[(&str, &str)]) -> Vec<(String, String)> {
    levels.iter().map(|(price, quantity)| (price.to_string(), quantity.to_string())).collect()
}

const BTC: i128 = 100_000_000;

#[tokio::test]
async fn binance_snapshot_updates_and_a_gap_resynced_from_a_new_snapshot() {
    let fake = FakeVenue::start(VenueKind::Binance).await.unwrap();
    let target = fake::binance_snapshot_target("BTCUSDT");
    // Binance's documented snapshot example, with our prices.
    fake.push_rest(
        &target,
        &fake::binance_snapshot(
            1027024,
            &levels(&[("4.00000000", "431.00000000")]),
            &levels(&[("4.00000200", "12.00000000")]),
        ),
    );
    fake.push_rest(
        &target,
        &fake::binance_snapshot(1027050, &levels(&[("100.00", "1.5")]), &levels(&[("100.10", "2")])),
    );
    let running = start(&fake, &[("BTC-USDT", "BTCUSDT")], "");
    assert!(fake.wait_received("btcusdt@depth@100ms", 1, WAIT).await);
    // Events the snapshot already holds are dropped; the first applied straddles lastUpdateId.
    fake.send(&fake::binance_event("BTCUSDT", 1027000, 1027010, &levels(&[("3.00", "9")]), &[]));
    fake.send(&fake::binance_event("BTCUSDT", 1027011, 1027030, &levels(&[("3.99", "1")]), &[]));
    // 4.000002 is an ask with more precision than the instrument's 0.01: rounded up to 4.01.
    running.wait_book("BTC-USDT", &[(400, 431 * BTC), (399, BTC)], &[(401, 12 * BTC)]).await;
    fake.send(&fake::binance_event(
        "BTCUSDT",
        1027031,
        1027031,
        &levels(&[("3.99", "0")]),
        &levels(&[("4.50", "0.123456789")]),
    ));
    running.wait_book("BTC-USDT", &[(400, 431 * BTC)], &[(401, 12 * BTC), (450, 12_345_678)]).await;
    assert_eq!(running.status("BTC-USDT").state, FeedState::Live);
    // 1027032 is lost: the book leaves pricing and is rebuilt from a new snapshot.
    fake.send(&fake::binance_event("BTCUSDT", 1027033, 1027040, &[], &[]));
    assert!(fake.wait_rest_requests(2, WAIT).await);
    fake.send(&fake::binance_event("BTCUSDT", 1027051, 1027051, &levels(&[("99.00", "1")]), &[]));
    running.wait_book("BTC-USDT", &[(10_000, 150_000_000), (9_900, BTC)], &[(10_010, 2 * BTC)]).await;
    assert_eq!(running.status("BTC-USDT").resyncs, 1);
}

#[tokio::test]
async fn coinbase_sequence_gap_resubscribes_and_heartbeats_keep_the_book_fresh() {
    let fake = FakeVenue::start(VenueKind::Coinbase).await.unwrap();
    let running = start(&fake, &[("BTC-USD", "BTC-USD")], "max_book_age_ms = 500");
    assert!(fake.wait_received("\"heartbeats\"", 1, WAIT).await);
    fake.send(&fake::coinbase_l2(
        0,
        "snapshot",
        "BTC-USD",
        &levels(&[("21921.73", "0.06317902"), ("21921.70", "1")]),
        &levels(&[("21921.74", "1.5")]),
    ));
    fake.send(&fake::coinbase_l2(1, "update", "BTC-USD", &levels(&[("21921.73", "0")]), &levels(&[("21921.75", "2")])));
    running.wait_book("BTC-USD", &[(2_192_170, BTC)], &[(2_192_174, 150_000_000), (2_192_175, 2 * BTC)]).await;
    // Heartbeats confirm the book past its max age.
    for sequence in 2..14 {
        fake.send(&fake::coinbase_heartbeat(sequence));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(running.hub.fresh_books("BTC-USD", now_ms()).len(), 1, "kept fresh by heartbeats");
    // Sequence 14 is lost: withdrawn at once, level2 renewed.
    fake.send(&fake::coinbase_l2(15, "update", "BTC-USD", &levels(&[("1", "1")]), &[]));
    running.wait_withdrawn("BTC-USD").await;
    assert!(fake.wait_received("\"unsubscribe\"", 1, WAIT).await);
    assert!(fake.wait_received("\"level2\"", 3, WAIT).await);
    fake.send(&fake::coinbase_l2(16, "snapshot", "BTC-USD", &levels(&[("100.00", "1")]), &levels(&[("101.00", "1")])));
    running.wait_book("BTC-USD", &[(10_000, BTC)], &[(10_100, BTC)]).await;
    assert_eq!(running.status("BTC-USD").resyncs, 1);
}

#[tokio::test]
async fn kraken_checksum_mismatch_withdraws_and_resubscribes() {
    let fake = FakeVenue::start(VenueKind::Kraken).await.unwrap();
    let running = start(&fake, &[("BTC-USD", "BTC/USD")], "");
    assert!(fake.wait_received("\"subscribe\"", 1, WAIT).await);
    let (bids, asks) =
        (levels(&[("45283.5", "0.10000000"), ("45283.4", "1.00000000")]), levels(&[("45285.2", "0.00100000")]));
    fake.send(&fake::kraken_book("snapshot", "BTC/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks)));
    running.wait_book("BTC-USD", &[(4_528_350, 10_000_000), (4_528_340, BTC)], &[(4_528_520, 100_000)]).await;
    // An update whose checksum does not match the book it makes.
    fake.send(&fake::kraken_book("update", "BTC/USD", &levels(&[("45283.5", "0.20000000")]), &[], 123));
    running.wait_withdrawn("BTC-USD").await;
    assert!(fake.wait_received("\"unsubscribe\"", 1, WAIT).await);
    assert!(fake.wait_received("\"subscribe\"", 2, WAIT).await, "subscribed again after the unsubscribe");
    assert_eq!(running.status("BTC-USD").checksum_failures, 1);
    let asks = levels(&[("45285.2", "0.00100000")]);
    let bids = levels(&[("45283.5", "0.20000000")]);
    fake.send(&fake::kraken_book("snapshot", "BTC/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks)));
    running.wait_book("BTC-USD", &[(4_528_350, 20_000_000)], &[(4_528_520, 100_000)]).await;
}

#[tokio::test]
async fn bitstamp_drops_stale_diffs_and_honours_request_reconnect() {
    let fake = FakeVenue::start(VenueKind::Bitstamp).await.unwrap();
    let target = fake::bitstamp_snapshot_target("btcusd");
    fake.push_rest(
        &target,
        &fake::bitstamp_snapshot(
            1_643_643_022_300_000,
            &levels(&[("36905.71", "0.10000000")]),
            &levels(&[("36910.00", "1")]),
        ),
    );
    let running = start(&fake, &[("BTC-USD", "btcusd")], "");
    assert!(fake.wait_received("diff_order_book_btcusd", 1, WAIT).await);
    fake.send(&fake::bitstamp_diff("btcusd", 1_643_643_022_200_000, &levels(&[("36905.71", "5")]), &[]));
    fake.send(&fake::bitstamp_diff("btcusd", 1_643_643_022_400_000, &levels(&[("36905.70", "1")]), &[]));
    running.wait_book("BTC-USD", &[(3_690_571, 10_000_000), (3_690_570, BTC)], &[(3_691_000, BTC)]).await;
    // Older than the book: dropped.
    fake.send(&fake::bitstamp_diff("btcusd", 1_643_643_022_350_000, &levels(&[("36905.71", "7")]), &[]));
    fake.send(&fake::bitstamp_diff(
        "btcusd",
        1_643_643_022_500_000,
        &[],
        &levels(&[("36910.00", "0"), ("36911.00", "2")]),
    ));
    running.wait_book("BTC-USD", &[(3_690_571, 10_000_000), (3_690_570, BTC)], &[(3_691_100, 2 * BTC)]).await;
    assert!(running.status("BTC-USD").rejected_messages >= 2, "the stale diff is counted");
    fake.send(r#"{"event":"bts:request_reconnect","channel":"","data":""}"#);
    running.wait_withdrawn("BTC-USD").await;
    assert!(fake.wait_connections(2, WAIT).await);
    assert!(fake.wait_received("diff_order_book_btcusd", 2, WAIT).await);
}

#[tokio::test]
async fn a_disconnect_mid_stream_reconnects_and_resyncs() {
    let fake = FakeVenue::start(VenueKind::Kraken).await.unwrap();
    let running = start(&fake, &[("ETH-USD", "ETH/USD")], "");
    assert!(fake.wait_received("\"subscribe\"", 1, WAIT).await);
    let (bids, asks) = (levels(&[("3000.10", "2.5")]), levels(&[("3000.20", "1.25")]));
    fake.send(&fake::kraken_book("snapshot", "ETH/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks)));
    let eth = 1_000_000_000_000_000_000_i128;
    running.wait_book("ETH-USD", &[(300_010, 5 * eth / 2)], &[(300_020, 5 * eth / 4)]).await;
    fake.disconnect();
    running.wait_withdrawn("ETH-USD").await;
    assert!(fake.wait_connections(2, WAIT).await);
    assert!(fake.wait_received("\"subscribe\"", 2, WAIT).await, "subscribed again on the new connection");
    let (bids, asks) = (levels(&[("2999.00", "1.00")]), levels(&[("3001.00", "1.00")]));
    fake.send(&fake::kraken_book("snapshot", "ETH/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks)));
    running.wait_book("ETH-USD", &[(299_900, eth)], &[(300_100, eth)]).await;
    assert_eq!(running.status("ETH-USD").reconnects, 1);
}

#[tokio::test]
async fn a_silent_venue_leaves_pricing_within_its_max_age() {
    let fake = FakeVenue::start(VenueKind::Kraken).await.unwrap();
    fake.serve_book(
        vec![FakeBook::new("BTC/USD", &[("50000.0", "1.00000000")], &[("50001.0", "1.00000000")])],
        Duration::from_millis(50),
    );
    let running = start(&fake, &[("BTC-USD", "BTC/USD")], "max_book_age_ms = 1000\nidle_timeout_ms = 60000");
    running.wait_book("BTC-USD", &[(5_000_000, BTC)], &[(5_000_100, BTC)]).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(running.hub.fresh_books("BTC-USD", now_ms()).len(), 1, "updates keep it fresh past its max age");
    fake.pause();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(running.hub.fresh_books("BTC-USD", now_ms()).is_empty(), "silent past its max age: not priced");
    let status = running.status("BTC-USD");
    assert_eq!(status.effective_state(now_ms()), "stale");
    assert_eq!(status.state, FeedState::Live, "still connected: stale by age, not withdrawn");
    fake.resume();
    let deadline = tokio::time::Instant::now() + WAIT;
    while running.hub.fresh_books("BTC-USD", now_ms()).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "fresh again once the venue speaks");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_crossed_book_is_rejected_and_rebuilt() {
    let fake = FakeVenue::start(VenueKind::Coinbase).await.unwrap();
    let running = start(&fake, &[("BTC-USD", "BTC-USD")], "");
    assert!(fake.wait_received("\"heartbeats\"", 1, WAIT).await);
    fake.send(&fake::coinbase_l2(0, "snapshot", "BTC-USD", &levels(&[("100.00", "1")]), &levels(&[("101.00", "1")])));
    running.wait_book("BTC-USD", &[(10_000, BTC)], &[(10_100, BTC)]).await;
    fake.send(&fake::coinbase_l2(1, "update", "BTC-USD", &levels(&[("101.50", "1")]), &[]));
    running.wait_withdrawn("BTC-USD").await;
    assert!(fake.wait_received("\"unsubscribe\"", 1, WAIT).await);
    fake.send(&fake::coinbase_l2(2, "snapshot", "BTC-USD", &levels(&[("100.50", "1")]), &levels(&[("101.00", "1")])));
    running.wait_book("BTC-USD", &[(10_050, BTC)], &[(10_100, BTC)]).await;
}

#[tokio::test]
async fn malformed_binary_and_oversized_messages_drop_the_connection_and_the_book() {
    let fake = FakeVenue::start(VenueKind::Kraken).await.unwrap();
    let running = start(&fake, &[("BTC-USD", "BTC/USD")], "message_bytes_max = 2048");
    let (bids, asks) = (levels(&[("100.0", "1.0")]), levels(&[("101.0", "1.0")]));
    let snapshot = fake::kraken_book("snapshot", "BTC/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks));
    let poison: [Message; 3] = [
        Message::Text(r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1e400,"qty":1}],"checksum":1}]}"#.into()),
        Message::Binary(vec![0, 1, 2].into()),
        Message::Text(format!("{{\"channel\":\"status\",\"pad\":\"{}\"}}", "x".repeat(4096)).into()),
    ];
    for (round, message) in poison.into_iter().enumerate() {
        assert!(fake.wait_received("\"subscribe\"", round + 1, WAIT).await);
        fake.send(&snapshot);
        running.wait_book("BTC-USD", &[(10_000, BTC)], &[(10_100, BTC)]).await;
        fake.send_raw(message);
        running.wait_withdrawn("BTC-USD").await;
        assert!(fake.wait_connections(round + 2, WAIT).await);
    }
    assert!(running.status("BTC-USD").rejected_messages >= 3);
}
