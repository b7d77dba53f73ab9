//! A venue's local L2 book and the rule that turns venue decimals into the desk's units.
//!
//! # Units and the precision rule
//!
//! Venue prices and quantities are decimal strings (or JSON numbers, read as their text). They are parsed exactly,
//! never through `f64`, by `otcd_core::decimal::parse_scaled` at [`FINE_SCALE`] (18) decimal places, which holds
//! every venue's precision. The local book is kept in these fine units, keyed by the venue's exact price, so a
//! venue's update or delete of a level always finds exactly that level.
//!
//! When a book is published to the desk, each level is converted to the instrument's units:
//!
//! - a **bid** price is rounded **down** to the instrument's price scale and an **ask** price **up**: a level the
//!   desk cannot represent exactly is shown as slightly worse than the venue's, so rounding can only widen the
//!   price the client gets, never improve it in the client's favour;
//! - a **quantity** is truncated **down** to the base asset's scale (the desk never counts on liquidity the venue
//!   did not show); a level whose quantity truncates to zero is left out;
//! - levels that land on the same desk price after rounding are merged (their quantities added).
//!
//! Rounding never crosses a book: bid ≤ venue bid < venue ask ≤ ask.

use otcd_core::catalog::{Catalog, Instrument};
use otcd_core::decimal::{parse_scaled, power_of_ten, DecimalError};
use otcd_core::market::{Level, VenueBook, BOOK_LEVELS_MAX};
use otcd_core::time::TimestampMs;
use std::collections::BTreeMap;

/// Decimal places of the local book's fine units.
pub const FINE_SCALE: u8 = 18;
/// Price levels a local book keeps per side unless configured otherwise; the worst levels beyond are dropped.
pub const LOCAL_LEVELS_DEFAULT: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bid,
    Ask,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error("price {0:?}: {1}")]
    Price(String, DecimalError),
    #[error("quantity {0:?}: {1}")]
    Quantity(String, DecimalError),
}

/// `text` in fine units, exactly. Parsed at its own number of decimals, then scaled up: the same value as
/// `parse_scaled(text, FINE_SCALE)` without a multiplication per missing decimal (the hot path of every update).
fn parse_fine(text: &str) -> Result<i128, DecimalError> {
    let decimals = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
    if decimals > usize::from(FINE_SCALE) {
        return parse_scaled(text, FINE_SCALE);
    }
    let decimals = decimals as u8;
    parse_scaled(text, decimals)?.checked_mul(power_of_ten(FINE_SCALE - decimals)).ok_or(DecimalError::OutOfRange)
}

/// Parses a venue price: a positive decimal, exactly, in fine units.
pub fn parse_price(text: &str) -> Result<i128, LevelError> {
    match parse_fine(text) {
        Ok(value) if value > 0 => Ok(value),
        Ok(_) => Err(LevelError::Price(clip(text), DecimalError::NotPositive)),
        Err(error) => Err(LevelError::Price(clip(text), error)),
    }
}

/// Parses a venue quantity: a non-negative decimal (zero deletes the level), exactly, in fine units.
pub fn parse_quantity(text: &str) -> Result<i128, LevelError> {
    match parse_fine(text) {
        Ok(value) if value >= 0 => Ok(value),
        Ok(_) => Err(LevelError::Quantity(clip(text), DecimalError::Negative)),
        Err(error) => Err(LevelError::Quantity(clip(text), error)),
    }
}

/// At most 32 bytes of bad input go into an error (and from there into logs).
fn clip(text: &str) -> String {
    text.chars().take(32).collect()
}

/// How fine units become one instrument's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Units {
    price_divisor: i128,
    quantity_divisor: i128,
}

impl Units {
    /// The units of `instrument` (price scale; base asset scale from `catalog`, 18 when unknown).
    pub fn of(instrument: &Instrument, catalog: &Catalog) -> Units {
        let base_scale = catalog.asset(&instrument.base).map_or(FINE_SCALE, |asset| asset.scale);
        Units::with_scales(instrument.price_scale, base_scale)
    }

    pub fn with_scales(price_scale: u8, quantity_scale: u8) -> Units {
        assert!(price_scale <= FINE_SCALE && quantity_scale <= FINE_SCALE, "scales are at most {FINE_SCALE}");
        Units {
            price_divisor: power_of_ten(FINE_SCALE - price_scale),
            quantity_divisor: power_of_ten(FINE_SCALE - quantity_scale),
        }
    }

    /// A bid price in the instrument's units: rounded down.
    pub fn bid_price(&self, fine: i128) -> i128 {
        fine.div_euclid(self.price_divisor)
    }

    /// An ask price in the instrument's units: rounded up.
    pub fn ask_price(&self, fine: i128) -> i128 {
        let whole = fine.div_euclid(self.price_divisor);
        if fine.rem_euclid(self.price_divisor) == 0 {
            whole
        } else {
            whole + 1
        }
    }

    /// A quantity in base minor units: truncated down.
    pub fn quantity(&self, fine: i128) -> i128 {
        fine.div_euclid(self.quantity_divisor)
    }
}

/// One venue's full-depth local book in fine units (best first when iterated with [`LocalBook::top`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBook {
    bids: BTreeMap<i128, i128>,
    asks: BTreeMap<i128, i128>,
    levels_max: usize,
}

impl LocalBook {
    pub fn new(levels_max: usize) -> LocalBook {
        assert!(levels_max > 0, "a book keeps at least one level");
        LocalBook { bids: BTreeMap::new(), asks: BTreeMap::new(), levels_max }
    }

    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets the absolute quantity at `price` (zero removes the level; removing an absent level is normal). The
    /// worst level beyond the book's bound is dropped.
    pub fn set(&mut self, side: Side, price: i128, quantity: i128) {
        let levels = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if quantity == 0 {
            levels.remove(&price);
            return;
        }
        levels.insert(price, quantity);
        if levels.len() > self.levels_max {
            match side {
                Side::Bid => levels.pop_first(),
                Side::Ask => levels.pop_last(),
            };
        }
    }

    /// Keeps only the best `depth` levels per side (Kraken: "truncate to the subscribed depth").
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    /// Whether the side holds a level at `price`.
    pub fn contains(&self, side: Side, price: i128) -> bool {
        match side {
            Side::Bid => self.bids.contains_key(&price),
            Side::Ask => self.asks.contains_key(&price),
        }
    }

    pub fn best_bid(&self) -> Option<(i128, i128)> {
        self.bids.last_key_value().map(|(price, quantity)| (*price, *quantity))
    }

    pub fn best_ask(&self) -> Option<(i128, i128)> {
        self.asks.first_key_value().map(|(price, quantity)| (*price, *quantity))
    }

    /// The best bid is at or above the best ask: the book is wrong and must be rebuilt.
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some((bid, _)), Some((ask, _))) if bid >= ask)
    }

    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    /// The side's levels, best first, as (fine price, fine quantity).
    pub fn top(&self, side: Side) -> Box<dyn Iterator<Item = (i128, i128)> + '_> {
        match side {
            Side::Bid => Box::new(self.bids.iter().rev().map(|(price, quantity)| (*price, *quantity))),
            Side::Ask => Box::new(self.asks.iter().map(|(price, quantity)| (*price, *quantity))),
        }
    }

    /// The desk's view of the best `depth` levels per side (at most [`BOOK_LEVELS_MAX`]), converted by the
    /// precision rule of the module documentation.
    pub fn to_venue_book(
        &self,
        venue: &str,
        instrument: &str,
        units: &Units,
        depth: usize,
        as_of: TimestampMs,
    ) -> VenueBook {
        let depth = depth.min(BOOK_LEVELS_MAX);
        VenueBook {
            venue: venue.to_owned(),
            instrument: instrument.to_owned(),
            bids: convert(self.top(Side::Bid), depth, |fine| units.bid_price(fine), units),
            asks: convert(self.top(Side::Ask), depth, |fine| units.ask_price(fine), units),
            as_of,
        }
    }
}

fn convert(
    levels: impl Iterator<Item = (i128, i128)>,
    depth: usize,
    price_of: impl Fn(i128) -> i128,
    units: &Units,
) -> Vec<Level> {
    let mut out: Vec<Level> = Vec::with_capacity(depth);
    for (fine_price, fine_quantity) in levels {
        let price = price_of(fine_price);
        let quantity = units.quantity(fine_quantity);
        if quantity <= 0 || price <= 0 {
            continue;
        }
        if let Some(last) = out.last_mut().filter(|last| last.price == price) {
            last.quantity = last.quantity.saturating_add(quantity);
        } else if out.len() == depth {
            break;
        } else {
            out.push(Level { price, quantity });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fine(text: &str) -> i128 {
        parse_scaled(text, FINE_SCALE).unwrap()
    }

    #[test]
    fn parsing_is_exact_and_refuses_what_is_not_a_plain_decimal() {
        assert_eq!(parse_price("45283.5"), Ok(45_283_500_000_000_000_000_000));
        assert_eq!(parse_quantity("0.00000001"), Ok(10_000_000_000));
        assert_eq!(parse_quantity("0"), Ok(0));
        assert!(parse_price("0").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_quantity("-0.5").is_err());
        for bad in ["1e5", "NaN", "", " 1", "1.", ".5", "0x10", "1.0000000000000000001"] {
            assert!(parse_price(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_fast_path_is_the_core_parser_at_18_decimals() {
        for text in
            ["0", "1", "45283.5", "0.00100000", "123456789.123456789012345678", "1.0000000000000000000", "007.50"]
        {
            assert_eq!(parse_fine(text), parse_scaled(text, FINE_SCALE), "{text}");
        }
        for text in ["1.", ".5", "1e3", "1.5.5", "", "-", "1.0000000000000000001", "99999999999999999999999"] {
            assert_eq!(parse_fine(text).is_err(), parse_scaled(text, FINE_SCALE).is_err(), "{text}");
        }
    }

    #[test]
    fn bids_round_down_asks_up_quantities_truncate() {
        // BTC-USD: 2 price decimals, 8 quantity decimals.
        let units = Units::with_scales(2, 8);
        assert_eq!(units.bid_price(fine("100.019")), 10_001);
        assert_eq!(units.ask_price(fine("100.011")), 10_002);
        assert_eq!(units.bid_price(fine("100.01")), 10_001);
        assert_eq!(units.ask_price(fine("100.01")), 10_001);
        assert_eq!(units.quantity(fine("0.123456789")), 12_345_678);
        assert_eq!(units.quantity(fine("0.000000009")), 0);
    }

    #[test]
    fn publishing_converts_merges_and_drops_levels_by_the_rule() {
        let units = Units::with_scales(2, 8);
        let mut book = LocalBook::new(10);
        book.set(Side::Bid, fine("100.019"), fine("1"));
        book.set(Side::Bid, fine("100.011"), fine("2"));
        book.set(Side::Bid, fine("99.5"), fine("0.000000001"));
        book.set(Side::Bid, fine("99"), fine("3"));
        book.set(Side::Ask, fine("100.021"), fine("0.5"));
        book.set(Side::Ask, fine("100.03"), fine("0.25"));
        let published = book.to_venue_book("v", "BTC-USD", &units, 5, TimestampMs(7));
        assert_eq!(
            published.bids,
            vec![Level { price: 10_001, quantity: 300_000_000 }, Level { price: 9_900, quantity: 300_000_000 }]
        );
        assert_eq!(
            published.asks,
            vec![Level { price: 10_003, quantity: 75_000_000 }],
            "100.021 rounds up onto 100.03 and merges"
        );
        assert!(published.validate().is_ok());
        assert_eq!(book.to_venue_book("v", "BTC-USD", &units, 1, TimestampMs(7)).bids.len(), 1);
    }

    #[test]
    fn the_book_is_bounded_deletes_and_detects_crossing() {
        let mut book = LocalBook::new(2);
        book.set(Side::Bid, 10, 1);
        book.set(Side::Bid, 12, 1);
        book.set(Side::Bid, 11, 1);
        assert_eq!(book.top(Side::Bid).collect::<Vec<_>>(), [(12, 1), (11, 1)], "the worst bid is dropped");
        book.set(Side::Ask, 20, 1);
        book.set(Side::Ask, 22, 1);
        book.set(Side::Ask, 21, 1);
        assert_eq!(book.top(Side::Ask).collect::<Vec<_>>(), [(20, 1), (21, 1)], "the worst ask is dropped");
        book.set(Side::Ask, 99, 0);
        book.set(Side::Ask, 21, 0);
        assert_eq!(book.len(Side::Ask), 1);
        assert!(!book.is_crossed());
        book.set(Side::Bid, 20, 5);
        assert!(book.is_crossed());
        book.truncate(1);
        assert_eq!((book.len(Side::Bid), book.len(Side::Ask)), (1, 1));
        book.clear();
        assert!(book.is_empty() && !book.is_crossed());
    }
}
