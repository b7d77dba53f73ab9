//! Pricing: executable VWAP across venues, then the client price with spread, inventory skew and rounding.
//!
//! Everything here is pure integer arithmetic: no floats, no I/O, no clock (the caller passes `now`).
//!
//! * [`executable`] walks the consolidated book of the fresh venues best-first and returns the exact notional
//!   (Σ price × quantity taken) for a size.
//! * [`client_price`] turns an [`Executable`] into the client's price: the exact VWAP times the spread/skew factor,
//!   rounded to the instrument's price step *against the client* (up for a client buy, down for a client sell).
//!   The rounding is done once, on the exact rational `notional × factor / (quantity × 10^6)`; the VWAP is never
//!   rounded on its own first.
//! * [`quote_amount`] converts price × quantity into quote-asset minor units, again rounding against the client.
//! * [`quantity_for_quote_amount`] answers an RFQ given in quote-asset terms ("spend 10 000 USD").
//!
//! Spreads and skews are in centi-bps (hundredths of a basis point): 20 bps = 2 000, and a spread `s` multiplies
//! a price by `1 + s / 1 000 000`.
//!
//! Intermediate products (`notional × factor`, `price × quantity` with an 18-decimal asset) can exceed `i128`, so
//! they are formed in 256 bits by the small hand-written [`wide`] module: a 128 × 128 → 256-bit multiply and a
//! 256 ÷ 128-bit division are all this module needs, which is less code to review than a dependency and keeps the
//! core crate's dependency list at serde and thiserror. Results that do not fit `i128` are an
//! [`PricingError::Overflow`], never a wrap.

use super::book::{Level, VenueBook, VENUES_MAX};
use crate::catalog::Instrument;
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};

/// The denominator of spreads and skews: one centi-bps is `1 / CENTI_BPS_ONE` of a price.
pub const CENTI_BPS_ONE: i128 = 1_000_000;

/// From the client's point of view: `Buy` = the client receives the base asset (priced off asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// What the consolidated book can execute for a size: the exact sum of price × quantity over the levels taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executable {
    /// Σ price × quantity over the levels taken (price units × base minor units).
    pub notional: i128,
    /// Base minor units filled (equals the requested quantity).
    pub quantity: i128,
    /// The oldest `as_of` of the books that contributed.
    pub as_of: TimestampMs,
    /// How many venues contributed at least one level.
    pub venues_used: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("no fresh market data")]
    NoFreshBook,
    #[error("the fresh books cannot fill this size")]
    InsufficientDepth,
    #[error("arithmetic overflow")]
    Overflow,
    #[error("the quantity must be greater than zero")]
    InvalidQuantity,
    #[error("the price must be greater than zero")]
    InvalidPrice,
    #[error("the amount must be greater than zero")]
    InvalidAmount,
    #[error("the price or quantity step must be greater than zero")]
    InvalidStep,
    #[error("the spread must not be negative")]
    InvalidSpread,
    #[error("spread and skew leave a price factor that is not positive")]
    NonPositiveFactor,
    #[error("the client price rounds down to zero")]
    ZeroPrice,
    #[error("no quantity within the instrument's minimum, maximum and step matches this amount")]
    OutsideLimits,
    #[error("more than {VENUES_MAX} fresh venue books")]
    TooManyVenues,
    #[error("a venue book has a non-positive or out-of-order level")]
    InvalidBook,
}

/// Prices `quantity` base minor units against the consolidated book of the venues that are fresh at `now`
/// (`book.is_fresh(now, max_age_ms)`); stale books are ignored entirely.
///
/// A client `Buy` walks the asks (lowest first), a `Sell` the bids (highest first), merging the venues level by
/// level (a k-way merge over at most [`VENUES_MAX`] cursors, no allocation) and taking `min(remaining, level)`
/// from each until the size is filled. Equal prices on several venues are taken in the order of `books`.
/// A level of `UNLIMITED_QUANTITY` is fine: only the quantity actually taken is ever multiplied.
///
/// Errors: `InvalidQuantity` (≤ 0), `NoFreshBook`, `TooManyVenues` (more than [`VENUES_MAX`] fresh books),
/// `InsufficientDepth`, `Overflow` (notional beyond `i128`), `InvalidBook` (a non-positive level, or a level
/// better than one already taken, which only an unsorted book can produce; books are meant to be validated with
/// `VenueBook::validate` on arrival).
#[inline]
pub fn executable(
    books: &[VenueBook],
    side: Side,
    quantity: i128,
    now: TimestampMs,
    max_age_ms: i64,
) -> Result<Executable, PricingError> {
    match side {
        Side::Buy => walk::<true>(books, quantity, now, max_age_ms),
        Side::Sell => walk::<false>(books, quantity, now, max_age_ms),
    }
}

/// The merge behind [`executable`]; `BUY` picks the asks and "better" = lower, otherwise bids and higher.
#[inline]
fn walk<const BUY: bool>(
    books: &[VenueBook],
    quantity: i128,
    now: TimestampMs,
    max_age_ms: i64,
) -> Result<Executable, PricingError> {
    if quantity <= 0 {
        return Err(PricingError::InvalidQuantity);
    }
    let empty: &[Level] = &[];
    let mut sides = [empty; VENUES_MAX];
    let mut as_of = [TimestampMs(0); VENUES_MAX];
    let mut fresh = 0;
    for book in books.iter().filter(|book| book.is_fresh(now, max_age_ms)) {
        if fresh == VENUES_MAX {
            return Err(PricingError::TooManyVenues);
        }
        sides[fresh] = if BUY { &book.asks } else { &book.bids };
        as_of[fresh] = book.as_of;
        fresh += 1;
    }
    if fresh == 0 {
        return Err(PricingError::NoFreshBook);
    }
    let sides = &mut sides[..fresh];

    let mut remaining = quantity;
    let mut notional: i128 = 0;
    let mut used: u32 = 0;
    let mut last_price = if BUY { i128::MIN } else { i128::MAX };
    while remaining > 0 {
        // The venue whose next level is best; the first one wins ties.
        let mut best: Option<(usize, Level)> = None;
        for (slot, levels) in sides.iter().enumerate() {
            if let Some(&level) = levels.first() {
                let better = match best {
                    None => true,
                    Some((_, current)) => {
                        if BUY {
                            level.price < current.price
                        } else {
                            level.price > current.price
                        }
                    }
                };
                if better {
                    best = Some((slot, level));
                }
            }
        }
        let Some((slot, level)) = best else {
            return Err(PricingError::InsufficientDepth);
        };
        let out_of_order = if BUY { level.price < last_price } else { level.price > last_price };
        if level.price <= 0 || level.quantity <= 0 || out_of_order {
            return Err(PricingError::InvalidBook);
        }
        last_price = level.price;
        let taken = remaining.min(level.quantity);
        let cost = level.price.checked_mul(taken).ok_or(PricingError::Overflow)?;
        notional = notional.checked_add(cost).ok_or(PricingError::Overflow)?;
        remaining -= taken;
        sides[slot] = &sides[slot][1..];
        used |= 1 << slot;
    }

    let mut oldest = TimestampMs(i64::MAX);
    for (slot, timestamp) in as_of[..fresh].iter().enumerate() {
        if used & (1 << slot) != 0 {
            oldest = oldest.min(*timestamp);
        }
    }
    Ok(Executable { notional, quantity, as_of: oldest, venues_used: used.count_ones() as u8 })
}

/// The price factor numerator over [`CENTI_BPS_ONE`]: `10^6 + spread − skew` for a client buy,
/// `10^6 − spread − skew` for a client sell. A positive skew (the desk is long) shades both sides down.
///
/// Errors: `InvalidSpread` (negative spread), `NonPositiveFactor`, `Overflow`.
#[inline]
pub fn price_factor(side: Side, spread_centi_bps: i128, skew_centi_bps: i128) -> Result<i128, PricingError> {
    if spread_centi_bps < 0 {
        return Err(PricingError::InvalidSpread);
    }
    let signed_spread = match side {
        Side::Buy => spread_centi_bps,
        Side::Sell => -spread_centi_bps,
    };
    let factor = CENTI_BPS_ONE
        .checked_add(signed_spread)
        .and_then(|value| value.checked_sub(skew_centi_bps))
        .ok_or(PricingError::Overflow)?;
    if factor <= 0 {
        return Err(PricingError::NonPositiveFactor);
    }
    Ok(factor)
}

/// The client's price for an executable size, in `10^-price_scale` quote units per whole base unit, a multiple
/// of `price_step`.
///
/// With `factor` from [`price_factor`] (`10^6 + spread − skew` for a buy, `10^6 − spread − skew` for a sell):
///
/// * buy: `ceil(notional × factor / (quantity × 10^6 × price_step)) × price_step`;
/// * sell: `floor(notional × factor / (quantity × 10^6 × price_step)) × price_step`.
///
/// So a buy price is the smallest step multiple ≥ the exact `VWAP × factor / 10^6` and a sell price the largest
/// step multiple ≤ it: rounding never favours the client. Intermediates are 256-bit.
///
/// Errors: `InvalidQuantity` / `InvalidPrice` (a non-positive quantity or notional), `InvalidStep`,
/// `InvalidSpread`, `NonPositiveFactor`, `ZeroPrice` (a sell that rounds down to zero), `Overflow`.
#[inline]
pub fn client_price(
    executable: &Executable,
    side: Side,
    spread_centi_bps: i128,
    skew_centi_bps: i128,
    price_step: i128,
) -> Result<i128, PricingError> {
    if executable.quantity <= 0 {
        return Err(PricingError::InvalidQuantity);
    }
    if executable.notional <= 0 {
        return Err(PricingError::InvalidPrice);
    }
    if price_step <= 0 {
        return Err(PricingError::InvalidStep);
    }
    let factor = price_factor(side, spread_centi_bps, skew_centi_bps)?;
    let round_up = side == Side::Buy;
    let steps =
        wide::mul_div(executable.notional, factor, &[executable.quantity, CENTI_BPS_ONE, price_step], round_up)?;
    if steps == 0 {
        return Err(PricingError::ZeroPrice);
    }
    steps.checked_mul(price_step).ok_or(PricingError::Overflow)
}

/// Quote-asset minor units for `price × quantity`:
/// `price × quantity / 10^(price_scale + base_scale − quote_scale)` (a multiplication by `10^-exponent` when the
/// exponent is negative), rounded up when `round_up` (the client pays: a buy) and down otherwise (the client
/// receives: a sell).
///
/// Example: BTC-USD (price scale 2, BTC 8, USD 2), price 5 005 000 (50 050.00) × 100 000 000 (1 BTC) =
/// 5 005 000 (50 050.00 USD). The product is formed in 256 bits, so 18-decimal assets at large sizes are exact.
///
/// Errors: `InvalidPrice` (≤ 0), `InvalidQuantity` (≤ 0), `Overflow` (the result does not fit `i128`).
#[inline]
pub fn quote_amount(
    price: i128,
    quantity: i128,
    price_scale: u8,
    base_scale: u8,
    quote_scale: u8,
    round_up: bool,
) -> Result<i128, PricingError> {
    if price <= 0 {
        return Err(PricingError::InvalidPrice);
    }
    if quantity <= 0 {
        return Err(PricingError::InvalidQuantity);
    }
    let exponent = i32::from(price_scale) + i32::from(base_scale) - i32::from(quote_scale);
    let (multiplier, divisor) = (wide::Power::of_negative_part(exponent), wide::Power::of_positive_part(exponent));
    wide::scaled_mul_div(price, quantity, multiplier, divisor, round_up)
}

/// Largest fee rate a tier may charge: 10 % (1,000 bps).
pub const FEE_CENTI_BPS_MAX: i128 = CENTI_BPS_ONE / 10;

/// The desk's fee on a trade of `quote_amount` quote minor units at `fee_centi_bps` hundredths of a basis point:
/// `ceil(quote_amount × fee_centi_bps / 10^6)`. Rounded **up**: the fee is charged to the client, so rounding
/// never gives the client the unit (a buyer pays it on top of the quote amount, a seller has it taken from the
/// proceeds). Zero when the rate is zero.
///
/// Errors: `InvalidAmount` (a negative amount), `InvalidSpread` (a rate below zero or above
/// [`FEE_CENTI_BPS_MAX`]), `Overflow`.
#[inline]
pub fn fee_amount(quote_amount: i128, fee_centi_bps: i128) -> Result<i128, PricingError> {
    if quote_amount < 0 {
        return Err(PricingError::InvalidAmount);
    }
    if !(0..=FEE_CENTI_BPS_MAX).contains(&fee_centi_bps) {
        return Err(PricingError::InvalidSpread);
    }
    let product = quote_amount.checked_mul(fee_centi_bps).ok_or(PricingError::Overflow)?;
    // Both factors are non-negative, so the ceiling is (product + divisor − 1) / divisor without sign cases.
    Ok(product.div_euclid(CENTI_BPS_ONE) + i128::from(product.rem_euclid(CENTI_BPS_ONE) != 0))
}

/// The `quote_quantity` form of an RFQ: the base quantity (on the instrument's `quantity_step`, within
/// `[quantity_min, quantity_max]`) and its client price for a client who states the quote-asset amount.
///
/// * Buy (the client spends at most `quote_amount`): the **largest** quantity `q` whose cost
///   `quote_amount(client_price(q), q, round up)` is ≤ the budget. The cost is non-decreasing in `q` (the ask
///   VWAP of a best-first walk never falls as the size grows, ceiling-rounding to the step keeps that, and the
///   product of two non-decreasing positive values is non-decreasing), so this is a binary search over step
///   counts; sizes the fresh books cannot fill count as over budget.
/// * Sell (the client receives at least `quote_amount`): the **smallest** `q` whose proceeds
///   `quote_amount(client_price(q), q, round down)` are ≥ the amount. Proceeds are *not* monotonic in `q` (the
///   bid price can drop a whole step as the size grows, which costs more than the extra step of quantity earns),
///   so this uses the fact that the sell price is non-increasing in `q`: starting from the minimum, if `q` at
///   price `p` falls short, no size below the smallest `q'` with `proceeds(p, q') ≥ amount` can reach it (every
///   larger size has a price ≤ `p`), so the search jumps to `q'` and re-prices. Each jump lowers the price by at
///   least one step, so the loop ends in a handful of rounds on any realistic book.
///
/// Errors: `InvalidAmount` (≤ 0), `InvalidStep`, `OutsideLimits` (no quantity within the limits matches: the
/// budget is below the minimum's cost, or the amount needs more than the maximum), plus those of [`executable`]
/// and [`client_price`] (`InsufficientDepth` when the books cannot fill a size the answer needs).
#[allow(clippy::too_many_arguments)]
pub fn quantity_for_quote_amount(
    books: &[VenueBook],
    side: Side,
    quote_amount: i128,
    instrument: &Instrument,
    base_scale: u8,
    quote_scale: u8,
    spread_centi_bps: i128,
    skew_centi_bps: i128,
    now: TimestampMs,
    max_age_ms: i64,
) -> Result<(i128, i128), PricingError> {
    if quote_amount <= 0 {
        return Err(PricingError::InvalidAmount);
    }
    let step = instrument.quantity_step;
    if step <= 0 || instrument.price_step <= 0 {
        return Err(PricingError::InvalidStep);
    }
    // Step counts: quantity = steps × step. Quantities must be positive, so at least one step.
    let steps_min = div_ceil(instrument.quantity_min.max(1), step);
    let steps_max = instrument.quantity_max.div_euclid(step);
    if steps_min > steps_max {
        return Err(PricingError::OutsideLimits);
    }
    let price_at = |steps: i128| -> Result<(i128, i128), PricingError> {
        let quantity = steps.checked_mul(step).ok_or(PricingError::Overflow)?;
        let executable = executable(books, side, quantity, now, max_age_ms)?;
        let price = client_price(&executable, side, spread_centi_bps, skew_centi_bps, instrument.price_step)?;
        Ok((quantity, price))
    };
    let amount_of = |price: i128, quantity: i128, round_up: bool| {
        self::quote_amount(price, quantity, instrument.price_scale, base_scale, quote_scale, round_up)
    };

    match side {
        Side::Buy => {
            let (quantity, price) = price_at(steps_min)?;
            if amount_of(price, quantity, true)? > quote_amount {
                return Err(PricingError::OutsideLimits);
            }
            // Invariant: `low` is affordable and fillable; everything above `high` is not.
            let (mut low, mut high, mut best) = (steps_min, steps_max, (quantity, price));
            while low < high {
                let middle = low + (high - low + 1) / 2;
                let affordable = match price_at(middle) {
                    Ok((quantity, price)) => match amount_of(price, quantity, true) {
                        Ok(cost) if cost <= quote_amount => Some((quantity, price)),
                        Ok(_) | Err(PricingError::Overflow) => None,
                        Err(other) => return Err(other),
                    },
                    Err(PricingError::InsufficientDepth | PricingError::Overflow) => None,
                    Err(other) => return Err(other),
                };
                match affordable {
                    Some(found) => {
                        low = middle;
                        best = found;
                    }
                    None => high = middle - 1,
                }
            }
            Ok(best)
        }
        Side::Sell => {
            let exponent = i32::from(instrument.price_scale) + i32::from(base_scale) - i32::from(quote_scale);
            let mut steps = steps_min;
            loop {
                let (quantity, price) = price_at(steps)?;
                if amount_of(price, quantity, false)? >= quote_amount {
                    return Ok((quantity, price));
                }
                // floor(price × q × 10^-e) ≥ amount  ⇔  q ≥ amount × 10^e / price, in step counts rounded up.
                let needed = wide::steps_needed(quote_amount, price, step, exponent);
                let next = match needed {
                    Some(next) => next.max(steps + 1),
                    None => return Err(PricingError::OutsideLimits),
                };
                if next > steps_max {
                    return Err(PricingError::OutsideLimits);
                }
                steps = next;
            }
        }
    }
}

#[inline]
fn div_ceil(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator.div_euclid(denominator);
    if numerator.rem_euclid(denominator) == 0 {
        quotient
    } else {
        quotient + 1
    }
}

pub(crate) use wide::mul_div;

/// 256-bit intermediates, written by hand (see the module documentation for why): an unsigned `(high, low)` pair
/// of `u128`s with a widening multiply, multiplication by a `u128`, and division by a `u128` with a remainder.
mod wide {
    use super::PricingError;

    const LOW_64: u128 = u64::MAX as u128;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct U256 {
        high: u128,
        low: u128,
    }

    impl U256 {
        /// The full 256-bit product of two `u128`s (schoolbook on 64-bit halves).
        #[inline]
        pub(super) fn product(left: u128, right: u128) -> Self {
            let (left_high, left_low) = (left >> 64, left & LOW_64);
            let (right_high, right_low) = (right >> 64, right & LOW_64);
            let low_low = left_low * right_low;
            let low_high = left_low * right_high;
            let high_low = left_high * right_low;
            let high_high = left_high * right_high;
            // Each term < 2^64, so the middle sum < 3 × 2^64: no overflow.
            let middle = (low_low >> 64) + (low_high & LOW_64) + (high_low & LOW_64);
            Self {
                high: high_high + (low_high >> 64) + (high_low >> 64) + (middle >> 64),
                low: (middle << 64) | (low_low & LOW_64),
            }
        }

        /// `self × factor`, `None` past 256 bits.
        #[inline]
        pub(super) fn checked_mul(self, factor: u128) -> Option<Self> {
            let low = Self::product(self.low, factor);
            let high = self.high.checked_mul(factor)?;
            Some(Self { high: low.high.checked_add(high)?, low: low.low })
        }

        /// `(self / divisor, self % divisor)`; `divisor` > 0.
        #[inline]
        pub(super) fn div_rem(self, divisor: u128) -> (Self, u128) {
            debug_assert!(divisor > 0);
            if self.high == 0 {
                return (Self { high: 0, low: self.low / divisor }, self.low % divisor);
            }
            let quotient_high = self.high / divisor;
            let (quotient_low, remainder) = div_rem_narrow(self.high % divisor, self.low, divisor);
            (Self { high: quotient_high, low: quotient_low }, remainder)
        }

        /// `self / divisor` rounded up or down; `None` only if rounding up overflows 256 bits.
        #[inline]
        pub(super) fn div_round(self, divisor: u128, round_up: bool) -> Option<Self> {
            let (quotient, remainder) = self.div_rem(divisor);
            if round_up && remainder != 0 {
                quotient.checked_add_one()
            } else {
                Some(quotient)
            }
        }

        #[inline]
        fn checked_add_one(self) -> Option<Self> {
            match self.low.checked_add(1) {
                Some(low) => Some(Self { high: self.high, low }),
                None => Some(Self { high: self.high.checked_add(1)?, low: 0 }),
            }
        }

        /// The value as a non-negative `i128`, `Overflow` if it does not fit.
        #[inline]
        pub(super) fn to_i128(self) -> Result<i128, PricingError> {
            if self.high != 0 {
                return Err(PricingError::Overflow);
            }
            i128::try_from(self.low).map_err(|_| PricingError::Overflow)
        }
    }

    /// `(high × 2^128 + low) / divisor` when `high < divisor`, so the quotient fits in 128 bits.
    #[inline]
    fn div_rem_narrow(high: u128, low: u128, divisor: u128) -> (u128, u128) {
        debug_assert!(high < divisor);
        if divisor <= LOW_64 {
            // Two long-division digits of 64 bits: each partial dividend is < divisor × 2^64 ≤ 2^128.
            let first = (high << 64) | (low >> 64);
            let (digit_high, remainder) = (first / divisor, first % divisor);
            let second = (remainder << 64) | (low & LOW_64);
            ((digit_high << 64) | (second / divisor), second % divisor)
        } else {
            // Bit by bit (rare: a 256-bit dividend and a divisor above 2^64). The remainder stays < divisor; the
            // bit shifted out of it is carried so that a 129-bit partial dividend is still compared correctly.
            let (mut remainder, mut quotient) = (high, 0u128);
            for bit in (0..128).rev() {
                let carry = remainder >> 127;
                remainder = (remainder << 1) | ((low >> bit) & 1);
                quotient <<= 1;
                if carry != 0 || remainder >= divisor {
                    remainder = remainder.wrapping_sub(divisor);
                    quotient |= 1;
                }
            }
            (quotient, remainder)
        }
    }

    /// A power of ten `10^exponent` with any exponent ≥ 0, as a list of `u128` factors of at most `10^38`.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Power(u32);

    impl Power {
        /// `10^max(exponent, 0)`.
        #[inline]
        pub(super) fn of_positive_part(exponent: i32) -> Self {
            Self(exponent.max(0).unsigned_abs())
        }

        /// `10^max(-exponent, 0)`.
        #[inline]
        pub(super) fn of_negative_part(exponent: i32) -> Self {
            Self(exponent.min(0).unsigned_abs())
        }

        /// Calls `apply` with factors whose product is the power (none when it is 1); stops at the first `None`.
        #[inline]
        fn for_each<T>(self, mut value: T, mut apply: impl FnMut(T, u128) -> Option<T>) -> Option<T> {
            let mut left = self.0;
            while left > 0 {
                let chunk = left.min(38);
                value = apply(value, 10u128.pow(chunk))?;
                left -= chunk;
            }
            Some(value)
        }
    }

    /// `round(a × b / (d1 × d2 × …))` for non-negative `a`, `b` and positive divisors, in 256 bits. Divisors whose
    /// product fits `u128` are applied in one division; otherwise one at a time, which gives the same result
    /// because `floor(floor(x / m) / n) = floor(x / (m n))` and likewise for the ceiling.
    #[inline]
    pub(crate) fn mul_div(a: i128, b: i128, divisors: &[i128], round_up: bool) -> Result<i128, PricingError> {
        debug_assert!(a >= 0 && b >= 0 && divisors.iter().all(|divisor| *divisor > 0));
        let product = U256::product(a.unsigned_abs(), b.unsigned_abs());
        let combined = divisors.iter().try_fold(1u128, |total, divisor| total.checked_mul(divisor.unsigned_abs()));
        let result = match combined {
            Some(divisor) => product.div_round(divisor, round_up),
            None => {
                divisors.iter().try_fold(product, |value, divisor| value.div_round(divisor.unsigned_abs(), round_up))
            }
        };
        result.ok_or(PricingError::Overflow)?.to_i128()
    }

    /// `round(a × b × multiplier / divisor)` for positive `a`, `b`; at most one of the powers is not 1.
    #[inline]
    pub(super) fn scaled_mul_div(
        a: i128,
        b: i128,
        multiplier: Power,
        divisor: Power,
        round_up: bool,
    ) -> Result<i128, PricingError> {
        let product = U256::product(a.unsigned_abs(), b.unsigned_abs());
        let scaled = multiplier.for_each(product, U256::checked_mul).ok_or(PricingError::Overflow)?;
        let divided = divisor
            .for_each(scaled, |value, factor| value.div_round(factor, round_up))
            .ok_or(PricingError::Overflow)?;
        divided.to_i128()
    }

    /// The smallest step count `k` with `floor(price × k × step × 10^-exponent) ≥ amount`, i.e.
    /// `ceil(amount × 10^exponent / (price × step))` when `exponent ≥ 0` and
    /// `ceil(amount / (price × step × 10^-exponent))` otherwise. `None` when it does not fit `i128`.
    #[inline]
    pub(super) fn steps_needed(amount: i128, price: i128, step: i128, exponent: i32) -> Option<i128> {
        let numerator =
            Power::of_positive_part(exponent).for_each(U256::product(amount.unsigned_abs(), 1), U256::checked_mul)?;
        let value = numerator.div_round(price.unsigned_abs(), true)?.div_round(step.unsigned_abs(), true)?;
        let value = Power::of_negative_part(exponent).for_each(value, |value, factor| value.div_round(factor, true))?;
        value.to_i128().ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn from_parts(high: u128, low: u128) -> U256 {
            U256 { high, low }
        }

        #[test]
        fn product_matches_known_values() {
            assert_eq!(U256::product(u128::MAX, u128::MAX), from_parts(u128::MAX - 1, 1));
            assert_eq!(U256::product(1 << 127, 2), from_parts(1, 0));
            assert_eq!(U256::product(123, 456), from_parts(0, 56_088));
        }

        #[test]
        fn division_inverts_the_product() {
            let cases = [
                (u128::MAX, u128::MAX, u128::MAX, 0u128),
                (u128::MAX, 3, 7, 5),
                (10u128.pow(30), 10u128.pow(8) + 12_345, 10u128.pow(20) + 7, 1_234),
                ((1 << 100) + 99, (1 << 90) + 3, (1 << 70) + 1, 11),
            ];
            for (a, b, divisor, extra) in cases {
                let dividend = U256::product(a, b);
                let with_extra = if extra < divisor {
                    let low = dividend.low.wrapping_add(extra);
                    from_parts(dividend.high + u128::from(low < dividend.low), low)
                } else {
                    dividend
                };
                let (quotient, remainder) = with_extra.div_rem(divisor);
                let back = quotient.checked_mul(divisor).unwrap();
                let low = back.low.wrapping_add(remainder);
                assert_eq!(from_parts(back.high + u128::from(low < back.low), low), with_extra);
                assert!(remainder < divisor);
            }
        }

        #[test]
        fn mul_div_rounds_both_ways_and_splits_large_divisors() {
            assert_eq!(mul_div(7, 3, &[2], false), Ok(10));
            assert_eq!(mul_div(7, 3, &[2], true), Ok(11));
            assert_eq!(mul_div(i128::MAX, i128::MAX, &[i128::MAX], false), Ok(i128::MAX));
            assert_eq!(mul_div(i128::MAX, 2, &[1], false), Err(PricingError::Overflow));
            let huge = 10i128.pow(30);
            assert_eq!(mul_div(huge, huge, &[huge, huge, 3], true), Ok(1));
            assert_eq!(mul_div(huge, huge, &[huge, huge, 3], false), Ok(0));
        }
    }
}
