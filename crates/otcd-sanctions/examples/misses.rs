//! Development aid: lists what a seeded labelled set misses and which unlisted names alert.
//! `cargo run -p otcd-sanctions --release --example misses -- SEED`. Use a seed other than the reported one
//! (20260227) when changing the matcher, so the reported figures are not tuned on.

use std::path::PathBuf;
use std::sync::Arc;

use otcd_sanctions::evaluation::generate;
use otcd_sanctions::{NameQuery, SanctionsLists, Screener};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("OTCD_SANCTIONS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sanctions"),
        PathBuf::from,
    );
    let seed: u64 = std::env::args().nth(1).ok_or("SEED")?.parse()?;
    let lists = Arc::new(SanctionsLists::load_dir(&dir)?);
    let screener = Screener::new(lists.clone());
    let thresholds = screener.thresholds();
    for query in generate(&lists, seed, 4_000, 1_000) {
        let matches = screener.screen_name(&NameQuery { name: &query.name, ..NameQuery::default() }, 20);
        let top = matches.first().map(|found| format!("{:.3} {}", found.score, found.name)).unwrap_or_default();
        match &query.expected {
            Some((list, id)) => {
                let score =
                    matches.iter().find(|found| found.list == *list && &found.entry_id == id).map_or(0.0, |m| m.score);
                if score < thresholds.review {
                    let listed = lists.entry(*list, id).map(|entry| entry.name.clone()).unwrap_or_default();
                    println!("MISS {:?}\t{:.3}\t{}\t=> {}\ttop {}", query.variant, score, query.name, listed, top);
                }
            }
            None => {
                let score = matches.first().map_or(0.0, |found| found.score);
                if score >= thresholds.review {
                    println!("ALERT {:?}\t{:.3}\t{}\t=> {}", query.variant, score, query.name, top);
                }
            }
        }
    }
    Ok(())
}
