//! The simulated market: determinism, book shape, outages and cross consistency.

use otcd_core::catalog::Catalog;
use otcd_core::decimal::power_of_ten;
use otcd_core::market::VenueBook;
use otcd_core::time::TimestampMs;
use otcd_market::{HubConfig, MarketHub, SimulatedMarket, SIM_VENUES};
use std::collections::{BTreeMap, BTreeSet};

const START_MS: i64 = 1_714_564_800_000;
const STEP_MS: i64 = 100;

fn run(seed: u64, steps: i64) -> Vec<Vec<VenueBook>> {
    let mut market = SimulatedMarket::new(&Catalog::builtin(), seed);
    (0..steps).map(|step| market.step(TimestampMs(START_MS + step * STEP_MS))).collect()
}

#[test]
fn same_seed_and_times_give_identical_books() {
    let first = run(42, 600);
    let second = run(42, 600);
    assert_eq!(first, second);
    assert!(first.iter().map(Vec::len).sum::<usize>() > 600 * 11 * 2);
}

#[test]
fn a_different_seed_gives_different_books() {
    let first = run(42, 50);
    let other = run(43, 50);
    assert_ne!(first, other);
    // Not just a tiny difference somewhere: the top of book differs on most steps.
    let top = |books: &[VenueBook]| books.iter().find(|book| book.instrument == "BTC-USD").map(|book| book.bids[0]);
    let differing = first.iter().zip(&other).filter(|(left, right)| top(left) != top(right)).count();
    assert!(differing > 40, "{differing}");
}

#[test]
fn the_time_sequence_is_part_of_the_input() {
    // Outage lengths are measured in `now` time: stepping at other times may change which books come out, but
    // the same times always give the same books.
    let mut fast = SimulatedMarket::new(&Catalog::builtin(), 9);
    let mut again = SimulatedMarket::new(&Catalog::builtin(), 9);
    for step in 0..300 {
        let now = TimestampMs(START_MS + step * 10);
        assert_eq!(fast.step(now), again.step(now));
    }
}

/// Mid of the consolidated top of book, doubled to stay an integer: best bid + best ask across venues.
fn doubled_mid(books: &[VenueBook]) -> Option<i128> {
    let bid = books.iter().filter_map(|book| book.bids.first()).map(|level| level.price).max()?;
    let ask = books.iter().filter_map(|book| book.asks.first()).map(|level| level.price).min()?;
    Some(bid + ask)
}

/// `|left - right| <= right * tolerance_bps / 10_000`, all in integers.
fn within_bps(left: i128, right: i128, tolerance_bps: i128) -> bool {
    (left - right).abs() * 10_000 <= right * tolerance_bps
}

/// Ten thousand steps at the default 100 ms rate (about 17 minutes of simulated time), every book checked and
/// published into a hub with the default 2 s maximum age.
#[test]
fn ten_thousand_steps_of_valid_books_outages_and_consistent_crosses() {
    let catalog = Catalog::builtin();
    let hub = MarketHub::new(&catalog, HubConfig::default());
    let mut market = SimulatedMarket::new(&catalog, 2024);
    let mut venues_seen_down: BTreeSet<&str> = BTreeSet::new();
    let mut stale_moments = 0_u32;
    let mut longest_all_stale_ms = 0_i64;
    let mut gaps = 0_u64;
    let mut cross_checks = 0_u32;
    let mut mids_seen: BTreeMap<String, (i128, i128)> = BTreeMap::new();
    let scale = |symbol: &str| catalog.instrument(symbol).unwrap().price_scale;

    for step in 0..10_000_i64 {
        let now = TimestampMs(START_MS + step * STEP_MS);
        let books = market.step(now);
        venues_seen_down.extend(market.venues_down());
        let mut by_instrument: BTreeMap<&str, Vec<VenueBook>> = BTreeMap::new();
        for book in &books {
            let instrument = catalog.instrument(&book.instrument).expect("known instrument");
            assert!(SIM_VENUES.contains(&book.venue.as_str()));
            assert_eq!(book.as_of, now);
            book.validate().expect("valid book");
            assert!(book.bids.len() >= 20 && book.asks.len() >= 20, "{} {}", book.venue, book.instrument);
            for level in book.bids.iter().chain(&book.asks) {
                assert_eq!(level.price % instrument.price_step, 0, "{} price off step", book.instrument);
                assert_eq!(level.quantity % instrument.quantity_step, 0, "{} quantity off step", book.instrument);
                assert!(level.quantity >= instrument.quantity_min);
            }
            // Prices get worse with depth, faster the deeper: the deepest ten levels span more than the first ten.
            for (side, direction) in [(&book.bids, -1), (&book.asks, 1)] {
                let span = |levels: &[otcd_core::market::Level]| direction * (levels[9].price - levels[0].price);
                assert!(span(&side[side.len() - 10..]) > span(&side[..10]), "{} {}", book.venue, book.instrument);
            }
            // Skipped levels: a gap more than 1.5 times both of its neighbours.
            gaps += book
                .asks
                .windows(4)
                .filter(|window| {
                    let spacing = [1, 2, 3].map(|index| window[index].price - window[index - 1].price);
                    spacing[1] * 2 > spacing[0] * 3 && spacing[1] * 2 > spacing[2] * 3
                })
                .count() as u64;
            by_instrument.entry(&book.instrument).or_default().push(book.clone());
            hub.publish(book.clone()).expect("the hub accepts simulated books");
        }

        for instrument in catalog.instruments() {
            let fresh = hub.fresh_books(&instrument.symbol, now);
            // Never all venues stale: pricing always has a fresh book.
            assert!(fresh.len() >= 2, "{} has {} fresh venues at step {step}", instrument.symbol, fresh.len());
            // The books of one step are never crossed across venues (a venue that just went down may leave a
            // book that the market moves through before it goes stale, as on real venues).
            let current = &by_instrument[instrument.symbol.as_str()];
            let best_bid = current.iter().map(|book| book.bids[0].price).max().unwrap();
            let best_ask = current.iter().map(|book| book.asks[0].price).min().unwrap();
            assert!(best_bid < best_ask, "{} crossed across venues at step {step}", instrument.symbol);
            if fresh.len() < 3 {
                stale_moments += 1;
            }
        }
        if catalog.instruments().iter().all(|instrument| hub.fresh_books(&instrument.symbol, now).is_empty()) {
            longest_all_stale_ms += STEP_MS;
        }

        if step % 50 == 0 {
            let mid = |symbol: &str| doubled_mid(&by_instrument[symbol]).unwrap();
            for (symbol, value) in [("BTC-USD", mid("BTC-USD")), ("EUR-USD", mid("EUR-USD"))] {
                let entry = mids_seen.entry(symbol.to_owned()).or_insert((value, value));
                *entry = (entry.0.min(value), entry.1.max(value));
            }
            // cross × quote-in-USD ≈ base-in-USD, with the scales lined up in integers.
            let checks = [
                ("BTC-EUR", "EUR-USD", "BTC-USD"),
                ("ETH-EUR", "EUR-USD", "ETH-USD"),
                ("BTC-USDT", "USDT-USD", "BTC-USD"),
                ("ETH-USDT", "USDT-USD", "ETH-USD"),
                ("ETH-BTC", "BTC-USD", "ETH-USD"),
            ];
            for (cross, quote_usd, base_usd) in checks {
                // (cross / 10^a) * (quote_usd / 10^b) vs base_usd / 10^c, doubled mids on both sides of the product.
                let left = mid(cross) * mid(quote_usd) * power_of_ten(scale(base_usd));
                let right = mid(base_usd) * 2 * power_of_ten(scale(cross) + scale(quote_usd));
                assert!(within_bps(left, right, 5), "{cross}: {left} vs {right} at step {step}");
                cross_checks += 1;
            }
        }
    }

    assert!(!venues_seen_down.is_empty(), "no outage in 10,000 steps");
    assert!(stale_moments > 100, "outages should leave venues stale for a while: {stale_moments}");
    assert_eq!(longest_all_stale_ms, 0);
    assert!(gaps > 100_000, "gaps: {gaps}");
    assert_eq!(cross_checks, 200 * 5);
    // The walk moves prices but keeps them near their anchors.
    let (low, high) = mids_seen["BTC-USD"];
    assert!(low < high && low > 2 * 4_000_000 && high < 2 * 6_000_000, "BTC-USD {low}..{high}");
    let (low, high) = mids_seen["EUR-USD"];
    assert!(low < high && low > 2 * 100_000 && high < 2 * 117_000, "EUR-USD {low}..{high}");
}

#[test]
fn anchors_are_where_the_desk_expects_them() {
    let mut market = SimulatedMarket::new(&Catalog::builtin(), 1);
    let books = market.step(TimestampMs(START_MS));
    let alpha_mid = |symbol: &str| {
        let book = books.iter().find(|book| book.instrument == symbol && book.venue == "sim-alpha").unwrap();
        (book.bids[0].price + book.asks[0].price) / 2
    };
    let expectations = [
        ("BTC-USD", 5_000_000),
        ("ETH-USD", 300_000),
        ("EUR-USD", 108_700),
        ("GBP-USD", 126_500),
        ("USDT-USD", 10_001),
        ("USDC-USD", 9_999),
        ("BTC-EUR", 4_599_816),
        ("ETH-BTC", 6_000),
    ];
    for (symbol, expected) in expectations {
        assert!(within_bps(alpha_mid(symbol), expected, 5), "{symbol}: {} vs {expected}", alpha_mid(symbol));
    }
}
