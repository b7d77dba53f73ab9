//! The settlement worker: moves money the desk owes or is owed, one journaled step at a time, through the
//! [`Rail`](crate::ports::Rail) port.
//!
//! Every `POLL_INTERVAL` it asks the engine for withdrawals in flight and moves each one step: a `pending` one is
//! handed to the rail (custodian for crypto, bank for fiat) once the paying wallet covers it, and recorded
//! `submitted` with the rail's reference; a `submitted` one is asked about and recorded `completed` or `failed`.
//! The rail is keyed by the withdrawal id, so asking again after a crash never pays twice, and each step is a
//! journaled command, so a restart resumes from the last acknowledged step. Net settlement instructions and
//! on-chain deposit confirmations move the same way, and on schedule it runs a net settlement cycle and
//! reconciles the ledger with the rails' statements.

use crate::ports::RailStatus;
use crate::DeskServices;
use otcd_core::catalog::{AssetCode, AssetKind};
use otcd_core::engine::netting::{Direction, Instruction, InstructionOutcome};
use otcd_core::engine::settlement::{SettlementOutcome, Withdrawal, WithdrawalStatus};
use otcd_core::engine::{Actor, Command};
use std::sync::Arc;
use std::time::Duration;

pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Withdrawals (and instructions, and confirming deposits) moved per poll: a bound on the work per interval.
pub const WITHDRAWALS_PER_POLL_MAX: usize = 500;

pub async fn run(desk: Arc<DeskServices>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let settings = desk.settings.clone();
    let mut next_cycle_ms = desk.clock.now().0 + settings.net_settlement_every_ms;
    let mut next_reconciliation_ms = desk.clock.now().0 + settings.reconcile_every_ms;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        let Ok(in_flight) = desk.read(|desk| desk.withdrawals_in_flight(WITHDRAWALS_PER_POLL_MAX)).await else {
            continue;
        };
        for withdrawal in in_flight {
            step(&desk, &withdrawal).await;
        }
        if settings.net_settlement_every_ms > 0 && desk.clock.now().0 >= next_cycle_ms {
            next_cycle_ms = desk.clock.now().0 + settings.net_settlement_every_ms;
            if let Err(error) = desk.engine.submit(Actor::default(), Command::RunNetSettlement).await {
                tracing::warn!(%error, "scheduled net settlement cycle not run");
            }
        }
        if settings.reconcile_every_ms > 0 && desk.clock.now().0 >= next_reconciliation_ms {
            next_reconciliation_ms = desk.clock.now().0 + settings.reconcile_every_ms;
            log_breaks(&desk).await;
        }
        step_instructions(&desk).await;
        confirm_deposits(&desk).await;
    }
}

async fn step(desk: &DeskServices, withdrawal: &Withdrawal) {
    let _rail_step = desk.rail_step().await;
    let rail = &desk.rails.rail;
    let kind = asset_kind(desk, withdrawal.asset);
    let outcome = match withdrawal.status {
        WithdrawalStatus::Pending if !wallet_covers(desk, withdrawal.asset, withdrawal.amount).await => return,
        WithdrawalStatus::Pending => match rail.submit(withdrawal, kind) {
            Ok(external_reference) => SettlementOutcome::Submitted { external_reference },
            Err(reason) => SettlementOutcome::Failed { reason },
        },
        WithdrawalStatus::Submitted => match rail.status(withdrawal, kind, desk.clock.now()) {
            RailStatus::InFlight => return,
            RailStatus::Confirmed => SettlementOutcome::Completed,
            RailStatus::Failed(reason) => SettlementOutcome::Failed { reason },
        },
        WithdrawalStatus::Completed | WithdrawalStatus::Failed => return,
    };
    book_payout_movement(desk, withdrawal, &outcome);
    let command = Command::SettleWithdrawal { withdrawal_id: withdrawal.withdrawal_id.clone(), outcome };
    if let Err(error) = desk.engine.submit(Actor::default(), command).await {
        tracing::warn!(%error, withdrawal_id = %withdrawal.withdrawal_id, "settlement step not recorded");
    }
}

/// The rail's books: a payout leaves the desk's account when broadcast (submitted), and comes back when returned.
/// Once per withdrawal id, so a resubmission after a crash is not counted twice.
fn book_payout_movement(desk: &DeskServices, withdrawal: &Withdrawal, outcome: &SettlementOutcome) {
    let id = &withdrawal.withdrawal_id;
    match (withdrawal.status, outcome) {
        (WithdrawalStatus::Pending, SettlementOutcome::Submitted { .. }) => {
            desk.book_rail_movement(format!("payout:{id}"), withdrawal.asset, -withdrawal.amount);
        }
        (WithdrawalStatus::Submitted, SettlementOutcome::Failed { .. }) => {
            desk.book_rail_movement(format!("return:{id}"), withdrawal.asset, withdrawal.amount);
        }
        _ => {}
    }
}

/// Whether the desk's hot wallet (or bank account) can pay `amount` now. A payout is handed to a rail only
/// then: the engine would refuse to record a submission it cannot cover, and a rail must never be asked to send
/// funds the desk's wallet lacks. The withdrawal stays pending (its top-up request, if the asset has a custody
/// policy, is already waiting for an operator) and is tried again on the next poll.
async fn wallet_covers(desk: &DeskServices, asset: AssetCode, amount: i128) -> bool {
    match desk.read(move |desk| desk.check_wallet_covers(asset, amount)).await {
        Ok(Ok(())) => true,
        Ok(Err(refusal)) => {
            tracing::debug!(%asset, amount, %refusal, "payout waits for liquidity");
            false
        }
        Err(_) => false,
    }
}

/// Net settlement instructions settle through the rails too: a client's delivery arrives, or the desk's payment
/// leaves (only when the paying wallet covers it).
async fn step_instructions(desk: &DeskServices) {
    let Ok(pending) = desk.read(|desk| desk.instructions_pending(WITHDRAWALS_PER_POLL_MAX)).await else { return };
    for instruction in pending {
        let kind = asset_kind(desk, instruction.asset);
        let outcome = match desk.rails.rail.instruction_status(&instruction, kind, desk.clock.now()) {
            RailStatus::InFlight => continue,
            RailStatus::Confirmed => InstructionOutcome::Completed,
            RailStatus::Failed(reason) => InstructionOutcome::Failed { reason },
        };
        if instruction.direction == Direction::DeskPays
            && !wallet_covers(desk, instruction.asset, instruction.amount).await
        {
            continue;
        }
        let _rail_step = desk.rail_step().await;
        if outcome == InstructionOutcome::Completed {
            book_instruction_movement(desk, &instruction);
        }
        let command = Command::SettleInstruction { instruction_id: instruction.instruction_id.clone(), outcome };
        if let Err(error) = desk.engine.submit(Actor::default(), command).await {
            tracing::warn!(%error, instruction_id = %instruction.instruction_id, "settlement instruction step not recorded");
        }
    }
}

fn book_instruction_movement(desk: &DeskServices, instruction: &Instruction) {
    let signed = match instruction.direction {
        Direction::ClientPays => instruction.amount,
        Direction::DeskPays => -instruction.amount,
    };
    desk.book_rail_movement(format!("instruction:{}", instruction.instruction_id), instruction.asset, signed);
}

/// Deposits the custodian saw that are still confirming: the engine credits each when it reaches the asset's
/// required confirmations.
async fn confirm_deposits(desk: &DeskServices) {
    let Ok(confirming) = desk.read(|desk| desk.chain_deposits_confirming()).await else { return };
    for deposit in confirming.into_iter().take(WITHDRAWALS_PER_POLL_MAX) {
        let Some(confirmations) = desk.rails.rail.deposit_confirmations(&deposit) else { continue };
        let seen = otcd_core::engine::custody::DepositObservation {
            transaction_id: deposit.transaction_id.clone(),
            asset: deposit.asset,
            address: deposit.address.clone(),
            amount: deposit.amount,
            confirmations,
        };
        if let Err(error) = desk.engine.submit(Actor::default(), Command::ObserveDeposit(seen)).await {
            tracing::warn!(%error, transaction_id = %deposit.transaction_id, "deposit confirmation not recorded")
        }
    }
}

/// A scheduled reconciliation: every break is logged (an operator reads the details at
/// `GET /v1/admin/reconciliation`).
async fn log_breaks(desk: &DeskServices) {
    match desk.reconcile().await {
        Ok(report) => {
            for line in report.breaks() {
                let unmatched = report.unmatched.get(&line.asset).map_or(0, Vec::len);
                tracing::warn!(asset = %line.asset, account = ?line.account, difference = line.difference(),
                    unmatched, "reconciliation break");
            }
            for line in report.venue_breaks() {
                tracing::warn!(venue = %line.venue, asset = %line.asset, difference = line.difference(),
                    "venue reconciliation break");
            }
        }
        Err(error) => tracing::warn!(%error, "scheduled reconciliation not run"),
    }
}

/// The asset's kind from the catalog (every asset the engine accepted is in it; crypto otherwise).
fn asset_kind(desk: &DeskServices, asset: AssetCode) -> AssetKind {
    desk.catalog.asset(&asset).map_or(AssetKind::Crypto, |asset| asset.kind)
}
