//! The simulated custodian, bank and chain: otcd's stand-in for real rails, for the demo and the tests.
//!
//! [`SimulatedRails`] implements the services' [`Rail`] port: a payout confirms `confirm_after_ms` after
//! submission (crypto) or `bank_confirm_after_ms` (fiat), and fails (a rejected broadcast, a returned SEPA
//! payment) for `failure_percent` of withdrawal ids, chosen by a hash of the id so the outcome is the same after
//! a restart; net settlement instructions settle the same way; the simulated chain adds one confirmation to a
//! deposit each time it is asked. [`SimulatedRailBooks`] are the rails' own books (`simulated-rails.jsonl`),
//! what they report to reconciliation.
//!
//! Only the binary names these types: the services and workers see `Arc<dyn Rail>` and friends.

pub mod books;
pub mod paper;

pub use books::{RailBooksError, SimulatedRailBooks};

use otcd_core::catalog::AssetKind;
use otcd_core::engine::custody::ChainDeposit;
use otcd_core::engine::netting::Instruction;
use otcd_core::engine::settlement::Withdrawal;
use otcd_core::time::TimestampMs;
use otcd_services::ports::{Rail, RailMovement, RailStatus};
use otcd_services::Rails;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// How the simulated custodian and bank behave (`settlement_*` keys of `--config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulationSettings {
    /// ms from submission to confirmation of a crypto payout.
    pub confirm_after_ms: i64,
    /// ms from submission to confirmation of a fiat payout.
    pub bank_confirm_after_ms: i64,
    /// Percent of payouts and instructions that fail or are returned.
    pub failure_percent: u8,
}

impl Default for SimulationSettings {
    fn default() -> Self {
        Self { confirm_after_ms: 1_000, bank_confirm_after_ms: 2_000, failure_percent: 0 }
    }
}

/// The simulated custodian and bank, booking every movement they make or are told of.
pub struct SimulatedRails {
    settings: SimulationSettings,
    books: Arc<SimulatedRailBooks>,
}

impl SimulatedRails {
    pub fn new(settings: SimulationSettings, books: Arc<SimulatedRailBooks>) -> Self {
        Self { settings, books }
    }

    /// How long the custodian (crypto) or the bank (fiat) takes to confirm.
    fn delay_ms(&self, kind: AssetKind) -> i64 {
        match kind {
            AssetKind::Crypto => self.settings.confirm_after_ms,
            AssetKind::Fiat => self.settings.bank_confirm_after_ms,
        }
    }

    /// Whether the movement with this id fails: a hash of the id, so the answer survives restarts.
    fn fails(&self, id: &str) -> bool {
        let digest = Sha256::digest(id.as_bytes());
        u32::from(digest[0]) * 100 / 256 < u32::from(self.settings.failure_percent)
    }
}

impl Rail for SimulatedRails {
    fn submit(&self, withdrawal: &Withdrawal, _kind: AssetKind) -> Result<String, String> {
        // Deterministic per withdrawal id: a resubmission after a crash gets the same reference.
        let digest = Sha256::digest(withdrawal.withdrawal_id.as_bytes());
        Ok(format!("sim-{}", hex::encode(&digest[..12])))
    }

    fn status(&self, withdrawal: &Withdrawal, kind: AssetKind, now: TimestampMs) -> RailStatus {
        let submitted = withdrawal.submitted_at.map_or(now.0, |at| at.0);
        if now.0 < submitted + self.delay_ms(kind) {
            return RailStatus::InFlight;
        }
        if self.fails(&withdrawal.withdrawal_id) {
            return RailStatus::Failed("the simulated rail returned the payment".into());
        }
        RailStatus::Confirmed
    }

    fn instruction_status(&self, instruction: &Instruction, kind: AssetKind, now: TimestampMs) -> RailStatus {
        if now.0 < instruction.created_at.0 + self.delay_ms(kind) {
            return RailStatus::InFlight;
        }
        if self.fails(&instruction.instruction_id) {
            return RailStatus::Failed("the simulated rail returned it".into());
        }
        RailStatus::Confirmed
    }

    /// The simulated chain: every question is one more block.
    fn deposit_confirmations(&self, deposit: &ChainDeposit) -> Option<u32> {
        Some(deposit.confirmations.saturating_add(1))
    }

    fn book(&self, movement: RailMovement) {
        self.books.record_or_log(movement);
    }
}

/// The simulated rails over the books in `data_dir`, as the services' ports.
pub fn open(data_dir: &Path, settings: SimulationSettings) -> Result<Rails, RailBooksError> {
    let books = Arc::new(SimulatedRailBooks::open(data_dir)?);
    Ok(Rails {
        rail: Arc::new(SimulatedRails::new(settings, books.clone())),
        statements: books.clone(),
        simulation: Some(books),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use otcd_core::catalog::AssetCode;
    use otcd_core::engine::settlement::WithdrawalStatus;

    fn withdrawal(id: &str, submitted_at: i64) -> Withdrawal {
        Withdrawal {
            withdrawal_id: id.into(),
            client_id: otcd_core::ids::ClientId::parse("cl_00000001").unwrap(),
            client_withdrawal_id: otcd_core::ids::ClientReference::parse("w-1").unwrap(),
            asset: AssetCode::parse("BTC").unwrap(),
            amount: 1,
            destination_id: "dst_0000000001".into(),
            status: WithdrawalStatus::Submitted,
            reservation: otcd_core::ledger::PendingId(1),
            external_reference: None,
            failure_reason: None,
            created_at: TimestampMs(0),
            updated_at: TimestampMs(0),
            submitted_at: Some(TimestampMs(submitted_at)),
        }
    }

    #[test]
    fn a_payout_confirms_after_the_rails_delay_and_the_same_ids_always_fail() {
        let directory = tempfile::tempdir().unwrap();
        let books = Arc::new(SimulatedRailBooks::open(directory.path()).unwrap());
        let settings = SimulationSettings { failure_percent: 50, ..SimulationSettings::default() };
        let rails = SimulatedRails::new(settings, books);
        let ids: Vec<String> = (0..64).map(|index| format!("w_{index:010}")).collect();
        let statuses =
            |now| ids.iter().map(|id| rails.status(&withdrawal(id, 1_000), AssetKind::Crypto, now)).collect::<Vec<_>>();
        assert!(statuses(TimestampMs(1_999)).iter().all(|status| *status == RailStatus::InFlight));
        let settled = statuses(TimestampMs(2_000));
        let failed = settled.iter().filter(|status| matches!(status, RailStatus::Failed(_))).count();
        assert!((16..=48).contains(&failed), "about half of 64 fail: {failed}");
        assert_eq!(settled, statuses(TimestampMs(9_000)), "the same ids fail whenever asked");
        let fiat = rails.status(&withdrawal("w_x", 1_000), AssetKind::Fiat, TimestampMs(2_500));
        assert_eq!(fiat, RailStatus::InFlight, "the bank takes longer");
    }
}
