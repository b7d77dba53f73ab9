//! Custody: per-client deposit addresses, on-chain deposits credited after enough confirmations, and hot/cold
//! wallets with a sweep policy.
//!
//! - A deposit address is derived deterministically from the client and asset (`address::derive_deposit_address`,
//!   standing in for the custodian's key derivation), once per (client, asset).
//! - The custodian adapter reports deposits it sees on chain (`ObserveDeposit`, keyed by transaction id, with the
//!   confirmation count so far). A deposit is credited once it reaches the asset's required confirmations:
//!   the hot wallet pays into the client's available balance, exactly once per transaction.
//! - Hot and cold wallets are two ledger accounts per asset (`Custody` and `ColdCustody`, the desk's holdings
//!   being the negated balance, as for every holding account). After every credit, payout or approval the
//!   engine applies the asset's policy: hot holdings above `hot_max` are swept to cold down to `hot_target` at
//!   once; hot holdings below `hot_min` raise a top-up request from cold for `hot_target − holdings`, which moves
//!   only when an operator approves it (cold funds need a human).

use super::settlement::WithdrawalStatus;
use super::{CommandError, Desk, Executed, Outcome};
use crate::address::{self, Network};
use crate::catalog::AssetCode;
use crate::ids::ClientId;
use crate::ledger::{AccountKey, Owner, Posting, Purpose, TransactionKind};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEPOSIT_ADDRESSES_MAX: usize = 10_000_000;
pub const OBSERVED_DEPOSITS_MAX: usize = 50_000_000;
pub const TRANSACTION_ID_BYTES_MAX: usize = 128;

/// Confirmations before a deposit is credited.
pub fn confirmations_required(asset: AssetCode) -> u32 {
    match asset.as_str() {
        "BTC" => 2,
        _ => 12,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositAddress {
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub network: Network,
    pub address: String,
    pub created_at: TimestampMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainDepositStatus {
    Confirming,
    Credited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainDeposit {
    pub transaction_id: String,
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub address: String,
    pub amount: i128,
    pub confirmations: u32,
    pub confirmations_required: u32,
    pub status: ChainDepositStatus,
    pub seen_at: TimestampMs,
    pub credited_at: Option<TimestampMs>,
}

/// What the custodian reports about one on-chain transaction to a deposit address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositObservation {
    pub transaction_id: String,
    pub asset: AssetCode,
    pub address: String,
    pub amount: i128,
    pub confirmations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyPolicy {
    pub asset: AssetCode,
    /// Holdings in minor units.
    pub hot_min: i128,
    pub hot_target: i128,
    pub hot_max: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpStatus {
    AwaitingApproval,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    pub top_up_id: String,
    pub asset: AssetCode,
    pub amount: i128,
    pub status: TopUpStatus,
    pub requested_at: TimestampMs,
    pub approved_by: Option<String>,
    pub approved_at: Option<TimestampMs>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustodyBook {
    #[serde(with = "super::netting::pairs")]
    addresses: BTreeMap<(ClientId, AssetCode), DepositAddress>,
    /// Address → owner, for observed deposits.
    owners: BTreeMap<String, (ClientId, AssetCode)>,
    deposits: BTreeMap<String, ChainDeposit>,
    policies: BTreeMap<AssetCode, CustodyPolicy>,
    top_ups: Vec<TopUp>,
    /// The top-up awaiting approval per asset (at most one each; rebuilt from `top_ups`), so the policy's check
    /// after every crypto deposit and withdrawal is a lookup, not a walk over every top-up ever requested.
    #[serde(skip)]
    awaiting_top_ups: BTreeMap<AssetCode, usize>,
}

impl CustodyBook {
    pub(super) fn rebuild_indexes(&mut self) {
        self.awaiting_top_ups = self
            .top_ups
            .iter()
            .enumerate()
            .filter(|(_, top_up)| top_up.status == TopUpStatus::AwaitingApproval)
            .map(|(position, top_up)| (top_up.asset, position))
            .collect();
    }
}

/// Top-up ids are `tu_` and the 1-based position in the list.
fn top_up_position(top_up_id: &str) -> Option<usize> {
    let number: usize = top_up_id.strip_prefix("tu_")?.parse().ok()?;
    number.checked_sub(1)
}

/// A wallet's holdings, from the ledger's (credit-positive) balance of its account.
pub(super) fn holdings(desk: &Desk, asset: AssetCode, purpose: Purpose) -> i128 {
    let key = AccountKey { owner: Owner::Desk, asset, purpose };
    desk.ledger.account_id(&key).map_or(0, |account| -desk.ledger.balance(account))
}

impl Desk {
    pub fn deposit_address(&self, client_id: &ClientId, asset: AssetCode) -> Option<&DepositAddress> {
        self.custody.addresses.get(&(client_id.clone(), asset))
    }

    pub fn chain_deposits_confirming(&self) -> Vec<ChainDeposit> {
        self.custody
            .deposits
            .values()
            .filter(|deposit| deposit.status == ChainDepositStatus::Confirming)
            .cloned()
            .collect()
    }

    pub fn chain_deposit(&self, transaction_id: &str) -> Option<&ChainDeposit> {
        self.custody.deposits.get(transaction_id)
    }

    pub fn custody_policies(&self) -> impl Iterator<Item = &CustodyPolicy> {
        self.custody.policies.values()
    }

    pub fn top_ups(&self) -> &[TopUp] {
        &self.custody.top_ups
    }

    /// Hot and cold holdings of an asset, in minor units.
    pub fn wallet_holdings(&self, asset: AssetCode) -> (i128, i128) {
        (holdings(self, asset, Purpose::Custody), holdings(self, asset, Purpose::ColdCustody))
    }

    pub(super) fn assign_deposit_address(
        &mut self,
        at: TimestampMs,
        client_id: &ClientId,
        asset: AssetCode,
    ) -> Result<Executed, CommandError> {
        self.clients.get(client_id).ok_or_else(|| CommandError::not_found("client"))?;
        if let Some(existing) = self.custody.addresses.get(&(client_id.clone(), asset)) {
            return Ok(Executed { outcome: Outcome::DepositAddress(existing.clone()), changed: false });
        }
        let network = *address::networks_for_asset(asset.as_str())
            .first()
            .filter(|network| **network != Network::Iban)
            .ok_or_else(|| CommandError::invalid("asset", "has no deposit address (fiat arrives by bank transfer)"))?;
        if self.custody.addresses.len() >= DEPOSIT_ADDRESSES_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of deposit addresses"));
        }
        let seed = format!("{client_id}/{asset}");
        let derived = address::derive_deposit_address(network, seed.as_bytes())
            .ok_or_else(|| CommandError::invalid("asset", "has no deposit address"))?;
        let assigned =
            DepositAddress { client_id: client_id.clone(), asset, network, address: derived.clone(), created_at: at };
        self.custody.owners.insert(derived, (client_id.clone(), asset));
        self.custody.addresses.insert((client_id.clone(), asset), assigned.clone());
        Ok(Executed::changed(Outcome::DepositAddress(assigned)))
    }

    /// The custodian saw a transaction to a deposit address (again, with more confirmations).
    pub(super) fn observe_deposit(
        &mut self,
        at: TimestampMs,
        seen: &DepositObservation,
    ) -> Result<Executed, CommandError> {
        if seen.transaction_id.is_empty() || seen.transaction_id.len() > TRANSACTION_ID_BYTES_MAX || seen.amount <= 0 {
            return Err(CommandError::invalid(
                "transaction_id",
                "a transaction id of 1 to 128 bytes and a positive amount",
            ));
        }
        let (client_id, asset) = self
            .custody
            .owners
            .get(&seen.address)
            .cloned()
            .ok_or_else(|| CommandError::not_found("deposit address"))?;
        if asset != seen.asset {
            return Err(CommandError::invalid("asset", "the address is for another asset"));
        }
        let mut deposit = match self.custody.deposits.get(&seen.transaction_id) {
            Some(known) if known.amount != seen.amount || known.address != seen.address => {
                return Err(CommandError::conflict("this transaction id was reported with another amount or address"));
            }
            Some(known)
                if known.status == ChainDepositStatus::Credited || seen.confirmations <= known.confirmations =>
            {
                return Ok(Executed { outcome: Outcome::ChainDeposit(known.clone()), changed: false });
            }
            Some(known) => known.clone(),
            None if self.custody.deposits.len() >= OBSERVED_DEPOSITS_MAX => {
                return Err(CommandError::conflict("the desk holds the maximum number of observed deposits"));
            }
            None => ChainDeposit {
                transaction_id: seen.transaction_id.clone(),
                client_id: client_id.clone(),
                asset,
                address: seen.address.clone(),
                amount: seen.amount,
                confirmations: 0,
                confirmations_required: confirmations_required(asset),
                status: ChainDepositStatus::Confirming,
                seen_at: at,
                credited_at: None,
            },
        };
        deposit.confirmations = seen.confirmations;
        if deposit.confirmations >= deposit.confirmations_required {
            self.credit_chain_deposit(at, &deposit)?;
            deposit.status = ChainDepositStatus::Credited;
            deposit.credited_at = Some(at);
        }
        self.custody.deposits.insert(deposit.transaction_id.clone(), deposit.clone());
        if deposit.status == ChainDepositStatus::Credited {
            self.apply_custody_policy(at, asset)?;
        }
        Ok(Executed::changed(Outcome::ChainDeposit(deposit)))
    }

    fn credit_chain_deposit(&mut self, at: TimestampMs, deposit: &ChainDeposit) -> Result<(), CommandError> {
        let client = self.clients.get(&deposit.client_id).ok_or_else(|| CommandError::not_found("client"))?;
        let floor = super::available_floor(client.settlement);
        let owner = Owner::Client(deposit.client_id.clone());
        let available =
            self.ledger.open_account(AccountKey { owner, asset: deposit.asset, purpose: Purpose::Available }, floor);
        let hot = self
            .ledger
            .open_account(AccountKey { owner: Owner::Desk, asset: deposit.asset, purpose: Purpose::Custody }, None);
        let postings =
            [Posting { account: hot, amount: -deposit.amount }, Posting { account: available, amount: deposit.amount }];
        let kind = TransactionKind::Deposit { reference: deposit.transaction_id.clone() };
        self.ledger.apply(at, kind, &postings)?;
        Ok(())
    }

    pub(super) fn put_custody_policy(
        &mut self,
        at: TimestampMs,
        policy: &CustodyPolicy,
    ) -> Result<Executed, CommandError> {
        let kind = self.catalog().and_then(|catalog| catalog.asset(&policy.asset)).map(|asset| asset.kind);
        if kind != Some(crate::catalog::AssetKind::Crypto) {
            return Err(CommandError::invalid("asset", "custody policies apply to crypto assets"));
        }
        if !(0 <= policy.hot_min && policy.hot_min <= policy.hot_target && policy.hot_target <= policy.hot_max) {
            return Err(CommandError::invalid("hot_min", "needs 0 ≤ hot_min ≤ hot_target ≤ hot_max"));
        }
        self.custody.policies.insert(policy.asset, policy.clone());
        self.apply_custody_policy(at, policy.asset)?;
        Ok(Executed::changed(Outcome::CustodyPolicy(policy.clone())))
    }

    /// The hot wallet's level as the policy sees it: holdings less the withdrawals in flight (pending or
    /// submitted), which will leave it.
    pub fn hot_level(&self, asset: AssetCode) -> i128 {
        let (hot, _) = self.wallet_holdings(asset);
        hot - self.withdrawals_outflow(asset, WithdrawalStatus::Pending)
            - self.withdrawals_outflow(asset, WithdrawalStatus::Submitted)
    }

    /// Sweeps excess hot holdings to cold at once; asks for a top-up from cold when hot runs low. Both look at
    /// the level net of withdrawals in flight, so a sweep never takes what a payout needs and a large withdrawal
    /// raises its top-up request as soon as it is made.
    pub(super) fn apply_custody_policy(&mut self, at: TimestampMs, asset: AssetCode) -> Result<(), CommandError> {
        let Some(policy) = self.custody.policies.get(&asset).cloned() else { return Ok(()) };
        let level = self.hot_level(asset);
        if level > policy.hot_max {
            self.move_between_wallets(at, asset, level - policy.hot_target, Purpose::Custody, "sweep to cold")?;
        } else if level < policy.hot_min && !self.top_up_waiting(asset) {
            let top_up = TopUp {
                top_up_id: format!("tu_{:08}", self.custody.top_ups.len() + 1),
                asset,
                amount: policy.hot_target - level,
                status: TopUpStatus::AwaitingApproval,
                requested_at: at,
                approved_by: None,
                approved_at: None,
            };
            self.custody.awaiting_top_ups.insert(asset, self.custody.top_ups.len());
            self.custody.top_ups.push(top_up);
        }
        Ok(())
    }

    fn top_up_waiting(&self, asset: AssetCode) -> bool {
        debug_assert_eq!(
            self.custody.awaiting_top_ups.contains_key(&asset),
            self.custody.top_ups.iter().any(|each| each.asset == asset && each.status == TopUpStatus::AwaitingApproval),
            "the index follows every top-up"
        );
        self.custody.awaiting_top_ups.contains_key(&asset)
    }

    /// Moves holdings from the wallet `from` (hot `Custody` or `ColdCustody`) to the other one.
    fn move_between_wallets(
        &mut self,
        at: TimestampMs,
        asset: AssetCode,
        amount: i128,
        from: Purpose,
        reference: &str,
    ) -> Result<(), CommandError> {
        let to = if from == Purpose::Custody { Purpose::ColdCustody } else { Purpose::Custody };
        let source = self.ledger.open_account(AccountKey { owner: Owner::Desk, asset, purpose: from }, None);
        let target = self.ledger.open_account(AccountKey { owner: Owner::Desk, asset, purpose: to }, None);
        // Holdings are negated balances: holdings leave `from` (its balance rises) and reach `to`.
        let postings = [Posting { account: source, amount }, Posting { account: target, amount: -amount }];
        self.ledger.apply(at, TransactionKind::Transfer { reference: reference.to_owned() }, &postings)?;
        Ok(())
    }

    /// An operator approves a top-up from cold: refused when cold holds less than the amount.
    pub(super) fn approve_top_up(
        &mut self,
        at: TimestampMs,
        by: Option<String>,
        top_up_id: &str,
    ) -> Result<Executed, CommandError> {
        let position = top_up_position(top_up_id)
            .filter(|position| self.custody.top_ups.get(*position).is_some_and(|each| each.top_up_id == top_up_id))
            .ok_or_else(|| CommandError::not_found("top-up"))?;
        let top_up = self.custody.top_ups[position].clone();
        if top_up.status != TopUpStatus::AwaitingApproval {
            return Err(CommandError::conflict("the top-up is already completed"));
        }
        let (_, cold) = self.wallet_holdings(top_up.asset);
        if cold < top_up.amount {
            return Err(CommandError::InsufficientFunds {
                detail: format!("the cold wallet holds less {} than the top-up", top_up.asset),
            });
        }
        self.move_between_wallets(at, top_up.asset, top_up.amount, Purpose::ColdCustody, &top_up.top_up_id)?;
        let stored = &mut self.custody.top_ups[position];
        stored.status = TopUpStatus::Completed;
        stored.approved_by = by;
        stored.approved_at = Some(at);
        self.custody.awaiting_top_ups.remove(&stored.asset);
        Ok(Executed::changed(Outcome::TopUp(stored.clone())))
    }
}
