//! The hedging report: per hedge, what the clients traded at against what the hedge traded at, fees included.
//!
//! The clients' side of a hedge is the client flow it laid off: the trades in instruments of the hedged asset
//! (as base) since the previous hedge of the asset opened, up to this one's opening, in the direction the hedge
//! offsets (a desk buy hedge offsets client buys). Their volume-weighted price, applied to the quantity the hedge
//! filled, against the hedge's own fills:
//!
//! * desk buy hedge: `pnl = client_amount − hedge_amount − venue_fees` (clients paid the desk, the desk paid the
//!   venues);
//! * desk sell hedge: `pnl = hedge_amount − client_amount − venue_fees`;
//!
//! in quote-asset minor units; `client_amount = Σ client quote amounts × filled / Σ client quantity` (rounded
//! down). A hedge of an asset whose clients traded several quote assets uses the hedge's instrument's trades only.

use crate::trades::TradeFilter;
use crate::Projection;
use otcd_core::engine::hedging::Hedge;
use otcd_core::market::Side;

/// Client trades read per hedge, at most (a bound on one report's work).
pub const CLIENT_TRADES_PER_HEDGE_MAX: usize = 100_000;

/// The fills' average price in instrument price units (rounded down), `None` before the first fill.
pub fn average_price(hedge: &Hedge, base_scale: u8, quote_scale: u8, price_scale: u8) -> Option<i128> {
    if hedge.filled <= 0 {
        return None;
    }
    // price = quote_amount × 10^(price_scale + base_scale − quote_scale) / filled.
    let exponent = i32::from(price_scale) + i32::from(base_scale) - i32::from(quote_scale);
    let (numerator, denominator) = if exponent >= 0 {
        (hedge.quote_amount.checked_mul(10i128.checked_pow(exponent as u32)?)?, hedge.filled)
    } else {
        (hedge.quote_amount, hedge.filled.checked_mul(10i128.checked_pow((-exponent) as u32)?)?)
    };
    Some(numerator / denominator)
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HedgePnl {
    pub hedge: Hedge,
    pub client_quantity: i128,
    /// Σ client quote amounts over `client_quantity` (quote minor units).
    pub client_amount: i128,
    /// The clients' amount for the quantity the hedge filled, and the P&L (quote minor units).
    pub client_amount_for_filled: Option<i128>,
    pub pnl: Option<i128>,
}

/// Every hedge the desk still holds, oldest first, with its P&L.
pub fn hedge_pnl(projection: &Projection) -> Vec<HedgePnl> {
    let desk = projection.desk();
    let hedges: Vec<&Hedge> = desk.hedging().hedges().collect();
    let mut rows = Vec::with_capacity(hedges.len());
    for (position, hedge) in hedges.iter().enumerate() {
        let previous = hedges[..position].iter().rev().find(|earlier| earlier.asset == hedge.asset);
        let filter = TradeFilter {
            instrument: Some(hedge.instrument.clone()),
            // The clients' side that the hedge offsets: a desk buy hedge lays off client buys.
            side: Some(hedge.side),
            from: previous.map(|earlier| earlier.opened_at.0),
            to: Some(hedge.opened_at.0 + 1),
            ..TradeFilter::default()
        };
        let page = projection.trades().query(&filter, CLIENT_TRADES_PER_HEDGE_MAX);
        let client_quantity: i128 = page.rows.iter().map(|row| row.quantity).sum();
        let client_amount: i128 = page.rows.iter().map(|row| row.quote_amount).sum();
        let client_amount_for_filled = (client_quantity > 0 && hedge.filled > 0)
            .then(|| client_amount.checked_mul(hedge.filled).map(|product| product / client_quantity))
            .flatten();
        let pnl = client_amount_for_filled.map(|client| match hedge.side {
            Side::Buy => client - hedge.quote_amount - hedge.fee,
            Side::Sell => hedge.quote_amount - client - hedge.fee,
        });
        rows.push(HedgePnl { hedge: (*hedge).clone(), client_quantity, client_amount, client_amount_for_filled, pnl });
    }
    rows
}

/// The clients' average price for a row, in instrument price units (rounded down).
pub fn client_average_price(row: &HedgePnl, base_scale: u8, quote_scale: u8, price_scale: u8) -> Option<i128> {
    let synthetic = Hedge { filled: row.client_quantity, quote_amount: row.client_amount, ..row.hedge.clone() };
    average_price(&synthetic, base_scale, quote_scale, price_scale)
}
