//! Per-command work must not grow with the desk's history or with other clients' activity (issue #16). For each
//! command that used to walk a history, this times a batch of those commands on the bare engine on a desk with a
//! short history and on one with a long one, alternating rounds, and prints the medians and their ratio: a
//! ratio well above 1 is a regression (before issue #16 a deposit on a desk with 100,000 other deposits that day
//! cost about 10,000 deposits' worth of scanning).
//!
//! `cargo bench -p otcd-core --bench history_independence`

use otcd_core::catalog::AssetCode;
use otcd_core::engine::custody::CustodyPolicy;
use otcd_core::engine::model::{KeyAlgorithm, KeyOwner, Scope};
use otcd_core::engine::{fixtures, Command, Desk, JournalRecord, NewDeposit, NewKey};
use otcd_core::ids::{ClientId, ClientReference, KeyId};
use otcd_core::model::Settlement;
use otcd_testkit::sim::record;
use std::time::{Duration, Instant};

const BATCH: usize = 1_000;
const ROUNDS: usize = 7;
const SHORT: usize = 1_000;
const LONG: usize = 100_000;
const CLIENTS: usize = 100;

struct Case {
    name: &'static str,
    /// A desk whose history holds `size` of what the command used to walk.
    build: fn(size: usize) -> Desk,
    /// The measured batch, for the desk built above.
    batch: fn(desk: &Desk) -> Vec<Command>,
}

fn base() -> Desk {
    let mut desk = Desk::new();
    desk.execute(&record(1, fixtures::initialize_desk())).unwrap();
    for index in 0..CLIENTS {
        let new = fixtures::approved_client(&format!("Client {index}"), Settlement::Prefunded, None);
        desk.execute(&record(2, Command::CreateClient(new))).unwrap();
    }
    desk
}

fn client(index: usize) -> ClientId {
    ClientId::parse(&format!("cl_{:08}", index % CLIENTS + 1)).unwrap()
}

fn usd_deposit(client_index: usize, reference: &str, cents: i128) -> Command {
    Command::Deposit(NewDeposit {
        client_id: client(client_index),
        asset: AssetCode::parse("USD").unwrap(),
        amount: cents,
        reference: ClientReference::parse(reference).unwrap(),
        notional_usd: Some(cents),
    })
}

/// Every command at one time: the whole history is inside every rule's window.
const AT_MS: i64 = 1_000_000;

fn run(desk: &mut Desk, commands: impl IntoIterator<Item = Command>) {
    for command in commands {
        desk.execute(&record(AT_MS, command)).unwrap();
    }
}

fn deposits_desk(size: usize) -> Desk {
    let mut desk = base();
    // Other clients' deposits that day, near the structuring band's floor but outside it.
    run(&mut desk, (0..size).map(|index| usd_deposit(1 + index % (CLIENTS - 1), &format!("o-{index}"), 700_000)));
    desk
}

fn deposits_batch(_: &Desk) -> Vec<Command> {
    (0..BATCH).map(|index| usd_deposit(0, &format!("m-{index}"), 500_000)).collect()
}

fn fund(reference: &str) -> Command {
    Command::FundDesk {
        asset: AssetCode::parse("USD").unwrap(),
        amount: 1_000,
        reference: ClientReference::parse(reference).unwrap(),
    }
}

fn fundings_desk(size: usize) -> Desk {
    let mut desk = base();
    run(&mut desk, (0..size).map(|index| fund(&format!("f-{index}"))));
    desk
}

fn fundings_batch(_: &Desk) -> Vec<Command> {
    (0..BATCH).map(|index| fund(&format!("m-{index}"))).collect()
}

fn policy(hot_min: i128, hot_target: i128, hot_max: i128) -> Command {
    Command::PutCustodyPolicy(CustodyPolicy { asset: AssetCode::parse("BTC").unwrap(), hot_min, hot_target, hot_max })
}

/// `size / 10` top-ups requested and approved (each needs four commands), then one left awaiting approval.
fn top_ups_desk(size: usize) -> Desk {
    let mut desk = base();
    let btc = Command::FundDesk {
        asset: AssetCode::parse("BTC").unwrap(),
        amount: 1_000_000_000_000,
        reference: ClientReference::parse("cold").unwrap(),
    };
    run(&mut desk, [btc, policy(0, 0, 0)]);
    for index in 0..size / 10 {
        // Hot at 0 → a top-up to 10; approve; sweep back to 0.
        run(&mut desk, [policy(1, 10, 1_000_000)]);
        let top_up_id = format!("tu_{:08}", index + 1);
        run(&mut desk, [Command::ApproveTopUp { top_up_id }, policy(0, 0, 0)]);
    }
    run(&mut desk, [policy(1_000_000_000, 1_000_000_000, 1_000_000_000_000)]);
    desk
}

/// Crypto deposits: each runs the custody policy, which asks whether a top-up already awaits approval.
fn top_ups_batch(_: &Desk) -> Vec<Command> {
    (0..BATCH)
        .map(|index| {
            Command::Deposit(NewDeposit {
                client_id: client(index),
                asset: AssetCode::parse("BTC").unwrap(),
                amount: 1,
                reference: ClientReference::parse(&format!("m-{index}")).unwrap(),
                notional_usd: None,
            })
        })
        .collect()
}

fn key(id: &str, scope: Scope) -> Command {
    Command::CreateKey {
        owner: KeyOwner::Desk,
        key: NewKey {
            key_id: KeyId::parse(id).unwrap(),
            scopes: vec![scope],
            algorithm: KeyAlgorithm::Hmac,
            credential: vec![7; 60],
            allowed_ips: Vec::new(),
        },
    }
}

fn keys_desk(size: usize) -> Desk {
    let mut desk = base();
    run(&mut desk, (0..size).map(|index| key(&format!("k_other_{index}"), Scope::Admin)));
    run(&mut desk, (0..BATCH).map(|index| key(&format!("k_measured_{index}"), Scope::Admin)));
    desk
}

fn keys_batch(_: &Desk) -> Vec<Command> {
    (0..BATCH)
        .map(|index| Command::RevokeKey { key_id: KeyId::parse(&format!("k_measured_{index}")).unwrap() })
        .collect()
}

fn time_batch(desk: &Desk, batch: &[Command]) -> Duration {
    let mut desk = desk.clone();
    let records: Vec<JournalRecord> = batch.iter().map(|command| record(AT_MS, command.clone())).collect();
    let started = Instant::now();
    for record in &records {
        let executed = desk.execute(record).unwrap();
        assert!(executed.changed);
    }
    let elapsed = started.elapsed();
    drop(desk);
    elapsed
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let cases = [
        Case { name: "deposit (AML structuring)", build: deposits_desk, batch: deposits_batch },
        Case { name: "fund desk (reference check)", build: fundings_desk, batch: fundings_batch },
        Case { name: "crypto deposit (custody policy)", build: top_ups_desk, batch: top_ups_batch },
        Case { name: "revoke key (last admin check)", build: keys_desk, batch: keys_batch },
    ];
    println!("| command | history {SHORT} | history {LONG} | ratio |");
    println!("| --- | --- | --- | --- |");
    for case in cases {
        let (short, long) = ((case.build)(SHORT), (case.build)(LONG));
        let (short_batch, long_batch) = ((case.batch)(&short), (case.batch)(&long));
        let (mut short_times, mut long_times) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            short_times.push(time_batch(&short, &short_batch));
            long_times.push(time_batch(&long, &long_batch));
        }
        let (short_ns, long_ns) =
            (median(short_times).as_nanos() / BATCH as u128, median(long_times).as_nanos() / BATCH as u128);
        println!("| {} | {short_ns} ns | {long_ns} ns | {:.2} |", case.name, long_ns as f64 / short_ns.max(1) as f64);
    }
}
