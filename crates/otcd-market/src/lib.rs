//! otcd's market data adapters.
//!
//! Everything that brings venue order books into the desk lives here; the pricing functions that consume them
//! live in `otcd_core::market` and stay pure.
//!
//! - [`MarketHub`] is the shared store of the latest book per venue and instrument. Every source publishes into
//!   it ([`MarketHub::publish`] validates and refuses bad or out-of-order books); pricing reads from it
//!   ([`MarketHub::fresh_books`], [`MarketHub::all_books`]) and waits on it ([`MarketHub::subscribe`], a
//!   conflating version counter per instrument).
//! - [`SimulatedMarket`] (`--market sim`, the default) runs three simulated venues for every catalog instrument
//!   from a seeded, integer-only random walk. Its core, [`SimulatedMarket::step`], is a pure function of the seed
//!   and the sequence of times it is stepped at.
//! - [`manual_book`] / [`ManualMarket`] (`--market manual`): operator-set prices with unlimited depth, published
//!   by the admin endpoint. No source task runs in that mode.
//! - [`ReplaySource`] streams recorded books from a JSON-lines file; [`write_jsonl_line`] writes the same format.
//!
//! # Adding a source
//!
//! A source is anything implementing [`MarketDataSource`]: it is handed the hub and a stop signal and spawns one
//! task that publishes [`VenueBook`]s until the stop signal turns `true` (or its sender is dropped). A real
//! exchange connector — say a WebSocket L2 feed — is just another source:
//!
//! 1. in `spawn`, start a task that connects and subscribes to the instruments' depth channels;
//! 2. keep a local L2 book per instrument from the snapshot plus deltas (checking the feed's sequence numbers and
//!    resubscribing on a gap), truncated to [`otcd_core::market::BOOK_LEVELS_MAX`] levels per side;
//! 3. convert the venue's decimal strings exactly with `otcd_core::decimal::parse_scaled` at the instrument's
//!    price scale and the base asset's scale, mapping the venue's symbols to catalog symbols;
//! 4. publish a [`VenueBook`] (venue = the source's name, `as_of` = the exchange timestamp, or the receive time
//!    when the feed has none) after each applied update, possibly throttled;
//! 5. on disconnect, resync or a rejected book, take the venue's book out of pricing at once
//!    ([`MarketHub::withdraw`]) and reconnect with backoff; a venue that just goes silent is dropped by the hub's
//!    per-venue maximum age on its own;
//! 6. report the feed's state and counters to the hub's [`VenueBoard`] (the admin API and `/metrics` read it);
//! 7. select on the stop receiver everywhere the task waits.
//!
//! The exchange connectors (Binance, Coinbase, Kraken, Bitstamp) live in the `otcd-venues` crate and follow
//! exactly these steps.
//!
//! The hub does not care where a book comes from: it validates it ([`VenueBook::validate`]), keeps the latest per
//! venue and wakes subscribers, so nothing downstream changes when a source is added.
//!
//! # Units
//!
//! Prices are integer counts of `10^-price_scale` quote units per one whole base unit; quantities are integer
//! counts of base-asset minor units. No floating point anywhere, including the simulation's random walk.

mod hub;
mod manual;
mod replay;
mod sim;
mod status;

pub use hub::{HubConfig, MarketHub, PublishError, DEFAULT_MAX_AGE_MS, VENUE_NAME_LENGTH_MAX};
pub use manual::{manual_book, ManualMarket, ManualPriceError, MANUAL_VENUE};
pub use replay::{
    parse_jsonl_line, write_jsonl_line, JsonlReader, LineError, ReplayOptions, ReplaySource, ReplayStats,
    REPLAY_LINE_BYTES_MAX,
};
pub use sim::{SimulatedMarket, SIM_DEFAULT_INTERVAL, SIM_SOURCE_NAME, SIM_VENUES};
pub use status::{FeedState, FeedStatus, VenueBoard, BOARD_FEEDS_MAX};

pub use otcd_core::market::VenueBook;
use otcd_core::time::TimestampMs;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A producer of venue books.
///
/// `spawn` starts the source's task on the current tokio runtime and returns its handle. The task publishes into
/// `hub` until `stop` holds `true` or its sender is dropped, then returns; it must never panic on bad input (log
/// and skip instead). See the crate documentation for how an exchange connector fits this shape.
pub trait MarketDataSource: Send + 'static {
    /// Short name for logs and configuration (`sim`, `replay`, ...).
    fn name(&self) -> &str;

    fn spawn(self: Box<Self>, hub: Arc<MarketHub>, stop: watch::Receiver<bool>) -> JoinHandle<()>;
}

/// The wall clock in Unix milliseconds. Sources read the clock; the core and the hub never do.
pub fn now_ms() -> TimestampMs {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    TimestampMs(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

/// Resolves once a stop is requested: the value turns `true`, or the sender is gone (nobody can stop us any
/// more, so we stop now rather than run unsupervised).
pub(crate) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
