//! Rendering the trade log as CSV (BENCHMARKS.md, "Reports projection"): a 1,000-row page, as the concurrent
//! reader of the HTTP benchmark asks for, and a full 100,000-row export, from a projection of 200,000 trades.

use criterion::{criterion_group, criterion_main, Criterion};
use otcd_core::catalog::Catalog;
use otcd_core::engine::{fixtures, Actor, JournalRecord};
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use otcd_core::time::TimestampMs;
use otcd_reports::{render, Projection, ReportKind, ReportParams, SurveillanceConfig, TradeRow};
use std::hint::black_box;

const TRADES: u64 = 200_000;
const T0: i64 = 1_767_225_600_000;

fn build() -> Projection {
    let mut projection = Projection::new(SurveillanceConfig::default());
    let record = JournalRecord { at: TimestampMs(T0), actor: Actor::default(), command: fixtures::initialize_desk() };
    projection.apply(1, &record).unwrap();
    let catalog = Catalog::builtin();
    let log = projection.trades_mut();
    let instruments: Vec<u16> = catalog
        .instruments()
        .iter()
        .map(|instrument| log.intern_instrument(&instrument.symbol, instrument.base, instrument.quote))
        .collect();
    let clients: Vec<u32> =
        (1..=100).map(|number| log.intern_client(&ClientId::parse(&format!("cl_{number:08}")).unwrap())).collect();
    for number in 1..=TRADES {
        log.push(TradeRow {
            number,
            order_number: number,
            seq: number * 2,
            client: clients[(number % 100) as usize],
            instrument: instruments[(number % instruments.len() as u64) as usize],
            side: if number % 2 == 0 { Side::Buy } else { Side::Sell },
            price: 5_011_002 + (number % 1_000) as i128,
            quantity: 50_000_000,
            quote_amount: 2_505_501,
            notional_usd: Some(2_505_501),
            executed_at: T0 + (number as i64) * 300,
            spread_revenue: Some(5_001),
            spread_revenue_usd: Some(5_001),
            fee: 0,
            fee_usd: None,
        });
    }
    projection
}

fn exports(criterion: &mut Criterion) {
    let projection = build();
    let mut group = criterion.benchmark_group("trade_log_csv");
    group.sample_size(20);
    for (name, limit, format) in
        [("csv_1000_rows", 1_000, "csv"), ("csv_100000_rows", 100_000, "csv"), ("json_1000_rows", 1_000, "json")]
    {
        let params = ReportParams { format: Some(format.into()), limit: Some(limit), ..ReportParams::default() };
        let rendered = render(&projection, ReportKind::Trades, &params).unwrap();
        println!("{name}: {} rows, {} bytes", rendered.rows, rendered.body.len());
        group.bench_function(name, |bencher| {
            bencher.iter(|| black_box(render(&projection, ReportKind::Trades, black_box(&params)).unwrap()).body.len())
        });
    }
    group.finish();
}

criterion_group!(benches, exports);
criterion_main!(benches);
