//! The hedger: policies, hedges opened when a client fill moves the desk outside its band, routing across venues,
//! venue reports (acknowledgements, fills, closes, rejects, timeouts), retries, failures with an alert, the kill
//! switch, the ledger's venue accounts, and a seeded simulation with replay.

mod common;

use common::builders::market_order;
use common::{code, Session, BTC};
use otcd_core::engine::alerts::AlertKind;
use otcd_core::engine::controls::{InstrumentControl, KillSwitch};
use otcd_core::engine::hedging::{
    ChildState, Hedge, HedgeInputs, HedgeReport, HedgeState, HedgeTo, HedgingPolicy, VenueReport,
};
use otcd_core::engine::venue_transfers::{NewVenueTransfer, TransferDirection};
use otcd_core::engine::{Command, CommandError, Desk, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::ledger::{AccountKey, Owner, Purpose};
use otcd_core::market::routing::VenueTerms;
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::SplitMix64;

const USD: i128 = 100; // cents per dollar

fn policy(band: i128) -> HedgingPolicy {
    HedgingPolicy {
        asset: code("BTC"),
        enabled: true,
        target: 0,
        band,
        hedge_to: HedgeTo::Target,
        instruments: vec!["BTC-USD".into()],
        venues: vec!["alpha".into(), "beta".into(), "gamma".into()],
        order_quantity_max: BTC,
        slippage_centi_bps_max: 100 * 100, // 100 bps
        interval_ms_min: 0,
        attempts_max: 3,
    }
}

/// A venue book around `mid` (price units, 2 decimals): 5 levels a side, 1 BTC each, 1.00 apart.
fn venue_book(venue: &str, mid: i128) -> VenueBook {
    VenueBook {
        venue: venue.into(),
        instrument: "BTC-USD".into(),
        bids: (0..5).map(|step| Level { price: mid - 100 - step * 100, quantity: BTC }).collect(),
        asks: (0..5).map(|step| Level { price: mid + 100 + step * 100, quantity: BTC }).collect(),
        as_of: TimestampMs(0),
    }
}

fn terms(venue: &str, fee_bps: i128) -> VenueTerms {
    VenueTerms {
        venue: venue.into(),
        taker_fee_centi_bps: fee_bps * 100,
        quote_available: 10_000_000 * USD,
        base_available: 100 * BTC,
    }
}

fn inputs(mid: i128) -> HedgeInputs {
    HedgeInputs {
        asset: code("BTC"),
        instrument: "BTC-USD".into(),
        books: vec![venue_book("alpha", mid), venue_book("beta", mid + 50), venue_book("gamma", mid)],
        venues: vec![terms("alpha", 10), terms("beta", 2), terms("gamma", 20)],
    }
}

struct Desk2 {
    session: Session,
    client: ClientId,
    trades: u32,
}

impl Desk2 {
    fn new(band: i128) -> Self {
        let mut session = Session::new();
        let client = session.client(Settlement::Prefunded, None);
        session.deposit(&client, "USD", 1_000_000_000 * USD);
        session.deposit(&client, "BTC", 10_000 * BTC);
        session.run(Command::PutHedgingPolicy(policy(band))).unwrap();
        Self { session, client, trades: 0 }
    }

    fn client_trade(&mut self, side: Side, quantity: i128, mid: i128) {
        self.trades += 1;
        let book = self.session.book(mid - 100, mid + 100);
        let order = market_order(&self.client, &format!("t-{}", self.trades), side, quantity, vec![book]);
        self.session.run(Command::MarketOrder(order)).unwrap();
    }

    fn evaluate(&mut self, mid: i128) -> Result<Outcome, CommandError> {
        self.session.run(Command::EvaluateHedge(inputs(mid)))
    }

    fn report(&mut self, client_order_id: &str, report: VenueReport) -> Result<Outcome, CommandError> {
        self.session.run(Command::HedgeReport(HedgeReport { client_order_id: client_order_id.into(), report }))
    }

    fn position(&self) -> i128 {
        self.session.desk.desk_position(code("BTC"))
    }

    fn hedge(&self, hedge_id: &str) -> Hedge {
        self.session.desk.hedging().hedge(hedge_id).unwrap().clone()
    }

    /// Fills every pending child whole at its limit price, with a 1 bps fee.
    fn fill_all(&mut self, hedge_id: &str) {
        for child in self.hedge(hedge_id).children {
            if child.state == ChildState::Pending {
                self.fill(&child.client_order_id, child.quantity, child.limit_price);
            }
        }
    }

    /// Books a fill with a 1 bps fee; returns its fill id.
    fn fill(&mut self, client_order_id: &str, quantity: i128, price: i128) -> String {
        self.trades += 1;
        let fee = price * quantity / BTC / 10_000;
        let fill_id = format!("{client_order_id}-f{}", self.trades);
        self.report(client_order_id, VenueReport::Fill { fill_id: fill_id.clone(), quantity, price, fee }).unwrap();
        fill_id
    }
}

fn opened(outcome: Outcome) -> Hedge {
    match outcome {
        Outcome::Hedge(hedge) => *hedge,
        other => panic!("expected a hedge, got {other:?}"),
    }
}

fn balance(desk: &Desk, owner: Owner, asset: &str, purpose: Purpose) -> i128 {
    let key = AccountKey { owner, asset: code(asset), purpose };
    desk.ledger().account_id(&key).map_or(0, |account| desk.ledger().balance(account))
}

#[test]
fn a_client_buy_outside_the_band_opens_a_hedge_that_brings_the_desk_back() {
    let mut desk = Desk2::new(BTC / 2);
    let mid = 5_000_000;
    desk.client_trade(Side::Buy, 2 * BTC, mid);
    assert_eq!(desk.position(), -2 * BTC);
    let hedge = opened(desk.evaluate(mid).unwrap());
    assert_eq!((hedge.side, hedge.quantity, hedge.state), (Side::Buy, 2 * BTC, HedgeState::Open));
    // Best all-in first: gamma is dearer (20 bps), alpha (10 bps at 50,001) beats beta (2 bps at 50,001.50)?
    // alpha: 50,001.00 × 1.0010 = 50,051.001; beta: 50,001.50 × 1.0002 = 50,011.50 → beta first, then alpha.
    let venues: Vec<&str> = hedge.children.iter().map(|child| child.venue.as_str()).collect();
    assert!(venues.contains(&"beta"), "{venues:?}");
    assert_eq!(hedge.children.iter().map(|child| child.quantity).sum::<i128>(), 2 * BTC);
    assert!(hedge.children.iter().all(|child| child.quantity <= BTC), "the largest hedge order is kept");
    assert_eq!(hedge.children[0].client_order_id, "hg_0000000001-1-0");
    desk.fill_all(&hedge.hedge_id);
    let done = desk.hedge(&hedge.hedge_id);
    assert_eq!((done.state, done.filled), (HedgeState::Filled, 2 * BTC));
    assert_eq!(desk.position(), 0);
    // The ledger: what the desk holds at the venues, and the venue fees as an expense.
    let held: i128 = ["alpha", "beta", "gamma"]
        .iter()
        .map(|venue| balance(&desk.session.desk, Owner::Venue((*venue).into()), "BTC", Purpose::Venue))
        .sum();
    assert_eq!(held, -2 * BTC);
    assert_eq!(balance(&desk.session.desk, Owner::Desk, "USD", Purpose::VenueFees), -done.fee);
    assert!(done.fee > 0);
    // Inside the band now: nothing to do.
    assert!(matches!(desk.evaluate(mid).unwrap(), Outcome::HedgeIdle(_)));
    desk.session.assert_replay_matches();
}

#[test]
fn inside_the_band_or_disabled_nothing_happens() {
    let mut desk = Desk2::new(BTC / 2);
    desk.client_trade(Side::Sell, 4 * BTC / 10, 5_000_000);
    assert!(matches!(desk.evaluate(5_000_000).unwrap(), Outcome::HedgeIdle(_)));
    let mut off = policy(BTC / 2);
    off.enabled = false;
    desk.session.run(Command::PutHedgingPolicy(off)).unwrap();
    desk.client_trade(Side::Sell, 2 * BTC, 5_000_000);
    assert!(matches!(desk.evaluate(5_000_000).unwrap(), Outcome::HedgeIdle(_)));
}

#[test]
fn band_edge_hedges_only_back_to_the_edge() {
    let mut desk = Desk2::new(BTC / 2);
    let mut edge = policy(BTC / 2);
    edge.hedge_to = HedgeTo::BandEdge;
    desk.session.run(Command::PutHedgingPolicy(edge)).unwrap();
    desk.client_trade(Side::Sell, 2 * BTC, 5_000_000); // the desk is long 2
    let hedge = opened(desk.evaluate(5_000_000).unwrap());
    assert_eq!((hedge.side, hedge.quantity), (Side::Sell, 3 * BTC / 2));
}

#[test]
fn never_two_active_hedges_and_the_kill_switch_stops_new_ones() {
    let mut desk = Desk2::new(BTC / 2);
    desk.client_trade(Side::Buy, 2 * BTC, 5_000_000);
    let first = opened(desk.evaluate(5_000_000).unwrap());
    desk.client_trade(Side::Buy, 2 * BTC, 5_000_000);
    assert!(matches!(desk.evaluate(5_000_000).unwrap(), Outcome::HedgeIdle(_)), "one active hedge per asset");
    desk.fill_all(&first.hedge_id);
    desk.session.run(Command::PutKillSwitch(KillSwitch { engaged: true, reason: None })).unwrap();
    assert!(matches!(desk.evaluate(5_000_000), Err(CommandError::TradingHalted { .. })));
    desk.session.run(Command::PutKillSwitch(KillSwitch { engaged: false, reason: None })).unwrap();
    let halt = InstrumentControl { instrument: "BTC-USD".into(), halted: true, ..Default::default() };
    desk.session.run(Command::PutInstrumentControl(halt)).unwrap();
    assert!(matches!(desk.evaluate(5_000_000), Err(CommandError::TradingHalted { .. })));
    let resume = InstrumentControl { instrument: "BTC-USD".into(), halted: false, ..Default::default() };
    desk.session.run(Command::PutInstrumentControl(resume)).unwrap();
    let second = opened(desk.evaluate(5_000_000).unwrap());
    assert_eq!(second.hedge_id, "hg_0000000002");
}

#[test]
fn a_reject_and_a_timeout_end_with_exactly_the_intended_quantity() {
    let mut desk = Desk2::new(BTC / 2);
    desk.client_trade(Side::Buy, 2 * BTC, 5_000_000);
    let hedge = opened(desk.evaluate(5_000_000).unwrap());
    let (first, second) = (hedge.children[0].clone(), hedge.children[1].clone());
    desk.report(&first.client_order_id, VenueReport::Rejected { reason: "insufficient balance".into() }).unwrap();
    desk.report(&second.client_order_id, VenueReport::TimedOut).unwrap();
    assert!(matches!(desk.evaluate(5_000_000).unwrap(), Outcome::HedgeIdle(_)), "a timed-out child is in flight");
    // The status query finds it filled.
    desk.fill(&second.client_order_id, second.quantity, second.limit_price);
    let retried = opened(desk.evaluate(5_000_000).unwrap());
    assert_eq!(retried.attempts, 2);
    let new: Vec<_> = retried.children.iter().filter(|child| child.state == ChildState::Pending).cloned().collect();
    assert_eq!(new.iter().map(|child| child.quantity).sum::<i128>(), first.quantity);
    assert!(new[0].client_order_id.starts_with("hg_0000000001-2-"));
    desk.fill_all(&hedge.hedge_id);
    let done = desk.hedge(&hedge.hedge_id);
    assert_eq!((done.state, done.filled), (HedgeState::Filled, 2 * BTC));
    assert_eq!(desk.position(), 0);
}

#[test]
fn a_fill_during_a_cancel_is_booked_and_a_repeated_fill_is_not() {
    let mut desk = Desk2::new(BTC / 2);
    desk.client_trade(Side::Buy, BTC, 5_000_000);
    let hedge = opened(desk.evaluate(5_000_000).unwrap());
    let child = hedge.children[0].clone();
    desk.report(&child.client_order_id, VenueReport::Closed { reason: "cancelled".into() }).unwrap();
    // The venue matched it before the cancel landed: the fill comes after the close.
    let fill_id = desk.fill(&child.client_order_id, child.quantity, child.limit_price);
    let after = desk.hedge(&hedge.hedge_id);
    assert_eq!(after.filled, BTC);
    assert_eq!(desk.position(), 0);
    let fee = child.limit_price * child.quantity / BTC / 10_000;
    let again = VenueReport::Fill { fill_id, quantity: child.quantity, price: child.limit_price, fee };
    let entries = desk.session.desk.ledger().entry_count();
    desk.report(&child.client_order_id, again).unwrap();
    assert_eq!(desk.session.desk.ledger().entry_count(), entries, "the same fill id books nothing");
    // A fill larger than what the order has left is refused.
    let over = VenueReport::Fill { fill_id: "x".into(), quantity: 1, price: child.limit_price, fee: 0 };
    assert!(desk.report(&child.client_order_id, over).is_err());
}

#[test]
fn a_hedge_that_cannot_complete_fails_with_an_alert() {
    let mut desk = Desk2::new(BTC / 2);
    desk.client_trade(Side::Buy, BTC, 5_000_000);
    let hedge = opened(desk.evaluate(5_000_000).unwrap());
    for attempt in 1..=3 {
        let current = desk.hedge(&hedge.hedge_id);
        assert_eq!(current.attempts, attempt);
        for child in current.children.iter().filter(|child| child.state == ChildState::Pending) {
            desk.report(&child.client_order_id, VenueReport::Rejected { reason: "down".into() }).unwrap();
        }
        if attempt < 3 {
            opened(desk.evaluate(5_000_000).unwrap());
        }
    }
    let failed = desk.hedge(&hedge.hedge_id);
    assert_eq!(failed.state, HedgeState::Failed);
    let alerts = desk.session.desk.alerts();
    assert_eq!(alerts.last().unwrap().kind, AlertKind::HedgeFailed);
    // A failed hedge is not active: the next evaluation opens a new one.
    assert_eq!(opened(desk.evaluate(5_000_000).unwrap()).hedge_id, "hg_0000000002");
}

#[test]
fn policies_are_validated() {
    let mut desk = Desk2::new(BTC / 2);
    let mut bad = policy(-1);
    assert!(desk.session.run(Command::PutHedgingPolicy(bad.clone())).is_err());
    bad = policy(1);
    bad.instruments = vec!["ETH-USD".into()];
    assert!(desk.session.run(Command::PutHedgingPolicy(bad)).is_err());
    let mut none = policy(1);
    none.attempts_max = 0;
    assert!(desk.session.run(Command::PutHedgingPolicy(none)).is_err());
}

/// Seeded: random client flow and price moves with hedging on. After each client trade the desk hedges until it
/// is idle (venues fill, fill partly, reject or time out at random); then every position is within the band, never
/// two hedges of the asset are active, the ledger's invariants hold after every step (the session checks), and a
/// replay of the journaled records gives the same hedges and ledger.
#[test]
fn seeded_simulation_keeps_the_desk_inside_its_band() {
    for seed in 1..=20u64 {
        simulate(seed);
    }
}

fn simulate(seed: u64) {
    let mut rng = SplitMix64(seed);
    let band = BTC / 2;
    let mut desk = Desk2::new(band);
    let mut mid: i128 = 5_000_000;
    let largest_trade = 3 * BTC;
    for _ in 0..40 {
        mid += rng.between(-5_000, 5_000);
        let side = if rng.percent(50) { Side::Buy } else { Side::Sell };
        let quantity = rng.between(1, largest_trade / 1_000_000) * 1_000_000;
        desk.client_trade(side, quantity, mid);
        drive_hedges(&mut desk, &mut rng, mid);
        let position = desk.position();
        assert!(position.abs() <= band, "seed {seed}: position {position} outside the band once hedges complete");
    }
    // Replayed as recovery does: each record through the journal's JSON encoding and back.
    let mut replayed = Desk::new();
    for record in &desk.session.records {
        let encoded = serde_json::to_vec(record).unwrap();
        let decoded: otcd_core::engine::JournalRecord = serde_json::from_slice(&encoded).unwrap_or_else(|error| {
            panic!("seed {seed}: {} does not decode: {error}", String::from_utf8_lossy(&encoded))
        });
        assert_eq!(&decoded, record, "seed {seed}: the journal's encoding round-trips");
        replayed.execute(&decoded).unwrap();
    }
    let hedges = |desk: &Desk| serde_json::to_string(&desk.hedging().hedges().collect::<Vec<_>>()).unwrap();
    assert_eq!(hedges(&replayed), hedges(&desk.session.desk), "seed {seed}: replay gives the same hedges");
    desk.session.assert_replay_matches();
}

/// Evaluates and answers children at random until the engine has nothing to do.
fn drive_hedges(desk: &mut Desk2, rng: &mut SplitMix64, mid: i128) {
    for _ in 0..200 {
        match desk.evaluate(mid) {
            Ok(Outcome::HedgeIdle(reason)) if reason.contains("inside its band") => return,
            Ok(_) | Err(_) => {}
        }
        let active: Vec<&Hedge> =
            desk.session.desk.hedging().hedges().filter(|hedge| hedge.state.is_active()).collect();
        assert!(active.len() <= 1, "never two active hedges of one asset");
        let Some(hedge) = active.first().map(|hedge| (*hedge).clone()) else { continue };
        for child in hedge.children.iter().filter(|child| !child.state.is_done()) {
            answer(desk, rng, child.client_order_id.clone(), child.quantity - child.filled, child.limit_price);
        }
    }
    panic!("the hedges did not settle");
}

fn answer(desk: &mut Desk2, rng: &mut SplitMix64, id: String, rest: i128, price: i128) {
    match rng.below(10) {
        0 => {
            desk.report(&id, VenueReport::Rejected { reason: "rejected".into() }).unwrap();
        }
        1 => {
            desk.report(&id, VenueReport::TimedOut).unwrap();
        }
        2 if rest > 1_000_000 => {
            let part = rest / 2 - (rest / 2) % 1_000_000;
            desk.fill(&id, part, price);
            desk.report(&id, VenueReport::Closed { reason: "ioc remainder".into() }).unwrap();
        }
        _ => {
            desk.fill(&id, rest, price);
        }
    }
}

fn venue_transfer(venue: &str, amount: i128, direction: TransferDirection, reference: &str) -> Command {
    Command::TransferVenue(NewVenueTransfer {
        venue: venue.into(),
        asset: code("BTC"),
        amount,
        direction,
        reference: ClientReference::parse(reference).unwrap(),
    })
}

#[test]
fn a_venue_transfer_moves_custody_to_the_venue_in_one_balanced_transaction_idempotently() {
    let mut desk = Desk2::new(BTC / 2);
    let custody_before = balance(&desk.session.desk, Owner::Desk, "BTC", Purpose::Custody);
    assert_eq!(custody_before, -10_000 * BTC, "the client's deposits sit in custody");
    let position_before = desk.position();
    let transactions_before = desk.session.desk.ledger().transactions().len();
    let to = desk.session.run(venue_transfer("alpha", 40 * BTC, TransferDirection::ToVenue, "fund-1")).unwrap();
    let Outcome::VenueTransfer(transfer) = to else { panic!("expected a transfer, got {to:?}") };
    assert_eq!((transfer.transfer_id.as_str(), transfer.amount_to_venue()), ("vt_00000001", 40 * BTC));
    let ledger = desk.session.desk.ledger();
    assert_eq!(ledger.transactions().len(), transactions_before + 1, "one transaction");
    assert_eq!(balance(&desk.session.desk, Owner::Desk, "BTC", Purpose::Custody), custody_before + 40 * BTC);
    assert_eq!(balance(&desk.session.desk, Owner::Venue("alpha".into()), "BTC", Purpose::Venue), -40 * BTC);
    assert_eq!(desk.session.desk.venue_holding("alpha", code("BTC")), 40 * BTC);
    assert_eq!(desk.position(), position_before, "the desk's position does not move");
    // A repeat answers the original and changes nothing; the same reference for another transfer is a conflict.
    let again = desk.session.run(venue_transfer("alpha", 40 * BTC, TransferDirection::ToVenue, "fund-1")).unwrap();
    assert_eq!(again, Outcome::VenueTransfer(transfer));
    assert_eq!(desk.session.desk.ledger().transactions().len(), transactions_before + 1);
    let conflict = desk.session.run(venue_transfer("alpha", BTC, TransferDirection::ToVenue, "fund-1"));
    assert!(matches!(conflict, Err(CommandError::Conflict { .. })), "{conflict:?}");
    // Back from the venue, never more than it holds; never more than custody holds; never zero.
    desk.session.run(venue_transfer("alpha", 15 * BTC, TransferDirection::FromVenue, "back-1")).unwrap();
    assert_eq!(desk.session.desk.venue_holding("alpha", code("BTC")), 25 * BTC);
    let too_much = desk.session.run(venue_transfer("alpha", 26 * BTC, TransferDirection::FromVenue, "back-2"));
    assert!(matches!(too_much, Err(CommandError::InsufficientFunds { .. })), "{too_much:?}");
    let beyond = desk.session.run(venue_transfer("beta", 20_000 * BTC, TransferDirection::ToVenue, "fund-2"));
    assert!(matches!(beyond, Err(CommandError::InsufficientFunds { .. })), "{beyond:?}");
    for amount in [0, -BTC] {
        let refused = desk.session.run(venue_transfer("beta", amount, TransferDirection::ToVenue, "fund-3"));
        assert!(matches!(refused, Err(CommandError::Invalid { .. })), "{refused:?}");
    }
    desk.session.assert_replay_matches();
}
