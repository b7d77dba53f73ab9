//! Market-abuse surveillance over the projection's events. Rules and thresholds (all configurable through
//! [`SurveillanceConfig`]; defaults below) are documented in docs/reports.md. Every rule is a deterministic
//! function of the journal's records and the configuration, so a rebuilt projection finds the same patterns with
//! the same dedup keys. Findings wait in a bounded outbox ([`Surveillance::alerts`]) until an adapter raises them
//! in the engine (`RaiseSurveillanceAlert`), where they become durable alerts worked as cases; the engine raises
//! each dedup key once, so finding a pattern again after a restart raises nothing new.
//!
//! * `surveillance_spoofing`: at a client's cancel of a resting order, within `window_ms` on one instrument:
//!   at least `spoof_min_cancelled` cancelled resting orders, a cancel ratio (cancelled / placed) of at least
//!   `spoof_cancel_ratio_permille`, cancelled quantity at least `spoof_cancelled_to_filled_ratio` × the quantity
//!   the client traded there, and an average time to cancel of at most `spoof_max_avg_time_to_cancel_ms`.
//! * `surveillance_layering`: a fill on one side, then, within `layering_cancel_within_ms`, the cancellation of
//!   at least `layering_min_orders` resting orders on the other side that were placed before the fill.
//! * `surveillance_wash_trade`: a buy and a sell of one client on one instrument within `wash_window_ms` whose
//!   quantities differ by at most `wash_quantity_tolerance_permille` of the larger; at most one alert per client and
//!   instrument per `window_ms`.
//! * `surveillance_front_running`: a trade whose USD notional is at least `front_run_size_multiple` × the
//!   client's average over its previous `front_run_baseline_trades` trades (at least `front_run_min_baseline`
//!   of them), followed within `front_run_horizon_ms` by a price on the instrument (a later trade or firm quote)
//!   at least `front_run_move_bps` in the client's favour.

use otcd_core::engine::alerts::{AlertKind, SurveillanceEvidence, SurveillanceFinding, SURVEILLANCE_IDS_MAX};
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use otcd_core::readable;
use otcd_core::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurveillanceConfig {
    pub enabled: bool,
    pub window_ms: i64,
    pub spoof_min_cancelled: usize,
    pub spoof_cancel_ratio_permille: u32,
    pub spoof_cancelled_to_filled_ratio: u32,
    pub spoof_max_avg_time_to_cancel_ms: i64,
    pub layering_min_orders: usize,
    pub layering_cancel_within_ms: i64,
    pub wash_window_ms: i64,
    pub wash_quantity_tolerance_permille: u32,
    pub front_run_baseline_trades: usize,
    pub front_run_min_baseline: usize,
    pub front_run_size_multiple: u32,
    pub front_run_horizon_ms: i64,
    pub front_run_move_bps: u32,
}

impl Default for SurveillanceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_ms: 600_000,
            spoof_min_cancelled: 5,
            spoof_cancel_ratio_permille: 800,
            spoof_cancelled_to_filled_ratio: 5,
            spoof_max_avg_time_to_cancel_ms: 30_000,
            layering_min_orders: 3,
            layering_cancel_within_ms: 60_000,
            wash_window_ms: 300_000,
            wash_quantity_tolerance_permille: 50,
            front_run_baseline_trades: 20,
            front_run_min_baseline: 5,
            front_run_size_multiple: 5,
            front_run_horizon_ms: 1_800_000,
            front_run_move_bps: 200,
        }
    }
}

/// A rule fired: the finding the adapter submits to the engine as `RaiseSurveillanceAlert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveillanceAlert {
    /// 1, 2, ... in the order the rules fired: the adapter's position in this outbox.
    pub number: u64,
    pub finding: SurveillanceFinding,
}

pub const SPOOFING: AlertKind = AlertKind::SurveillanceSpoofing;
pub const LAYERING: AlertKind = AlertKind::SurveillanceLayering;
pub const WASH_TRADE: AlertKind = AlertKind::SurveillanceWashTrade;
pub const FRONT_RUNNING: AlertKind = AlertKind::SurveillanceFrontRunning;

/// A pattern as a rule describes it.
struct Pattern {
    kind: AlertKind,
    /// The order or trade that completed the pattern: with the rule, client and instrument, the dedup key.
    anchor: String,
    at: i64,
    seq: u64,
    summary: String,
    trade_ids: Vec<String>,
    order_ids: Vec<String>,
    figures: Vec<(&'static str, i128)>,
    thresholds: Vec<(&'static str, i128)>,
}

/// Findings kept for the adapter to raise (oldest dropped beyond this: the adapter then logs how many it missed).
pub const ALERTS_MAX: usize = 100_000;
/// Pending front-running candidates kept per instrument.
const PENDING_MAX: usize = 10_000;

type Key = (ClientId, String);

#[derive(Debug, Clone)]
struct OrderInfo {
    key: Key,
    side: Side,
    quantity: i128,
    placed_at: i64,
    cancelled_at: Option<i64>,
}

#[derive(Debug, Clone)]
struct TradeEvent {
    number: u64,
    side: Side,
    quantity: i128,
    at: i64,
    paired: bool,
    layering_alerted: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    client_id: ClientId,
    number: u64,
    side: Side,
    price: i128,
    at: i64,
    notional_usd: i128,
    average_usd: i128,
}

/// One trade as surveillance sees it.
#[derive(Debug, Clone)]
pub struct TradeFact<'a> {
    pub number: u64,
    pub client_id: &'a ClientId,
    pub instrument: &'a str,
    pub side: Side,
    pub price: i128,
    pub quantity: i128,
    pub notional_usd: Option<i128>,
    pub at: i64,
    pub seq: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Surveillance {
    config: SurveillanceConfig,
    orders: HashMap<String, OrderInfo>,
    orders_by_key: HashMap<Key, VecDeque<String>>,
    trades_by_key: HashMap<Key, VecDeque<TradeEvent>>,
    baselines: HashMap<ClientId, VecDeque<i128>>,
    pending: HashMap<String, VecDeque<Pending>>,
    last_alert: HashMap<(AlertKind, Key), i64>,
    alerts: VecDeque<SurveillanceAlert>,
    raised: u64,
    /// How to write an instrument's quantities and prices for people in a summary (the figures stay integers).
    units: HashMap<String, InstrumentUnits>,
}

/// An instrument's units, learnt from the catalog by the projection ([`Surveillance::instrument_units`]).
#[derive(Debug, Clone)]
pub struct InstrumentUnits {
    pub base: String,
    pub base_scale: u8,
    pub quote: String,
    pub price_scale: u8,
}

fn trade_id(number: u64) -> String {
    format!("t_{number:012}")
}

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

impl Surveillance {
    pub fn new(config: SurveillanceConfig) -> Self {
        Self { config, ..Self::default() }
    }

    pub fn config(&self) -> &SurveillanceConfig {
        &self.config
    }

    /// Findings waiting in the outbox (the newest `ALERTS_MAX`), oldest first.
    pub fn alerts(&self) -> impl DoubleEndedIterator<Item = &SurveillanceAlert> {
        self.alerts.iter()
    }

    /// How many findings the rules have made since the projection started.
    pub fn raised(&self) -> u64 {
        self.raised
    }

    /// At most `limit` findings numbered after `number`, oldest first (the outbox an adapter drains).
    pub fn findings_after(&self, number: u64, limit: usize) -> Vec<SurveillanceAlert> {
        let start = self.alerts.partition_point(|alert| alert.number <= number);
        self.alerts.range(start..).take(limit).cloned().collect()
    }

    /// Tells the rules how `instrument` writes its quantities and prices, for the summaries people read.
    pub fn instrument_units(&mut self, instrument: &str, units: InstrumentUnits) {
        self.units.insert(instrument.to_owned(), units);
    }

    /// Whether [`Surveillance::instrument_units`] was told about `instrument` (catalogs never change an
    /// instrument's scales, so once is enough).
    pub fn has_instrument_units(&self, instrument: &str) -> bool {
        self.units.contains_key(instrument)
    }

    /// `"0.5 BTC"`, exact; minor units, said so, for an instrument not (yet) learnt.
    fn quantity_text(&self, instrument: &str, quantity: i128) -> String {
        match self.units.get(instrument) {
            Some(units) => format!("{} {}", readable::amount(quantity, units.base_scale), units.base),
            None => format!("{quantity} (base minor units)"),
        }
    }

    /// `"65,000.5 USD"`, exact; minor units, said so, for an instrument not (yet) learnt.
    fn price_text(&self, instrument: &str, price: i128) -> String {
        match self.units.get(instrument) {
            Some(units) => format!("{} {}", readable::amount(price, units.price_scale), units.quote),
            None => format!("{price} (price minor units)"),
        }
    }

    fn raise(&mut self, key: &Key, pattern: Pattern) {
        self.raised += 1;
        self.last_alert.insert((pattern.kind, key.clone()), pattern.at);
        if self.alerts.len() >= ALERTS_MAX {
            self.alerts.pop_front();
        }
        let kind_name = kind_text(pattern.kind);
        let named =
            |values: Vec<(&'static str, i128)>| values.into_iter().map(|(name, value)| (name.to_owned(), value));
        let evidence = SurveillanceEvidence {
            instrument: key.1.clone(),
            dedup_key: format!("{kind_name}/{}/{}/{}", key.0, key.1, pattern.anchor),
            observed_at: TimestampMs(pattern.at),
            observed_seq: pattern.seq,
            trade_ids: bounded(pattern.trade_ids),
            order_ids: bounded(pattern.order_ids),
            figures: named(pattern.figures).collect(),
            thresholds: named(pattern.thresholds).collect(),
        };
        let finding =
            SurveillanceFinding { kind: pattern.kind, client_id: key.0.clone(), summary: pattern.summary, evidence };
        self.alerts.push_back(SurveillanceAlert { number: self.raised, finding });
    }

    fn cooling_down(&self, kind: AlertKind, key: &Key, at: i64) -> bool {
        self.last_alert.get(&(kind, key.clone())).is_some_and(|last| at - last < self.config.window_ms)
    }

    fn prune(&mut self, key: &Key, at: i64) {
        let horizon = self.config.window_ms.max(self.config.wash_window_ms);
        if let Some(ids) = self.orders_by_key.get_mut(key) {
            while let Some(front) = ids.front() {
                let old = self.orders.get(front).is_none_or(|order| order.placed_at < at - horizon);
                if !old {
                    break;
                }
                let id = ids.pop_front().expect("front exists");
                self.orders.remove(&id);
            }
        }
        if let Some(trades) = self.trades_by_key.get_mut(key) {
            while trades.front().is_some_and(|trade| trade.at < at - horizon) {
                trades.pop_front();
            }
        }
    }

    /// A resting order was placed (it may have filled in part at once; fills arrive as trades).
    pub fn order_placed(
        &mut self,
        order_id: &str,
        client_id: &ClientId,
        instrument: &str,
        side: Side,
        quantity: i128,
        at: i64,
    ) {
        if !self.config.enabled {
            return;
        }
        let key = (client_id.clone(), instrument.to_owned());
        self.prune(&key, at);
        self.orders.insert(
            order_id.to_owned(),
            OrderInfo { key: key.clone(), side, quantity, placed_at: at, cancelled_at: None },
        );
        self.orders_by_key.entry(key).or_default().push_back(order_id.to_owned());
    }

    /// The client cancelled a resting order (desk cancellations and expiries are not the client's act).
    pub fn order_cancelled(&mut self, order_id: &str, unfilled: i128, at: i64, seq: u64) {
        if !self.config.enabled {
            return;
        }
        let Some(order) = self.orders.get_mut(order_id) else { return };
        if order.cancelled_at.is_some() {
            return;
        }
        order.cancelled_at = Some(at);
        order.quantity = unfilled;
        let key = order.key.clone();
        let cancelled_side = order.side;
        self.prune(&key, at);
        self.check_spoofing(&key, order_id, at, seq);
        self.check_layering(&key, cancelled_side, at, seq);
    }

    fn check_spoofing(&mut self, key: &Key, trigger: &str, at: i64, seq: u64) {
        let config = self.config.clone();
        let since = at - config.window_ms;
        let Some(ids) = self.orders_by_key.get(key) else { return };
        let (mut placed, mut cancelled, mut cancelled_quantity, mut time_to_cancel) = (0usize, 0usize, 0i128, 0i64);
        let mut cancelled_ids = Vec::new();
        for id in ids {
            let Some(order) = self.orders.get(id) else { continue };
            if order.placed_at < since {
                continue;
            }
            placed += 1;
            if let Some(cancelled_at) = order.cancelled_at {
                cancelled += 1;
                cancelled_quantity += order.quantity;
                time_to_cancel += cancelled_at - order.placed_at;
                cancelled_ids.push(id.clone());
            }
        }
        let filled: i128 = self
            .trades_by_key
            .get(key)
            .map_or(0, |trades| trades.iter().filter(|trade| trade.at >= since).map(|trade| trade.quantity).sum());
        let average_time_to_cancel = if cancelled == 0 { i64::MAX } else { time_to_cancel / cancelled as i64 };
        let fires = cancelled >= config.spoof_min_cancelled
            && cancelled as u64 * 1_000 >= placed as u64 * u64::from(config.spoof_cancel_ratio_permille)
            && cancelled_quantity >= filled.saturating_mul(i128::from(config.spoof_cancelled_to_filled_ratio))
            && average_time_to_cancel <= config.spoof_max_avg_time_to_cancel_ms;
        if !fires || self.cooling_down(SPOOFING, key, at) {
            return;
        }
        let summary = format!(
            "{cancelled} of {placed} resting orders on {} cancelled within {} (cancel ratio {}‰), cancelled quantity \
             {} vs filled {}, average time to cancel {}",
            key.1,
            readable::duration_ms(config.window_ms),
            cancelled * 1_000 / placed.max(1),
            self.quantity_text(&key.1, cancelled_quantity),
            self.quantity_text(&key.1, filled),
            readable::elapsed_ms(average_time_to_cancel),
        );
        let pattern = Pattern {
            kind: SPOOFING,
            anchor: trigger.to_owned(),
            at,
            seq,
            summary,
            trade_ids: Vec::new(),
            order_ids: cancelled_ids,
            figures: vec![
                ("placed_orders", placed as i128),
                ("cancelled_orders", cancelled as i128),
                ("cancel_ratio_permille", (cancelled * 1_000 / placed.max(1)) as i128),
                ("cancelled_quantity_minor_units", cancelled_quantity),
                ("filled_quantity_minor_units", filled),
                ("average_time_to_cancel_ms", i128::from(average_time_to_cancel)),
            ],
            thresholds: vec![
                ("window_ms", i128::from(config.window_ms)),
                ("spoof_min_cancelled", config.spoof_min_cancelled as i128),
                ("spoof_cancel_ratio_permille", i128::from(config.spoof_cancel_ratio_permille)),
                ("spoof_cancelled_to_filled_ratio", i128::from(config.spoof_cancelled_to_filled_ratio)),
                ("spoof_max_avg_time_to_cancel_ms", i128::from(config.spoof_max_avg_time_to_cancel_ms)),
            ],
        };
        self.raise(key, pattern);
    }

    fn check_layering(&mut self, key: &Key, cancelled_side: Side, at: i64, seq: u64) {
        let config = self.config.clone();
        let Some(trades) = self.trades_by_key.get(key) else { return };
        // The client's latest fill on the other side, recent enough.
        let Some(fill) = trades
            .iter()
            .rev()
            .find(|trade| trade.side != cancelled_side && at - trade.at <= config.layering_cancel_within_ms)
            .cloned()
        else {
            return;
        };
        if fill.layering_alerted {
            return;
        }
        let Some(ids) = self.orders_by_key.get(key) else { return };
        let layers: Vec<String> = ids
            .iter()
            .filter(|id| {
                self.orders.get(*id).is_some_and(|order| {
                    order.side == cancelled_side
                        && order.placed_at <= fill.at
                        && order.placed_at >= fill.at - config.window_ms
                        && order.cancelled_at.is_some_and(|cancelled| {
                            cancelled >= fill.at && cancelled - fill.at <= config.layering_cancel_within_ms
                        })
                })
            })
            .cloned()
            .collect();
        if layers.len() < config.layering_min_orders {
            return;
        }
        if let Some(trades) = self.trades_by_key.get_mut(key) {
            if let Some(event) = trades.iter_mut().find(|trade| trade.number == fill.number) {
                event.layering_alerted = true;
            }
        }
        let summary = format!(
            "{} resting {} orders on {} placed before the {} fill {} and cancelled within {} after it",
            layers.len(),
            side_text(cancelled_side),
            key.1,
            side_text(fill.side),
            trade_id(fill.number),
            readable::duration_ms(config.layering_cancel_within_ms),
        );
        let pattern = Pattern {
            kind: LAYERING,
            anchor: trade_id(fill.number),
            at,
            seq,
            summary,
            trade_ids: vec![trade_id(fill.number)],
            figures: vec![("layered_orders", layers.len() as i128), ("fill_quantity_minor_units", fill.quantity)],
            order_ids: layers,
            thresholds: vec![
                ("window_ms", i128::from(config.window_ms)),
                ("layering_min_orders", config.layering_min_orders as i128),
                ("layering_cancel_within_ms", i128::from(config.layering_cancel_within_ms)),
            ],
        };
        self.raise(key, pattern);
    }

    /// A trade: wash/round-trip and front-running candidates, then the trade as a price observation.
    pub fn trade(&mut self, fact: &TradeFact<'_>) {
        if !self.config.enabled {
            return;
        }
        let key = (fact.client_id.clone(), fact.instrument.to_owned());
        self.prune(&key, fact.at);
        let paired = self.check_wash(&key, fact);
        self.trades_by_key.entry(key).or_default().push_back(TradeEvent {
            number: fact.number,
            side: fact.side,
            quantity: fact.quantity,
            at: fact.at,
            paired,
            layering_alerted: false,
        });
        self.price(fact.instrument, fact.price, fact.at, fact.seq);
        self.check_size(fact);
    }

    /// Pairs the trade with an earlier unpaired opposite trade of similar size; true when it did.
    fn check_wash(&mut self, key: &Key, fact: &TradeFact<'_>) -> bool {
        let config = self.config.clone();
        let Some(trades) = self.trades_by_key.get_mut(key) else { return false };
        let tolerance = i128::from(config.wash_quantity_tolerance_permille);
        let Some(other) = trades.iter_mut().rev().find(|trade| {
            !trade.paired
                && trade.side != fact.side
                && fact.at - trade.at <= config.wash_window_ms
                && (trade.quantity - fact.quantity).abs().saturating_mul(1_000)
                    <= trade.quantity.max(fact.quantity).saturating_mul(tolerance)
        }) else {
            return false;
        };
        other.paired = true;
        let (first, first_side, first_quantity, first_at) = (other.number, other.side, other.quantity, other.at);
        // One alert per client and instrument per window, as for spoofing: a client trading round trips all day
        // would otherwise raise one alert per pair (thousands a minute), burying the case in duplicates and
        // putting a burst of alert commands in front of every trade.
        if self.cooling_down(WASH_TRADE, key, fact.at) {
            return true;
        }
        let summary = format!(
            "{} {} of {} then {} {} of {} on {} within {} (quantities within {}‰)",
            side_text(first_side),
            trade_id(first),
            self.quantity_text(&key.1, first_quantity),
            side_text(fact.side),
            trade_id(fact.number),
            self.quantity_text(&key.1, fact.quantity),
            key.1,
            readable::elapsed_ms(fact.at - first_at),
            config.wash_quantity_tolerance_permille,
        );
        let pattern = Pattern {
            kind: WASH_TRADE,
            anchor: format!("{}+{}", trade_id(first), trade_id(fact.number)),
            at: fact.at,
            seq: fact.seq,
            summary,
            trade_ids: vec![trade_id(first), trade_id(fact.number)],
            order_ids: Vec::new(),
            figures: vec![
                ("first_quantity_minor_units", first_quantity),
                ("second_quantity_minor_units", fact.quantity),
                ("interval_ms", i128::from(fact.at - first_at)),
            ],
            thresholds: vec![
                ("wash_window_ms", i128::from(config.wash_window_ms)),
                ("wash_quantity_tolerance_permille", i128::from(config.wash_quantity_tolerance_permille)),
            ],
        };
        self.raise(key, pattern);
        true
    }

    fn check_size(&mut self, fact: &TradeFact<'_>) {
        let Some(notional) = fact.notional_usd else { return };
        let config = self.config.clone();
        let baseline = self.baselines.entry(fact.client_id.clone()).or_default();
        if baseline.len() >= config.front_run_min_baseline.max(1) {
            let sum: i128 = baseline.iter().sum();
            let count = baseline.len() as i128;
            if notional.saturating_mul(count) >= sum.saturating_mul(i128::from(config.front_run_size_multiple)) {
                let pending = self.pending.entry(fact.instrument.to_owned()).or_default();
                if pending.len() >= PENDING_MAX {
                    pending.pop_front();
                }
                pending.push_back(Pending {
                    client_id: fact.client_id.clone(),
                    number: fact.number,
                    side: fact.side,
                    price: fact.price,
                    at: fact.at,
                    notional_usd: notional,
                    average_usd: sum / count,
                });
            }
        }
        let baseline = self.baselines.entry(fact.client_id.clone()).or_default();
        baseline.push_back(notional);
        while baseline.len() > config.front_run_baseline_trades.max(1) {
            baseline.pop_front();
        }
    }

    /// A price observed on an instrument (a trade, or a firm quote's price).
    pub fn price(&mut self, instrument: &str, price: i128, at: i64, seq: u64) {
        if !self.config.enabled {
            return;
        }
        let config = self.config.clone();
        let Some(pending) = self.pending.get_mut(instrument) else { return };
        while pending.front().is_some_and(|candidate| at - candidate.at > config.front_run_horizon_ms) {
            pending.pop_front();
        }
        let step = i128::from(config.front_run_move_bps);
        let mut fired = Vec::new();
        pending.retain(|candidate| {
            if candidate.at >= at {
                return true;
            }
            let favourable = match candidate.side {
                Side::Buy => price.saturating_mul(10_000) >= candidate.price.saturating_mul(10_000 + step),
                Side::Sell => price.saturating_mul(10_000) <= candidate.price.saturating_mul(10_000 - step),
            };
            if favourable {
                fired.push(candidate.clone());
            }
            !favourable
        });
        for candidate in fired {
            let key = (candidate.client_id.clone(), instrument.to_owned());
            let summary = format!(
                "{} {} on {} at price {} worth {}, {}× the client's average of {}; {} later the price was {} \
                 (≥ {} bps in the client's favour)",
                side_text(candidate.side),
                trade_id(candidate.number),
                instrument,
                self.price_text(instrument, candidate.price),
                readable::usd_cents(candidate.notional_usd),
                candidate.notional_usd / candidate.average_usd.max(1),
                readable::usd_cents(candidate.average_usd),
                readable::elapsed_ms(at - candidate.at),
                self.price_text(instrument, price),
                config.front_run_move_bps,
            );
            let pattern = Pattern {
                kind: FRONT_RUNNING,
                anchor: trade_id(candidate.number),
                at,
                seq,
                summary,
                trade_ids: vec![trade_id(candidate.number)],
                order_ids: Vec::new(),
                figures: vec![
                    ("trade_price_minor_units", candidate.price),
                    ("later_price_minor_units", price),
                    ("notional_usd_cents", candidate.notional_usd),
                    ("baseline_average_usd_cents", candidate.average_usd),
                    ("elapsed_ms", i128::from(at - candidate.at)),
                ],
                thresholds: vec![
                    ("front_run_size_multiple", i128::from(config.front_run_size_multiple)),
                    ("front_run_baseline_trades", config.front_run_baseline_trades as i128),
                    ("front_run_min_baseline", config.front_run_min_baseline as i128),
                    ("front_run_horizon_ms", i128::from(config.front_run_horizon_ms)),
                    ("front_run_move_bps", i128::from(config.front_run_move_bps)),
                ],
            };
            self.raise(&key, pattern);
        }
    }
}

/// Kinds raised by the rules, for documentation and filters.
pub fn kinds() -> HashSet<AlertKind> {
    [SPOOFING, LAYERING, WASH_TRADE, FRONT_RUNNING].into_iter().collect()
}

/// The kind as the API and the journal spell it (`surveillance_wash_trade`, ...).
pub fn kind_text(kind: AlertKind) -> String {
    serde_json::to_value(kind).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Evidence lists stay within what the engine accepts; the summary and figures still give the full counts.
fn bounded(mut ids: Vec<String>) -> Vec<String> {
    ids.truncate(SURVEILLANCE_IDS_MAX);
    ids
}
