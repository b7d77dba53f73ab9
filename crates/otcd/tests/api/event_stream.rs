//! The event stream (docs/events.md) against a real NATS server with JetStream, started by the test on a free
//! loopback port: every durable event of a scripted session arrives once, in journal order, rendered as the REST
//! API shows it; a `kill -9` of the desk and a restart of NATS while the desk runs lose and repeat nothing; a
//! consumer that stops and resumes after its last position sees every event once.
//!
//! Needs `nats-server` (Debian package `nats-server`; `.ci/run` installs it). Without it the test prints
//! `SKIPPED` unless `OTCD_REQUIRE_NATS` is set, which turns the absence into a failure.

#[path = "../common/event_reader.rs"]
mod event_reader;

use event_reader::{assert_exactly_once_in_order, assert_ledger_complete, of_type, Reader};
use otcd_eventstream::Position;
use otcd_testkit::http::text;
use otcd_testkit::process::TestDesk;
use otcd_testkit::replication::{nats_server_installed, NatsCluster};
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// A one-server JetStream "cluster" from the test kit, or `None` (after printing SKIPPED) when nats-server is
/// not installed and the run does not require it.
fn nats() -> Option<NatsCluster> {
    if !nats_server_installed() {
        assert!(std::env::var_os("OTCD_REQUIRE_NATS").is_none(), "nats-server is required but not installed");
        eprintln!("SKIPPED: nats-server is not installed (Debian package nats-server)");
        return None;
    }
    Some(NatsCluster::start(1))
}

fn buy(desk: &TestDesk, key: &Signer, id: &str, quantity: &str) -> Value {
    desk.set_price("BTC-USD", "49990.00", "50010.00");
    let body =
        json!({"client_order_id": id, "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": quantity});
    desk.post(key, "/v1/orders", &body).expect(201).clone()
}

#[test]
fn every_event_once_in_order_across_a_desk_crash_and_a_nats_restart() {
    let Some(mut nats) = nats() else { return };
    let reader = Reader::new(nats.urls());
    let desk = TestDesk::launch().args(&["--events-nats", &nats.urls()]).start();
    let (client_id, key) = desk.client("Event Reader Ltd", "standard", "approved");
    desk.deposit(&client_id, "USD", "200000.00", "wire-1").expect(201);
    let order = buy(&desk, &key, "e-1", "1");

    // The deposit and the trade, as the REST API shows them, with their ledger transactions.
    let trade_id = text(&order["trades"][0]["trade_id"]);
    let messages = reader.until("the trade", |messages| {
        of_type(messages, "trade").iter().any(|message| message.body["data"]["trade_id"] == trade_id.as_str())
    });
    assert_exactly_once_in_order(&messages);
    let trades = desk.get(&key, "/v1/trades").expect(200).clone();
    let streamed = of_type(&messages, "trade")[0];
    assert_eq!(streamed.body["data"], trades["items"][0], "the trade as GET /v1/trades shows it");
    let order_id = text(&order["order_id"]);
    let shown = desk.get(&key, &format!("/v1/orders/{order_id}")).expect(200).clone();
    let streamed = of_type(&messages, "order").into_iter().last().expect("an order event");
    assert_eq!(streamed.body["data"]["order_id"], shown["order_id"]);
    assert_eq!(streamed.body["data"]["status"], shown["status"]);
    let deposit = of_type(&messages, "ledger_transaction")
        .into_iter()
        .find(|message| message.body["data"]["type"] == "deposit")
        .expect("the deposit's ledger transaction");
    let entries = deposit.body["data"]["entries"].as_array().expect("entries");
    assert!(entries.iter().any(|entry| entry["owner"] == client_id.as_str()
        && entry["account"] == "available"
        && entry["amount"] == "200000.00"));
    let balances = of_type(&messages, "balance");
    let btc = balances.iter().find(|message| message.body["data"]["asset"] == "BTC").expect("a BTC balance event");
    assert_eq!(btc.body["data"]["client_id"], client_id.as_str());
    assert_eq!(btc.body["data"]["available"], desk.available(&client_id, "BTC"));

    // NATS down, a trade, then kill -9: the trade's events were never published. After the restart they come
    // from the records recovery replayed, before the next trade's, each once.
    nats.kill(0);
    let second = buy(&desk, &key, "e-2", "0.5");
    let desk = desk.crash_and_restart();
    nats.restart(0);
    let third = buy(&desk, &key, "e-3", "0.25");
    let trade_ids = [&second, &third].map(|order| text(&order["trades"][0]["trade_id"]));
    let messages = reader.until("the second and third trades", |messages| {
        let trades = of_type(messages, "trade");
        trade_ids.iter().all(|id| trades.iter().any(|message| message.body["data"]["trade_id"] == id.as_str()))
    });
    assert_exactly_once_in_order(&messages);
    assert_ledger_complete(&messages, 4);

    // NATS down while the desk runs and trades, then back: the publisher catches up from the event feed.
    nats.kill(0);
    let fourth = buy(&desk, &key, "e-4", "0.125");
    std::thread::sleep(Duration::from_millis(500));
    nats.restart(0);
    let fourth_id = text(&fourth["trades"][0]["trade_id"]);
    let messages = reader.until("the fourth trade", |messages| {
        of_type(messages, "trade").iter().any(|message| message.body["data"]["trade_id"] == fourth_id.as_str())
    });
    assert_exactly_once_in_order(&messages);
    assert_ledger_complete(&messages, 5);
    assert_eq!(of_type(&messages, "trade").len(), 4);
    assert!(of_type(&messages, "gap").is_empty(), "nothing fell out of the resume ring");

    // A consumer that processed up to some event resumes after it and gets exactly the rest.
    let cut = messages.len() / 2;
    let resumed = reader.after(messages[cut].position);
    let rest: Vec<Position> = messages[cut + 1..].iter().map(|message| message.position).collect();
    assert_eq!(resumed.iter().map(|message| message.position).collect::<Vec<_>>(), rest);
    assert!(reader.after(messages.last().expect("messages").position).is_empty());
}

#[test]
fn bad_event_stream_settings_stop_the_start() {
    let output = otcd_testkit::process::run_otcd_in(
        &["serve", "--data-dir", "d", "--listen", "127.0.0.1:0", "--market", "manual", "--config", "c.toml"],
        &write_config("events_nats = [\"nats://127.0.0.1:4222\"]\nevents_subject_prefix = \"otcd.>\"\n"),
        &[],
    );
    let printed = otcd_testkit::process::combined_output(&output);
    assert!(!output.status.success());
    assert!(printed.contains("subject prefix"), "{printed}");
}

/// A scratch directory holding `c.toml` with `toml` (kept for the life of the test process).
fn write_config(toml: &str) -> PathBuf {
    let directory = tempfile::tempdir().expect("a directory").keep();
    std::fs::write(directory.join("c.toml"), toml).expect("write the config");
    directory
}
