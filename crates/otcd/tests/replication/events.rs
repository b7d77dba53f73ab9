//! The event stream (docs/events.md) across a failover: both nodes are configured to publish, only the leader
//! does, and a consumer that stops before the leader's `kill -9` and resumes after its last position on the new
//! leader's stream sees every deposit's ledger transaction exactly once, in journal order.

// Shared with the API suite, which uses all of it.
#[allow(dead_code)]
#[path = "../common/event_reader.rs"]
mod event_reader;

use super::*;
use event_reader::{assert_exactly_once_in_order, of_type, Reader};
use otcd_testkit::replication::NatsCluster;

/// The references of the deposits whose ledger transactions `messages` hold.
fn deposit_references(messages: &[event_reader::Message]) -> Vec<String> {
    of_type(messages, "ledger_transaction")
        .iter()
        .filter(|message| message.body["data"]["type"] == "deposit")
        .map(|message| message.body["data"]["reference"].as_str().expect("a reference").to_owned())
        .collect()
}

#[test]
fn a_consumer_resuming_after_a_failover_sees_every_event_once() {
    let _serial = serial();
    if skip_without_nats() {
        return;
    }
    let nats = NatsCluster::start(3);
    let urls: Vec<String> = nats.urls().split(',').map(|url| format!("\"{url}\"")).collect();
    let config = format!("{FAST_LEASE_CONFIG}events_nats = [{}]\nevents_stream_replicas = 3\n", urls.join(", "));
    let root = tempfile::tempdir().unwrap();
    let (mut a, desk) = first_node_with(root.path(), &nats.urls(), &config);
    let b = second_node_with(root.path(), &nats.urls(), &a, &config);
    let reader = Reader::new(nats.urls().split(',').next().expect("a URL").to_owned());
    let publishing = |node: &Node| node.log().contains("event stream: publishing");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !publishing(&a) {
        assert!(Instant::now() < deadline, "the leader never published; log:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    for index in 0..5 {
        assert_eq!(deposit(&a, &desk, &format!("before-{index}")).unwrap().status, 201);
    }
    let before = reader.until("the first five deposits", |messages| deposit_references(messages).len() == 5);
    let consumed = before.last().expect("events").position;

    a.kill();
    b.wait_for_role("leader", Duration::from_secs(30));
    let mut written = 0;
    wait_until("deposits on the new leader", Duration::from_secs(30), || {
        if deposit(&b, &desk, &format!("after-{written}")).is_ok_and(|reply| reply.status == 201) {
            written += 1;
        }
        written == 5
    });
    let all = reader.until("the five deposits on the new leader", |messages| deposit_references(messages).len() == 10);
    assert_exactly_once_in_order(&all);
    let mut references = deposit_references(&all);
    references.sort();
    let mut expected: Vec<String> =
        (0..5).flat_map(|index| [format!("after-{index}"), format!("before-{index}")]).collect();
    expected.sort();
    assert_eq!(references, expected, "each deposit once across the failover");

    // The consumer resumes after the last event it processed before the failover: exactly the rest.
    let resumed = reader.after(consumed);
    let rest: Vec<_> =
        all.iter().filter(|message| message.position > consumed).map(|message| message.position).collect();
    assert_eq!(resumed.iter().map(|message| message.position).collect::<Vec<_>>(), rest);
    assert_eq!(deposit_references(&resumed).len(), 5);
}
