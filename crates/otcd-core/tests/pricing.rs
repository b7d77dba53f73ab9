//! Hand-computed pricing cases: every expected number below was worked out on paper from the books in the test,
//! so each assertion pins one rule (level order across venues, partial last level, freshness, depth, the exact
//! rational rounding, the direction of rounding, the units of `quote_amount`).

use otcd_core::catalog::{AssetCode, Catalog, Instrument};
use otcd_core::market::book::UNLIMITED_QUANTITY;
use otcd_core::market::pricing::{self, client_price, executable, quantity_for_quote_amount, quote_amount};
use otcd_core::market::{Executable, Level, PricingError, Side, VenueBook};
use otcd_core::time::TimestampMs;

/// One whole BTC in minor units.
const BTC: i128 = 100_000_000;
const NOW: TimestampMs = TimestampMs(1_000_000);
const MAX_AGE_MS: i64 = 500;
/// 20 bps in centi-bps.
const SPREAD_20_BPS: i128 = 2_000;

fn level(price: i128, quantity: i128) -> Level {
    Level { price, quantity }
}

fn book(venue: &str, bids: Vec<Level>, asks: Vec<Level>, as_of: TimestampMs) -> VenueBook {
    let book = VenueBook { venue: venue.to_owned(), instrument: "BTC-USD".to_owned(), bids, asks, as_of };
    book.validate().expect("test books are valid");
    book
}

/// Venue A (published 100 ms ago): asks 100.00 × 1, 101.00 × 2; bids 99.90 × 1, 99.00 × 3.
fn venue_a(as_of: TimestampMs) -> VenueBook {
    book("a", vec![level(9_990, BTC), level(9_900, 3 * BTC)], vec![level(10_000, BTC), level(10_100, 2 * BTC)], as_of)
}

/// Venue B (published 300 ms ago): asks 100.50 × 1.5, 102.00 × 5; bids 99.80 × 0.5, 99.50 × 2.
fn venue_b(as_of: TimestampMs) -> VenueBook {
    book(
        "b",
        vec![level(9_980, BTC / 2), level(9_950, 2 * BTC)],
        vec![level(10_050, 3 * BTC / 2), level(10_200, 5 * BTC)],
        as_of,
    )
}

fn both_venues() -> Vec<VenueBook> {
    vec![venue_a(TimestampMs(NOW.0 - 100)), venue_b(TimestampMs(NOW.0 - 300))]
}

fn btc_usd() -> Instrument {
    Catalog::builtin().instrument("BTC-USD").expect("built in").clone()
}

fn exec(quantity: i128, notional: i128) -> Executable {
    Executable { notional, quantity, as_of: NOW, venues_used: 1 }
}

#[test]
fn buy_walks_both_venues_best_first_and_takes_part_of_the_last_level() {
    // Buy 3: 1 @ 100.00 (A), 1.5 @ 100.50 (B), 0.5 @ 101.00 (A) = 30125 (× 10^8).
    let result = executable(&both_venues(), Side::Buy, 3 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!(result.notional, (10_000 + 15_075 + 5_050) * BTC);
    assert_eq!(result.quantity, 3 * BTC);
    assert_eq!(result.venues_used, 2);
    assert_eq!(result.as_of, TimestampMs(NOW.0 - 300));
    // VWAP 30125 / 3 = 10041.666…; × 1.002 = 10061.75 → up to 10062 (100.62). Rounding the VWAP first
    // (10042 × 1.002 = 10062.08 → 10063) would be one cent worse for the client.
    assert_eq!(client_price(&result, Side::Buy, SPREAD_20_BPS, 0, 1), Ok(10_062));
    // Spread 0: the ask VWAP itself rounded up.
    assert_eq!(client_price(&result, Side::Buy, 0, 0, 1), Ok(10_042));
    // On a 0.05 step: 10061.75 → 10065.
    assert_eq!(client_price(&result, Side::Buy, SPREAD_20_BPS, 0, 5), Ok(10_065));
}

#[test]
fn sell_walks_the_bids_best_first() {
    // Sell 3: 1 @ 99.90 (A), 0.5 @ 99.80 (B), 1.5 @ 99.50 (B) = 9990 + 4990 + 14925 = 29905 (× 10^8).
    let three = executable(&both_venues(), Side::Sell, 3 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!(three.notional, 29_905 * BTC);
    assert_eq!(three.venues_used, 2);
    // VWAP 9968.33…; × 0.998 = 9948.3966… → down to 9948 (99.48); on a 0.05 step 9945; on 0.10, 9940.
    assert_eq!(client_price(&three, Side::Sell, SPREAD_20_BPS, 0, 1), Ok(9_948));
    assert_eq!(client_price(&three, Side::Sell, SPREAD_20_BPS, 0, 5), Ok(9_945));
    assert_eq!(client_price(&three, Side::Sell, SPREAD_20_BPS, 0, 10), Ok(9_940));
    assert_eq!(client_price(&three, Side::Sell, 0, 0, 1), Ok(9_968));

    // Sell 4 reaches A's second level: + 0.5 @ 99.50 (B, rest of the level) + 0.5 @ 99.00 (A).
    let four = executable(&both_venues(), Side::Sell, 4 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!(four.notional, (9_990 + 4_990 + 19_900 + 4_950) * BTC);
    // 39830 / 4 × 0.998 = 9937.585 → 9937.
    assert_eq!(client_price(&four, Side::Sell, SPREAD_20_BPS, 0, 1), Ok(9_937));
}

#[test]
fn as_of_is_the_oldest_of_the_contributing_venues_only() {
    // Buy 0.5 only touches A's first level; B (older) did not contribute.
    let small = executable(&both_venues(), Side::Buy, BTC / 2, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((small.venues_used, small.as_of, small.notional), (1, TimestampMs(NOW.0 - 100), 10_000 * BTC / 2));
    // Sell 1.2: A's 1 @ 99.90 and 0.2 of B's 99.80.
    let both = executable(&both_venues(), Side::Sell, 6 * BTC / 5, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((both.venues_used, both.as_of), (2, TimestampMs(NOW.0 - 300)));
    assert_eq!(both.notional, 9_990 * BTC + 9_980 * BTC / 5);
}

#[test]
fn equal_prices_on_two_venues_are_both_taken() {
    let books = vec![
        book("a", vec![], vec![level(10_000, BTC)], NOW),
        book("b", vec![], vec![level(10_000, BTC), level(10_001, BTC)], NOW),
    ];
    let result = executable(&books, Side::Buy, 2 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((result.notional, result.venues_used), (20_000 * BTC, 2));
}

#[test]
fn stale_venues_are_left_out() {
    // A is 600 ms old (stale at max age 500), B fresh: buy 2 = 1.5 @ 100.50 + 0.5 @ 102.00 from B alone.
    let books = vec![venue_a(TimestampMs(NOW.0 - 600)), venue_b(TimestampMs(NOW.0 - 300))];
    let result = executable(&books, Side::Buy, 2 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((result.notional, result.venues_used), ((15_075 + 5_100) * BTC, 1));
    // With A fresh the same size is 1 @ 100.00 + 1 @ 100.50.
    let fresh = executable(&both_venues(), Side::Buy, 2 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!(fresh.notional, 20_050 * BTC);
    // Exactly max_age old still counts as fresh.
    let boundary = vec![venue_a(TimestampMs(NOW.0 - MAX_AGE_MS)), venue_b(TimestampMs(NOW.0 - 300))];
    assert_eq!(executable(&boundary, Side::Buy, 2 * BTC, NOW, MAX_AGE_MS).unwrap().notional, 20_050 * BTC);
}

#[test]
fn all_stale_is_no_fresh_book_until_a_venue_updates() {
    let mut books = vec![venue_a(TimestampMs(NOW.0 - 501)), venue_b(TimestampMs(NOW.0 - 10_000))];
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(executable(&books, side, BTC, NOW, MAX_AGE_MS), Err(PricingError::NoFreshBook));
    }
    assert_eq!(executable(&[], Side::Buy, BTC, NOW, MAX_AGE_MS), Err(PricingError::NoFreshBook));
    books[1].as_of = NOW;
    let result = executable(&books, Side::Buy, BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((result.notional, result.as_of), (10_050 * BTC, NOW));
}

#[test]
fn depth_exactly_full_is_priced_one_more_unit_is_not() {
    // All asks: 1 @ 100.00 + 2 @ 101.00 + 1.5 @ 100.50 + 5 @ 102.00 = 9.5 BTC for 96275 (× 10^8).
    let full = 19 * BTC / 2;
    let result = executable(&both_venues(), Side::Buy, full, NOW, MAX_AGE_MS).unwrap();
    assert_eq!(result.notional, 96_275 * BTC);
    assert_eq!(executable(&both_venues(), Side::Buy, full + 1, NOW, MAX_AGE_MS), Err(PricingError::InsufficientDepth));
    // Bids: 1 + 3 + 0.5 + 2 = 6.5 BTC.
    let bids = 13 * BTC / 2;
    assert!(executable(&both_venues(), Side::Sell, bids, NOW, MAX_AGE_MS).is_ok());
    assert_eq!(executable(&both_venues(), Side::Sell, bids + 1, NOW, MAX_AGE_MS), Err(PricingError::InsufficientDepth));
    // An empty side of a fresh book has no depth at all.
    let empty = vec![book("a", vec![], vec![level(10_000, BTC)], NOW)];
    assert_eq!(executable(&empty, Side::Sell, 1, NOW, MAX_AGE_MS), Err(PricingError::InsufficientDepth));
}

#[test]
fn unlimited_levels_are_only_multiplied_by_what_is_taken() {
    let manual = book("manual", vec![level(9_990, UNLIMITED_QUANTITY)], vec![level(10_010, UNLIMITED_QUANTITY)], NOW);
    let huge = 10i128.pow(30);
    let buy = executable(std::slice::from_ref(&manual), Side::Buy, huge, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((buy.notional, buy.quantity), (10_010 * huge, huge));
    let sell = executable(std::slice::from_ref(&manual), Side::Sell, 1, NOW, MAX_AGE_MS).unwrap();
    assert_eq!(sell.notional, 9_990);
    // Behind a better venue: A's 1 @ 100.00, then 2 taken from the unlimited 100.10 before A's 101.00.
    let books = vec![venue_a(NOW), manual];
    let mixed = executable(&books, Side::Buy, 3 * BTC, NOW, MAX_AGE_MS).unwrap();
    assert_eq!((mixed.notional, mixed.venues_used), ((10_000 + 2 * 10_010) * BTC, 2));
    // A size whose notional does not fit i128 is an overflow, not a wrap.
    assert_eq!(
        executable(std::slice::from_ref(&books[1]), Side::Buy, i128::MAX / 1_000, NOW, MAX_AGE_MS),
        Err(PricingError::Overflow)
    );
}

#[test]
fn invalid_inputs_are_refused() {
    for quantity in [0, -1, i128::MIN] {
        assert_eq!(
            executable(&both_venues(), Side::Buy, quantity, NOW, MAX_AGE_MS),
            Err(PricingError::InvalidQuantity)
        );
    }
    let too_many: Vec<VenueBook> = (0..17).map(|_| venue_a(NOW)).collect();
    assert_eq!(executable(&too_many, Side::Buy, BTC, NOW, MAX_AGE_MS), Err(PricingError::TooManyVenues));
    assert!(executable(&too_many[..16], Side::Buy, BTC, NOW, MAX_AGE_MS).is_ok());
    // An unsorted book (never validated) is refused rather than priced out of order.
    let unsorted = VenueBook {
        venue: "x".into(),
        instrument: "BTC-USD".into(),
        bids: vec![],
        asks: vec![level(10_100, BTC), level(10_000, BTC)],
        as_of: NOW,
    };
    assert_eq!(executable(&[unsorted], Side::Buy, 2 * BTC, NOW, MAX_AGE_MS), Err(PricingError::InvalidBook));
    let zero = VenueBook {
        venue: "x".into(),
        instrument: "BTC-USD".into(),
        bids: vec![],
        asks: vec![level(10_000, 0)],
        as_of: NOW,
    };
    assert_eq!(executable(&[zero], Side::Buy, 1, NOW, MAX_AGE_MS), Err(PricingError::InvalidBook));
}

#[test]
fn price_on_the_step_stays_and_one_unit_over_rounds_against_the_client() {
    // Exactly 100.00 per unit on a 0.05 step, no spread.
    assert_eq!(client_price(&exec(3, 30_000), Side::Buy, 0, 0, 5), Ok(10_000));
    assert_eq!(client_price(&exec(3, 30_000), Side::Sell, 0, 0, 5), Ok(10_000));
    // One unit of notional over: 100.00333… → buy 100.05, sell 100.00.
    assert_eq!(client_price(&exec(3, 30_001), Side::Buy, 0, 0, 5), Ok(10_005));
    assert_eq!(client_price(&exec(3, 30_001), Side::Sell, 0, 0, 5), Ok(10_000));
    // One unit under: 99.99666… → buy 100.00, sell 99.95.
    assert_eq!(client_price(&exec(3, 29_999), Side::Buy, 0, 0, 5), Ok(10_000));
    assert_eq!(client_price(&exec(3, 29_999), Side::Sell, 0, 0, 5), Ok(9_995));
}

#[test]
fn tiny_spreads_still_move_the_price_a_step() {
    // 1 centi-bps on 100.00: 100.0001 → buy 100.01; 99.9999 → sell 99.99.
    assert_eq!(client_price(&exec(1, 10_000), Side::Buy, 1, 0, 1), Ok(10_001));
    assert_eq!(client_price(&exec(1, 10_000), Side::Sell, 1, 0, 1), Ok(9_999));
    // 1 bp (100 centi-bps) on 10 000.00 is exactly 1.00.
    assert_eq!(client_price(&exec(1, 1_000_000), Side::Buy, 100, 0, 1), Ok(1_000_100));
    assert_eq!(client_price(&exec(1, 1_000_000), Side::Sell, 100, 0, 1), Ok(999_900));
}

#[test]
fn skew_shades_both_sides() {
    let executable = exec(1, 1_000_000);
    // Long the asset (skew +5 bps): buy factor 1 + 0.002 − 0.0005, sell 1 − 0.002 − 0.0005.
    assert_eq!(client_price(&executable, Side::Buy, SPREAD_20_BPS, 500, 1), Ok(1_001_500));
    assert_eq!(client_price(&executable, Side::Sell, SPREAD_20_BPS, 500, 1), Ok(997_500));
    // Short (negative skew) shades both up.
    assert_eq!(client_price(&executable, Side::Buy, SPREAD_20_BPS, -500, 1), Ok(1_002_500));
    assert_eq!(client_price(&executable, Side::Sell, SPREAD_20_BPS, -500, 1), Ok(998_500));
    assert_eq!(pricing::price_factor(Side::Sell, 2_000, 500), Ok(997_500));
}

#[test]
fn client_price_refuses_what_cannot_be_quoted() {
    let executable = exec(1, 10_000);
    assert_eq!(client_price(&executable, Side::Sell, 999_999, 1, 1), Err(PricingError::NonPositiveFactor));
    assert_eq!(client_price(&executable, Side::Sell, 1_000_000, 0, 1), Err(PricingError::NonPositiveFactor));
    assert_eq!(client_price(&executable, Side::Buy, 0, 1_000_000, 1), Err(PricingError::NonPositiveFactor));
    assert_eq!(client_price(&executable, Side::Buy, -1, 0, 1), Err(PricingError::InvalidSpread));
    assert_eq!(client_price(&executable, Side::Buy, 0, 0, 0), Err(PricingError::InvalidStep));
    assert_eq!(client_price(&exec(0, 10_000), Side::Buy, 0, 0, 1), Err(PricingError::InvalidQuantity));
    assert_eq!(client_price(&exec(1, 0), Side::Buy, 0, 0, 1), Err(PricingError::InvalidPrice));
    assert_eq!(client_price(&executable, Side::Buy, i128::MAX, 0, 1), Err(PricingError::Overflow));
    // A sell that rounds down to zero is refused; the buy rounds up to one step.
    assert_eq!(client_price(&exec(1, 3), Side::Sell, 0, 0, 5), Err(PricingError::ZeroPrice));
    assert_eq!(client_price(&exec(1, 3), Side::Buy, 0, 0, 5), Ok(5));
    // Huge notionals take the 256-bit path and still round exactly: (10^36 + 1) / 10^30 is 10^6 plus a hair.
    let huge = Executable { notional: 10i128.pow(36) + 1, quantity: 10i128.pow(30), as_of: NOW, venues_used: 1 };
    assert_eq!(client_price(&huge, Side::Buy, 0, 0, 1), Ok(1_000_001));
    assert_eq!(client_price(&huge, Side::Sell, 0, 0, 1), Ok(1_000_000));
    assert_eq!(client_price(&huge, Side::Buy, 1, 0, 1), Ok(1_000_002));
}

#[test]
fn quote_amounts_in_minor_units() {
    // BTC-USD: 50050.00 × 1 BTC = 50050.00 USD.
    assert_eq!(quote_amount(5_005_000, BTC, 2, 8, 2, true), Ok(5_005_000));
    assert_eq!(quote_amount(5_005_000, BTC, 2, 8, 2, false), Ok(5_005_000));
    // 1 satoshi at 50050.00 is 0.05005 cents: the client pays 1 cent, receives 0.
    assert_eq!(quote_amount(5_005_000, 1, 2, 8, 2, true), Ok(1));
    assert_eq!(quote_amount(5_005_000, 1, 2, 8, 2, false), Ok(0));
    // 0.0001 BTC at 50050.01 = 5.005001 USD → 5.01 paid, 5.00 received.
    assert_eq!(quote_amount(5_005_001, 10_000, 2, 8, 2, true), Ok(501));
    assert_eq!(quote_amount(5_005_001, 10_000, 2, 8, 2, false), Ok(500));
    // 10 000 ETH at 1 000 000.00 USD = 10^10 USD = 10^12 cents.
    let ten_thousand_eth = 10i128.pow(22);
    assert_eq!(quote_amount(100_000_000, ten_thousand_eth, 2, 18, 2, true), Ok(10i128.pow(12)));
    // A product beyond i128 (10^12 × 10^28 = 10^40) still gives the exact 10^22.
    assert_eq!(quote_amount(10i128.pow(12), 10i128.pow(28), 2, 18, 2, false), Ok(10i128.pow(22)));
    // ETH-USDT: price scale 2, ETH 18, USDT 6: 3000.00 × 1.5 ETH = 4500 USDT.
    assert_eq!(quote_amount(300_000, 15 * 10i128.pow(17), 2, 18, 6, false), Ok(4_500_000_000));
    // A negative exponent multiplies: price scale 0, base 0, quote 2: 7 × 3 = 21.00.
    assert_eq!(quote_amount(7, 3, 0, 0, 2, false), Ok(2_100));
    // An exponent beyond 38: 10^30 / 10^48 is a tiny fraction.
    assert_eq!(quote_amount(10i128.pow(8), 10i128.pow(22), 30, 18, 0, true), Ok(1));
    assert_eq!(quote_amount(10i128.pow(8), 10i128.pow(22), 30, 18, 0, false), Ok(0));
    assert_eq!(quote_amount(i128::MAX, i128::MAX, 0, 0, 0, false), Err(PricingError::Overflow));
    assert_eq!(quote_amount(0, 1, 2, 8, 2, true), Err(PricingError::InvalidPrice));
    assert_eq!(quote_amount(1, 0, 2, 8, 2, true), Err(PricingError::InvalidQuantity));
}

#[test]
fn buy_for_a_budget_takes_the_largest_affordable_step() {
    let books = vec![book("a", vec![level(4_999_000, 10 * BTC)], vec![level(5_000_000, 10 * BTC)], NOW)];
    let instrument = btc_usd();
    let run = |side, amount, spread| {
        quantity_for_quote_amount(&books, side, amount, &instrument, 8, 2, spread, 0, NOW, MAX_AGE_MS)
    };
    // Spread 0, 50050.00 USD at 50000.00 buys exactly 1.001 BTC.
    assert_eq!(run(Side::Buy, 5_005_000, 0), Ok((100_100_000, 5_000_000)));
    // 20 bps: 50100.00; 0.999 BTC costs 50049.90, 0.9991 BTC would cost 50054.91.
    assert_eq!(run(Side::Buy, 5_005_000, SPREAD_20_BPS), Ok((99_900_000, 5_010_000)));
    assert_eq!(quote_amount(5_010_000, 99_910_000, 2, 8, 2, true), Ok(5_005_491));
    // Below the minimum's cost (0.0001 BTC = 5.01 USD at 50100.00) there is nothing to quote.
    assert_eq!(run(Side::Buy, 500, SPREAD_20_BPS), Err(PricingError::OutsideLimits));
    assert_eq!(run(Side::Buy, 501, SPREAD_20_BPS), Ok((10_000, 5_010_000)));
    // A budget beyond the book's depth buys the whole book (10 BTC), not more.
    assert_eq!(run(Side::Buy, 10i128.pow(12), 0), Ok((10 * BTC, 5_000_000)));
    assert_eq!(run(Side::Buy, 0, 0), Err(PricingError::InvalidAmount));
}

#[test]
fn sell_for_an_amount_takes_the_smallest_sufficient_step() {
    let books = vec![book("a", vec![level(5_000_000, 10 * BTC)], vec![level(5_001_000, 10 * BTC)], NOW)];
    let instrument = btc_usd();
    let run = |amount, spread| {
        quantity_for_quote_amount(&books, Side::Sell, amount, &instrument, 8, 2, spread, 0, NOW, MAX_AGE_MS)
    };
    assert_eq!(run(5_005_000, 0), Ok((100_100_000, 5_000_000)));
    // 20 bps: 49900.00; 1.003 BTC receives 50049.70 < 50050.00, 1.0031 BTC 50054.69.
    assert_eq!(run(5_005_000, SPREAD_20_BPS), Ok((100_310_000, 4_990_000)));
    assert_eq!(quote_amount(4_990_000, 100_300_000, 2, 8, 2, false), Ok(5_004_970));
    // More than the book holds (1 000 000 USD = 20 BTC of 10) is a depth problem; tiny amounts get the minimum.
    assert_eq!(run(100_000_000, 0), Err(PricingError::InsufficientDepth));
    assert_eq!(run(1, 0), Ok((10_000, 5_000_000)));
    // More than the instrument's maximum (1000 BTC) on an unlimited book.
    let manual = vec![book("m", vec![level(5_000_000, UNLIMITED_QUANTITY)], vec![], NOW)];
    let beyond = quantity_for_quote_amount(&manual, Side::Sell, 10i128.pow(10), &instrument, 8, 2, 0, 0, NOW, 500);
    assert_eq!(beyond, Err(PricingError::OutsideLimits));
    let at_max = quantity_for_quote_amount(&manual, Side::Sell, 5_000_000_000, &instrument, 8, 2, 0, 0, NOW, 500);
    assert_eq!(at_max, Ok((1_000 * BTC, 5_000_000)));
}

#[test]
fn sell_proceeds_are_not_monotonic_and_the_smallest_quantity_is_still_found() {
    // Whole units everywhere: bids 10 × 10, 5 × 100; step 1, spread 0.
    let instrument = Instrument {
        symbol: "AAA-BBB".into(),
        base: AssetCode::parse("AAA").unwrap(),
        quote: AssetCode::parse("BBB").unwrap(),
        price_scale: 0,
        price_step: 1,
        quantity_step: 1,
        quantity_min: 1,
        quantity_max: 100,
    };
    let books = vec![book("a", vec![level(10, 10), level(5, 100)], vec![], NOW)];
    let proceeds = |quantity| {
        let executable = executable(&books, Side::Sell, quantity, NOW, MAX_AGE_MS).unwrap();
        quote_amount(client_price(&executable, Side::Sell, 0, 0, 1).unwrap(), quantity, 0, 0, 0, false).unwrap()
    };
    // 10 units at 10 = 100, but 11 units at floor(105 / 11) = 9 receive only 99.
    assert_eq!((proceeds(10), proceeds(11), proceeds(12)), (100, 99, 108));
    let run = |amount| quantity_for_quote_amount(&books, Side::Sell, amount, &instrument, 0, 0, 0, 0, NOW, MAX_AGE_MS);
    assert_eq!(run(100), Ok((10, 10)));
    assert_eq!(run(101), Ok((12, 9)));
    assert_eq!(run(99), Ok((10, 10)));
}
