//! The derivation rules on hand-built cases: the tricky ones the seeded simulation
//! (`tests/event_simulation.rs`) meets only by chance. Books, orders and clients come from the builders the
//! integration tests use (`tests/common/builders.rs`, included by path: a unit test cannot use the test kit).

// `builders` names no crate: it takes its types from these imports.
use super::*;
use crate::engine::alerts::{AlertKind, AlertUpdate, SurveillanceEvidence, SurveillanceFinding};
use crate::engine::netting::{Direction, InstructionOutcome, InstructionStatus};
use crate::engine::orders::{LimitOrder, MarketOrder, OrderStatus, TimeInForce};
use crate::engine::{fixtures, Actor, Command, NewDeposit};
use crate::ids::ClientReference;
use crate::market::{Level, Side, VenueBook};
use crate::model::Settlement;
use crate::time::TimestampMs;
use builders::{create_acme, created_client, market_order, unlimited_book};

#[path = "../../../tests/common/builders.rs"]
mod builders;

const BTC: i128 = 100_000_000;

struct Harness {
    desk: Desk,
    at: i64,
}

impl Harness {
    fn new() -> Self {
        let mut harness = Harness { desk: Desk::new(), at: 1_000 };
        harness.ok(fixtures::initialize_desk());
        harness
    }

    fn run(&mut self, command: Command) -> Result<(Executed, Vec<DeskEvent>), CommandError> {
        self.at += 10;
        let record = JournalRecord { at: TimestampMs(self.at), actor: Actor::default(), command };
        self.desk.execute_with_events(&record)
    }

    /// The command's outcome and its client-visible events (ledger transactions are checked on their own).
    fn ok(&mut self, command: Command) -> (Outcome, Vec<DeskEvent>) {
        let (outcome, events) = self.ok_with_ledger(command);
        (outcome, visible(events))
    }

    fn ok_with_ledger(&mut self, command: Command) -> (Outcome, Vec<DeskEvent>) {
        let (executed, events) = self.run(command).expect("accepted");
        assert!(executed.changed, "the command changed the desk");
        (executed.outcome, events)
    }

    fn client(&mut self, settlement: Settlement, credit_limit_usd: Option<i128>) -> ClientId {
        created_client(self.ok(create_acme(settlement, credit_limit_usd)).0)
    }

    /// A harness with one prefunded client holding 60,000.00 USD.
    fn with_dollars() -> (Self, ClientId) {
        let mut harness = Harness::new();
        let client_id = harness.client(Settlement::Prefunded, None);
        harness.deposit(&client_id, "USD", 6_000_000);
        (harness, client_id)
    }

    fn deposit(&mut self, client_id: &ClientId, asset: &str, amount: i128) -> Vec<DeskEvent> {
        let reference = ClientReference::parse(&format!("dep-{}", self.at)).unwrap();
        let asset = AssetCode::parse(asset).unwrap();
        let deposit = NewDeposit { client_id: client_id.clone(), asset, amount, reference, notional_usd: None };
        self.ok(Command::Deposit(deposit)).1
    }

    /// A BTC-USD order of `quantity` against a book of unlimited depth.
    fn order(&self, client_id: &ClientId, id: &str, side: Side, quantity: i128, book: (i128, i128)) -> MarketOrder {
        let books = vec![unlimited_book(book.0, book.1, self.at + 10)];
        MarketOrder { notional_usd: Some(5_000_000), ..market_order(client_id, id, side, quantity, books) }
    }

    /// The balance event `Desk::balances` implies for a client's asset now.
    fn balance(&self, client_id: &ClientId, asset: &str) -> DeskEvent {
        let line = self.desk.balances(client_id).into_iter().find(|line| line.asset.as_str() == asset).unwrap();
        DeskEvent::Balance(BalanceEvent {
            client_id: client_id.clone(),
            asset: line.asset,
            available: line.available,
            reserved: line.reserved,
        })
    }
}

/// The events without the desk-level ledger transactions.
fn visible(events: Vec<DeskEvent>) -> Vec<DeskEvent> {
    events.into_iter().filter(|event| !matches!(event, DeskEvent::LedgerTransaction(_))).collect()
}

/// The kind of each event, as it serializes (`type`).
fn kinds(events: &[DeskEvent]) -> Vec<String> {
    events.iter().map(|event| serde_json::to_value(event).unwrap()["type"].as_str().unwrap().to_owned()).collect()
}

/// A balance event with the given balances.
fn balance_event(client_id: &ClientId, asset: &str, available: i128, reserved: i128) -> DeskEvent {
    let asset = AssetCode::parse(asset).unwrap();
    DeskEvent::Balance(BalanceEvent { client_id: client_id.clone(), asset, available, reserved })
}

#[test]
fn a_reserve_and_its_release_in_one_command_give_no_balance_event() {
    let mut harness = Harness::new();
    let client_id = harness.client(Settlement::Prefunded, None);
    harness.deposit(&client_id, "USD", 1_000_000);
    let desk = &mut harness.desk;
    let owner = Owner::Client(client_id.clone());
    let usd = AssetCode::parse("USD").unwrap();
    let available =
        desk.ledger.account_id(&AccountKey { owner: owner.clone(), asset: usd, purpose: Purpose::Available });
    let reserved = desk.ledger.open_account(AccountKey { owner, asset: usd, purpose: Purpose::Reserved }, Some(0));
    let at = TimestampMs(harness.at);
    // One "command" that reserves and releases: four entries on the client's two USD accounts, nothing changed.
    let mark = desk.event_mark();
    let pending = desk.ledger.reserve(at, available.unwrap(), reserved, 400_000, "hold").unwrap();
    desk.ledger.void_pending(at, pending, "hold").unwrap();
    assert_eq!(desk.ledger.entries_since(mark.entries).count(), 4);
    assert_eq!(visible(desk.events_since(&mark, &Outcome::Audited)), vec![]);
    // The reserve alone is one event with both balances after it.
    let mark = desk.event_mark();
    desk.ledger.reserve(at, available.unwrap(), reserved, 400_000, "hold").unwrap();
    let expected = BalanceEvent { client_id: client_id.clone(), asset: usd, available: 600_000, reserved: 400_000 };
    assert_eq!(visible(desk.events_since(&mark, &Outcome::Audited)), vec![DeskEvent::Balance(expected)]);
}

#[test]
fn a_resting_buy_filled_at_placement_gives_one_event_per_balance_though_it_reserved_and_released() {
    let (mut harness, client_id) = Harness::with_dollars();
    // Ask 49,900.00 → firm buy 49,999.80, within the 50,050.00 limit: reserved, filled, the rest released.
    let order = harness.order(&client_id, "gtc-1", Side::Buy, BTC, (4_989_000, 4_990_000));
    let limit = LimitOrder { order, limit_price: 5_005_000, time_in_force: TimeInForce::Gtc, expire_at: None };
    let (outcome, events) = harness.ok(Command::LimitOrder(limit));
    let Outcome::Order(order) = outcome else { panic!("an order") };
    assert_eq!(order.status, OrderStatus::Filled);
    assert_eq!(kinds(&events), ["order", "trade", "balance", "balance"]);
    // First touched: USD (reserved), then BTC (received).
    assert_eq!(events[2], harness.balance(&client_id, "USD"));
    assert_eq!(events[3], harness.balance(&client_id, "BTC"));
    assert_eq!(events[2], balance_event(&client_id, "USD", 6_000_000 - 4_999_980, 0));
}

#[test]
fn a_trade_touching_base_and_quote_gives_two_balance_events_after_its_order_and_trade() {
    let (mut harness, client_id) = Harness::with_dollars();
    let order = harness.order(&client_id, "m-1", Side::Buy, BTC, (4_999_000, 5_000_000));
    let (outcome, events) = harness.ok(Command::MarketOrder(order));
    let Outcome::Order(order) = outcome else { panic!("an order") };
    let trade = harness.desk.trade(&order.trade_ids[0]).unwrap().clone();
    let expected = vec![
        DeskEvent::Order(OrderEvent { order, trades: vec![trade.clone()], record_trades: 1 }),
        DeskEvent::Trade(trade),
        harness.balance(&client_id, "USD"),
        harness.balance(&client_id, "BTC"),
    ];
    assert_eq!(events, expected);
    assert_eq!(events[3], balance_event(&client_id, "BTC", BTC, 0));
    assert!(events.iter().all(|event| event.client_id() == Some(&client_id)));
}

#[test]
fn a_credit_clients_net_settlement_instructions_and_their_completion() {
    let mut harness = Harness::new();
    let client_id = harness.client(Settlement::Credit, Some(1_000_000_000));
    // Another client's BTC deposit puts BTC in the desk's wallet, so the desk can pay out.
    let depositor = harness.client(Settlement::Prefunded, None);
    harness.deposit(&depositor, "BTC", 10 * BTC);
    let order = harness.order(&client_id, "c-1", Side::Buy, BTC, (4_999_000, 5_000_000));
    let (_, traded) = harness.ok(Command::MarketOrder(order));
    assert_eq!(kinds(&traded), ["order", "trade", "balance", "balance"]);
    assert_eq!(traded[2], balance_event(&client_id, "USD", -5_010_000, 0));

    // The cycle moves nothing on the ledger: instructions only.
    let (_, cycle) = harness.ok(Command::RunNetSettlement);
    assert_eq!(kinds(&cycle), ["instruction", "instruction"]);
    let instructions: Vec<Instruction> = cycle
        .into_iter()
        .map(|event| match event {
            DeskEvent::Instruction(instruction) => instruction,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    for instruction in instructions {
        let outcome = InstructionOutcome::Completed;
        let command = Command::SettleInstruction { instruction_id: instruction.instruction_id.clone(), outcome };
        let (_, events) = harness.ok(command);
        let stored = harness.desk.instruction(&instruction.instruction_id).unwrap().clone();
        assert_eq!(stored.status, InstructionStatus::Completed);
        let asset = instruction.asset.to_string();
        assert_eq!(events, vec![DeskEvent::Instruction(stored), balance_event(&client_id, &asset, 0, 0)]);
        let expected = if asset == "USD" { Direction::ClientPays } else { Direction::DeskPays };
        assert_eq!(instruction.direction, expected);
    }
    assert_eq!(harness.desk.credit_used(&client_id), 0);
}

#[test]
fn expiry_names_its_orders_and_the_release_is_one_balance_event() {
    let (mut harness, client_id) = Harness::with_dollars();
    let order = harness.order(&client_id, "gtd-1", Side::Buy, BTC, (4_999_000, 5_000_000));
    let expire_at = Some(TimestampMs(harness.at + 15));
    let limit = LimitOrder { order, limit_price: 5_005_000, time_in_force: TimeInForce::Gtd, expire_at };
    let (_, placed) = harness.ok(Command::LimitOrder(limit));
    assert_eq!(kinds(&placed), ["order", "balance"]);
    assert_eq!(placed[1], balance_event(&client_id, "USD", 6_000_000 - 5_005_000, 5_005_000));
    let (_, expired) = harness.ok(Command::ExpireOrders);
    assert_eq!(kinds(&expired), ["order", "balance"]);
    let DeskEvent::Order(event) = &expired[0] else { panic!("an order") };
    assert_eq!((event.order.status, event.trades.len()), (OrderStatus::Expired, 0));
    assert_eq!(expired[1], balance_event(&client_id, "USD", 6_000_000, 0));
    // Nothing left to expire: unchanged, no events.
    let (executed, none) = harness.run(Command::ExpireOrders).unwrap();
    assert!(!executed.changed && none.is_empty());
}

fn finding(client_id: &ClientId, dedup_key: &str) -> SurveillanceFinding {
    SurveillanceFinding {
        kind: AlertKind::SurveillanceWashTrade,
        client_id: client_id.clone(),
        summary: "buys and sells against itself".into(),
        evidence: SurveillanceEvidence {
            instrument: "BTC-USD".into(),
            dedup_key: dedup_key.into(),
            observed_at: TimestampMs(1),
            observed_seq: 1,
            trade_ids: vec![],
            order_ids: vec![],
            figures: Default::default(),
            thresholds: Default::default(),
        },
    }
}

#[test]
fn a_new_surveillance_alert_is_one_event_and_an_update_another() {
    let mut harness = Harness::new();
    let client_id = harness.client(Settlement::Prefunded, None);
    let (_, raised) = harness.ok(Command::RaiseSurveillanceAlert(finding(&client_id, "wash/1")));
    assert_eq!(kinds(&raised), ["alert"]);
    let DeskEvent::Alert(alert) = &raised[0] else { panic!("an alert") };
    let (executed, again) = harness.run(Command::RaiseSurveillanceAlert(finding(&client_id, "wash/1"))).unwrap();
    assert!(!executed.changed && again.is_empty());
    let update =
        AlertUpdate { alert_id: alert.alert_id.clone(), status: None, note: Some("looking".into()), assignee: None };
    let (_, updated) = harness.ok(Command::UpdateAlert(update));
    assert_eq!(updated, vec![DeskEvent::Alert(harness.desk.alert(&alert.alert_id).unwrap().clone())]);
    let DeskEvent::Alert(after) = &updated[0] else { panic!("an alert") };
    assert_eq!(after.notes.len(), 1);
}

#[test]
fn refused_and_repeated_commands_give_no_events() {
    let (mut harness, client_id) = Harness::with_dollars();
    let order = harness.order(&client_id, "m-1", Side::Buy, BTC, (4_999_000, 5_000_000));
    assert_eq!(harness.ok(Command::MarketOrder(order.clone())).1.len(), 4);
    let (repeat, events) = harness.run(Command::MarketOrder(order)).unwrap();
    assert!(!repeat.changed && events.is_empty());
    let too_big = harness.order(&client_id, "m-2", Side::Buy, 100 * BTC, (4_999_000, 5_000_000));
    assert_eq!(harness.run(Command::MarketOrder(too_big)).unwrap_err().code(), "insufficient_funds");
}

#[test]
fn every_posted_ledger_transaction_is_one_desk_level_event_with_its_accounts() {
    let (mut harness, client_id) = Harness::with_dollars();
    let before = harness.desk.ledger.transactions().len();
    let order = harness.order(&client_id, "m-ledger", Side::Buy, BTC, (4_999_000, 5_000_000));
    let (_, events) = harness.ok_with_ledger(Command::MarketOrder(order));
    let posted: Vec<&LedgerTransactionEvent> = events
        .iter()
        .filter_map(|event| match event {
            DeskEvent::LedgerTransaction(posted) => Some(posted),
            _ => None,
        })
        .collect();
    let ledger = &harness.desk.ledger;
    assert_eq!(posted.len(), ledger.transactions().len() - before, "one event per posted transaction");
    assert!(events
        .iter()
        .skip_while(|event| !matches!(event, DeskEvent::LedgerTransaction(_)))
        .all(|event| matches!(event, DeskEvent::LedgerTransaction(_))));
    for (posted, stored) in posted.iter().zip(ledger.transactions().range(before..ledger.transactions().len())) {
        assert_eq!(&posted.transaction, stored);
        assert_eq!(posted.entries.len(), usize::from(stored.entry_count));
        for (entry, stored_entry) in posted.entries.iter().zip(ledger.entries_of(stored)) {
            let account = ledger.account(stored_entry.account).unwrap();
            assert_eq!(entry.account, account.key);
            assert_eq!((entry.amount, entry.balance_after), (stored_entry.amount, stored_entry.balance_after));
        }
        // Balanced per asset, as every ledger transaction.
        let mut sums: HashMap<AssetCode, i128> = HashMap::new();
        posted.entries.iter().for_each(|entry| *sums.entry(entry.account.asset).or_default() += entry.amount);
        assert!(sums.values().all(|sum| *sum == 0), "{sums:?}");
    }
    let ledger_events = events.iter().filter(|event| matches!(event, DeskEvent::LedgerTransaction(_)));
    assert!(ledger_events.clone().all(|event| event.client_id().is_none()), "desk-level, never a client's");
    assert!(kinds(&ledger_events.cloned().collect::<Vec<_>>()).iter().all(|kind| kind == "ledger_transaction"));
}

#[test]
fn a_mark_past_the_end_gives_only_what_the_outcome_names() {
    let (harness, _) = Harness::with_dollars();
    let mark = harness.desk.event_mark();
    let fresh = Harness::new();
    assert_eq!(fresh.desk.events_since(&mark, &Outcome::Audited), vec![]);
    let far = EventMark { trades: usize::MAX, entries: u64::MAX, alerts: usize::MAX, transactions: usize::MAX };
    assert_eq!(harness.desk.events_since(&far, &Outcome::Audited), vec![]);
}

#[test]
fn every_event_serializes_with_its_type() {
    let (mut harness, client_id) = Harness::with_dollars();
    let order = harness.order(&client_id, "m-1", Side::Buy, BTC, (4_999_000, 5_000_000));
    let (_, mut events) = harness.ok(Command::MarketOrder(order));
    events.extend(harness.ok(Command::RaiseSurveillanceAlert(finding(&client_id, "wash/2"))).1);
    assert_eq!(kinds(&events), ["order", "trade", "balance", "balance", "alert"]);
    let balance = serde_json::to_value(&events[3]).unwrap();
    assert_eq!(balance["asset"], "BTC");
}

#[test]
fn first_seen_agrees_with_a_plain_scan_past_its_linear_limit() {
    let keys: Vec<u64> = (0..200u64).map(|index| (index * 7919) % 53).collect();
    let mut seen: FirstSeen<u64, u32> = FirstSeen::default();
    let mut plain: Vec<(u64, u32)> = Vec::new();
    for key in keys {
        let first = !plain.iter().any(|(known, _)| *known == key);
        if first {
            plain.push((key, 0));
        }
        let counted = plain.iter_mut().find(|(known, _)| *known == key).map(|(_, count)| count).unwrap();
        *counted += 1;
        let (count, found_first) = seen.entry(key);
        *count += 1;
        assert_eq!(found_first, first, "key {key}");
    }
    assert!(seen.index.is_some() && plain.len() > FirstSeen::<u64>::LINEAR_MAX);
    assert_eq!(seen.into_entries(), plain);
}

#[test]
fn a_tick_filling_many_clients_orders_gives_each_order_and_each_balance_once() {
    let mut harness = Harness::new();
    let clients: Vec<ClientId> = (0..20).map(|_| harness.client(Settlement::Prefunded, None)).collect();
    for (number, client_id) in clients.iter().enumerate() {
        harness.deposit(client_id, "USD", 6_000_000);
        // Ask 50,000.00 → firm 50,100.00: above the 50,050.00 limit, so each rests.
        let order = harness.order(client_id, &format!("gtc-{number}"), Side::Buy, BTC, (4_999_000, 5_000_000));
        let limit = LimitOrder { order, limit_price: 5_005_000, time_in_force: TimeInForce::Gtc, expire_at: None };
        harness.ok(Command::LimitOrder(limit));
    }
    let book = harness.order(&clients[0], "unused", Side::Buy, BTC, (4_989_000, 4_990_000)).books;
    let tick = crate::engine::resting::FillResting { instrument: "BTC-USD".into(), books: book, cross: None };
    let (_, events) = harness.ok(Command::FillRestingOrders(tick));
    let count = |kind: &str| kinds(&events).iter().filter(|found| **found == kind).count();
    assert_eq!((count("order"), count("trade"), count("balance")), (20, 20, 40));
    for client_id in &clients {
        for asset in ["USD", "BTC"] {
            let expected = harness.balance(client_id, asset);
            assert_eq!(events.iter().filter(|event| **event == expected).count(), 1, "{client_id} {asset}");
        }
    }
}

#[test]
fn two_ticks_filling_one_order_in_the_same_millisecond_each_name_only_their_own_trade() {
    use crate::catalog::AssetCode;
    use crate::engine::controls::PositionLimit;
    let (mut harness, client_id) = Harness::with_dollars();
    let order = harness.order(&client_id, "gtc-same-ms", Side::Buy, BTC, (4_999_000, 5_000_000));
    let limit = LimitOrder { order, limit_price: 5_005_000, time_in_force: TimeInForce::Gtc, expire_at: None };
    harness.ok(Command::LimitOrder(limit));
    let short_max = |short_max| {
        Command::PutPositionLimit(PositionLimit { asset: AssetCode::parse("BTC").unwrap(), long_max: None, short_max })
    };
    // The desk may sell half a bitcoin: the first tick fills half, the second (limit lifted) the rest, all three
    // records stamped with the same millisecond.
    let at = harness.at + 10;
    let book = harness.order(&client_id, "unused", Side::Buy, BTC, (4_989_000, 4_990_000)).books;
    let tick = || {
        Command::FillRestingOrders(crate::engine::resting::FillResting {
            instrument: "BTC-USD".into(),
            books: book.clone(),
            cross: None,
        })
    };
    let mut at_the_same_time = |command| {
        harness.at = at - 10;
        harness.ok(command).1
    };
    at_the_same_time(short_max(Some(BTC / 2)));
    let first = at_the_same_time(tick());
    at_the_same_time(short_max(None));
    let second = at_the_same_time(tick());
    let order_event = |events: &[DeskEvent]| match events.first() {
        Some(DeskEvent::Order(order)) => order.clone(),
        other => panic!("an order event first, got {other:?}"),
    };
    let (first, second) = (order_event(&first), order_event(&second));
    assert_eq!((first.trades.len(), first.record_trades), (1, 1));
    assert_eq!((second.trades.len(), second.record_trades), (2, 1), "the first tick's trade is not this record's");
    assert_eq!(second.trades[0].executed_at, second.trades[1].executed_at, "both trades in one millisecond");
    assert_eq!(second.order.status, OrderStatus::Filled);
}
