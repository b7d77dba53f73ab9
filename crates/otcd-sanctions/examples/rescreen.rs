//! Re-screening after a list reload: screens 100,000 client names (a seeded mix of listed-name variants and
//! common names, as `evaluate` builds them) against the real lists on ONE thread and prints the time, the
//! throughput and the latency percentiles. `cargo run -p otcd-sanctions --release --example rescreen`.

use otcd_sanctions::evaluation::generate;
use otcd_sanctions::{NameQuery, SanctionsLists, Screener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const CLIENTS: usize = 100_000;

fn main() {
    let dir = std::env::var_os("OTCD_SANCTIONS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sanctions"),
        PathBuf::from,
    );
    let started = Instant::now();
    let lists = Arc::new(SanctionsLists::load_dir(&dir).expect("sanctions data (set OTCD_SANCTIONS_DIR)"));
    let load = started.elapsed();
    let screener = Screener::new(lists);
    // About 10 % listed-name variants and common names, cycled to 100,000 clients (the generator has only a few
    // thousand distinct common names; a repeated name costs the same to screen).
    let distinct = generate(screener.lists(), 7, 1_000, 9_000);
    let queries: Vec<_> = distinct.iter().cycle().take(CLIENTS).collect();
    let mut latencies_ns: Vec<u64> = Vec::with_capacity(queries.len());
    let mut flagged = 0usize;
    let started = Instant::now();
    for query in queries.iter() {
        let one = Instant::now();
        let screening = screener.screen_client(&NameQuery { name: &query.name, ..NameQuery::default() });
        latencies_ns.push(one.elapsed().as_nanos() as u64);
        flagged += usize::from(!screening.matches.is_empty());
    }
    let total = started.elapsed();
    latencies_ns.sort_unstable();
    let percentile =
        |fraction: f64| latencies_ns[((latencies_ns.len() as f64 - 1.0) * fraction) as usize] as f64 / 1_000.0;
    println!("lists loaded in {load:?}");
    println!(
        "re-screened {} names in {:.2} s on one thread: {:.0} names/s; p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {} flagged",
        queries.len(),
        total.as_secs_f64(),
        queries.len() as f64 / total.as_secs_f64(),
        percentile(0.5),
        percentile(0.99),
        percentile(1.0),
        flagged
    );
}
