//! A seeded randomized simulation of trading, resting orders, cancels, expiry, trading controls, withdrawals and
//! their settlement steps, with restarts (the desk serialized and restored mid-run, as a snapshot would be).
//! After EVERY step: the ledger's invariants, and the desk's own: a live resting order of a prefunded client
//! holds a reservation covering its unfilled part, a finished order holds none, a withdrawal in flight holds
//! exactly its amount, a finished one none. At the end the journal of accepted commands replays to the same state.

use otcd_core::address::Network;
use otcd_core::catalog::AssetCode;
use otcd_core::engine::controls::{KillSwitch, PositionLimit};
use otcd_core::engine::custody::{CustodyPolicy, DepositObservation};
use otcd_core::engine::netting::InstructionOutcome;
use otcd_core::engine::orders::{LimitOrder, MarketOrder, TimeInForce};
use otcd_core::engine::resting::FillResting;
use otcd_core::engine::settlement::{NewDestination, NewWithdrawal, SettlementOutcome, WithdrawalStatus};
use otcd_core::engine::{fixtures, Command, Desk, JournalRecord, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::{assert_same, code, record, reference, serialize};

const STEPS: usize = 4_000;
const SEEDS: [u64; 3] = [1, 42, 20261124];

/// xorshift64*: a tiny seeded generator so the run is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Simulation {
    rng: Rng,
    desk: Desk,
    journal: Vec<JournalRecord>,
    at: i64,
    mid: i128,
    clients: Vec<ClientId>,
    destinations: Vec<(ClientId, String)>,
    references: u64,
}

impl Simulation {
    fn new(seed: u64) -> Self {
        let mut simulation = Simulation {
            rng: Rng(seed.max(1)),
            desk: Desk::new(),
            journal: Vec::new(),
            at: 1_000_000,
            mid: 5_000_000,
            clients: Vec::new(),
            destinations: Vec::new(),
            references: 0,
        };
        simulation.run(fixtures::initialize_desk());
        for number in 0..4 {
            let settlement = if number == 3 { Settlement::Credit } else { Settlement::Prefunded };
            let new = fixtures::approved_client(
                &format!("Sim Client {number}"),
                settlement,
                (settlement == Settlement::Credit).then_some(500_000_000),
            );
            if let Some(Outcome::Client(client)) = simulation.run(Command::CreateClient(new)) {
                simulation.clients.push(client.client_id);
            }
        }
        simulation
    }

    fn run(&mut self, command: Command) -> Option<Outcome> {
        self.at += 1 + self.rng.below(400) as i64;
        let record = record(self.at, command);
        let result = self.desk.execute(&record);
        self.check_invariants(&record);
        match result {
            Ok(executed) => {
                if executed.changed {
                    self.journal.push(record);
                }
                Some(executed.outcome)
            }
            Err(_) => None,
        }
    }

    fn reference(&mut self) -> ClientReference {
        self.references += 1;
        reference(&format!("sim-{}", self.references))
    }

    fn client(&mut self) -> ClientId {
        let index = self.rng.below(self.clients.len() as u64) as usize;
        self.clients[index].clone()
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

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=6 => self.deposit(),
            7..=9 => self.custody(),
            10..=29 => self.limit_order(),
            30..=39 => self.market_order(),
            40..=59 => self.tick(),
            60..=66 => self.cancel(),
            67..=68 => {
                let client_id = self.client();
                self.run(Command::CancelAllOrders { client_id, instrument: None });
            }
            69..=73 => {
                self.run(Command::ExpireOrders);
            }
            74..=77 => self.controls(),
            78..=82 => self.destination(),
            83..=89 => self.withdraw(),
            90..=95 => self.settle(),
            96 => {
                self.run(Command::RunNetSettlement);
            }
            _ => self.settle_instruction(),
        }
    }

    fn deposit(&mut self) {
        let client_id = self.client();
        let (asset, amount) = if self.rng.chance(50) {
            ("USD", 1_000_000 + self.rng.below(50_000_000) as i128)
        } else {
            ("BTC", 1_000_000 + self.rng.below(100_000_000) as i128)
        };
        let reference = self.reference();
        let asset = code(asset);
        self.run(Command::Deposit(NewDeposit { client_id, asset, amount, reference, notional_usd: None }));
    }

    fn order_body(&mut self) -> MarketOrder {
        let side = if self.rng.chance(50) { Side::Buy } else { Side::Sell };
        MarketOrder {
            client_id: self.client(),
            client_order_id: self.reference(),
            instrument: "BTC-USD".into(),
            side,
            quantity: (1 + self.rng.below(200) as i128) * 1_000_000,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: Some(self.rng.below(10_000_000) as i128),
            books: vec![self.book()],
            cross: None,
        }
    }

    fn limit_order(&mut self) {
        let order = self.order_body();
        let offset = self.rng.below(40_000) as i128 - 20_000;
        let limit_price = (self.mid + offset).max(1);
        let time_in_force =
            [TimeInForce::Gtc, TimeInForce::Gtd, TimeInForce::Ioc, TimeInForce::Fok][self.rng.below(4) as usize];
        let expire_at =
            (time_in_force == TimeInForce::Gtd).then(|| TimestampMs(self.at + 1 + self.rng.below(20_000) as i64));
        self.run(Command::LimitOrder(LimitOrder { order, limit_price, time_in_force, expire_at }));
    }

    fn market_order(&mut self) {
        let order = self.order_body();
        self.run(Command::MarketOrder(order));
    }

    fn tick(&mut self) {
        self.mid = (self.mid + self.rng.below(6_001) as i128 - 3_000).clamp(4_000_000, 6_000_000);
        let tick = FillResting { instrument: "BTC-USD".into(), books: vec![self.book()], cross: None };
        self.run(Command::FillRestingOrders(tick));
    }

    fn cancel(&mut self) {
        let orders = self.desk.all_orders();
        if orders.is_empty() {
            return;
        }
        let order = orders[self.rng.below(orders.len() as u64) as usize].clone();
        self.run(Command::CancelOrder { client_id: order.client_id, order_id: order.order_id });
    }

    fn controls(&mut self) {
        if self.rng.chance(30) {
            let engaged = self.rng.chance(30);
            self.run(Command::PutKillSwitch(KillSwitch { engaged, reason: None }));
        } else {
            let short_max = self.rng.chance(60).then(|| self.rng.below(300_000_000) as i128);
            let long_max = self.rng.chance(60).then(|| self.rng.below(300_000_000) as i128);
            let asset = code("BTC");
            self.run(Command::PutPositionLimit(PositionLimit { asset, long_max, short_max }));
        }
    }

    fn destination(&mut self) {
        let client_id = self.client();
        let new = NewDestination {
            client_id: client_id.clone(),
            asset: code("BTC"),
            network: Network::Bitcoin,
            address: "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into(),
            label: None,
            matches: vec![],
        };
        if let Some(Outcome::Destination(destination)) = self.run(Command::AddDestination(new)) {
            self.destinations.push((client_id, destination.destination_id));
        }
    }

    fn withdraw(&mut self) {
        if self.destinations.is_empty() {
            return;
        }
        let (client_id, destination_id) =
            self.destinations[self.rng.below(self.destinations.len() as u64) as usize].clone();
        // Now and then a payout larger than the hot wallet's usual level: it waits for a top-up.
        let amount_max = if self.rng.chance(20) { 300_000_000 } else { 50_000_000 };
        let new = NewWithdrawal {
            client_id,
            client_withdrawal_id: self.reference(),
            asset: code("BTC"),
            amount: 1 + self.rng.below(amount_max) as i128,
            destination_id,
        };
        self.run(Command::RequestWithdrawal(new));
    }

    fn settle(&mut self) {
        let in_flight = self.desk.withdrawals_in_flight(100);
        if in_flight.is_empty() {
            return;
        }
        let withdrawal = in_flight[self.rng.below(in_flight.len() as u64) as usize].clone();
        let outcome = match self.rng.below(4) {
            0 => SettlementOutcome::Failed { reason: "returned".into() },
            1 => SettlementOutcome::Completed,
            _ => SettlementOutcome::Submitted { external_reference: format!("tx-{}", withdrawal.withdrawal_id) },
        };
        self.run(Command::SettleWithdrawal { withdrawal_id: withdrawal.withdrawal_id, outcome });
    }

    /// Deposit addresses, on-chain deposits reported with growing confirmations, hot/cold policy and top-ups.
    fn custody(&mut self) {
        let btc = code("BTC");
        match self.rng.below(4) {
            0 => {
                let client_id = self.client();
                self.run(Command::AssignDepositAddress { client_id, asset: btc });
            }
            1 => {
                let hot_min = self.rng.below(100_000_000) as i128;
                let hot_target = hot_min + self.rng.below(100_000_000) as i128;
                let hot_max = hot_target + self.rng.below(100_000_000) as i128;
                self.run(Command::PutCustodyPolicy(CustodyPolicy { asset: btc, hot_min, hot_target, hot_max }));
            }
            2 => {
                if let Some(top_up) = self.desk.top_ups().last().cloned() {
                    self.run(Command::ApproveTopUp { top_up_id: top_up.top_up_id });
                }
            }
            _ => {
                let client_id = self.client();
                let Some(address) = self.desk.deposit_address(&client_id, btc).map(|found| found.address.clone())
                else {
                    return;
                };
                let transaction_id = format!("tx-{}", self.rng.below(40));
                let amount = 1 + self.rng.below(30_000_000) as i128;
                let confirmations = self.rng.below(4) as u32;
                let seen = DepositObservation { transaction_id, asset: btc, address, amount, confirmations };
                self.run(Command::ObserveDeposit(seen));
            }
        }
    }

    fn settle_instruction(&mut self) {
        let pending = self.desk.instructions_pending(100);
        if pending.is_empty() {
            return;
        }
        let instruction = pending[self.rng.below(pending.len() as u64) as usize].clone();
        let outcome = if self.rng.chance(20) {
            InstructionOutcome::Failed { reason: "returned".into() }
        } else {
            InstructionOutcome::Completed
        };
        self.run(Command::SettleInstruction { instruction_id: instruction.instruction_id, outcome });
    }

    /// The ledger's invariants and the desk's reservation invariants.
    fn check_invariants(&self, record: &JournalRecord) {
        let ledger = self.desk.ledger();
        ledger.check_invariants().unwrap_or_else(|error| panic!("after {:?}: {error}", record.command));
        for order in self.desk.all_orders() {
            let Some(resting) = &order.resting else { continue };
            let held = resting.reservation.and_then(|id| ledger.pending(id)).map_or(0, |pending| pending.remaining);
            if !order.is_live() {
                assert_eq!(held, 0, "a finished order {} still holds {held}", order.order_id);
            } else if resting.reservation.is_some() && order.side == Side::Sell {
                assert_eq!(
                    held,
                    order.quantity - order.filled_quantity,
                    "order {} holds its unfilled base",
                    order.order_id
                );
            } else if resting.reservation.is_some() {
                assert!(held > 0, "a live buy {} holds nothing", order.order_id);
            }
            assert!(order.filled_quantity <= order.quantity);
        }
        for withdrawal in self.desk.withdrawals() {
            let held = ledger.pending(withdrawal.reservation).map_or(0, |pending| pending.remaining);
            let expected = if withdrawal.in_flight() { withdrawal.amount } else { 0 };
            assert_eq!(held, expected, "withdrawal {} in {:?}", withdrawal.withdrawal_id, withdrawal.status);
        }
        self.check_payout_liquidity(record);
    }

    /// The in-flight sums the engine keeps per asset equal a recount, and what is submitted to a rail is covered
    /// by the wallet that pays it (a payout is never sent from funds the desk does not hold there).
    fn check_payout_liquidity(&self, record: &JournalRecord) {
        let mut recount: std::collections::HashMap<(AssetCode, WithdrawalStatus), i128> = Default::default();
        for withdrawal in self.desk.withdrawals().iter().filter(|withdrawal| withdrawal.in_flight()) {
            *recount.entry((withdrawal.asset, withdrawal.status)).or_default() += withdrawal.amount;
        }
        for asset in self.desk.catalog().unwrap().assets() {
            for status in [WithdrawalStatus::Pending, WithdrawalStatus::Submitted] {
                let kept = self.desk.withdrawals_outflow(asset.code, status);
                let counted = recount.get(&(asset.code, status)).copied().unwrap_or(0);
                assert_eq!(kept, counted, "{} {status:?} sum after {:?}", asset.code, record.command);
            }
            let submitted = self.desk.withdrawals_outflow(asset.code, WithdrawalStatus::Submitted);
            let holdings = self.desk.payout_holdings(asset.code);
            assert!(
                submitted <= holdings,
                "{} submitted {submitted} > held {holdings} after {:?}",
                asset.code,
                record.command
            );
        }
    }

    /// A restart: the desk serialized (as a snapshot) and restored with its indexes rebuilt.
    fn restart(&mut self) {
        let snapshot = serialize(&self.desk);
        let mut restored: Desk = serde_json::from_str(&snapshot).unwrap();
        restored.rebuild_indexes();
        assert_same(&snapshot, &serialize(&restored), "restored snapshot");
        self.desk = restored;
    }
}

#[test]
fn seeded_trading_settlement_and_restarts_keep_every_invariant_and_replay_exactly() {
    for seed in SEEDS {
        let mut simulation = Simulation::new(seed);
        for step in 0..STEPS {
            simulation.step();
            if step % 1_000 == 999 {
                simulation.restart();
            }
        }
        let filled = simulation.desk.all_orders().iter().filter(|order| order.filled_quantity > 0).count();
        let completed = simulation
            .desk
            .withdrawals()
            .iter()
            .filter(|withdrawal| withdrawal.status == WithdrawalStatus::Completed)
            .count();
        assert!(
            filled > 50 && completed > 5,
            "seed {seed}: the run exercised too little ({filled} fills, {completed} payouts)"
        );
        let netted = simulation.desk.instructions().len();
        assert!(netted > 3, "seed {seed}: too few settlement instructions ({netted})");
        let mut replayed = Desk::new();
        for record in &simulation.journal {
            replayed
                .execute(record)
                .unwrap_or_else(|error| panic!("seed {seed}: replay refused {:?}: {error}", record.command));
        }
        assert_same(&serialize(&simulation.desk), &serialize(&replayed), &format!("seed {seed}: replayed journal"));
    }
}
