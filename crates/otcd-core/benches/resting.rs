//! Re-evaluating resting limit orders on a price change: 100,000 resting buy orders (100 clients × 1,000, limits
//! spread below the market), then one `FillRestingOrders` tick. Target: < 1 ms per re-evaluation.
//! - `tick_reaching_none`: the price moves but reaches no order (the common case: nothing to walk).
//! - `tick_filling_one`: the price reaches exactly the best order, which fills (one ledger transaction).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::orders::{LimitOrder, MarketOrder, TimeInForce};
use otcd_core::engine::resting::FillResting;
use otcd_core::engine::{fixtures, Actor, Command, Desk, JournalRecord, NewDeposit, Outcome};
use otcd_core::ids::ClientReference;
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;

const CLIENTS: usize = 100;
const ORDERS_PER_CLIENT: usize = 1_000;

fn run(desk: &mut Desk, at: i64, command: Command) -> Outcome {
    let record = JournalRecord { at: TimestampMs(at), actor: Actor::default(), command };
    desk.execute(&record).expect("accepted").outcome
}

fn book(ask: i128, at: i64) -> VenueBook {
    VenueBook {
        venue: "bench".into(),
        instrument: "BTC-USD".into(),
        bids: vec![Level { price: ask - 100, quantity: i128::MAX / 4 }],
        asks: vec![Level { price: ask, quantity: i128::MAX / 4 }],
        as_of: TimestampMs(at),
    }
}

/// A desk with 100,000 resting buys, limits from 40,000.00 to 49,999.90 (below the 50,000.00 ask).
fn desk_with_resting_orders() -> Desk {
    let mut desk = Desk::new();
    let mut at = 1_000;
    run(&mut desk, at, fixtures::initialize_desk());
    for client in 0..CLIENTS {
        at += 1;
        let new = fixtures::approved_client(&format!("Bench {client}"), Settlement::Prefunded, None);
        let Outcome::Client(created) = run(&mut desk, at, Command::CreateClient(new)) else { unreachable!() };
        let reference = ClientReference::parse(&format!("bench-{client}")).unwrap();
        let deposit = NewDeposit {
            client_id: created.client_id.clone(),
            asset: AssetCode::parse("USD").unwrap(),
            amount: 10_000_000_000_000,
            reference,
            notional_usd: None,
        };
        run(&mut desk, at, Command::Deposit(deposit));
        for number in 0..ORDERS_PER_CLIENT {
            at += 1;
            let index = (client * ORDERS_PER_CLIENT + number) as i128;
            let order = MarketOrder {
                client_id: created.client_id.clone(),
                client_order_id: ClientReference::parse(&format!("r-{number}")).unwrap(),
                instrument: "BTC-USD".into(),
                side: Side::Buy,
                quantity: 1_000_000,
                reference_price: None,
                slippage_centi_bps: None,
                notional_usd: None,
                books: vec![book(5_000_000, at)],
                cross: None,
            };
            let limit_price = 4_000_000 + (index * 10) % 999_990;
            let request = LimitOrder { order, limit_price, time_in_force: TimeInForce::Gtc, expire_at: None };
            run(&mut desk, at, Command::LimitOrder(request));
        }
    }
    assert_eq!(desk.resting_orders().len(), CLIENTS * ORDERS_PER_CLIENT);
    desk
}

fn resting(criterion: &mut Criterion) {
    let mut desk = desk_with_resting_orders();
    let at = 10_000_000;
    // The best limit is 49,999.90; the standard tier's 20 bps puts the firm price above it for any ask ≥ 49,900.
    let none = Command::FillRestingOrders(FillResting {
        instrument: "BTC-USD".into(),
        books: vec![book(5_000_100, at)],
        cross: None,
    });
    let record = JournalRecord { at: TimestampMs(at), actor: Actor::default(), command: none };
    criterion.bench_function("resting/tick_reaching_none_of_100k", |bencher| {
        bencher.iter(|| desk.execute(&record).expect("accepted"))
    });
    // An ask of 49,890.00 → firm 49,989.78: reaches the ~100 best orders (limits 49,989.80 to 49,999.80), which fill.
    let one = Command::FillRestingOrders(FillResting {
        instrument: "BTC-USD".into(),
        books: vec![book(4_989_000, at)],
        cross: None,
    });
    let record = JournalRecord { at: TimestampMs(at), actor: Actor::default(), command: one };
    let mut group = criterion.benchmark_group("resting");
    group.sample_size(20);
    group.bench_function("tick_filling_the_reached_orders_of_100k", |bencher| {
        bencher.iter_batched(
            || desk.clone(),
            // The desk is returned so that dropping it (100k orders) is not timed.
            |mut desk| {
                let executed = desk.execute(&record).expect("accepted");
                (desk, executed)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, resting);
criterion_main!(benches);
