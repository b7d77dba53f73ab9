//! The event feed end to end through the runner, over a real data directory and a restart: every event reaches a
//! subscriber in seq order, once; every command that changes a client's
//! balance yields exactly one balance event per asset it changed; and re-executing the journal files yields exactly
//! the events the live desk published, before and after the restart (the events come from the durable records).

use otcd_core::catalog::AssetCode;
use otcd_core::engine::events::DeskEvent;
use otcd_core::engine::orders::AcceptQuote;
use otcd_core::engine::{fixtures, Actor, Command, Desk, EventScope, JournalRecord, Outcome, QuoteRequest};
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use otcd_core::model::{RequestedSize, Settlement};
use otcd_host::clock::{Clock, SystemClock};
use otcd_host::events::{EventFilter, EventHub, EventSubscription, Retention, SequencedEvent};
use otcd_host::metrics::Metrics;
use otcd_host::runner::{EngineHandle, Runner, RunnerConfig};
use otcd_testkit::sim::{all_balances, changed_balances, deep_book, reference};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const CLIENTS: u64 = 3;

struct Running {
    runner: Runner,
    engine: EngineHandle,
    events: EventSubscription,
}

fn start(directory: &Path) -> Running {
    let opened = otcd_host::store::open(directory, &SystemClock).unwrap();
    // The event stream's scope: every event, the desk-level ledger transactions included.
    let hub = EventHub::with_scope(None, Retention::NONE, EventScope::ALL);
    let events = hub.subscribe(EventFilter::All, 1 << 16).unwrap();
    let config = RunnerConfig { events: Some(hub), ..RunnerConfig::default() };
    let runner =
        Runner::start(opened.desk, Box::new(opened.journal), opened.snapshots, config, Arc::new(Metrics::new()));
    let engine = runner.handle();
    Running { runner, engine, events }
}

fn client(index: u64) -> ClientId {
    ClientId::parse(&format!("cl_{:08}", index % CLIENTS + 1)).unwrap()
}

fn deposit(index: u64, asset: &str, amount: i128) -> Command {
    otcd_testkit::sim::deposit(&client(index), asset, amount, &format!("feed-{index}-{asset}"))
}

/// One round of client activity: a deposit, then a quote and its acceptance (buy or sell), and a refused order.
async fn trade_round(engine: &EngineHandle, round: u64) {
    engine.submit(Actor::default(), deposit(round, "USD", 1_000_000 + i128::from(round))).await.unwrap();
    let side = if round.is_multiple_of(2) { Side::Buy } else { Side::Sell };
    let request = QuoteRequest {
        client_id: client(round),
        client_rfq_id: None,
        instrument: "BTC-USD".into(),
        side,
        size: RequestedSize::Base(100_000),
        validity_ms: 60_000,
        notional_usd: None,
        books: vec![deep_book(SystemClock.now())],
        cross: None,
    };
    let executed = engine.submit(Actor::default(), Command::RequestQuote(request)).await.unwrap();
    let Outcome::Quote(quote) = executed.outcome else { panic!("a quote") };
    let accept = AcceptQuote {
        client_id: client(round),
        client_order_id: reference(&format!("feed-order-{round}")),
        quote_id: quote.quote_id.clone(),
        side: None,
        notional_usd: None,
    };
    engine.submit(Actor::default(), Command::AcceptQuote(accept.clone())).await.unwrap();
    // The same quote again is refused (already used): no record, no event.
    let again = AcceptQuote { client_order_id: reference(&format!("feed-again-{round}")), ..accept };
    assert!(engine.submit(Actor::default(), Command::AcceptQuote(again)).await.is_err());
}

/// Every event the subscription holds now.
fn drain(running: &mut Running) -> Vec<SequencedEvent> {
    std::iter::from_fn(|| running.events.try_recv()).map(|event| (*event).clone()).collect()
}

/// The (client, asset) pairs whose balances each record (by seq) changed.
type Changed = BTreeMap<u64, Vec<(ClientId, AssetCode)>>;

/// The events of every record in the journal files, re-derived on a fresh desk, and the balances each changed.
fn replayed(directory: &Path) -> (Vec<SequencedEvent>, Changed) {
    let mut desk = Desk::new();
    let mut events = Vec::new();
    let mut changed = BTreeMap::new();
    otcd_journal::read_records(&directory.join("journal"), 0, u64::MAX, |seq, payload| {
        let record: JournalRecord = serde_json::from_slice(payload).map_err(|error| error.to_string())?;
        let before = all_balances(&desk);
        let (executed, derived) = desk.execute_with_events(&record).map_err(|error| error.to_string())?;
        assert!(executed.changed, "only changes are journaled");
        // A new client's balances start at zero: only a change from zero is a change.
        changed.insert(seq, changed_balances(&before, &all_balances(&desk)).into_keys().collect());
        events.extend(derived.into_iter().map(|event| SequencedEvent { seq, at: record.at, event }));
        Ok(())
    })
    .unwrap();
    (events, changed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_once_in_seq_order_from_durable_records_across_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let mut live = Vec::new();

    let mut running = start(directory.path());
    running.engine.submit(Actor::default(), fixtures::initialize_desk()).await.unwrap();
    for index in 0..CLIENTS {
        let new = fixtures::approved_client(&format!("Feed {index}"), Settlement::Prefunded, None);
        running.engine.submit(Actor::default(), Command::CreateClient(new)).await.unwrap();
        running.engine.submit(Actor::default(), deposit(index, "BTC", 100_000_000)).await.unwrap();
    }
    for round in 0..12 {
        trade_round(&running.engine, round).await;
    }
    live.extend(drain(&mut running));
    let Running { runner, engine, events } = running;
    drop((engine, events));
    runner.shutdown();

    let mut running = start(directory.path());
    let resumed_after = running.engine.durable_seq();
    for round in 12..24 {
        trade_round(&running.engine, round).await;
    }
    let after_restart = drain(&mut running);
    assert!(after_restart.iter().all(|event| event.seq > resumed_after), "nothing is published twice after a restart");
    live.extend(after_restart);
    let Running { runner, engine, events } = running;
    drop((engine, events));
    runner.shutdown();

    assert!(live.windows(2).all(|pair| pair[0].seq <= pair[1].seq), "events arrive in seq order");
    let (from_journal, changed) = replayed(directory.path());
    assert_eq!(live, from_journal, "the live feed is exactly what the durable records yield");
    for (seq, moved) in &changed {
        let mut published: Vec<(ClientId, AssetCode)> = live
            .iter()
            .filter(|event| event.seq == *seq)
            .filter_map(|event| match &event.event {
                DeskEvent::Balance(balance) => Some((balance.client_id.clone(), balance.asset)),
                _ => None,
            })
            .collect();
        published.sort();
        assert_eq!(&published, moved, "record {seq}: one balance event per changed balance, no other");
    }
    let trades = live.iter().filter(|event| matches!(event.event, DeskEvent::Trade(_))).count();
    assert_eq!(trades, 24, "one trade event per accepted quote");
}
