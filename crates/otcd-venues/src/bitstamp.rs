//! Bitstamp: the `diff_order_book_{pair}` channel plus the REST snapshot `GET /api/v2/order_book/{pair}/`.
//!
//! Bitstamp's diffs carry no sequence numbers, only a `microtimestamp`, and absolute amounts (zero deletes). So:
//!
//! 1. subscribe (`bts:subscribe`) and buffer the diffs;
//! 2. on the first buffered diff, fetch the snapshot; a snapshot older than the first buffered diff may miss
//!    what happened in between, so it is fetched again;
//! 3. diffs not newer than the snapshot's `microtimestamp` are dropped, the rest applied in order;
//! 4. afterwards a diff not newer than the last applied one is stale: dropped and counted, never applied.
//!
//! `bts:request_reconnect` (Bitstamp going into maintenance) reconnects at once; `bts:heartbeat` is sent as the
//! application ping and its answer confirms live books. A book that crosses itself is rebuilt from a new snapshot.

use crate::book::{parse_price, parse_quantity, Side};
use crate::config::VenueConfig;
use crate::feed::{check_levels, Effect, Feeds, Protocol, ProtocolError, Reason};
use otcd_core::catalog::Catalog;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Diffs buffered per book while its snapshot is on its way.
pub const BUFFERED_DIFFS_MAX: usize = 10_000;
const CHANNEL_PREFIX: &str = "diff_order_book_";

#[derive(Debug, Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    event: &'a str,
    #[serde(borrow, default)]
    channel: &'a str,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct BookText<'a> {
    #[serde(borrow)]
    microtimestamp: &'a str,
    #[serde(borrow)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    asks: Vec<[&'a str; 2]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Diff {
    microtimestamp: u64,
    bids: Vec<(i128, i128)>,
    asks: Vec<(i128, i128)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sync {
    Buffering { diffs: Vec<Diff>, requested: bool },
    Synced { microtimestamp: u64 },
}

pub struct Bitstamp {
    feeds: Feeds,
    sync: Vec<Sync>,
    rest_url: String,
}

fn parse_book(text: &str) -> Result<Diff, ProtocolError> {
    let book: BookText = serde_json::from_str(text).map_err(ProtocolError::json)?;
    check_levels(book.bids.len() + book.asks.len())?;
    let microtimestamp = book
        .microtimestamp
        .parse::<u64>()
        .map_err(|_| ProtocolError::Malformed("microtimestamp is not a whole number".to_owned()))?;
    let levels = |levels: &[[&str; 2]]| -> Result<Vec<(i128, i128)>, ProtocolError> {
        levels.iter().map(|[price, amount]| Ok((parse_price(price)?, parse_quantity(amount)?))).collect()
    };
    Ok(Diff { microtimestamp, bids: levels(&book.bids)?, asks: levels(&book.asks)? })
}

impl Bitstamp {
    pub fn new(venue: &VenueConfig, catalog: &Catalog) -> Bitstamp {
        let feeds = Feeds::new(venue, catalog, |symbol| symbol.to_ascii_lowercase());
        let sync = vec![Sync::Buffering { diffs: Vec::new(), requested: false }; feeds.len()];
        Bitstamp { feeds, sync, rest_url: venue.rest_url.clone().unwrap_or_default().trim_end_matches('/').to_owned() }
    }

    fn pair(&self, index: usize) -> String {
        self.feeds.feeds[index].venue_symbol.to_ascii_lowercase()
    }

    fn apply(&mut self, index: usize, diff: &Diff, out: &mut Vec<Effect>) {
        let book = &mut self.feeds.feeds[index].book;
        for (price, amount) in &diff.bids {
            book.set(Side::Bid, *price, *amount);
        }
        for (price, amount) in &diff.asks {
            book.set(Side::Ask, *price, *amount);
        }
        self.sync[index] = Sync::Synced { microtimestamp: diff.microtimestamp };
        if self.feeds.settle(index, out) {
            self.sync[index] = Sync::Buffering { diffs: Vec::new(), requested: false };
        }
    }

    fn on_diff(&mut self, index: usize, diff: Diff, out: &mut Vec<Effect>) {
        match &mut self.sync[index] {
            Sync::Buffering { diffs, requested } => {
                if diffs.len() >= BUFFERED_DIFFS_MAX {
                    out.push(Effect::Invalidate(index, Reason::BufferFull));
                    diffs.clear();
                }
                diffs.push(diff);
                if !*requested {
                    *requested = true;
                    out.push(Effect::FetchSnapshot(index));
                }
            }
            Sync::Synced { microtimestamp } if diff.microtimestamp <= *microtimestamp => out.push(Effect::Stale(index)),
            Sync::Synced { .. } => self.apply(index, &diff, out),
        }
    }
}

impl Protocol for Bitstamp {
    fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    fn on_connect(&mut self) -> Vec<String> {
        self.feeds.reset_all();
        self.sync.iter_mut().for_each(|sync| *sync = Sync::Buffering { diffs: Vec::new(), requested: false });
        (0..self.feeds.len())
            .map(|index| {
                let channel = format!("{CHANNEL_PREFIX}{}", self.pair(index));
                serde_json::json!({"event": "bts:subscribe", "data": {"channel": channel}}).to_string()
            })
            .collect()
    }

    fn on_message(&mut self, text: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let message: Message = serde_json::from_str(text).map_err(ProtocolError::json)?;
        match message.event {
            "data" => {
                let Some(index) = message.channel.strip_prefix(CHANNEL_PREFIX).and_then(|pair| self.feeds.index(pair))
                else {
                    return Ok(());
                };
                let data = message.data.ok_or_else(|| ProtocolError::Malformed("a diff without data".to_owned()))?;
                let diff = parse_book(data.get())?;
                self.on_diff(index, diff, out);
            }
            "bts:request_reconnect" => out.push(Effect::Reconnect(Reason::VenueRequest)),
            "bts:error" => out.push(Effect::Reconnect(Reason::VenueError)),
            "bts:heartbeat" => self.feeds.confirm_live(out),
            _ => {} // bts:subscription_succeeded, ...
        }
        Ok(())
    }

    fn snapshot_url(&self, index: usize) -> Option<String> {
        Some(format!("{}/api/v2/order_book/{}/", self.rest_url, self.pair(index)))
    }

    fn on_snapshot(&mut self, index: usize, body: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let snapshot = parse_book(body)?;
        let Sync::Buffering { diffs, .. } = &mut self.sync[index] else { return Ok(()) };
        if diffs.first().is_some_and(|first| snapshot.microtimestamp < first.microtimestamp) {
            out.push(Effect::FetchSnapshot(index));
            return Ok(());
        }
        let pending = std::mem::take(diffs);
        let feed = &mut self.feeds.feeds[index];
        feed.book.clear();
        feed.live = true;
        self.apply(index, &snapshot, out);
        for diff in pending {
            if !self.feeds.feeds[index].live {
                break;
            }
            // Diffs not newer than the snapshot (or than the previous diff) are dropped as stale.
            self.on_diff(index, diff, out);
        }
        Ok(())
    }

    fn keepalive(&self) -> Option<String> {
        Some(r#"{"event":"bts:heartbeat"}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VenuesConfig;
    use otcd_core::market::Level;
    use otcd_core::time::TimestampMs;

    fn bitstamp() -> Bitstamp {
        let catalog = Catalog::builtin();
        let text = "[[venues]]\nname = \"bitstamp\"\nkind = \"bitstamp\"\n[venues.symbols]\n\"BTC-USD\" = \"btcusd\"\n";
        let config = VenuesConfig::parse(text, &catalog).unwrap();
        Bitstamp::new(&config.venues[0], &catalog)
    }

    fn diff(microtimestamp: u64, bids: &str, asks: &str) -> String {
        format!(
            r#"{{"data":{{"timestamp":"{}","microtimestamp":"{microtimestamp}","bids":{bids},"asks":{asks}}},"channel":"diff_order_book_btcusd","event":"data"}}"#,
            microtimestamp / 1_000_000
        )
    }

    fn feed(bitstamp: &mut Bitstamp, text: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        bitstamp.on_message(text, &mut out).unwrap();
        out
    }

    #[test]
    fn snapshot_then_diffs_in_microtimestamp_order_stale_ones_dropped() {
        let mut bitstamp = bitstamp();
        assert_eq!(bitstamp.on_connect(), [r#"{"data":{"channel":"diff_order_book_btcusd"},"event":"bts:subscribe"}"#]);
        assert_eq!(bitstamp.snapshot_url(0).unwrap(), "https://www.bitstamp.net/api/v2/order_book/btcusd/");
        assert_eq!(
            feed(
                &mut bitstamp,
                r#"{"event":"bts:subscription_succeeded","channel":"diff_order_book_btcusd","data":{}}"#
            ),
            []
        );
        assert_eq!(feed(&mut bitstamp, &diff(1_000, r#"[["100.00","9"]]"#, "[]")), [Effect::FetchSnapshot(0)]);
        assert_eq!(feed(&mut bitstamp, &diff(3_000, r#"[["100.00","2"]]"#, "[]")), []);
        let mut out = Vec::new();
        let snapshot = r#"{"timestamp":"0","microtimestamp":"2000","bids":[["100.00","1"],["99.00","1"]],"asks":[["101.00","1"]]}"#;
        bitstamp.on_snapshot(0, snapshot, &mut out).unwrap();
        assert_eq!(out, [Effect::Publish(0), Effect::Stale(0), Effect::Publish(0)]);
        assert_eq!(feed(&mut bitstamp, &diff(2_500, r#"[["100.00","7"]]"#, "[]")), [Effect::Stale(0)]);
        assert_eq!(feed(&mut bitstamp, &diff(4_000, r#"[["99.00","0"]]"#, "[]")), [Effect::Publish(0)]);
        let state = &bitstamp.feeds.feeds[0];
        let book = state.book.to_venue_book("b", "BTC-USD", &state.units, 10, TimestampMs(0));
        assert_eq!(book.bids, [Level { price: 10_000, quantity: 200_000_000 }]);
        assert_eq!(book.asks, [Level { price: 10_100, quantity: 100_000_000 }]);
        assert_eq!(
            feed(&mut bitstamp, r#"{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}"#),
            [Effect::Publish(0)]
        );
        assert_eq!(
            feed(&mut bitstamp, r#"{"event":"bts:request_reconnect","channel":"","data":""}"#),
            [Effect::Reconnect(Reason::VenueRequest)]
        );
    }

    #[test]
    fn an_old_snapshot_is_fetched_again_and_a_crossed_book_rebuilt() {
        let mut bitstamp = bitstamp();
        bitstamp.on_connect();
        feed(&mut bitstamp, &diff(5_000, "[]", "[]"));
        let mut out = Vec::new();
        bitstamp.on_snapshot(0, r#"{"microtimestamp":"4000","bids":[],"asks":[]}"#, &mut out).unwrap();
        assert_eq!(out, [Effect::FetchSnapshot(0)]);
        let mut out = Vec::new();
        bitstamp
            .on_snapshot(0, r#"{"microtimestamp":"6000","bids":[["100","1"]],"asks":[["101","1"]]}"#, &mut out)
            .unwrap();
        assert_eq!(out, [Effect::Publish(0), Effect::Stale(0)]);
        assert_eq!(
            feed(&mut bitstamp, &diff(7_000, "[]", r#"[["99","1"]]"#)),
            [Effect::Invalidate(0, Reason::Crossed)]
        );
        assert_eq!(feed(&mut bitstamp, &diff(8_000, "[]", "[]")), [Effect::FetchSnapshot(0)]);
        for bad in [
            diff(1, r#"[["x","1"]]"#, "[]"),
            r#"{"event":"data","channel":"diff_order_book_btcusd"}"#.to_owned(),
            "[]".to_owned(),
        ] {
            assert!(bitstamp.on_message(&bad, &mut Vec::new()).is_err(), "{bad}");
        }
        assert!(bitstamp.on_message(&diff(1, "[]", "[]").replace("\"1\"", "\"-1\""), &mut Vec::new()).is_err());
    }
}
