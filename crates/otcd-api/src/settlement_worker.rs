//! The settlement worker and the simulated rails behind it.
//!
//! Every `POLL_INTERVAL` the worker asks the engine for withdrawals in flight and moves each one step: a
//! `pending` one is handed to the rail (custodian for crypto, bank for fiat) and recorded `submitted` with the
//! rail's reference; a `submitted` one is asked about and recorded `completed` or `failed`. The rails are keyed by
//! the withdrawal id, so asking again after a crash never pays twice, and each step is a journaled command, so a
//! restart resumes from the last acknowledged step.
//!
//! `SimulatedRails` stands in for a custodian and a bank (the `Rail` trait is the port a real adapter
//! implements): a payout confirms `confirm_after_ms` after submission (crypto) or `bank_confirm_after_ms` (fiat),
//! and fails (a rejected broadcast, a returned SEPA payment) for `failure_percent` of withdrawal ids, chosen by a
//! hash of the id so the outcome is the same after a restart.

use crate::app::AppState;
use crate::runner::now_ms;
use otcd_core::catalog::AssetKind;
use otcd_core::engine::settlement::{SettlementOutcome, Withdrawal, WithdrawalStatus};
use otcd_core::engine::{Actor, Command, Outcome};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Withdrawals moved per poll (a bound on the work per interval).
pub const WITHDRAWALS_PER_POLL_MAX: usize = 500;

/// What a rail says about a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailStatus {
    InFlight,
    Confirmed,
    Failed(String),
}

/// The port a custodian or bank adapter implements. `submit` must be idempotent per withdrawal id.
pub trait Rail: Send + Sync {
    fn submit(&self, withdrawal: &Withdrawal) -> Result<String, String>;
    /// `kind`: the asset's kind from the catalog (a crypto payout goes through the custodian, fiat through the bank).
    fn status(&self, withdrawal: &Withdrawal, kind: AssetKind, now_ms: i64) -> RailStatus;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedRails {
    pub confirm_after_ms: i64,
    pub bank_confirm_after_ms: i64,
    pub failure_percent: u8,
    /// How often the worker runs a net settlement cycle for credit clients (0: only on request).
    pub net_settlement_every_ms: i64,
    /// How often the worker reconciles the ledger with the rails' books and logs any break (0: only on request).
    pub reconcile_every_ms: i64,
}

impl Default for SimulatedRails {
    fn default() -> Self {
        Self {
            confirm_after_ms: 1_000,
            bank_confirm_after_ms: 2_000,
            failure_percent: 0,
            net_settlement_every_ms: 3_600_000,
            reconcile_every_ms: 60_000,
        }
    }
}

impl SimulatedRails {
    /// How long the custodian (crypto) or the bank (fiat) takes to confirm.
    fn delay_ms(&self, kind: AssetKind) -> i64 {
        match kind {
            AssetKind::Crypto => self.confirm_after_ms,
            AssetKind::Fiat => self.bank_confirm_after_ms,
        }
    }

    fn fails(&self, withdrawal: &Withdrawal) -> bool {
        self.fails_id(&withdrawal.withdrawal_id)
    }

    fn fails_id(&self, id: &str) -> bool {
        let digest = Sha256::digest(id.as_bytes());
        u32::from(digest[0]) * 100 / 256 < u32::from(self.failure_percent)
    }
}

impl Rail for SimulatedRails {
    fn submit(&self, withdrawal: &Withdrawal) -> Result<String, String> {
        // Deterministic per withdrawal id: a resubmission after a crash gets the same reference.
        let digest = Sha256::digest(withdrawal.withdrawal_id.as_bytes());
        Ok(format!("sim-{}", hex::encode(&digest[..12])))
    }

    fn status(&self, withdrawal: &Withdrawal, kind: AssetKind, now_ms: i64) -> RailStatus {
        let delay = self.delay_ms(kind);
        let submitted = withdrawal.submitted_at.map_or(now_ms, |at| at.0);
        if now_ms < submitted + delay {
            return RailStatus::InFlight;
        }
        if self.fails(withdrawal) {
            return RailStatus::Failed("the simulated rail returned the payment".into());
        }
        RailStatus::Confirmed
    }
}

pub async fn run(state: AppState, rails: SimulatedRails, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_cycle_ms = now_ms().0 + rails.net_settlement_every_ms;
    let mut next_reconciliation_ms = now_ms().0 + rails.reconcile_every_ms;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        let Ok(in_flight) = state.engine.query(|desk| desk.withdrawals_in_flight(WITHDRAWALS_PER_POLL_MAX)).await
        else {
            continue;
        };
        for withdrawal in in_flight {
            step(&state, &rails, &withdrawal).await;
        }
        if rails.net_settlement_every_ms > 0 && now_ms().0 >= next_cycle_ms {
            next_cycle_ms = now_ms().0 + rails.net_settlement_every_ms;
            if let Err(error) = state.engine.submit(Actor::default(), Command::RunNetSettlement).await {
                tracing::warn!(%error, "scheduled net settlement cycle not run");
            }
        }
        if rails.reconcile_every_ms > 0 && now_ms().0 >= next_reconciliation_ms {
            next_reconciliation_ms = now_ms().0 + rails.reconcile_every_ms;
            log_breaks(&state).await;
        }
        step_instructions(&state, &rails).await;
        confirm_deposits(&state).await;
    }
}

async fn step(state: &AppState, rail: &dyn Rail, withdrawal: &Withdrawal) {
    let _rail_step = state.rail_step.lock().await;
    let outcome = match withdrawal.status {
        WithdrawalStatus::Pending if !wallet_covers(state, withdrawal.asset, withdrawal.amount).await => return,
        WithdrawalStatus::Pending => match rail.submit(withdrawal) {
            Ok(external_reference) => SettlementOutcome::Submitted { external_reference },
            Err(reason) => SettlementOutcome::Failed { reason },
        },
        WithdrawalStatus::Submitted => match rail.status(withdrawal, asset_kind(state, withdrawal.asset), now_ms().0) {
            RailStatus::InFlight => return,
            RailStatus::Confirmed => SettlementOutcome::Completed,
            RailStatus::Failed(reason) => SettlementOutcome::Failed { reason },
        },
        WithdrawalStatus::Completed | WithdrawalStatus::Failed => return,
    };
    record_payout_movement(state, withdrawal, &outcome);
    let command = Command::SettleWithdrawal { withdrawal_id: withdrawal.withdrawal_id.clone(), outcome };
    match state.engine.submit(Actor::default(), command).await {
        Ok(executed) => {
            if let Outcome::Withdrawal(updated) = executed.outcome {
                crate::routes::withdrawals::publish_withdrawal(state, &updated).await;
            }
        }
        Err(error) => tracing::warn!(%error, withdrawal_id = %withdrawal.withdrawal_id, "settlement step not recorded"),
    }
}

/// The simulated rail's own books: a payout leaves the desk's account when broadcast (submitted), and comes back
/// when returned. Once per withdrawal id, so a resubmission after a crash is not counted twice.
fn record_payout_movement(state: &AppState, withdrawal: &Withdrawal, outcome: &SettlementOutcome) {
    let id = &withdrawal.withdrawal_id;
    match (withdrawal.status, outcome) {
        (WithdrawalStatus::Pending, SettlementOutcome::Submitted { .. }) => {
            state.record_rail_movement(format!("payout:{id}"), withdrawal.asset, -withdrawal.amount);
        }
        (WithdrawalStatus::Submitted, SettlementOutcome::Failed { .. }) => {
            state.record_rail_movement(format!("return:{id}"), withdrawal.asset, withdrawal.amount);
        }
        _ => {}
    }
}

/// Whether the desk's hot wallet (or bank account) can pay `amount` now. A payout is handed to a rail only
/// then: the engine would refuse to record a submission it cannot cover, and a rail must never be asked to send
/// funds the desk's wallet lacks. The withdrawal stays pending (its top-up request, if the asset has a custody
/// policy, is already waiting for an operator) and is tried again on the next poll.
async fn wallet_covers(state: &AppState, asset: otcd_core::catalog::AssetCode, amount: i128) -> bool {
    match state.engine.query(move |desk| desk.check_wallet_covers(asset, amount)).await {
        Ok(Ok(())) => true,
        Ok(Err(refusal)) => {
            tracing::debug!(%asset, amount, %refusal, "payout waits for liquidity");
            false
        }
        Err(_) => false,
    }
}

/// Net settlement instructions settle through the same simulated rails: after the rail's delay they complete
/// (the client's delivery arrived, or the desk's payout confirmed), or fail for `failure_percent` of ids.
async fn step_instructions(state: &AppState, rails: &SimulatedRails) {
    let Ok(pending) = state.engine.query(|desk| desk.instructions_pending(WITHDRAWALS_PER_POLL_MAX)).await else {
        return;
    };
    let now = now_ms().0;
    for instruction in pending {
        if now < instruction.created_at.0 + rails.delay_ms(asset_kind(state, instruction.asset)) {
            continue;
        }
        if instruction.direction == otcd_core::engine::netting::Direction::DeskPays
            && !wallet_covers(state, instruction.asset, instruction.amount).await
        {
            continue;
        }
        let outcome = if rails.fails_id(&instruction.instruction_id) {
            otcd_core::engine::netting::InstructionOutcome::Failed { reason: "the simulated rail returned it".into() }
        } else {
            otcd_core::engine::netting::InstructionOutcome::Completed
        };
        let _rail_step = state.rail_step.lock().await;
        if outcome == otcd_core::engine::netting::InstructionOutcome::Completed {
            let signed = match instruction.direction {
                otcd_core::engine::netting::Direction::ClientPays => instruction.amount,
                otcd_core::engine::netting::Direction::DeskPays => -instruction.amount,
            };
            let reference = format!("instruction:{}", instruction.instruction_id);
            state.record_rail_movement(reference, instruction.asset, signed);
        }
        let command = Command::SettleInstruction { instruction_id: instruction.instruction_id.clone(), outcome };
        if let Err(error) = state.engine.submit(Actor::default(), command).await {
            tracing::warn!(%error, instruction_id = %instruction.instruction_id, "settlement instruction step not recorded");
        }
    }
}

/// The simulated chain: every poll is one more block, so each deposit still confirming gains a confirmation (the
/// engine credits it when it reaches the asset's requirement).
async fn confirm_deposits(state: &AppState) {
    let Ok(confirming) = state.engine.query(|desk| desk.chain_deposits_confirming()).await else { return };
    for deposit in confirming.into_iter().take(WITHDRAWALS_PER_POLL_MAX) {
        let seen = otcd_core::engine::custody::DepositObservation {
            transaction_id: deposit.transaction_id.clone(),
            asset: deposit.asset,
            address: deposit.address.clone(),
            amount: deposit.amount,
            confirmations: deposit.confirmations + 1,
        };
        match state.engine.submit(Actor::default(), Command::ObserveDeposit(seen)).await {
            Ok(executed) => {
                if let Outcome::ChainDeposit(updated) = executed.outcome {
                    if updated.credited_at.is_some() {
                        crate::routes::admin::publish_balance(state, &updated.client_id, updated.asset).await;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, transaction_id = %deposit.transaction_id, "deposit confirmation not recorded")
            }
        }
    }
}

/// A scheduled reconciliation: every break is logged (an operator reads the details at
/// `GET /v1/admin/reconciliation`).
async fn log_breaks(state: &AppState) {
    match crate::reconciliation::reconcile_now(state).await {
        Ok(report) => {
            for line in report.lines.iter().filter(|line| line.status == "break") {
                tracing::warn!(asset = %line.asset, account = %line.account, difference = %line.difference,
                    unmatched = line.unmatched_movements.len(), "reconciliation break");
            }
        }
        Err(error) => tracing::warn!(?error, "scheduled reconciliation not run"),
    }
}

/// The asset's kind from the catalog (every asset the engine accepted is in it; crypto otherwise).
fn asset_kind(state: &AppState, asset: otcd_core::catalog::AssetCode) -> AssetKind {
    state.catalog.asset(&asset).map_or(AssetKind::Crypto, |asset| asset.kind)
}
