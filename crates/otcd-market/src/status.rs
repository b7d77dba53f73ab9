//! The board of venue feeds: what each exchange connector reports about each (venue, instrument) it serves, for
//! the admin API (`GET /v1/admin/market/venues`) and `/metrics`. Pricing does not read it: a feed that is not
//! live has already withdrawn its book from the hub ([`crate::MarketHub::withdraw`]).

use otcd_core::time::TimestampMs;
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// Feeds the board keeps (venues × instruments); registrations beyond it are refused.
pub const BOARD_FEEDS_MAX: usize = 4_096;

/// Where a feed is in its life. Only `Live` feeds have a book in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeedState {
    /// Connecting (first time or after a disconnect), or waiting out the reconnect backoff.
    Connecting,
    /// Connected, waiting for a snapshot or rebuilding the book after a gap, checksum mismatch or crossed book.
    Resyncing,
    /// The book is in sync and published.
    Live,
    /// The connection is down; the book is withdrawn.
    Disconnected,
    /// The desk is stopping.
    Stopped,
}

impl FeedState {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::Connecting => "connecting",
            FeedState::Resyncing => "resyncing",
            FeedState::Live => "live",
            FeedState::Disconnected => "disconnected",
            FeedState::Stopped => "stopped",
        }
    }

    /// Every state, for metrics that export one series per state.
    pub const ALL: [FeedState; 5] =
        [FeedState::Connecting, FeedState::Resyncing, FeedState::Live, FeedState::Disconnected, FeedState::Stopped];
}

/// One feed's row on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedStatus {
    pub venue: String,
    /// `binance`, `coinbase`, `kraken`, `bitstamp`.
    pub kind: String,
    /// The desk's instrument symbol.
    pub instrument: String,
    /// The venue's own symbol for it.
    pub venue_symbol: String,
    pub state: FeedState,
    /// When the book was last updated or confirmed by the venue (receive time); `None` before the first.
    pub last_update: Option<TimestampMs>,
    /// Books published: messages that changed the book (snapshots included) and heartbeats that confirmed it.
    pub updates: u64,
    /// Book rebuilds after a gap, checksum mismatch, crossed book or stale snapshot (not counting reconnects).
    pub resyncs: u64,
    pub checksum_failures: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Messages refused as malformed, oversized or over the rate limit.
    pub rejected_messages: u64,
    /// The venue's maximum book age (a live feed older than this is not priced).
    pub max_book_age_ms: i64,
    /// The venue's taker fee in basis points, as configured (a decimal string).
    pub fee_bps: String,
}

impl FeedStatus {
    /// A new feed's row: connecting, nothing counted yet.
    pub fn new(
        venue: &str,
        kind: &str,
        instrument: &str,
        venue_symbol: &str,
        max_book_age_ms: i64,
        fee_bps: &str,
    ) -> FeedStatus {
        FeedStatus {
            venue: venue.to_owned(),
            kind: kind.to_owned(),
            instrument: instrument.to_owned(),
            venue_symbol: venue_symbol.to_owned(),
            state: FeedState::Connecting,
            last_update: None,
            updates: 0,
            resyncs: 0,
            checksum_failures: 0,
            reconnects: 0,
            rejected_messages: 0,
            max_book_age_ms,
            fee_bps: fee_bps.to_owned(),
        }
    }

    /// The state an operator should see at `now`: a live feed older than its maximum age is `stale`.
    pub fn effective_state(&self, now: TimestampMs) -> &'static str {
        match (self.state, self.last_update) {
            (FeedState::Live, Some(at)) if now.0.saturating_sub(at.0) > self.max_book_age_ms => "stale",
            (state, _) => state.as_str(),
        }
    }

    /// Milliseconds since the last update at `now`, if any.
    pub fn age_ms(&self, now: TimestampMs) -> Option<i64> {
        self.last_update.map(|at| now.0.saturating_sub(at.0).max(0))
    }
}

/// The shared board: one row per (venue, instrument), bounded by [`BOARD_FEEDS_MAX`].
#[derive(Debug, Default)]
pub struct VenueBoard {
    feeds: Mutex<BTreeMap<(String, String), FeedStatus>>,
}

impl VenueBoard {
    /// Adds (or replaces) a feed's row. Refused (false) beyond [`BOARD_FEEDS_MAX`] rows.
    pub fn register(&self, status: FeedStatus) -> bool {
        let mut feeds = self.feeds.lock();
        let key = (status.venue.clone(), status.instrument.clone());
        if !feeds.contains_key(&key) && feeds.len() >= BOARD_FEEDS_MAX {
            return false;
        }
        feeds.insert(key, status);
        true
    }

    /// Changes a registered feed's row; unknown feeds are ignored.
    pub fn update(&self, venue: &str, instrument: &str, change: impl FnOnce(&mut FeedStatus)) {
        let mut feeds = self.feeds.lock();
        if let Some(status) = feeds.get_mut(&(venue.to_owned(), instrument.to_owned())) {
            change(status);
        }
    }

    /// Every row, ordered by venue then instrument.
    pub fn feeds(&self) -> Vec<FeedStatus> {
        self.feeds.lock().values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.feeds.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(venue: &str, instrument: &str) -> FeedStatus {
        FeedStatus::new(venue, "kraken", instrument, "BTC/USD", 2_000, "26")
    }

    #[test]
    fn rows_are_kept_updated_and_bounded() {
        let board = VenueBoard::default();
        assert!(board.is_empty());
        assert!(board.register(row("b", "ETH-USD")));
        assert!(board.register(row("a", "BTC-USD")));
        board.update("a", "BTC-USD", |status| {
            status.state = FeedState::Live;
            status.last_update = Some(TimestampMs(1_000));
        });
        board.update("nope", "BTC-USD", |status| status.updates = 7);
        let feeds = board.feeds();
        assert_eq!(feeds.iter().map(|f| f.venue.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(feeds[0].effective_state(TimestampMs(3_000)), "live");
        assert_eq!(feeds[0].effective_state(TimestampMs(3_001)), "stale");
        assert_eq!(feeds[0].age_ms(TimestampMs(3_001)), Some(2_001));
        assert_eq!(feeds[1].effective_state(TimestampMs(3_001)), "connecting");
        for index in 0..BOARD_FEEDS_MAX {
            board.register(row(&format!("v{index}"), "BTC-USD"));
        }
        assert!(!board.register(row("one-more", "BTC-USD")));
        assert!(board.register(row("a", "BTC-USD")), "replacing a row is always allowed");
    }
}
