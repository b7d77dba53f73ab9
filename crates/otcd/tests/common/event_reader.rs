//! A reader of the desk's event stream (docs/events.md) for black-box tests, with the stream's invariants as
//! assertions. Shared by the API suite (`api/event_stream.rs`) and the replication suite
//! (`replication/events.rs`), which include it by path.

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use otcd_eventstream::{position_of_headers, stream_sequence_after, Position};
use otcd_testkit::http::text;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// One message of the stream: its journal position and body.
#[derive(Debug, Clone)]
pub struct Message {
    pub position: Position,
    pub subject: String,
    pub body: Value,
}

/// Reads the stream with JetStream's own client, as a downstream system would.
pub struct Reader {
    runtime: tokio::runtime::Runtime,
    url: String,
}

impl Reader {
    pub fn new(url: String) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        Self { runtime, url }
    }

    /// The stream, once NATS answers and the desk has created it.
    async fn stream(&self) -> stream::Stream {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(client) = async_nats::connect(self.url.as_str()).await {
                if let Ok(stream) = jetstream::new(client).get_stream("OTCD_EVENTS").await {
                    return stream;
                }
            }
            assert!(Instant::now() < deadline, "no OTCD_EVENTS stream at {}", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every message after `after`, through an ordered consumer started where `stream_sequence_after` says.
    pub fn after(&self, after: Position) -> Vec<Message> {
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

    pub fn all(&self) -> Vec<Message> {
        self.after(Position::default())
    }

    /// Waits until the stream holds a message satisfying `done`, then returns the whole stream.
    pub fn until(&self, what: &str, done: impl Fn(&[Message]) -> bool) -> Vec<Message> {
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

pub fn of_type<'a>(messages: &'a [Message], event_type: &str) -> Vec<&'a Message> {
    messages.iter().filter(|message| message.body["type"] == event_type).collect()
}

/// Positions strictly increase (each event once, in journal order), and subject and body agree.
pub fn assert_exactly_once_in_order(messages: &[Message]) {
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
pub fn assert_ledger_complete(messages: &[Message], transactions_min: usize) {
    let ids: Vec<u64> = of_type(messages, "ledger_transaction")
        .iter()
        .map(|message| text(&message.body["data"]["transaction_id"]).parse().expect("an id"))
        .collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a ledger transaction published twice: {ids:?}");
    assert!(ids.len() >= transactions_min, "{} ledger transactions, expected at least {transactions_min}", ids.len());
    assert_eq!(distinct.iter().copied().collect::<Vec<_>>(), (1..=ids.len() as u64).collect::<Vec<_>>());
}
