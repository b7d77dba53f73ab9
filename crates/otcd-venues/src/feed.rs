//! The one shape every venue protocol has: a pure state machine fed the connection's text messages (and REST
//! snapshots), answering [`Effect`]s the connection driver carries out. No I/O and no clock here, so every rule
//! of a venue's protocol is tested and benchmarked without a network.

use crate::book::{LevelError, LocalBook, Side, Units};
use crate::config::VenueConfig;
use otcd_core::catalog::Catalog;
use std::collections::HashMap;

/// Levels one message may carry (beside the size limit, a bound on work per message). Coinbase's `level2` snapshot
/// is the whole book, tens of thousands of levels on a busy pair; the local book keeps only the best of them.
pub const MESSAGE_LEVELS_MAX: usize = 200_000;

/// Why a book was taken out of pricing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A sequence number was skipped (Binance `U`/`u`, Coinbase `sequence_num`).
    Gap,
    /// Kraken's CRC32 of the top of the book did not match ours.
    Checksum,
    /// The book's best bid reached its best ask.
    Crossed,
    /// The venue asked us to reconnect (Bitstamp `bts:request_reconnect`).
    VenueRequest,
    /// The venue refused a subscription or reported an error.
    VenueError,
    /// Too many events buffered while waiting for a snapshot.
    BufferFull,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Gap => "sequence gap",
            Reason::Checksum => "checksum mismatch",
            Reason::Crossed => "crossed book",
            Reason::VenueRequest => "venue requested a reconnect",
            Reason::VenueError => "venue error",
            Reason::BufferFull => "buffer full while waiting for a snapshot",
        }
    }
}

/// What the driver does after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Book `index` changed (or was confirmed current by a heartbeat) and is in sync: publish it.
    Publish(usize),
    /// Book `index` is out of sync: withdraw it from pricing at once. The protocol has already asked for what
    /// rebuilds it (a snapshot, a resubscription).
    Invalidate(usize, Reason),
    /// Send this text on the WebSocket (a resubscription).
    Send(String),
    /// Fetch book `index`'s REST snapshot and hand it to [`Protocol::on_snapshot`].
    FetchSnapshot(usize),
    /// Drop the connection and reconnect (every book resyncs).
    Reconnect(Reason),
    /// A message was ignored as stale (Bitstamp diffs older than the book).
    Stale(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0}")]
    Level(#[from] LevelError),
    #[error("a message carries more than {MESSAGE_LEVELS_MAX} levels")]
    TooManyLevels,
}

impl ProtocolError {
    pub(crate) fn json(error: serde_json::Error) -> ProtocolError {
        ProtocolError::Malformed(error.to_string())
    }
}

/// One instrument of one venue.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The desk's instrument.
    pub instrument: String,
    /// The venue's symbol for it, as configured.
    pub venue_symbol: String,
    pub units: Units,
    pub book: LocalBook,
    /// The book is in sync and may be published.
    pub live: bool,
}

/// The feeds of one venue, with a lookup by venue symbol.
#[derive(Debug, Clone)]
pub struct Feeds {
    pub feeds: Vec<Feed>,
    by_symbol: HashMap<String, usize>,
}

impl Feeds {
    /// The feeds of `venue`; `symbol_key` normalizes venue symbols as they appear in messages (Binance sends
    /// `BTCUSDT` for `btcusdt`).
    pub fn new(venue: &VenueConfig, catalog: &Catalog, symbol_key: fn(&str) -> String) -> Feeds {
        let feeds: Vec<Feed> = venue
            .symbols
            .iter()
            .map(|(instrument, venue_symbol)| {
                let instrument_spec = catalog.instrument(instrument).expect("the configuration was validated");
                Feed {
                    instrument: instrument.clone(),
                    venue_symbol: venue_symbol.clone(),
                    units: Units::of(instrument_spec, catalog),
                    book: LocalBook::new(venue.limits.book_levels_max),
                    live: false,
                }
            })
            .collect();
        let by_symbol = feeds.iter().enumerate().map(|(index, feed)| (symbol_key(&feed.venue_symbol), index)).collect();
        Feeds { feeds, by_symbol }
    }

    pub fn index(&self, symbol: &str) -> Option<usize> {
        self.by_symbol.get(symbol).copied()
    }

    pub fn len(&self) -> usize {
        self.feeds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty()
    }

    /// After a message changed book `index`: publish it, or, when it crossed itself, invalidate it (the caller
    /// then resyncs it). Returns whether it crossed.
    pub fn settle(&mut self, index: usize, out: &mut Vec<Effect>) -> bool {
        let feed = &mut self.feeds[index];
        if feed.book.is_crossed() {
            feed.live = false;
            feed.book.clear();
            out.push(Effect::Invalidate(index, Reason::Crossed));
            true
        } else {
            out.push(Effect::Publish(index));
            false
        }
    }

    /// Marks every feed out of sync with empty books (a new connection).
    pub fn reset_all(&mut self) {
        for feed in &mut self.feeds {
            feed.live = false;
            feed.book.clear();
        }
    }

    /// Confirms every live book current (a heartbeat on a connection that has lost nothing).
    pub fn confirm_live(&self, out: &mut Vec<Effect>) {
        out.extend(
            self.feeds.iter().enumerate().filter(|(_, feed)| feed.live).map(|(index, _)| Effect::Publish(index)),
        );
    }
}

/// Applies `(price, quantity)` text pairs to one side of `book`.
pub fn apply_levels<'a>(
    book: &mut LocalBook,
    side: Side,
    levels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ProtocolError> {
    for (price, quantity) in levels {
        book.set(side, crate::book::parse_price(price)?, crate::book::parse_quantity(quantity)?);
    }
    Ok(())
}

/// A venue protocol: the state machine of one connection's subscriptions and books.
pub trait Protocol: Send + 'static {
    fn feeds(&self) -> &Feeds;

    /// A connection opened: forget every book and answer the messages that subscribe.
    fn on_connect(&mut self) -> Vec<String>;

    /// One text message from the venue.
    fn on_message(&mut self, text: &str, out: &mut Vec<Effect>) -> Result<(), ProtocolError>;

    /// Where book `index`'s REST snapshot is (venues that need one).
    fn snapshot_url(&self, _index: usize) -> Option<String> {
        None
    }

    /// Book `index`'s REST snapshot body arrived.
    fn on_snapshot(&mut self, _index: usize, _body: &str, _out: &mut Vec<Effect>) -> Result<(), ProtocolError> {
        Ok(())
    }

    /// The venue's own application-level ping, sent beside the WebSocket ping, if it has one.
    fn keepalive(&self) -> Option<String> {
        None
    }
}

/// Rejects messages with too many levels before any work is done on them.
pub(crate) fn check_levels(count: usize) -> Result<(), ProtocolError> {
    if count > MESSAGE_LEVELS_MAX {
        Err(ProtocolError::TooManyLevels)
    } else {
        Ok(())
    }
}
