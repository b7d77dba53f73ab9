//! Coinbase Advanced Trade: the `level2` channel (messages on `l2_data`: a `snapshot` event, then `update`
//! events with the absolute `new_quantity` at a `price_level`, `side` `bid` or `offer`), with `heartbeats`
//! subscribed so a quiet book is still confirmed current once a second.
//!
//! Every message of a connection carries `sequence_num`, one more than the previous message's, across channels.
//! A skipped number means a lost message: every book is withdrawn and the `level2` subscription is renewed
//! (unsubscribe, subscribe), which sends fresh snapshots. A book that crosses itself is resubscribed alone.

use crate::book::{parse_price, parse_quantity, Side};
use crate::config::VenueConfig;
use crate::feed::{check_levels, Effect, Feeds, Protocol, ProtocolError, Reason};
use otcd_core::catalog::Catalog;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    sequence_num: Option<u64>,
    #[serde(default, borrow)]
    events: Vec<Event<'a>>,
}

#[derive(Debug, Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(default, borrow)]
    updates: Vec<Update<'a>>,
}

#[derive(Debug, Deserialize)]
struct Update<'a> {
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    price_level: &'a str,
    #[serde(borrow)]
    new_quantity: &'a str,
}

pub struct Coinbase {
    feeds: Feeds,
    /// The `sequence_num` the next message must carry (`None`: accept any, after a connect or a resubscribe).
    expected_sequence: Option<u64>,
    /// Books waiting for their snapshot (their updates are ignored until it comes).
    awaiting_snapshot: Vec<bool>,
}

impl Coinbase {
    pub fn new(venue: &VenueConfig, catalog: &Catalog) -> Coinbase {
        let feeds = Feeds::new(venue, catalog, str::to_owned);
        let awaiting_snapshot = vec![true; feeds.len()];
        Coinbase { feeds, expected_sequence: None, awaiting_snapshot }
    }

    fn request(&self, kind: &str, channel: &str, indexes: impl Iterator<Item = usize>) -> String {
        let products: Vec<&str> = indexes.map(|index| self.feeds.feeds[index].venue_symbol.as_str()).collect();
        serde_json::json!({"type": kind, "product_ids": products, "channel": channel}).to_string()
    }

    /// Withdraws book `index` and asks for a new snapshot of it.
    fn resubscribe(&mut self, indexes: &[usize], reason: Reason, out: &mut Vec<Effect>) {
        for &index in indexes {
            let feed = &mut self.feeds.feeds[index];
            if reason != Reason::Crossed {
                out.push(Effect::Invalidate(index, reason));
            }
            feed.live = false;
            feed.book.clear();
            self.awaiting_snapshot[index] = true;
        }
        out.push(Effect::Send(self.request("unsubscribe", "level2", indexes.iter().copied())));
        out.push(Effect::Send(self.request("subscribe", "level2", indexes.iter().copied())));
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let Some(index) = event.product_id.and_then(|product| self.feeds.index(product)) else { return Ok(()) };
        let snapshot = match event.kind {
            Some("snapshot") => true,
            Some("update") => false,
            _ => return Err(ProtocolError::Malformed("an l2_data event that is neither snapshot nor update".into())),
        };
        if !snapshot && self.awaiting_snapshot[index] {
            return Ok(());
        }
        let mut levels = Vec::with_capacity(event.updates.len());
        for update in &event.updates {
            let side = match update.side {
                "bid" => Side::Bid,
                "offer" | "ask" => Side::Ask,
                other => return Err(ProtocolError::Malformed(format!("side {:?}", other.get(..16).unwrap_or(other)))),
            };
            levels.push((side, parse_price(update.price_level)?, parse_quantity(update.new_quantity)?));
        }
        let feed = &mut self.feeds.feeds[index];
        if snapshot {
            feed.book.clear();
            self.awaiting_snapshot[index] = false;
            feed.live = true;
        }
        for (side, price, quantity) in levels {
            feed.book.set(side, price, quantity);
        }
        if self.feeds.settle(index, out) {
            self.resubscribe(&[index], Reason::Crossed, out);
        }
        Ok(())
    }
}

impl Protocol for Coinbase {
    fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    fn on_connect(&mut self) -> Vec<String> {
        self.feeds.reset_all();
        self.expected_sequence = None;
        self.awaiting_snapshot.iter_mut().for_each(|awaiting| *awaiting = true);
        let all = 0..self.feeds.len();
        vec![self.request("subscribe", "level2", all.clone()), self.request("subscribe", "heartbeats", all)]
    }

    fn on_message(&mut self, text: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let message: Message = serde_json::from_str(text).map_err(ProtocolError::json)?;
        if message.kind == Some("error") {
            out.push(Effect::Reconnect(Reason::VenueError));
            return Ok(());
        }
        check_levels(message.events.iter().map(|event| event.updates.len()).sum())?;
        if let Some(sequence) = message.sequence_num {
            if self.expected_sequence.is_some_and(|expected| expected != sequence) {
                let all: Vec<usize> = (0..self.feeds.len()).collect();
                self.resubscribe(&all, Reason::Gap, out);
            }
            self.expected_sequence = sequence.checked_add(1);
        }
        match message.channel {
            Some("l2_data") => {
                for event in &message.events {
                    self.on_event(event, out)?;
                }
            }
            Some("heartbeats") => self.feeds.confirm_live(out),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VenuesConfig;
    use otcd_core::market::Level;
    use otcd_core::time::TimestampMs;

    fn coinbase() -> Coinbase {
        let catalog = Catalog::builtin();
        let text = "[[venues]]\nname = \"cb\"\nkind = \"coinbase\"\n[venues.symbols]\n\"BTC-USD\" = \"BTC-USD\"\n\"ETH-USD\" = \"ETH-USD\"\n";
        let config = VenuesConfig::parse(text, &catalog).unwrap();
        Coinbase::new(&config.venues[0], &catalog)
    }

    fn l2(sequence: u64, kind: &str, product: &str, updates: &[(&str, &str, &str)]) -> String {
        let updates: Vec<_> = updates
            .iter()
            .map(|(side, price, quantity)| {
                serde_json::json!({"side": side, "event_time": "2023-02-09T20:32:50.714964855Z",
                    "price_level": price, "new_quantity": quantity})
            })
            .collect();
        serde_json::json!({"channel": "l2_data", "client_id": "", "timestamp": "2023-02-09T20:32:50.714964855Z",
            "sequence_num": sequence, "events": [{"type": kind, "product_id": product, "updates": updates}]})
        .to_string()
    }

    fn feed(coinbase: &mut Coinbase, text: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        coinbase.on_message(text, &mut out).unwrap();
        out
    }

    fn bids(coinbase: &Coinbase, index: usize) -> Vec<Level> {
        let feed = &coinbase.feeds.feeds[index];
        feed.book.to_venue_book("cb", &feed.instrument, &feed.units, 10, TimestampMs(0)).bids
    }

    #[test]
    fn snapshot_updates_heartbeats_and_a_sequence_gap() {
        let mut coinbase = coinbase();
        let subscribe = coinbase.on_connect();
        assert_eq!(subscribe[0], r#"{"channel":"level2","product_ids":["BTC-USD","ETH-USD"],"type":"subscribe"}"#);
        assert_eq!(subscribe[1], r#"{"channel":"heartbeats","product_ids":["BTC-USD","ETH-USD"],"type":"subscribe"}"#);
        assert_eq!(feed(&mut coinbase, r#"{"channel":"subscriptions","sequence_num":0,"events":[]}"#), []);
        // An update before the snapshot is ignored.
        assert_eq!(feed(&mut coinbase, &l2(1, "update", "BTC-USD", &[("bid", "1", "1")])), []);
        let snapshot = l2(2, "snapshot", "BTC-USD", &[("bid", "21921.73", "0.06317902"), ("offer", "21921.74", "1.5")]);
        assert_eq!(feed(&mut coinbase, &snapshot), [Effect::Publish(0)]);
        let update = l2(3, "update", "BTC-USD", &[("bid", "21921.72", "2"), ("bid", "21921.73", "0")]);
        assert_eq!(feed(&mut coinbase, &update), [Effect::Publish(0)]);
        assert_eq!(bids(&coinbase, 0), [Level { price: 2_192_172, quantity: 200_000_000 }]);
        let heartbeat = r#"{"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z","sequence_num":4,"events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105","heartbeat_counter":"3049"}]}"#;
        assert_eq!(feed(&mut coinbase, heartbeat), [Effect::Publish(0)], "only live books are confirmed");
        // 5 is lost.
        let out = feed(&mut coinbase, &l2(6, "update", "BTC-USD", &[("bid", "21921.71", "1")]));
        assert_eq!(
            out,
            [
                Effect::Invalidate(0, Reason::Gap),
                Effect::Invalidate(1, Reason::Gap),
                Effect::Send(r#"{"channel":"level2","product_ids":["BTC-USD","ETH-USD"],"type":"unsubscribe"}"#.into()),
                Effect::Send(r#"{"channel":"level2","product_ids":["BTC-USD","ETH-USD"],"type":"subscribe"}"#.into()),
            ]
        );
        assert!(coinbase.feeds.feeds[0].book.is_empty());
        assert_eq!(feed(&mut coinbase, &l2(7, "snapshot", "BTC-USD", &[("bid", "100", "1")])), [Effect::Publish(0)]);
        assert_eq!(bids(&coinbase, 0), [Level { price: 10_000, quantity: 100_000_000 }]);
    }

    #[test]
    fn a_crossed_book_is_resubscribed_alone_and_errors_reconnect() {
        let mut coinbase = coinbase();
        coinbase.on_connect();
        feed(&mut coinbase, &l2(0, "snapshot", "ETH-USD", &[("bid", "100", "1"), ("offer", "101", "1")]));
        let out = feed(&mut coinbase, &l2(1, "update", "ETH-USD", &[("bid", "102", "1")]));
        assert_eq!(out[0], Effect::Invalidate(1, Reason::Crossed));
        assert_eq!(
            out[1],
            Effect::Send(r#"{"channel":"level2","product_ids":["ETH-USD"],"type":"unsubscribe"}"#.into())
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            feed(&mut coinbase, r#"{"type":"error","message":"failure"}"#),
            [Effect::Reconnect(Reason::VenueError)]
        );
        let mut out = Vec::new();
        assert!(coinbase.on_message(&l2(2, "snapshot", "ETH-USD", &[("middle", "1", "1")]), &mut out).is_err());
        assert!(coinbase.on_message(&l2(3, "snapshot", "ETH-USD", &[("bid", "1.5e2", "1")]), &mut out).is_err());
    }
}
