//! The random command mix of the seeded simulations (`order_simulation.rs`, `event_simulation.rs`): one place that
//! draws commands from the desk's state and a seeded [`SplitMix64`]. A simulation hands itself in as a
//! [`Simulated`] desk, which executes every drawn record with the simulation's own checks; the mix only chooses.
//!
//! [`CommandMix::start`] initializes the desk, creates [`CLIENTS`] approved clients (those from [`CREDIT_FROM`]
//! on trade on credit) and sets AML rules with short windows, so that they fire within a run. Then each
//! [`CommandMix::step`] is one command (an RFQ is often accepted at once, a second one): deposits (some near the
//! structuring threshold), RFQs and their acceptance (own, other clients', used, expired and unknown quotes),
//! market orders, limit orders (`ioc`, `fok`, and resting `gtc`/`gtd` that fill on later ticks), cancels and
//! cancel-alls, expiries, trading controls, KYC and settlement changes, destinations (some on a list),
//! withdrawals and every settlement step (and wrong ones), deposit addresses and on-chain deposits, custody
//! policies and top-ups, net settlement cycles for the credit clients and their instructions, surveillance
//! alerts and alert updates, and commands refused outright. The records' wall clock steps back now and then;
//! the engine's time never does.

use otcd_core::address::Network;
use otcd_core::engine::alerts::{
    AlertKind, AlertUpdate, AmlRules, CaseStatus, SurveillanceEvidence, SurveillanceFinding,
};
use otcd_core::engine::controls::{KillSwitch, PositionLimit};
use otcd_core::engine::custody::{CustodyPolicy, DepositObservation};
use otcd_core::engine::netting::InstructionOutcome;
use otcd_core::engine::orders::{AcceptQuote, LimitOrder, MarketOrder, TimeInForce};
use otcd_core::engine::resting::FillResting;
use otcd_core::engine::settlement::{NewDestination, NewWithdrawal, ScreeningMatch, SettlementOutcome};
use otcd_core::engine::{fixtures, ClientChanges, Command, Desk, JournalRecord, NewDeposit, Outcome, QuoteRequest};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::{KycStatus, RequestedSize, Settlement};
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::{code, record, reference, SplitMix64};
use std::collections::BTreeMap;

/// The clients the mix creates.
pub const CLIENTS: usize = 6;
/// Clients `CREDIT_FROM..` trade on credit.
pub const CREDIT_FROM: usize = 4;
/// The credit limit of the credit clients (USD cents).
const CREDIT_LIMIT_USD: i128 = 2_000_000_000;

/// A desk the mix drives: the simulation's, which checks what it checks on every record.
pub trait Simulated {
    /// The desk as it is now, to draw the next command from.
    fn desk(&self) -> &Desk;
    /// Executes `record` with the simulation's checks; the outcome if the desk accepted it.
    fn execute(&mut self, record: JournalRecord) -> Option<Outcome>;
}

pub struct CommandMix {
    rng: SplitMix64,
    /// The wall clock of the next record (Unix ms).
    at: i64,
    /// The BTC-USD mid the books are built around (USD cents).
    mid: i128,
    clients: Vec<ClientId>,
    destinations: Vec<(ClientId, String)>,
    /// Quotes issued and not yet taken off the list (an older one may have been accepted already).
    quotes: Vec<(ClientId, String)>,
    references: u64,
    /// Records handed to the simulation so far.
    drawn: u64,
}

impl CommandMix {
    /// A mix seeded with `seed`, having set up `desk` (see the module's documentation).
    pub fn start(seed: u64, desk: &mut dyn Simulated) -> Self {
        let mut mix = CommandMix {
            rng: SplitMix64(seed),
            at: 1_000_000,
            mid: 5_000_000,
            clients: Vec::new(),
            destinations: Vec::new(),
            quotes: Vec::new(),
            references: 0,
            drawn: 0,
        };
        mix.run(desk, fixtures::initialize_desk());
        for number in 0..CLIENTS {
            let credit = number >= CREDIT_FROM;
            let settlement = if credit { Settlement::Credit } else { Settlement::Prefunded };
            let name = format!("Sim Client {number}");
            let new = fixtures::approved_client(&name, settlement, credit.then_some(CREDIT_LIMIT_USD));
            if let Some(Outcome::Client(client)) = mix.run(desk, Command::CreateClient(new)) {
                mix.clients.push(client.client_id);
            }
        }
        // Short windows so that the AML rules fire within a run.
        let rules = AmlRules {
            window_ms: 20_000,
            structuring_count: 3,
            velocity_multiple: 2,
            baseline_windows: 5,
            baseline_windows_min: 2,
            ..AmlRules::default()
        };
        mix.run(desk, Command::PutAmlRules(rules));
        mix
    }

    /// One random step.
    pub fn step(&mut self, desk: &mut dyn Simulated) {
        match self.rng.below(100) {
            0..=7 => self.deposit(desk),
            8..=10 => self.custody(desk),
            11..=17 => self.request_quote(desk),
            18..=24 => self.accept_quote(desk),
            25..=37 => self.limit_order(desk),
            38..=43 => self.market_order(desk),
            44..=56 => self.tick(desk),
            57..=61 => self.cancel(desk),
            62 => {
                let client_id = self.client();
                let instrument = self.rng.percent(50).then(|| "BTC-USD".to_owned());
                self.run(desk, Command::CancelAllOrders { client_id, instrument });
            }
            63..=66 => {
                self.run(desk, Command::ExpireOrders);
            }
            67..=68 => self.controls(desk),
            69..=70 => self.update_client(desk),
            71..=73 => self.destination(desk),
            74..=79 => self.withdraw(desk),
            80..=85 => self.settle(desk),
            86..=87 => {
                self.run(desk, Command::RunNetSettlement);
            }
            88..=91 => self.settle_instruction(desk),
            92..=94 => self.alerts(desk),
            _ => self.refused(desk),
        }
    }

    /// Hands `command` to the simulation as the next record.
    fn run(&mut self, desk: &mut dyn Simulated, command: Command) -> Option<Outcome> {
        // Now and then the wall clock steps back; the engine's time never does.
        self.at += if self.rng.percent(3) { -300 } else { 1 + self.rng.below(400) as i64 };
        self.drawn += 1;
        desk.execute(record(self.at, command))
    }

    fn reference(&mut self) -> ClientReference {
        self.references += 1;
        reference(&format!("sim-{}", self.references))
    }

    fn client(&mut self) -> ClientId {
        self.rng.pick(&self.clients)
    }

    fn side(&mut self) -> Side {
        if self.rng.percent(50) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn book(&self) -> VenueBook {
        VenueBook {
            venue: "sim".into(),
            instrument: "BTC-USD".into(),
            bids: vec![
                Level { price: self.mid - 500, quantity: 50_000_000 },
                Level { price: self.mid - 2_000, quantity: 500_000_000 },
            ],
            asks: vec![
                Level { price: self.mid + 500, quantity: 50_000_000 },
                Level { price: self.mid + 2_000, quantity: 500_000_000 },
            ],
            as_of: TimestampMs(self.at + 500),
        }
    }

    fn deposit(&mut self, desk: &mut dyn Simulated) {
        let client_id = self.client();
        let (asset, amount) = if self.rng.percent(50) {
            ("USD", 1_000_000 + self.rng.below(50_000_000) as i128)
        } else {
            ("BTC", 1_000_000 + self.rng.below(100_000_000) as i128)
        };
        // Some just under the structuring threshold (10,000.00 USD), to raise alerts.
        let notional_usd = self.rng.percent(40).then(|| 850_000 + self.rng.below(100_000) as i128);
        let reference = self.reference();
        let asset = code(asset);
        self.run(desk, Command::Deposit(NewDeposit { client_id, asset, amount, reference, notional_usd }));
    }

    fn request_quote(&mut self, desk: &mut dyn Simulated) {
        let client_id = self.client();
        let request = QuoteRequest {
            client_id: client_id.clone(),
            client_rfq_id: None,
            instrument: "BTC-USD".into(),
            side: self.side(),
            size: RequestedSize::Base((1 + self.rng.below(100) as i128) * 1_000_000),
            validity_ms: 500 + self.rng.below(5_000) as i64,
            notional_usd: Some(self.rng.below(5_000_000) as i128),
            books: vec![self.book()],
            cross: None,
        };
        if let Some(Outcome::Quote(quote)) = self.run(desk, Command::RequestQuote(request)) {
            self.quotes.push((client_id, quote.quote_id));
            // Often accepted at once, as a client at a screen would.
            if self.rng.percent(50) {
                self.accept_quote(desk);
            }
        }
    }

    /// Own quotes mostly; now and then another client's, one used before, or an unknown id.
    fn accept_quote(&mut self, desk: &mut dyn Simulated) {
        if self.quotes.is_empty() {
            return;
        }
        // The newest quote is taken off the list; an older one stays (accepting it twice is refused).
        let (mut client_id, mut quote_id) =
            if self.rng.percent(75) { self.quotes.pop().expect("not empty") } else { self.rng.pick(&self.quotes) };
        if self.rng.percent(10) {
            client_id = self.client();
        }
        if self.rng.percent(5) {
            quote_id = "q_unknown".into();
        }
        let request = AcceptQuote {
            client_id,
            client_order_id: self.reference(),
            quote_id,
            side: None,
            notional_usd: Some(self.rng.below(5_000_000) as i128),
        };
        self.run(desk, Command::AcceptQuote(request));
    }

    fn order_body(&mut self) -> MarketOrder {
        MarketOrder {
            client_id: self.client(),
            client_order_id: self.reference(),
            instrument: "BTC-USD".into(),
            side: self.side(),
            quantity: (1 + self.rng.below(200) as i128) * 1_000_000,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: Some(self.rng.below(10_000_000) as i128),
            books: vec![self.book()],
            cross: None,
        }
    }

    fn limit_order(&mut self, desk: &mut dyn Simulated) {
        let order = self.order_body();
        let limit_price = (self.mid + self.rng.below(40_000) as i128 - 20_000).max(1);
        let time_in_force =
            self.rng.pick(&[TimeInForce::Gtc, TimeInForce::Gtd, TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok]);
        let expire_at =
            (time_in_force == TimeInForce::Gtd).then(|| TimestampMs(self.at + 1 + self.rng.below(20_000) as i64));
        self.run(desk, Command::LimitOrder(LimitOrder { order, limit_price, time_in_force, expire_at }));
    }

    fn market_order(&mut self, desk: &mut dyn Simulated) {
        let order = self.order_body();
        self.run(desk, Command::MarketOrder(order));
    }

    /// The market moves, and resting orders fill against it. A move of up to 160.00 USD reaches, within a few
    /// ticks, the resting orders (limits up to 200.00 USD off the mid, before the tier's markup) that cancels,
    /// expiries and cancel-alls have not taken away yet: every seed gives plenty of resting fills.
    fn tick(&mut self, desk: &mut dyn Simulated) {
        self.mid = (self.mid + self.rng.between(-16_000, 16_000)).clamp(4_000_000, 6_000_000);
        let tick = FillResting { instrument: "BTC-USD".into(), books: vec![self.book()], cross: None };
        self.run(desk, Command::FillRestingOrders(tick));
    }

    fn cancel(&mut self, desk: &mut dyn Simulated) {
        // Mostly a live order among the recent ones, now and then any (mostly finished: refused).
        let orders = desk.desk().all_orders();
        let recent = orders.len().saturating_sub(200);
        let live: Vec<usize> = (recent..orders.len()).filter(|position| orders[*position].is_live()).collect();
        let position = match live.len() {
            0 => return,
            count if self.rng.percent(80) => live[self.rng.index(count)],
            _ => self.rng.index(orders.len()),
        };
        let order = orders[position].clone();
        self.run(desk, Command::CancelOrder { client_id: order.client_id, order_id: order.order_id });
    }

    fn controls(&mut self, desk: &mut dyn Simulated) {
        if self.rng.percent(30) {
            let engaged = self.rng.percent(15);
            self.run(desk, Command::PutKillSwitch(KillSwitch { engaged, reason: None }));
        } else {
            let short_max = self.rng.percent(60).then(|| self.rng.below(300_000_000) as i128);
            let long_max = self.rng.percent(60).then(|| self.rng.below(300_000_000) as i128);
            let asset = code("BTC");
            self.run(desk, Command::PutPositionLimit(PositionLimit { asset, long_max, short_max }));
        }
    }

    /// KYC changes (trading stops and resumes) and settlement changes (refused while a credit client owes).
    fn update_client(&mut self, desk: &mut dyn Simulated) {
        let client_id = self.client();
        let mut changes = ClientChanges::default();
        if self.rng.percent(70) {
            let statuses = [KycStatus::Approved, KycStatus::Approved, KycStatus::Approved, KycStatus::Pending];
            changes.kyc_status = Some(self.rng.pick(&statuses));
        } else if self.rng.percent(50) {
            changes.settlement = Some(Settlement::Credit);
            changes.credit_limit_usd = Some(Some(CREDIT_LIMIT_USD));
        } else {
            changes.settlement = Some(Settlement::Prefunded);
        }
        self.run(desk, Command::UpdateClient { client_id, changes });
    }

    fn destination(&mut self, desk: &mut dyn Simulated) {
        let client_id = self.client();
        // Now and then an address on a list: rejected, with an alert.
        let listed =
            ScreeningMatch { list: "ofac".into(), entry_id: "1".into(), name: "X".into(), score_thousandths: 1_000 };
        let matches = if self.rng.percent(10) { vec![listed] } else { vec![] };
        let new = NewDestination {
            client_id: client_id.clone(),
            asset: code("BTC"),
            network: Network::Bitcoin,
            address: "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into(),
            label: None,
            matches,
        };
        if let Some(Outcome::Destination(destination)) = self.run(desk, Command::AddDestination(new)) {
            self.destinations.push((client_id, destination.destination_id));
        }
    }

    fn withdraw(&mut self, desk: &mut dyn Simulated) {
        if self.destinations.is_empty() {
            return;
        }
        let (client_id, destination_id) = self.rng.pick(&self.destinations);
        // Now and then a payout larger than the hot wallet's usual level: it waits for a top-up.
        let amount_max = if self.rng.percent(20) { 300_000_000 } else { 50_000_000 };
        let new = NewWithdrawal {
            client_id,
            client_withdrawal_id: self.reference(),
            asset: code("BTC"),
            amount: 1 + self.rng.below(amount_max) as i128,
            destination_id,
        };
        self.run(desk, Command::RequestWithdrawal(new));
    }

    /// Settlement steps of withdrawals in flight, and now and then of a finished one (refused).
    fn settle(&mut self, desk: &mut dyn Simulated) {
        let candidates = if self.rng.percent(10) {
            desk.desk().withdrawals().to_vec()
        } else {
            desk.desk().withdrawals_in_flight(100)
        };
        if candidates.is_empty() {
            return;
        }
        let withdrawal = self.rng.pick(&candidates);
        let outcome = match self.rng.below(4) {
            0 => SettlementOutcome::Failed { reason: "returned".into() },
            1 => SettlementOutcome::Completed,
            _ => SettlementOutcome::Submitted { external_reference: format!("tx-{}", withdrawal.withdrawal_id) },
        };
        self.run(desk, Command::SettleWithdrawal { withdrawal_id: withdrawal.withdrawal_id, outcome });
    }

    /// Deposit addresses, on-chain deposits reported with growing confirmations, hot/cold policy and top-ups.
    fn custody(&mut self, desk: &mut dyn Simulated) {
        let btc = code("BTC");
        match self.rng.below(4) {
            0 => {
                let client_id = self.client();
                self.run(desk, Command::AssignDepositAddress { client_id, asset: btc });
            }
            1 => {
                let hot_min = self.rng.below(100_000_000) as i128;
                let hot_target = hot_min + self.rng.below(100_000_000) as i128;
                let hot_max = hot_target + self.rng.below(100_000_000) as i128;
                self.run(desk, Command::PutCustodyPolicy(CustodyPolicy { asset: btc, hot_min, hot_target, hot_max }));
            }
            2 => {
                if let Some(top_up) = desk.desk().top_ups().last().cloned() {
                    self.run(desk, Command::ApproveTopUp { top_up_id: top_up.top_up_id });
                }
            }
            _ => {
                let client_id = self.client();
                let Some(address) = desk.desk().deposit_address(&client_id, btc).map(|found| found.address.clone())
                else {
                    return;
                };
                let transaction_id = format!("tx-{}", self.rng.below(40));
                let amount = 1 + self.rng.below(30_000_000) as i128;
                let confirmations = self.rng.below(4) as u32;
                let seen = DepositObservation { transaction_id, asset: btc, address, amount, confirmations };
                self.run(desk, Command::ObserveDeposit(seen));
            }
        }
    }

    fn settle_instruction(&mut self, desk: &mut dyn Simulated) {
        let pending = desk.desk().instructions_pending(100);
        if pending.is_empty() {
            return;
        }
        let instruction = self.rng.pick(&pending);
        let outcome = if self.rng.percent(20) {
            InstructionOutcome::Failed { reason: "returned".into() }
        } else {
            InstructionOutcome::Completed
        };
        self.run(desk, Command::SettleInstruction { instruction_id: instruction.instruction_id, outcome });
    }

    /// Surveillance findings (repeats of a pattern change nothing) and case updates.
    fn alerts(&mut self, desk: &mut dyn Simulated) {
        let alerts = desk.desk().alerts();
        if self.rng.percent(50) || alerts.is_empty() {
            let client_id = self.client();
            let finding = SurveillanceFinding {
                kind: AlertKind::SurveillanceLayering,
                client_id,
                summary: "layering".into(),
                evidence: SurveillanceEvidence {
                    instrument: "BTC-USD".into(),
                    dedup_key: format!("layering/{}", self.rng.below(30)),
                    observed_at: TimestampMs(self.at),
                    observed_seq: self.drawn,
                    trade_ids: vec![],
                    order_ids: vec![],
                    figures: BTreeMap::new(),
                    thresholds: BTreeMap::new(),
                },
            };
            self.run(desk, Command::RaiseSurveillanceAlert(finding));
        } else {
            let alert_id = alerts[self.rng.index(alerts.len())].alert_id.clone();
            let status = self.rng.pick(&[None, Some(CaseStatus::Investigating), Some(CaseStatus::Closed)]);
            let note = self.rng.percent(50).then(|| "looked at it".to_owned());
            self.run(desk, Command::UpdateAlert(AlertUpdate { alert_id, status, note, assignee: None }));
        }
    }

    /// Commands the desk refuses whole.
    fn refused(&mut self, desk: &mut dyn Simulated) {
        let client_id = self.client();
        let command = match self.rng.below(4) {
            0 => Command::Deposit(NewDeposit {
                client_id,
                asset: code("USD"),
                amount: 0,
                reference: self.reference(),
                notional_usd: None,
            }),
            1 => Command::CancelOrder { client_id, order_id: "o_999999999999".into() },
            2 => Command::SettleInstruction {
                instruction_id: "si_9999999999".into(),
                outcome: InstructionOutcome::Completed,
            },
            _ => {
                let mut order = self.order_body();
                order.quantity = 1_000_000_000_000;
                Command::MarketOrder(order)
            }
        };
        self.run(desk, command);
    }
}
