//! The protocol parsers never panic, whatever the venue sends: arbitrary text, and mutations of valid messages.

use otcd_core::catalog::Catalog;
use otcd_venues::config::VenuesConfig;
use otcd_venues::feed::{Effect, Protocol};
use otcd_venues::{binance::Binance, bitstamp::Bitstamp, coinbase::Coinbase, fake, kraken::Kraken};
use proptest::prelude::*;

fn protocols() -> Vec<Box<dyn Protocol>> {
    let catalog = Catalog::builtin();
    let text = r#"
        [[venues]]
        name = "b"
        kind = "binance"
        [venues.symbols]
        "BTC-USDT" = "BTCUSDT"
        [[venues]]
        name = "c"
        kind = "coinbase"
        [venues.symbols]
        "BTC-USD" = "BTC-USD"
        [[venues]]
        name = "k"
        kind = "kraken"
        depth = 10
        [venues.symbols]
        "BTC-USD" = "BTC/USD"
        [[venues]]
        name = "s"
        kind = "bitstamp"
        [venues.symbols]
        "BTC-USD" = "btcusd"
    "#;
    let config = VenuesConfig::parse(text, &catalog).unwrap();
    let mut out: Vec<Box<dyn Protocol>> = vec![
        Box::new(Binance::new(&config.venues[0], &catalog)),
        Box::new(Coinbase::new(&config.venues[1], &catalog)),
        Box::new(Kraken::new(&config.venues[2], &catalog)),
        Box::new(Bitstamp::new(&config.venues[3], &catalog)),
    ];
    out.iter_mut().for_each(|protocol| drop(protocol.on_connect()));
    out
}

fn valid_messages() -> Vec<String> {
    let levels = |levels: &[(&str, &str)]| -> Vec<(String, String)> {
        levels.iter().map(|(p, q)| (p.to_string(), q.to_string())).collect()
    };
    let (bids, asks) = (levels(&[("100.5", "1.25"), ("100.4", "0")]), levels(&[("100.6", "0.00100000")]));
    vec![
        fake::binance_event("BTCUSDT", 5, 9, &bids, &asks),
        fake::binance_snapshot(7, &bids, &asks),
        fake::coinbase_l2(0, "snapshot", "BTC-USD", &bids, &asks),
        fake::coinbase_l2(1, "update", "BTC-USD", &bids, &asks),
        fake::coinbase_heartbeat(2),
        fake::kraken_book("snapshot", "BTC/USD", &bids, &asks, fake::kraken_checksum(&bids, &asks)),
        fake::kraken_book("update", "BTC/USD", &bids, &asks, 1),
        fake::bitstamp_diff("btcusd", 10, &bids, &asks),
        fake::bitstamp_snapshot(11, &bids, &asks),
        r#"{"event":"bts:request_reconnect","channel":"","data":""}"#.to_owned(),
    ]
}

fn feed_all(text: &str) {
    for mut protocol in protocols() {
        let mut effects: Vec<Effect> = Vec::new();
        let _ = protocol.on_message(text, &mut effects);
        let _ = protocol.on_snapshot(0, text, &mut effects);
        let _ = protocol.on_message(text, &mut effects);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        feed_all(&text);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        which in 0usize..10,
        position in any::<prop::sample::Index>(),
        replacement in prop::sample::select(vec!["", "-", "0", "1e9", "99999999999999999999999999999999999999", "\"", "[", "}", ".", "null", "18446744073709551616"]),
        cut in any::<bool>(),
    ) {
        let message = &valid_messages()[which];
        let at = position.index(message.len() + 1);
        let at = (0..=at).rev().find(|index| message.is_char_boundary(*index)).unwrap_or(0);
        let mutated = if cut { message[..at].to_owned() } else { format!("{}{replacement}{}", &message[..at], &message[at..]) };
        feed_all(&mutated);
    }

    #[test]
    fn sequences_of_valid_messages_never_panic(order in prop::collection::vec(0usize..10, 0..40)) {
        let messages = valid_messages();
        for mut protocol in protocols() {
            let mut effects = Vec::new();
            for index in &order {
                let _ = protocol.on_message(&messages[*index], &mut effects);
                if index % 3 == 0 {
                    let _ = protocol.on_snapshot(0, &messages[*index], &mut effects);
                }
            }
        }
    }
}
