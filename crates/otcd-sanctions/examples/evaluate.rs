//! Prints load figures and the recall / false-alert table on the real lists.
//! `cargo run -p otcd-sanctions --release --example evaluate`
//! (data from OTCD_SANCTIONS_DIR or ../../../shared/data/sanctions).
//! `-- --export DIR` also writes the labelled cases with otcd's scores (`DIR/cases.json`) and the listed
//! entries (`DIR/entries.jsonl`) for the nomenklatura peer run (`eval/nomenklatura_peer.py`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use otcd_sanctions::evaluation::{evaluate, generate, LabelledQuery};
use otcd_sanctions::{NameQuery, SanctionsLists, Screener, Thresholds};

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
    let queries = generate(&lists, 20_260_227, 4_000, 1_000);
    let screener = Screener::new(lists.clone());
    let arguments: Vec<String> = std::env::args().collect();
    if let Some(at) = arguments.iter().position(|argument| argument == "--export") {
        let directory = PathBuf::from(arguments.get(at + 1).ok_or("--export DIR")?);
        export(&directory, &lists, &screener, &queries)?;
    }
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

/// The cases with otcd's scores, and the entries, for the peer run on the same set.
fn export(
    directory: &std::path::Path,
    lists: &SanctionsLists,
    screener: &Screener,
    queries: &[LabelledQuery],
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    std::fs::create_dir_all(directory)?;
    let thresholds = screener.thresholds();
    let cases: Vec<serde_json::Value> = queries
        .iter()
        .map(|query| {
            let matches = screener.screen_name(&NameQuery { name: &query.name, ..NameQuery::default() }, 20);
            let expected_score = query.expected.as_ref().map(|(list, id)| {
                matches
                    .iter()
                    .find(|found| found.list == *list && &found.entry_id == id)
                    .map_or(0.0, |found| found.score)
            });
            let expected_kind =
                query.expected.as_ref().and_then(|(list, id)| lists.entry(*list, id)).map(|entry| entry.kind);
            serde_json::json!({
                "name": query.name,
                "variant": format!("{:?}", query.variant),
                "expected": query.expected.as_ref().map(|(list, id)| serde_json::json!({"list": list, "id": id})),
                "expected_kind": expected_kind,
                "otcd_expected_score": expected_score,
                "otcd_top_score": matches.first().map_or(0.0, |found| found.score),
            })
        })
        .collect();
    let summary =
        serde_json::json!({"thresholds": {"review": thresholds.review, "hit": thresholds.hit}, "cases": cases});
    std::fs::write(directory.join("cases.json"), serde_json::to_vec(&summary)?)?;
    let mut entries = std::io::BufWriter::new(std::fs::File::create(directory.join("entries.jsonl"))?);
    for entry in lists.entries() {
        serde_json::to_writer(&mut entries, entry)?;
        entries.write_all(b"\n")?;
    }
    entries.flush()?;
    println!("exported {} cases and {} entries to {}", queries.len(), lists.entry_count(), directory.display());
    Ok(())
}
