//! The projection against hand-computed figures, and each surveillance rule on a planted pattern in a seeded
//! simulation (and quiet on normal flow).
#![allow(clippy::inconsistent_digit_grouping, clippy::unusual_byte_groupings, clippy::manual_is_multiple_of)]

use crate::surveillance::{FRONT_RUNNING, LAYERING, SPOOFING, WASH_TRADE};
use crate::{render, Projection, ReportKind, ReportParams, SurveillanceConfig, TradeFilter};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::alerts::{AlertKind, CaseStatus};
use otcd_core::engine::orders::{LimitOrder, MarketOrder, TimeInForce};
use otcd_core::engine::{fixtures, Actor, Command, JournalRecord, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference, TierName};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const BTC: i128 = 100_000_000;

struct Session {
    projection: Projection,
    seq: u64,
    orders: u64,
}

impl Session {
    fn new() -> Self {
        let mut session = Self { projection: Projection::new(SurveillanceConfig::default()), seq: 0, orders: 0 };
        session.run(T0, fixtures::initialize_desk());
        session
    }

    fn run(&mut self, at: i64, command: Command) -> Outcome {
        self.seq += 1;
        let record = JournalRecord { at: TimestampMs(at), actor: Actor::default(), command };
        // Through the payload, as the adapters feed it.
        let payload = serde_json::to_vec(&record).unwrap();
        let mut shadow = otcd_core::engine::Desk::clone(self.projection.desk());
        let outcome = shadow.execute(&record).unwrap().outcome;
        self.projection.apply_payload(self.seq, &payload).unwrap();
        outcome
    }

    fn client(&mut self, at: i64) -> ClientId {
        let new = fixtures::approved_client("Acme Capital", Settlement::Prefunded, None);
        let Outcome::Client(client) = self.run(at, Command::CreateClient(new)) else { panic!() };
        for (asset, amount) in [("USD", 1_000_000_000_00), ("BTC", 1_000 * BTC)] {
            self.run(
                at,
                Command::Deposit(NewDeposit {
                    client_id: client.client_id.clone(),
                    asset: AssetCode::parse(asset).unwrap(),
                    amount,
                    reference: ClientReference::parse(&format!("dep-{asset}")).unwrap(),
                    notional_usd: None,
                }),
            );
        }
        client.client_id
    }

    fn order(&mut self, client: &ClientId, side: Side, quantity: i128, bid: i128, ask: i128, at: i64) -> MarketOrder {
        self.orders += 1;
        MarketOrder {
            client_id: client.clone(),
            client_order_id: ClientReference::parse(&format!("o{}", self.orders)).unwrap(),
            instrument: "BTC-USD".into(),
            side,
            quantity,
            reference_price: None,
            slippage_centi_bps: None,
            // USD value at the mid (cents), as the edge computes it.
            notional_usd: Some((bid + ask) / 2 * quantity / BTC),
            books: vec![book(bid, ask, at)],
            cross: None,
        }
    }

    fn market(&mut self, client: &ClientId, side: Side, quantity: i128, bid: i128, ask: i128, at: i64) -> Outcome {
        let order = self.order(client, side, quantity, bid, ask, at);
        self.run(at, Command::MarketOrder(order))
    }

    /// A resting gtc limit order; returns its order id.
    fn resting(&mut self, client: &ClientId, side: Side, limit: i128, bid: i128, ask: i128, at: i64) -> String {
        let order = self.order(client, side, BTC, bid, ask, at);
        let limit = LimitOrder { order, limit_price: limit, time_in_force: TimeInForce::Gtc, expire_at: None };
        let Outcome::Order(order) = self.run(at, Command::LimitOrder(limit)) else { panic!() };
        order.order_id
    }

    fn cancel(&mut self, client: &ClientId, order_id: &str, at: i64) {
        self.run(at, Command::CancelOrder { client_id: client.clone(), order_id: order_id.into() });
    }

    fn kinds(&self) -> Vec<AlertKind> {
        self.projection.surveillance().alerts().map(|alert| alert.finding.kind).collect()
    }
}

fn book(bid: i128, ask: i128, at: i64) -> VenueBook {
    VenueBook {
        venue: "manual".into(),
        instrument: "BTC-USD".into(),
        bids: vec![Level { price: bid, quantity: 1_000_000 * BTC }],
        asks: vec![Level { price: ask, quantity: 1_000_000 * BTC }],
        as_of: TimestampMs(at),
    }
}

fn json(projection: &Projection, kind: ReportKind, params: ReportParams) -> serde_json::Value {
    serde_json::from_str(&render(projection, kind, &params).unwrap().body).unwrap()
}

#[test]
fn positions_pnl_and_spread_revenue_match_hand_computed_values() {
    let mut session = Session::new();
    let client = session.client(T0 + 1_000);
    // Book 49,990.00 / 50,010.00, standard tier 20 bps. Buy 1 BTC: 50,010.00 × 1.002 = 50,110.02.
    session.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, T0 + 2_000);
    // Sell 1 BTC 10 minutes later: 49,990.00 × 0.998 = 49,890.02.
    session.market(&client, Side::Sell, BTC, 4_999_000, 5_001_000, T0 + 602_000);
    let trades = json(&session.projection, ReportKind::Trades, ReportParams::default());
    let items = trades["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["price"], "50110.02");
    assert_eq!(items[0]["spread_revenue"], "100.02");
    assert_eq!(items[1]["price"], "49890.02");
    assert_eq!(items[1]["spread_revenue"], "99.98");
    let revenue = json(&session.projection, ReportKind::Revenue, ReportParams::default());
    assert_eq!(revenue["total_spread_revenue_usd"], "200.00");
    // The desk was short 1 BTC at 50,110.02 and bought it back at 49,890.02: 220.00 realized.
    let positions = json(&session.projection, ReportKind::Positions, ReportParams::default());
    let btc = positions["items"].as_array().unwrap().iter().find(|row| row["asset"] == "BTC").unwrap();
    assert_eq!(btc["traded_position"], "0.00000000");
    assert_eq!(btc["realized_pnl_usd"], "220.00");
    let usd = positions["items"].as_array().unwrap().iter().find(|row| row["asset"] == "USD").unwrap();
    assert_eq!(usd["traded_position"], "220.00");
    assert_eq!(positions["total_realized_pnl_usd"], "220.00");
    // Buy and sell of the same size 10 minutes apart: outside the 5-minute wash window.
    assert!(session.kinds().is_empty(), "{:?}", session.kinds());
}

#[test]
fn fee_revenue_is_reported_per_trade_and_in_total_and_counts_in_the_desks_position() {
    let mut session = Session::new();
    let tier = otcd_core::engine::TierSpec {
        name: TierName::parse("standard").unwrap(),
        spread_centi_bps: 2_000,
        bands: Vec::new(),
        trade_notional_usd_max: None,
        daily_notional_usd_max: None,
        rate_limits: None,
        fee_centi_bps: 250,
    };
    session.run(T0 + 500, Command::PutTier(tier));
    let client = session.client(T0 + 1_000);
    // Buy 1 BTC at 50,110.02: fee 5,011,002 × 2.5 / 10,000 = 1,252.75 → 12.53 USD (rounded up).
    session.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, T0 + 2_000);
    // Sell 1 BTC at 49,890.02: fee 1,247.25 → 12.48 USD.
    session.market(&client, Side::Sell, BTC, 4_999_000, 5_001_000, T0 + 602_000);
    let trades = json(&session.projection, ReportKind::Trades, ReportParams::default());
    let fees: Vec<&str> = trades["items"].as_array().unwrap().iter().map(|row| row["fee"].as_str().unwrap()).collect();
    assert_eq!(fees, ["12.53", "12.48"]);
    let revenue = json(&session.projection, ReportKind::Revenue, ReportParams::default());
    assert_eq!(revenue["total_fee_revenue_usd"], "25.01");
    assert_eq!(revenue["items"][0]["fee_revenue"], "25.01");
    assert_eq!(revenue["total_spread_revenue_usd"], "200.00", "the spread is unchanged by the fee");
    // The desk's USD: 220.00 from the prices plus 25.01 of fees.
    let positions = json(&session.projection, ReportKind::Positions, ReportParams::default());
    let usd = positions["items"].as_array().unwrap().iter().find(|row| row["asset"] == "USD").unwrap();
    assert_eq!(usd["traded_position"], "245.01");
}

#[test]
fn average_cost_partially_closes_and_flips() {
    let mut position = crate::Position::new(AssetCode::parse("BTC").unwrap());
    position.apply(2 * BTC, Some(100_000_00), false); // long 2 at 50,000
    position.apply(-BTC, Some(60_000_00), false); // sell 1 at 60,000: +10,000
    assert_eq!((position.realized_pnl_usd, position.cost_basis_usd), (10_000_00, 50_000_00));
    position.apply(-2 * BTC, Some(80_000_00), false); // sell 2 at 40,000: closes 1 (−10,000), opens short 1
    assert_eq!(position.realized_pnl_usd, 0);
    assert_eq!((position.quantity, position.cost_basis_usd), (-BTC, -40_000_00));
    position.apply(BTC, None, false);
    assert!(!position.valued);
}

#[test]
fn trade_log_filters_and_pages() {
    let mut session = Session::new();
    let a = session.client(T0);
    let b = session.client(T0);
    for index in 0..30 {
        let client = if index % 3 == 0 { &b } else { &a };
        let side = if index % 2 == 0 { Side::Buy } else { Side::Sell };
        // Sizes spread apart so no wash pattern forms.
        session.market(client, side, BTC / 10 * (1 + index % 7), 4_999_000, 5_001_000, T0 + 1_000 * index as i64);
    }
    let log = session.projection.trades();
    let only_b = TradeFilter { client_id: Some(b.clone()), ..TradeFilter::default() };
    assert_eq!(log.query(&only_b, 1_000).rows.len(), 10);
    let window = TradeFilter { from: Some(T0 + 5_000), to: Some(T0 + 15_000), ..TradeFilter::default() };
    assert_eq!(log.query(&window, 1_000).rows.len(), 10);
    let sells_of_a = TradeFilter { client_id: Some(a.clone()), side: Some(Side::Sell), ..TradeFilter::default() };
    let all: Vec<u64> = log.query(&sells_of_a, 1_000).rows.iter().map(|row| row.number).collect();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = log.query(&TradeFilter { after, ..sells_of_a.clone() }, 3);
        paged.extend(page.rows.iter().map(|row| row.number));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let csv = render(
        &session.projection,
        ReportKind::Trades,
        &ReportParams { format: Some("csv".into()), limit: Some(2), ..ReportParams::default() },
    )
    .unwrap();
    let lines: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(lines[0], crate::render::TRADE_COLUMNS.join(","));
    assert!(lines[1].starts_with("t_000000000001,o_000000000001,cl_00000002,BTC-USD,buy,50110.02,0.10000000,5011.01,"));
    assert_eq!(csv.next_cursor.as_deref(), Some("2"));
}

#[test]
fn spoofing_fires_on_placed_and_cancelled_orders() {
    let mut session = Session::new();
    let client = session.client(T0);
    for index in 0..5 {
        let at = T0 + 10_000 * index;
        let order = session.resting(&client, Side::Buy, 4_000_000, 4_999_000, 5_001_000, at);
        session.cancel(&client, &order, at + 2_000);
    }
    assert_eq!(session.kinds(), vec![SPOOFING]);
    let alert = &session.projection.surveillance().alerts().next().unwrap().finding;
    assert_eq!(alert.evidence.order_ids.len(), 5);
    assert!(alert.summary.contains("5 of 5 resting orders"), "{}", alert.summary);
    // For people: quantities in the asset's units, durations in words (the figures keep the integers).
    assert!(alert.summary.contains("cancelled quantity 5 BTC vs filled 0 BTC"), "{}", alert.summary);
    assert!(alert.summary.contains("average time to cancel 2 s"), "{}", alert.summary);
    assert!(!alert.summary.contains("minor units"), "{}", alert.summary);
    assert_eq!(alert.evidence.figures["cancelled_orders"], 5);
    assert_eq!(alert.evidence.figures["average_time_to_cancel_ms"], 2_000);
    assert_eq!(alert.evidence.thresholds["spoof_min_cancelled"], 5);
}

#[test]
fn layering_fires_on_orders_cancelled_after_a_fill_on_the_other_side() {
    let mut session = Session::new();
    let client = session.client(T0);
    let layers: Vec<String> = (0..3)
        .map(|index| {
            session.resting(&client, Side::Sell, 6_000_000 + index * 100, 4_999_000, 5_001_000, T0 + index as i64)
        })
        .collect();
    session.market(&client, Side::Buy, BTC / 2, 4_999_000, 5_001_000, T0 + 5_000);
    for (index, order) in layers.iter().enumerate() {
        session.cancel(&client, order, T0 + 10_000 + index as i64 * 1_000);
    }
    assert_eq!(session.kinds(), vec![LAYERING]);
}

#[test]
fn round_trips_raise_one_wash_alert_per_client_and_instrument_per_window() {
    let mut session = Session::new();
    let client = session.client(T0);
    for pair in 0..20 {
        let at = T0 + pair * 2_000;
        session.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, at);
        session.market(&client, Side::Sell, BTC, 4_999_000, 5_001_000, at + 1_000);
    }
    assert_eq!(session.kinds(), vec![WASH_TRADE], "twenty round trips in one window: one alert");
    let window_ms = SurveillanceConfig::default().window_ms;
    let later = T0 + window_ms + 1_000;
    session.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, later);
    session.market(&client, Side::Sell, BTC, 4_999_000, 5_001_000, later + 1_000);
    assert_eq!(session.kinds(), vec![WASH_TRADE, WASH_TRADE], "a round trip after the window: a second alert");
    let last = session.projection.surveillance().alerts().last().unwrap();
    assert_eq!(last.finding.evidence.trade_ids, vec!["t_000000000041", "t_000000000042"]);
}

#[test]
fn wash_trades_fire_on_a_round_trip_of_similar_size() {
    let mut session = Session::new();
    let client = session.client(T0);
    session.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, T0);
    session.market(&client, Side::Sell, BTC * 99 / 100, 4_999_000, 5_001_000, T0 + 60_000);
    assert_eq!(session.kinds(), vec![WASH_TRADE]);
    let alert = &session.projection.surveillance().alerts().next().unwrap().finding;
    assert_eq!(alert.evidence.trade_ids, vec!["t_000000000001", "t_000000000002"]);
    assert_eq!(
        alert.evidence.dedup_key,
        format!("surveillance_wash_trade/{client}/BTC-USD/t_000000000001+t_000000000002")
    );
    assert_eq!(alert.evidence.figures["second_quantity_minor_units"], BTC * 99 / 100);
    assert!(alert.summary.contains("of 1 BTC then sell t_000000000002 of 0.99 BTC"), "{}", alert.summary);
    assert!(alert.summary.contains("within 1 min"), "{}", alert.summary);

    // Raised in the engine, the finding is an alert of the shadow desk, worked as a case like any other; the same
    // pattern again (an adapter's repeat, or the finding made again after a restart) changes nothing.
    let finding = alert.clone();
    let Outcome::Alert(raised) = session.run(T0 + 61_000, Command::RaiseSurveillanceAlert(finding.clone())) else {
        panic!()
    };
    assert_eq!((raised.kind, raised.status), (AlertKind::SurveillanceWashTrade, CaseStatus::Open));
    assert_eq!(raised.surveillance.as_ref(), Some(&finding.evidence));
    let desk = session.projection.desk();
    assert_eq!(
        desk.surveillance_alert(&finding.evidence.dedup_key).map(|alert| &alert.alert_id),
        Some(&raised.alert_id)
    );
    let repeat = JournalRecord {
        at: TimestampMs(T0 + 62_000),
        actor: Actor::default(),
        command: Command::RaiseSurveillanceAlert(finding),
    };
    let executed = otcd_core::engine::Desk::clone(desk).execute(&repeat).unwrap();
    assert!(!executed.changed, "a pattern is raised once");
}

#[test]
fn front_running_fires_on_an_outsized_trade_before_a_price_move() {
    let mut session = Session::new();
    let client = session.client(T0);
    let other = session.client(T0);
    for index in 0..5 {
        let side = if index % 2 == 0 { Side::Buy } else { Side::Sell };
        session.market(
            &client,
            side,
            BTC / 10 + index as i128 * 10_000,
            4_999_000,
            5_001_000,
            T0 + 1_000_000 * index as i64,
        );
    }
    let start = T0 + 10_000_000;
    session.market(&client, Side::Buy, 2 * BTC, 4_999_000, 5_001_000, start);
    // Another client trades 10 minutes later 3% higher.
    session.market(&other, Side::Buy, BTC / 10, 5_149_000, 5_151_000, start + 600_000);
    assert_eq!(session.kinds(), vec![FRONT_RUNNING]);
}

/// A tiny deterministic generator (xorshift64*), so the simulation needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Normal flow: each client mostly accumulates in one direction with sizes in a narrow band, the market walks
/// in small steps, resting orders at reachable limits fill, an occasional one is cancelled. No rule fires.
/// Then the same simulation with every pattern planted raises exactly the planted alerts.
#[test]
fn seeded_simulation_is_quiet_on_normal_flow_and_catches_planted_patterns() {
    for plant in [false, true] {
        let mut session = Session::new();
        let mut rng = Rng(0x5eed_0f_07cd);
        let clients: Vec<ClientId> = (0..6).map(|_| session.client(T0)).collect();
        let mut mid: i128 = 5_000_000;
        let mut at = T0 + 1_000;
        for step in 0..600 {
            at += 5_000 + rng.below(20_000) as i64;
            // ±0.05% per step.
            let change = mid * (rng.below(11) as i128 - 5) / 10_000;
            mid += change;
            let (bid, ask) = (mid - 1_000, mid + 1_000);
            let index = rng.below(clients.len() as u64) as usize;
            let client = clients[index].clone();
            let side = if index % 2 == 0 { Side::Buy } else { Side::Sell };
            let quantity = BTC / 10 + rng.below(10) as i128 * BTC / 100;
            if rng.below(10) == 0 {
                // A resting order away from the market, cancelled a minute later (rarely: ratio stays low).
                let limit = if side == Side::Buy { bid * 95 / 100 / 100 * 100 } else { ask * 105 / 100 / 100 * 100 };
                let order = session.resting(&client, side, limit, bid, ask, at);
                if rng.below(3) == 0 {
                    session.cancel(&client, &order, at + 60_000);
                    at += 60_000;
                }
            } else {
                session.market(&client, side, quantity, bid, ask, at);
            }
            if plant && step == 300 {
                let spoofer = clients[0].clone();
                for index in 0..6 {
                    let order = session.resting(&spoofer, Side::Buy, bid * 90 / 100 / 100 * 100, bid, ask, at + index);
                    session.cancel(&spoofer, &order, at + 1_000 + index);
                }
                at += 2_000;
                // Wash: client 1 sells, then buys back the same size.
                let washer = clients[1].clone();
                session.market(&washer, Side::Sell, BTC / 2, bid, ask, at + 5_000);
                session.market(&washer, Side::Buy, BTC / 2, bid, ask, at + 10_000);
                at += 10_000;
            }
        }
        let kinds = session.kinds();
        if plant {
            assert!(kinds.contains(&SPOOFING), "{kinds:?}");
            assert!(kinds.contains(&WASH_TRADE), "{kinds:?}");
            assert_eq!(kinds.len(), 2, "{kinds:?}");
        } else {
            assert!(kinds.is_empty(), "normal flow raised {kinds:?}");
        }
    }
}

#[test]
fn a_rebuilt_projection_has_the_same_trade_log_and_alerts() {
    let mut first = Session::new();
    let client = first.client(T0);
    first.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, T0 + 1);
    first.market(&client, Side::Sell, BTC, 4_999_000, 5_001_000, T0 + 2);
    let all = |projection: &Projection| {
        (
            render(
                projection,
                ReportKind::Trades,
                &ReportParams { format: Some("csv".into()), ..ReportParams::default() },
            )
            .unwrap()
            .body,
            render(projection, ReportKind::Alerts, &ReportParams::default()).unwrap().body,
        )
    };
    // Replay the same records into a fresh projection.
    let mut replayed = Projection::new(SurveillanceConfig::default());
    let mut second = Session::new();
    let client2 = second.client(T0);
    assert_eq!(client, client2);
    second.market(&client2, Side::Buy, BTC, 4_999_000, 5_001_000, T0 + 1);
    second.market(&client2, Side::Sell, BTC, 4_999_000, 5_001_000, T0 + 2);
    assert_eq!(all(&first.projection), all(&second.projection));
    assert!(replayed.apply_payload(2, b"{}").is_err(), "out of order records are refused");
}

/// The trade log CSV written field by field is byte for byte what the generic table path writes: unknown values
/// empty, negative revenue, several days, and rows loaded around the epoch and far in the future.
#[test]
fn the_direct_trade_csv_matches_the_table_path() {
    let mut session = Session::new();
    let client = session.client(T0);
    session.market(&client, Side::Buy, BTC, 4_999_000, 5_001_000, T0 + 1);
    session.market(&client, Side::Sell, BTC * 3 / 10, 4_999_000, 5_001_000, T0 + 86_400_000 + 59_999);
    let extra = session.projection.trades().len() as u64;
    let log = session.projection.trades_mut();
    let template = log.query(&TradeFilter::default(), 1).rows[0].clone();
    for (offset, executed_at) in
        [0, -1, 253_402_300_799_999, 253_402_300_800_000, T0 + 3_600_000].into_iter().enumerate()
    {
        let mut row = template.clone();
        row.number = extra + 1 + offset as u64;
        row.executed_at = executed_at;
        row.notional_usd = None;
        row.spread_revenue = Some(-12_345);
        row.spread_revenue_usd = None;
        log.push(row);
    }
    let params = ReportParams { format: Some("csv".into()), ..ReportParams::default() };
    let direct = render(&session.projection, ReportKind::Trades, &params).unwrap();
    assert_eq!(direct.body, crate::render::trades_csv_through_table(&session.projection, &params));
    assert_eq!(direct.rows, 7);
    assert!(direct.body.contains(",-123.45,"), "{}", direct.body);
    assert!(direct.body.contains("1969-12-31T23:59:59.999Z"), "{}", direct.body);
}
