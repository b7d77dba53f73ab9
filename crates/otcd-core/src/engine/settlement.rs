//! Withdrawal destinations and withdrawals.
//!
//! A destination is a validated address (parsed at the edge by `crate::address`) screened against the
//! sanctions lists' digital-currency addresses and the admin blocklist: a match rejects it (and raises an alert),
//! otherwise it is approved. Operators may move a destination to `approved`, `pending_review` or `rejected`.
//!
//! A withdrawal moves through `pending` (funds reserved at once: a two-phase ledger transfer from the client's
//! available to reserved balance) → `submitted` (handed to the custody or bank adapter under its withdrawal id,
//! which the adapter treats as an idempotency key) → `completed` (the reservation is posted to the desk's custody
//! or bank account) or `failed` (the reservation is voided). Every step is a journaled command, so after a crash
//! the settlement worker finds each in-flight withdrawal in the state it last reached and carries on: a submitted
//! withdrawal is asked about, never submitted twice; a completed one can never be posted again.

use super::{CommandError, Desk, Executed, Outcome};
use crate::address::Network;
use crate::catalog::AssetCode;
use crate::ids::{ClientId, ClientReference};
use crate::ledger::{AccountKey, Owner, PendingId, Purpose};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub const DESTINATIONS_PER_CLIENT_MAX: usize = 1_000;
pub const DESTINATIONS_MAX: usize = 10_000_000;
pub const WITHDRAWALS_MAX: usize = 50_000_000;
pub const LABEL_BYTES_MAX: usize = 100;
pub const REASON_BYTES_MAX: usize = 500;
/// Screening matches kept with a destination or client.
pub const SCREENING_MATCHES_MAX: usize = 20;

/// A sanctions-list match as the desk records it (scores in thousandths: the engine keeps no floating point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningMatch {
    pub list: String,
    pub entry_id: String,
    pub name: String,
    pub score_thousandths: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationStatus {
    Approved,
    PendingReview,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub destination_id: String,
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub network: Network,
    pub address: String,
    pub label: Option<String>,
    pub status: DestinationStatus,
    pub matches: Vec<ScreeningMatch>,
    pub created_at: TimestampMs,
    pub updated_at: TimestampMs,
}

/// A destination as registered: the address already validated and normalized, and its screening result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDestination {
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub network: Network,
    pub address: String,
    pub label: Option<String>,
    pub matches: Vec<ScreeningMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    Pending,
    Submitted,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub withdrawal_id: String,
    pub client_withdrawal_id: ClientReference,
    pub client_id: ClientId,
    pub asset: AssetCode,
    /// Minor units.
    pub amount: i128,
    pub destination_id: String,
    pub status: WithdrawalStatus,
    pub reservation: PendingId,
    /// The custodian's or bank's reference once submitted (a transaction hash, a payment id).
    pub external_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: TimestampMs,
    pub submitted_at: Option<TimestampMs>,
    pub updated_at: TimestampMs,
}

impl Withdrawal {
    pub fn in_flight(&self) -> bool {
        matches!(self.status, WithdrawalStatus::Pending | WithdrawalStatus::Submitted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWithdrawal {
    pub client_id: ClientId,
    pub client_withdrawal_id: ClientReference,
    pub asset: AssetCode,
    pub amount: i128,
    pub destination_id: String,
}

/// What the settlement adapter reports about a submitted withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementOutcome {
    Submitted { external_reference: String },
    Completed,
    Failed { reason: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SettlementBook {
    destinations: Vec<Destination>,
    withdrawals: Vec<Withdrawal>,
    #[serde(skip)]
    destinations_by_client: HashMap<ClientId, Vec<usize>>,
    #[serde(skip)]
    withdrawals_by_client: HashMap<ClientId, Vec<usize>>,
    #[serde(skip)]
    by_client_reference: HashMap<(ClientId, ClientReference), usize>,
    /// Positions of withdrawals still pending or submitted.
    #[serde(skip)]
    in_flight: BTreeSet<usize>,
    /// Σ amount of the withdrawals in flight, per asset and status (`Pending` or `Submitted`).
    #[serde(skip)]
    outflows: HashMap<(AssetCode, WithdrawalStatus), i128>,
}

impl SettlementBook {
    pub fn rebuild_indexes(&mut self) {
        self.destinations_by_client.clear();
        self.withdrawals_by_client.clear();
        self.by_client_reference.clear();
        self.in_flight.clear();
        self.outflows.clear();
        for (position, destination) in self.destinations.iter().enumerate() {
            self.destinations_by_client.entry(destination.client_id.clone()).or_default().push(position);
        }
        for position in 0..self.withdrawals.len() {
            self.index_withdrawal(position);
        }
    }

    fn index_withdrawal(&mut self, position: usize) {
        let withdrawal = &self.withdrawals[position];
        self.withdrawals_by_client.entry(withdrawal.client_id.clone()).or_default().push(position);
        let key = (withdrawal.client_id.clone(), withdrawal.client_withdrawal_id.clone());
        self.by_client_reference.insert(key, position);
        if withdrawal.in_flight() {
            self.in_flight.insert(position);
            *self.outflows.entry((withdrawal.asset, withdrawal.status)).or_default() += withdrawal.amount;
        }
    }

    /// Moves a withdrawal's amount between the in-flight sums when its status changes.
    fn record_transition(&mut self, position: usize, from: WithdrawalStatus) {
        let withdrawal = &self.withdrawals[position];
        let (asset, amount, to) = (withdrawal.asset, withdrawal.amount, withdrawal.status);
        if let Some(sum) = self.outflows.get_mut(&(asset, from)) {
            *sum -= amount;
            debug_assert!(*sum >= 0, "in-flight sums never go negative");
        }
        if withdrawal.in_flight() {
            *self.outflows.entry((asset, to)).or_default() += amount;
        } else {
            self.in_flight.remove(&position);
        }
    }

    /// Σ amount of the asset's withdrawals in a status (pending or submitted), minor units.
    pub fn outflow(&self, asset: AssetCode, status: WithdrawalStatus) -> i128 {
        self.outflows.get(&(asset, status)).copied().unwrap_or(0)
    }

    fn destination_position(&self, destination_id: &str) -> Option<usize> {
        let number: usize = destination_id.strip_prefix("dst_")?.parse().ok()?;
        number.checked_sub(1).filter(|position| *position < self.destinations.len())
    }

    fn withdrawal_position(&self, withdrawal_id: &str) -> Option<usize> {
        let number: usize = withdrawal_id.strip_prefix("w_")?.parse().ok()?;
        number.checked_sub(1).filter(|position| *position < self.withdrawals.len())
    }
}

impl Desk {
    pub fn destination(&self, destination_id: &str) -> Option<&Destination> {
        self.settlement.destination_position(destination_id).map(|position| &self.settlement.destinations[position])
    }

    /// Every destination of every client, in registration order.
    pub fn destinations(&self) -> &[Destination] {
        &self.settlement.destinations
    }

    pub fn destinations_of<'a>(
        &'a self,
        client_id: &ClientId,
    ) -> impl DoubleEndedIterator<Item = &'a Destination> + 'a {
        let positions = self.settlement.destinations_by_client.get(client_id).map_or(&[][..], Vec::as_slice);
        positions.iter().map(|position| &self.settlement.destinations[*position])
    }

    pub fn withdrawal(&self, withdrawal_id: &str) -> Option<&Withdrawal> {
        self.settlement.withdrawal_position(withdrawal_id).map(|position| &self.settlement.withdrawals[position])
    }

    pub fn withdrawals_of<'a>(&'a self, client_id: &ClientId) -> impl DoubleEndedIterator<Item = &'a Withdrawal> + 'a {
        let positions = self.settlement.withdrawals_by_client.get(client_id).map_or(&[][..], Vec::as_slice);
        positions.iter().map(|position| &self.settlement.withdrawals[*position])
    }

    /// Every withdrawal, oldest first (for operators).
    pub fn withdrawals(&self) -> &[Withdrawal] {
        &self.settlement.withdrawals
    }

    /// The desk's wallet (crypto: hot) or bank account for an asset: what it holds, minor units.
    pub fn payout_holdings(&self, asset: AssetCode) -> i128 {
        self.holding_purpose_of(asset).map_or(0, |purpose| super::custody::holdings(self, asset, purpose))
    }

    /// Σ amount of the asset's withdrawals pending (`Pending`) or handed to a rail and not yet settled
    /// (`Submitted`), minor units.
    pub fn withdrawals_outflow(&self, asset: AssetCode, status: WithdrawalStatus) -> i128 {
        self.settlement.outflow(asset, status)
    }

    /// Whether the asset's paying wallet (crypto: hot; fiat: bank) holds `amount` beyond the payouts already
    /// submitted and not yet settled. The settlement worker asks before handing a payout to a rail, and the engine
    /// checks again when the submission (or a `desk_pays` instruction) is recorded, so a payout is never sent from
    /// funds the desk does not hold in that wallet; it waits for a deposit or an approved top-up from cold.
    pub fn check_wallet_covers(&self, asset: AssetCode, amount: i128) -> Result<(), CommandError> {
        let holdings = self.payout_holdings(asset);
        let committed = self.settlement.outflow(asset, WithdrawalStatus::Submitted);
        if holdings - committed < amount {
            return Err(CommandError::InsufficientFunds {
                detail: format!(
                    "the desk's {asset} payout wallet holds {holdings} minor units with {committed} already submitted; \
                     a payout of {amount} waits for a deposit or a top-up from cold"
                ),
            });
        }
        Ok(())
    }

    /// Withdrawals still pending or submitted, oldest first (for the settlement worker).
    pub fn withdrawals_in_flight(&self, limit: usize) -> Vec<Withdrawal> {
        self.settlement
            .in_flight
            .iter()
            .take(limit)
            .map(|position| self.settlement.withdrawals[*position].clone())
            .collect()
    }

    pub(super) fn add_destination(&mut self, at: TimestampMs, new: &NewDestination) -> Result<Executed, CommandError> {
        self.clients.get(&new.client_id).ok_or_else(|| CommandError::not_found("client"))?;
        if self.catalog().and_then(|catalog| catalog.asset(&new.asset)).is_none() {
            return Err(CommandError::invalid("asset", "is not in the catalog"));
        }
        if new.label.as_ref().is_some_and(|label| label.len() > LABEL_BYTES_MAX) {
            return Err(CommandError::invalid("label", "is longer than 100 bytes"));
        }
        if new.address.is_empty() || new.address.len() > crate::address::ADDRESS_LENGTH_MAX {
            return Err(CommandError::invalid("address", "is empty or too long"));
        }
        let own = self.settlement.destinations_by_client.get(&new.client_id).map_or(0, Vec::len);
        if own >= DESTINATIONS_PER_CLIENT_MAX || self.settlement.destinations.len() >= DESTINATIONS_MAX {
            return Err(CommandError::conflict("the client holds the maximum number of destinations (1000)"));
        }
        let status = if new.matches.is_empty() { DestinationStatus::Approved } else { DestinationStatus::Rejected };
        let position = self.settlement.destinations.len();
        let destination = Destination {
            destination_id: format!("dst_{:010}", position + 1),
            client_id: new.client_id.clone(),
            asset: new.asset,
            network: new.network,
            address: new.address.clone(),
            label: new.label.clone(),
            status,
            matches: new.matches.iter().take(SCREENING_MATCHES_MAX).cloned().collect(),
            created_at: at,
            updated_at: at,
        };
        self.settlement.destinations.push(destination.clone());
        self.settlement.destinations_by_client.entry(new.client_id.clone()).or_default().push(position);
        if status == DestinationStatus::Rejected {
            self.raise_alert(
                at,
                super::alerts::AlertKind::SanctionsAddress,
                Some(new.client_id.clone()),
                destination_evidence(&destination),
                None,
            );
        }
        Ok(Executed::changed(Outcome::Destination(destination)))
    }

    pub(super) fn set_destination_status(
        &mut self,
        at: TimestampMs,
        destination_id: &str,
        status: DestinationStatus,
    ) -> Result<Executed, CommandError> {
        let position = self
            .settlement
            .destination_position(destination_id)
            .ok_or_else(|| CommandError::not_found("destination"))?;
        let destination = &mut self.settlement.destinations[position];
        destination.status = status;
        destination.updated_at = at;
        Ok(Executed::changed(Outcome::Destination(destination.clone())))
    }

    pub(super) fn rescreen_destination(
        &mut self,
        at: TimestampMs,
        destination_id: &str,
        matches: &[ScreeningMatch],
    ) -> Result<Executed, CommandError> {
        let position = self
            .settlement
            .destination_position(destination_id)
            .ok_or_else(|| CommandError::not_found("destination"))?;
        let destination = &mut self.settlement.destinations[position];
        if matches.is_empty() || destination.status == DestinationStatus::Rejected {
            return Ok(Executed { outcome: Outcome::Destination(destination.clone()), changed: false });
        }
        destination.status = DestinationStatus::Rejected;
        destination.matches = matches.iter().take(SCREENING_MATCHES_MAX).cloned().collect();
        destination.updated_at = at;
        let destination = destination.clone();
        let evidence = destination_evidence(&destination);
        self.raise_alert(
            at,
            super::alerts::AlertKind::SanctionsAddress,
            Some(destination.client_id.clone()),
            evidence,
            None,
        );
        Ok(Executed::changed(Outcome::Destination(destination)))
    }

    pub(super) fn request_withdrawal(
        &mut self,
        at: TimestampMs,
        new: &NewWithdrawal,
    ) -> Result<Executed, CommandError> {
        let key = (new.client_id.clone(), new.client_withdrawal_id.clone());
        if let Some(position) = self.settlement.by_client_reference.get(&key) {
            let original = &self.settlement.withdrawals[*position];
            if original.asset != new.asset
                || original.amount != new.amount
                || original.destination_id != new.destination_id
            {
                return Err(CommandError::conflict("this client_withdrawal_id was used for a different withdrawal"));
            }
            return Ok(Executed { outcome: Outcome::Withdrawal(original.clone()), changed: false });
        }
        let client = self.withdrawing_client(at, &new.client_id)?;
        self.check_jurisdiction_asset(&client, new.asset)?;
        if new.amount <= 0 {
            return Err(CommandError::invalid("amount", "must be greater than zero"));
        }
        if let Some(asset) = self.catalog().and_then(|catalog| catalog.asset(&new.asset)) {
            asset.check_amount(new.amount).map_err(|detail| CommandError::invalid("amount", detail))?;
        }
        let destination = self
            .destination(&new.destination_id)
            .filter(|destination| destination.client_id == new.client_id)
            .ok_or_else(|| CommandError::not_found("destination"))?;
        if destination.asset != new.asset {
            return Err(CommandError::invalid("destination_id", "the destination is for another asset"));
        }
        if destination.status != DestinationStatus::Approved {
            return Err(CommandError::DestinationNotApproved { status: destination.status });
        }
        if self.settlement.withdrawals.len() >= WITHDRAWALS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of withdrawals"));
        }
        let withdrawal_id = format!("w_{:012}", self.settlement.withdrawals.len() + 1);
        let reservation = self.reserve_withdrawal(at, &new.client_id, new.asset, new.amount, &withdrawal_id)?;
        let position = self.settlement.withdrawals.len();
        self.settlement.withdrawals.push(Withdrawal {
            withdrawal_id,
            client_withdrawal_id: new.client_withdrawal_id.clone(),
            client_id: new.client_id.clone(),
            asset: new.asset,
            amount: new.amount,
            destination_id: new.destination_id.clone(),
            status: WithdrawalStatus::Pending,
            reservation,
            external_reference: None,
            failure_reason: None,
            created_at: at,
            submitted_at: None,
            updated_at: at,
        });
        self.settlement.index_withdrawal(position);
        self.after_withdrawal_requested(at, position);
        // The policy keeps the hot wallet's level net of payouts in flight: a large withdrawal may need a top-up.
        self.apply_custody_policy(at, new.asset)?;
        Ok(Executed::changed(Outcome::Withdrawal(self.settlement.withdrawals[position].clone())))
    }

    /// Approved KYC, not a sanctions hit.
    fn withdrawing_client(&self, at: TimestampMs, client_id: &ClientId) -> Result<crate::model::Client, CommandError> {
        let client = self.clients.get(client_id).ok_or_else(|| CommandError::not_found("client"))?;
        self.check_screening(client)?;
        if !client.kyc_valid_at(at) {
            return Err(CommandError::KycRequired);
        }
        Ok(client.clone())
    }

    /// Reserves the amount out of the client's available balance, which must hold it (credit clients withdraw
    /// only what they own: credit covers trading, not payouts).
    fn reserve_withdrawal(
        &mut self,
        at: TimestampMs,
        client_id: &ClientId,
        asset: AssetCode,
        amount: i128,
        reference: &str,
    ) -> Result<PendingId, CommandError> {
        let owner = Owner::Client(client_id.clone());
        let available_key = AccountKey { owner: owner.clone(), asset, purpose: Purpose::Available };
        let available_now = self.ledger.account_id(&available_key).map_or(0, |account| self.ledger.balance(account));
        if available_now < amount {
            return Err(CommandError::InsufficientFunds {
                detail: format!("{asset} available is below the withdrawal"),
            });
        }
        let available = self.ledger.account_id(&available_key).expect("a positive balance has an account");
        let reserved = self.ledger.open_account(AccountKey { owner, asset, purpose: Purpose::Reserved }, Some(0));
        Ok(self.ledger.reserve(at, available, reserved, amount, reference)?)
    }

    /// The settlement adapter reports on a withdrawal: submitted, completed or failed. Transitions are checked:
    /// only a pending withdrawal is submitted, only a submitted one completes; a failure voids the reservation.
    pub(super) fn settle_withdrawal(
        &mut self,
        at: TimestampMs,
        withdrawal_id: &str,
        outcome: &SettlementOutcome,
    ) -> Result<Executed, CommandError> {
        let position =
            self.settlement.withdrawal_position(withdrawal_id).ok_or_else(|| CommandError::not_found("withdrawal"))?;
        let withdrawal = self.settlement.withdrawals[position].clone();
        let (asset, status_before) = (withdrawal.asset, withdrawal.status);
        let status = match (withdrawal.status, outcome) {
            (WithdrawalStatus::Pending, SettlementOutcome::Submitted { external_reference }) => {
                if external_reference.is_empty() || external_reference.len() > REASON_BYTES_MAX {
                    return Err(CommandError::invalid("external_reference", "1 to 500 bytes"));
                }
                self.check_wallet_covers(withdrawal.asset, withdrawal.amount)?;
                WithdrawalStatus::Submitted
            }
            (WithdrawalStatus::Submitted, SettlementOutcome::Completed) => {
                let purpose = self.holding_purpose_of(withdrawal.asset)?;
                let holding =
                    self.ledger.open_account(AccountKey { owner: Owner::Desk, asset: withdrawal.asset, purpose }, None);
                self.ledger.post_pending(
                    at,
                    withdrawal.reservation,
                    withdrawal.amount,
                    holding,
                    &withdrawal.withdrawal_id,
                )?;
                WithdrawalStatus::Completed
            }
            (WithdrawalStatus::Pending | WithdrawalStatus::Submitted, SettlementOutcome::Failed { reason }) => {
                if reason.len() > REASON_BYTES_MAX {
                    return Err(CommandError::invalid("reason", "is longer than 500 bytes"));
                }
                self.ledger.void_pending(at, withdrawal.reservation, &withdrawal.withdrawal_id)?;
                WithdrawalStatus::Failed
            }
            (current, _) => {
                return Err(CommandError::conflict(format!("the withdrawal is {current:?}; that step does not apply")));
            }
        };
        let withdrawal = &mut self.settlement.withdrawals[position];
        withdrawal.status = status;
        withdrawal.updated_at = at;
        match outcome {
            SettlementOutcome::Submitted { external_reference } => {
                withdrawal.external_reference = Some(external_reference.clone());
                withdrawal.submitted_at = Some(at);
            }
            SettlementOutcome::Failed { reason } => withdrawal.failure_reason = Some(reason.clone()),
            SettlementOutcome::Completed => {}
        }
        self.settlement.record_transition(position, status_before);
        if status != WithdrawalStatus::Submitted {
            // A payout changes the hot wallet; a failure frees what the policy had set aside for it.
            self.apply_custody_policy(at, asset)?;
        }
        Ok(Executed::changed(Outcome::Withdrawal(self.settlement.withdrawals[position].clone())))
    }
}

fn destination_evidence(destination: &Destination) -> String {
    let matches: Vec<String> =
        destination.matches.iter().map(|found| format!("{}:{} ({})", found.list, found.entry_id, found.name)).collect();
    format!(
        "destination {} {} address {} matches {}",
        destination.destination_id,
        destination.network.as_str(),
        destination.address,
        matches.join(", ")
    )
}
