//! Indicative prices: what a client would pay or get for a size now, at its tier's spread and the desk's skew,
//! from every venue's latest book (stale ones included, shown by `as_of`). Never executable; firm prices are the
//! engine's (`quotes.rs`).

use crate::{DeskServices, ServiceError, ServiceResult};
use otcd_core::catalog::Instrument;
use otcd_core::engine::CrossBooks;
use otcd_core::ids::{ClientId, TierName};
use otcd_core::market::{pricing, Side, VenueBook};
use otcd_core::time::TimestampMs;

/// A two-way indicative price for a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicativePrice {
    pub quantity: i128,
    pub bid: i128,
    pub ask: i128,
    /// The oldest market data behind the prices.
    pub as_of: TimestampMs,
}

impl DeskServices {
    /// An executable from the instrument's own books or, when it has none, through its cross legs (staleness
    /// ignored: indicative).
    pub fn indicative_executable(
        &self,
        instrument: &Instrument,
        books: &[VenueBook],
        cross: Option<&CrossBooks>,
        side: Side,
        quantity: i128,
        now: TimestampMs,
    ) -> Result<pricing::Executable, pricing::PricingError> {
        let Some(cross) = cross.filter(|_| books.is_empty()) else {
            return pricing::executable(books, side, quantity, now, i64::MAX);
        };
        let leg = |symbol: &str| self.catalog.instrument(symbol).ok_or(pricing::PricingError::InvalidBook);
        let legs = otcd_core::market::cross::CrossLegs {
            base_leg: leg(&cross.base_leg)?,
            base_books: &cross.base_books,
            quote_leg: leg(&cross.quote_leg)?,
            quote_books: &cross.quote_books,
            base_scale: self.base_scale(instrument),
            quote_scale: self.quote_scale(instrument),
        };
        otcd_core::market::cross::cross_executable(instrument, &legs, side, quantity, now, i64::MAX)
    }

    /// The indicative two-way price of `quantity` for `client_id`'s tier (the standard tier for desk keys).
    pub async fn indicative_price(
        &self,
        client_id: Option<ClientId>,
        instrument: &Instrument,
        quantity: i128,
    ) -> ServiceResult<IndicativePrice> {
        let books = self.market.all_books(&instrument.symbol);
        let notional = self.notional_usd(instrument, quantity);
        let base = instrument.base;
        let (spread, skew) = self
            .read(move |desk| {
                let tier = client_id.and_then(|id| desk.client(&id).map(|client| client.tier.clone()));
                let tier = tier.unwrap_or_else(|| TierName::parse("standard").expect("valid"));
                desk.tier(&tier).map(|tier| (tier.spread_for(notional), desk.skew_for(base)))
            })
            .await?
            .ok_or_else(|| ServiceError::Internal("the client's tier is missing".into()))?;
        let unavailable = |error: pricing::PricingError| ServiceError::PriceUnavailable(error.to_string());
        let now = self.clock.now();
        let cross = self.cross_for(instrument, &books, now, false);
        let executable = |side| self.indicative_executable(instrument, &books, cross.as_ref(), side, quantity, now);
        let bid = executable(Side::Sell).map_err(unavailable)?;
        let ask = executable(Side::Buy).map_err(unavailable)?;
        let step = instrument.price_step;
        Ok(IndicativePrice {
            quantity,
            bid: pricing::client_price(&bid, Side::Sell, spread, skew, step).map_err(unavailable)?,
            ask: pricing::client_price(&ask, Side::Buy, spread, skew, step).map_err(unavailable)?,
            as_of: bid.as_of.min(ask.as_of),
        })
    }
}
