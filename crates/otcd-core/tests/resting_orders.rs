//! Resting limit orders, cancels, expiry, trading controls and the desk-capacity rule, through the engine.
//! Prices are hand computed: BTC-USD, standard tier (20 bps), manual books with unlimited depth.

use otcd_core::engine::controls::{InstrumentControl, KillSwitch, PositionLimit};
use otcd_core::engine::orders::{LimitOrder, MarketOrder, OrderStatus, TimeInForce};
use otcd_core::engine::{Command, Outcome};
use otcd_core::ids::ClientReference;
use otcd_core::market::Side;
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;

mod common;

use common::{code, Session, BTC};

#[test]
fn gtc_buy_rests_with_its_funds_reserved_and_fills_when_the_price_reaches_the_limit() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000); // 60,000.00 USD
                                                // Ask 50,000.00 → firm buy price 50,100.00: above the 50,050.00 limit, so the order rests.
    let order = session
        .limit(&client, "gtc-1", Side::Buy, BTC, 5_005_000, TimeInForce::Gtc, None, (4_999_000, 5_000_000))
        .unwrap();
    assert_eq!((order.status, order.filled_quantity), (OrderStatus::Open, 0));
    // 1 BTC at the 50,050.00 limit is held.
    assert_eq!(session.balance(&client, "USD"), (6_000_000 - 5_005_000, 5_005_000));
    // A tick that does not reach the limit changes nothing and is not journaled.
    let journaled = session.records.len();
    assert!(session.tick(4_999_000, 5_000_000).is_empty());
    assert_eq!(session.records.len(), journaled);
    // Ask 49,900.00 → 49,900.00 × 1.002 = 49,999.80 ≤ 50,050.00: fills at 49,999.80.
    let changed = session.tick(4_989_000, 4_990_000);
    assert_eq!(changed.len(), 1);
    let filled = session.order(&order.order_id);
    assert_eq!(
        (filled.status, filled.filled_quantity, filled.average_price),
        (OrderStatus::Filled, BTC, Some(4_999_980))
    );
    // Paid exactly 49,999.80; the rest of the reservation is back.
    assert_eq!(session.balance(&client, "USD"), (6_000_000 - 4_999_980, 0));
    assert_eq!(session.balance(&client, "BTC"), (BTC, 0));
    assert_eq!(session.desk.ledger().pending_transfers().count(), 0);
    session.assert_replay_matches();
}

#[test]
fn gtc_sell_reserves_the_base_and_fills_when_the_bid_rises() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "BTC", 2 * BTC);
    // Bid 50,000.00 → firm sell price 49,900.00 < 50,100.00 limit.
    let order = session
        .limit(&client, "s-1", Side::Sell, BTC, 5_010_000, TimeInForce::Gtc, None, (5_000_000, 5_001_000))
        .unwrap();
    assert_eq!(order.status, OrderStatus::Open);
    assert_eq!(session.balance(&client, "BTC"), (BTC, BTC));
    // Bid 50,300.00 → 50,300.00 × 0.998 = 50,199.40 ≥ limit.
    session.tick(5_030_000, 5_031_000);
    let filled = session.order(&order.order_id);
    assert_eq!((filled.status, filled.average_price), (OrderStatus::Filled, Some(5_019_940)));
    assert_eq!(session.balance(&client, "BTC"), (BTC, 0));
    assert_eq!(session.balance(&client, "USD"), (5_019_940, 0));
    session.assert_replay_matches();
}

#[test]
fn a_tick_fills_only_the_orders_it_reaches_best_limit_first() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 20_000_000);
    let book = (4_999_000, 5_000_000);
    let high = session.limit(&client, "high", Side::Buy, BTC, 5_005_000, TimeInForce::Gtc, None, book).unwrap();
    let low = session.limit(&client, "low", Side::Buy, BTC, 4_900_000, TimeInForce::Gtc, None, book).unwrap();
    // 49,900.00 ask → 49,999.80: reaches 50,050.00, not 49,000.00.
    let changed = session.tick(4_989_000, 4_990_000);
    assert_eq!(changed.iter().map(|order| order.order_id.clone()).collect::<Vec<_>>(), vec![high.order_id.clone()]);
    assert_eq!(session.order(&low.order_id).status, OrderStatus::Open);
    session.assert_replay_matches();
}

#[test]
fn cancel_releases_the_reservation_and_a_final_order_is_not_cancelable() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000);
    let order = session
        .limit(&client, "c-1", Side::Buy, BTC, 4_900_000, TimeInForce::Gtc, None, (4_999_000, 5_000_000))
        .unwrap();
    let cancel = Command::CancelOrder { client_id: client.clone(), order_id: order.order_id.clone() };
    let Outcome::Order(cancelled) = session.run(cancel.clone()).unwrap() else { panic!() };
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(session.balance(&client, "USD"), (6_000_000, 0));
    let again = session.run(cancel).unwrap_err();
    assert_eq!(again.code(), "order_not_cancelable");
    // Another client's order is not found, and a tick no longer fills the cancelled order.
    let other = session.client(Settlement::Prefunded, None);
    let foreign = Command::CancelOrder { client_id: other, order_id: order.order_id.clone() };
    assert_eq!(session.run(foreign).unwrap_err().code(), "not_found");
    assert!(session.tick(4_000_000, 4_001_000).is_empty());
    session.assert_replay_matches();
}

#[test]
fn cancel_all_cancels_only_the_clients_live_orders_of_the_instrument() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 20_000_000);
    let book = (4_999_000, 5_000_000);
    for id in ["a", "b", "c"] {
        session.limit(&client, id, Side::Buy, BTC, 4_000_000, TimeInForce::Gtc, None, book).unwrap();
    }
    let command = Command::CancelAllOrders { client_id: client.clone(), instrument: Some("BTC-USD".into()) };
    let Outcome::Orders(cancelled) = session.run(command).unwrap() else { panic!() };
    assert_eq!(cancelled.len(), 3);
    assert!(cancelled.iter().all(|order| order.status == OrderStatus::Cancelled));
    assert_eq!(session.balance(&client, "USD"), (20_000_000, 0));
    assert!(session.desk.resting_orders().is_empty());
    session.assert_replay_matches();
}

#[test]
fn gtd_expires_on_time_and_releases_its_funds() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000);
    let expire_at = session.at + 1_000;
    let order = session
        .limit(&client, "d-1", Side::Buy, BTC, 4_900_000, TimeInForce::Gtd, Some(expire_at), (4_999_000, 5_000_000))
        .unwrap();
    assert_eq!(session.desk.resting_orders().next_expiry(), Some(TimestampMs(expire_at)));
    // Not yet due: nothing expires.
    let Outcome::Orders(none) = session.run(Command::ExpireOrders).unwrap() else { panic!() };
    assert!(none.is_empty());
    session.at = expire_at;
    let Outcome::Orders(expired) = session.run(Command::ExpireOrders).unwrap() else { panic!() };
    assert_eq!(expired.len(), 1);
    assert_eq!(session.order(&order.order_id).status, OrderStatus::Expired);
    assert_eq!(session.balance(&client, "USD"), (6_000_000, 0));
    session.assert_replay_matches();
}

#[test]
fn gtd_needs_a_future_expiry_and_other_tifs_refuse_one() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000);
    let book = (4_999_000, 5_000_000);
    let past = session.at;
    for (tif, expire_at) in
        [(TimeInForce::Gtd, None), (TimeInForce::Gtd, Some(past)), (TimeInForce::Gtc, Some(past + 99_999))]
    {
        let error = session.limit(&client, "bad", Side::Buy, BTC, 4_900_000, tif, expire_at, book).unwrap_err();
        assert_eq!(error.code(), "invalid_request");
    }
    assert_eq!(session.balance(&client, "USD"), (6_000_000, 0));
}

#[test]
fn a_resting_order_without_the_funds_is_refused_and_moves_nothing() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 1_000_000);
    let error = session
        .limit(&client, "poor", Side::Buy, BTC, 4_900_000, TimeInForce::Gtc, None, (4_999_000, 5_000_000))
        .unwrap_err();
    assert_eq!(error.code(), "insufficient_funds");
    assert_eq!(session.balance(&client, "USD"), (1_000_000, 0));
    assert!(session.desk.resting_orders().is_empty());
}

#[test]
fn desk_capacity_splits_ioc_and_gtc_refuses_market_and_cancels_fok() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 50_000_000);
    // The desk may go at most 0.4 BTC short.
    let limit = PositionLimit { asset: code("BTC"), long_max: None, short_max: Some(40_000_000) };
    session.run(Command::PutPositionLimit(limit)).unwrap();
    let book = (4_999_000, 5_000_000);
    let fok = session.limit(&client, "fok", Side::Buy, BTC, 5_100_000, TimeInForce::Fok, None, book).unwrap();
    assert_eq!((fok.status, fok.filled_quantity), (OrderStatus::Cancelled, 0));
    let ioc = session.limit(&client, "ioc", Side::Buy, BTC, 5_100_000, TimeInForce::Ioc, None, book).unwrap();
    assert_eq!((ioc.status, ioc.filled_quantity, ioc.quantity), (OrderStatus::Cancelled, 40_000_000, BTC));
    // Now the desk is at its short limit: a gtc rests unfilled, a market order is refused whole.
    let gtc = session.limit(&client, "gtc", Side::Buy, BTC, 5_100_000, TimeInForce::Gtc, None, book).unwrap();
    assert_eq!((gtc.status, gtc.filled_quantity), (OrderStatus::Open, 0));
    let market = MarketOrder {
        client_id: client.clone(),
        client_order_id: ClientReference::parse("mkt").unwrap(),
        instrument: "BTC-USD".into(),
        side: Side::Buy,
        quantity: 10_000_000,
        reference_price: None,
        slippage_centi_bps: None,
        notional_usd: None,
        books: vec![session.book(book.0, book.1)],
        cross: None,
    };
    let refused = session.run(Command::MarketOrder(market)).unwrap_err();
    assert_eq!(refused.code(), "limit_exceeded");
    assert!(refused.to_string().contains("at most 0 BTC of BTC-USD now; the order asks for 0.1 BTC"), "{refused}");
    // Room for 0.25 BTC: the resting order fills that much and keeps resting.
    let limit = PositionLimit { asset: code("BTC"), long_max: None, short_max: Some(65_000_000) };
    session.run(Command::PutPositionLimit(limit)).unwrap();
    session.tick(book.0, book.1);
    let partly = session.order(&gtc.order_id);
    assert_eq!((partly.status, partly.filled_quantity), (OrderStatus::PartiallyFilled, 25_000_000));
    // Its reservation still covers the remaining 0.75 BTC at the limit.
    let (_, reserved) = session.balance(&client, "USD");
    assert!(reserved >= 5_100_000 * 3 / 4, "reserved {reserved}");
    // Lifting the limit fills the rest; the average is the quantity-weighted price, rounded up for a buyer.
    session
        .run(Command::PutPositionLimit(PositionLimit { asset: code("BTC"), long_max: None, short_max: None }))
        .unwrap();
    session.tick(4_989_000, 4_990_000);
    let done = session.order(&gtc.order_id);
    assert_eq!(done.status, OrderStatus::Filled);
    // 0.25 at 50,100.00 and 0.75 at 49,999.80 → 50,024.85.
    assert_eq!(done.average_price, Some(5_002_485));
    assert_eq!(session.balance(&client, "USD").1, 0);
    session.assert_replay_matches();
}

#[test]
fn kill_switch_and_halts_stop_trading_and_resting_fills_until_released() {
    let mut session = Session::new();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 20_000_000);
    let book = (4_999_000, 5_000_000);
    let order = session.limit(&client, "r", Side::Buy, BTC, 5_005_000, TimeInForce::Gtc, None, book).unwrap();
    session.run(Command::PutKillSwitch(KillSwitch { engaged: true, reason: Some("incident 42".into()) })).unwrap();
    let refused = session.limit(&client, "x", Side::Buy, BTC, 5_100_000, TimeInForce::Ioc, None, book).unwrap_err();
    assert_eq!(refused.code(), "trading_halted");
    assert!(session.tick(4_989_000, 4_990_000).is_empty());
    session.run(Command::PutKillSwitch(KillSwitch::default())).unwrap();
    let halt = InstrumentControl { instrument: "BTC-USD".into(), halted: true, reason: None, fill_quantity_max: None };
    session.run(Command::PutInstrumentControl(halt)).unwrap();
    assert!(session.tick(4_989_000, 4_990_000).is_empty());
    let resume = InstrumentControl { instrument: "BTC-USD".into(), ..InstrumentControl::default() };
    session.run(Command::PutInstrumentControl(resume)).unwrap();
    assert_eq!(session.tick(4_989_000, 4_990_000).len(), 1);
    assert_eq!(session.order(&order.order_id).status, OrderStatus::Filled);
    session.assert_replay_matches();
}

#[test]
fn a_credit_client_whose_credit_no_longer_covers_the_fill_has_the_order_cancelled() {
    let mut session = Session::new();
    let client = session.client(Settlement::Credit, Some(10_000_000)); // 100,000.00 USD of credit
    let mut order = MarketOrder {
        client_id: client.clone(),
        client_order_id: ClientReference::parse("credit-1").unwrap(),
        instrument: "BTC-USD".into(),
        side: Side::Buy,
        quantity: BTC,
        reference_price: None,
        slippage_centi_bps: None,
        notional_usd: Some(5_000_000),
        books: vec![session.book(4_999_000, 5_000_000)],
        cross: None,
    };
    let request =
        LimitOrder { order: order.clone(), limit_price: 4_900_000, time_in_force: TimeInForce::Gtc, expire_at: None };
    let Outcome::Order(resting) = session.run(Command::LimitOrder(request)).unwrap() else { panic!() };
    assert_eq!(resting.status, OrderStatus::Open);
    // Another trade uses most of the credit.
    order.client_order_id = ClientReference::parse("credit-2").unwrap();
    order.notional_usd = Some(9_000_000);
    session.run(Command::MarketOrder(order)).unwrap();
    session.tick(4_800_000, 4_801_000);
    let cancelled = session.order(&resting.order_id);
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert!(cancelled.cancel_reason.unwrap().contains("credit"));
    session.assert_replay_matches();
}
