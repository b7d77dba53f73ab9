//! Domain events: the client-visible changes of one executed record, derived once and deterministically.
//!
//! The runner publishes them after the journal sync, in seq order (stream, webhooks, FIX drop copy, an external
//! event stream). They are derived from the desk's state after the command and from what the command appended
//! (trades, ledger entries, alerts), never from wall clocks or hash-map iteration order, so re-executing the
//! journal reproduces exactly the same events. `Desk::execute` derives none: recovery and replay must not pay
//! for them. Callers that publish use [`Desk::execute_with_events`], or take an [`EventMark`] before
//! `execute` and call [`Desk::events_since`] after it.
//!
//! What one changed record gives, in this order:
//! 1. an [`OrderEvent`] for every order the outcome names and every order a new trade belongs to, once each, as
//!    stored after the command, with all of its trades. The trades' orders are needed as well as the outcome's:
//!    a market tick drops the error of a fill (`fill_resting_orders`), and one raised after the fill's trade was
//!    recorded (releasing the rest of the reservation) leaves an order changed that the outcome does not name;
//! 2. a `Trade` for each trade the command appended, in order;
//! 3. the `Withdrawal` the outcome names (requests and settlement steps are the only commands that change one);
//! 4. the `Instruction`s the outcome names (net settlement cycles and instruction reports, likewise);
//! 5. a [`BalanceEvent`] for each (client, asset) whose (available, reserved) differs from before the command, in
//!    the order the command first touched it, found from the ledger entries it appended: a reserve and a release
//!    within one command cancel out and give none;
//! 6. each `Alert` the command appended (AML rules, screening, surveillance), then the alert an update changed;
//! 7. a [`LedgerTransactionEvent`] for each ledger transaction the command posted, in posting order, with every
//!    entry's account named: desk-level (no client), for downstream books (the event stream), never a client's
//!    stream. Derived only in [`EventScope::ALL`], so the engine thread pays for them only when such a consumer
//!    is configured.
//!
//! Bounds: the events are as many as the command's own work, which the engine bounds (fills per tick, expiries
//! per command, instructions per cycle, postings per transaction); an order event carries the order's trades.

use super::alerts::Alert;
use super::netting::Instruction;
use super::orders::{Order, Trade};
use super::settlement::Withdrawal;
use super::{CommandError, Desk, Executed, JournalRecord, Outcome};
use crate::catalog::AssetCode;
use crate::chunked_vec;
use crate::ids::ClientId;
use crate::ledger::{AccountId, AccountKey, Owner, Purpose, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;

/// One client-visible change of the desk.
// Events are built once per change and moved to the publishers; boxing the order variant would buy nothing.
#[allow(clippy::large_enum_variant)]
// Serialize only: an internally tagged enum cannot deserialize i128 fields (serde buffers it); stored events use
// `webhooks::stored_event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeskEvent {
    Order(OrderEvent),
    Trade(Trade),
    Balance(BalanceEvent),
    Withdrawal(Withdrawal),
    Instruction(Instruction),
    Alert(Alert),
    LedgerTransaction(LedgerTransactionEvent),
}

impl DeskEvent {
    /// The client the event belongs to; `None` for a desk-level alert.
    pub fn client_id(&self) -> Option<&ClientId> {
        match self {
            DeskEvent::Order(event) => Some(&event.order.client_id),
            DeskEvent::Trade(trade) => Some(&trade.client_id),
            DeskEvent::Balance(balance) => Some(&balance.client_id),
            DeskEvent::Withdrawal(withdrawal) => Some(&withdrawal.client_id),
            DeskEvent::Instruction(instruction) => Some(&instruction.client_id),
            DeskEvent::Alert(alert) => alert.client_id.as_ref(),
            DeskEvent::LedgerTransaction(_) => None,
        }
    }
}

/// An order as it is after the record, with every trade it has (what the stream's `order` message shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order: Order,
    pub trades: Vec<Trade>,
    /// How many of `trades` (the last ones) this record made: an edge that reports executions (FIX) reports
    /// exactly these, even when two records fill the order within one millisecond.
    #[serde(default)]
    pub record_trades: usize,
}

/// A client's balance of one asset after the record, minor units: exactly what `Desk::balances` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceEvent {
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub available: i128,
    pub reserved: i128,
}

/// One posted ledger transaction with its entries, each naming its account: what a downstream general ledger
/// books. Amounts and balances in the asset's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTransactionEvent {
    pub transaction: Transaction,
    pub entries: Vec<LedgerEntryEvent>,
}

/// One entry of a [`LedgerTransactionEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntryEvent {
    pub account: AccountKey,
    pub amount: i128,
    pub balance_after: i128,
}

/// Where the desk's append-only histories stood before a command: events are what came after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMark {
    trades: usize,
    entries: u64,
    alerts: usize,
    transactions: usize,
}

/// Which events a caller derives. Desk-level ledger transaction events cost a clone of every posted transaction
/// and its entries; only a desk-wide consumer that books them (the external event stream) wants them, so the
/// client-visible scope leaves them out. Leaving them out changes no other event or its index within the record:
/// they come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventScope {
    pub ledger_transactions: bool,
}

impl EventScope {
    /// The events a client, a webhook or a drop copy can receive (items 1–6 of the module's list).
    pub const CLIENT_VISIBLE: EventScope = EventScope { ledger_transactions: false };
    /// Every event, the desk-level ledger transactions included.
    pub const ALL: EventScope = EventScope { ledger_transactions: true };

    /// Whether an event of this kind is derived in this scope.
    pub fn includes(&self, event: &DeskEvent) -> bool {
        self.ledger_transactions || !matches!(event, DeskEvent::LedgerTransaction(_))
    }
}

/// A client's balance of one asset: (client, asset).
type Pair<'a> = (&'a ClientId, AssetCode);

/// Per [`balance_slot`] of a pair a command touched: the account, and its balance before the command's first
/// entry to it.
type Before = [Option<(AccountId, i128)>; 2];

impl Desk {
    /// Marks the histories before a command, for [`Desk::events_since`].
    pub fn event_mark(&self) -> EventMark {
        EventMark {
            trades: self.orders.trades.len(),
            entries: self.ledger.entry_count(),
            alerts: self.alerts.len(),
            transactions: self.ledger.transactions().len(),
        }
    }

    /// Executes a record (exactly as [`Desk::execute`]) and derives all of its events; none when the command was
    /// refused or changed nothing.
    pub fn execute_with_events(&mut self, record: &JournalRecord) -> Result<(Executed, Vec<DeskEvent>), CommandError> {
        self.execute_deriving(record, Some(EventScope::ALL))
    }

    /// [`Desk::execute_with_events`], deriving only the events in `scope`.
    pub fn execute_with_events_in(
        &mut self,
        record: &JournalRecord,
        scope: EventScope,
    ) -> Result<(Executed, Vec<DeskEvent>), CommandError> {
        self.execute_deriving(record, Some(scope))
    }

    /// The events of the command that produced `outcome`, given the mark taken just before it; call it right
    /// after that command (balances and orders are read as they are now). Only for a command that changed the
    /// desk (`Executed::changed`): the outcome of an idempotent repeat still names its original order or
    /// withdrawal. A mark from another desk gives wrong events, never a panic.
    pub fn events_since(&self, mark: &EventMark, outcome: &Outcome) -> Vec<DeskEvent> {
        self.events_since_in(mark, outcome, EventScope::ALL)
    }

    /// [`Desk::events_since`], only the events in `scope`.
    pub fn events_since_in(&self, mark: &EventMark, outcome: &Outcome, scope: EventScope) -> Vec<DeskEvent> {
        let trades = self.trades_since(mark.trades);
        // An order, its trade and two balances is the common case: one allocation for the list.
        let mut events = Vec::with_capacity(2 * trades.len() + 4);
        self.push_order_events(outcome, trades.clone(), &mut events);
        events.extend(trades.cloned().map(DeskEvent::Trade));
        if let Outcome::Withdrawal(named) = outcome {
            let stored = self.withdrawal(&named.withdrawal_id).unwrap_or(named);
            events.push(DeskEvent::Withdrawal(stored.clone()));
        }
        events.extend(self.instruction_events(outcome).map(DeskEvent::Instruction));
        events.extend(self.balance_events(mark.entries).map(DeskEvent::Balance));
        events.extend(self.alert_events(mark.alerts, outcome).map(DeskEvent::Alert));
        if scope.ledger_transactions {
            events.extend(self.ledger_transaction_events(mark.transactions).map(DeskEvent::LedgerTransaction));
        }
        events
    }

    /// The ledger transactions posted since `since` (none when the mark is past the end), entries resolved.
    fn ledger_transaction_events(&self, since: usize) -> impl Iterator<Item = LedgerTransactionEvent> + '_ {
        let transactions = self.ledger.transactions();
        let end = transactions.len();
        transactions.range(since.min(end)..end).map(|transaction| {
            let entries = self.ledger.entries_of(transaction).filter_map(|entry| {
                let account = self.ledger.account(entry.account)?;
                Some(LedgerEntryEvent {
                    account: account.key.clone(),
                    amount: entry.amount,
                    balance_after: entry.balance_after,
                })
            });
            LedgerTransactionEvent { transaction: transaction.clone(), entries: entries.collect() }
        })
    }

    /// The trades appended since `since` (none when the mark is past the end).
    fn trades_since(&self, since: usize) -> chunked_vec::Iter<'_, Trade> {
        let end = self.orders.trades.len();
        self.orders.trades.range(since.min(end)..end)
    }

    /// The orders the outcome names, then those of the new trades; each once, in that order.
    fn push_order_events<'a>(
        &'a self,
        outcome: &'a Outcome,
        trades: impl Iterator<Item = &'a Trade>,
        events: &mut Vec<DeskEvent>,
    ) {
        let named: &[Order] = match outcome {
            Outcome::Order(order) => std::slice::from_ref(order),
            Outcome::Orders(orders) => orders,
            _ => &[],
        };
        let trades: Vec<&Trade> = trades.collect();
        let mut seen: FirstSeen<&str> = FirstSeen::default();
        let ids =
            named.iter().map(|order| order.order_id.as_str()).chain(trades.iter().map(|trade| trade.order_id.as_str()));
        let firsts = ids.filter(|order_id| seen.entry(*order_id).1);
        let mut made: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        trades.iter().for_each(|trade| *made.entry(trade.order_id.as_str()).or_default() += 1);
        let made = |order_id: &str| made.get(order_id).copied().unwrap_or(0);
        events.extend(firsts.filter_map(|order_id| self.order_event(order_id, made(order_id))).map(DeskEvent::Order));
    }

    fn order_event(&self, order_id: &str, record_trades: usize) -> Option<OrderEvent> {
        let order = self.order(order_id)?;
        let trades: Vec<Trade> = order.trade_ids.iter().filter_map(|trade_id| self.trade(trade_id)).cloned().collect();
        debug_assert!(record_trades <= trades.len(), "a record's trades of an order are among the order's trades");
        Some(OrderEvent { order: order.clone(), trades, record_trades })
    }

    /// The instructions the outcome names, as stored.
    fn instruction_events<'a>(&'a self, outcome: &'a Outcome) -> impl Iterator<Item = Instruction> + 'a {
        let named: &[Instruction] = match outcome {
            Outcome::Instruction(instruction) => std::slice::from_ref(instruction),
            Outcome::Instructions(instructions) => instructions,
            _ => &[],
        };
        named.iter().map(|instruction| self.instruction(&instruction.instruction_id).unwrap_or(instruction).clone())
    }

    /// The alerts appended since `since`, then the one an update changed (a new surveillance alert is both
    /// appended and named: it is given once).
    fn alert_events<'a>(&'a self, since: usize, outcome: &'a Outcome) -> impl Iterator<Item = Alert> + 'a {
        let appended = self.alerts.get(since..).unwrap_or_default();
        let updated = match outcome {
            Outcome::Alert(named) if !appended.iter().any(|alert| alert.alert_id == named.alert_id) => {
                Some(self.alert(&named.alert_id).unwrap_or(named))
            }
            _ => None,
        };
        appended.iter().chain(updated).cloned()
    }

    /// A balance event for each (client, asset) whose balances the entries since `since` left changed.
    fn balance_events(&self, since: u64) -> impl Iterator<Item = BalanceEvent> + '_ {
        let touched = self.touched_balances(since).into_entries();
        touched.into_iter().filter_map(|(pair, before)| self.changed_balance(pair, &before))
    }

    /// The clients' (client, asset) pairs the entries since `since` touched, in first-touch order, with each
    /// touched account's balance before its first entry.
    fn touched_balances(&self, since: u64) -> FirstSeen<Pair<'_>, Before> {
        let mut touched: FirstSeen<Pair<'_>, Before> = FirstSeen::default();
        for entry in self.ledger.entries_since(since) {
            let Some(account) = self.ledger.account(entry.account) else { continue };
            let (Owner::Client(client_id), Some(slot)) = (&account.key.owner, balance_slot(account.key.purpose)) else {
                continue;
            };
            let (before, _) = touched.entry((client_id, account.key.asset));
            // Exact: `balance_after` was computed as before + amount without overflow, so wrapping cannot differ.
            before[slot].get_or_insert((entry.account, entry.balance_after.wrapping_sub(entry.amount)));
        }
        touched
    }

    /// The pair's balances after the command, when they differ from before it.
    fn changed_balance(&self, (client_id, asset): Pair<'_>, before: &Before) -> Option<BalanceEvent> {
        let changed = before.iter().flatten().any(|(account, was)| self.ledger.balance(*account) != *was);
        if !changed {
            return None;
        }
        let now = |slot: usize, purpose: Purpose| match before[slot] {
            Some((account, _)) => self.ledger.balance(account),
            None => {
                let key = AccountKey { owner: Owner::Client(client_id.clone()), asset, purpose };
                self.ledger.account_id(&key).map_or(0, |account| self.ledger.balance(account))
            }
        };
        let (available, reserved) = (now(0, Purpose::Available), now(1, Purpose::Reserved));
        Some(BalanceEvent { client_id: client_id.clone(), asset, available, reserved })
    }
}

/// Keys in the order first seen, each with a value. Most commands name one order and touch one or two balances,
/// where hashing would cost more than a scan; a market tick may name a thousand orders and touch thousands of
/// balances, where a scan per entry would be quadratic: so a scan up to `LINEAR_MAX` keys, a hash index beyond.
struct FirstSeen<K, V = ()> {
    entries: Vec<(K, V)>,
    index: Option<HashMap<K, usize>>,
}

impl<K, V> Default for FirstSeen<K, V> {
    fn default() -> Self {
        Self { entries: Vec::new(), index: None }
    }
}

impl<K: Copy + Eq + Hash, V: Default> FirstSeen<K, V> {
    const LINEAR_MAX: usize = 16;

    /// The key's value (a default one at its first occurrence), and whether this is its first occurrence.
    fn entry(&mut self, key: K) -> (&mut V, bool) {
        let found = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.entries.iter().position(|(known, _)| *known == key),
        };
        let first = found.is_none();
        let position = found.unwrap_or_else(|| self.insert(key));
        (&mut self.entries[position].1, first)
    }

    fn insert(&mut self, key: K) -> usize {
        let position = self.entries.len();
        self.entries.push((key, V::default()));
        match &mut self.index {
            Some(index) => {
                index.insert(key, position);
            }
            None if self.entries.len() > Self::LINEAR_MAX => {
                self.index =
                    Some(self.entries.iter().enumerate().map(|(position, (key, _))| (*key, position)).collect());
            }
            None => {}
        }
        position
    }

    fn into_entries(self) -> Vec<(K, V)> {
        self.entries
    }
}

/// Which of a client's balances an account is (0: available, 1: reserved); `None` for any other purpose.
fn balance_slot(purpose: Purpose) -> Option<usize> {
    match purpose {
        Purpose::Available => Some(0),
        Purpose::Reserved => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
