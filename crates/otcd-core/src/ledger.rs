//! The double-entry ledger.
//!
//! Every movement of value is a transaction: a set of postings that sum to zero per asset, applied atomically
//! (all or nothing). Balances are signed integers in the asset's minor units, credit-positive: a client's
//! available balance is positive (the desk owes it), the desk's custody and bank accounts are negative (value the
//! desk holds), the desk's inventory is positive when the desk is long. Postings are immutable; a mistake is
//! corrected by a reversal transaction. Reservations are two-phase transfers: a pending transfer moves funds
//! from a client's available account to its reserved account, and is later posted (to its destination) or
//! voided (back to available).
//!
//! Invariants (checked by [`Ledger::check_invariants`], asserted after every command in debug builds and tests):
//! 1. the sum of all balances of each asset is zero;
//! 2. no account is below its floor (prefunded clients' available and every reserved account: floor 0);
//! 3. each reserved account's balance equals the sum of its open pending transfers.

use crate::catalog::AssetCode;
use crate::chunked_vec::{self, ChunkedVec};
use crate::ids::ClientId;
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Postings in one transaction. Trades need four (two legs) plus fee legs; nothing legitimate needs more.
pub const TRANSACTION_POSTINGS_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransactionId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PendingId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Desk,
    Client(ClientId),
    /// A trading venue where the desk holds inventory (hedging): its accounts say what the desk holds there.
    Venue(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A client's spendable funds.
    Available,
    /// A client's funds held by open pending transfers (resting orders, withdrawals in flight).
    Reserved,
    /// The desk's own trading position.
    Inventory,
    /// Crypto the desk holds at its custodian, in the hot wallet.
    Custody,
    /// Crypto the desk holds in the custodian's cold wallet.
    ColdCustody,
    /// Fiat the desk holds at its bank.
    Bank,
    /// Fee revenue.
    Fees,
    /// Unidentified or unreconciled value awaiting an operator.
    Suspense,
    /// What the desk holds at a venue (`Owner::Venue`): negative when it holds value there, like custody.
    Venue,
    /// Fees the desk paid to venues on hedge fills (an expense: negative).
    VenueFees,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountKey {
    pub owner: Owner,
    pub asset: AssetCode,
    pub purpose: Purpose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub key: AccountKey,
    pub balance: i128,
    /// Lowest balance allowed; `None` = unbounded (desk accounts, credit clients).
    pub floor: Option<i128>,
}

/// One side of a transaction: `amount` is added to the account's balance (credit-positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: AccountId,
    pub amount: i128,
}

/// Why a transaction happened; kept with it for statements and audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TransactionKind {
    Deposit {
        reference: String,
    },
    Withdrawal {
        reference: String,
    },
    Trade {
        reference: String,
    },
    Fee {
        reference: String,
    },
    Reservation {
        pending: PendingId,
        reference: String,
    },
    ReservationPosted {
        pending: PendingId,
        reference: String,
    },
    ReservationReleased {
        pending: PendingId,
        reference: String,
    },
    Reversal {
        of: TransactionId,
    },
    Funding {
        reference: String,
    },
    /// A net settlement instruction of a credit client completed.
    Settlement {
        reference: String,
    },
    /// Holdings moved between the desk's own wallets (sweeps to cold, top-ups from cold).
    Transfer {
        reference: String,
    },
    /// A venue filled a hedge's child order (reference: its client order id).
    VenueFill {
        reference: String,
    },
}

impl TransactionKind {
    /// A stable name for statements and exports, and the reference the transaction carries.
    pub fn label(&self) -> (&'static str, String) {
        match self {
            TransactionKind::Deposit { reference } => ("deposit", reference.clone()),
            TransactionKind::Withdrawal { reference } => ("withdrawal", reference.clone()),
            TransactionKind::Trade { reference } => ("trade", reference.clone()),
            TransactionKind::Fee { reference } => ("fee", reference.clone()),
            TransactionKind::Reservation { reference, .. } => ("reservation", reference.clone()),
            TransactionKind::ReservationPosted { reference, .. } => ("reservation_posted", reference.clone()),
            TransactionKind::ReservationReleased { reference, .. } => ("reservation_released", reference.clone()),
            TransactionKind::Reversal { of } => ("reversal", of.0.to_string()),
            TransactionKind::Funding { reference } => ("funding", reference.clone()),
            TransactionKind::Settlement { reference } => ("settlement", reference.clone()),
            TransactionKind::Transfer { reference } => ("transfer", reference.clone()),
            TransactionKind::VenueFill { reference } => ("venue_fill", reference.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: TransactionId,
    pub at: TimestampMs,
    pub kind: TransactionKind,
    /// Index of its first entry in the ledger's entry list; its entries are contiguous.
    pub first_entry: u64,
    pub entry_count: u8,
    pub reversed_by: Option<TransactionId>,
}

/// A posting as recorded: with the balance it left behind, for statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub transaction: TransactionId,
    pub account: AccountId,
    pub amount: i128,
    pub balance_after: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransfer {
    pub id: PendingId,
    pub asset: AssetCode,
    pub available: AccountId,
    pub reserved: AccountId,
    /// Still reserved; decreases as parts are posted.
    pub remaining: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a transaction needs 1 to {TRANSACTION_POSTINGS_MAX} postings, got {0}")]
    PostingCount(usize),
    #[error("posting amounts must not be zero")]
    ZeroAmount,
    #[error("account {0:?} does not exist")]
    UnknownAccount(AccountId),
    #[error("postings of {0} do not balance")]
    Unbalanced(AssetCode),
    #[error("arithmetic overflow")]
    Overflow,
    #[error("account {account:?} would fall to {balance_after}, below its floor {floor}")]
    BelowFloor { account: AccountId, balance_after: i128, floor: i128 },
    #[error("pending transfer {0:?} does not exist")]
    UnknownPending(PendingId),
    #[error("amount {amount} exceeds the {remaining} still pending")]
    ExceedsPending { amount: i128, remaining: i128 },
    #[error("accounts of a pending transfer must hold the same asset")]
    AssetMismatch,
    #[error("transaction {0:?} does not exist")]
    UnknownTransaction(TransactionId),
    #[error("transaction {0:?} was already reversed")]
    AlreadyReversed(TransactionId),
    #[error("invariant broken: {0}")]
    Invariant(String),
    #[error("amounts must be greater than zero")]
    NotPositive,
    #[error("reserved accounts move only through reserve, post and void")]
    ReservedAccount,
    #[error("a reservation needs an available and a reserved account")]
    WrongAccounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    accounts: Vec<Account>,
    /// The ledger's history grows for the desk's lifetime: chunked so that growing it never stalls the engine.
    transactions: ChunkedVec<Transaction>,
    entries: ChunkedVec<Entry>,
    pending: BTreeMap<PendingId, PendingTransfer>,
    next_pending: u64,
    /// Derived from `accounts`/`entries`; rebuilt by [`Ledger::rebuild_indexes`] after loading a snapshot.
    #[serde(skip)]
    index: HashMap<AccountKey, AccountId>,
    #[serde(skip)]
    entries_by_account: Vec<ChunkedVec<u64>>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the derived lookup tables; call after deserializing.
    pub fn rebuild_indexes(&mut self) {
        self.index = self
            .accounts
            .iter()
            .enumerate()
            .map(|(position, account)| (account.key.clone(), account_id(position)))
            .collect();
        self.entries_by_account = vec![ChunkedVec::new(); self.accounts.len()];
        for (position, entry) in self.entries.iter().enumerate() {
            self.entries_by_account[entry.account.0 as usize].push(position as u64);
        }
    }

    pub fn account_id(&self, key: &AccountKey) -> Option<AccountId> {
        self.index.get(key).copied()
    }

    /// Returns the account for `key`, opening it with `floor` if it does not exist yet.
    pub fn open_account(&mut self, key: AccountKey, floor: Option<i128>) -> AccountId {
        if let Some(id) = self.index.get(&key) {
            return *id;
        }
        let id = account_id(self.accounts.len());
        self.index.insert(key.clone(), id);
        self.accounts.push(Account { key, balance: 0, floor });
        self.entries_by_account.push(ChunkedVec::new());
        id
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(id.0 as usize)
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn balance(&self, id: AccountId) -> i128 {
        self.account(id).map_or(0, |account| account.balance)
    }

    /// Changes an account's floor; refused when the current balance is already below the new floor.
    pub fn set_floor(&mut self, id: AccountId, floor: Option<i128>) -> Result<(), LedgerError> {
        let account = self.accounts.get_mut(id.0 as usize).ok_or(LedgerError::UnknownAccount(id))?;
        if let Some(floor) = floor {
            if account.balance < floor {
                return Err(LedgerError::BelowFloor { account: id, balance_after: account.balance, floor });
            }
        }
        account.floor = floor;
        Ok(())
    }

    pub fn transactions(&self) -> &ChunkedVec<Transaction> {
        &self.transactions
    }

    pub fn transaction(&self, id: TransactionId) -> Option<&Transaction> {
        // Transaction ids are dense and start at 1.
        self.transactions.get((id.0 as usize).wrapping_sub(1))
    }

    pub fn entries_of(&self, transaction: &Transaction) -> chunked_vec::Iter<'_, Entry> {
        let first = transaction.first_entry as usize;
        self.entries.range(first..first + usize::from(transaction.entry_count))
    }

    /// Positions (in entry order) of an account's entries.
    pub fn entry_positions(&self, id: AccountId) -> &ChunkedVec<u64> {
        static NONE: ChunkedVec<u64> = ChunkedVec::new();
        self.entries_by_account.get(id.0 as usize).unwrap_or(&NONE)
    }

    pub fn entry(&self, position: u64) -> Option<&Entry> {
        self.entries.get(position as usize)
    }

    /// How many entries the ledger holds, i.e. the position the next entry will take. Taken before a command
    /// (an event mark keeps it), it tells which entries that command appended, so the balances it changed are
    /// found from its own few entries instead of by comparing every account.
    pub fn entry_count(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The entries from `position` (an earlier [`Ledger::entry_count`]) to the end, in posting order: what the
    /// commands since then appended. Empty when `position` is at or past the end, so a stale or foreign
    /// position can never panic.
    pub fn entries_since(&self, position: u64) -> chunked_vec::Iter<'_, Entry> {
        let end = self.entries.len();
        let start = usize::try_from(position).map_or(end, |position| position.min(end));
        self.entries.range(start..end)
    }

    pub fn pending(&self, id: PendingId) -> Option<&PendingTransfer> {
        self.pending.get(&id)
    }

    pub fn pending_transfers(&self) -> impl Iterator<Item = &PendingTransfer> {
        self.pending.values()
    }

    /// Applies a balanced set of postings atomically: either every posting lands or nothing changes. Reserved
    /// accounts are refused here: only the two-phase operations may move them (invariant 3).
    pub fn apply(
        &mut self,
        at: TimestampMs,
        kind: TransactionKind,
        postings: &[Posting],
    ) -> Result<TransactionId, LedgerError> {
        if postings.iter().any(|posting| self.purpose_of(posting.account) == Some(Purpose::Reserved)) {
            return Err(LedgerError::ReservedAccount);
        }
        self.apply_postings(at, kind, postings)
    }

    fn purpose_of(&self, id: AccountId) -> Option<Purpose> {
        self.account(id).map(|account| account.key.purpose)
    }

    fn apply_postings(
        &mut self,
        at: TimestampMs,
        kind: TransactionKind,
        postings: &[Posting],
    ) -> Result<TransactionId, LedgerError> {
        let balances_after = self.validate(postings)?;
        let id = TransactionId(self.transactions.len() as u64 + 1);
        let first_entry = self.entries.len() as u64;
        for posting in postings {
            let account = &mut self.accounts[posting.account.0 as usize];
            account.balance += posting.amount; // Checked in `validate`.
            self.entries_by_account[posting.account.0 as usize].push(self.entries.len() as u64);
            self.entries.push(Entry {
                transaction: id,
                account: posting.account,
                amount: posting.amount,
                balance_after: account.balance,
            });
        }
        debug_assert!(balances_after
            .iter()
            .all(|(account, balance)| self.accounts[account.0 as usize].balance == *balance));
        self.transactions.push(Transaction {
            id,
            at,
            kind,
            first_entry,
            entry_count: postings.len() as u8,
            reversed_by: None,
        });
        Ok(id)
    }

    /// Checks postings without changing anything; returns each touched account's balance after the transaction.
    fn validate(&self, postings: &[Posting]) -> Result<Vec<(AccountId, i128)>, LedgerError> {
        if postings.is_empty() || postings.len() > TRANSACTION_POSTINGS_MAX {
            return Err(LedgerError::PostingCount(postings.len()));
        }
        let mut sums: Vec<(AssetCode, i128)> = Vec::with_capacity(2);
        let mut balances_after: Vec<(AccountId, i128)> = Vec::with_capacity(postings.len());
        for posting in postings {
            if posting.amount == 0 {
                return Err(LedgerError::ZeroAmount);
            }
            let account = self.account(posting.account).ok_or(LedgerError::UnknownAccount(posting.account))?;
            accumulate(&mut sums, account.key.asset, posting.amount)?;
            let start = account.balance;
            let slot = match balances_after.iter_mut().find(|(id, _)| *id == posting.account) {
                Some(slot) => slot,
                None => {
                    balances_after.push((posting.account, start));
                    balances_after.last_mut().expect("just pushed")
                }
            };
            slot.1 = slot.1.checked_add(posting.amount).ok_or(LedgerError::Overflow)?;
        }
        if let Some((asset, _)) = sums.iter().find(|(_, sum)| *sum != 0) {
            return Err(LedgerError::Unbalanced(*asset));
        }
        for (id, balance_after) in &balances_after {
            if let Some(floor) = self.accounts[id.0 as usize].floor {
                if *balance_after < floor {
                    return Err(LedgerError::BelowFloor { account: *id, balance_after: *balance_after, floor });
                }
            }
        }
        Ok(balances_after)
    }

    /// Phase one of a two-phase transfer: moves `amount` from `available` to `reserved` and records it as pending.
    pub fn reserve(
        &mut self,
        at: TimestampMs,
        available: AccountId,
        reserved: AccountId,
        amount: i128,
        reference: &str,
    ) -> Result<PendingId, LedgerError> {
        check_positive(amount)?;
        let purposes = (self.purpose_of(available), self.purpose_of(reserved));
        if purposes != (Some(Purpose::Available), Some(Purpose::Reserved)) {
            return Err(LedgerError::WrongAccounts);
        }
        let asset = self.same_asset(available, reserved)?;
        let pending = PendingId(self.next_pending + 1);
        let postings = [
            Posting { account: available, amount: amount.checked_neg().ok_or(LedgerError::Overflow)? },
            Posting { account: reserved, amount },
        ];
        self.apply_postings(at, TransactionKind::Reservation { pending, reference: reference.to_owned() }, &postings)?;
        self.next_pending = pending.0;
        self.pending.insert(pending, PendingTransfer { id: pending, asset, available, reserved, remaining: amount });
        Ok(pending)
    }

    /// Phase two: moves `amount` (all or part of what is still pending) from the reserved account to `destination`.
    pub fn post_pending(
        &mut self,
        at: TimestampMs,
        id: PendingId,
        amount: i128,
        destination: AccountId,
        reference: &str,
    ) -> Result<TransactionId, LedgerError> {
        let pending = self.pending.get(&id).ok_or(LedgerError::UnknownPending(id))?.clone();
        check_positive(amount)?;
        if self.purpose_of(destination) == Some(Purpose::Reserved) {
            return Err(LedgerError::ReservedAccount);
        }
        if amount > pending.remaining {
            return Err(LedgerError::ExceedsPending { amount, remaining: pending.remaining });
        }
        self.same_asset(pending.reserved, destination)?;
        let postings =
            [Posting { account: pending.reserved, amount: -amount }, Posting { account: destination, amount }];
        let transaction = self.apply_postings(
            at,
            TransactionKind::ReservationPosted { pending: id, reference: reference.to_owned() },
            &postings,
        )?;
        self.shrink_pending(id, amount);
        Ok(transaction)
    }

    /// Phase two as part of a larger transaction: takes `amount` (all or part of what is still pending) out of the
    /// reserved account, together with `others` (the rest of the trade: the other leg, any top-up from the
    /// available account), all in ONE balanced transaction, so a fill from a reservation is atomic.
    pub fn settle_pending(
        &mut self,
        at: TimestampMs,
        id: PendingId,
        amount: i128,
        others: &[Posting],
        kind: TransactionKind,
    ) -> Result<TransactionId, LedgerError> {
        let pending = self.pending.get(&id).ok_or(LedgerError::UnknownPending(id))?.clone();
        check_positive(amount)?;
        if amount > pending.remaining {
            return Err(LedgerError::ExceedsPending { amount, remaining: pending.remaining });
        }
        if others.iter().any(|posting| posting.account == pending.reserved) {
            return Err(LedgerError::ReservedAccount);
        }
        if others.iter().any(|posting| self.purpose_of(posting.account) == Some(Purpose::Reserved)) {
            return Err(LedgerError::ReservedAccount);
        }
        let mut postings = Vec::with_capacity(others.len() + 1);
        postings.push(Posting { account: pending.reserved, amount: -amount });
        postings.extend_from_slice(others);
        let transaction = self.apply_postings(at, kind, &postings)?;
        self.shrink_pending(id, amount);
        Ok(transaction)
    }

    /// Phase two, the other way: returns whatever is still pending to the available account.
    pub fn void_pending(
        &mut self,
        at: TimestampMs,
        id: PendingId,
        reference: &str,
    ) -> Result<TransactionId, LedgerError> {
        let pending = self.pending.get(&id).ok_or(LedgerError::UnknownPending(id))?.clone();
        let postings = [
            Posting { account: pending.reserved, amount: -pending.remaining },
            Posting { account: pending.available, amount: pending.remaining },
        ];
        let transaction = self.apply_postings(
            at,
            TransactionKind::ReservationReleased { pending: id, reference: reference.to_owned() },
            &postings,
        )?;
        self.shrink_pending(id, pending.remaining);
        Ok(transaction)
    }

    fn shrink_pending(&mut self, id: PendingId, amount: i128) {
        let pending = self.pending.get_mut(&id).expect("checked by the caller");
        pending.remaining -= amount;
        assert!(pending.remaining >= 0, "pending transfer went negative");
        if pending.remaining == 0 {
            self.pending.remove(&id);
        }
    }

    /// Corrects a transaction by posting its exact opposite; the original stays as it was.
    pub fn reverse(&mut self, at: TimestampMs, id: TransactionId) -> Result<TransactionId, LedgerError> {
        let original = self.transaction(id).ok_or(LedgerError::UnknownTransaction(id))?;
        if original.reversed_by.is_some() {
            return Err(LedgerError::AlreadyReversed(id));
        }
        if matches!(
            original.kind,
            TransactionKind::Reservation { .. }
                | TransactionKind::ReservationPosted { .. }
                | TransactionKind::ReservationReleased { .. }
        ) {
            // Reversing half of a two-phase transfer would break invariant 3; void or post the pending transfer instead.
            return Err(LedgerError::Invariant(
                "reservation transactions are settled by post or void, not reversed".into(),
            ));
        }
        let postings: Vec<Posting> =
            self.entries_of(original).map(|entry| Posting { account: entry.account, amount: -entry.amount }).collect();
        let reversal = self.apply(at, TransactionKind::Reversal { of: id }, &postings)?;
        self.transactions[(id.0 - 1) as usize].reversed_by = Some(reversal);
        Ok(reversal)
    }

    fn same_asset(&self, first: AccountId, second: AccountId) -> Result<AssetCode, LedgerError> {
        let first = self.account(first).ok_or(LedgerError::UnknownAccount(first))?;
        let second = self.account(second).ok_or(LedgerError::UnknownAccount(second))?;
        if first.key.asset != second.key.asset {
            return Err(LedgerError::AssetMismatch);
        }
        Ok(first.key.asset)
    }

    /// Checks every ledger invariant over the whole ledger. O(accounts + pending); used after every command in
    /// debug builds and tests, and after recovery.
    pub fn check_invariants(&self) -> Result<(), LedgerError> {
        let mut sums: Vec<(AssetCode, i128)> = Vec::new();
        let mut reserved_expected: HashMap<AccountId, i128> = HashMap::new();
        for pending in self.pending.values() {
            if pending.remaining <= 0 {
                return Err(LedgerError::Invariant(format!(
                    "pending {:?} has remaining {}",
                    pending.id, pending.remaining
                )));
            }
            *reserved_expected.entry(pending.reserved).or_default() += pending.remaining;
        }
        for (position, account) in self.accounts.iter().enumerate() {
            // Wrapping: a partial sum may pass i128::MAX while the total is exactly zero (modular arithmetic
            // gives the right total; a true sum off by a multiple of 2^128 is impossible with real balances).
            accumulate_wrapping(&mut sums, account.key.asset, account.balance);
            if account.floor.is_some_and(|floor| account.balance < floor) {
                return Err(LedgerError::Invariant(format!("{:?} is below its floor", account.key)));
            }
            if account.key.purpose == Purpose::Reserved {
                let expected = reserved_expected.get(&account_id(position)).copied().unwrap_or(0);
                if account.balance != expected {
                    return Err(LedgerError::Invariant(format!(
                        "{:?} holds {} but its pending transfers hold {expected}",
                        account.key, account.balance
                    )));
                }
            }
        }
        match sums.iter().find(|(_, sum)| *sum != 0) {
            Some((asset, sum)) => Err(LedgerError::Invariant(format!("{asset} sums to {sum}, not zero"))),
            None => Ok(()),
        }
    }
}

fn account_id(position: usize) -> AccountId {
    AccountId(u32::try_from(position).expect("fewer than 2^32 accounts"))
}

fn check_positive(amount: i128) -> Result<(), LedgerError> {
    match amount {
        0 => Err(LedgerError::ZeroAmount),
        amount if amount < 0 => Err(LedgerError::NotPositive),
        _ => Ok(()),
    }
}

fn accumulate_wrapping(sums: &mut Vec<(AssetCode, i128)>, asset: AssetCode, amount: i128) {
    match sums.iter_mut().find(|(code, _)| *code == asset) {
        Some((_, sum)) => *sum = sum.wrapping_add(amount),
        None => sums.push((asset, amount)),
    }
}

fn accumulate(sums: &mut Vec<(AssetCode, i128)>, asset: AssetCode, amount: i128) -> Result<(), LedgerError> {
    match sums.iter_mut().find(|(code, _)| *code == asset) {
        Some((_, sum)) => *sum = sum.checked_add(amount).ok_or(LedgerError::Overflow)?,
        None => sums.push((asset, amount)),
    }
    Ok(())
}
