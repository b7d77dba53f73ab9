//! Hedging latency, in process: (1) the routing decision over 4 venues × 50 levels a side
//! (`market::routing::route`); (2) a client fill to the hedge's child orders decided: a client market order
//! executed by the engine, then `EvaluateHedge` opening the hedge with its children (both through
//! `Desk::execute`, as the engine thread runs them, without the journal's fsync). Each sample is timed alone, and
//! the percentiles printed (criterion reports means; the targets are p99).
//!
//! Run with `cargo bench -p otcd-core --bench hedging`.

use otcd_core::engine::hedging::{HedgeInputs, HedgeReport, HedgeTo, HedgingPolicy, VenueReport};
use otcd_core::engine::orders::MarketOrder;
use otcd_core::engine::{fixtures, Command, Outcome};
use otcd_core::ids::ClientReference;
use otcd_core::market::routing::{self, RouteRequest, VenueTerms};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::{code, create_client, deposit, initialized_desk, record};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BTC: i128 = 100_000_000;
const VENUES: [&str; 4] = ["v1", "v2", "v3", "v4"];

fn book(venue: &str, offset: i128) -> VenueBook {
    let level =
        |step: i128, sign: i128| Level { price: 5_000_000 + offset + sign * (100 + step * 50), quantity: BTC / 10 };
    VenueBook {
        venue: venue.into(),
        instrument: "BTC-USD".into(),
        bids: (0..50).map(|step| level(step, -1)).collect(),
        asks: (0..50).map(|step| level(step, 1)).collect(),
        as_of: TimestampMs(0),
    }
}

fn books() -> Vec<VenueBook> {
    VENUES.iter().enumerate().map(|(index, venue)| book(venue, index as i128 * 7)).collect()
}

fn terms() -> Vec<VenueTerms> {
    VENUES
        .iter()
        .enumerate()
        .map(|(index, venue)| VenueTerms {
            venue: (*venue).into(),
            taker_fee_centi_bps: 500 + index as i128 * 300,
            quote_available: 100_000_000_000,
            base_available: 1_000 * BTC,
        })
        .collect()
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() as f64 - 1.0) * fraction) as usize];
    println!(
        "{name}: n={} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        samples[samples.len() - 1]
    );
}

fn bench_routing() {
    let (books, terms) = (books(), terms());
    let request = RouteRequest {
        side: Side::Buy,
        quantity: 15 * BTC, // takes about 150 of the 200 ask levels
        quantity_step: 1_000,
        child_quantity_max: 2 * BTC,
        limit_price: 6_000_000,
        price_scale: 2,
        base_scale: 8,
        quote_scale: 2,
    };
    let mut samples = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        let started = Instant::now();
        black_box(routing::route(black_box(&request), &books, &terms));
        samples.push(started.elapsed());
    }
    percentiles("route 4 venues x 50 levels, 15 BTC", samples);
}

fn bench_fill_to_hedge() {
    let mut desk = initialized_desk();
    let client = create_client(&mut desk, 2, fixtures::approved_client("Bench", Settlement::Prefunded, None));
    for asset in ["USD", "BTC"] {
        desk.execute(&record(3, deposit(&client, asset, 1_000_000_000_000, &format!("f-{asset}")))).unwrap();
    }
    let policy = HedgingPolicy {
        asset: code("BTC"),
        enabled: true,
        target: 0,
        band: BTC / 2,
        hedge_to: HedgeTo::Target,
        instruments: vec!["BTC-USD".into()],
        venues: VENUES.iter().map(|venue| (*venue).to_string()).collect(),
        order_quantity_max: BTC,
        slippage_centi_bps_max: 10_000,
        interval_ms_min: 0,
        attempts_max: 3,
    };
    desk.execute(&record(4, Command::PutHedgingPolicy(policy))).unwrap();
    let (books, terms) = (books(), terms());
    let mut at = 10;
    let mut samples = Vec::with_capacity(20_000);
    for iteration in 0..20_000 {
        at += 1;
        let side = if iteration % 2 == 0 { Side::Buy } else { Side::Sell };
        let order = MarketOrder {
            client_id: client.clone(),
            client_order_id: ClientReference::parse(&format!("b-{iteration}")).unwrap(),
            instrument: "BTC-USD".into(),
            side,
            quantity: 2 * BTC,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: None,
            books: books.clone(),
            cross: None,
        };
        let inputs = HedgeInputs {
            asset: code("BTC"),
            instrument: "BTC-USD".into(),
            books: books.clone(),
            venues: terms.clone(),
        };
        let (trade, evaluate) = (record(at, Command::MarketOrder(order)), record(at, Command::EvaluateHedge(inputs)));
        let started = Instant::now();
        desk.execute(&trade).unwrap();
        let outcome = desk.execute(&evaluate).unwrap().outcome;
        samples.push(started.elapsed());
        // Outside the measurement: the venues fill the children, so the desk is flat for the next client trade.
        let Outcome::Hedge(hedge) = outcome else { panic!("no hedge: {outcome:?}") };
        for child in &hedge.children {
            let fill =
                VenueReport::Fill { fill_id: "f".into(), quantity: child.quantity, price: child.limit_price, fee: 0 };
            let report = HedgeReport { client_order_id: child.client_order_id.clone(), report: fill };
            desk.execute(&record(at, Command::HedgeReport(report))).unwrap();
        }
    }
    percentiles("client fill -> hedge children decided (2 BTC, 4 venues x 50 levels)", samples);
}

fn main() {
    bench_routing();
    bench_fill_to_hedge();
}
