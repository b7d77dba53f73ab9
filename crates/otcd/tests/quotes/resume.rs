//! `/v1/stream` resume: every activity message carries the journal seq it came from; a client that reconnects
//! with `resume_from` gets exactly what it missed (from the durable events), then live messages, also after a
//! `kill -9` and restart; a resume from before what the desk keeps gets `resync_required`.

use otcd_testkit::process::{TestDesk, RELAXED_CONFIG};
use otcd_testkit::signing::Signer;
use otcd_testkit::stream::Stream;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(700);

/// Subscribes to `balances` (resuming when `resume_from` is given) and returns the answers before the
/// messages: `resync_required` (if any) and the `subscribed` ack.
fn subscribe(stream: &mut Stream, resume_from: Option<u64>) -> Vec<Value> {
    let mut message = json!({"op": "subscribe", "channel": "balances"});
    if let Some(seq) = resume_from {
        message["resume_from"] = json!(seq);
    }
    stream.send(&message);
    let mut answers = Vec::new();
    loop {
        let answer = stream.next_reply(WAIT);
        let done = answer["type"] == "subscribed";
        answers.push(answer);
        if done {
            return answers;
        }
        assert!(answers.len() < 2, "{answers:?}");
    }
}

/// Every message until the stream has been quiet for [`QUIET`] (at most [`WAIT`]).
fn messages_until_quiet(stream: &mut Stream) -> Vec<Value> {
    stream.messages_until_quiet(QUIET, WAIT)
}

/// `(seq, available)` of each balance message.
fn seqs_and_amounts(messages: &[Value]) -> Vec<(u64, String)> {
    messages
        .iter()
        .map(|message| {
            assert_eq!(message["type"], "balance", "{message}");
            (message["seq"].as_u64().unwrap_or_else(|| panic!("a seq: {message}")), message["available"].to_string())
        })
        .collect()
}

fn client(desk: &TestDesk) -> (String, Signer) {
    desk.client("Resumer", "standard", "approved")
}

#[test]
fn a_reconnecting_client_gets_exactly_what_it_missed_then_live_messages_also_after_a_kill() {
    let desk = TestDesk::relaxed();
    let (client_id, trader) = client(&desk);
    let mut stream = desk.stream(&trader);
    let ack = subscribe(&mut stream, None);
    assert_eq!(ack.len(), 1, "{ack:?}");
    let subscribed_seq = ack[0]["seq"].as_u64().expect("the ack carries the desk's seq");
    desk.deposit(&client_id, "USD", "100.00", "r-1").expect(201);
    let seen = seqs_and_amounts(&messages_until_quiet(&mut stream));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].0 > subscribed_seq, "{seen:?} after {subscribed_seq}");
    let last_seen = seen[0].0;
    drop(stream);

    // Missed while disconnected: two changes of this client and one of another.
    desk.deposit(&client_id, "USD", "10.00", "r-2").expect(201);
    let (other_id, _) = desk.client("Other", "standard", "approved");
    desk.deposit(&other_id, "USD", "1.00", "o-1").expect(201);
    desk.deposit(&client_id, "USD", "1.00", "r-3").expect(201);

    let mut stream = desk.stream(&trader);
    let ack = subscribe(&mut stream, Some(last_seen));
    assert_eq!(ack.len(), 1, "no resync needed: {ack:?}");
    let missed = seqs_and_amounts(&messages_until_quiet(&mut stream));
    let amounts: Vec<&str> = missed.iter().map(|(_, amount)| amount.as_str()).collect();
    assert_eq!(amounts, ["\"110.00\"", "\"111.00\""], "exactly the missed messages, in order: {missed:?}");
    assert!(missed[0].0 > last_seen && missed[1].0 > missed[0].0, "{missed:?}");
    assert_eq!(ack[0]["seq"].as_u64(), Some(missed[1].0), "the ack's seq is the desk's seq at subscription");
    desk.deposit(&client_id, "USD", "1.00", "r-4").expect(201);
    let live = seqs_and_amounts(&messages_until_quiet(&mut stream));
    assert_eq!(live.len(), 1, "then live, once: {live:?}");
    assert!(live[0].0 > missed[1].0);
    let resume_point = live[0].0;
    drop(stream);

    // A kill -9 while the client is away: the missed change comes from the journal replayed at start.
    desk.deposit(&client_id, "USD", "1.00", "r-5").expect(201);
    let desk = desk.crash_and_restart();
    let mut stream = desk.stream(&trader);
    let ack = subscribe(&mut stream, Some(resume_point));
    assert_eq!(ack.len(), 1, "{ack:?}");
    let missed = seqs_and_amounts(&messages_until_quiet(&mut stream));
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0].1, "\"113.00\"");
    desk.deposit(&client_id, "USD", "1.00", "r-6").expect(201);
    let live = seqs_and_amounts(&messages_until_quiet(&mut stream));
    assert_eq!(live.iter().map(|(_, amount)| amount.as_str()).collect::<Vec<_>>(), ["\"114.00\""]);
}

#[test]
fn a_resume_from_before_what_the_desk_keeps_gets_resync_required_then_live_messages() {
    let desk = TestDesk::with_config(&format!("{RELAXED_CONFIG}\nstream_resume_events = 2\n"));
    let (client_id, trader) = client(&desk);
    let mut stream = desk.stream(&trader);
    subscribe(&mut stream, None);
    desk.deposit(&client_id, "USD", "100.00", "r-1").expect(201);
    let first = seqs_and_amounts(&messages_until_quiet(&mut stream))[0].0;
    drop(stream);
    for reference in ["r-2", "r-3", "r-4"] {
        desk.deposit(&client_id, "USD", "1.00", reference).expect(201);
    }
    let mut stream = desk.stream(&trader);
    let answers = subscribe(&mut stream, Some(first));
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(
        (answers[0]["type"].clone(), answers[0]["channel"].clone()),
        (json!("resync_required"), json!("balances"))
    );
    let oldest = answers[0]["oldest_seq"].as_u64().expect("oldest_seq");
    assert!(oldest > first, "{answers:?}");
    assert!(messages_until_quiet(&mut stream).is_empty(), "nothing replayed after a resync");

    // The oldest seq it names does resume (nothing was published since).
    let mut resumed = desk.stream(&trader);
    let answers = subscribe(&mut resumed, Some(oldest));
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(!messages_until_quiet(&mut resumed).is_empty());

    desk.deposit(&client_id, "USD", "1.00", "r-5").expect(201);
    assert_eq!(seqs_and_amounts(&messages_until_quiet(&mut stream)).len(), 1, "subscribed live after the resync");
    // A resume_from on a quote subscription is refused.
    stream.send(
        &json!({"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": ["1"], "resume_from": 1}),
    );
    let reply = stream.next_reply(WAIT);
    assert_eq!((reply["type"].clone(), reply["code"].clone()), (json!("error"), json!("invalid_request")), "{reply}");
}
