//! Ledger throughput: `Ledger::apply` with two-posting transfers between ~1,000 prefunded accounts across seven
//! assets, and the two-phase path (`reserve` then `post_pending`, and `reserve`, partial post, `void_pending`).
//!
//! Throughput is reported in postings per second (`Throughput::Elements` counts postings). Each measured
//! iteration applies a fixed batch of pre-generated transactions to a fresh clone of a prepared ledger; cloning
//! happens outside the measurement. The batch includes what a real caller pays per transaction: building its
//! `TransactionKind` (a short reference string), validation, the floor checks and the entry index update.
//!
//! Run with `cargo bench -p otcd-core --bench ledger`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otcd_core::catalog::AssetCode;
use otcd_core::ids::ClientId;
use otcd_core::ledger::{AccountId, AccountKey, Ledger, Owner, Posting, Purpose, TransactionKind};
use otcd_core::time::TimestampMs;
use std::hint::black_box;
use std::time::Duration;

const ASSETS: [&str; 7] = ["BTC", "ETH", "USDT", "USDC", "USD", "EUR", "GBP"];
/// 7 assets x (142 clients + custody + inventory) = 1,008 accounts.
const CLIENTS_PER_ASSET: usize = 142;
const TRANSFERS_PER_BATCH: usize = 10_000;
const RESERVATIONS_PER_BATCH: usize = 5_000;
/// Every client starts with this much, so no generated transfer ever hits a floor.
const PREFUNDING: i128 = 1_000_000_000_000;

/// splitmix64, so every run benchmarks the same transactions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn index(&mut self, length: usize) -> usize {
        (self.next_u64() % length as u64) as usize
    }
}

/// A prepared ledger: prefunded clients (zero floor) with reserved accounts, and the desk's accounts.
struct Book {
    ledger: Ledger,
    /// Per asset: (available, reserved) of each client.
    clients: Vec<Vec<(AccountId, AccountId)>>,
    /// Per asset: the desk's inventory account.
    inventory: Vec<AccountId>,
}

fn book() -> Book {
    let mut ledger = Ledger::new();
    let mut clients = Vec::new();
    let mut inventory = Vec::new();
    for code in ASSETS {
        let asset = AssetCode::parse(code).expect("valid asset code");
        let desk = |purpose| AccountKey { owner: Owner::Desk, asset, purpose };
        let custody = ledger.open_account(desk(Purpose::Custody), None);
        inventory.push(ledger.open_account(desk(Purpose::Inventory), None));
        let mut accounts = Vec::new();
        for client in 0..CLIENTS_PER_ASSET {
            let owner = Owner::Client(ClientId::parse(&format!("cl_{client:08}")).expect("valid client id"));
            let key = |purpose| AccountKey { owner: owner.clone(), asset, purpose };
            let available = ledger.open_account(key(Purpose::Available), Some(0));
            let reserved = ledger.open_account(key(Purpose::Reserved), Some(0));
            let funding =
                [Posting { account: custody, amount: -PREFUNDING }, Posting { account: available, amount: PREFUNDING }];
            ledger
                .apply(TimestampMs(0), TransactionKind::Deposit { reference: format!("fund-{client}") }, &funding)
                .expect("funding applies");
            accounts.push((available, reserved));
        }
        clients.push(accounts);
    }
    ledger.check_invariants().expect("consistent");
    Book { ledger, clients, inventory }
}

/// Two-posting transfers between two different clients of one asset.
fn transfers(book: &Book, count: usize) -> Vec<[Posting; 2]> {
    let mut rng = SplitMix64(42);
    (0..count)
        .map(|_| {
            let accounts = &book.clients[rng.index(ASSETS.len())];
            let from = rng.index(accounts.len());
            let to = (from + 1 + rng.index(accounts.len() - 1)) % accounts.len();
            let amount = 1 + rng.index(1_000) as i128;
            [Posting { account: accounts[from].0, amount: -amount }, Posting { account: accounts[to].0, amount }]
        })
        .collect()
}

/// (available, reserved, inventory, amount) for reservations.
fn reservations(book: &Book, count: usize) -> Vec<(AccountId, AccountId, AccountId, i128)> {
    let mut rng = SplitMix64(7);
    (0..count)
        .map(|_| {
            let asset = rng.index(ASSETS.len());
            let (available, reserved) = book.clients[asset][rng.index(CLIENTS_PER_ASSET)];
            (available, reserved, book.inventory[asset], 2 + rng.index(1_000) as i128)
        })
        .collect()
}

fn bench_apply(criterion: &mut Criterion) {
    let book = book();
    let batch = transfers(&book, TRANSFERS_PER_BATCH);
    let mut group = criterion.benchmark_group("ledger");
    group.throughput(Throughput::Elements(2 * TRANSFERS_PER_BATCH as u64));
    group.bench_function("apply_2_postings", |bencher| {
        bencher.iter_batched(
            || book.ledger.clone(),
            |mut ledger| {
                for (position, postings) in batch.iter().enumerate() {
                    let kind = TransactionKind::Trade { reference: format!("t{position}") };
                    black_box(ledger.apply(TimestampMs(position as i64), kind, postings).expect("applies"));
                }
                ledger
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bench_two_phase(criterion: &mut Criterion) {
    let book = book();
    let batch = reservations(&book, RESERVATIONS_PER_BATCH);
    let mut group = criterion.benchmark_group("ledger");
    // reserve (2 postings) + post_pending (2 postings).
    group.throughput(Throughput::Elements(4 * RESERVATIONS_PER_BATCH as u64));
    group.bench_function("reserve_then_post_pending", |bencher| {
        bencher.iter_batched(
            || book.ledger.clone(),
            |mut ledger| {
                for (position, (available, reserved, inventory, amount)) in batch.iter().enumerate() {
                    let at = TimestampMs(position as i64);
                    let pending = ledger.reserve(at, *available, *reserved, *amount, "order").expect("reserves");
                    black_box(ledger.post_pending(at, pending, *amount, *inventory, "fill").expect("posts"));
                }
                ledger
            },
            BatchSize::PerIteration,
        );
    });
    // reserve (2) + partial post_pending (2) + void_pending of the rest (2).
    group.throughput(Throughput::Elements(6 * RESERVATIONS_PER_BATCH as u64));
    group.bench_function("reserve_partial_post_then_void", |bencher| {
        bencher.iter_batched(
            || book.ledger.clone(),
            |mut ledger| {
                for (position, (available, reserved, inventory, amount)) in batch.iter().enumerate() {
                    let at = TimestampMs(position as i64);
                    let pending = ledger.reserve(at, *available, *reserved, *amount, "order").expect("reserves");
                    ledger.post_pending(at, pending, amount / 2, *inventory, "fill").expect("posts");
                    black_box(ledger.void_pending(at, pending, "cancel").expect("voids"));
                }
                ledger
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_apply, bench_two_phase
}
criterion_main!(benches);
