//! Simulated venues (`--market sim`, the default of `otcd serve` and `otcd demo`).
//!
//! # Model
//!
//! - **Factors.** Every asset has a value in US dollars (an integer count of `10^-18` USD per one whole unit).
//!   USD is the numeraire and fixed at 1; BTC, ETH, EUR, GBP, USDT and USDC follow independent random walks
//!   around their anchors (≈ 50,000, 3,000, 1.087, 1.265, 1.0001, 0.9999) with a gentle pull back to the anchor
//!   so a desk left running for days keeps sensible prices. An asset the model does not know gets a factor
//!   anchored at 1 USD. Each step moves each factor by the sum of two uniform integer draws in parts per billion
//!   (a triangular step), plus the pull; no floating point is involved.
//! - **Instruments.** The fair mid of `BASE-QUOTE` is `value(BASE) / value(QUOTE)`, rounded to the price scale,
//!   so crosses (BTC-EUR, ETH-BTC, BTC-USDT, ...) are consistent with the direct pairs by construction.
//! - **Venues.** `sim-alpha`, `sim-beta` and `sim-gamma` quote every instrument with their own spread multiplier
//!   (1×, 1.6×, 2.4× the pair's base spread of twice its per-step volatility, at least 0.2 bp), a small constant
//!   mid offset plus per-book jitter (fractions of the base spread, so venues never cross each other), their own
//!   depth (30, 25 and 20 levels per side) and size multiplier. Bids are rounded down and asks up to the price
//!   step.
//! - **Depth.** Level spacing grows with depth (`(4 + level) / 4` times a base spacing derived from the pair's
//!   volatility, and at least `1 + level / 10` price steps), so prices get worse faster the deeper you go; level
//!   sizes grow with depth too and are random multiples of a readable lot (a power of ten times the quantity step,
//!   about 1% of the top level's size: 0.01 BTC, 0.1 ETH, 1,000 EUR), never below the instrument's minimum.
//! - **Gaps.** Each level beyond the first has a 1-in-15 chance of sitting two spacings away from the previous one
//!   instead of one: a skipped level, as real books have.
//! - **Outages.** Each step, each publishing venue has a 1-in-2,500 chance (one every ~4 minutes per venue at the
//!   default 100 ms rate) of going silent for 3 to 8 seconds of `now` time: it publishes nothing for any
//!   instrument, so its last books go stale in the hub (default maximum age 2 s). At most one venue is down at a
//!   time, so (stepped at the default rate) every instrument always has at least two fresh venue books. Books of
//!   one step never cross across venues; a venue's last book before an outage may be crossed by the others'
//!   while it is still fresh, as on real venues.
//!
//! # Determinism
//!
//! [`SimulatedMarket::step`] is a pure function of the catalog, the seed and the sequence of `now` values it has
//! been called with: the RNG is ChaCha8 seeded from the seed, and nothing reads a clock or iterates a hash map.
//! The random walk advances once per step whatever the time between steps (so a faster interval makes prices
//! move faster in wall time); outage durations are measured in `now` milliseconds. [`MarketDataSource::spawn`]
//! drives `step` from a tokio interval with the wall clock, which is where determinism ends.

use crate::hub::MarketHub;
use crate::{now_ms, stop_requested, MarketDataSource};
use otcd_core::catalog::{AssetCode, Catalog, Instrument};
use otcd_core::decimal::{parse_scaled, power_of_ten};
use otcd_core::market::{Level, VenueBook};
use otcd_core::time::TimestampMs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// The source name of the simulation.
pub const SIM_SOURCE_NAME: &str = "sim";
/// The simulated venues, in the order their books are produced.
pub const SIM_VENUES: [&str; 3] = ["sim-alpha", "sim-beta", "sim-gamma"];
/// How often [`MarketDataSource::spawn`] steps the simulation unless configured otherwise.
pub const SIM_DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// Parts per billion: the unit of relative moves, offsets and spreads.
const PPB: i128 = 1_000_000_000;
/// Sub-units of a price unit used for a venue's mid and spread before rounding to the price step.
const FINE: i128 = 1_000_000;
/// Asset values are counts of `10^-VALUE_SCALE` USD per one whole unit.
const VALUE_SCALE: u8 = 18;
/// Per-book jitter of a venue's mid around its offset, in percent of the instrument's base spread.
const MID_JITTER_PERCENT: i64 = 10;
/// Smallest spread (whole, before the venue multiplier), in ppb.
const SPREAD_MIN_PPB: i128 = 20_000;
/// Smallest base level spacing, in ppb.
const SPACING_MIN_PPB: i128 = 5_000;
/// One level in this many (beyond the best) is skipped.
const GAP_ODDS: u32 = 15;
/// One step in this many, a publishing venue goes down (if no other venue is down).
const OUTAGE_ODDS: u32 = 2_500;
const OUTAGE_MS_MIN: i64 = 3_000;
const OUTAGE_MS_MAX: i64 = 8_000;

/// How one asset's USD value moves.
struct AssetSpec {
    code: &'static str,
    /// USD per one whole unit, as a decimal.
    anchor_usd: &'static str,
    /// Half-width of each of the two uniform draws making up a step, in ppb. 0 = fixed.
    volatility_ppb: i64,
    /// Steps over which a deviation from the anchor is pulled back (a time constant).
    reversion_steps: i128,
    /// USD notional of a top-of-book level when this asset is the base.
    top_level_usd: i128,
}

const KNOWN_ASSETS: [AssetSpec; 7] = [
    AssetSpec { code: "USD", anchor_usd: "1", volatility_ppb: 0, reversion_steps: 1, top_level_usd: 1_000_000 },
    AssetSpec {
        code: "BTC",
        anchor_usd: "50000",
        volatility_ppb: 60_000,
        reversion_steps: 36_000,
        top_level_usd: 50_000,
    },
    AssetSpec {
        code: "ETH",
        anchor_usd: "3000",
        volatility_ppb: 80_000,
        reversion_steps: 36_000,
        top_level_usd: 30_000,
    },
    AssetSpec {
        code: "EUR",
        anchor_usd: "1.087",
        volatility_ppb: 8_000,
        reversion_steps: 36_000,
        top_level_usd: 1_000_000,
    },
    AssetSpec {
        code: "GBP",
        anchor_usd: "1.265",
        volatility_ppb: 10_000,
        reversion_steps: 36_000,
        top_level_usd: 1_000_000,
    },
    AssetSpec {
        code: "USDT",
        anchor_usd: "1.0001",
        volatility_ppb: 1_500,
        reversion_steps: 3_000,
        top_level_usd: 250_000,
    },
    AssetSpec {
        code: "USDC",
        anchor_usd: "0.9999",
        volatility_ppb: 1_500,
        reversion_steps: 3_000,
        top_level_usd: 250_000,
    },
];

/// What an asset the model does not know gets.
const UNKNOWN_ASSET: AssetSpec =
    AssetSpec { code: "", anchor_usd: "1", volatility_ppb: 20_000, reversion_steps: 36_000, top_level_usd: 10_000 };

struct VenueProfile {
    /// Spread multiplier, in percent of the instrument's base spread.
    spread_percent: i128,
    /// Constant offset of the venue's mid from the fair mid, in percent of the instrument's base spread. Offsets
    /// and jitter are kept small enough against the half-spreads that one venue's bid never reaches another
    /// venue's ask: the largest difference (30 + 40 + 2 × 10 = 90%) is below the smallest pair of half-spreads
    /// (50% + 80%).
    offset_percent: i128,
    /// Levels per side.
    levels: usize,
    /// Size multiplier, in percent.
    size_percent: i128,
}

const VENUE_PROFILES: [VenueProfile; 3] = [
    VenueProfile { spread_percent: 100, offset_percent: 0, levels: 30, size_percent: 100 },
    VenueProfile { spread_percent: 160, offset_percent: 30, levels: 25, size_percent: 70 },
    VenueProfile { spread_percent: 240, offset_percent: -40, levels: 20, size_percent: 140 },
];

struct AssetModel {
    code: AssetCode,
    anchor: i128,
    value: i128,
    volatility_ppb: i64,
    reversion_steps: i128,
}

impl AssetModel {
    fn walk(&mut self, rng: &mut ChaCha8Rng) {
        if self.volatility_ppb == 0 {
            return;
        }
        let volatility = self.volatility_ppb;
        let noise = i128::from(rng.gen_range(-volatility..=volatility) + rng.gen_range(-volatility..=volatility));
        let pull = (self.anchor - self.value) * PPB / self.value / self.reversion_steps;
        let moved = self.value + self.value * (noise + pull) / PPB;
        self.value = moved.clamp(self.anchor / 4, self.anchor * 4);
    }
}

struct InstrumentModel {
    instrument: Instrument,
    base: usize,
    quote: usize,
    /// Whole spread before the venue multiplier, in ppb.
    spread_ppb: i128,
    /// Base level spacing, in ppb.
    spacing_ppb: i128,
    /// Top-of-book size before the venue multiplier, in base minor units.
    top_size: i128,
    /// Sizes are multiples of this (a multiple of the quantity step).
    lot: i128,
    /// Smallest level size (a multiple of `lot`, at least the instrument's minimum).
    size_floor: i128,
}

/// The seeded simulation of three venues for every catalog instrument. See the module documentation.
pub struct SimulatedMarket {
    rng: ChaCha8Rng,
    assets: Vec<AssetModel>,
    instruments: Vec<InstrumentModel>,
    /// Per venue of `SIM_VENUES`: down until this time.
    outage_until: [Option<TimestampMs>; 3],
    interval: Duration,
}

impl std::fmt::Debug for SimulatedMarket {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SimulatedMarket")
            .field("instruments", &self.instruments.len())
            .field("outage_until", &self.outage_until)
            .field("interval", &self.interval)
            .finish()
    }
}

impl SimulatedMarket {
    /// A simulation of every instrument of `catalog` whose base asset is in the catalog (all of the built-in
    /// ones), seeded with `seed`.
    pub fn new(catalog: &Catalog, seed: u64) -> Self {
        let mut assets: Vec<AssetModel> = Vec::new();
        let mut asset_index = |code: AssetCode| -> usize {
            if let Some(index) = assets.iter().position(|asset| asset.code == code) {
                return index;
            }
            let spec = spec_of(code);
            let anchor = parse_scaled(spec.anchor_usd, VALUE_SCALE).expect("asset anchors are valid decimals");
            assets.push(AssetModel {
                code,
                anchor,
                value: anchor,
                volatility_ppb: spec.volatility_ppb,
                reversion_steps: spec.reversion_steps,
            });
            assets.len() - 1
        };
        let mut instruments = Vec::new();
        for instrument in catalog.instruments() {
            let Some(base_scale) = catalog.asset(&instrument.base).map(|asset| asset.scale) else {
                tracing::warn!(instrument = %instrument.symbol, "base asset not in the catalog; not simulated");
                continue;
            };
            let base = asset_index(instrument.base);
            let quote = asset_index(instrument.quote);
            match instrument_model(instrument, base, quote, base_scale) {
                Some(model) => instruments.push(model),
                None => tracing::warn!(instrument = %instrument.symbol, "instrument out of the simulation's range"),
            }
        }
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            assets,
            instruments,
            outage_until: [None; 3],
            interval: SIM_DEFAULT_INTERVAL,
        }
    }

    /// Steps every `interval` when spawned (at least 1 ms).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The venues currently in an outage (publishing nothing).
    pub fn venues_down(&self) -> Vec<&'static str> {
        SIM_VENUES
            .iter()
            .zip(&self.outage_until)
            .filter(|(_, until)| until.is_some())
            .map(|(venue, _)| *venue)
            .collect()
    }

    /// Advances the simulation by one step at `now` and returns the books every venue that is up publishes, all
    /// as of `now`: instruments in catalog order, venues in `SIM_VENUES` order.
    pub fn step(&mut self, now: TimestampMs) -> Vec<VenueBook> {
        for asset in &mut self.assets {
            asset.walk(&mut self.rng);
        }
        self.update_outages(now);
        let mut books = Vec::with_capacity(self.instruments.len() * SIM_VENUES.len());
        for model in &self.instruments {
            let Some(fair) =
                fair_mid(&self.assets[model.base], &self.assets[model.quote], model.instrument.price_scale)
            else {
                continue;
            };
            for (venue, profile) in VENUE_PROFILES.iter().enumerate() {
                if self.outage_until[venue].is_some() {
                    continue;
                }
                if let Some(book) = venue_book(&mut self.rng, model, profile, SIM_VENUES[venue], fair, now) {
                    books.push(book);
                }
            }
        }
        books
    }

    fn update_outages(&mut self, now: TimestampMs) {
        for until in &mut self.outage_until {
            if until.is_some_and(|until| now >= until) {
                *until = None;
            }
        }
        for venue in 0..SIM_VENUES.len() {
            if self.outage_until[venue].is_some() {
                continue;
            }
            let another_is_down = self.outage_until.iter().any(Option::is_some);
            if self.rng.gen_range(0..OUTAGE_ODDS) == 0 && !another_is_down {
                let duration = self.rng.gen_range(OUTAGE_MS_MIN..=OUTAGE_MS_MAX);
                self.outage_until[venue] = Some(now.plus_ms(duration));
            }
        }
    }
}

fn spec_of(code: AssetCode) -> &'static AssetSpec {
    KNOWN_ASSETS.iter().find(|spec| spec.code == code.as_str()).unwrap_or(&UNKNOWN_ASSET)
}

fn instrument_model(instrument: &Instrument, base: usize, quote: usize, base_scale: u8) -> Option<InstrumentModel> {
    if instrument.price_step <= 0 || instrument.quantity_step <= 0 || base_scale > 38 {
        return None;
    }
    let base_spec = spec_of(instrument.base);
    let quote_spec = spec_of(instrument.quote);
    let volatility = i128::from(base_spec.volatility_ppb.max(quote_spec.volatility_ppb));
    // Top level size: its USD notional divided by the base asset's USD value, in base minor units. Computed with
    // the value at 10^-9 USD so that the products stay far inside i128.
    let anchor_nano_usd = parse_scaled(base_spec.anchor_usd, 9).ok()?;
    let top_size = base_spec.top_level_usd.checked_mul(PPB)?.checked_mul(power_of_ten(base_scale))? / anchor_nano_usd;
    let step = instrument.quantity_step;
    let mut lot = step;
    while lot.checked_mul(1_000).is_some_and(|bigger| bigger <= top_size) {
        lot *= 10;
    }
    let minimum = instrument.quantity_min.max(step);
    let size_floor = round_up(minimum, lot).max(lot);
    Some(InstrumentModel {
        instrument: instrument.clone(),
        base,
        quote,
        spread_ppb: (volatility * 2).max(SPREAD_MIN_PPB),
        spacing_ppb: (volatility / 2).max(SPACING_MIN_PPB),
        top_size: top_size.max(size_floor),
        lot,
        size_floor,
    })
}

/// `value(base) / value(quote)` in `10^-price_scale` units, rounded half up; `None` on overflow.
fn fair_mid(base: &AssetModel, quote: &AssetModel, price_scale: u8) -> Option<i128> {
    if price_scale > 38 {
        return None;
    }
    let numerator = base.value.checked_mul(power_of_ten(price_scale))?;
    let mid = numerator.checked_mul(2)?.checked_add(quote.value)? / quote.value.checked_mul(2)?;
    (mid > 0).then_some(mid)
}

fn round_down(value: i128, step: i128) -> i128 {
    value - value.rem_euclid(step)
}

fn round_up(value: i128, step: i128) -> i128 {
    let remainder = value.rem_euclid(step);
    if remainder == 0 {
        value
    } else {
        value - remainder + step
    }
}

fn venue_book(
    rng: &mut ChaCha8Rng,
    model: &InstrumentModel,
    profile: &VenueProfile,
    venue: &str,
    fair: i128,
    now: TimestampMs,
) -> Option<VenueBook> {
    let step = model.instrument.price_step;
    let jitter_percent = i128::from(rng.gen_range(-MID_JITTER_PERCENT..=MID_JITTER_PERCENT));
    let offset_ppb = model.spread_ppb * (profile.offset_percent + jitter_percent) / 100;
    // The venue's mid and half-spread in millionths of a price unit, so that truncation never eats a spread
    // smaller than the price step (the touch is then rounded outwards to the step).
    let fine_mid = fair.checked_mul(PPB + offset_ppb)? / (PPB / FINE);
    let fine_half_spread = fine_mid.checked_mul(model.spread_ppb * profile.spread_percent / 100)? / PPB / 2;
    let fine_step = step.checked_mul(FINE)?;
    let best_bid = (round_down(fine_mid - fine_half_spread, fine_step) / FINE).max(step);
    let mut best_ask = round_up(fine_mid + fine_half_spread, fine_step) / FINE;
    if best_ask <= best_bid {
        best_ask = best_bid + step;
    }
    let mid = fine_mid / FINE;
    let bids = ladder(rng, model, profile, mid, best_bid, -1);
    let asks = ladder(rng, model, profile, mid, best_ask, 1);
    let book =
        VenueBook { venue: venue.to_owned(), instrument: model.instrument.symbol.clone(), bids, asks, as_of: now };
    match book.validate() {
        Ok(()) => Some(book),
        Err(error) => {
            tracing::warn!(instrument = %book.instrument, venue, %error, "simulated book invalid; dropped");
            None
        }
    }
}

/// `profile.levels` levels from `best` outwards (`direction` -1 for bids, +1 for asks).
fn ladder(
    rng: &mut ChaCha8Rng,
    model: &InstrumentModel,
    profile: &VenueProfile,
    mid: i128,
    best: i128,
    direction: i128,
) -> Vec<Level> {
    let step = model.instrument.price_step;
    let mut levels = Vec::with_capacity(profile.levels);
    let mut price = best;
    for depth in 0..profile.levels {
        let depth_factor = depth as i128;
        if depth > 0 {
            let widening = mid.saturating_mul(model.spacing_ppb).saturating_mul(4 + depth_factor) / 4 / PPB;
            // At least one more price step every ten levels, so ladders that the step dominates widen too.
            let step_floor = step.saturating_mul(1 + depth_factor / 10);
            let mut spacing = round_up(widening, step).max(step_floor);
            if rng.gen_range(0..GAP_ODDS) == 0 {
                spacing = spacing.saturating_mul(2);
            }
            price = price.saturating_add(direction.saturating_mul(spacing));
            if price <= 0 || price == i128::MAX {
                break;
            }
        }
        let noise_percent = i128::from(rng.gen_range(50_u8..=150));
        let size = model
            .top_size
            .saturating_mul(profile.size_percent)
            .saturating_mul(100 + 20 * depth_factor)
            .saturating_mul(noise_percent)
            / 1_000_000;
        let quantity = round_down(size, model.lot).max(model.size_floor);
        levels.push(Level { price, quantity });
    }
    levels
}

impl MarketDataSource for SimulatedMarket {
    fn name(&self) -> &str {
        SIM_SOURCE_NAME
    }

    /// Steps the simulation every `interval` (missed ticks are skipped, not bunched) with the wall clock, made
    /// monotonic, as `now`, and publishes every book.
    fn spawn(mut self: Box<Self>, hub: Arc<MarketHub>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(self.interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut last = TimestampMs(i64::MIN);
            let mut refused: u64 = 0;
            tracing::info!(interval_ms = self.interval.as_millis() as u64, "simulated market started");
            loop {
                tokio::select! {
                    biased;
                    _ = stop_requested(&mut stop) => break,
                    _ = ticker.tick() => {}
                }
                let now = now_ms().max(last);
                last = now;
                // Instruments are published at evenly spread moments within the interval, as independent
                // real venues would, rather than all in one burst; each book is stamped when it is published.
                let groups = group_by_instrument(self.step(now));
                let slot = self.interval / groups.len().max(1) as u32;
                for (index, group) in groups.into_iter().enumerate() {
                    if index > 0 {
                        tokio::select! {
                            biased;
                            _ = stop_requested(&mut stop) => return,
                            () = tokio::time::sleep(slot) => {}
                        }
                    }
                    let published_at = now_ms().max(last);
                    last = published_at;
                    let group = group
                        .into_iter()
                        .map(|mut book| {
                            book.as_of = published_at;
                            book
                        })
                        .collect();
                    // One instrument's venue books of a step as one update: its subscribers wake once, to all of
                    // them.
                    for (_, error) in hub.publish_all(group) {
                        refused += 1;
                        if refused.is_power_of_two() {
                            tracing::warn!(%error, refused, "the hub refused a simulated book");
                        }
                    }
                }
            }
            tracing::info!("simulated market stopped");
        })
    }
}

/// Splits one step's books into per-instrument groups, keeping their order.
fn group_by_instrument(books: Vec<VenueBook>) -> Vec<Vec<VenueBook>> {
    let mut groups: Vec<Vec<VenueBook>> = Vec::new();
    for book in books {
        match groups.last_mut() {
            Some(group) if group[0].instrument == book.instrument => group.push(book),
            _ => groups.push(vec![book]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_helpers() {
        assert_eq!((round_down(105, 10), round_up(105, 10), round_up(110, 10)), (100, 110, 110));
        assert_eq!((round_down(-5, 10), round_up(-5, 10)), (-10, 0));
    }

    #[test]
    fn builtin_instruments_get_readable_lots() {
        let catalog = Catalog::builtin();
        let market = SimulatedMarket::new(&catalog, 1);
        assert_eq!(market.instruments.len(), catalog.instruments().len());
        let lot_of =
            |symbol: &str| market.instruments.iter().find(|model| model.instrument.symbol == symbol).unwrap().lot;
        // 1 BTC top level -> lots of 0.01 BTC; 10 ETH -> 0.1 ETH; ~920,000 EUR -> 1,000 EUR.
        assert_eq!(lot_of("BTC-USD"), 1_000_000);
        assert_eq!(lot_of("ETH-USD"), 100_000_000_000_000_000);
        assert_eq!(lot_of("EUR-USD"), 100_000);
        for model in &market.instruments {
            assert_eq!(model.lot % model.instrument.quantity_step, 0);
            assert!(model.size_floor >= model.instrument.quantity_min && model.size_floor % model.lot == 0);
        }
    }

    #[test]
    fn walk_stays_near_its_anchor() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let anchor = parse_scaled("50000", VALUE_SCALE).unwrap();
        let mut asset = AssetModel {
            code: AssetCode::parse("BTC").unwrap(),
            anchor,
            value: anchor,
            volatility_ppb: 60_000,
            reversion_steps: 36_000,
        };
        let mut moved = false;
        for _ in 0..200_000 {
            asset.walk(&mut rng);
            moved |= asset.value != anchor;
            assert!(asset.value > anchor * 8 / 10 && asset.value < anchor * 12 / 10, "{}", asset.value);
        }
        assert!(moved);
    }
}
