//! Venue books.

use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};

/// Price levels kept per side of one venue book.
pub const BOOK_LEVELS_MAX: usize = 100;
/// Venues per instrument.
pub const VENUES_MAX: usize = 16;
/// A level quantity standing for "unlimited depth" (operator-set manual prices).
pub const UNLIMITED_QUANTITY: i128 = i128::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// `10^-price_scale` quote units per one base unit; > 0.
    pub price: i128,
    /// Base minor units available at this price; > 0 (`UNLIMITED_QUANTITY` = unlimited).
    pub quantity: i128,
}

/// One venue's book for one instrument at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueBook {
    pub venue: String,
    pub instrument: String,
    /// Best (highest) first, strictly descending prices.
    pub bids: Vec<Level>,
    /// Best (lowest) first, strictly ascending prices.
    pub asks: Vec<Level>,
    /// When the venue published it (or when it was received, for sources without timestamps).
    pub as_of: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("a book side has more than {BOOK_LEVELS_MAX} levels")]
    TooManyLevels,
    #[error("prices and quantities must be positive")]
    NotPositive,
    #[error("bids must be strictly descending and asks strictly ascending")]
    Unordered,
    #[error("the book is crossed: best bid {bid} >= best ask {ask}")]
    Crossed { bid: i128, ask: i128 },
}

impl VenueBook {
    /// Checks the shape every pricing function relies on. Books from adapters are validated once, on arrival:
    /// corrupt market data is refused, never priced.
    pub fn validate(&self) -> Result<(), BookError> {
        for side in [&self.bids, &self.asks] {
            if side.len() > BOOK_LEVELS_MAX {
                return Err(BookError::TooManyLevels);
            }
            if side.iter().any(|level| level.price <= 0 || level.quantity <= 0) {
                return Err(BookError::NotPositive);
            }
        }
        let descending = self.bids.windows(2).all(|pair| pair[0].price > pair[1].price);
        let ascending = self.asks.windows(2).all(|pair| pair[0].price < pair[1].price);
        if !(descending && ascending) {
            return Err(BookError::Unordered);
        }
        if let (Some(bid), Some(ask)) = (self.bids.first(), self.asks.first()) {
            if bid.price >= ask.price {
                return Err(BookError::Crossed { bid: bid.price, ask: ask.price });
            }
        }
        Ok(())
    }

    pub fn is_fresh(&self, now: TimestampMs, max_age_ms: i64) -> bool {
        now.0.saturating_sub(self.as_of.0) <= max_age_ms
    }
}
