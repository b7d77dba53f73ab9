//! Prints load figures and the recall / false-alert table on the real lists.
//! `cargo run -p otcd-sanctions --release --example evaluate`
//! (data from OTCD_SANCTIONS_DIR or ../../../shared/data/sanctions).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use otcd_sanctions::evaluation::{evaluate, generate};
use otcd_sanctions::{SanctionsLists, Screener, Thresholds};

fn data_dir() -> PathBuf {
    std::env::var_os("OTCD_SANCTIONS_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sanctions"), PathBuf::from)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = data_dir();
    let started = Instant::now();
    let lists = Arc::new(SanctionsLists::load_dir(&dir)?);
    println!(
        "loaded {} in {:?}: {} entries, {} names, {} addresses, digest {}",
        dir.display(),
        started.elapsed(),
        lists.entry_count(),
        lists.name_count(),
        lists.address_count(),
        lists.digest()
    );
    println!("load report: {:?}", lists.report());
    let queries = generate(&lists, 20_260_227, 6_000, 4_000);
    let screener = Screener::new(lists.clone());
    println!("{}", evaluate(&screener, &queries).table());
    println!("sweep (review threshold / hit threshold):");
    for review in [0.80, 0.82, 0.85, 0.88] {
        for hit in [0.90, 0.92, 0.94] {
            let report = evaluate(&screener.clone().with_thresholds(Thresholds { hit, review }), &queries);
            println!(
                "review {review:.2} hit {hit:.2}: recall@review {:.3} recall@hit {:.3} false review {:.4} false hit {:.4}",
                report.recall_at_review, report.recall_at_hit, report.false_review_rate, report.false_hit_rate
            );
        }
    }
    Ok(())
}
