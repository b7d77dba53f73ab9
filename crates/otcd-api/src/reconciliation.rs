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

use otcd_core::catalog::{AssetCode, AssetKind, Catalog};
use otcd_core::decimal::format_scaled;
use otcd_core::engine::settlement::WithdrawalStatus;
use otcd_core::engine::Desk;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rail movements examined per break for references the desk does not know.
pub const MOVEMENTS_EXAMINED_PER_BREAK_MAX: usize = 1_000;
/// Unknown movements listed per break.
pub const UNMATCHED_LISTED_PER_BREAK_MAX: usize = 100;

/// Which external account an asset's holdings sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RailAccount {
    /// The custodian's wallets for a crypto asset (hot and cold together: sweeps move within the custodian).
    Custody,
    /// The desk's bank account for a fiat currency.
    Bank,
}

impl RailAccount {
    pub fn for_kind(kind: AssetKind) -> Self {
        match kind {
            AssetKind::Crypto => RailAccount::Custody,
            AssetKind::Fiat => RailAccount::Bank,
        }
    }
}

/// One movement on a rail's own books, signed: positive arrives at the desk's account, negative leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RailMovement {
    /// `payout:<withdrawal id>`, `return:<withdrawal id>`, `chain:<transaction id>`, `deposit:<deposit id>`,
    /// `funding:<funding id>`, `instruction:<instruction id>`, or anything else the rail reports.
    pub reference: String,
    pub asset: AssetCode,
    pub account: RailAccount,
    /// Minor units, signed.
    #[serde(with = "amount_text")]
    pub amount: i128,
    pub at_ms: i64,
}

/// The port a custodian or bank adapter implements for reconciliation.
pub trait RailStatements: Send + Sync {
    /// The balance the rail reports per asset and account, minor units.
    fn balances(&self) -> BTreeMap<(AssetCode, RailAccount), i128>;
    /// The rail's latest movements of an asset, newest first, at most `limit`.
    fn movements(&self, asset: AssetCode, limit: usize) -> Vec<RailMovement>;
}

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
        "instruction" => desk.instructions().iter().any(|instruction| {
            instruction.instruction_id == id
                && instruction.status == otcd_core::engine::netting::InstructionStatus::Completed
        }),
        _ => false,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconciliationView {
    pub as_of: String,
    /// `matched` or `breaks`.
    pub status: String,
    pub breaks: usize,
    pub lines: Vec<LineView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub asset: String,
    /// `custody` (crypto: hot and cold wallets) or `bank` (fiat).
    pub account: String,
    /// The ledger's holdings in that account.
    pub ledger: String,
    /// Payouts handed to the rail, not yet settled on the ledger.
    pub submitted_payouts: String,
    /// Deposits the custodian has seen that are still confirming.
    pub confirming_deposits: String,
    pub expected_at_rail: String,
    pub at_rail: String,
    /// `at_rail − expected_at_rail`.
    pub difference: String,
    /// `matched` or `break`.
    pub status: String,
    /// For a break: the rail's movements the desk has no record of (newest first).
    pub unmatched_movements: Vec<MovementView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MovementView {
    pub reference: String,
    pub amount: String,
    pub at: String,
}

/// Renders the lines; `unmatched` gives, per break, the rail movements the desk does not know.
pub fn view(
    lines: &[Line],
    catalog: &Catalog,
    unmatched: &BTreeMap<AssetCode, Vec<RailMovement>>,
    as_of_ms: i64,
) -> ReconciliationView {
    let scale = |asset: &AssetCode| catalog.asset(asset).map_or(0, |asset| asset.scale);
    let line_views: Vec<LineView> = lines
        .iter()
        .map(|line| {
            let scale = scale(&line.asset);
            let amount = |value: i128| format_scaled(value, scale);
            let matched = line.difference() == 0;
            LineView {
                asset: line.asset.to_string(),
                account: crate::json::enum_text(line.account),
                ledger: amount(line.ledger.holdings),
                submitted_payouts: amount(line.ledger.submitted_payouts),
                confirming_deposits: amount(line.ledger.confirming_deposits),
                expected_at_rail: amount(line.ledger.expected_at_rail()),
                at_rail: amount(line.at_rail),
                difference: amount(line.difference()),
                status: if matched { "matched" } else { "break" }.into(),
                unmatched_movements: unmatched
                    .get(&line.asset)
                    .filter(|_| !matched)
                    .map(|movements| {
                        movements
                            .iter()
                            .map(|movement| MovementView {
                                reference: movement.reference.clone(),
                                amount: amount(movement.amount),
                                at: crate::json::format_timestamp(otcd_core::time::TimestampMs(movement.at_ms)),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let breaks = line_views.iter().filter(|line| line.status == "break").count();
    ReconciliationView {
        as_of: crate::json::format_timestamp(otcd_core::time::TimestampMs(as_of_ms)),
        status: if breaks == 0 { "matched" } else { "breaks" }.into(),
        breaks,
        lines: line_views,
    }
}

/// Reconciles now: both sides read under `rail_step`, so no rail movement is seen without the engine command that
/// records it (or the other way round).
pub async fn reconcile_now(state: &crate::app::AppState) -> Result<ReconciliationView, crate::problem::ApiError> {
    let _rail_step = state.rail_step.lock().await;
    let catalog = state.catalog.clone();
    let sides = state.engine.query(move |desk| ledger_sides(desk, &catalog)).await?;
    let balances = state.rail_books.balances();
    let lines = reconcile(&sides, &balances);
    let mut unmatched = BTreeMap::new();
    for line in lines.iter().filter(|line| line.difference() != 0) {
        let movements = state.rail_books.movements(line.asset, MOVEMENTS_EXAMINED_PER_BREAK_MAX);
        let unknown = state
            .engine
            .query(move |desk| {
                movements
                    .into_iter()
                    .filter(|movement| !desk_knows(desk, &movement.reference))
                    .take(UNMATCHED_LISTED_PER_BREAK_MAX)
                    .collect::<Vec<_>>()
            })
            .await?;
        unmatched.insert(line.asset, unknown);
    }
    Ok(view(&lines, &state.catalog, &unmatched, crate::runner::now_ms().0))
}

/// i128 amounts as decimal strings in the rail books' file (JSON numbers lose precision beyond 2^53).
mod amount_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i128, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
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
    fn money_at_the_rail_the_books_do_not_show_is_a_break_and_empty_assets_are_left_out() {
        let (btc, eur) = (code("BTC"), code("EUR"));
        let rail = BTreeMap::from([((eur, RailAccount::Custody), 5)]);
        let lines = reconcile(&[(btc, RailAccount::Custody, LedgerSide::default())], &rail);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].asset, lines[0].difference()), (eur, 5));
    }
}
