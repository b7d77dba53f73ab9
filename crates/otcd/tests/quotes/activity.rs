//! The stream's `orders`, `trades` and `balances` channels: a client hears of every change of its own activity
//! (deposits, accepted quotes, resting orders filled by the order watcher, cancels), once each, from durable
//! records, and the same after a `kill -9` and restart.

use otcd_testkit::http::text;
use otcd_testkit::process::TestDesk;
use otcd_testkit::signing::Signer;
use otcd_testkit::stream::Stream;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
/// How long a channel must stay quiet to show that nothing more was sent.
const QUIET: Duration = Duration::from_millis(700);

/// A stream subscribed to the client's three activity channels (the replies consumed).
fn activity_stream(desk: &TestDesk, trader: &Signer) -> Stream {
    let mut stream = desk.stream(trader);
    for channel in ["orders", "trades", "balances"] {
        stream.send(&json!({"op": "subscribe", "channel": channel}));
        let reply = stream.next_reply(WAIT);
        assert_eq!((reply["type"].clone(), reply["channel"].clone()), (json!("subscribed"), json!(channel)), "{reply}");
    }
    stream
}

/// Every message until the stream has been quiet for [`QUIET`] (at most [`WAIT`]).
fn messages_until_quiet(stream: &mut Stream) -> Vec<Value> {
    stream.messages_until_quiet(QUIET, WAIT)
}

/// The `(asset, available, reserved)` of every balance message, in order.
fn balances(messages: &[Value]) -> Vec<(String, String, String)> {
    messages
        .iter()
        .filter(|message| message["type"] == "balance")
        .map(|message| (text(&message["asset"]), text(&message["available"]), text(&message["reserved"])))
        .collect()
}

fn of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages.iter().filter(|message| message["type"] == kind).collect()
}

fn balance(asset: &str, available: &str, reserved: &str) -> (String, String, String) {
    (asset.to_owned(), available.to_owned(), reserved.to_owned())
}

#[test]
fn every_change_of_a_clients_activity_is_streamed_once() {
    let desk = TestDesk::relaxed();
    let (client_id, trader) = desk.client("Activity", "standard", "approved");
    desk.deposit(&client_id, "USD", "100000.00", "wire-1").expect(201);
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let mut stream = activity_stream(&desk, &trader);

    desk.deposit(&client_id, "USD", "5000.00", "wire-2").expect(201);
    let messages = messages_until_quiet(&mut stream);
    assert_eq!(balances(&messages), vec![balance("USD", "105000.00", "0.00")], "{messages:?}");
    assert_eq!(messages.len(), 1, "a deposit is one balance message: {messages:?}");

    // A repeated deposit changes nothing and says nothing.
    desk.deposit(&client_id, "USD", "5000.00", "wire-2").expect(200);
    assert!(messages_until_quiet(&mut stream).is_empty());

    // An accepted quote: the order, its trade, and the two balances it moved, once each.
    let quote = desk.quote(&trader, "BTC-USD", "buy", "0.5");
    let body = json!({"client_order_id": "activity-1", "type": "quote", "quote_id": quote["quote_id"]});
    let order = desk.post(&trader, "/v1/orders", &body).expect(201).clone();
    let messages = messages_until_quiet(&mut stream);
    let orders = of_type(&messages, "order");
    assert_eq!(orders.len(), 1, "{messages:?}");
    assert_eq!(
        (orders[0]["order_id"].clone(), orders[0]["status"].clone()),
        (order["order_id"].clone(), json!("filled"))
    );
    assert_eq!(orders[0]["order_type"], json!("quote"), "{messages:?}");
    let trades = of_type(&messages, "trade");
    assert_eq!(trades.len(), 1, "{messages:?}");
    assert_eq!(trades[0]["trade_id"], order["trades"][0]["trade_id"], "{messages:?}");
    let net = text(&trades[0]["net_amount"]);
    let usd_left = otcd_testkit::http::units("105000.00", 2) - otcd_testkit::http::units(&net, 2);
    let mut moved = balances(&messages);
    moved.sort();
    let usd_left = format!("{}.{:02}", usd_left / 100, usd_left % 100);
    assert_eq!(moved, vec![balance("BTC", "0.50000000", "0.00000000"), balance("USD", &usd_left, "0.00")]);
    assert_eq!(messages.len(), 4, "{messages:?}");

    // A resting order: reserved at placement, then filled by the order watcher when the price reaches it.
    let limit = json!({"client_order_id": "activity-2", "type": "limit", "instrument": "BTC-USD", "side": "buy",
        "quantity": "0.1", "limit_price": "49000.00", "time_in_force": "gtc"});
    let resting = desk.post(&trader, "/v1/orders", &limit).expect(201).clone();
    assert_eq!(resting["status"], json!("open"), "{resting}");
    let messages = messages_until_quiet(&mut stream);
    assert_eq!(of_type(&messages, "order").len(), 1, "{messages:?}");
    assert_eq!(balances(&messages).len(), 1, "the reservation moves USD only: {messages:?}");
    assert_ne!(balances(&messages)[0].2, "0.00", "{messages:?}");
    desk.set_price("BTC-USD", "48000.00", "48010.00");
    let filled = desk.wait_for_status(&trader, &format!("/v1/orders/{}", text(&resting["order_id"])), "filled", WAIT);
    let messages = messages_until_quiet(&mut stream);
    let orders = of_type(&messages, "order");
    assert_eq!(orders.len(), 1, "{messages:?}");
    assert_eq!((orders[0]["status"].clone(), orders[0]["trades"].clone()), (json!("filled"), filled["trades"].clone()));
    assert_eq!(of_type(&messages, "trade").len(), 1, "{messages:?}");
    let mut moved: Vec<String> =
        balances(&messages).into_iter().map(|(asset, _, reserved)| format!("{asset}:{reserved}")).collect();
    moved.sort();
    assert_eq!(moved, ["BTC:0.00000000", "USD:0.00"], "the fill spends the reservation: {messages:?}");
}

#[test]
fn after_a_kill_the_stream_goes_on_from_the_durable_state_once_per_change() {
    let desk = TestDesk::relaxed();
    let (client_id, trader) = desk.client("Survivor", "standard", "approved");
    desk.deposit(&client_id, "USD", "1000.00", "before-1").expect(201);
    let mut stream = activity_stream(&desk, &trader);
    desk.deposit(&client_id, "USD", "250.00", "before-2").expect(201);
    assert_eq!(balances(&messages_until_quiet(&mut stream)), vec![balance("USD", "1250.00", "0.00")]);
    drop(stream);

    let desk = desk.crash_and_restart();
    let mut stream = activity_stream(&desk, &trader);
    assert!(messages_until_quiet(&mut stream).is_empty(), "nothing is replayed to a new subscriber");
    desk.deposit(&client_id, "USD", "250.00", "before-2").expect(200);
    desk.deposit(&client_id, "USD", "10.00", "after-1").expect(201);
    let messages = messages_until_quiet(&mut stream);
    assert_eq!(balances(&messages), vec![balance("USD", "1260.00", "0.00")], "{messages:?}");
    assert_eq!(messages.len(), 1, "{messages:?}");
}
