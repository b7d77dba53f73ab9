//! Updates applied per second per connector: parse + apply + (Kraken) checksum, on one core, for Binance-sized
//! diffs (the `@depth@100ms` stream of a busy pair carries about 20 to 60 levels per event; we use 40). The
//! books hold 1,000 levels per side, as a live local book does. Results: BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use otcd_core::catalog::Catalog;
use otcd_venues::config::VenuesConfig;
use otcd_venues::feed::{Effect, Protocol};
use otcd_venues::{binance::Binance, bitstamp::Bitstamp, coinbase::Coinbase, fake, kraken::Kraken};

const LEVELS_PER_SIDE: usize = 1_000;
const LEVELS_PER_UPDATE: usize = 40;
const UPDATES: usize = 1_000;

fn config(kind: &str, symbol: &str, depth: usize) -> VenuesConfig {
    let text = format!(
        "[[venues]]\nname = \"v\"\nkind = \"{kind}\"\ndepth = {depth}\nbook_levels_max = 5000\n[venues.symbols]\n\"BTC-USD\" = \"{symbol}\"\n\"BTC-USDT\" = \"{symbol}T\"\n"
    );
    VenuesConfig::parse(&text, &Catalog::builtin()).unwrap()
}

fn price(index: usize, bid: bool) -> String {
    // Around 50,000 with a 0.01 step, bids below 50,000.00 and asks above.
    let cents = if bid { 5_000_000 - index as i64 } else { 5_000_001 + index as i64 };
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn levels(range: std::ops::Range<usize>, bid: bool, round: usize) -> Vec<(String, String)> {
    range
        .map(|index| {
            (price(index, bid), format!("{}.{:08}", (index + round) % 7, (index * 7919 + round) % 100_000_000))
        })
        .collect()
}

/// A book of LEVELS_PER_SIDE levels and UPDATES updates of LEVELS_PER_UPDATE levels each (half bids, half asks,
/// spread over the top 200 levels, some deletes).
type Levels = Vec<(String, String)>;

/// The book's bids and asks, and every update's bids and asks.
fn updates() -> (Levels, Levels, Vec<(Levels, Levels)>) {
    let bids = levels(0..LEVELS_PER_SIDE, true, 1);
    let asks = levels(0..LEVELS_PER_SIDE, false, 1);
    let updates = (0..UPDATES)
        .map(|round| {
            let start = (round * 13) % 180;
            let half = LEVELS_PER_UPDATE / 2;
            let mut b = levels(start..start + half, true, round);
            let mut a = levels(start..start + half, false, round);
            // Every level deleted is stated again by the next rounds, so the book keeps its size.
            b[0].1 = "0".to_owned();
            a[0].1 = "0".to_owned();
            (b, a)
        })
        .collect();
    (bids, asks, updates)
}

fn bench(criterion: &mut Criterion) {
    let catalog = Catalog::builtin();
    let (bids, asks, rounds) = updates();
    let mut group = criterion.benchmark_group("updates_applied");
    group.throughput(Throughput::Elements(UPDATES as u64));
    group.sample_size(20);

    let config_binance = config("binance", "BTCUSD", 25);
    let binance_messages: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(index, (b, a))| fake::binance_event("BTCUSD", 101 + index as u64, 101 + index as u64, b, a))
        .collect();
    group.bench_function(BenchmarkId::new("binance", LEVELS_PER_UPDATE), |bencher| {
        bencher.iter_batched(
            || {
                let mut protocol = Binance::new(&config_binance.venues[0], &catalog);
                protocol.on_connect();
                let mut effects = Vec::new();
                protocol.on_message(&fake::binance_event("BTCUSD", 99, 100, &[], &[]), &mut effects).unwrap();
                protocol.on_snapshot(0, &fake::binance_snapshot(100, &bids, &asks), &mut effects).unwrap();
                protocol
            },
            |mut protocol| {
                let mut effects: Vec<Effect> = Vec::with_capacity(4);
                for message in &binance_messages {
                    effects.clear();
                    protocol.on_message(message, &mut effects).unwrap();
                    assert_eq!(effects, [Effect::Publish(0)]);
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });

    let config_coinbase = config("coinbase", "BTC-USD", 25);
    let coinbase_messages: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(index, (b, a))| fake::coinbase_l2(1 + index as u64, "update", "BTC-USD", b, a))
        .collect();
    group.bench_function(BenchmarkId::new("coinbase", LEVELS_PER_UPDATE), |bencher| {
        bencher.iter_batched(
            || {
                let mut protocol = Coinbase::new(&config_coinbase.venues[0], &catalog);
                protocol.on_connect();
                protocol
                    .on_message(&fake::coinbase_l2(0, "snapshot", "BTC-USD", &bids, &asks), &mut Vec::new())
                    .unwrap();
                protocol
            },
            |mut protocol| {
                let mut effects: Vec<Effect> = Vec::with_capacity(4);
                for message in &coinbase_messages {
                    effects.clear();
                    protocol.on_message(message, &mut effects).unwrap();
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });

    // Kraken: the book is the subscribed depth (1000); every update is checked against its CRC32.
    let config_kraken = config("kraken", "BTC/USD", 1000);
    let kraken_messages: Vec<String> = {
        let mut book_bids: std::collections::BTreeMap<i64, String> =
            bids.iter().map(|(p, q)| (key(p), q.clone())).collect();
        let mut book_asks: std::collections::BTreeMap<i64, String> =
            asks.iter().map(|(p, q)| (key(p), q.clone())).collect();
        rounds
            .iter()
            .map(|(b, a)| {
                for (p, q) in b {
                    if q == "0" {
                        book_bids.remove(&key(p));
                    } else {
                        book_bids.insert(key(p), q.clone());
                    }
                }
                for (p, q) in a {
                    if q == "0" {
                        book_asks.remove(&key(p));
                    } else {
                        book_asks.insert(key(p), q.clone());
                    }
                }
                let top_bids: Vec<(String, String)> =
                    book_bids.iter().rev().take(10).map(|(p, q)| (text(*p), q.clone())).collect();
                let top_asks: Vec<(String, String)> =
                    book_asks.iter().take(10).map(|(p, q)| (text(*p), q.clone())).collect();
                let b: Vec<(String, String)> = b
                    .iter()
                    .map(|(p, q)| (p.clone(), if q == "0" { "0.00000000".into() } else { q.clone() }))
                    .collect();
                let a: Vec<(String, String)> = a
                    .iter()
                    .map(|(p, q)| (p.clone(), if q == "0" { "0.00000000".into() } else { q.clone() }))
                    .collect();
                fake::kraken_book("update", "BTC/USD", &b, &a, fake::kraken_checksum(&top_bids, &top_asks))
            })
            .collect()
    };
    group.bench_function(BenchmarkId::new("kraken", LEVELS_PER_UPDATE), |bencher| {
        bencher.iter_batched(
            || {
                let mut protocol = Kraken::new(&config_kraken.venues[0], &catalog);
                protocol.on_connect();
                let mut effects = Vec::new();
                let snapshot =
                    fake::kraken_book("snapshot", "BTC/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks));
                protocol.on_message(&snapshot, &mut effects).unwrap();
                assert_eq!(effects, [Effect::Publish(0)]);
                protocol
            },
            |mut protocol| {
                let mut effects: Vec<Effect> = Vec::with_capacity(4);
                for message in &kraken_messages {
                    effects.clear();
                    protocol.on_message(message, &mut effects).unwrap();
                    assert_eq!(effects, [Effect::Publish(0)], "checksums match");
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });

    let config_bitstamp = config("bitstamp", "btcusd", 25);
    let bitstamp_messages: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(index, (b, a))| fake::bitstamp_diff("btcusd", 1_000 + index as u64, b, a))
        .collect();
    group.bench_function(BenchmarkId::new("bitstamp", LEVELS_PER_UPDATE), |bencher| {
        bencher.iter_batched(
            || {
                let mut protocol = Bitstamp::new(&config_bitstamp.venues[0], &catalog);
                protocol.on_connect();
                let mut effects = Vec::new();
                protocol.on_message(&fake::bitstamp_diff("btcusd", 1, &[], &[]), &mut effects).unwrap();
                protocol.on_snapshot(0, &fake::bitstamp_snapshot(500, &bids, &asks), &mut effects).unwrap();
                protocol
            },
            |mut protocol| {
                let mut effects: Vec<Effect> = Vec::with_capacity(4);
                for message in &bitstamp_messages {
                    effects.clear();
                    protocol.on_message(message, &mut effects).unwrap();
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Prices as integer cents for the bench's own reference book.
fn key(price: &str) -> i64 {
    let (whole, cents) = price.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

fn text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

criterion_group!(benches, bench);
criterion_main!(benches);
