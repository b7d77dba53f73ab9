//! Journal throughput: group commit, single-record commit (fsync-bound) and open/replay.
//!
//! Targets (see the crate docs): >= 200,000 records/s appended+synced in groups of 1,000
//! ~150-byte payloads, and < 1.5 s to open (verify + replay) 1,000,000 such records.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use otcd_journal::{FileJournal, Journal, JournalOptions};

const GROUP_SIZE: usize = 1_000;
const REPLAY_RECORDS: u64 = 1_000_000;

/// A JSON command of about 150 bytes, like the ones the engine stores.
fn command_payload(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"type":"place_order","account":"acct-{:06}","client_order_id":"c-{seq:010}","instrument":"BTC-USD","side":"buy","quantity":"1.25","price":"64000.{:02}"}}"#,
        seq % 997,
        seq % 100
    )
    .into_bytes()
}

fn open_journal(dir: &Path) -> FileJournal {
    FileJournal::open(dir, JournalOptions::default(), 0, None, |_, _| Ok(())).expect("open journal").0
}

fn append_and_sync_groups(criterion: &mut Criterion) {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut journal = open_journal(temp.path());
    let payloads: Vec<Vec<u8>> = (0..GROUP_SIZE as u64).map(command_payload).collect();
    let average = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
    println!("average payload: {average} bytes");

    let mut group = criterion.benchmark_group("append_sync");
    group.throughput(Throughput::Elements(GROUP_SIZE as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("group_of_1000", |bencher| {
        bencher.iter(|| {
            for payload in &payloads {
                journal.append(payload).expect("append");
            }
            black_box(journal.sync().expect("sync"))
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_record", |bencher| {
        bencher.iter(|| {
            journal.append(&payloads[0]).expect("append");
            black_box(journal.sync().expect("sync"))
        })
    });
    group.finish();

    let mut group = criterion.benchmark_group("append_only");
    group.throughput(Throughput::Elements(GROUP_SIZE as u64));
    group.sample_size(30);
    group.bench_function("group_of_1000_without_sync", |bencher| {
        bencher.iter(|| {
            for payload in &payloads {
                black_box(journal.append(payload).expect("append"));
            }
        })
    });
    group.finish();
    journal.sync().expect("final sync");
}

fn open_and_replay(criterion: &mut Criterion) {
    let temp = tempfile::tempdir().expect("temp dir");
    {
        let mut journal = open_journal(temp.path());
        for seq in 1..=REPLAY_RECORDS {
            journal.append(&command_payload(seq)).expect("append");
            if seq % GROUP_SIZE as u64 == 0 {
                journal.sync().expect("sync");
            }
        }
        journal.sync().expect("sync");
    }
    let mut group = criterion.benchmark_group("open_replay");
    group.throughput(Throughput::Elements(REPLAY_RECORDS));
    // Flat sampling: ten equal samples instead of criterion's 1+2+..+10 ramp, which would
    // replay the million records more than fifty times.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("1m_records", |bencher| {
        bencher.iter_batched(
            || (),
            |()| {
                let mut visited_bytes = 0usize;
                let (journal, report) =
                    FileJournal::open(temp.path(), JournalOptions::default(), 0, None, |_, payload| {
                        visited_bytes += payload.len();
                        Ok(())
                    })
                    .expect("open");
                assert_eq!(report.records, REPLAY_RECORDS);
                drop(journal);
                black_box(visited_bytes)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, append_and_sync_groups, open_and_replay);
criterion_main!(benches);
