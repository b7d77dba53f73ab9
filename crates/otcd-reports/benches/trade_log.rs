//! Filtered trade-log queries over 10,000,000 trades (BENCHMARKS.md target: a 1,000-row page in < 50 ms).

use criterion::{criterion_group, criterion_main, Criterion};
use otcd_core::catalog::{AssetCode, Catalog};
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use otcd_reports::{TradeFilter, TradeLog, TradeRow};
use std::hint::black_box;

const TRADES: u64 = 10_000_000;
const CLIENTS: u64 = 1_000;
const T0: i64 = 1_767_225_600_000;

fn build() -> TradeLog {
    let mut log = TradeLog::default();
    let catalog = Catalog::builtin();
    let instruments: Vec<u16> = catalog
        .instruments()
        .iter()
        .map(|instrument| log.intern_instrument(&instrument.symbol, instrument.base, instrument.quote))
        .collect();
    let clients: Vec<u32> =
        (1..=CLIENTS).map(|number| log.intern_client(&ClientId::parse(&format!("cl_{number:08}")).unwrap())).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for number in 1..=TRADES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        log.push(TradeRow {
            number,
            order_number: number,
            seq: number * 2,
            client: clients[(state % CLIENTS) as usize],
            instrument: instruments[((state >> 20) % instruments.len() as u64) as usize],
            side: if (state >> 40) & 1 == 0 { Side::Buy } else { Side::Sell },
            price: 5_000_000 + (state % 10_000) as i128,
            quantity: 10_000_000,
            quote_amount: 500_000,
            notional_usd: Some(500_000),
            // About 3 trades a second: 10 M trades span ~5 weeks.
            executed_at: T0 + (number as i64) * 300,
            spread_revenue: Some(1_000),
            spread_revenue_usd: Some(1_000),
            fee: 0,
            fee_usd: None,
        });
    }
    log
}

fn queries(criterion: &mut Criterion) {
    let log = build();
    let middle = T0 + (TRADES as i64 / 2) * 300;
    let client = ClientId::parse("cl_00000500").unwrap();
    let mut group = criterion.benchmark_group("trade_log_10m");
    group.sample_size(20);
    let cases = [
        (
            "client_window",
            TradeFilter { client_id: Some(client.clone()), from: Some(T0), to: Some(middle), ..TradeFilter::default() },
        ),
        (
            "client_instrument_side",
            TradeFilter {
                client_id: Some(client),
                instrument: Some("BTC-USD".into()),
                side: Some(Side::Buy),
                ..TradeFilter::default()
            },
        ),
        (
            "instrument_side_from",
            TradeFilter {
                instrument: Some("ETH-USD".into()),
                side: Some(Side::Sell),
                from: Some(middle),
                ..TradeFilter::default()
            },
        ),
        (
            "asset_window",
            TradeFilter {
                asset: Some(AssetCode::parse("EUR").unwrap()),
                from: Some(middle),
                to: Some(middle + 86_400_000),
                ..TradeFilter::default()
            },
        ),
        ("everything_from", TradeFilter { from: Some(middle), ..TradeFilter::default() }),
    ];
    for (name, filter) in cases {
        let page = log.query(&filter, 1_000);
        println!("{name}: {} rows", page.rows.len());
        group.bench_function(name, |bencher| {
            bencher.iter(|| black_box(log.query(black_box(&filter), 1_000)).rows.len())
        });
    }
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
