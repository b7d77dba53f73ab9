//! `GET /v1/stream` quote subscriptions: firm ladders, price changes, errors that keep the connection usable,
//! indicative ladders for clients who may not trade, authentication of the upgrade, and slow consumers.

use otcd_testkit::http::{assert_problem, text, timestamp_ms};
use otcd_testkit::process::{timing_lock, TestDesk};
use otcd_testkit::signing::{now_ms, Signer};
use otcd_testkit::stream::{ladder_prices, Event, Stream};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn is_ladder_for(message: &Value, instrument: &str) -> bool {
    message["type"] == "quotes" && message["instrument"] == instrument
}

/// Waits for a ladder of `instrument` whose every level is `(bid, ask)`.
#[track_caller]
fn ladder_at(stream: &mut Stream, instrument: &str, bid: &str, ask: &str) -> Value {
    stream.next_where(WAIT, &format!("a {instrument} ladder at {bid}/{ask}"), |message| {
        is_ladder_for(message, instrument) && ladder_prices(message).iter().all(|(b, a)| b == bid && a == ask)
    })
}

#[test]
fn firm_ladders_follow_the_market() {
    let desk = TestDesk::relaxed();
    let (_, trader) = desk.client("Streamer", "standard", "approved");
    let other = desk.trader("Other");
    desk.set_price("BTC-USD", "50000.00", "50010.00");

    let mut stream = desk.stream(&trader);
    stream.subscribe_quotes("BTC-USD", &["0.5", "1", "5"]);
    // The reply and the first ladder, nothing else (the reply is queued first, but the ladder is made on
    // another task, so the order is not asserted).
    let first = stream.next_where(WAIT, "the first message", |_| true);
    let second = stream.next_where(WAIT, "the second message", |_| true);
    let (subscribed, ladder) = if first["type"] == "subscribed" { (first, second) } else { (second, first) };
    assert_eq!(subscribed["type"], json!("subscribed"), "{subscribed}");
    assert_eq!((subscribed["channel"].clone(), subscribed["instrument"].clone()), (json!("quotes"), json!("BTC-USD")));
    assert!(is_ladder_for(&ladder, "BTC-USD"), "{ladder}");
    assert_eq!(ladder["firm"], json!(true), "{ladder}");
    assert!(ladder["as_of"].is_string(), "{ladder}");
    let levels = ladder["levels"].as_array().expect("levels").clone();
    let quantities: Vec<String> = levels.iter().map(|level| text(&level["quantity"])).collect();
    assert_eq!(quantities, ["0.50000000", "1.00000000", "5.00000000"], "{ladder}");
    // Each level: 50000.00 × 0.998 = 49900.00 and 50010.00 × 1.002 = 50110.02.
    assert_eq!(ladder_prices(&ladder), vec![("49900.00".to_owned(), "50110.02".to_owned()); 3], "{ladder}");
    let mut ids: Vec<String> = levels.iter().map(|level| text(&level["quote_id"])).collect();
    for level in &levels {
        assert!(timestamp_ms(&level["valid_until"]) > now_ms(), "{ladder}");
    }

    // A level's quote is a two-way firm quote of the subscriber, with the ladder's prices.
    let path = format!("/v1/quotes/{}", ids[1]);
    let quote = desk.get(&trader, &path).expect(200).clone();
    assert_eq!((quote["bid"].clone(), quote["ask"].clone()), (json!("49900.00"), json!("50110.02")), "{quote}");
    assert_eq!(quote["quantity"], json!("1.00000000"), "{quote}");
    assert_eq!(quote["valid_until"], levels[1]["valid_until"], "{quote}");
    assert_eq!(quote["state"], json!("open"), "{quote}");
    assert_problem(&desk.get(&other, &path), 404, "quote_not_found");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one quote per level: {ladder}");

    // A price change reaches the subscriber: 51000.00 × 0.998 = 50898.00, 51010.00 × 1.002 = 51112.02.
    desk.set_price("BTC-USD", "51000.00", "51010.00");
    let moved = ladder_at(&mut stream, "BTC-USD", "50898.00", "51112.02");
    assert_eq!(moved["firm"], json!(true), "{moved}");
    let moved_id = text(&moved["levels"][0]["quote_id"]);
    let quote = desk.get(&trader, &format!("/v1/quotes/{moved_id}")).expect(200).clone();
    assert_eq!((quote["bid"].clone(), quote["ask"].clone()), (json!("50898.00"), json!("51112.02")), "{quote}");
    assert_eq!(quote["quantity"], json!("0.50000000"), "{quote}");
}

#[test]
fn bad_messages_get_errors_and_the_connection_stays_usable() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Clumsy");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    desk.set_price("ETH-USD", "3000.00", "3001.00");
    let mut stream = desk.stream(&trader);
    stream.subscribe_quotes("BTC-USD", &["1"]);
    assert_eq!(stream.next_reply(WAIT)["type"], json!("subscribed"));

    let eleven_levels: Vec<String> = (1..=11).map(|size| size.to_string()).collect();
    let bad: [(&str, &str); 10] = [
        ("not json", "invalid_request"),
        (r#"{"op": "dance", "channel": "quotes", "instrument": "BTC-USD", "levels": ["1"]}"#, "invalid_request"),
        (r#"{"op": "subscribe", "channel": "weather"}"#, "invalid_request"),
        (r#"{"op": "subscribe", "channel": "quotes", "levels": ["1"]}"#, "invalid_request"),
        (
            r#"{"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": ["0.00001"]}"#,
            "invalid_request",
        ),
        (r#"{"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": []}"#, "invalid_request"),
        (r#"{"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": [1]}"#, "invalid_request"),
        (r#"{"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD"}"#, "invalid_request"),
        (
            r#"{"op": "subscribe", "channel": "quotes", "instrument": "DOGE-USD", "levels": ["1"]}"#,
            "instrument_unknown",
        ),
        (
            r#"{"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": ["1"], "extra": 1}"#,
            "invalid_request",
        ),
    ];
    for (message, code) in bad {
        stream.send_text(message);
        let reply = stream.next_reply(WAIT);
        assert_eq!(reply["type"], json!("error"), "reply to {message}: {reply}");
        assert_eq!(reply["code"], json!(code), "reply to {message}: {reply}");
    }
    stream.send(&json!({"op": "subscribe", "channel": "quotes", "instrument": "BTC-USD", "levels": eleven_levels}));
    let reply = stream.next_reply(WAIT);
    assert_eq!((reply["type"].clone(), reply["code"].clone()), (json!("error"), json!("invalid_request")), "{reply}");

    // Still usable: a new subscription works and prices ETH-USD (3000.00 × 0.998 = 2994.00, 3001.00 × 1.002 = 3007.002 → 3007.01).
    stream.subscribe_quotes("ETH-USD", &["2"]);
    let reply = stream.next_reply(WAIT);
    assert_eq!(
        (reply["type"].clone(), reply["instrument"].clone()),
        (json!("subscribed"), json!("ETH-USD")),
        "{reply}"
    );
    let ladder = ladder_at(&mut stream, "ETH-USD", "2994.00", "3007.01");
    assert_eq!(ladder["levels"][0]["quantity"], json!("2.000000000000000000"), "{ladder}");
    // The earlier subscription still runs.
    desk.set_price("BTC-USD", "51000.00", "51010.00");
    ladder_at(&mut stream, "BTC-USD", "50898.00", "51112.02");
    // Unsubscribing answers too.
    stream.send(&json!({"op": "unsubscribe", "channel": "quotes", "instrument": "BTC-USD"}));
    let reply = stream.next_reply(WAIT);
    assert_eq!((reply["type"].clone(), reply["found"].clone()), (json!("unsubscribed"), json!(true)), "{reply}");
}

#[test]
fn clients_without_kyc_get_indicative_ladders() {
    let desk = TestDesk::relaxed();
    let (_, pending) = desk.client("Stream Pending", "standard", "pending");
    desk.set_price("BTC-USD", "50000.00", "50010.00");
    let mut stream = desk.stream(&pending);
    stream.subscribe_quotes("BTC-USD", &["1", "2"]);
    assert_eq!(stream.next_reply(WAIT)["type"], json!("subscribed"));
    let ladder = stream.next_where(WAIT, "a BTC-USD ladder", |message| is_ladder_for(message, "BTC-USD"));
    assert_eq!(ladder["firm"], json!(false), "{ladder}");
    assert_eq!(ladder_prices(&ladder), vec![("49900.00".to_owned(), "50110.02".to_owned()); 2], "{ladder}");
    for level in ladder["levels"].as_array().expect("levels") {
        assert!(level.get("quote_id").is_none_or(Value::is_null), "no executable quote without KYC: {ladder}");
        assert!(level.get("valid_until").is_none_or(Value::is_null), "{ladder}");
    }
    // Indicative ladders follow the market too.
    desk.set_price("BTC-USD", "51000.00", "51010.00");
    let moved = ladder_at(&mut stream, "BTC-USD", "50898.00", "51112.02");
    assert_eq!(moved["firm"], json!(false), "{moved}");
    // And nothing firm was created for the pending client.
    assert_problem(&desk.get(&desk.admin, "/v1/quotes/q_000000000001"), 404, "quote_not_found");
}

#[test]
fn the_upgrade_must_be_signed_by_a_client_key() {
    let desk = TestDesk::relaxed();
    let trader = desk.trader("Upgrade");
    assert_eq!(desk.stream_with(&[]).err(), Some(401), "an unsigned upgrade");
    let mut forged = trader.headers("GET", "/v1/stream", "");
    forged[2].1 = "0".repeat(64);
    assert_eq!(desk.stream_with(&forged).err(), Some(401), "a bad signature");
    let wrong_path = trader.headers("GET", "/v1/balances", "");
    assert_eq!(desk.stream_with(&wrong_path).err(), Some(401), "a signature of another path");
    assert!(desk.stream_with(&trader.headers("GET", "/v1/stream", "")).is_ok(), "a signed upgrade");
}

/// Every instrument with ten sizes inside its limits (so every ladder to a slow client is large), and a book.
const EVERYTHING: [(&str, &str, &str, [&str; 10]); 11] = [
    ("BTC-USD", "50000.00", "50010.00", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]),
    ("ETH-USD", "3000.00", "3001.00", ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]),
    ("BTC-EUR", "46000.00", "46010.00", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]),
    ("ETH-EUR", "2700.00", "2701.00", ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]),
    ("BTC-USDT", "50000.00", "50010.00", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]),
    ("ETH-USDT", "3000.00", "3001.00", ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]),
    ("ETH-BTC", "0.05000", "0.05010", ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]),
    ("USDT-USD", "0.9998", "1.0002", ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]),
    ("USDC-USD", "0.9998", "1.0002", ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]),
    ("EUR-USD", "1.08000", "1.08010", ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]),
    ("GBP-USD", "1.26000", "1.26010", ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"]),
];

/// `price` moved by `delta` steps of its last decimal: ("0.9998", -1) → "0.9997".
fn nudged(price: &str, delta: i64) -> String {
    let decimals = price.split_once('.').map_or(0, |(_, fraction)| fraction.len());
    let units: i64 = price.replace('.', "").parse().expect("a price");
    let digits = format!("{:0width$}", units + delta, width = decimals + 1);
    format!("{}.{}", &digits[..digits.len() - decimals], &digits[digits.len() - decimals..])
}

/// A desk with prices on every instrument and a client whose slow connection subscribed to all of them (ten
/// levels each) and then stopped reading.
fn desk_with_a_slow_consumer(name: &str) -> (TestDesk, Signer, Stream) {
    let desk = TestDesk::relaxed();
    let trader = desk.trader(name);
    for (instrument, bid, ask, _) in &EVERYTHING {
        desk.set_price(instrument, bid, ask);
    }
    let mut slow = desk.small_buffer_stream(&trader);
    for (instrument, _, _, levels) in &EVERYTHING {
        slow.subscribe_quotes(instrument, levels);
    }
    (desk, trader, slow)
}

/// Price changes round-robin over every instrument for at least `duration` (and at least 300 rounds): each
/// instrument alternates between two books, except BTC-USD whose ask walks up a cent per round from 50010.00.
/// Returns BTC-USD's last ask in cents.
fn price_storm(desk: &TestDesk, duration: Duration) -> i64 {
    let started = Instant::now();
    let mut btc_ask = 5_001_000_i64;
    let mut round = 0;
    while round < 300 || (started.elapsed() < duration && round < 20_000) {
        for (instrument, bid, ask, _) in EVERYTHING.iter().skip(1) {
            if round % 2 == 0 {
                desk.set_price(instrument, bid, ask);
            } else {
                desk.set_price(instrument, &nudged(bid, -1), &nudged(ask, 1));
            }
        }
        btc_ask += 1;
        desk.set_price("BTC-USD", "50000.00", &format!("{}.{:02}", btc_ask / 100, btc_ask % 100));
        round += 1;
    }
    btc_ask
}

/// Reads the slow connection until it ends: a close frame must be 1008 naming a slow consumer; a reset or EOF
/// also counts. Panics when it is still delivering at `deadline` (the server never cut it off).
fn assert_cut_off(slow: &mut Stream, deadline: Instant) {
    let mut drained = 0;
    loop {
        match slow.read(deadline.saturating_duration_since(Instant::now())) {
            Event::Message(_) => drained += 1,
            Event::Closed(code, reason) => {
                assert_eq!(code, 1008, "close code for a slow consumer: {reason}");
                assert!(reason.contains("slow consumer"), "close reason: {reason:?}");
                eprintln!("slow consumer: {drained} queued messages, then close frame {code} {reason:?}");
                return;
            }
            Event::Ended(error) => {
                eprintln!("slow consumer: {drained} queued messages, then the connection ended: {error}");
                return;
            }
            Event::Timeout => panic!("the slow connection is still open after {drained} messages"),
        }
    }
}

#[test]
fn a_slow_consumer_is_cut_off_without_holding_back_others() {
    let _serial = timing_lock();
    let started = Instant::now();
    let (desk, trader, mut slow) = desk_with_a_slow_consumer("Fast And Slow");
    // The fast client reads everything, on its own thread, and remembers the last BTC-USD ask it saw.
    let mut fast = desk.stream(&trader);
    fast.subscribe_quotes("BTC-USD", &["1"]);
    ladder_at(&mut fast, "BTC-USD", "49900.00", "50110.02");
    let last_seen = Arc::new(Mutex::new((None::<String>, 0_usize)));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (last_seen, stop) = (last_seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match fast.read(Duration::from_millis(200)) {
                    Event::Message(message) if is_ladder_for(&message, "BTC-USD") => {
                        let mut last_seen = last_seen.lock().unwrap();
                        *last_seen = (Some(text(&message["levels"][0]["ask"])), last_seen.1 + 1);
                    }
                    Event::Message(_) | Event::Timeout => {}
                    other => return Some(format!("the fast connection ended: {other:?}")),
                }
            }
            None
        })
    };

    let btc_ask = price_storm(&desk, Duration::from_secs(3));
    // The client's buy price for the last book: ceil(ask × 1.002) in cents.
    let cents = (u64::try_from(btc_ask).expect("a positive ask") * 1_002_000).div_ceil(1_000_000);
    let last_ask = format!("{}.{:02}", cents / 100, cents % 100);

    // The fast client promptly sees the last BTC-USD price.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (current, ladders) = last_seen.lock().unwrap().clone();
        if current.as_deref() == Some(last_ask.as_str()) {
            assert!(ladders >= 2, "the fast client kept receiving ladders during the storm: {ladders}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fast client is stuck at {current:?} after {ladders} ladders; expected {last_ask}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(failure) = reader.join().expect("the reader thread") {
        panic!("{failure}");
    }

    // The slow client was cut off: reading now drains what was queued and then meets the close (1008, slow
    // consumer) or the end of the connection, instead of a live stream that never ends.
    assert_cut_off(&mut slow, started + Duration::from_secs(30).max(started.elapsed() + Duration::from_secs(5)));
    drop(slow);
    // The desk itself is fine.
    assert_eq!(desk.quote_price(&trader, "BTC-USD", "sell", "1"), "49900.00");
}

/// The state (`st`, hex) of the desk's side of the TCP connection from local port `client_port`, from
/// /proc/net/tcp; `None` when the desk no longer has that socket.
fn desk_socket_state(desk: &TestDesk, client_port: u16) -> Option<String> {
    let desk_port: u16 = desk.address.rsplit(':').next().and_then(|port| port.parse().ok()).expect("a port");
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port_of = |address: &str| address.rsplit(':').next().and_then(|port| u16::from_str_radix(port, 16).ok());
        (port_of(fields[1]) == Some(desk_port) && port_of(fields[2]) == Some(client_port))
            .then(|| format!("{} tx_queue:rx_queue {}", fields[3], fields[4]))
    })
}

/// A slow consumer is disconnected by the desk even while it stays stalled: the desk must not keep the TCP
/// connection (and its per-key connection slot, queue and buffers) until the client reads again.
#[test]
fn a_stalled_slow_consumer_is_disconnected_while_it_stays_stalled() {
    let _serial = timing_lock();
    let started = Instant::now();
    let (desk, _, mut slow) = desk_with_a_slow_consumer("Stalled");
    let client_port = slow.local_port();
    price_storm(&desk, Duration::from_secs(3));

    // ESTABLISHED is "01"; once the desk closes its socket it is FIN_WAIT1 ("04") or later, or gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let state = desk_socket_state(&desk, client_port);
        if !state.as_deref().is_some_and(|state| state.starts_with("01 ")) || Instant::now() >= deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The premise: the desk did decide to cut this client off (visible once the client reads again).
    assert_cut_off(
        &mut slow,
        Instant::now() + Duration::from_secs(30).saturating_sub(started.elapsed()).max(Duration::from_secs(5)),
    );
    assert!(
        !state.as_deref().is_some_and(|state| state.starts_with("01 ")),
        "10 s after the storm the desk still holds the slow consumer's connection open: {state:?}"
    );
}
