//! Operator-set prices (`--market manual`, `PUT /v1/admin/market/{instrument}`).
//!
//! No task runs for manual prices: the admin endpoint builds a book with [`manual_book`] (or calls
//! [`ManualMarket::set_price`]) and publishes it. The book ages like any other venue's, under the venue name
//! [`MANUAL_VENUE`], whose maximum age can be set per venue in [`crate::HubConfig`].

use crate::hub::{MarketHub, PublishError};
use otcd_core::catalog::Instrument;
use otcd_core::market::book::UNLIMITED_QUANTITY;
use otcd_core::market::{Level, VenueBook};
use otcd_core::time::TimestampMs;
use std::sync::Arc;

/// The venue name of operator-set prices.
pub const MANUAL_VENUE: &str = "manual";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualPriceError {
    #[error("instrument {0:?} is not in the catalog")]
    UnknownInstrument(String),
    #[error("prices must be greater than zero")]
    NotPositive,
    #[error("prices must be multiples of the instrument's price increment")]
    OffStep,
    #[error("the bid ({bid}) must be below the ask ({ask})")]
    BidNotBelowAsk { bid: i128, ask: i128 },
    #[error("{0}")]
    Publish(#[from] PublishError),
}

/// A one-level-per-side book of venue [`MANUAL_VENUE`] with unlimited quantity, as of `now`. `bid` and `ask` are
/// in `10^-price_scale` units and must be positive, on the instrument's price step, and `bid < ask`.
pub fn manual_book(
    instrument: &Instrument,
    bid: i128,
    ask: i128,
    now: TimestampMs,
) -> Result<VenueBook, ManualPriceError> {
    if bid <= 0 || ask <= 0 {
        return Err(ManualPriceError::NotPositive);
    }
    if bid % instrument.price_step != 0 || ask % instrument.price_step != 0 {
        return Err(ManualPriceError::OffStep);
    }
    if bid >= ask {
        return Err(ManualPriceError::BidNotBelowAsk { bid, ask });
    }
    Ok(VenueBook {
        venue: MANUAL_VENUE.to_owned(),
        instrument: instrument.symbol.clone(),
        bids: vec![Level { price: bid, quantity: UNLIMITED_QUANTITY }],
        asks: vec![Level { price: ask, quantity: UNLIMITED_QUANTITY }],
        as_of: now,
    })
}

/// A handle for the admin endpoint: looks the instrument up, builds the manual book and publishes it.
#[derive(Debug, Clone)]
pub struct ManualMarket {
    hub: Arc<MarketHub>,
}

impl ManualMarket {
    pub fn new(hub: Arc<MarketHub>) -> Self {
        Self { hub }
    }

    /// Publishes `bid`/`ask` for `symbol` as of `now` and returns the book published.
    pub fn set_price(
        &self,
        symbol: &str,
        bid: i128,
        ask: i128,
        now: TimestampMs,
    ) -> Result<VenueBook, ManualPriceError> {
        let instrument =
            self.hub.instrument(symbol).ok_or_else(|| ManualPriceError::UnknownInstrument(symbol.to_owned()))?;
        let book = manual_book(instrument, bid, ask, now)?;
        self.hub.publish(book.clone())?;
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubConfig;
    use otcd_core::catalog::Catalog;
    use std::collections::HashMap;

    #[test]
    fn manual_book_shape() {
        let catalog = Catalog::builtin();
        let btc_usd = catalog.instrument("BTC-USD").unwrap();
        let book = manual_book(btc_usd, 5_000_000, 5_001_000, TimestampMs(42)).unwrap();
        assert_eq!(book.venue, "manual");
        assert_eq!(book.instrument, "BTC-USD");
        assert_eq!(book.bids, vec![Level { price: 5_000_000, quantity: UNLIMITED_QUANTITY }]);
        assert_eq!(book.asks, vec![Level { price: 5_001_000, quantity: UNLIMITED_QUANTITY }]);
        assert_eq!(book.as_of, TimestampMs(42));
        assert!(book.validate().is_ok());
    }

    #[test]
    fn manual_book_refusals() {
        let catalog = Catalog::builtin();
        let btc_usd = catalog.instrument("BTC-USD").unwrap();
        let now = TimestampMs(0);
        assert_eq!(manual_book(btc_usd, 100, 100, now), Err(ManualPriceError::BidNotBelowAsk { bid: 100, ask: 100 }));
        assert_eq!(manual_book(btc_usd, 101, 100, now), Err(ManualPriceError::BidNotBelowAsk { bid: 101, ask: 100 }));
        assert_eq!(manual_book(btc_usd, 0, 100, now), Err(ManualPriceError::NotPositive));
        assert_eq!(manual_book(btc_usd, -5, 100, now), Err(ManualPriceError::NotPositive));
        let coarse = Instrument { price_step: 10, ..btc_usd.clone() };
        assert_eq!(manual_book(&coarse, 105, 120, now), Err(ManualPriceError::OffStep));
        assert!(manual_book(&coarse, 110, 120, now).is_ok());
    }

    #[test]
    fn manual_market_publishes_and_ages_like_a_venue() {
        let config =
            HubConfig { default_max_age_ms: 2_000, max_age_ms_by_venue: HashMap::from([("manual".to_owned(), 5_000)]) };
        let hub = MarketHub::new(&Catalog::builtin(), config);
        let manual = ManualMarket::new(Arc::clone(&hub));
        assert_eq!(
            manual.set_price("NOPE", 1, 2, TimestampMs(0)),
            Err(ManualPriceError::UnknownInstrument("NOPE".into()))
        );
        manual.set_price("EUR-USD", 108_700, 108_710, TimestampMs(1_000)).unwrap();
        assert_eq!(hub.fresh_books("EUR-USD", TimestampMs(6_000)).len(), 1);
        assert!(hub.fresh_books("EUR-USD", TimestampMs(6_001)).is_empty());
        assert_eq!(
            manual.set_price("EUR-USD", 108_700, 108_710, TimestampMs(999)),
            Err(ManualPriceError::Publish(PublishError::OutOfOrder {
                current: TimestampMs(1_000),
                received: TimestampMs(999)
            }))
        );
    }
}
