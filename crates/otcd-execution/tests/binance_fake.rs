//! The Binance spot adapter against the fake Binance (otcd-venues' `fake` feature), which checks the API key
//! header, the signature and the timestamp as Binance does: signed orders are taken under the hedge child's
//! client order id and fill partially; rejects, 5xx, slow answers and rate limits map to what the hedge worker
//! needs (a slow answer is a timeout whose order the status query then finds: never a second order).

use otcd_core::catalog::{AssetCode, Catalog};
use otcd_core::market::Side;
use otcd_execution::binance::{BinanceSpot, Credentials};
use otcd_execution::binance_wire::signature;
use otcd_services::ports::{VenueError, VenueExecution, VenueFill, VenueOrder};
use otcd_venues::config::{VenueKind, VenuesConfig};
use otcd_venues::fake::FakeVenue;
use otcd_venues::fake_binance::{FakeBinanceTrading, Fault};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

struct Setup {
    _fake: FakeVenue,
    trading: Arc<FakeBinanceTrading>,
    config: VenuesConfig,
    // Dropped last: the fake's tasks run on it.
    runtime: tokio::runtime::Runtime,
}

fn setup(order_timeout_ms: u64) -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let fake = runtime.block_on(FakeVenue::start(VenueKind::Binance)).unwrap();
    let trading = fake.enable_trading(KEY, SECRET, 1_000);
    trading.set_book(
        "BTCUSDT",
        "BTC",
        "USDT",
        &[("49990.00", "0.5")],
        &[("50005.00", "0.3"), ("50010.00", "0.5"), ("50030.00", "2")],
    );
    trading.set_balance("USDT", "1000000");
    trading.set_balance("BTC", "10");
    let text = format!(
        "[[venues]]\nname = \"binance\"\nkind = \"binance\"\nws_url = \"{}\"\nrest_url = \"{}\"\nfee_bps = \"10\"\n\
         api_key_env = \"UNUSED_KEY\"\napi_secret_env = \"UNUSED_SECRET\"\norder_timeout_ms = {order_timeout_ms}\n\
         [venues.symbols]\n\"BTC-USDT\" = \"BTCUSDT\"\n",
        fake.ws_url(),
        fake.rest_url()
    );
    let config = VenuesConfig::parse(&text, &Catalog::builtin()).unwrap();
    Setup { _fake: fake, trading, config, runtime }
}

impl Setup {
    fn adapter(&self, key: &str, secret: &str) -> BinanceSpot {
        let venue = &self.config.venues[0];
        let trading = venue.trading.clone().unwrap();
        let credentials = Credentials::new(key, secret);
        BinanceSpot::new(venue, trading, credentials, &Catalog::builtin(), self.runtime.handle().clone()).unwrap()
    }
}

fn order(id: &str, side: Side, quantity: i128, limit_price: i128) -> VenueOrder {
    VenueOrder {
        venue: "binance".into(),
        client_order_id: id.into(),
        instrument: "BTC-USDT".into(),
        side,
        quantity,
        limit_price,
    }
}

const BTC: i128 = 100_000_000;

#[test]
fn a_signed_ioc_order_fills_partially_under_the_childs_id_and_the_status_has_the_same_fills() {
    let setup = setup(2_000);
    let adapter = setup.adapter(KEY, SECRET);
    // Buy 1 BTC up to 50010.00: 0.3 at 50005.00 and 0.5 at 50010.00, the rest expires.
    let status = adapter.place(&order("hg_0000000001-1-0", Side::Buy, BTC, 5_001_000)).unwrap();
    assert!(!status.open);
    assert!(status.reason.as_deref().unwrap().contains("expired"), "{status:?}");
    // 10 bps commission in USDT (6 places): 15001.50 → 15.0015; 25005.00 → 25.005.
    let fills = vec![
        VenueFill { fill_id: "BTCUSDT-50001".into(), quantity: 3 * BTC / 10, price: 5_000_500, fee: 15_001_500 },
        VenueFill { fill_id: "BTCUSDT-50002".into(), quantity: BTC / 2, price: 5_001_000, fee: 25_005_000 },
    ];
    assert_eq!(status.fills, fills);
    let orders = setup.trading.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!((orders[0].client_order_id.as_str(), orders[0].order_type.as_str()), ("hg_0000000001-1-0", "LIMIT"));
    assert_eq!(orders[0].status, "EXPIRED");
    let queried = adapter.status("binance", "hg_0000000001-1-0").unwrap().unwrap();
    assert_eq!(
        (queried.venue_order_id.clone(), queried.open, queried.fills.clone()),
        (status.venue_order_id.clone(), false, fills)
    );
    // Placing the same id again answers the first order (Binance: -2010 "Duplicate order sent."); no second one.
    let again = adapter.place(&order("hg_0000000001-1-0", Side::Buy, BTC, 5_001_000)).unwrap();
    assert_eq!(again, queried);
    assert_eq!(setup.trading.orders().len(), 1);
    // A sell at 49990.00: fully filled, open false, no reason.
    let sold = adapter.place(&order("hg_0000000002-1-0", Side::Sell, BTC / 4, 4_999_000)).unwrap();
    assert_eq!((sold.open, sold.fills.len(), sold.reason.clone()), (false, 1, None));
    assert_eq!(setup.trading.balance("BTC"), "10.55000000");
    // The balances the router sees, in the desk's units, with the configured taker fee.
    let accounts = adapter.accounts();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].taker_fee_centi_bps, 1_000);
    assert_eq!(accounts[0].balances[&AssetCode::parse("BTC").unwrap()], 1_055_000_000);
    // An id the venue never got.
    assert_eq!(adapter.status("binance", "hg_0000000009-1-0").unwrap(), None);
    assert!(matches!(adapter.cancel("binance", "hg_0000000009-1-0"), Err(VenueError::Rejected(_))));
    // Cancelling a closed order answers its status.
    assert_eq!(adapter.cancel("binance", "hg_0000000002-1-0").unwrap(), sold);
}

#[test]
fn a_wrong_secret_or_key_is_refused_as_binance_refuses_it() {
    let setup = setup(2_000);
    let wrong_secret = setup.adapter(KEY, "not-the-secret");
    match wrong_secret.place(&order("hg_0000000001-1-0", Side::Buy, BTC, 5_001_000)) {
        Err(VenueError::Rejected(reason)) => assert!(reason.contains("-1022"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let wrong_key = setup.adapter("someone-else", SECRET);
    match wrong_key.place(&order("hg_0000000001-1-0", Side::Buy, BTC, 5_001_000)) {
        Err(VenueError::Rejected(reason)) => assert!(reason.contains("-2015"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(wrong_secret.accounts().is_empty(), "no balances: the venue is not routed to");
    assert!(setup.trading.orders().is_empty());
    // The fake enforces recvWindow: a request signed 10 s ago with a 5 s window is -1021.
    let stale = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() - 10_000;
    let query = format!("symbol=BTCUSDT&origClientOrderId=x&recvWindow=5000&timestamp={stale}");
    let signed = format!("{query}&signature={}", signature(SECRET.as_bytes(), &query));
    let answer = setup.trading.handle("GET", "/api/v3/order", &signed, "", Some(KEY));
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("-1021"), "{}", answer.body);
}

#[test]
fn a_reject_is_final_and_the_venue_never_knows_the_order() {
    let setup = setup(2_000);
    let adapter = setup.adapter(KEY, SECRET);
    setup.trading.fault(Fault::Reject("Account has insufficient balance for requested action.".into()));
    match adapter.place(&order("hg_0000000001-1-0", Side::Buy, BTC, 5_001_000)) {
        Err(VenueError::Rejected(reason)) => assert!(reason.contains("insufficient balance"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(adapter.status("binance", "hg_0000000001-1-0").unwrap(), None);
}

#[test]
fn a_slow_answer_is_a_timeout_and_the_status_query_finds_the_fill_without_a_second_order() {
    let setup = setup(300);
    let adapter = setup.adapter(KEY, SECRET);
    setup.trading.fault(Fault::Slow(Duration::from_millis(1_500)));
    let child = order("hg_0000000001-1-0", Side::Buy, BTC / 10, 5_001_000);
    assert_eq!(adapter.place(&child), Err(VenueError::Timeout));
    // What the hedge worker does next: ask by client order id before any resend.
    let status = adapter.status("binance", "hg_0000000001-1-0").unwrap().expect("the venue took the order");
    assert_eq!(status.fills.iter().map(|fill| fill.quantity).sum::<i128>(), BTC / 10);
    assert_eq!(setup.trading.orders().len(), 1, "exactly one order at the venue");
    // A 5xx after taking the order: unknown outcome, found by the status query.
    setup.trading.fault(Fault::ServerError { taken: true });
    assert_eq!(adapter.place(&order("hg_0000000002-1-0", Side::Buy, BTC / 10, 5_001_000)), Err(VenueError::Timeout));
    assert!(adapter.status("binance", "hg_0000000002-1-0").unwrap().is_some());
    // A 5xx before taking it: unknown outcome too, and the status query says the venue never got it.
    setup.trading.fault(Fault::ServerError { taken: false });
    assert_eq!(adapter.place(&order("hg_0000000003-1-0", Side::Buy, BTC / 10, 5_001_000)), Err(VenueError::Timeout));
    assert_eq!(adapter.status("binance", "hg_0000000003-1-0").unwrap(), None);
    assert_eq!(setup.trading.orders().len(), 2);
}

#[test]
fn a_rate_limit_pauses_every_request_to_the_venue() {
    let setup = setup(2_000);
    let adapter = setup.adapter(KEY, SECRET);
    setup.trading.fault(Fault::RateLimited);
    assert!(matches!(
        adapter.place(&order("hg_0000000001-1-0", Side::Buy, BTC, 5_001_000)),
        Err(VenueError::Unavailable(_))
    ));
    let before = setup.trading.requests().len();
    assert!(matches!(adapter.status("binance", "hg_0000000001-1-0"), Err(VenueError::Unavailable(_))));
    assert_eq!(setup.trading.requests().len(), before, "nothing sent while paused");
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(adapter.status("binance", "hg_0000000001-1-0").unwrap(), None);
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let setup = setup(2_000);
    let adapter = setup.adapter(KEY, SECRET);
    let shown = format!("{adapter:?} {:?}", Credentials::new(KEY, SECRET));
    assert!(!shown.contains(SECRET) && !shown.contains(KEY), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}
