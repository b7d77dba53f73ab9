//! Binance spot: the diff depth stream `<symbol>@depth@100ms` plus the REST snapshot `GET /api/v3/depth`, kept in
//! sync as Binance documents in "How to manage a local order book correctly":
//!
//! 1. subscribe (`SUBSCRIBE` on `/ws`) and buffer the stream's events;
//! 2. on the first buffered event, fetch the snapshot; if its `lastUpdateId` is below the first buffered `U`,
//!    fetch it again (the snapshot predates the stream);
//! 3. drop buffered events with `u` ≤ `lastUpdateId`; the first applied event must have
//!    `U` ≤ `lastUpdateId` + 1 ≤ `u`; afterwards each event's `U` must be the previous `u` + 1 (an event whose `U`
//!    is beyond that is a gap; one entirely at or below the book's update id is ignored);
//! 4. quantities are absolute, zero deletes (deleting an absent level is normal).
//!
//! Any gap, and a book that crosses itself, withdraws the book and rebuilds it from a new snapshot.

use crate::book::{parse_price, parse_quantity, Side};
use crate::config::VenueConfig;
use crate::feed::{check_levels, Effect, Feeds, Protocol, ProtocolError, Reason};
use otcd_core::catalog::Catalog;
use serde::Deserialize;

/// Events buffered per book while its snapshot is on its way.
pub const BUFFERED_EVENTS_MAX: usize = 10_000;

#[derive(Debug, Deserialize)]
struct Message<'a> {
    #[serde(rename = "e", borrow)]
    event: Option<&'a str>,
    #[serde(rename = "s", borrow)]
    symbol: Option<&'a str>,
    #[serde(rename = "U")]
    first_update_id: Option<u64>,
    #[serde(rename = "u")]
    final_update_id: Option<u64>,
    #[serde(rename = "b", borrow, default)]
    bids: Vec<[&'a str; 2]>,
    #[serde(rename = "a", borrow, default)]
    asks: Vec<[&'a str; 2]>,
    /// A request's answer: `{"result": null, "id": 1}`, or `{"error": {...}, "id": 1}`.
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct Snapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    asks: Vec<[&'a str; 2]>,
}

/// A depth event with its levels parsed (fine units).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    first: u64,
    last: u64,
    bids: Vec<(i128, i128)>,
    asks: Vec<(i128, i128)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sync {
    /// Buffering events until the snapshot arrives (`requested`: the snapshot was asked for).
    Buffering { events: Vec<Event>, requested: bool },
    /// In sync: the last applied `u`.
    Synced { last_update_id: u64 },
}

pub struct Binance {
    feeds: Feeds,
    sync: Vec<Sync>,
    rest_url: String,
    snapshot_limit: usize,
}

impl Binance {
    pub fn new(venue: &VenueConfig, catalog: &Catalog) -> Binance {
        let feeds = Feeds::new(venue, catalog, |symbol| symbol.to_ascii_uppercase());
        let sync = vec![Sync::Buffering { events: Vec::new(), requested: false }; feeds.len()];
        Binance {
            feeds,
            sync,
            rest_url: venue.rest_url.clone().unwrap_or_default().trim_end_matches('/').to_owned(),
            snapshot_limit: venue.limits.snapshot_limit,
        }
    }

    fn on_event(&mut self, index: usize, event: Event, out: &mut Vec<Effect>) {
        match &mut self.sync[index] {
            Sync::Buffering { events, requested } => {
                if events.len() >= BUFFERED_EVENTS_MAX {
                    out.push(Effect::Invalidate(index, Reason::BufferFull));
                    self.restart(index, Some(event), out);
                    return;
                }
                events.push(event);
                if !*requested {
                    *requested = true;
                    out.push(Effect::FetchSnapshot(index));
                }
            }
            Sync::Synced { last_update_id } => {
                if event.last <= *last_update_id {
                    return;
                }
                // Binance: "if the event's U is greater than the local book's update ID + 1, something went
                // wrong": normally U is exactly that, and the first event after the snapshot may straddle it.
                if event.first > *last_update_id + 1 {
                    self.feeds.feeds[index].live = false;
                    out.push(Effect::Invalidate(index, Reason::Gap));
                    self.restart(index, Some(event), out);
                    return;
                }
                self.apply_synced(index, &event, out);
            }
        }
    }

    /// Applies an event that follows the book (its continuity checked) and publishes or rebuilds the book.
    fn apply_synced(&mut self, index: usize, event: &Event, out: &mut Vec<Effect>) {
        self.sync[index] = Sync::Synced { last_update_id: event.last };
        self.apply(index, event);
        if self.feeds.settle(index, out) {
            self.restart(index, None, out);
        }
    }

    fn apply(&mut self, index: usize, event: &Event) {
        let book = &mut self.feeds.feeds[index].book;
        for (price, quantity) in &event.bids {
            book.set(Side::Bid, *price, *quantity);
        }
        for (price, quantity) in &event.asks {
            book.set(Side::Ask, *price, *quantity);
        }
    }

    /// Forgets book `index` and rebuilds it from a new snapshot, buffering `event` (the newest seen) first.
    fn restart(&mut self, index: usize, event: Option<Event>, out: &mut Vec<Effect>) {
        let feed = &mut self.feeds.feeds[index];
        feed.live = false;
        feed.book.clear();
        let requested = event.is_some();
        self.sync[index] = Sync::Buffering { events: event.into_iter().collect(), requested };
        if requested {
            out.push(Effect::FetchSnapshot(index));
        }
    }
}

fn parse_levels(levels: &[[&str; 2]]) -> Result<Vec<(i128, i128)>, ProtocolError> {
    levels.iter().map(|[price, quantity]| Ok((parse_price(price)?, parse_quantity(quantity)?))).collect()
}

impl Protocol for Binance {
    fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    fn on_connect(&mut self) -> Vec<String> {
        self.feeds.reset_all();
        self.sync.iter_mut().for_each(|sync| *sync = Sync::Buffering { events: Vec::new(), requested: false });
        let streams: Vec<String> = self
            .feeds
            .feeds
            .iter()
            .map(|feed| format!("{}@depth@100ms", feed.venue_symbol.to_ascii_lowercase()))
            .collect();
        vec![serde_json::json!({"method": "SUBSCRIBE", "params": streams, "id": 1}).to_string()]
    }

    fn on_message(&mut self, text: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let message: Message = serde_json::from_str(text).map_err(ProtocolError::json)?;
        if message.error.is_some() {
            out.push(Effect::Reconnect(Reason::VenueError));
            return Ok(());
        }
        if message.event != Some("depthUpdate") {
            return Ok(()); // a request's answer, or an event we did not ask for
        }
        check_levels(message.bids.len() + message.asks.len())?;
        let (Some(symbol), Some(first), Some(last)) =
            (message.symbol, message.first_update_id, message.final_update_id)
        else {
            return Err(ProtocolError::Malformed("a depthUpdate without s, U or u".to_owned()));
        };
        if first > last {
            return Err(ProtocolError::Malformed(format!("U {first} is after u {last}")));
        }
        let event = Event { first, last, bids: parse_levels(&message.bids)?, asks: parse_levels(&message.asks)? };
        if let Some(index) = self.feeds.index(symbol) {
            self.on_event(index, event, out);
        }
        Ok(())
    }

    fn snapshot_url(&self, index: usize) -> Option<String> {
        let symbol = self.feeds.feeds[index].venue_symbol.to_ascii_uppercase();
        Some(format!("{}/api/v3/depth?symbol={symbol}&limit={}", self.rest_url, self.snapshot_limit))
    }

    fn on_snapshot(&mut self, index: usize, body: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let snapshot: Snapshot = serde_json::from_str(body).map_err(ProtocolError::json)?;
        check_levels(snapshot.bids.len() + snapshot.asks.len())?;
        let (bids, asks) = (parse_levels(&snapshot.bids)?, parse_levels(&snapshot.asks)?);
        let Sync::Buffering { events, .. } = &mut self.sync[index] else {
            return Ok(()); // a late answer to an earlier request: the book is already in sync
        };
        let snapshot_id = snapshot.last_update_id;
        if events.first().is_some_and(|first| snapshot_id < first.first) {
            // The snapshot is older than the stream we buffered: ask again.
            out.push(Effect::FetchSnapshot(index));
            return Ok(());
        }
        let pending: Vec<Event> = std::mem::take(events).into_iter().filter(|event| event.last > snapshot_id).collect();
        if pending.first().is_some_and(|first| first.first > snapshot_id + 1) {
            out.push(Effect::Invalidate(index, Reason::Gap));
            self.restart(index, pending.into_iter().last(), out);
            return Ok(());
        }
        let snapshot_event = Event { first: snapshot_id, last: snapshot_id, bids, asks };
        self.feeds.feeds[index].book.clear();
        self.feeds.feeds[index].live = true;
        self.apply_synced(index, &snapshot_event, out);
        let mut pending = pending.into_iter();
        // The first event straddles the snapshot (U <= lastUpdateId + 1 <= u); the rest follow one another.
        if let Some(first) = pending.next() {
            if self.feeds.feeds[index].live {
                self.apply_synced(index, &first, out);
            }
        }
        for event in pending {
            if !self.feeds.feeds[index].live {
                break;
            }
            self.on_event(index, event, out);
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

    fn binance() -> Binance {
        let catalog = Catalog::builtin();
        let config = VenuesConfig::parse(
            "[[venues]]\nname = \"binance\"\nkind = \"binance\"\n[venues.symbols]\n\"BTC-USDT\" = \"btcusdt\"\n",
            &catalog,
        )
        .unwrap();
        Binance::new(&config.venues[0], &catalog)
    }

    fn event(first: u64, last: u64, bids: &str, asks: &str) -> String {
        format!(r#"{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{first},"u":{last},"b":{bids},"a":{asks}}}"#)
    }

    fn feed(binance: &mut Binance, text: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        binance.on_message(text, &mut out).unwrap();
        out
    }

    fn top(binance: &Binance) -> (Vec<Level>, Vec<Level>) {
        let feed = &binance.feeds.feeds[0];
        let book = feed.book.to_venue_book("b", "BTC-USDT", &feed.units, 10, TimestampMs(0));
        (book.bids, book.asks)
    }

    fn level(price: i128, quantity: i128) -> Level {
        Level { price, quantity }
    }

    #[test]
    fn the_documented_procedure_from_buffer_to_sync() {
        let mut binance = binance();
        let subscribe = binance.on_connect();
        assert_eq!(subscribe, [r#"{"id":1,"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"]}"#]);
        assert_eq!(binance.snapshot_url(0).unwrap(), "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000");
        assert_eq!(feed(&mut binance, r#"{"result":null,"id":1}"#), []);
        // Buffered; the first event asks for the snapshot, once.
        assert_eq!(feed(&mut binance, &event(95, 100, r#"[["100.00","1"]]"#, "[]")), [Effect::FetchSnapshot(0)]);
        assert_eq!(feed(&mut binance, &event(101, 103, r#"[["100.00","2"]]"#, r#"[["101.00","1"]]"#)), []);
        assert_eq!(feed(&mut binance, &event(104, 104, r#"[["99.50","3"]]"#, "[]")), []);
        let mut out = Vec::new();
        let snapshot =
            r#"{"lastUpdateId":102,"bids":[["100.00","5"],["99.00","1"]],"asks":[["101.00","4"],["102.00","1"]]}"#;
        binance.on_snapshot(0, snapshot, &mut out).unwrap();
        // 95..100 dropped (u <= 102); 101..103 applied (U <= 103 <= u); 104 follows.
        assert_eq!(out, [Effect::Publish(0), Effect::Publish(0), Effect::Publish(0)]);
        let (bids, asks) = top(&binance);
        assert_eq!(bids, [level(10_000, 200_000_000), level(9_950, 300_000_000), level(9_900, 100_000_000)]);
        assert_eq!(asks, [level(10_100, 100_000_000), level(10_200, 100_000_000)]);
        // Old events are ignored, the next one applies, zero deletes.
        assert_eq!(feed(&mut binance, &event(90, 104, r#"[["1.00","1"]]"#, "[]")), []);
        assert_eq!(feed(&mut binance, &event(105, 106, r#"[["99.50","0"]]"#, "[]")), [Effect::Publish(0)]);
        assert_eq!(top(&binance).0, [level(10_000, 200_000_000), level(9_900, 100_000_000)]);
    }

    /// In sync after a snapshot at update 5: bid 100.00 × 1, ask 101.00 × 1.
    fn synced_at_5() -> Binance {
        let mut binance = binance();
        binance.on_connect();
        feed(&mut binance, &event(1, 1, "[]", "[]"));
        binance
            .on_snapshot(0, r#"{"lastUpdateId":5,"bids":[["100.00","1"]],"asks":[["101.00","1"]]}"#, &mut Vec::new())
            .unwrap();
        binance
    }

    #[test]
    fn a_gap_withdraws_and_resyncs_from_a_new_snapshot() {
        let mut binance = synced_at_5();
        assert!(binance.feeds.feeds[0].live);
        let out = feed(&mut binance, &event(8, 9, r#"[["100.00","2"]]"#, "[]"));
        assert_eq!(out, [Effect::Invalidate(0, Reason::Gap), Effect::FetchSnapshot(0)]);
        assert!(!binance.feeds.feeds[0].live && binance.feeds.feeds[0].book.is_empty());
        // A snapshot older than the buffered stream is asked for again.
        let mut out = Vec::new();
        binance.on_snapshot(0, r#"{"lastUpdateId":6,"bids":[],"asks":[]}"#, &mut out).unwrap();
        assert_eq!(out, [Effect::FetchSnapshot(0)]);
        let mut out = Vec::new();
        binance
            .on_snapshot(0, r#"{"lastUpdateId":8,"bids":[["100.00","1"]],"asks":[["101.00","1"]]}"#, &mut out)
            .unwrap();
        assert_eq!(out, [Effect::Publish(0), Effect::Publish(0)]);
        assert_eq!(top(&binance).0, [level(10_000, 200_000_000)]);
    }

    #[test]
    fn a_crossed_book_is_withdrawn_and_rebuilt() {
        let mut binance = synced_at_5();
        let out = feed(&mut binance, &event(6, 6, r#"[["101.00","1"]]"#, "[]"));
        assert_eq!(out, [Effect::Invalidate(0, Reason::Crossed)]);
        assert!(!binance.feeds.feeds[0].live);
        assert_eq!(feed(&mut binance, &event(7, 7, "[]", "[]")), [Effect::FetchSnapshot(0)]);
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        let mut binance = binance();
        binance.on_connect();
        let mut out = Vec::new();
        for bad in [
            "",
            "{",
            r#"{"e":"depthUpdate","s":"BTCUSDT"}"#,
            &event(5, 4, "[]", "[]"),
            &event(1, 1, r#"[["1e3","1"]]"#, "[]"),
            &event(1, 1, r#"[["-1","1"]]"#, "[]"),
            &event(1, 1, r#"[["1","-1"]]"#, "[]"),
            &event(1, 1, r#"[[1,1]]"#, "[]"),
        ] {
            assert!(binance.on_message(bad, &mut out).is_err(), "{bad}");
        }
        assert!(binance.on_snapshot(0, r#"{"lastUpdateId":"x"}"#, &mut out).is_err());
        assert_eq!(
            feed(&mut binance, r#"{"error":{"code":2,"msg":"Invalid request"},"id":1}"#),
            [Effect::Reconnect(Reason::VenueError)]
        );
    }
}
