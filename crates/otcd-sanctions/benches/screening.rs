//! screen_name latency and load_dir time on the real lists.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use otcd_sanctions::{NameQuery, SanctionsLists, Screener};

fn data_dir() -> PathBuf {
    std::env::var_os("OTCD_SANCTIONS_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sanctions"), PathBuf::from)
}

fn screening(criterion: &mut Criterion) {
    let dir = data_dir();
    let lists = Arc::new(SanctionsLists::load_dir(&dir).expect("sanctions data (set OTCD_SANCTIONS_DIR)"));
    let screener = Screener::new(lists);
    for name in ["Jorge Milton Cifuentes Villa", "Mohammed Ali Hassan", "John Smith", "Abdul Rahman al Zawahiri"] {
        criterion.bench_function(&format!("screen_name {name}"), |bencher| {
            bencher.iter(|| screener.screen_name(&NameQuery { name, ..NameQuery::default() }, 10))
        });
    }
    let mut group = criterion.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("load_dir", |bencher| bencher.iter(|| SanctionsLists::load_dir(&dir).expect("loads")));
    group.finish();
}

criterion_group!(benches, screening);
criterion_main!(benches);
