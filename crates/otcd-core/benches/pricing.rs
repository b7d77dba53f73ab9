//! Pricing throughput: one RFQ = `executable` over the consolidated book + `client_price`.
//!
//! Three venues with 20 levels a side each (BTC-USD-like: price scale 2, quantities in satoshis), built by a
//! deterministic random walk so levels interleave across venues. Sizes: small (0.05 BTC, the top level), medium
//! (2 BTC, a few levels per venue) and large (25 BTC, most of the book). Target: ≥ 1 000 000 quotes/s on one core.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use otcd_core::market::pricing::{client_price, executable};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::time::TimestampMs;
use std::time::Duration;

const BTC: i128 = 100_000_000;
const LEVELS: usize = 20;
const NOW: TimestampMs = TimestampMs(1_700_000_000_000);

/// A tiny deterministic generator (xorshift64*), so the books are the same on every run.
struct Walk(u64);

impl Walk {
    fn next(&mut self, below: u64) -> i128 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        i128::from(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below)
    }
}

fn venue(name: &str, seed: u64, mid: i128) -> VenueBook {
    let mut walk = Walk(seed);
    let mut side = |direction: i128| {
        let mut price = mid + direction * (1 + walk.next(300));
        (0..LEVELS)
            .map(|_| {
                let level = Level { price, quantity: BTC / 10 + walk.next(2 * BTC as u64) };
                price += direction * (1 + walk.next(500));
                level
            })
            .collect::<Vec<_>>()
    };
    let bids = side(-1);
    let asks = side(1);
    let book = VenueBook { venue: name.into(), instrument: "BTC-USD".into(), bids, asks, as_of: NOW };
    book.validate().expect("valid bench book");
    book
}

fn pricing(criterion: &mut Criterion) {
    let books = vec![
        venue("a", 0x9e37_79b9, 5_000_000),
        venue("b", 0x7f4a_7c15, 5_000_150),
        venue("c", 0x1234_5678, 4_999_900),
    ];
    let mut group = criterion.benchmark_group("rfq_price");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (label, quantity) in [("small", BTC / 20), ("medium", 2 * BTC), ("large", 25 * BTC)] {
        for side in [Side::Buy, Side::Sell] {
            let id = BenchmarkId::new(format!("{side:?}").to_lowercase(), label);
            group.bench_with_input(id, &quantity, |bencher, &quantity| {
                bencher.iter(|| {
                    let executable =
                        executable(black_box(&books), side, black_box(quantity), NOW, 2_000).expect("priced");
                    client_price(&executable, side, black_box(2_000), black_box(0), 1).expect("priced")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pricing);
criterion_main!(benches);
