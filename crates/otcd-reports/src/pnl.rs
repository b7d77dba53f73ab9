//! The desk's traded position and realized P&L per asset, by average cost in USD.
//!
//! Every trade moves two assets for the desk (a client buy: the desk delivers base, receives quote). Both legs
//! are valued at the trade's USD value `V` (cents): the quote amount itself when the quote asset is USD,
//! otherwise the trade's recorded `notional_usd` (the indicative USD value at execution). For each non-USD
//! asset the desk keeps a position `p` (minor units) and a cost basis `c` (USD cents; negative for a short: the
//! proceeds received when it was opened):
//!
//! * a leg that opens or adds (`p = 0` or same sign): `p += d`, `c += sign(d) × V`;
//! * a leg that reduces: closing `k = min(|d|, |p|)` units realizes `sign(p) × V × k/|d| − c × k/|p|`, then
//!   `c` loses its closed share; any remainder opens a position on the other side at its share of `V`.
//!
//! Shares are computed exactly and rounded toward zero to the cent (`i128` division), once per leg. USD is the
//! unit of account: its position is reported, its P&L is zero by definition. A trade without a USD value makes
//! the P&L of both its assets unknown from then on (`valued: false`), never guessed.

use otcd_core::catalog::AssetCode;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub asset: Option<AssetCode>,
    /// Minor units; positive = long.
    pub quantity: i128,
    /// USD cents of the open position (negative for a short).
    pub cost_basis_usd: i128,
    pub realized_pnl_usd: i128,
    /// Trades that moved this asset.
    pub trades: u64,
    /// False once a trade without a USD value moved this asset: the cost basis and P&L are unknown.
    pub valued: bool,
}

impl Position {
    pub fn new(asset: AssetCode) -> Self {
        Self { asset: Some(asset), valued: true, ..Self::default() }
    }

    /// Applies one leg: `delta` minor units (positive = the desk receives) worth `value_usd` cents.
    pub fn apply(&mut self, delta: i128, value_usd: Option<i128>, is_usd: bool) {
        self.trades += 1;
        let previous = self.quantity;
        self.quantity = previous.saturating_add(delta);
        if is_usd {
            self.cost_basis_usd = self.quantity;
            return;
        }
        let Some(value) = value_usd.filter(|_| self.valued) else {
            self.valued = false;
            return;
        };
        if delta == 0 {
            return;
        }
        if previous == 0 || previous.signum() == delta.signum() {
            self.cost_basis_usd = self.cost_basis_usd.saturating_add(delta.signum() * value);
            return;
        }
        let closed = delta.abs().min(previous.abs());
        let value_closed = share(value, closed, delta.abs());
        let cost_closed = share(self.cost_basis_usd, closed, previous.abs());
        self.realized_pnl_usd =
            self.realized_pnl_usd.saturating_add(previous.signum() * value_closed).saturating_sub(cost_closed);
        self.cost_basis_usd = self.cost_basis_usd.saturating_sub(cost_closed);
        let remainder = delta.abs() - closed;
        if remainder > 0 {
            self.cost_basis_usd = delta.signum() * (value - value_closed);
        } else if self.quantity == 0 {
            self.cost_basis_usd = 0;
        }
    }

    /// Average cost per whole unit in USD cents, rounded toward zero (`None` when flat or unknown).
    pub fn average_cost_usd(&self, scale: u8) -> Option<i128> {
        if self.quantity == 0 || !self.valued {
            return None;
        }
        let unit = otcd_core::decimal::power_of_ten(scale);
        self.cost_basis_usd.checked_mul(unit).map(|scaled| scaled / self.quantity)
    }
}

/// `value × part / whole`, rounded toward zero; saturates rather than overflows (values are far below that).
fn share(value: i128, part: i128, whole: i128) -> i128 {
    if whole == 0 {
        return 0;
    }
    match value.checked_mul(part) {
        Some(product) => product / whole,
        None => (value / whole).saturating_mul(part),
    }
}
