//! Preparing market data for quote commands: which books go into the command (trimmed to what the size can
//! use, so the journal stays small) and the indicative USD notional that selects a tier's size band.

use otcd_core::catalog::{Catalog, Instrument};
use otcd_core::engine::CrossBooks;
use otcd_core::market::{pricing, Level, Side, VenueBook};
use otcd_core::time::TimestampMs;
use otcd_market::MarketHub;

/// USD notionals are kept in cents.
const USD_SCALE: u8 = 2;

/// Keeps only the side a request prices against and, per venue, the levels until that venue alone could
/// fill `quantity`: a superset of what the consolidated walk can take, so pricing is unchanged.
pub fn trim_for_quantity(books: &[VenueBook], side: Option<Side>, quantity: i128) -> Vec<VenueBook> {
    books
        .iter()
        .map(|book| VenueBook {
            venue: book.venue.clone(),
            instrument: book.instrument.clone(),
            bids: if side != Some(Side::Buy) { levels_until(&book.bids, quantity) } else { Vec::new() },
            asks: if side != Some(Side::Sell) { levels_until(&book.asks, quantity) } else { Vec::new() },
            as_of: book.as_of,
        })
        .collect()
}

fn levels_until(levels: &[Level], quantity: i128) -> Vec<Level> {
    let mut cumulative: i128 = 0;
    let mut kept = Vec::new();
    for level in levels {
        kept.push(*level);
        cumulative = cumulative.saturating_add(level.quantity);
        if cumulative >= quantity {
            break;
        }
    }
    kept
}

/// Keeps only one side, all levels (for quote-amount requests, whose size is found by search).
pub fn one_side(books: &[VenueBook], side: Side) -> Vec<VenueBook> {
    trim_for_quantity(books, Some(side), i128::MAX)
}

/// Mid price of an instrument from the latest books of every venue (indicative, staleness ignored):
/// the mean of the best bid and best ask across venues, in price units.
pub fn mid(hub: &MarketHub, symbol: &str) -> Option<i128> {
    let books = hub.all_books(symbol);
    let best_bid = books.iter().filter_map(|book| book.bids.first()).map(|level| level.price).max()?;
    let best_ask = books.iter().filter_map(|book| book.asks.first()).map(|level| level.price).min()?;
    Some((best_bid + best_ask) / 2)
}

/// Indicative USD value (cents) of `quantity` base minor units of `instrument`, via the base's or the quote's
/// USD instrument. `None` when no conversion path has market data.
pub fn notional_usd(hub: &MarketHub, catalog: &Catalog, instrument: &Instrument, quantity: i128) -> Option<i128> {
    let base_scale = catalog.asset(&instrument.base)?.scale;
    let quote_scale = catalog.asset(&instrument.quote)?.scale;
    if instrument.base.as_str() == "USD" {
        return pricing::quote_amount(1, quantity, 0, base_scale, USD_SCALE, false).ok();
    }
    if let Some(base_usd) = catalog.instrument(&format!("{}-USD", instrument.base)) {
        let price = mid(hub, &base_usd.symbol)?;
        return pricing::quote_amount(price, quantity, base_usd.price_scale, base_scale, USD_SCALE, false).ok();
    }
    let price = mid(hub, &instrument.symbol)?;
    let quote_amount =
        pricing::quote_amount(price, quantity, instrument.price_scale, base_scale, quote_scale, false).ok()?;
    if instrument.quote.as_str() == "USD" {
        return Some(quote_amount);
    }
    let quote_usd = catalog.instrument(&format!("{}-USD", instrument.quote))?;
    let rate = mid(hub, &quote_usd.symbol)?;
    pricing::quote_amount(rate, quote_amount, quote_usd.price_scale, quote_scale, USD_SCALE, false).ok()
}

/// Indicative USD value (cents) of `amount` minor units of `asset` (USD itself, or through ASSET-USD's mid).
pub fn asset_usd(
    hub: &MarketHub,
    catalog: &Catalog,
    asset: otcd_core::catalog::AssetCode,
    amount: i128,
) -> Option<i128> {
    let scale = catalog.asset(&asset)?.scale;
    if asset.as_str() == "USD" {
        return pricing::quote_amount(1, amount, 0, scale, USD_SCALE, false).ok();
    }
    let instrument = catalog.instrument(&format!("{asset}-USD"))?;
    let price = mid(hub, &instrument.symbol)?;
    pricing::quote_amount(price, amount, instrument.price_scale, scale, USD_SCALE, false).ok()
}

/// Indicative USD value (cents) of `amount` minor units of the instrument's quote asset (for `quote_quantity`
/// requests, whose base size is not known before pricing).
pub fn quote_amount_usd(hub: &MarketHub, catalog: &Catalog, instrument: &Instrument, amount: i128) -> Option<i128> {
    let quote_scale = catalog.asset(&instrument.quote)?.scale;
    if instrument.quote.as_str() == "USD" {
        return pricing::quote_amount(1, amount, 0, quote_scale, USD_SCALE, false).ok();
    }
    let quote_usd = catalog.instrument(&format!("{}-USD", instrument.quote))?;
    let rate = mid(hub, &quote_usd.symbol)?;
    pricing::quote_amount(rate, amount, quote_usd.price_scale, quote_scale, USD_SCALE, false).ok()
}

/// The middle asset crosses are priced through.
pub const CROSS_VIA: &str = "USD";

/// For an instrument without a fresh book of its own: its USD legs (BASE-USD and QUOTE-USD) with their books,
/// fresh ones only when `fresh_only` (firm prices) or every venue's latest (indicative). `None` when a leg is
/// missing from the catalog or has no book.
pub fn cross_books(
    hub: &MarketHub,
    catalog: &Catalog,
    instrument: &Instrument,
    now: TimestampMs,
    fresh_only: bool,
) -> Option<CrossBooks> {
    if instrument.quote.as_str() == CROSS_VIA || instrument.base.as_str() == CROSS_VIA {
        return None;
    }
    let base_leg = catalog.instrument(&format!("{}-{CROSS_VIA}", instrument.base))?;
    let quote_leg = catalog.instrument(&format!("{}-{CROSS_VIA}", instrument.quote))?;
    let books = |symbol: &str| if fresh_only { hub.fresh_books(symbol, now) } else { hub.all_books(symbol) };
    let (base_books, quote_books) = (books(&base_leg.symbol), books(&quote_leg.symbol));
    if base_books.is_empty() || quote_books.is_empty() {
        return None;
    }
    Some(CrossBooks { base_leg: base_leg.symbol.clone(), base_books, quote_leg: quote_leg.symbol.clone(), quote_books })
}

/// The freshest books of an instrument as of `now`.
pub fn fresh(hub: &MarketHub, symbol: &str, now: TimestampMs) -> Vec<VenueBook> {
    hub.fresh_books(symbol, now)
}

impl crate::DeskServices {
    /// The cross legs to price `instrument` through, only when it has no `books` of its own and cross pricing is
    /// on: fresh legs for firm prices, every venue's latest for indicative ones.
    pub fn cross_for(
        &self,
        instrument: &Instrument,
        books: &[VenueBook],
        now: TimestampMs,
        fresh_only: bool,
    ) -> Option<CrossBooks> {
        if !books.is_empty() || !self.settings.cross_pricing {
            return None;
        }
        cross_books(&self.market, &self.catalog, instrument, now, fresh_only)
    }

    /// Indicative USD value (cents) of `quantity` base units of `instrument`.
    pub fn notional_usd(&self, instrument: &Instrument, quantity: i128) -> Option<i128> {
        notional_usd(&self.market, &self.catalog, instrument, quantity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(asks: &[(i128, i128)]) -> VenueBook {
        VenueBook {
            venue: "v".into(),
            instrument: "BTC-USD".into(),
            bids: asks
                .iter()
                .map(|(price, quantity)| Level { price: price - 1_000, quantity: *quantity })
                .rev()
                .collect(),
            asks: asks.iter().map(|(price, quantity)| Level { price: *price, quantity: *quantity }).collect(),
            as_of: TimestampMs(0),
        }
    }

    #[test]
    fn trimming_keeps_enough_depth_and_only_the_needed_side() {
        let books = [book(&[(10_000, 5), (10_100, 5), (10_200, 5)])];
        let trimmed = trim_for_quantity(&books, Some(Side::Buy), 7);
        assert_eq!(trimmed[0].asks.len(), 2);
        assert!(trimmed[0].bids.is_empty());
        assert_eq!(trim_for_quantity(&books, Some(Side::Buy), 100)[0].asks.len(), 3);
        assert_eq!(trim_for_quantity(&books, None, 1)[0].bids.len(), 1);
    }
}
