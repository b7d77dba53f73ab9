//! otcd's exchange market-data connectors.
//!
//! Each venue is a [`otcd_market::MarketDataSource`] of the same shape: a pure protocol state machine per venue
//! ([`binance`], [`coinbase`], [`kraken`], [`bitstamp`]: the venue's documented public L2 protocol, fed text,
//! answering [`feed::Effect`]s) driven by one connection life ([`connection`]: connect, subscribe, ping, REST
//! snapshots, limits, reconnect with jittered backoff, publish to and withdraw from the [`otcd_market::MarketHub`],
//! report to its venue board). The local book and the precision rule are in [`book`]; the `--venues-config` file
//! in [`config`]. With the `fake` feature, [`fake`] serves loopback fake venues speaking the same formats, and
//! [`fake_binance`] Binance's spot order entry beside them (for the order-entry adapter's tests).
//!
//! Money never passes through a float: venue decimals are parsed exactly by `otcd_core::decimal` (Kraken's JSON
//! numbers as their text), and converted to the desk's units by the documented rule (bids down, asks up,
//! quantities truncated).

pub mod binance;
pub mod bitstamp;
pub mod book;
pub mod coinbase;
pub mod config;
pub mod connection;
#[cfg(feature = "fake")]
pub mod fake;
#[cfg(feature = "fake")]
pub mod fake_binance;
pub mod feed;
pub mod kraken;

use config::{VenueConfig, VenueKind, VenuesConfig};
use feed::Protocol;
use otcd_core::catalog::Catalog;
use otcd_market::{MarketDataSource, MarketHub};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One exchange venue as a market data source.
pub struct VenueSource<P: Protocol> {
    venue: VenueConfig,
    protocol: P,
}

impl<P: Protocol> MarketDataSource for VenueSource<P> {
    fn name(&self) -> &str {
        &self.venue.name
    }

    fn spawn(self: Box<Self>, hub: Arc<MarketHub>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let VenueSource { venue, protocol } = *self;
        tokio::spawn(connection::run(protocol, venue, hub, stop))
    }
}

/// The source of one configured venue (`kind = "sim"`: the simulated venues).
pub fn source(venue: &VenueConfig, catalog: &Catalog) -> Box<dyn MarketDataSource> {
    let venue_owned = venue.clone();
    match venue.kind {
        VenueKind::Binance => {
            Box::new(VenueSource { protocol: binance::Binance::new(venue, catalog), venue: venue_owned })
        }
        VenueKind::Coinbase => {
            Box::new(VenueSource { protocol: coinbase::Coinbase::new(venue, catalog), venue: venue_owned })
        }
        VenueKind::Kraken => {
            Box::new(VenueSource { protocol: kraken::Kraken::new(venue, catalog), venue: venue_owned })
        }
        VenueKind::Bitstamp => {
            Box::new(VenueSource { protocol: bitstamp::Bitstamp::new(venue, catalog), venue: venue_owned })
        }
        VenueKind::Sim => Box::new(
            otcd_market::SimulatedMarket::new(catalog, venue.seed)
                .with_interval(Duration::from_millis(venue.interval_ms)),
        ),
    }
}

/// Every configured venue's maximum book age, by the venue names its books carry (the simulation's three).
pub fn max_book_ages(config: &VenuesConfig) -> HashMap<String, i64> {
    let mut ages = HashMap::new();
    for venue in &config.venues {
        if venue.kind == VenueKind::Sim {
            for name in otcd_market::SIM_VENUES {
                ages.insert(name.to_owned(), venue.max_book_age_ms);
            }
        } else {
            ages.insert(venue.name.clone(), venue.max_book_age_ms);
        }
    }
    ages
}
