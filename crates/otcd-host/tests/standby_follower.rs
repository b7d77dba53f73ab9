//! A replicated standby's follower (`snapshot_follower::start_standby`): it re-executes the records its journal
//! receives into a live desk, and at the hand-over re-executes only the tail it had not reached and hands over
//! exactly what a recovery of the same journal builds (desk, recent signatures, the events of the newest records).

use otcd_core::engine::{fixtures, Actor, Command};
use otcd_core::ids::ClientId;
use otcd_core::model::Settlement;
use otcd_host::clock::SystemClock;
use otcd_host::cluster::ClusterStatus;
use otcd_host::metrics::Metrics;
use otcd_host::runner::{Runner, RunnerConfig};
use otcd_host::snapshot_follower::{self, FollowerSettings, StandbyMemory};
use otcd_journal::Journal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS_MAX: usize = 50;

/// A desk's history in `directory`: clients and deposits, some of them signed.
async fn write_history(directory: &Path, deposits: u64) {
    let opened = otcd_host::store::open(directory, &SystemClock).unwrap();
    let config = RunnerConfig::default();
    let runner =
        Runner::start(opened.desk, Box::new(opened.journal), opened.snapshots, config, Arc::new(Metrics::new()));
    let engine = runner.handle();
    engine.submit(Actor::default(), fixtures::initialize_desk()).await.unwrap();
    let new = fixtures::approved_client("Standby", Settlement::Prefunded, None);
    engine.submit(Actor::default(), Command::CreateClient(new)).await.unwrap();
    let client = ClientId::parse("cl_00000001").unwrap();
    let now_ms = otcd_host::clock::Clock::now(&SystemClock).0;
    for index in 0..deposits {
        let actor = Actor { signature: Some(format!("{index:064x}")), signed_at_ms: Some(now_ms), ..Actor::default() };
        let command = otcd_testkit::sim::deposit(&client, "USD", 100 + i128::from(index), &format!("d-{index}"));
        engine.submit(actor, command).await.unwrap();
    }
    drop(engine);
    runner.shutdown();
}

/// Copies records `after ..= up_to` of `source`'s journal into `journal` and makes them durable.
fn copy_records(source: &Path, journal: &mut otcd_journal::FileJournal, after: u64, up_to: u64) {
    otcd_journal::read_records(&source.join("journal"), after, up_to, |_, payload| {
        journal.append(payload).map(|_| ()).map_err(|error| error.to_string())
    })
    .unwrap();
    journal.sync().unwrap();
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_hands_over_what_recovery_would_build_re_executing_only_the_tail() {
    let leader = tempfile::tempdir().unwrap();
    write_history(leader.path(), 400).await;
    let head_seq = otcd_journal::read_records(&leader.path().join("journal"), 0, u64::MAX, |_, _| Ok(())).unwrap().seq;
    let half = head_seq / 2;

    // The standby starts on an empty data directory and receives the history in two parts.
    let standby = tempfile::tempdir().unwrap();
    let opened = otcd_host::store::open_with_events(standby.path(), &SystemClock, EVENTS_MAX).unwrap();
    let reader = opened.journal_reader();
    let mut journal = opened.journal;
    let status = Arc::new(ClusterStatus::new("b".into(), "http://127.0.0.1:1".into()));
    let durable = Arc::new(AtomicU64::new(0));
    let memory = StandbyMemory {
        status: status.clone(),
        recent_signatures: opened.recent_signatures,
        events_max: EVENTS_MAX,
        // The scope `open_with_events` recovers with, so the hand-over is compared with a recovery like for like.
        event_scope: otcd_core::engine::EventScope::CLIENT_VISIBLE,
        replayed_events: opened.replayed_events,
        replayed_events_floor_seq: opened.replayed_events_floor_seq,
        reads: None,
    };
    let settings = FollowerSettings { reader, snapshots: opened.snapshots, every_records: 100 };
    let seen = durable.clone();
    let follower = snapshot_follower::start_standby(opened.desk, journal.durable_head(), settings, memory, move || {
        seen.load(Ordering::Acquire)
    });
    copy_records(leader.path(), &mut journal, 0, half);
    durable.store(half, Ordering::Release);
    wait_for("the live desk to reach the first part, and the standby's own snapshot", || {
        status.executed_seq() == half && std::fs::read_dir(standby.path().join("snapshots")).unwrap().count() > 0
    });
    copy_records(leader.path(), &mut journal, half, head_seq);
    durable.store(head_seq, Ordering::Release);
    let handed = tokio::task::spawn_blocking({
        let head = journal.durable_head();
        move || follower.hand_over(head)
    })
    .await
    .unwrap()
    .expect("the follower hands its desk over");
    assert_eq!(handed.head, journal.durable_head());
    assert!(handed.tail_records <= head_seq - half, "only the tail: {} records", handed.tail_records);

    drop(journal);
    // The leader's own recovery from its journal alone (its runner wrote a snapshot at shutdown).
    std::fs::remove_dir_all(leader.path().join("snapshots")).unwrap();
    let recovered = otcd_host::store::open_with_events(leader.path(), &SystemClock, EVENTS_MAX).unwrap();
    assert_eq!(recovered.recovery.snapshot_seq, 0, "the leader's recovery replays the whole journal");
    assert!(
        serde_json::to_vec(&handed.desk).unwrap() == serde_json::to_vec(&recovered.desk).unwrap(),
        "the handed-over desk is the recovered one"
    );
    let mut signatures = handed.recent_signatures.clone();
    let mut expected = recovered.recent_signatures.clone();
    signatures.sort();
    expected.sort();
    assert_eq!(signatures.len(), 400);
    assert_eq!(signatures, expected, "the replay guard starts with the same signatures");
    let events = |records: &[otcd_host::events::RecordEvents]| {
        records.iter().map(|record| (record.seq, record.events.clone())).collect::<Vec<_>>()
    };
    assert_eq!(events(&handed.replayed_events), events(&recovered.replayed_events), "the same resume ring");
    assert_eq!(handed.replayed_events_floor_seq, recovered.replayed_events_floor_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standbys_reads_see_every_durable_record_and_nothing_else_and_change_nothing() {
    const DEPOSITS: u64 = 200;
    let leader = tempfile::tempdir().unwrap();
    write_history(leader.path(), DEPOSITS).await;
    let head_seq = otcd_journal::read_records(&leader.path().join("journal"), 0, u64::MAX, |_, _| Ok(())).unwrap().seq;
    let standby = tempfile::tempdir().unwrap();
    let opened = otcd_host::store::open(standby.path(), &SystemClock).unwrap();
    let reader = opened.journal_reader();
    let mut journal = opened.journal;
    let status = Arc::new(ClusterStatus::new("b".into(), "http://127.0.0.1:1".into()));
    let durable = Arc::new(AtomicU64::new(0));
    let (engine, requests) = otcd_host::runner::EngineHandle::for_standby(Arc::new(Metrics::new()));
    let memory = StandbyMemory {
        status: status.clone(),
        recent_signatures: Vec::new(),
        events_max: 0,
        event_scope: otcd_core::engine::EventScope::CLIENT_VISIBLE,
        replayed_events: Vec::new(),
        replayed_events_floor_seq: 0,
        reads: Some(requests),
    };
    let settings = FollowerSettings { reader, snapshots: opened.snapshots, every_records: 1_000 };
    let seen = durable.clone();
    let follower = snapshot_follower::start_standby(opened.desk, journal.durable_head(), settings, memory, move || {
        seen.load(Ordering::Acquire)
    });
    let client = ClientId::parse("cl_00000001").unwrap();
    let usd = {
        let client = client.clone();
        move |desk: &otcd_core::engine::Desk| {
            desk.balances(&client)
                .into_iter()
                .find(|line| line.asset.as_str() == "USD")
                .map_or(0, |line| line.available)
        }
    };
    // Records 1 and 2 set the desk up and make the client; record 2 + n is deposit n - 1 (100 + index units).
    let deposited =
        |through_seq: u64| -> i128 { (0..through_seq.saturating_sub(2)).map(|index| 100 + i128::from(index)).sum() };
    assert_eq!(engine.query(usd.clone()).await.unwrap(), 0, "nothing copied, nothing read");

    // Copied but not yet durable: not read. Durable: read at once, without waiting for the follower's interval.
    let half = head_seq / 2;
    otcd_journal::read_records(&leader.path().join("journal"), 0, half, |_, payload| {
        journal.append(payload).map(|_| ()).map_err(|error| error.to_string())
    })
    .unwrap();
    assert_eq!(engine.query(usd.clone()).await.unwrap(), 0, "records not yet durable are never read");
    journal.sync().unwrap();
    durable.store(half, Ordering::Release);
    let scale = engine.query(usd.clone()).await.unwrap() / deposited(half);
    assert!(scale > 0, "the read saw the durable half");
    assert_eq!(engine.query(usd.clone()).await.unwrap(), deposited(half) * scale, "exactly the durable half");
    assert_eq!(status.executed_seq(), half);

    copy_records(leader.path(), &mut journal, half, head_seq);
    durable.store(head_seq, Ordering::Release);
    assert_eq!(engine.query(usd.clone()).await.unwrap(), deposited(head_seq) * scale, "every durable record");

    // A standby changes nothing: a command through its handle is refused, and the desk is as before.
    let command = otcd_testkit::sim::deposit(&client, "USD", 1, "on-standby");
    let refused = engine.submit(Actor::default(), command).await;
    assert!(matches!(refused, Err(otcd_host::runner::SubmitError::Unavailable)), "{refused:?}");
    assert_eq!(engine.query(usd.clone()).await.unwrap(), deposited(head_seq) * scale);

    // Handed over: the reads stop with the follower.
    let head = journal.durable_head();
    let handed = tokio::task::spawn_blocking(move || follower.hand_over(head)).await.unwrap();
    assert!(handed.is_some(), "the follower hands its desk over while serving reads");
    assert!(engine.query(usd).await.is_err(), "no reads after the hand-over");
}
