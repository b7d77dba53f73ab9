//! The event stream (docs/events.md) against a real NATS server with JetStream, started by the test on a free
//! loopback port: every durable event of a scripted session arrives once, in journal order, rendered as the REST
//! API shows it; a `kill -9` of the desk and a restart of NATS while the desk runs lose and repeat nothing; a
//! consumer that stops and resumes after its last position sees every event once.
//!
//! Needs `nats-server` (Debian package `nats-server`; `.ci/run` installs it). Without it the test prints
//! `SKIPPED` unless `OTCD_REQUIRE_NATS` is set, which turns the absence into a failure.

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use otcd_eventstream::{position_of_headers, stream_sequence_after, Position};
use otcd_testkit::http::text;
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// One `nats-server -js` on a loopback port with its store in a temporary directory; killed when dropped.
struct NatsServer {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

impl NatsServer {
    /// `None` (after printing SKIPPED) when nats-server is not installed and the run does not require it.
    fn start() -> Option<Self> {
        let Some(binary) = nats_server_binary() else {
            assert!(std::env::var_os("OTCD_REQUIRE_NATS").is_none(), "nats-server is required but not installed");
            eprintln!("SKIPPED: nats-server is not installed (Debian package nats-server)");
            return None;
        };
        let store = tempfile::tempdir().expect("a store directory");
        let port = free_port();
        let child = spawn_nats(&binary, port, &store.path().to_path_buf());
        let server = Self { child, port, store };
        server.wait_ready();
        Some(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (what it stored stays in its store directory).
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and store.
    fn start_again(&mut self) {
        let binary = nats_server_binary().expect("it ran before");
        self.child = spawn_nats(&binary, self.port, &self.store.path().to_path_buf());
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server_binary() -> Option<PathBuf> {
    let candidates = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];
    candidates.iter().map(PathBuf::from).find(|path| path.is_file())
}

fn spawn_nats(binary: &PathBuf, port: u16, store: &PathBuf) -> Child {
    Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nats-server")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("an address").port()
}

/// One message of the stream: its journal position and body.
#[derive(Debug, Clone)]
struct Message {
    position: Position,
    subject: String,
    body: Value,
}

/// Reads the stream with JetStream's own client, as a downstream system would.
struct Reader {
    runtime: tokio::runtime::Runtime,
    url: String,
}

impl Reader {
    fn new(url: String) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        Self { runtime, url }
    }

    async fn stream(&self) -> stream::Stream {
        let client = async_nats::connect(self.url.as_str()).await.expect("connect to NATS");
        jetstream::new(client).get_stream("OTCD_EVENTS").await.expect("the desk created OTCD_EVENTS")
    }

    /// Every message after `after`, through an ordered consumer started where `stream_sequence_after` says.
    fn after(&self, after: Position) -> Vec<Message> {
        self.runtime.block_on(async {
            let mut stream = self.stream().await;
            let last_sequence = stream.info().await.expect("stream info").state.last_sequence;
            let Some(start_sequence) = stream_sequence_after(&mut stream, after).await.expect("bisection") else {
                return Vec::new();
            };
            let config = consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                ..Default::default()
            };
            let mut messages = stream.create_consumer(config).await.expect("a consumer").messages().await.unwrap();
            let mut read = Vec::new();
            while let Some(message) = messages.next().await {
                let message = message.expect("a message");
                let sequence = message.info().expect("JetStream metadata").stream_sequence;
                let headers = message.headers.as_ref().expect("headers");
                let position = position_of_headers(headers).expect("journal position headers");
                let body: Value = serde_json::from_slice(&message.payload).expect("JSON");
                read.push(Message { position, subject: message.subject.to_string(), body });
                if sequence >= last_sequence {
                    break;
                }
            }
            read
        })
    }

    fn all(&self) -> Vec<Message> {
        self.after(Position::default())
    }

    /// Waits until the stream holds a message satisfying `done`, then returns the whole stream.
    fn until(&self, what: &str, done: impl Fn(&[Message]) -> bool) -> Vec<Message> {
        let deadline = Instant::now() + WAIT;
        loop {
            let messages = self.all();
            if done(&messages) {
                return messages;
            }
            assert!(Instant::now() < deadline, "the stream never had {what}: {messages:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn of_type<'a>(messages: &'a [Message], event_type: &str) -> Vec<&'a Message> {
    messages.iter().filter(|message| message.body["type"] == event_type).collect()
}

/// Positions strictly increase (each event once, in journal order), and subject and body agree.
fn assert_exactly_once_in_order(messages: &[Message]) {
    for pair in messages.windows(2) {
        assert!(pair[0].position < pair[1].position, "out of order or repeated: {:?} then {:?}", pair[0], pair[1]);
    }
    for message in messages {
        assert_eq!(message.body["schema"], "otcd.event.v1");
        assert_eq!(message.body["seq"], json!(message.position.seq));
        assert_eq!(message.body["index"], json!(message.position.index));
        assert_eq!(message.subject, format!("otcd.events.{}", text(&message.body["type"])));
    }
}

/// Every ledger transaction the desk posted appears exactly once (ids 1..=n, dense).
fn assert_ledger_complete(messages: &[Message], transactions_min: usize) {
    let ids: Vec<u64> = of_type(messages, "ledger_transaction")
        .iter()
        .map(|message| text(&message.body["data"]["transaction_id"]).parse().expect("an id"))
        .collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a ledger transaction published twice: {ids:?}");
    assert!(ids.len() >= transactions_min, "{} ledger transactions, expected at least {transactions_min}", ids.len());
    assert_eq!(distinct.iter().copied().collect::<Vec<_>>(), (1..=ids.len() as u64).collect::<Vec<_>>());
}

fn buy(desk: &TestDesk, key: &Signer, id: &str, quantity: &str) -> Value {
    desk.set_price("BTC-USD", "49990.00", "50010.00");
    let body =
        json!({"client_order_id": id, "type": "market", "instrument": "BTC-USD", "side": "buy", "quantity": quantity});
    desk.post(key, "/v1/orders", &body).expect(201).clone()
}

#[test]
fn every_event_once_in_order_across_a_desk_crash_and_a_nats_restart() {
    let Some(mut nats) = NatsServer::start() else { return };
    let reader = Reader::new(nats.url());
    let desk = TestDesk::launch().args(&["--events-nats", &nats.url()]).start();
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
    nats.stop();
    let second = buy(&desk, &key, "e-2", "0.5");
    let desk = desk.crash_and_restart();
    nats.start_again();
    let third = buy(&desk, &key, "e-3", "0.25");
    let trade_ids = [&second, &third].map(|order| text(&order["trades"][0]["trade_id"]));
    let messages = reader.until("the second and third trades", |messages| {
        let trades = of_type(messages, "trade");
        trade_ids.iter().all(|id| trades.iter().any(|message| message.body["data"]["trade_id"] == id.as_str()))
    });
    assert_exactly_once_in_order(&messages);
    assert_ledger_complete(&messages, 4);

    // NATS down while the desk runs and trades, then back: the publisher catches up from the event feed.
    nats.stop();
    let fourth = buy(&desk, &key, "e-4", "0.125");
    std::thread::sleep(Duration::from_millis(500));
    nats.start_again();
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
