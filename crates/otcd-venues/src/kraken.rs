//! Kraken WebSocket v2: the `book` channel (a `snapshot`, then `update`s; `qty` 0 deletes), with the CRC32
//! `checksum` Kraken sends with every message verified after each one:
//!
//! - apply every level of the message, then truncate the book to the subscribed depth (Kraken sends no delete for
//!   a level pushed out of the depth);
//! - the checksum covers the top 10 asks, lowest first, then the top 10 bids, highest first, each level as its
//!   price then its quantity written in full precision with the `.` and the leading zeros removed
//!   (`"0.00100000"` → `"100000"`), all concatenated; CRC32 (IEEE), unsigned.
//!
//! Prices and quantities come as JSON numbers in full precision; they are read as their text (never as `f64`).
//! The checksum is over the wire text (`"0.00100000"`, trailing zeros and all), so the connector remembers, for
//! each level it holds, how many decimals its price and quantity had on the wire, and writes the values back
//! exactly so.
//! A mismatch withdraws the book and resubscribes its symbol (unsubscribe, subscribe), which sends a new
//! snapshot. `heartbeat` messages confirm live books current.

use crate::book::{parse_price, parse_quantity, LocalBook, Side, FINE_SCALE};
use crate::config::VenueConfig;
use crate::feed::{check_levels, Effect, Feeds, Protocol, ProtocolError, Reason};
use otcd_core::catalog::Catalog;
use otcd_core::decimal::power_of_ten;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Levels per side the checksum covers.
pub const CHECKSUM_LEVELS: usize = 10;

#[derive(Debug, Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(borrow)]
    method: Option<&'a str>,
    success: Option<bool>,
    /// Parsed as book data only on the `book` channel (`status` carries other objects).
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct BookData<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(default, borrow)]
    bids: Vec<RawLevel<'a>>,
    #[serde(default, borrow)]
    asks: Vec<RawLevel<'a>>,
    checksum: u32,
}

#[derive(Debug, Deserialize)]
struct RawLevel<'a> {
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    qty: &'a RawValue,
}

/// The text of a JSON number (or of a JSON string holding one).
fn number_text(value: &RawValue) -> &str {
    let text = value.get();
    text.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')).unwrap_or(text)
}

fn decimals(text: &str) -> u8 {
    text.split_once('.').map_or(0, |(_, fraction)| u8::try_from(fraction.len()).unwrap_or(u8::MAX))
}

/// Decimals of one level's price and quantity as Kraken wrote them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Precision {
    price: u8,
    quantity: u8,
}

/// The wire precision of each level of one book, keyed by (is a bid, fine price). Levels the book dropped (deleted
/// or truncated) are swept out when the map grows past twice the book's size.
type WirePrecision = HashMap<(bool, i128), Precision>;

pub struct Kraken {
    feeds: Feeds,
    depth: usize,
    awaiting_snapshot: Vec<bool>,
    wire: Vec<WirePrecision>,
}

impl Kraken {
    pub fn new(venue: &VenueConfig, catalog: &Catalog) -> Kraken {
        let feeds = Feeds::new(venue, catalog, str::to_owned);
        let count = feeds.len();
        Kraken {
            feeds,
            depth: venue.depth,
            awaiting_snapshot: vec![true; count],
            wire: vec![WirePrecision::new(); count],
        }
    }

    fn request(&self, method: &str, indexes: &[usize]) -> String {
        let symbols: Vec<&str> = indexes.iter().map(|index| self.feeds.feeds[*index].venue_symbol.as_str()).collect();
        let mut params = serde_json::json!({"channel": "book", "symbol": symbols, "depth": self.depth});
        if method == "subscribe" {
            params["snapshot"] = serde_json::Value::Bool(true);
        }
        serde_json::json!({"method": method, "params": params}).to_string()
    }

    fn resubscribe(&mut self, index: usize, out: &mut Vec<Effect>) {
        let feed = &mut self.feeds.feeds[index];
        feed.live = false;
        feed.book.clear();
        self.wire[index].clear();
        self.awaiting_snapshot[index] = true;
        out.push(Effect::Send(self.request("unsubscribe", &[index])));
        out.push(Effect::Send(self.request("subscribe", &[index])));
    }

    fn on_book(&mut self, snapshot: bool, data: &BookData, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let Some(index) = self.feeds.index(data.symbol) else { return Ok(()) };
        if !snapshot && self.awaiting_snapshot[index] {
            return Ok(());
        }
        let mut levels = Vec::with_capacity(data.bids.len() + data.asks.len());
        for (side, raw) in
            data.bids.iter().map(|level| (Side::Bid, level)).chain(data.asks.iter().map(|level| (Side::Ask, level)))
        {
            let (price, quantity) = (number_text(raw.price), number_text(raw.qty));
            let precision = Precision { price: decimals(price), quantity: decimals(quantity) };
            if precision.price > FINE_SCALE || precision.quantity > FINE_SCALE {
                return Err(ProtocolError::Malformed("more than 18 decimals".to_owned()));
            }
            levels.push((side, parse_price(price)?, parse_quantity(quantity)?, precision));
        }
        let wire = &mut self.wire[index];
        let feed = &mut self.feeds.feeds[index];
        if snapshot {
            feed.book.clear();
            wire.clear();
            self.awaiting_snapshot[index] = false;
        }
        for (side, price, quantity, precision) in levels {
            feed.book.set(side, price, quantity);
            let key = (side == Side::Bid, price);
            if quantity == 0 {
                wire.remove(&key);
            } else {
                wire.insert(key, precision);
            }
        }
        feed.book.truncate(self.depth);
        if wire.len() > 2 * (feed.book.len(Side::Bid) + feed.book.len(Side::Ask)) + 64 {
            let book = &feed.book;
            wire.retain(|(bid, price), _| book.contains(if *bid { Side::Bid } else { Side::Ask }, *price));
        }
        if checksum(&feed.book, wire) != data.checksum {
            out.push(Effect::Invalidate(index, Reason::Checksum));
            self.resubscribe(index, out);
            return Ok(());
        }
        feed.live = true;
        if self.feeds.settle(index, out) {
            self.resubscribe(index, out);
        }
        Ok(())
    }
}

/// Kraken's CRC32 of the top of `book` (see the module documentation), with each value written at the wire
/// precision it arrived in (a level without a known precision cannot match: the caller resubscribes).
fn checksum(book: &LocalBook, wire: &WirePrecision) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for side in [Side::Ask, Side::Bid] {
        for (price, quantity) in book.top(side).take(CHECKSUM_LEVELS) {
            let precision = wire.get(&(side == Side::Bid, price)).copied().unwrap_or_default();
            write_digits(&mut hasher, price / power_of_ten(FINE_SCALE - precision.price));
            write_digits(&mut hasher, quantity / power_of_ten(FINE_SCALE - precision.quantity));
        }
    }
    hasher.finalize()
}

/// The decimal digits of `value` without leading zeros (the wire text with its `.` and leading zeros removed).
fn write_digits(hasher: &mut crc32fast::Hasher, value: i128) {
    let mut buffer = [0u8; 40];
    let mut position = buffer.len();
    let mut rest = value.unsigned_abs();
    while rest > 0 {
        position -= 1;
        buffer[position] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    hasher.update(&buffer[position..]);
}

impl Protocol for Kraken {
    fn feeds(&self) -> &Feeds {
        &self.feeds
    }

    fn on_connect(&mut self) -> Vec<String> {
        self.feeds.reset_all();
        self.wire.iter_mut().for_each(HashMap::clear);
        self.awaiting_snapshot.iter_mut().for_each(|awaiting| *awaiting = true);
        let all: Vec<usize> = (0..self.feeds.len()).collect();
        vec![self.request("subscribe", &all)]
    }

    fn on_message(&mut self, text: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        let message: Message = serde_json::from_str(text).map_err(ProtocolError::json)?;
        if message.method.is_some() {
            if message.success == Some(false) {
                out.push(Effect::Reconnect(Reason::VenueError));
            }
            return Ok(()); // subscribe / unsubscribe acknowledgements, pong
        }
        match (message.channel, message.kind) {
            (Some("book"), Some(kind @ ("snapshot" | "update"))) => {
                let raw = message.data.ok_or_else(|| ProtocolError::Malformed("a book message without data".into()))?;
                let data: Vec<BookData> = serde_json::from_str(raw.get()).map_err(ProtocolError::json)?;
                check_levels(data.iter().map(|data| data.bids.len() + data.asks.len()).sum())?;
                for data in &data {
                    self.on_book(kind == "snapshot", data, out)?;
                }
            }
            (Some("book"), _) => return Err(ProtocolError::Malformed("a book message of no known type".into())),
            (Some("heartbeat"), _) => self.feeds.confirm_live(out),
            _ => {}
        }
        Ok(())
    }

    fn keepalive(&self) -> Option<String> {
        Some(r#"{"method":"ping"}"#.to_owned())
    }
}

/// Kraken's checksum of a book given as text levels (the fake venue and tests compute what Kraken would send).
pub fn checksum_of_text(asks: &[(&str, &str)], bids: &[(&str, &str)]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for (price, quantity) in asks.iter().take(CHECKSUM_LEVELS).chain(bids.iter().take(CHECKSUM_LEVELS)) {
        for text in [price, quantity] {
            let digits: String = text.chars().filter(|character| *character != '.').collect();
            hasher.update(digits.trim_start_matches('0').as_bytes());
        }
    }
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VenuesConfig;
    use otcd_core::market::Level;
    use otcd_core::time::TimestampMs;

    fn kraken(depth: usize) -> Kraken {
        let catalog = Catalog::builtin();
        let text = format!(
            "[[venues]]\nname = \"kraken\"\nkind = \"kraken\"\ndepth = {depth}\n[venues.symbols]\n\"BTC-USD\" = \"BTC/USD\"\n"
        );
        let config = VenuesConfig::parse(&text, &catalog).unwrap();
        Kraken::new(&config.venues[0], &catalog)
    }

    fn book_message(kind: &str, bids: &[(&str, &str)], asks: &[(&str, &str)], checksum: u32) -> String {
        let levels = |levels: &[(&str, &str)]| {
            levels
                .iter()
                .map(|(price, qty)| format!(r#"{{"price":{price},"qty":{qty}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD","bids":[{}],"asks":[{}],"checksum":{checksum},"timestamp":"2023-10-06T17:35:55.440295Z"}}]}}"#,
            levels(bids),
            levels(asks)
        )
    }

    fn feed(kraken: &mut Kraken, text: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        kraken.on_message(text, &mut out).unwrap();
        out
    }

    #[test]
    fn the_checksum_follows_the_documented_formatting() {
        // Kraken's guide: "45285.2" -> "452852", "0.00100000" -> "100000".
        let expected = crc32fast::hash(b"45285210000045283510000000");
        assert_eq!(checksum_of_text(&[("45285.2", "0.00100000")], &[("45283.5", "0.10000000")]), expected);
        let mut book = LocalBook::new(10);
        book.set(Side::Ask, parse_price("45285.2").unwrap(), parse_quantity("0.00100000").unwrap());
        book.set(Side::Bid, parse_price("45283.5").unwrap(), parse_quantity("0.10000000").unwrap());
        let mut wire = WirePrecision::new();
        wire.insert((false, parse_price("45285.2").unwrap()), Precision { price: 1, quantity: 8 });
        wire.insert((true, parse_price("45283.5").unwrap()), Precision { price: 1, quantity: 8 });
        assert_eq!(checksum(&book, &wire), expected);
        // Trimmed wire text ("0.1") is checksummed as written, level by level.
        wire.insert((true, parse_price("45283.5").unwrap()), Precision { price: 1, quantity: 1 });
        assert_eq!(checksum(&book, &wire), checksum_of_text(&[("45285.2", "0.00100000")], &[("45283.5", "0.1")]));
    }

    #[test]
    fn snapshot_update_truncation_and_checksum_mismatch() {
        let mut kraken = kraken(10);
        assert_eq!(
            kraken.on_connect(),
            [r#"{"method":"subscribe","params":{"channel":"book","depth":10,"snapshot":true,"symbol":["BTC/USD"]}}"#]
        );
        assert_eq!(
            feed(
                &mut kraken,
                r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2023-10-06T17:35:55.440295Z","time_out":"2023-10-06T17:35:55.440512Z"}"#
            ),
            []
        );
        let status = r#"{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online","api_version":"v2","connection_id":1}]}"#;
        assert_eq!(feed(&mut kraken, status), []);
        let bids: Vec<(String, String)> =
            (0..10).map(|i| (format!("{}.5", 45283 - i), "0.10000000".to_owned())).collect();
        let asks: Vec<(String, String)> =
            (0..10).map(|i| (format!("{}.2", 45285 + i), "0.00100000".to_owned())).collect();
        fn as_refs(levels: &[(String, String)]) -> Vec<(&str, &str)> {
            levels.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect()
        }
        let sum = checksum_of_text(&as_refs(&asks), &as_refs(&bids));
        let snapshot = book_message("snapshot", &as_refs(&bids), &as_refs(&asks), sum);
        assert_eq!(feed(&mut kraken, &snapshot), [Effect::Publish(0)]);
        // A better bid pushes the 10th bid out of the depth: truncated, and the checksum says so.
        let mut bids_after = vec![("45284.0".to_owned(), "1.00000000".to_owned())];
        bids_after.extend(bids[..9].iter().cloned());
        let sum = checksum_of_text(&as_refs(&asks), &as_refs(&bids_after));
        assert_eq!(
            feed(&mut kraken, &book_message("update", &[("45284.0", "1.00000000")], &[], sum)),
            [Effect::Publish(0)]
        );
        let feed_state = &kraken.feeds.feeds[0];
        let book = feed_state.book.to_venue_book("k", "BTC-USD", &feed_state.units, 10, TimestampMs(0));
        assert_eq!(book.bids.len(), 10);
        assert_eq!(book.bids[0], Level { price: 4_528_400, quantity: 100_000_000 });
        assert_eq!(book.bids[9], Level { price: 4_527_550, quantity: 10_000_000 });
        // A wrong checksum: withdrawn and resubscribed; later updates wait for the new snapshot.
        let out = feed(&mut kraken, &book_message("update", &[("45284.0", "2.00000000")], &[], 12345));
        assert_eq!(out[0], Effect::Invalidate(0, Reason::Checksum));
        assert_eq!(
            out[1],
            Effect::Send(
                r#"{"method":"unsubscribe","params":{"channel":"book","depth":10,"symbol":["BTC/USD"]}}"#.into()
            )
        );
        assert!(matches!(&out[2], Effect::Send(text) if text.contains("\"subscribe\"")));
        assert!(!kraken.feeds.feeds[0].live);
        assert_eq!(feed(&mut kraken, &book_message("update", &[("45284.0", "3.00000000")], &[], 0)), []);
        assert_eq!(feed(&mut kraken, r#"{"channel":"heartbeat"}"#), []);
        let sum = checksum_of_text(&[("45285.2", "0.00100000")], &[("45283.5", "0.10000000")]);
        assert_eq!(
            feed(
                &mut kraken,
                &book_message("snapshot", &[("45283.5", "0.10000000")], &[("45285.2", "0.00100000")], sum)
            ),
            [Effect::Publish(0)]
        );
        assert_eq!(feed(&mut kraken, r#"{"channel":"heartbeat"}"#), [Effect::Publish(0)]);
        assert_eq!(
            feed(&mut kraken, r#"{"method":"subscribe","success":false,"error":"Currency pair not supported"}"#),
            [Effect::Reconnect(Reason::VenueError)]
        );
    }

    #[test]
    fn string_numbers_are_accepted_and_garbage_is_an_error() {
        let mut kraken = kraken(10);
        kraken.on_connect();
        let sum = checksum_of_text(&[("101.0", "1.0")], &[("100.0", "2.0")]);
        let text = book_message("snapshot", &[("\"100.0\"", "\"2.0\"")], &[("\"101.0\"", "\"1.0\"")], sum);
        assert_eq!(feed(&mut kraken, &text), [Effect::Publish(0)]);
        let mut out = Vec::new();
        for bad in [
            book_message("snapshot", &[("1e5", "1")], &[], 0),
            book_message("snapshot", &[("true", "1")], &[], 0),
            book_message("snapshot", &[("-5", "1")], &[], 0),
            book_message("sideways", &[], &[], 0),
            r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","checksum":-1}]}"#.to_owned(),
        ] {
            assert!(kraken.on_message(&bad, &mut out).is_err(), "{bad}");
        }
    }
}
