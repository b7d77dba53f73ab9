//! The latest-book store shared by every source (writers) and pricing (readers).

use crate::status::VenueBoard;
use otcd_core::catalog::{Catalog, Instrument};
use otcd_core::market::{BookError, VenueBook, VENUES_MAX};
use otcd_core::time::TimestampMs;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// A venue book older than this is not fresh (API.md: "default 2 s, configurable per source").
pub const DEFAULT_MAX_AGE_MS: i64 = 2_000;
/// Longest venue name accepted, in bytes.
pub const VENUE_NAME_LENGTH_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Maximum book age for venues without their own setting.
    pub default_max_age_ms: i64,
    /// Per-venue maximum book age (e.g. `manual`, or a slow venue), overriding the default.
    pub max_age_ms_by_venue: HashMap<String, i64>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self { default_max_age_ms: DEFAULT_MAX_AGE_MS, max_age_ms_by_venue: HashMap::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("instrument {0:?} is not in the catalog")]
    UnknownInstrument(String),
    #[error("venue names must be 1 to {VENUE_NAME_LENGTH_MAX} bytes")]
    VenueName,
    #[error("invalid book: {0}")]
    Invalid(#[from] BookError),
    #[error("instrument {instrument:?} already has the maximum of {VENUES_MAX} venues")]
    TooManyVenues { instrument: String },
    #[error("out of order: the book is as of {received:?}, older than the venue's current book ({current:?})")]
    OutOfOrder { current: TimestampMs, received: TimestampMs },
}

/// One instrument's books. The book list is copy-on-write: a writer replaces the `Arc` under a short write lock,
/// a reader clones the `Arc` under a short read lock and then works on its own snapshot without any lock, so
/// neither ever waits for the other's copying or filtering.
struct InstrumentSlot {
    instrument: Instrument,
    books: RwLock<Arc<[Arc<VenueBook>]>>,
    version: watch::Sender<u64>,
}

/// The shared latest-book store: one book per (instrument, venue), at most `VENUES_MAX` venues per instrument,
/// instruments fixed by the catalog at construction. Everything it holds is therefore bounded.
pub struct MarketHub {
    slots: HashMap<String, InstrumentSlot>,
    config: HubConfig,
    board: VenueBoard,
}

impl std::fmt::Debug for MarketHub {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MarketHub")
            .field("instruments", &self.slots.len())
            .field("config", &self.config)
            .finish()
    }
}

impl MarketHub {
    pub fn new(catalog: &Catalog, config: HubConfig) -> Arc<MarketHub> {
        let slots = catalog
            .instruments()
            .iter()
            .map(|instrument| {
                let slot = InstrumentSlot {
                    instrument: instrument.clone(),
                    books: RwLock::new(Arc::from(Vec::new())),
                    version: watch::Sender::new(0),
                };
                (instrument.symbol.clone(), slot)
            })
            .collect();
        Arc::new(MarketHub { slots, config, board: VenueBoard::default() })
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The catalog instrument the hub keeps books for, if any.
    pub fn instrument(&self, symbol: &str) -> Option<&Instrument> {
        self.slots.get(symbol).map(|slot| &slot.instrument)
    }

    /// The maximum book age of `venue`: its own setting, or the default.
    pub fn max_age_ms(&self, venue: &str) -> i64 {
        self.config.max_age_ms_by_venue.get(venue).copied().unwrap_or(self.config.default_max_age_ms)
    }

    /// Stores `book` as its venue's latest book for its instrument, bumps the instrument's version and wakes its
    /// subscribers. Refuses unknown instruments, bad venue names, invalid books, a new venue beyond `VENUES_MAX`
    /// and a book older than the venue's current one (an equally old book replaces it).
    pub fn publish(&self, book: VenueBook) -> Result<(), PublishError> {
        let slot = self.store(book)?;
        slot.version.send_modify(|version| *version = version.wrapping_add(1));
        Ok(())
    }

    /// Stores every book of `books` as [`publish`](Self::publish) does, one by one, but bumps each instrument's
    /// version once, after all of them: a source that receives several venues' books of one instrument at once
    /// (the simulation's tick) wakes each subscriber once, to the whole update. Woken after the first of three
    /// books, a ladder publisher priced a partly updated tick, then priced it again for the rest: twice the
    /// frames for the same tick. Returns the refusals with each refused book's position in `books`.
    pub fn publish_all(&self, books: Vec<VenueBook>) -> Vec<(usize, PublishError)> {
        let mut refused = Vec::new();
        // At most one entry per catalog instrument (`slots` is fixed at construction).
        let mut touched: Vec<&InstrumentSlot> = Vec::new();
        for (index, book) in books.into_iter().enumerate() {
            match self.store(book) {
                Ok(slot) => {
                    if !touched.iter().any(|seen| std::ptr::eq(*seen, slot)) {
                        touched.push(slot);
                    }
                }
                Err(error) => refused.push((index, error)),
            }
        }
        for slot in touched {
            slot.version.send_modify(|version| *version = version.wrapping_add(1));
        }
        refused
    }

    /// Validates `book` and stores it as its venue's latest book, without waking anyone.
    fn store(&self, book: VenueBook) -> Result<&InstrumentSlot, PublishError> {
        let slot =
            self.slots.get(&book.instrument).ok_or_else(|| PublishError::UnknownInstrument(book.instrument.clone()))?;
        if book.venue.is_empty() || book.venue.len() > VENUE_NAME_LENGTH_MAX {
            return Err(PublishError::VenueName);
        }
        book.validate()?;
        let book = Arc::new(book);
        let mut books = slot.books.write();
        let position = books.iter().position(|current| current.venue == book.venue);
        let mut next: Vec<Arc<VenueBook>> = Vec::with_capacity(books.len() + usize::from(position.is_none()));
        next.extend(books.iter().cloned());
        match position {
            Some(index) => {
                let current = next[index].as_of;
                if book.as_of < current {
                    return Err(PublishError::OutOfOrder { current, received: book.as_of });
                }
                next[index] = book;
            }
            None if next.len() >= VENUES_MAX => {
                return Err(PublishError::TooManyVenues { instrument: slot.instrument.symbol.clone() });
            }
            None => next.push(book),
        }
        *books = Arc::from(next);
        Ok(slot)
    }

    /// Removes `venue`'s book of `instrument`, if any, and wakes the instrument's subscribers: from now on pricing
    /// does not see the venue for that instrument until it publishes again. A connector calls it the moment its
    /// book stops being trustworthy (disconnected, resyncing, crossed), rather than waiting for the book to age
    /// past its maximum. Returns whether a book was removed.
    pub fn withdraw(&self, venue: &str, instrument: &str) -> bool {
        let Some(slot) = self.slots.get(instrument) else { return false };
        {
            let mut books = slot.books.write();
            if !books.iter().any(|book| book.venue == venue) {
                return false;
            }
            let next: Vec<Arc<VenueBook>> = books.iter().filter(|book| book.venue != venue).cloned().collect();
            *books = Arc::from(next);
        }
        slot.version.send_modify(|version| *version = version.wrapping_add(1));
        true
    }

    /// The board of connector states (venue connectors report into it; the admin API and metrics read it).
    pub fn venue_board(&self) -> &VenueBoard {
        &self.board
    }

    fn snapshot(&self, instrument: &str) -> Option<Arc<[Arc<VenueBook>]>> {
        self.slots.get(instrument).map(|slot| Arc::clone(&slot.books.read()))
    }

    /// The books of `instrument` that are within their venue's maximum age at `now` (empty for unknown
    /// instruments). In venue arrival order.
    pub fn fresh_books(&self, instrument: &str, now: TimestampMs) -> Vec<VenueBook> {
        let Some(books) = self.snapshot(instrument) else { return Vec::new() };
        books
            .iter()
            .filter(|book| book.is_fresh(now, self.max_age_ms(&book.venue)))
            .map(|book| (**book).clone())
            .collect()
    }

    /// Every venue's latest book of `instrument`, fresh or not (indicative prices, the console).
    pub fn all_books(&self, instrument: &str) -> Vec<VenueBook> {
        self.snapshot(instrument).map(|books| books.iter().map(|book| (**book).clone()).collect()).unwrap_or_default()
    }

    /// A receiver of `instrument`'s version counter, bumped on every accepted publish; `None` for unknown
    /// instruments. `watch` conflates: a slow reader sees only the latest version, never a queue.
    pub fn subscribe(&self, instrument: &str) -> Option<watch::Receiver<u64>> {
        self.slots.get(instrument).map(|slot| slot.version.subscribe())
    }

    /// The current version of `instrument` (number of accepted publishes, wrapping).
    pub fn version(&self, instrument: &str) -> Option<u64> {
        self.slots.get(instrument).map(|slot| *slot.version.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otcd_core::market::Level;

    fn book(venue: &str, instrument: &str, bid: i128, ask: i128, as_of: i64) -> VenueBook {
        VenueBook {
            venue: venue.to_owned(),
            instrument: instrument.to_owned(),
            bids: vec![Level { price: bid, quantity: 100_000_000 }],
            asks: vec![Level { price: ask, quantity: 100_000_000 }],
            as_of: TimestampMs(as_of),
        }
    }

    fn hub_with(config: HubConfig) -> Arc<MarketHub> {
        MarketHub::new(&Catalog::builtin(), config)
    }

    #[test]
    fn publish_stores_the_latest_book_per_venue() {
        let hub = hub_with(HubConfig::default());
        hub.publish(book("a", "BTC-USD", 100, 101, 1_000)).unwrap();
        hub.publish(book("b", "BTC-USD", 99, 102, 1_000)).unwrap();
        hub.publish(book("a", "BTC-USD", 103, 104, 1_100)).unwrap();
        let books = hub.all_books("BTC-USD");
        assert_eq!(books.len(), 2);
        assert_eq!(books[0], book("a", "BTC-USD", 103, 104, 1_100));
        assert_eq!(books[1], book("b", "BTC-USD", 99, 102, 1_000));
        assert!(hub.all_books("ETH-USD").is_empty());
        assert_eq!(hub.version("BTC-USD"), Some(3));
        assert_eq!(hub.version("ETH-USD"), Some(0));
    }

    #[test]
    fn publish_refusals_change_nothing() {
        let hub = hub_with(HubConfig::default());
        assert_eq!(
            hub.publish(book("a", "DOGE-USD", 100, 101, 1)),
            Err(PublishError::UnknownInstrument("DOGE-USD".to_owned()))
        );
        assert_eq!(
            hub.publish(book("a", "BTC-USD", 101, 101, 1)),
            Err(PublishError::Invalid(BookError::Crossed { bid: 101, ask: 101 }))
        );
        assert_eq!(hub.publish(book("a", "BTC-USD", 0, 101, 1)), Err(PublishError::Invalid(BookError::NotPositive)));
        let mut unordered = book("a", "BTC-USD", 100, 101, 1);
        unordered.bids.push(Level { price: 100, quantity: 1 });
        assert_eq!(hub.publish(unordered), Err(PublishError::Invalid(BookError::Unordered)));
        assert_eq!(hub.publish(book("", "BTC-USD", 100, 101, 1)), Err(PublishError::VenueName));
        assert_eq!(hub.publish(book(&"v".repeat(65), "BTC-USD", 100, 101, 1)), Err(PublishError::VenueName));
        assert!(hub.all_books("BTC-USD").is_empty());
        assert_eq!(hub.version("BTC-USD"), Some(0));

        hub.publish(book("a", "BTC-USD", 100, 101, 5_000)).unwrap();
        assert_eq!(
            hub.publish(book("a", "BTC-USD", 200, 201, 4_999)),
            Err(PublishError::OutOfOrder { current: TimestampMs(5_000), received: TimestampMs(4_999) })
        );
        assert_eq!(hub.all_books("BTC-USD"), vec![book("a", "BTC-USD", 100, 101, 5_000)]);
        // The same timestamp replaces (two manual updates within one millisecond).
        hub.publish(book("a", "BTC-USD", 200, 201, 5_000)).unwrap();
        assert_eq!(hub.all_books("BTC-USD"), vec![book("a", "BTC-USD", 200, 201, 5_000)]);
    }

    #[tokio::test]
    async fn withdraw_removes_one_venue_at_once_and_wakes_subscribers() {
        let hub = hub_with(HubConfig::default());
        hub.publish(book("a", "BTC-USD", 100, 101, 1_000)).unwrap();
        hub.publish(book("b", "BTC-USD", 99, 102, 1_000)).unwrap();
        let mut receiver = hub.subscribe("BTC-USD").unwrap();
        let _ = receiver.borrow_and_update();
        assert!(hub.withdraw("a", "BTC-USD"));
        assert!(receiver.has_changed().unwrap());
        let venues: Vec<_> = hub.fresh_books("BTC-USD", TimestampMs(1_000)).into_iter().map(|b| b.venue).collect();
        assert_eq!(venues, ["b"]);
        assert!(!hub.withdraw("a", "BTC-USD"));
        assert!(!hub.withdraw("a", "NOPE"));
        // After a withdrawal any newer or older book is accepted again (a resync starts afresh).
        hub.publish(book("a", "BTC-USD", 100, 101, 500)).unwrap();
        assert_eq!(hub.all_books("BTC-USD").len(), 2);
    }

    #[test]
    fn venues_per_instrument_are_bounded() {
        let hub = hub_with(HubConfig::default());
        for venue in 0..VENUES_MAX {
            hub.publish(book(&format!("v{venue}"), "ETH-USD", 100, 101, 1)).unwrap();
        }
        assert_eq!(
            hub.publish(book("one-too-many", "ETH-USD", 100, 101, 1)),
            Err(PublishError::TooManyVenues { instrument: "ETH-USD".to_owned() })
        );
        // Existing venues still update, and other instruments are unaffected.
        hub.publish(book("v0", "ETH-USD", 100, 102, 2)).unwrap();
        hub.publish(book("one-too-many", "BTC-USD", 100, 101, 1)).unwrap();
        assert_eq!(hub.all_books("ETH-USD").len(), VENUES_MAX);
    }

    #[test]
    fn freshness_uses_the_default_or_the_venue_override() {
        let config = HubConfig {
            default_max_age_ms: 2_000,
            max_age_ms_by_venue: HashMap::from([("manual".to_owned(), 60_000), ("fast".to_owned(), 500)]),
        };
        let hub = hub_with(config);
        hub.publish(book("plain", "BTC-USD", 100, 101, 10_000)).unwrap();
        hub.publish(book("manual", "BTC-USD", 100, 101, 10_000)).unwrap();
        hub.publish(book("fast", "BTC-USD", 100, 101, 10_000)).unwrap();
        let venues = |now: i64| -> Vec<String> {
            hub.fresh_books("BTC-USD", TimestampMs(now)).into_iter().map(|book| book.venue).collect()
        };
        assert_eq!(venues(10_000), ["plain", "manual", "fast"]);
        assert_eq!(venues(10_500), ["plain", "manual", "fast"]);
        assert_eq!(venues(10_501), ["plain", "manual"]);
        assert_eq!(venues(12_000), ["plain", "manual"]);
        assert_eq!(venues(12_001), ["manual"]);
        assert_eq!(venues(70_000), ["manual"]);
        assert!(venues(70_001).is_empty());
        assert_eq!(hub.all_books("BTC-USD").len(), 3);
        assert!(hub.fresh_books("NOPE", TimestampMs(0)).is_empty());
        assert_eq!((hub.max_age_ms("fast"), hub.max_age_ms("other")), (500, 2_000));
    }

    #[tokio::test]
    async fn subscribers_see_bumps_conflated() {
        let hub = hub_with(HubConfig::default());
        assert!(hub.subscribe("NOPE").is_none());
        let mut receiver = hub.subscribe("BTC-USD").unwrap();
        let mut other = hub.subscribe("ETH-USD").unwrap();
        assert!(!receiver.has_changed().unwrap());

        hub.publish(book("a", "BTC-USD", 100, 101, 1)).unwrap();
        receiver.changed().await.unwrap();
        assert_eq!(*receiver.borrow_and_update(), 1);

        for index in 0..1_000 {
            hub.publish(book("a", "BTC-USD", 100, 101, 2 + index)).unwrap();
        }
        // One wake-up carrying the latest version, then nothing queued behind it.
        receiver.changed().await.unwrap();
        assert_eq!(*receiver.borrow_and_update(), 1_001);
        assert!(!receiver.has_changed().unwrap());
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), receiver.changed()).await;
        assert!(pending.is_err(), "no further wake-up expected");
        // A refused publish does not wake anyone; other instruments are not woken.
        assert!(hub.publish(book("a", "BTC-USD", 100, 101, 0)).is_err());
        assert!(!receiver.has_changed().unwrap());
        assert!(!other.has_changed().unwrap());
        let _ = other.borrow_and_update();
    }

    #[tokio::test]
    async fn publish_all_wakes_each_instrument_once_after_every_book_is_stored() {
        let hub = hub_with(HubConfig::default());
        let mut btc = hub.subscribe("BTC-USD").unwrap();
        let mut eth = hub.subscribe("ETH-USD").unwrap();
        let mut eur = hub.subscribe("EUR-USD").unwrap();
        hub.publish(book("a", "BTC-USD", 100, 101, 5_000)).unwrap();
        let _ = btc.borrow_and_update();

        let refused = hub.publish_all(vec![
            book("a", "BTC-USD", 102, 103, 6_000),
            book("b", "BTC-USD", 101, 104, 6_000),
            book("a", "BTC-USD", 90, 91, 4_000),
            book("a", "ETH-USD", 10, 11, 6_000),
            book("a", "DOGE-USD", 10, 11, 6_000),
        ]);
        assert_eq!(
            refused,
            vec![
                (2, PublishError::OutOfOrder { current: TimestampMs(6_000), received: TimestampMs(4_000) }),
                (4, PublishError::UnknownInstrument("DOGE-USD".to_owned())),
            ]
        );
        // One bump per instrument for the whole group; by the time a subscriber wakes, every accepted book of
        // the group is there.
        assert_eq!(hub.version("BTC-USD"), Some(2));
        assert_eq!(hub.version("ETH-USD"), Some(1));
        btc.changed().await.unwrap();
        assert_eq!(
            hub.all_books("BTC-USD"),
            vec![book("a", "BTC-USD", 102, 103, 6_000), book("b", "BTC-USD", 101, 104, 6_000)]
        );
        assert!(!btc.has_changed().unwrap());
        eth.changed().await.unwrap();
        assert!(!eur.has_changed().unwrap());
        let _ = eur.borrow_and_update();

        // Nothing accepted: nobody woken.
        let refused = hub.publish_all(vec![book("a", "BTC-USD", 90, 91, 1)]);
        assert_eq!(refused.len(), 1);
        assert!(!btc.has_changed().unwrap());
        assert!(hub.publish_all(Vec::new()).is_empty());
    }

    #[test]
    fn concurrent_writers_and_readers() {
        let hub = hub_with(HubConfig::default());
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let hub = &hub;
                scope.spawn(move || {
                    for index in 0..2_000_i64 {
                        hub.publish(book(&format!("w{writer}"), "BTC-USD", 100, 101 + i128::from(index), index))
                            .unwrap();
                    }
                });
            }
            let hub = &hub;
            scope.spawn(move || {
                for _ in 0..2_000 {
                    let books = hub.fresh_books("BTC-USD", TimestampMs(0));
                    assert!(books.len() <= 4 && books.iter().all(|book| book.validate().is_ok()));
                }
            });
        });
        assert_eq!(hub.version("BTC-USD"), Some(8_000));
        assert!(hub.all_books("BTC-USD").iter().all(|book| book.asks[0].price == 2_100));
    }
}
