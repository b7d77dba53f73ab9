//! A seeded randomized simulation of the command mix the tests share (`common/mix.rs`: deposits, RFQs, trading,
//! resting orders, cancels, expiry, trading controls, client changes, custody, withdrawals and their settlement
//! steps, net settlement, alerts, refused commands), with restarts (the desk serialized and restored mid-run, as a
//! snapshot would be). After EVERY step: the ledger's invariants, and the desk's own: a live resting order of a
//! prefunded client holds a reservation covering its unfilled part, a finished order holds none, a withdrawal in
//! flight holds exactly its amount, a finished one none, and what is submitted to a rail is covered by the
//! wallet that pays it. At the end the journal of accepted commands replays to the same state.

mod common;

use common::mix::{CommandMix, Simulated};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::settlement::WithdrawalStatus;
use otcd_core::engine::{Desk, JournalRecord, Outcome};
use otcd_core::market::Side;
use otcd_testkit::sim::{assert_same, restarted, serialize};

const STEPS: usize = 4_000;
const SEEDS: [u64; 3] = [1, 42, 20261124];

/// The desk under simulation and the journal of the commands it accepted.
struct Simulation {
    desk: Desk,
    journal: Vec<JournalRecord>,
}

impl Simulated for Simulation {
    fn desk(&self) -> &Desk {
        &self.desk
    }

    fn execute(&mut self, record: JournalRecord) -> Option<Outcome> {
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
}

impl Simulation {
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
}

#[test]
fn seeded_trading_settlement_and_restarts_keep_every_invariant_and_replay_exactly() {
    for seed in SEEDS {
        let mut simulation = Simulation { desk: Desk::new(), journal: Vec::new() };
        let mut mix = CommandMix::start(seed, &mut simulation);
        for step in 0..STEPS {
            mix.step(&mut simulation);
            if step % 1_000 == 999 {
                simulation.desk = restarted(&simulation.desk);
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
