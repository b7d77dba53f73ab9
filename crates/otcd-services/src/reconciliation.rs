//! Reconciliation: the desk's books against what the custodian and the bank report.
//!
//! For every catalog asset the ledger's holding accounts (crypto: hot + cold custody; fiat: the bank account)
//! are compared with the balance the rail reports. Two kinds of timing difference are expected and shown as
//! reconciling items rather than breaks:
//!
//! * payouts **submitted** to a rail and not yet settled on the ledger (the rail has sent them; the ledger posts
//!   them on completion);
//! * on-chain deposits the custodian has seen that are still **confirming** (the ledger credits them at the
//!   asset's required confirmations).
//!
//! `expected at the rail = ledger holdings − submitted payouts + confirming deposits`; anything else is a
//! **break**, listed with the rail's movements of that asset whose references the desk does not know (the usual
//! first lead: a network fee, an unannounced incoming wire, a payout the desk never recorded).
//!
//! The comparison itself (`reconcile`) is a pure function of the two sides, so it is tested without a desk.
//!
//! Venues are reconciled beside the rails (`reconcile_venues`): what the ledger's venue accounts say the desk
//! holds at each venue against the balances the venue adapter reports (`VenueExecution::accounts`). Venue
//! transfers are booked with the venue adapter under the same lock as the reconciliation reads, so a transfer
//! never shows as a break; a hedge child order filled at the venue and not yet reported to the engine can (for
//! the hedge worker's next poll, ~50 ms).

use crate::ports::{RailAccount, RailMovement, VenueAccount};
use otcd_core::catalog::{AssetCode, AssetKind, Catalog};
use otcd_core::engine::settlement::WithdrawalStatus;
use otcd_core::engine::Desk;
use std::collections::BTreeMap;

/// Rail movements examined per break for references the desk does not know.
pub const MOVEMENTS_EXAMINED_PER_BREAK_MAX: usize = 1_000;
/// Unknown movements listed per break.
pub const UNMATCHED_LISTED_PER_BREAK_MAX: usize = 100;

/// The desk's side for one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerSide {
    pub holdings: i128,
    pub submitted_payouts: i128,
    pub confirming_deposits: i128,
}

impl LedgerSide {
    pub fn expected_at_rail(&self) -> i128 {
        self.holdings - self.submitted_payouts + self.confirming_deposits
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub asset: AssetCode,
    pub account: RailAccount,
    pub ledger: LedgerSide,
    pub at_rail: i128,
}

impl Line {
    /// What the rail holds beyond what the desk's books explain (negative: less).
    pub fn difference(&self) -> i128 {
        self.at_rail - self.ledger.expected_at_rail()
    }
}

/// The desk's side of every catalog asset, read in one engine query.
pub fn ledger_sides(desk: &Desk, catalog: &Catalog) -> Vec<(AssetCode, RailAccount, LedgerSide)> {
    let confirming = desk.chain_deposits_confirming();
    catalog
        .assets()
        .iter()
        .map(|asset| {
            let holdings = match asset.kind {
                AssetKind::Crypto => {
                    let (hot, cold) = desk.wallet_holdings(asset.code);
                    hot + cold
                }
                AssetKind::Fiat => desk.payout_holdings(asset.code),
            };
            let side = LedgerSide {
                holdings,
                submitted_payouts: desk.withdrawals_outflow(asset.code, WithdrawalStatus::Submitted),
                confirming_deposits: confirming
                    .iter()
                    .filter(|deposit| deposit.asset == asset.code)
                    .map(|deposit| deposit.amount)
                    .sum(),
            };
            (asset.code, RailAccount::for_kind(asset.kind), side)
        })
        .collect()
}

/// Pairs the desk's side with the rail's balances: one line per asset that either side holds anything of.
pub fn reconcile(
    sides: &[(AssetCode, RailAccount, LedgerSide)],
    rail_balances: &BTreeMap<(AssetCode, RailAccount), i128>,
) -> Vec<Line> {
    let mut lines: Vec<Line> = sides
        .iter()
        .map(|(asset, account, ledger)| Line {
            asset: *asset,
            account: *account,
            ledger: *ledger,
            at_rail: rail_balances.get(&(*asset, *account)).copied().unwrap_or(0),
        })
        .collect();
    // A balance the rail reports for an account the desk does not expect (fiat at the custodian, say) is a break
    // too: it is money the books do not show at all.
    for ((asset, account), amount) in rail_balances {
        if !lines.iter().any(|line| line.asset == *asset && line.account == *account) {
            lines.push(Line { asset: *asset, account: *account, ledger: LedgerSide::default(), at_rail: *amount });
        }
    }
    lines.retain(|line| {
        line.at_rail != 0
            || line.ledger.holdings != 0
            || line.ledger.submitted_payouts != 0
            || line.ledger.confirming_deposits != 0
    });
    lines
}

/// Whether the desk has a record behind a rail movement's reference.
pub fn desk_knows(desk: &Desk, reference: &str) -> bool {
    let Some((kind, id)) = reference.split_once(':') else { return false };
    match kind {
        "payout" | "return" => {
            desk.withdrawal(id).is_some_and(|withdrawal| withdrawal.status != WithdrawalStatus::Pending)
        }
        "chain" => desk.chain_deposit(id).is_some(),
        "deposit" => desk.deposit_by_id(id).is_some(),
        "funding" => desk.funding(id).is_some(),
        "venue_transfer" => desk.venue_transfer(id).is_some(),
        "instruction" => desk.instructions().iter().any(|instruction| {
            instruction.instruction_id == id
                && instruction.status == otcd_core::engine::netting::InstructionStatus::Completed
        }),
        _ => false,
    }
}

/// One venue and asset: the ledger's holding there against the venue's reported balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueLine {
    pub venue: String,
    pub asset: AssetCode,
    /// What the ledger's venue account says the desk holds there (positive = held).
    pub ledger: i128,
    /// The balance the venue adapter reports.
    pub at_venue: i128,
}

impl VenueLine {
    /// What the venue holds beyond what the desk's books explain (negative: less).
    pub fn difference(&self) -> i128 {
        self.at_venue - self.ledger
    }
}

/// Pairs the ledger's venue holdings with the balances the venues report: one line per venue and asset that
/// either side holds anything of (a ledger account at a venue the adapter does not know is a line too).
pub fn reconcile_venues(ledger: &[(String, AssetCode, i128)], reported: &[VenueAccount]) -> Vec<VenueLine> {
    let mut lines: BTreeMap<(String, AssetCode), VenueLine> = BTreeMap::new();
    for (venue, asset, holding) in ledger {
        let entry = lines.entry((venue.clone(), *asset)).or_insert_with(|| VenueLine {
            venue: venue.clone(),
            asset: *asset,
            ledger: 0,
            at_venue: 0,
        });
        entry.ledger += holding;
    }
    for account in reported {
        for (asset, balance) in &account.balances {
            let entry = lines.entry((account.venue.clone(), *asset)).or_insert_with(|| VenueLine {
                venue: account.venue.clone(),
                asset: *asset,
                ledger: 0,
                at_venue: 0,
            });
            entry.at_venue += balance;
        }
    }
    lines.into_values().filter(|line| line.ledger != 0 || line.at_venue != 0).collect()
}

/// A reconciliation: every line, and for each break the rail's movements the desk has no record of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub lines: Vec<Line>,
    /// The venues' lines (empty without a venue adapter).
    pub venues: Vec<VenueLine>,
    /// Per asset with a break: the rail's movements (newest first) whose reference the desk does not know.
    pub unmatched: BTreeMap<AssetCode, Vec<RailMovement>>,
    pub as_of: otcd_core::time::TimestampMs,
}

impl Reconciliation {
    pub fn breaks(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|line| line.difference() != 0)
    }

    pub fn venue_breaks(&self) -> impl Iterator<Item = &VenueLine> {
        self.venues.iter().filter(|line| line.difference() != 0)
    }
}

impl crate::DeskServices {
    /// Reconciles now: both sides are read while no rail movement and its engine command are in between, so no
    /// movement is seen without the command that records it (or the other way round).
    pub async fn reconcile(&self) -> crate::ServiceResult<Reconciliation> {
        let _rail_step = self.rail_step().await;
        let catalog = self.catalog.clone();
        let sides = self.read(move |desk| ledger_sides(desk, &catalog)).await?;
        let lines = reconcile(&sides, &self.rails.statements.balances());
        let mut unmatched = BTreeMap::new();
        for line in lines.iter().filter(|line| line.difference() != 0) {
            let movements = self.rails.statements.movements(line.asset, MOVEMENTS_EXAMINED_PER_BREAK_MAX);
            let unknown = self
                .read(move |desk| {
                    movements
                        .into_iter()
                        .filter(|movement| !desk_knows(desk, &movement.reference))
                        .take(UNMATCHED_LISTED_PER_BREAK_MAX)
                        .collect::<Vec<_>>()
                })
                .await?;
            unmatched.insert(line.asset, unknown);
        }
        let venues = match self.execution.clone() {
            Some(execution) => {
                let reported = tokio::task::spawn_blocking(move || execution.accounts())
                    .await
                    .map_err(|error| crate::ServiceError::Internal(error.to_string()))?;
                let venues: Vec<String> = reported.iter().map(|account| account.venue.clone()).collect();
                let ledger = self.read(move |desk| desk.venue_holdings(&venues)).await?;
                reconcile_venues(&ledger, &reported)
            }
            None => Vec::new(),
        };
        Ok(Reconciliation { lines, venues, unmatched, as_of: self.clock.now() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> AssetCode {
        AssetCode::parse(text).unwrap()
    }

    #[test]
    fn submitted_payouts_and_confirming_deposits_are_reconciling_items_not_breaks() {
        let btc = code("BTC");
        let side = LedgerSide { holdings: 1_000, submitted_payouts: 300, confirming_deposits: 50 };
        let rail = BTreeMap::from([((btc, RailAccount::Custody), 750)]);
        let lines = reconcile(&[(btc, RailAccount::Custody, side)], &rail);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].ledger.expected_at_rail(), lines[0].difference()), (750, 0));
    }

    #[test]
    fn a_difference_is_a_break_with_its_sign() {
        let usd = code("USD");
        let side = LedgerSide { holdings: 10_000, ..LedgerSide::default() };
        let rail = BTreeMap::from([((usd, RailAccount::Bank), 9_990)]);
        let lines = reconcile(&[(usd, RailAccount::Bank, side)], &rail);
        assert_eq!(lines[0].difference(), -10);
    }

    #[test]
    fn venue_lines_pair_the_ledger_with_the_venue_and_show_breaks_with_their_sign() {
        let (btc, usd) = (code("BTC"), code("USD"));
        let ledger = vec![("alpha".to_owned(), btc, 500), ("alpha".to_owned(), usd, 0), ("gone".to_owned(), btc, 7)];
        let reported = vec![VenueAccount {
            venue: "alpha".into(),
            taker_fee_centi_bps: 0,
            balances: BTreeMap::from([(btc, 500), (usd, 30)]),
        }];
        let lines = reconcile_venues(&ledger, &reported);
        let found: Vec<_> = lines.iter().map(|line| (line.venue.as_str(), line.asset, line.difference())).collect();
        assert_eq!(found, vec![("alpha", btc, 0), ("alpha", usd, 30), ("gone", btc, -7)]);
    }

    #[test]
    fn money_at_the_rail_the_books_do_not_show_is_a_break_and_empty_assets_are_left_out() {
        let (btc, eur) = (code("BTC"), code("EUR"));
        let rail = BTreeMap::from([((eur, RailAccount::Custody), 5)]);
        let lines = reconcile(&[(btc, RailAccount::Custody, LedgerSide::default())], &rail);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].asset, lines[0].difference()), (eur, 5));
    }
}
