//! Pricing an instrument with no direct book through two legs that share a middle asset: ETH-EUR from ETH-USD
//! (base leg) and EUR-USD (quote leg). For a client buy of `q` ETH the desk buys `q` ETH with USD on the base
//! leg and raises that USD by selling EUR on the quote leg; the EUR needed per ETH is the cross ask. A client
//! sell is the mirror image. Both legs' freshness is checked and every rounding goes against the client.

use super::book::VenueBook;
use super::pricing::{self, Executable, PricingError, Side};
use crate::catalog::Instrument;
use crate::decimal::power_of_ten;
use crate::time::TimestampMs;

/// Re-pricing passes of the quote leg: its size depends on its own VWAP, so each pass sizes it with the previous
/// pass's VWAP. Three passes settle for any book that is not absurdly thin.
const QUOTE_LEG_PASSES: usize = 3;

/// The two legs of a cross and their scales.
pub struct CrossLegs<'a> {
    /// BASE-MID, e.g. ETH-USD.
    pub base_leg: &'a Instrument,
    pub base_books: &'a [VenueBook],
    /// QUOTE-MID, e.g. EUR-USD.
    pub quote_leg: &'a Instrument,
    pub quote_books: &'a [VenueBook],
    /// Decimal places of the target's base and quote assets.
    pub base_scale: u8,
    pub quote_scale: u8,
}

/// The executable notional of `quantity` of `target` through the legs, in the target's price units × base minor
/// units, ready for [`pricing::client_price`].
pub fn cross_executable(
    target: &Instrument,
    legs: &CrossLegs<'_>,
    side: Side,
    quantity: i128,
    now: TimestampMs,
    max_age_ms: i64,
) -> Result<Executable, PricingError> {
    if legs.base_leg.base != target.base
        || legs.quote_leg.base != target.quote
        || legs.base_leg.quote != legs.quote_leg.quote
    {
        return Err(PricingError::InvalidBook);
    }
    let base_leg = pricing::executable(legs.base_books, side, quantity, now, max_age_ms)?;
    // A client buy needs MID, raised by selling QUOTE (bid side of the quote leg); a client sell turns MID into
    // QUOTE by buying it (ask side).
    let quote_side = match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    };
    let round_up = side == Side::Buy;
    let mid_to_quote = |leg_notional: i128, leg_quantity: i128| -> Result<i128, PricingError> {
        // QUOTE minor units = N1 / 10^(p1s + bs) MID, at VWAP2 = leg_notional / leg_quantity (p2 units per QUOTE
        // unit): N1 × leg_quantity / leg_notional × 10^(p2s + qs) / 10^(p1s + bs).
        let ratio = pricing::mul_div(base_leg.notional, leg_quantity, &[leg_notional], round_up)?;
        let scale_up = power_of_ten(legs.quote_leg.price_scale + legs.quote_scale);
        pricing::mul_div(ratio, scale_up, &[power_of_ten(legs.base_leg.price_scale + legs.base_scale)], round_up)
    };
    let best = pricing::executable(legs.quote_books, quote_side, 1, now, max_age_ms)?;
    let mut quote_amount = mid_to_quote(best.notional, 1)?;
    let mut quote_leg = best;
    for _ in 0..QUOTE_LEG_PASSES {
        if quote_amount <= 0 {
            return Err(PricingError::ZeroPrice);
        }
        quote_leg = pricing::executable(legs.quote_books, quote_side, quote_amount, now, max_age_ms)?;
        quote_amount = mid_to_quote(quote_leg.notional, quote_leg.quantity)?;
    }
    // Notional in target price units × base minor units: QUOTE minor × 10^(ts + bs − qs).
    let exponent = i32::from(target.price_scale) + i32::from(legs.base_scale) - i32::from(legs.quote_scale);
    let notional = if exponent >= 0 {
        quote_amount.checked_mul(power_of_ten(exponent as u8)).ok_or(PricingError::Overflow)?
    } else {
        pricing::mul_div(quote_amount, 1, &[power_of_ten((-exponent) as u8)], round_up)?
    };
    Ok(Executable {
        notional,
        quantity,
        as_of: base_leg.as_of.min(quote_leg.as_of),
        venues_used: base_leg.venues_used.saturating_add(quote_leg.venues_used),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::market::book::{Level, UNLIMITED_QUANTITY};

    fn manual(instrument: &str, bid: i128, ask: i128) -> VenueBook {
        VenueBook {
            venue: "manual".into(),
            instrument: instrument.into(),
            bids: vec![Level { price: bid, quantity: UNLIMITED_QUANTITY }],
            asks: vec![Level { price: ask, quantity: UNLIMITED_QUANTITY }],
            as_of: TimestampMs(1_000),
        }
    }

    fn price(side: Side, eth_usd: &VenueBook, eur_usd: &VenueBook, quantity: i128) -> Result<i128, PricingError> {
        let catalog = Catalog::builtin();
        let legs = CrossLegs {
            base_leg: catalog.instrument("ETH-USD").unwrap(),
            base_books: std::slice::from_ref(eth_usd),
            quote_leg: catalog.instrument("EUR-USD").unwrap(),
            quote_books: std::slice::from_ref(eur_usd),
            base_scale: 18,
            quote_scale: 2,
        };
        let target = catalog.instrument("ETH-EUR").unwrap();
        let executable = cross_executable(target, &legs, side, quantity, TimestampMs(1_000), 2_000)?;
        pricing::client_price(&executable, side, 0, 0, target.price_step)
    }

    #[test]
    fn eth_eur_from_eth_usd_and_eur_usd() {
        let eth_usd = manual("ETH-USD", 299_900, 300_000);
        let eur_usd = manual("EUR-USD", 108_000, 108_100);
        let one_eth = power_of_ten(18);
        // Buy: 3000.00 USD per ETH raised by selling EUR at 1.08000 → 2777.777… EUR, rounded up → 2777.78.
        assert_eq!(price(Side::Buy, &eth_usd, &eur_usd, one_eth), Ok(277_778));
        // Sell: 2999.00 USD per ETH buys EUR at 1.08100 → 2774.2830… EUR, rounded down → 2774.28.
        assert_eq!(price(Side::Sell, &eth_usd, &eur_usd, one_eth), Ok(277_428));
    }

    #[test]
    fn a_stale_leg_refuses_the_cross() {
        let eth_usd = manual("ETH-USD", 299_900, 300_000);
        let mut eur_usd = manual("EUR-USD", 108_000, 108_100);
        eur_usd.as_of = TimestampMs(-5_000);
        assert_eq!(price(Side::Buy, &eth_usd, &eur_usd, power_of_ten(18)), Err(PricingError::NoFreshBook));
    }

    #[test]
    fn depth_on_the_quote_leg_moves_the_price_against_the_client() {
        let eth_usd = manual("ETH-USD", 299_900, 300_000);
        let mut thin = manual("EUR-USD", 108_000, 108_100);
        // Only 1,000 EUR at 1.08000, the rest at 1.07000: 2 ETH need ~5,555 EUR.
        thin.bids =
            vec![Level { price: 108_000, quantity: 100_000 }, Level { price: 107_000, quantity: UNLIMITED_QUANTITY }];
        let deep = price(Side::Buy, &eth_usd, &manual("EUR-USD", 108_000, 108_100), 2 * power_of_ten(18)).unwrap();
        let shallow = price(Side::Buy, &eth_usd, &thin, 2 * power_of_ten(18)).unwrap();
        assert!(shallow > deep, "{shallow} should be above {deep}");
    }
}
