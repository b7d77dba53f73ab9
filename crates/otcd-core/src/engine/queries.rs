//! Read-only views of the desk's state. Queries never change anything and are answered in sequence with
//! commands, so a read sees every command acknowledged before it.

use super::model::{ApiKey, Client, Tier};
use super::Desk;
use crate::catalog::AssetCode;
use crate::ids::{ClientId, KeyId, TierName};
use crate::ledger::{AccountKey, Owner, Purpose, TransactionId, TransactionKind};
use crate::time::TimestampMs;

/// Largest page any list returns.
pub const PAGE_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceLine {
    pub asset: AssetCode,
    pub scale: u8,
    pub available: i128,
    pub reserved: i128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerQuery {
    pub asset: Option<AssetCode>,
    pub from: Option<TimestampMs>,
    /// Exclusive upper bound.
    pub to: Option<TimestampMs>,
    /// Cursor: only entries after this position.
    pub after: Option<u64>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    pub position: u64,
    pub transaction: TransactionId,
    pub at: TimestampMs,
    pub kind: TransactionKind,
    pub asset: AssetCode,
    pub scale: u8,
    pub purpose: Purpose,
    pub amount: i128,
    pub balance_after: i128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<u64>,
}

impl Desk {
    pub fn client(&self, client_id: &ClientId) -> Option<&Client> {
        self.clients.get(client_id)
    }

    pub fn clients(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    pub fn key(&self, key_id: &KeyId) -> Option<&ApiKey> {
        self.keys.get(key_id)
    }

    pub fn keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.values()
    }

    pub fn tier(&self, name: &TierName) -> Option<&Tier> {
        self.tiers.get(name)
    }

    pub fn tiers(&self) -> impl Iterator<Item = &Tier> {
        self.tiers.values()
    }

    /// A deposit by its id (`dep_0000000001`: the position is in the id, so this is a lookup, not a scan).
    pub fn deposit_by_id(&self, deposit_id: &str) -> Option<&super::model::Deposit> {
        let number: usize = deposit_id.strip_prefix("dep_")?.parse().ok()?;
        self.deposits.get(number.checked_sub(1)?).filter(|deposit| deposit.deposit_id == deposit_id)
    }

    /// A funding of the desk's inventory by its id (`fund_00000001`).
    pub fn funding(&self, funding_id: &str) -> Option<&super::model::DeskFunding> {
        let number: usize = funding_id.strip_prefix("fund_")?.parse().ok()?;
        self.fundings.get(number.checked_sub(1)?).filter(|funding| funding.funding_id == funding_id)
    }

    /// Every catalog asset's available and reserved balance for a client, zeros included.
    pub fn balances(&self, client_id: &ClientId) -> Vec<BalanceLine> {
        let Some(catalog) = self.catalog() else { return Vec::new() };
        let owner = Owner::Client(client_id.clone());
        let balance = |asset: AssetCode, purpose: Purpose| {
            self.ledger
                .account_id(&AccountKey { owner: owner.clone(), asset, purpose })
                .map_or(0, |account| self.ledger.balance(account))
        };
        catalog
            .assets()
            .iter()
            .map(|asset| BalanceLine {
                asset: asset.code,
                scale: asset.scale,
                available: balance(asset.code, Purpose::Available),
                reserved: balance(asset.code, Purpose::Reserved),
            })
            .collect()
    }

    /// A client's ledger entries (available and reserved accounts) in the order they were posted.
    pub fn ledger_lines(&self, client_id: &ClientId, query: &LedgerQuery) -> Page<LedgerLine> {
        let Some(catalog) = self.catalog() else { return Page { items: Vec::new(), next_cursor: None } };
        let limit = query.limit.clamp(1, PAGE_LIMIT_MAX);
        let owner = Owner::Client(client_id.clone());
        let mut positions: Vec<u64> = Vec::new();
        for asset in catalog.assets().iter().filter(|asset| query.asset.is_none_or(|wanted| wanted == asset.code)) {
            for purpose in [Purpose::Available, Purpose::Reserved] {
                let key = AccountKey { owner: owner.clone(), asset: asset.code, purpose };
                if let Some(account) = self.ledger.account_id(&key) {
                    positions.extend(self.account_positions(account, query, limit + 1));
                }
            }
        }
        positions.sort_unstable();
        let more = positions.len() > limit;
        positions.truncate(limit);
        let items: Vec<LedgerLine> = positions.iter().filter_map(|position| self.ledger_line(*position)).collect();
        let next_cursor = if more { items.last().map(|line| line.position) } else { None };
        Page { items, next_cursor }
    }

    /// Up to `take` positions of one account matching the query. Entries are in time order (the engine's clock
    /// never goes backwards), so both bounds are found by binary search.
    fn account_positions(&self, account: crate::ledger::AccountId, query: &LedgerQuery, take: usize) -> Vec<u64> {
        let positions = self.ledger.entry_positions(account);
        let time_of = |position: u64| {
            let entry = self.ledger.entry(position).expect("indexed entry exists");
            self.ledger.transaction(entry.transaction).expect("entry's transaction exists").at
        };
        let start_after = query.after.map_or(0, |after| positions.partition_point(|position| *position <= after));
        let start_time = query.from.map_or(0, |from| positions.partition_point(|position| time_of(*position) < from));
        let start = start_after.max(start_time);
        positions
            .range(start..positions.len())
            .copied()
            .take_while(|position| query.to.is_none_or(|to| time_of(*position) < to))
            .take(take)
            .collect()
    }

    fn ledger_line(&self, position: u64) -> Option<LedgerLine> {
        let entry = self.ledger.entry(position)?;
        let transaction = self.ledger.transaction(entry.transaction)?;
        let account = self.ledger.account(entry.account)?;
        let scale = self.catalog()?.asset(&account.key.asset)?.scale;
        Some(LedgerLine {
            position,
            transaction: entry.transaction,
            at: transaction.at,
            kind: transaction.kind.clone(),
            asset: account.key.asset,
            scale,
            purpose: account.key.purpose,
            amount: entry.amount,
            balance_after: entry.balance_after,
        })
    }
}
