//! The paper venue: an adapter of the services' [`VenueExecution`] port that fills hedge orders against the
//! current book of each venue in the market hub, without any exchange.
//!
//! * An order is immediate-or-cancel at its limit: `latency_ms` after it is placed (when its status is next
//!   asked), it walks the venue's fresh book level by level up to the limit and the desk's balance at the venue
//!   (a buy pays the quote amount and the taker fee), one fill per level, and the rest is cancelled.
//! * Seeded misbehaviour: `reject_percent` of new orders are refused, `timeout_percent` are taken but answered
//!   with a timeout (their status then shows them, filled after the latency, as a real venue would).
//! * Idempotent per client order id: placing an id it knows answers that order's status.
//! * Its orders and balances are written to `paper-venues.json` (temp file, fsync, rename) before a call returns,
//!   so after a `kill -9` the paper venue still knows what it was sent, like a real venue would.

use otcd_core::catalog::{AssetCode, Catalog};
use otcd_core::market::{pricing, Side};
use otcd_market::MarketHub;
use otcd_services::ports::{Clock, VenueAccount, VenueError, VenueExecution, VenueFill, VenueOrder, VenueOrderStatus};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Orders the paper venue remembers (the oldest are forgotten past this).
pub const PAPER_ORDERS_MAX: usize = 10_000;
/// The file under the data directory.
pub const PAPER_FILE: &str = "paper-venues.json";

/// How the paper venues behave (`paper_*` keys of `--config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperSettings {
    pub latency_ms: i64,
    pub reject_percent: u8,
    pub timeout_percent: u8,
    pub seed: u64,
    /// Fault injection for the crash tests: the process aborts (as `kill -9` would stop it) right after the
    /// first order it ever takes is saved, before the hedge worker can journal the acknowledgement. Once per
    /// data directory (the state file remembers it).
    pub crash_after_send: bool,
    /// New venues open with 1,000 of each crypto asset and 100,000,000 of each fiat (`PaperVenue::funded`),
    /// which the ledger does not know of; false: they open empty and hold only what the desk transfers to them
    /// (`POST /v1/admin/venues/{venue}/transfers`), so the ledger and the venue agree from the start.
    pub opening_balances: bool,
}

impl Default for PaperSettings {
    fn default() -> Self {
        Self {
            latency_ms: 20,
            reject_percent: 0,
            timeout_percent: 0,
            seed: 7,
            crash_after_send: false,
            opening_balances: true,
        }
    }
}

/// One paper venue: its name, taker fee and starting balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperVenue {
    pub name: String,
    pub taker_fee_centi_bps: i128,
    pub balances: BTreeMap<AssetCode, i128>,
}

impl PaperVenue {
    /// A venue holding, for every catalog asset, 1,000 whole units of crypto and 100,000,000 of fiat and dollar
    /// stablecoins (so a demo hedges without funding the venues first).
    pub fn funded(name: &str, taker_fee_centi_bps: i128, catalog: &Catalog) -> Self {
        let balances = catalog
            .assets()
            .iter()
            .map(|asset| {
                let fiat_like =
                    asset.kind == otcd_core::catalog::AssetKind::Fiat || asset.code.as_str().starts_with("USD");
                let whole: i128 = if fiat_like { 100_000_000 } else { 1_000 };
                (asset.code, whole.saturating_mul(10i128.saturating_pow(u32::from(asset.scale))))
            })
            .collect();
        Self { name: name.to_owned(), taker_fee_centi_bps, balances }
    }

    /// A venue holding nothing until the desk transfers to it.
    pub fn empty(name: &str, taker_fee_centi_bps: i128) -> Self {
        Self { name: name.to_owned(), taker_fee_centi_bps, balances: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaperOrder {
    order: VenueOrder,
    venue_order_id: String,
    placed_at_ms: i64,
    executed: bool,
    fills: Vec<VenueFill>,
    reason: Option<String>,
}

impl PaperOrder {
    fn status(&self) -> VenueOrderStatus {
        VenueOrderStatus {
            venue_order_id: self.venue_order_id.clone(),
            open: !self.executed,
            fills: self.fills.clone(),
            reason: self.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PaperState {
    venues: BTreeMap<String, PaperVenue>,
    /// Keyed by (venue, client order id).
    orders: BTreeMap<String, PaperOrder>,
    placed: u64,
    rng: u64,
    #[serde(default)]
    crashed: bool,
}

pub struct PaperVenues {
    hub: Arc<MarketHub>,
    catalog: Catalog,
    clock: Arc<dyn Clock>,
    settings: PaperSettings,
    path: Option<PathBuf>,
    state: Mutex<PaperState>,
}

fn key(venue: &str, client_order_id: &str) -> String {
    format!("{venue}\u{1f}{client_order_id}")
}

impl PaperVenues {
    /// Paper venues over `hub`, resumed from `data_dir/paper-venues.json` when it exists (its balances and orders
    /// win over `venues`' starting balances for the venues it knows).
    pub fn open(
        hub: Arc<MarketHub>,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        settings: PaperSettings,
        venues: Vec<PaperVenue>,
        data_dir: Option<&Path>,
    ) -> std::io::Result<Self> {
        let path = data_dir.map(|dir| dir.join(PAPER_FILE));
        let mut state = match &path {
            Some(path) if path.exists() => serde_json::from_slice(&std::fs::read(path)?)
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?,
            _ => PaperState { rng: settings.seed, ..PaperState::default() },
        };
        for venue in venues {
            state.venues.entry(venue.name.clone()).or_insert(venue);
        }
        Ok(Self { hub, catalog, clock, settings, path, state: Mutex::new(state) })
    }

    fn save(&self, state: &PaperState) -> Result<(), VenueError> {
        let Some(path) = &self.path else { return Ok(()) };
        let write = || -> std::io::Result<()> {
            let temporary = path.with_extension("json.tmp");
            let file = std::fs::File::create(&temporary)?;
            serde_json::to_writer(&file, state).map_err(std::io::Error::other)?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|error| VenueError::Unavailable(format!("paper venue state not saved: {error}")))
    }

    /// SplitMix64 over the state's seed: the misbehaviour is reproducible, and resumes after a restart.
    fn roll(state: &mut PaperState) -> u64 {
        state.rng = state.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 100
    }

    /// Executes an order whose latency has passed against its venue's fresh book now.
    fn execute(&self, state: &mut PaperState, id: &str, now_ms: i64) {
        let Some(order) = state.orders.get(id) else { return };
        if order.executed || now_ms < order.placed_at_ms + self.settings.latency_ms {
            return;
        }
        let order = order.clone();
        let (fills, reason) = self.match_book(state, &order);
        let entry = state.orders.get_mut(id).expect("present");
        entry.fills = fills;
        entry.reason = reason;
        entry.executed = true;
    }

    fn match_book(&self, state: &mut PaperState, paper: &PaperOrder) -> (Vec<VenueFill>, Option<String>) {
        let order = &paper.order;
        let Some(instrument) = self.catalog.instrument(&order.instrument) else {
            return (Vec::new(), Some("unknown instrument".into()));
        };
        let scale = |code: &AssetCode| self.catalog.asset(code).map_or(0, |asset| asset.scale);
        let now = self.clock.now();
        let book = self.hub.fresh_books(&order.instrument, now).into_iter().find(|book| book.venue == order.venue);
        let Some(book) = book else { return (Vec::new(), Some("no fresh book at the venue".into())) };
        let venue = state.venues.get_mut(&order.venue).expect("placed only at known venues");
        let levels = if order.side == Side::Buy { &book.asks } else { &book.bids };
        let mut fills = Vec::new();
        let mut remaining = order.quantity;
        for level in levels {
            let reachable = if order.side == Side::Buy {
                level.price <= order.limit_price
            } else {
                level.price >= order.limit_price
            };
            if remaining <= 0 || !reachable {
                break;
            }
            let mut quantity = remaining.min(level.quantity);
            quantity -= quantity.rem_euclid(instrument.quantity_step);
            let buying = order.side == Side::Buy;
            let cost = |quantity: i128| -> Option<(i128, i128)> {
                let amount = pricing::quote_amount(
                    level.price,
                    quantity,
                    instrument.price_scale,
                    scale(&instrument.base),
                    scale(&instrument.quote),
                    buying,
                )
                .ok()?;
                Some((amount, pricing::fee_amount(amount, venue.taker_fee_centi_bps).ok()?))
            };
            let (base, quote) = (instrument.base, instrument.quote);
            // The desk's balance at the venue caps the fill: halve until it fits (a paper venue, not a matcher).
            while quantity > 0 {
                let fits = cost(quantity).is_some_and(|(amount, fee)| {
                    let have = |asset| venue.balances.get(&asset).copied().unwrap_or(0);
                    if buying {
                        have(quote) >= amount + fee
                    } else {
                        have(base) >= quantity && amount > fee
                    }
                });
                if fits {
                    break;
                }
                quantity /= 2;
                quantity -= quantity.rem_euclid(instrument.quantity_step);
            }
            let Some((amount, fee)) = cost(quantity).filter(|_| quantity > 0) else { break };
            let sign = if buying { 1 } else { -1 };
            *venue.balances.entry(base).or_insert(0) += sign * quantity;
            *venue.balances.entry(quote).or_insert(0) -= sign * amount + fee;
            fills.push(VenueFill {
                fill_id: format!("{}-{}", paper.venue_order_id, fills.len() + 1),
                quantity,
                price: level.price,
                fee,
            });
            remaining -= quantity;
        }
        let reason = (remaining > 0).then(|| "immediate-or-cancel: the rest was cancelled".to_owned());
        (fills, reason)
    }

    fn trim(state: &mut PaperState) {
        while state.orders.len() > PAPER_ORDERS_MAX {
            let oldest = state
                .orders
                .iter()
                .filter(|(_, order)| order.executed)
                .min_by_key(|(_, order)| order.placed_at_ms)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => state.orders.remove(&key),
                None => return,
            };
        }
    }
}

impl VenueExecution for PaperVenues {
    fn accounts(&self) -> Vec<VenueAccount> {
        let state = self.state.lock();
        state
            .venues
            .values()
            .map(|venue| VenueAccount {
                venue: venue.name.clone(),
                taker_fee_centi_bps: venue.taker_fee_centi_bps,
                balances: venue.balances.clone(),
            })
            .collect()
    }

    fn place(&self, order: &VenueOrder) -> Result<VenueOrderStatus, VenueError> {
        let mut state = self.state.lock();
        let id = key(&order.venue, &order.client_order_id);
        if let Some(existing) = state.orders.get(&id) {
            return Ok(existing.status()); // Idempotent per client order id.
        }
        if !state.venues.contains_key(&order.venue) {
            return Err(VenueError::Rejected(format!("no paper venue {:?}", order.venue)));
        }
        if order.quantity <= 0 || order.limit_price <= 0 {
            return Err(VenueError::Rejected("quantity and price must be positive".into()));
        }
        let roll = Self::roll(&mut state);
        if roll < u64::from(self.settings.reject_percent) {
            self.save(&state)?;
            return Err(VenueError::Rejected("paper venue: simulated reject".into()));
        }
        let timed_out = roll < u64::from(self.settings.reject_percent) + u64::from(self.settings.timeout_percent);
        state.placed += 1;
        let now_ms = self.clock.now().0;
        let paper = PaperOrder {
            order: order.clone(),
            venue_order_id: format!("paper-{}", state.placed),
            placed_at_ms: now_ms,
            executed: false,
            fills: Vec::new(),
            reason: None,
        };
        state.orders.insert(id.clone(), paper);
        self.execute(&mut state, &id, now_ms);
        Self::trim(&mut state);
        let crash = self.settings.crash_after_send && !state.crashed;
        state.crashed |= crash;
        self.save(&state)?;
        if crash {
            tracing::error!("paper venue: crash_after_send, aborting after the order was taken");
            std::process::abort();
        }
        if timed_out {
            return Err(VenueError::Timeout);
        }
        Ok(state.orders[&id].status())
    }

    fn cancel(&self, venue: &str, client_order_id: &str) -> Result<VenueOrderStatus, VenueError> {
        let mut state = self.state.lock();
        let id = key(venue, client_order_id);
        let Some(order) = state.orders.get_mut(&id) else {
            return Err(VenueError::Rejected("unknown order".into()));
        };
        if !order.executed {
            order.executed = true;
            order.reason = Some("cancelled".into());
        }
        let status = order.status();
        self.save(&state)?;
        Ok(status)
    }

    fn status(&self, venue: &str, client_order_id: &str) -> Result<Option<VenueOrderStatus>, VenueError> {
        let mut state = self.state.lock();
        let id = key(venue, client_order_id);
        if !state.orders.contains_key(&id) {
            return Ok(None);
        }
        let was_executed = state.orders[&id].executed;
        self.execute(&mut state, &id, self.clock.now().0);
        if !was_executed && state.orders[&id].executed {
            self.save(&state)?;
        }
        Ok(Some(state.orders[&id].status()))
    }

    /// A transfer the desk booked arrives at (positive) or leaves (negative) the paper venue at once.
    fn book_transfer(&self, venue: &str, asset: AssetCode, amount: i128) {
        let mut state = self.state.lock();
        let Some(paper) = state.venues.get_mut(venue) else { return };
        let balance = paper.balances.entry(asset).or_insert(0);
        *balance = balance.saturating_add(amount);
        if let Err(error) = self.save(&state) {
            tracing::warn!(%error, "paper venue: a transfer was not saved");
        }
    }
}
