//! Property tests of the pricing functions against independent references.
//!
//! Books are random but valid: up to five venues around a common mid (bids below it, asks above it, so the
//! consolidated book is never crossed), up to seven levels a side, some levels unlimited, some venues stale.
//!
//! * `executable` equals a reference that flattens the fresh levels, sorts them and takes them in order: a merge
//!   that skipped a venue, took a worse level first, counted a stale venue, mis-sized the last level or reported
//!   the wrong `as_of`/`venues_used` fails.
//! * `client_price` is checked by cross-multiplication in arbitrary precision (a little limb arithmetic below,
//!   independent of the crate's 256-bit code): a buy price is the smallest step multiple ≥ the exact
//!   `VWAP × factor`, a sell price the largest ≤ it. Rounding the wrong way, rounding the VWAP first, dropping
//!   the skew or the spread all fail here.
//! * Buy ≥ sell at every size, and a larger size never gets a better price.
//! * `quote_amount` rounds against the client, exactly (cross-multiplication again, also for 18-decimal assets).
//! * `quantity_for_quote_amount` equals a brute force over every step count of a small instrument; the same brute
//!   force asserts the assumptions the search relies on (a buy's cost never falls as the size grows, a sell's price
//!   never rises). That sell proceeds can fall as the size grows is pinned in `pricing.rs`.

use otcd_core::catalog::{AssetCode, Instrument};
use otcd_core::market::book::UNLIMITED_QUANTITY;
use otcd_core::market::pricing::{
    client_price, executable, fee_amount, quantity_for_quote_amount, quote_amount, CENTI_BPS_ONE, FEE_CENTI_BPS_MAX,
};
use otcd_core::market::{Executable, Level, PricingError, Side, VenueBook};
use otcd_core::time::TimestampMs;
use proptest::prelude::*;
use std::cmp::Ordering;

const NOW: TimestampMs = TimestampMs(10_000_000);
const MAX_AGE_MS: i64 = 600;
const SIDES: [Side; 2] = [Side::Buy, Side::Sell];

// ---------------------------------------------------------------------------------------------------------------
// Arbitrary precision, for cross-multiplication (little-endian 32-bit limbs, unsigned).

fn product(factors: &[u128]) -> Vec<u32> {
    let mut limbs = vec![1u32];
    for &factor in factors {
        let digits = [factor as u32, (factor >> 32) as u32, (factor >> 64) as u32, (factor >> 96) as u32];
        let mut out = vec![0u32; limbs.len() + digits.len() + 1];
        for (i, &left) in limbs.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &right) in digits.iter().enumerate() {
                let sum = u64::from(out[i + j]) + u64::from(left) * u64::from(right) + carry;
                out[i + j] = sum as u32;
                carry = sum >> 32;
            }
            let mut k = i + digits.len();
            while carry > 0 {
                let sum = u64::from(out[k]) + carry;
                out[k] = sum as u32;
                carry = sum >> 32;
                k += 1;
            }
        }
        while out.len() > 1 && *out.last().unwrap() == 0 {
            out.pop();
        }
        limbs = out;
    }
    limbs
}

fn compare(left: &[u32], right: &[u32]) -> Ordering {
    left.len().cmp(&right.len()).then_with(|| left.iter().rev().cmp(right.iter().rev()))
}

fn unsigned(value: i128) -> u128 {
    u128::try_from(value).expect("non-negative")
}

fn pow10(exponent: u32) -> u128 {
    10u128.pow(exponent)
}

// ---------------------------------------------------------------------------------------------------------------
// Books.

#[derive(Debug, Clone)]
struct VenueSpec {
    bids: Vec<(i128, i128)>,
    asks: Vec<(i128, i128)>,
    age_ms: i64,
    unlimited_bid: bool,
    unlimited_ask: bool,
}

fn venue_spec() -> impl Strategy<Value = VenueSpec> {
    let levels = || prop::collection::vec((1i128..50, 1i128..1_000), 0..8);
    (levels(), levels(), 0i64..800, prop::bool::weighted(0.1), prop::bool::weighted(0.1)).prop_map(
        |(bids, asks, age_ms, unlimited_bid, unlimited_ask)| VenueSpec {
            bids,
            asks,
            age_ms,
            unlimited_bid,
            unlimited_ask,
        },
    )
}

fn build_side(mid: i128, gaps: &[(i128, i128)], direction: i128, unlimited: bool) -> Vec<Level> {
    let mut price = mid;
    let mut levels: Vec<Level> = gaps
        .iter()
        .map(|&(gap, quantity)| {
            price += direction * gap;
            Level { price, quantity }
        })
        .collect();
    if unlimited {
        if let Some(last) = levels.last_mut() {
            last.quantity = UNLIMITED_QUANTITY;
        }
    }
    levels
}

fn build_books(mid: i128, specs: &[VenueSpec]) -> Vec<VenueBook> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let book = VenueBook {
                venue: format!("v{index}"),
                instrument: "AAA-BBB".into(),
                bids: build_side(mid, &spec.bids, -1, spec.unlimited_bid),
                asks: build_side(mid, &spec.asks, 1, spec.unlimited_ask),
                as_of: TimestampMs(NOW.0 - spec.age_ms),
            };
            book.validate().expect("generated books are valid");
            book
        })
        .collect()
}

fn books() -> impl Strategy<Value = Vec<VenueBook>> {
    (1_000i128..1_000_000, prop::collection::vec(venue_spec(), 0..7)).prop_map(|(mid, specs)| build_books(mid, &specs))
}

/// The reference: every fresh level in one list, sorted best first (a stable sort keeps venue order on ties, as
/// the merge does), taken in order.
fn reference_executable(books: &[VenueBook], side: Side, quantity: i128) -> Result<Executable, PricingError> {
    let mut levels: Vec<(Level, usize)> = Vec::new();
    for (venue, book) in books.iter().enumerate().filter(|(_, book)| NOW.0 - book.as_of.0 <= MAX_AGE_MS) {
        let side_levels = if side == Side::Buy { &book.asks } else { &book.bids };
        levels.extend(side_levels.iter().map(|level| (*level, venue)));
    }
    if !books.iter().any(|book| NOW.0 - book.as_of.0 <= MAX_AGE_MS) {
        return Err(PricingError::NoFreshBook);
    }
    levels.sort_by_key(|(level, _)| if side == Side::Buy { level.price } else { -level.price });
    let (mut remaining, mut notional, mut used) = (quantity, 0i128, Vec::new());
    for (level, venue) in levels {
        if remaining == 0 {
            break;
        }
        let taken = remaining.min(level.quantity);
        notional = notional.checked_add(level.price.checked_mul(taken).ok_or(PricingError::Overflow)?).unwrap();
        remaining -= taken;
        if !used.contains(&venue) {
            used.push(venue);
        }
    }
    if remaining > 0 {
        return Err(PricingError::InsufficientDepth);
    }
    let as_of = used.iter().map(|venue| books[*venue].as_of).min().unwrap();
    Ok(Executable { notional, quantity, as_of, venues_used: used.len() as u8 })
}

/// Checks the client price of `executable` against the exact rational `notional × factor / (quantity × 10^6)`.
fn assert_price_bounds(executable: &Executable, side: Side, spread: i128, skew: i128, step: i128) {
    // The factor is recomputed here rather than taken from `price_factor`, so a wrong sign there shows.
    let factor = unsigned(match side {
        Side::Buy => 1_000_000 + spread - skew,
        Side::Sell => 1_000_000 - spread - skew,
    });
    let exact = product(&[unsigned(executable.notional), factor]);
    let at = |price: i128| product(&[unsigned(price), unsigned(executable.quantity), 1_000_000]);
    match (side, client_price(executable, side, spread, skew, step)) {
        (Side::Buy, Ok(price)) => {
            assert_eq!(price % step, 0);
            assert_ne!(compare(&at(price), &exact), Ordering::Less, "buy price below the exact price");
            assert_eq!(compare(&at(price - step), &exact), Ordering::Less, "buy price a whole step too high");
        }
        (Side::Sell, Ok(price)) => {
            assert_eq!(price % step, 0);
            assert!(price > 0);
            assert_ne!(compare(&at(price), &exact), Ordering::Greater, "sell price above the exact price");
            assert_eq!(compare(&at(price + step), &exact), Ordering::Greater, "sell price a whole step too low");
        }
        (Side::Sell, Err(PricingError::ZeroPrice)) => {
            assert_eq!(compare(&at(step), &exact), Ordering::Greater, "a sell refused though a step fits");
        }
        (side, other) => panic!("{side:?}: unexpected {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn executable_matches_the_sorted_reference(books in books(), quantity in 1i128..40_000) {
        for side in SIDES {
            let expected = reference_executable(&books, side, quantity);
            prop_assert_eq!(executable(&books, side, quantity, NOW, MAX_AGE_MS), expected);
        }
    }

    #[test]
    fn client_prices_are_the_exact_price_rounded_against_the_client(
        books in books(),
        quantity in 1i128..5_000,
        spread in 0i128..10_000,
        skew in -5_000i128..5_000,
        step in 1i128..200,
    ) {
        for side in SIDES {
            if let Ok(executable) = executable(&books, side, quantity, NOW, MAX_AGE_MS) {
                assert_price_bounds(&executable, side, spread, skew, step);
            }
        }
    }

    #[test]
    fn buy_is_never_below_sell_and_size_never_improves_the_price(
        books in books(),
        small in 1i128..4_000,
        extra in 0i128..4_000,
        spread in 0i128..10_000,
        skew in -5_000i128..5_000,
        step in 1i128..200,
    ) {
        let price = |side, quantity| {
            executable(&books, side, quantity, NOW, MAX_AGE_MS)
                .and_then(|executable| client_price(&executable, side, spread, skew, step))
        };
        let large = small + extra;
        if let (Ok(buy), Ok(sell)) = (price(Side::Buy, small), price(Side::Sell, small)) {
            prop_assert!(buy >= sell, "buy {} < sell {}", buy, sell);
        }
        if let (Ok(buy_small), Ok(buy_large)) = (price(Side::Buy, small), price(Side::Buy, large)) {
            prop_assert!(buy_large >= buy_small);
        }
        if let (Ok(sell_small), Ok(sell_large)) = (price(Side::Sell, small), price(Side::Sell, large)) {
            prop_assert!(sell_large <= sell_small);
        }
        // Depth failures are monotonic too: a size that cannot be filled makes every larger one unfillable.
        for side in SIDES {
            if price(side, small) == Err(PricingError::InsufficientDepth) {
                prop_assert_eq!(price(side, large), Err(PricingError::InsufficientDepth));
            }
        }
    }

    #[test]
    fn quote_amounts_round_against_the_client(
        price in 1i128..100_000_000_000_000,
        quantity in 1i128..100_000_000_000_000_000_000_000,
        price_scale in 0u8..=8,
        base_scale in 0u8..=18,
        quote_scale in 0u8..=18,
    ) {
        let exponent = i32::from(price_scale) + i32::from(base_scale) - i32::from(quote_scale);
        let multiplier = pow10(exponent.min(0).unsigned_abs());
        let divisor = pow10(exponent.max(0).unsigned_abs());
        let exact = product(&[unsigned(price), unsigned(quantity), multiplier]);
        let scaled = |amount: i128| product(&[unsigned(amount), divisor]);
        let paid = quote_amount(price, quantity, price_scale, base_scale, quote_scale, true);
        let received = quote_amount(price, quantity, price_scale, base_scale, quote_scale, false);
        match (paid, received) {
            (Ok(paid), Ok(received)) => {
                // paid = ceil(exact / divisor), received = floor(exact / divisor).
                prop_assert_ne!(compare(&scaled(paid), &exact), Ordering::Less);
                if paid > 0 {
                    prop_assert_eq!(compare(&scaled(paid - 1), &exact), Ordering::Less);
                }
                prop_assert_ne!(compare(&scaled(received), &exact), Ordering::Greater);
                prop_assert_eq!(compare(&scaled(received + 1), &exact), Ordering::Greater);
                prop_assert!(paid - received <= 1);
            }
            (paid, received) => {
                // Only values beyond i128 may be refused.
                prop_assert_eq!(compare(&scaled(i128::MAX), &exact), Ordering::Less, "{:?} {:?}", paid, received);
            }
        }
    }

    #[test]
    fn fees_round_against_the_client(
        quote_amount in 0i128..1_000_000_000_000_000_000_000_000,
        fee_centi_bps in 0i128..=FEE_CENTI_BPS_MAX,
    ) {
        // fee = ceil(amount × rate / 10^6): the smallest integer whose 10^6 multiple covers amount × rate.
        let fee = fee_amount(quote_amount, fee_centi_bps).unwrap();
        let exact = quote_amount * fee_centi_bps;
        prop_assert!(fee * CENTI_BPS_ONE >= exact);
        prop_assert!((fee - 1) * CENTI_BPS_ONE < exact || fee == 0);
        prop_assert!(fee <= quote_amount / 10 + 1, "never more than the 10 % cap allows");
        prop_assert_eq!(fee == 0, exact == 0);
    }

    #[test]
    fn quantity_for_a_quote_amount_equals_a_brute_force(
        books in books(),
        quantity_step in 1i128..20,
        first_step in 1i128..4,
        step_count in 0i128..60,
        price_step in 1i128..6,
        base_scale in 0u8..=3,
        quote_scale in 0u8..=4,
        permille in 1i128..1_500,
        spread in 0i128..5_000,
        skew in -3_000i128..3_000,
    ) {
        let instrument = Instrument {
            symbol: "AAA-BBB".into(),
            base: AssetCode::parse("AAA").unwrap(),
            quote: AssetCode::parse("BBB").unwrap(),
            price_scale: 2,
            price_step,
            quantity_step,
            quantity_min: quantity_step * first_step,
            quantity_max: quantity_step * (first_step + step_count),
        };
        let mid = books.iter().flat_map(|book| book.bids.first().or(book.asks.first())).map(|level| level.price).next();
        let reference_amount = quote_amount(mid.unwrap_or(1_000), instrument.quantity_max, 2, base_scale, quote_scale, true)
            .unwrap();
        let amount = (reference_amount * permille / 1_000).max(1);
        let evaluate = |side: Side, steps: i128| {
            let quantity = steps * quantity_step;
            let executable = executable(&books, side, quantity, NOW, MAX_AGE_MS)?;
            let price = client_price(&executable, side, spread, skew, price_step)?;
            let value = quote_amount(price, quantity, 2, base_scale, quote_scale, side == Side::Buy)?;
            Ok::<_, PricingError>((quantity, price, value))
        };
        let run = |side| {
            quantity_for_quote_amount(
                &books, side, amount, &instrument, base_scale, quote_scale, spread, skew, NOW, MAX_AGE_MS,
            )
        };
        let steps = first_step..=first_step + step_count;
        let priced = |side| steps.clone().map(|steps| evaluate(side, steps)).collect::<Vec<_>>();

        // Buy: the cost (and price) never fall as the size grows; the answer is the largest affordable size.
        let buys = priced(Side::Buy);
        let costs: Vec<(i128, i128, i128)> = buys.iter().filter_map(|result| result.clone().ok()).collect();
        prop_assert!(costs.windows(2).all(|pair| pair[0].1 <= pair[1].1 && pair[0].2 <= pair[1].2));
        let expected_buy = match &buys[0] {
            Err(error) => Err(error.clone()),
            Ok((_, _, cost)) if *cost > amount => Err(PricingError::OutsideLimits),
            Ok(_) => Ok(costs.iter().rev().find(|(_, _, cost)| *cost <= amount).map(|(q, p, _)| (*q, *p)).unwrap()),
        };
        prop_assert_eq!(run(Side::Buy), expected_buy);

        // Sell: the price never rises with size; the answer is the smallest size whose proceeds reach the amount.
        let sells = priced(Side::Sell);
        let prices: Vec<i128> = sells.iter().filter_map(|result| result.as_ref().ok().map(|(_, price, _)| *price)).collect();
        prop_assert!(prices.windows(2).all(|pair| pair[0] >= pair[1]));
        let first_enough = sells.iter().position(|result| matches!(result, Ok((_, _, proceeds)) if *proceeds >= amount));
        let first_failure = sells.iter().position(|result| result.is_err());
        let actual = run(Side::Sell);
        match (first_enough, first_failure) {
            (Some(enough), failure) if failure.is_none_or(|failure| enough < failure) => {
                let (quantity, price, _) = sells[enough].clone().unwrap();
                prop_assert_eq!(actual, Ok((quantity, price)));
            }
            (_, Some(0)) => prop_assert_eq!(actual, Err(sells[0].clone().unwrap_err())),
            (_, Some(_)) => prop_assert!(
                matches!(actual, Err(PricingError::OutsideLimits | PricingError::InsufficientDepth)),
                "{:?}", actual
            ),
            (_, None) => prop_assert_eq!(actual, Err(PricingError::OutsideLimits)),
        }
    }
}
