//! AML rules inside the engine: velocity against the client's own baseline and rapid in-and-out, each firing on
//! its planted pattern and quiet on normal flow; withdrawals' two-phase life (pending → submitted → completed or
//! failed) and refused transitions.

use otcd_core::address::Network;
use otcd_core::catalog::AssetCode;
use otcd_core::engine::alerts::{AlertFacts, AlertKind};
use otcd_core::engine::orders::MarketOrder;
use otcd_core::engine::settlement::{NewDestination, NewWithdrawal, SettlementOutcome, WithdrawalStatus};
use otcd_core::engine::{fixtures, Actor, Command, Desk, JournalRecord, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;

mod common;

const DAY_MS: i64 = 86_400_000;

/// The shared engine session with a clock from day 10 in 1 s steps, and the helpers these rules need.
struct Session {
    inner: common::Session,
    references: u64,
}

impl std::ops::Deref for Session {
    type Target = common::Session;
    fn deref(&self) -> &common::Session {
        &self.inner
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut common::Session {
        &mut self.inner
    }
}

impl Session {
    fn new() -> Self {
        Session { inner: common::Session::with_clock(10 * DAY_MS, 1_000), references: 0 }
    }

    fn reference(&mut self) -> ClientReference {
        self.references += 1;
        ClientReference::parse(&format!("ref-{}", self.references)).unwrap()
    }

    fn client(&mut self) -> ClientId {
        let new = fixtures::approved_client("Baseline Trader", Settlement::Prefunded, None);
        let Outcome::Client(client) = self.run(Command::CreateClient(new)).unwrap() else { panic!() };
        client.client_id
    }

    fn deposit(&mut self, client_id: &ClientId, asset: &str, amount: i128) {
        let reference = self.reference();
        let asset = AssetCode::parse(asset).unwrap();
        // USD deposits carry their USD value (cents), as the edge computes it.
        let notional_usd = (asset.as_str() == "USD").then_some(amount);
        let deposit = NewDeposit { client_id: client_id.clone(), asset, amount, reference, notional_usd };
        self.run(Command::Deposit(deposit)).unwrap();
    }

    /// Buys `quantity` BTC at about 50,100.00 with the given USD notional (cents).
    fn buy(&mut self, client_id: &ClientId, quantity: i128, notional_usd: i128) {
        let book = VenueBook {
            venue: "manual".into(),
            instrument: "BTC-USD".into(),
            bids: vec![Level { price: 4_999_000, quantity: i128::MAX / 4 }],
            asks: vec![Level { price: 5_000_000, quantity: i128::MAX / 4 }],
            as_of: TimestampMs(self.at + 1_000),
        };
        let order = MarketOrder {
            client_id: client_id.clone(),
            client_order_id: self.reference(),
            instrument: "BTC-USD".into(),
            side: Side::Buy,
            quantity,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: Some(notional_usd),
            books: vec![book],
            cross: None,
        };
        self.run(Command::MarketOrder(order)).unwrap();
    }

    fn alerts(&self, kind: AlertKind) -> usize {
        self.desk.alerts().iter().filter(|alert| alert.kind == kind).count()
    }
}

#[test]
fn velocity_fires_when_a_day_is_far_above_the_clients_own_baseline_and_not_on_normal_days() {
    let mut session = Session::new();
    let client = session.client();
    session.deposit(&client, "USD", 1_000_000_000);
    // Six days of about 501 USD a day (0.01 BTC): the baseline.
    for _ in 0..6 {
        session.buy(&client, 1_000_000, 50_100);
        session.at += DAY_MS;
    }
    session.buy(&client, 1_000_000, 50_100);
    assert_eq!(session.alerts(AlertKind::Velocity), 0, "a normal day is quiet");
    // 0.2 BTC more today: far above 5 × the 30-day average.
    session.buy(&client, 20_000_000, 1_002_000);
    assert_eq!(session.alerts(AlertKind::Velocity), 1);
    let alert = session.desk.alerts().iter().find(|alert| alert.kind == AlertKind::Velocity).unwrap();
    assert!(alert.evidence.contains("baseline"), "{}", alert.evidence);
    // In words for people (USD, not cents; 24 h, not ms), and as values.
    assert!(alert.evidence.starts_with("USD 10,521.00 traded within 24 h, more than 5 times"), "{}", alert.evidence);
    let Some(AlertFacts::Velocity { window_ms, traded_usd, multiple, .. }) = &alert.facts else { panic!("{alert:?}") };
    assert_eq!((*window_ms, *traded_usd, *multiple), (DAY_MS, 1_052_100, 5));
    // Not raised again within the same window.
    session.buy(&client, 20_000_000, 1_002_000);
    assert_eq!(session.alerts(AlertKind::Velocity), 1);
}

#[test]
fn a_new_client_without_a_baseline_raises_no_velocity_alert() {
    let mut session = Session::new();
    let client = session.client();
    session.deposit(&client, "USD", 1_000_000_000);
    session.buy(&client, 100_000_000, 5_010_000);
    assert_eq!(session.alerts(AlertKind::Velocity), 0);
}

fn destination(session: &mut Session, client: &ClientId) -> String {
    let new = NewDestination {
        client_id: client.clone(),
        asset: AssetCode::parse("BTC").unwrap(),
        network: Network::Bitcoin,
        address: "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into(),
        label: None,
        matches: vec![],
    };
    let Outcome::Destination(destination) = session.run(Command::AddDestination(new)).unwrap() else { panic!() };
    destination.destination_id
}

fn withdraw(session: &mut Session, client: &ClientId, destination_id: &str, amount: i128) -> String {
    let new = NewWithdrawal {
        client_id: client.clone(),
        client_withdrawal_id: session.reference(),
        asset: AssetCode::parse("BTC").unwrap(),
        amount,
        destination_id: destination_id.to_owned(),
    };
    let Outcome::Withdrawal(withdrawal) = session.run(Command::RequestWithdrawal(new)).unwrap() else { panic!() };
    withdrawal.withdrawal_id
}

#[test]
fn rapid_in_and_out_fires_on_deposit_trade_and_withdrawal_to_a_new_destination() {
    let mut session = Session::new();
    let quiet = session.client();
    session.deposit(&quiet, "BTC", 100_000_000);
    let destination_id = destination(&mut session, &quiet);
    withdraw(&mut session, &quiet, &destination_id, 10_000_000);
    assert_eq!(session.alerts(AlertKind::RapidInAndOut), 0, "no trade: quiet");
    let client = session.client();
    session.deposit(&client, "USD", 10_000_000);
    session.buy(&client, 10_000_000, 501_000);
    let destination_id = destination(&mut session, &client);
    let withdrawal_id = withdraw(&mut session, &client, &destination_id, 10_000_000);
    assert_eq!(session.alerts(AlertKind::RapidInAndOut), 1);
    // The evidence reads in asset units and a human duration, and keeps the values (minor units, ms) beside it.
    let alert = session.desk.alerts().iter().find(|alert| alert.kind == AlertKind::RapidInAndOut).unwrap();
    let expected = format!("withdrawal {withdrawal_id} of 0.1 BTC to destination {destination_id} registered 1 s before it, within 24 h of deposit");
    assert!(alert.evidence.starts_with(&expected), "{}", alert.evidence);
    let Some(AlertFacts::RapidInAndOut { amount, asset, window_ms, .. }) = &alert.facts else { panic!("{alert:?}") };
    assert_eq!((*amount, asset.as_str(), *window_ms), (10_000_000, "BTC", DAY_MS));
}

#[test]
fn a_withdrawal_moves_pending_submitted_completed_and_refuses_other_steps() {
    let mut session = Session::new();
    let client = session.client();
    session.deposit(&client, "BTC", 100_000_000);
    let destination_id = destination(&mut session, &client);
    let withdrawal_id = withdraw(&mut session, &client, &destination_id, 40_000_000);
    let settle = |outcome| Command::SettleWithdrawal { withdrawal_id: withdrawal_id.clone(), outcome };
    // Completing before submission is refused and moves nothing.
    assert_eq!(session.run(settle(SettlementOutcome::Completed)).unwrap_err().code(), "conflict");
    session.run(settle(SettlementOutcome::Submitted { external_reference: "tx-1".into() })).unwrap();
    session.run(settle(SettlementOutcome::Completed)).unwrap();
    // A second completion (a replayed adapter report) cannot post twice.
    assert_eq!(session.run(settle(SettlementOutcome::Completed)).unwrap_err().code(), "conflict");
    let withdrawal = session.desk.withdrawal(&withdrawal_id).unwrap();
    assert_eq!(withdrawal.status, WithdrawalStatus::Completed);
    let btc = session.desk.balances(&client).into_iter().find(|line| line.asset.as_str() == "BTC").unwrap();
    assert_eq!((btc.available, btc.reserved), (60_000_000, 0));
    assert!(session.desk.withdrawals_in_flight(10).is_empty());
}

#[test]
fn a_failed_withdrawal_voids_its_reservation() {
    let mut session = Session::new();
    let client = session.client();
    session.deposit(&client, "BTC", 100_000_000);
    let destination_id = destination(&mut session, &client);
    let withdrawal_id = withdraw(&mut session, &client, &destination_id, 40_000_000);
    let failed = SettlementOutcome::Failed { reason: "returned".into() };
    session.run(Command::SettleWithdrawal { withdrawal_id: withdrawal_id.clone(), outcome: failed }).unwrap();
    let btc = session.desk.balances(&client).into_iter().find(|line| line.asset.as_str() == "BTC").unwrap();
    assert_eq!((btc.available, btc.reserved), (100_000_000, 0));
    assert_eq!(session.desk.withdrawal(&withdrawal_id).unwrap().status, WithdrawalStatus::Failed);
}

#[test]
fn a_failed_settlement_instruction_is_carried_into_the_next_cycle() {
    use otcd_core::engine::netting::{Direction, InstructionOutcome, InstructionStatus};
    let mut session = Session::new();
    let new = fixtures::approved_client("Credit Client", Settlement::Credit, Some(100_000_000));
    let Outcome::Client(client) = session.run(Command::CreateClient(new)).unwrap() else { panic!() };
    session.buy(&client.client_id, 10_000_000, 501_000);
    assert_eq!(session.desk.credit_used(&client.client_id), 501_000);
    let Outcome::Instructions(first) = session.run(Command::RunNetSettlement).unwrap() else { panic!() };
    assert_eq!(first.len(), 2);
    let usd = first.iter().find(|instruction| instruction.asset.as_str() == "USD").unwrap().clone();
    assert_eq!(usd.direction, Direction::ClientPays);
    let btc = first.iter().find(|instruction| instruction.asset.as_str() == "BTC").unwrap().clone();
    assert_eq!((btc.direction, btc.amount), (Direction::DeskPays, 10_000_000));
    let failed = InstructionOutcome::Failed { reason: "returned".into() };
    session.run(Command::SettleInstruction { instruction_id: usd.instruction_id.clone(), outcome: failed }).unwrap();
    // The desk holds no BTC at its custodian: its delivery cannot complete (and nothing moves) until it does.
    let deliver = Command::SettleInstruction {
        instruction_id: btc.instruction_id.clone(),
        outcome: InstructionOutcome::Completed,
    };
    assert_eq!(session.run(deliver).unwrap_err().code(), "insufficient_funds");
    let capital = ClientReference::parse("capital-btc").unwrap();
    session
        .run(Command::FundDesk { asset: AssetCode::parse("BTC").unwrap(), amount: 10_000_000, reference: capital })
        .unwrap();
    session
        .run(Command::SettleInstruction {
            instruction_id: btc.instruction_id.clone(),
            outcome: InstructionOutcome::Completed,
        })
        .unwrap();
    // Not released: the USD leg failed.
    assert_eq!(session.desk.credit_used(&client.client_id), 501_000);
    let again =
        Command::SettleInstruction { instruction_id: btc.instruction_id, outcome: InstructionOutcome::Completed };
    assert_eq!(session.run(again).unwrap_err().code(), "conflict");
    let Outcome::Instructions(second) = session.run(Command::RunNetSettlement).unwrap() else { panic!() };
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].asset, second[0].amount, second[0].direction),
        (usd.asset, usd.amount, Direction::ClientPays)
    );
    let done = Command::SettleInstruction {
        instruction_id: second[0].instruction_id.clone(),
        outcome: InstructionOutcome::Completed,
    };
    let Outcome::Instruction(completed) = session.run(done).unwrap() else { panic!() };
    assert_eq!(completed.status, InstructionStatus::Completed);
    assert_eq!(session.desk.credit_used(&client.client_id), 0);
    let balances = session.desk.balances(&client.client_id);
    assert!(balances.iter().all(|line| line.available == 0), "{balances:?}");
}

#[test]
fn a_normal_seeded_flow_raises_no_aml_alert() {
    let mut session = Session::new();
    let client = session.client();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // 60 days: one or two deposits a day of 20,000–60,000 USD (well above the structuring band) and a few trades
    // a day within ±50 % of the client's usual size.
    for _ in 0..60 {
        for _ in 0..1 + next() % 2 {
            let cents = 2_000_000 + (next() % 4_000_000) as i128;
            session.deposit(&client, "USD", cents);
            let last = session.desk.alerts().len();
            assert_eq!(last, 0, "a deposit of {cents} cents raised {:?}", session.desk.alerts());
        }
        for _ in 0..1 + next() % 3 {
            let quantity = (100 + (next() % 100) as i128) * 10_000; // 0.01 to 0.02 BTC, on the 0.0001 step
            session.buy(&client, quantity, quantity * 501 / 10_000);
        }
        session.at += DAY_MS;
    }
    assert!(session.desk.alerts().is_empty(), "{:?}", session.desk.alerts());
}

fn finding(client_id: &ClientId, anchor: &str) -> otcd_core::engine::alerts::SurveillanceFinding {
    use otcd_core::engine::alerts::{SurveillanceEvidence, SurveillanceFinding};
    SurveillanceFinding {
        kind: AlertKind::SurveillanceWashTrade,
        client_id: client_id.clone(),
        summary: "buy t_000000000001 then sell t_000000000002 of the same size".into(),
        evidence: SurveillanceEvidence {
            instrument: "BTC-USD".into(),
            dedup_key: format!("surveillance_wash_trade/{client_id}/BTC-USD/{anchor}"),
            observed_at: TimestampMs(5 * DAY_MS),
            observed_seq: 42,
            trade_ids: vec!["t_000000000001".into(), "t_000000000002".into()],
            order_ids: Vec::new(),
            figures: [("interval_ms".to_owned(), 3_000)].into(),
            thresholds: [("wash_window_ms".to_owned(), 300_000)].into(),
        },
    }
}

/// A surveillance finding becomes an alert with its evidence, once per dedup key (also after a snapshot is
/// loaded), is worked as a case like the AML alerts, and malformed or unknown inputs are refused.
#[test]
fn a_surveillance_finding_is_raised_once_and_worked_as_a_case() {
    use otcd_core::engine::alerts::{AlertUpdate, CaseStatus};
    let mut session = Session::new();
    let client = session.client();
    let Outcome::Alert(alert) = session.run(Command::RaiseSurveillanceAlert(finding(&client, "t1+t2"))).unwrap() else {
        panic!()
    };
    assert_eq!(
        (alert.kind, alert.status, alert.client_id.as_ref()),
        (AlertKind::SurveillanceWashTrade, CaseStatus::Open, Some(&client))
    );
    assert_eq!(alert.surveillance.as_ref().unwrap().figures["interval_ms"], 3_000);

    let repeat = JournalRecord {
        at: TimestampMs(session.at + 1),
        actor: Actor::default(),
        command: Command::RaiseSurveillanceAlert(finding(&client, "t1+t2")),
    };
    let executed = session.desk.execute(&repeat).unwrap();
    assert!(!executed.changed, "the same pattern is not raised twice");
    // Snapshots do not carry the dedup index: it is rebuilt from the alerts.
    let mut restored: Desk = serde_json::from_str(&serde_json::to_string(&session.desk).unwrap()).unwrap();
    restored.rebuild_indexes();
    assert!(!restored.execute(&repeat).unwrap().changed);
    assert_eq!(session.alerts(AlertKind::SurveillanceWashTrade), 1);
    session.run(Command::RaiseSurveillanceAlert(finding(&client, "t3+t4"))).unwrap();
    assert_eq!(session.alerts(AlertKind::SurveillanceWashTrade), 2);

    let update = AlertUpdate {
        alert_id: alert.alert_id.clone(),
        status: Some(CaseStatus::Investigating),
        note: Some("asked".into()),
        assignee: Some("surveillance desk".into()),
    };
    let Outcome::Alert(worked) = session.run(Command::UpdateAlert(update)).unwrap() else { panic!() };
    assert_eq!((worked.status, worked.notes.len()), (CaseStatus::Investigating, 1));
    assert_eq!(worked.assignee.as_deref(), Some("surveillance desk"));
    let escalate = AlertUpdate {
        alert_id: alert.alert_id.clone(),
        status: Some(CaseStatus::Escalated),
        note: None,
        assignee: Some(String::new()),
    };
    let Outcome::Alert(escalated) = session.run(Command::UpdateAlert(escalate)).unwrap() else { panic!() };
    assert_eq!((escalated.status, escalated.assignee), (CaseStatus::Escalated, None));
    assert_eq!(worked.surveillance, alert.surveillance, "the evidence stays with the case");

    let mut wrong_kind = finding(&client, "t5+t6");
    wrong_kind.kind = AlertKind::Structuring;
    assert_eq!(session.run(Command::RaiseSurveillanceAlert(wrong_kind)).unwrap_err().code(), "invalid_request");
    let unknown_client = finding(&ClientId::parse("cl_09999999").unwrap(), "t7+t8");
    assert_eq!(session.run(Command::RaiseSurveillanceAlert(unknown_client)).unwrap_err().code(), "not_found");
    let mut too_many = finding(&client, "t9+t10");
    too_many.evidence.trade_ids = vec!["t_000000000001".into(); 1_001];
    assert_eq!(session.run(Command::RaiseSurveillanceAlert(too_many)).unwrap_err().code(), "invalid_request");
    let mut unknown_instrument = finding(&client, "t11+t12");
    unknown_instrument.evidence.instrument = "DOGE-USD".into();
    assert_eq!(
        session.run(Command::RaiseSurveillanceAlert(unknown_instrument)).unwrap_err().code(),
        "instrument_unknown"
    );
    assert_eq!(session.alerts(AlertKind::SurveillanceWashTrade), 2, "refusals change nothing");
}

#[test]
fn a_failed_sanctions_list_update_raises_one_operator_alert_and_bad_evidence_changes_nothing() {
    let mut session = Session::new();
    let evidence =
        "sanctions list update failed; screening stays on lists 44c13bc862a3: un/consolidated.xml".to_owned();
    let Outcome::Alert(alert) = session.run(Command::RaiseSanctionsUpdateAlert { evidence: evidence.clone() }).unwrap()
    else {
        panic!("an alert")
    };
    assert_eq!(
        (alert.kind, alert.client_id.clone(), alert.evidence.clone()),
        (AlertKind::SanctionsListUpdate, None, evidence)
    );
    let before = session.desk.alerts().len();
    for bad in [String::new(), "x".repeat(2_001)] {
        assert!(session.run(Command::RaiseSanctionsUpdateAlert { evidence: bad }).is_err());
    }
    assert_eq!(session.desk.alerts().len(), before, "refused commands raise nothing");
}
