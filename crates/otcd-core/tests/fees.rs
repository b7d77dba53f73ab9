//! The fee leg: every trade path charges the tier's fee in the quote asset, rounded up, in the same ledger
//! transaction as both legs. Amounts are hand computed: BTC-USD, standard tier at 20 bps spread, fee 2.5 bps.

mod common;

use common::{code, Session, BTC};
use otcd_core::engine::command::{QuoteRequest, TierSpec};
use otcd_core::engine::orders::{AcceptQuote, MarketOrder, Order, OrderStatus, TimeInForce};
use otcd_core::engine::{Command, CommandError, Outcome};
use otcd_core::ids::{ClientId, ClientReference, TierName};
use otcd_core::ledger::{AccountKey, Owner, Purpose};
use otcd_core::market::Side;
use otcd_core::model::RequestedSize;
use otcd_core::model::Settlement;

/// 2.5 bps in hundredths of a basis point.
const FEE_CENTI_BPS: i128 = 250;

fn set_fee(session: &mut Session, fee_centi_bps: i128) -> Result<Outcome, CommandError> {
    session.run(Command::PutTier(TierSpec {
        name: TierName::parse("standard").unwrap(),
        spread_centi_bps: 2_000,
        bands: Vec::new(),
        trade_notional_usd_max: None,
        daily_notional_usd_max: None,
        rate_limits: None,
        fee_centi_bps,
    }))
}

fn desk_fees(session: &Session, asset: &str) -> i128 {
    let key = AccountKey { owner: Owner::Desk, asset: code(asset), purpose: Purpose::Fees };
    session.desk.ledger().account_id(&key).map_or(0, |account| session.desk.ledger().balance(account))
}

fn market(
    session: &mut Session,
    client: &ClientId,
    id: &str,
    side: Side,
    book: (i128, i128),
) -> Result<Order, CommandError> {
    let order = MarketOrder {
        client_id: client.clone(),
        client_order_id: ClientReference::parse(id).unwrap(),
        instrument: "BTC-USD".into(),
        side,
        quantity: BTC,
        reference_price: None,
        slippage_centi_bps: None,
        notional_usd: None,
        books: vec![session.book(book.0, book.1)],
        cross: None,
    };
    match session.run(Command::MarketOrder(order))? {
        Outcome::Order(order) => Ok(order),
        other => panic!("unexpected {other:?}"),
    }
}

fn fee_of(session: &Session, order: &Order) -> i128 {
    order.trade_ids.iter().map(|trade_id| session.desk.trade(trade_id).unwrap().fee).sum()
}

#[test]
fn a_buyer_pays_the_fee_on_top_rounded_up() {
    let mut session = Session::new();
    set_fee(&mut session, FEE_CENTI_BPS).unwrap();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000);
    // Ask 50,000.00 → 50,100.00 with 20 bps; value 5,010,000 cents; fee 5,010,000 × 2.5 / 10,000 = 1,252.5 → 1,253.
    let order = market(&mut session, &client, "m-1", Side::Buy, (4_999_000, 5_000_000)).unwrap();
    let trade = session.desk.trade(&order.trade_ids[0]).unwrap().clone();
    assert_eq!((trade.price, trade.quote_amount, trade.fee), (5_010_000, 5_010_000, 1_253));
    assert_eq!(session.balance(&client, "USD"), (6_000_000 - 5_010_000 - 1_253, 0));
    assert_eq!(session.balance(&client, "BTC"), (BTC, 0));
    assert_eq!(desk_fees(&session, "USD"), 1_253);
}

#[test]
fn a_seller_has_the_fee_taken_from_the_proceeds_rounded_up() {
    let mut session = Session::new();
    set_fee(&mut session, FEE_CENTI_BPS).unwrap();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "BTC", BTC);
    // Bid 50,000.00 → 49,900.00; value 4,990,000 cents; fee 1,247.5 → 1,248; proceeds 4,988,752.
    let order = market(&mut session, &client, "m-1", Side::Sell, (5_000_000, 5_001_000)).unwrap();
    assert_eq!(fee_of(&session, &order), 1_248);
    assert_eq!(session.balance(&client, "USD"), (4_988_752, 0));
    assert_eq!(session.balance(&client, "BTC"), (0, 0));
    assert_eq!(desk_fees(&session, "USD"), 1_248);
}

#[test]
fn funds_for_the_price_but_not_the_fee_are_refused_and_nothing_moves() {
    let mut session = Session::new();
    set_fee(&mut session, FEE_CENTI_BPS).unwrap();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 5_010_000 + 1_252);
    let refused = market(&mut session, &client, "m-1", Side::Buy, (4_999_000, 5_000_000));
    assert!(matches!(refused, Err(CommandError::InsufficientFunds { .. })), "{refused:?}");
    assert_eq!(session.balance(&client, "USD"), (5_010_000 + 1_252, 0));
    assert_eq!(desk_fees(&session, "USD"), 0);
    session.deposit(&client, "USD", 1);
    assert_eq!(
        market(&mut session, &client, "m-2", Side::Buy, (4_999_000, 5_000_000)).unwrap().status,
        OrderStatus::Filled
    );
    assert_eq!(session.balance(&client, "USD"), (0, 0));
}

#[test]
fn a_quote_trades_at_the_fee_it_was_given_with() {
    let mut session = Session::new();
    set_fee(&mut session, FEE_CENTI_BPS).unwrap();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000);
    let request = QuoteRequest {
        client_id: client.clone(),
        client_rfq_id: None,
        instrument: "BTC-USD".into(),
        side: Side::Buy,
        size: RequestedSize::Base(BTC),
        validity_ms: 5_000,
        notional_usd: None,
        books: vec![session.book(4_999_000, 5_000_000)],
        cross: None,
    };
    let Outcome::Quote(quote) = session.run(Command::RequestQuote(request)).unwrap() else { panic!("a quote") };
    assert_eq!(quote.fee_centi_bps, FEE_CENTI_BPS);
    // The tier's fee rises to 10 bps after the quote: the quote keeps 2.5 bps.
    set_fee(&mut session, 1_000).unwrap();
    let accept = AcceptQuote {
        client_id: client.clone(),
        client_order_id: ClientReference::parse("q-1").unwrap(),
        quote_id: quote.quote_id.clone(),
        side: None,
        notional_usd: None,
    };
    let Outcome::Order(order) = session.run(Command::AcceptQuote(accept)).unwrap() else { panic!("an order") };
    assert_eq!(fee_of(&session, &order), 1_253);
    assert_eq!(session.balance(&client, "USD"), (6_000_000 - 5_011_253, 0));
    session.assert_replay_matches();
}

#[test]
fn a_resting_buy_reserves_its_fee_and_pays_the_fee_of_its_fill() {
    let mut session = Session::new();
    set_fee(&mut session, FEE_CENTI_BPS).unwrap();
    let client = session.client(Settlement::Prefunded, None);
    session.deposit(&client, "USD", 6_000_000);
    // Limit 50,050.00: value 5,005,000, fee 1,251.25 → 1,252 held with it.
    let order = session
        .limit(&client, "gtc-1", Side::Buy, BTC, 5_005_000, TimeInForce::Gtc, None, (4_999_000, 5_000_000))
        .unwrap();
    assert_eq!(order.status, OrderStatus::Open);
    assert_eq!(session.balance(&client, "USD"), (6_000_000 - 5_006_252, 5_006_252));
    // A rate change after placement does not apply to the order.
    set_fee(&mut session, 1_000).unwrap();
    // Ask 49,900.00 → fills at 49,999.80: value 4,999,980, fee 1,249.995 → 1,250; the rest is released.
    assert_eq!(session.tick(4_989_000, 4_990_000).len(), 1);
    let filled = session.order(&order.order_id);
    assert_eq!((filled.status, fee_of(&session, &filled)), (OrderStatus::Filled, 1_250));
    assert_eq!(session.balance(&client, "USD"), (6_000_000 - 4_999_980 - 1_250, 0));
    assert_eq!(desk_fees(&session, "USD"), 1_250);
    assert_eq!(session.desk.ledger().pending_transfers().count(), 0);
    session.assert_replay_matches();
}

#[test]
fn a_fee_above_ten_percent_is_refused() {
    let mut session = Session::new();
    let refused = set_fee(&mut session, 100_001);
    assert!(matches!(refused, Err(CommandError::Invalid { .. })), "{refused:?}");
    assert!(set_fee(&mut session, -1).is_err());
    assert_eq!(session.desk.tiers().next().unwrap().fee_centi_bps, 0);
}
