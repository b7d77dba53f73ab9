//! Inventory hedging: per-asset policies, the hedges the engine opens when a desk position leaves its band, their
//! child orders at venues, and each venue fill booked on the ledger.
//!
//! The engine decides; adapters execute. `EvaluateHedge` carries the venues' books, taker fees and balances
//! (what the hedge worker saw) and the engine, deterministically: checks the policy, the kill switch and halts,
//! the minimum interval and the band; sizes the hedge (back to the target or to the band's edge); routes it
//! (`market::routing`); and records the child orders with client order ids derived from the hedge id
//! (`hg_0000000001-1-0`: hedge, attempt, index). The worker sends them and reports back through `HedgeReport`
//! (acknowledged, fill, closed, rejected, timed out), each a journaled command.
//!
//! Lifecycle: `open` → `partially_filled` → `filled`, or `failed` when the attempts are spent with quantity left
//! (an alert is raised). When every child of an attempt is done short of the quantity, the next `EvaluateHedge`
//! routes the remainder as a new attempt. A fill is booked whatever the child's state (a fill that arrives while
//! a cancel is in flight, or after a timeout, is real), once per venue fill id.
//!
//! Ledger, one transaction per venue fill (a desk buy of `q` base at quote amount `a`, venue fee `f`):
//! venue account (base) `−q`, inventory (base) `+q`; venue account (quote) `+(a + f)`, inventory (quote) `−a`,
//! venue fees (quote) `−f`. A sell mirrors it. Venue accounts are `Owner::Venue(name)` / `Purpose::Venue`:
//! negative when the desk holds value there, like custody.

use super::alerts::AlertKind;
use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::{AssetCode, Instrument};
use crate::ledger::{AccountKey, Owner, Posting, Purpose, TransactionKind};
use crate::market::routing::{self, RouteRequest, VenueTerms};
use crate::market::{Side, VenueBook, VENUES_MAX};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Hedges kept (active ones always; the oldest finished ones are dropped past this).
pub const HEDGES_KEPT_MAX: usize = 10_000;
/// Instruments and venues one policy may allow.
pub const POLICY_INSTRUMENTS_MAX: usize = 8;
pub const POLICY_VENUES_MAX: usize = VENUES_MAX;
/// Attempts (the first routing and its retries) a policy may allow.
pub const ATTEMPTS_MAX: u32 = 10;
/// Fills one child order may record (their ids make a repeated report a no-op).
pub const CHILD_FILLS_MAX: usize = 1_000;
/// Longest text from a venue (order id, fill id, reason) the engine keeps.
pub const VENUE_TEXT_BYTES_MAX: usize = 200;
/// Children across all attempts of one hedge.
pub const HEDGE_CHILDREN_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HedgeTo {
    /// Back to the target position.
    Target,
    /// Back to the nearer edge of the band (trades less, hedges more often).
    BandEdge,
}

/// How the desk hedges one asset. Quantities in the asset's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HedgingPolicy {
    pub asset: AssetCode,
    pub enabled: bool,
    pub target: i128,
    /// Hedge when the position leaves `target ± band`; ≥ 0.
    pub band: i128,
    pub hedge_to: HedgeTo,
    /// Instruments (base = the asset) hedges may trade, in preference order.
    pub instruments: Vec<String>,
    pub venues: Vec<String>,
    /// Largest child order, base minor units.
    pub order_quantity_max: i128,
    /// Worst price a hedge may reach, against the best price when it opened (hundredths of a bps).
    pub slippage_centi_bps_max: i128,
    /// Least time between two hedges of the asset opening.
    pub interval_ms_min: i64,
    /// Routings a hedge may make (1 = no retry).
    pub attempts_max: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HedgeState {
    Open,
    PartiallyFilled,
    Filled,
    Failed,
}

impl HedgeState {
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::PartiallyFilled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Decided; the worker has not had an answer yet.
    Pending,
    Acknowledged,
    PartiallyFilled,
    Filled,
    /// The venue closed it (cancelled, expired, immediate-or-cancel remainder, or unknown at the venue).
    Closed,
    Rejected,
    /// No answer in time: the worker asks the venue by client order id before anything else.
    TimedOut,
}

impl ChildState {
    /// No more fills are expected (a late one is still booked).
    pub fn is_done(self) -> bool {
        matches!(self, Self::Filled | Self::Closed | Self::Rejected)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildOrder {
    /// `<hedge id>-<attempt>-<index>`: the venue's idempotency key.
    pub client_order_id: String,
    pub venue: String,
    pub quantity: i128,
    pub limit_price: i128,
    pub state: ChildState,
    pub filled: i128,
    /// Σ quote amounts of its fills and Σ venue fees (quote minor units).
    pub quote_amount: i128,
    pub fee: i128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub fill_ids: Vec<String>,
    /// The venue did not answer it in time at least once (it may have filled since).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hedge {
    pub hedge_id: String,
    pub asset: AssetCode,
    pub instrument: String,
    /// The desk's side at the venues.
    pub side: Side,
    pub position_at_open: i128,
    /// Base minor units the hedge is to trade.
    pub quantity: i128,
    pub filled: i128,
    pub quote_amount: i128,
    pub fee: i128,
    pub arrival_price: i128,
    pub limit_price: i128,
    pub state: HedgeState,
    pub attempts: u32,
    pub children: Vec<ChildOrder>,
    pub opened_at: TimestampMs,
    pub updated_at: TimestampMs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<TimestampMs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Hedge {
    pub fn remaining(&self) -> i128 {
        (self.quantity - self.filled).max(0)
    }

    /// The quantity of children that may still fill (not done), base minor units.
    fn in_flight(&self) -> i128 {
        self.children.iter().filter(|child| !child.state.is_done()).map(|child| child.quantity - child.filled).sum()
    }

    fn child_mut(&mut self, client_order_id: &str) -> Option<&mut ChildOrder> {
        self.children.iter_mut().find(|child| child.client_order_id == client_order_id)
    }
}

/// What the hedge worker saw when it asked the engine to evaluate an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HedgeInputs {
    pub asset: AssetCode,
    /// One of the policy's instruments.
    pub instrument: String,
    /// Fresh books of the instrument at the policy's venues (the side the hedge takes is enough).
    pub books: Vec<VenueBook>,
    pub venues: Vec<VenueTerms>,
}

/// A venue's answer about one child order.
///
/// Journaled as `{"type": "fill", ...}`, but decoded through [`VenueReportWire`]: serde buffers an internally
/// tagged enum's fields before it knows the variant, and its buffer cannot hold an i128, so a derived
/// `Deserialize` refuses every fill (and recovery with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", try_from = "VenueReportWire")]
pub enum VenueReport {
    Acknowledged {
        venue_order_id: String,
    },
    /// One execution: base minor units at a price (instrument units), the venue's fee in quote minor units.
    Fill {
        fill_id: String,
        quantity: i128,
        price: i128,
        fee: i128,
    },
    /// The venue will fill no more of it (cancelled, expired, the rest of an immediate-or-cancel order, or not
    /// known to the venue after a timeout).
    Closed {
        reason: String,
    },
    Rejected {
        reason: String,
    },
    /// No answer in time; the worker asks the venue's status by client order id next.
    TimedOut,
}

/// [`VenueReport`] as journaled: the tag and every variant's fields in one plain struct, which serde decodes
/// without buffering (so i128 amounts decode).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueReportWire {
    #[serde(rename = "type")]
    kind: VenueReportKind,
    venue_order_id: Option<String>,
    fill_id: Option<String>,
    quantity: Option<i128>,
    price: Option<i128>,
    fee: Option<i128>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum VenueReportKind {
    Acknowledged,
    Fill,
    Closed,
    Rejected,
    TimedOut,
}

impl TryFrom<VenueReportWire> for VenueReport {
    type Error = String;

    fn try_from(wire: VenueReportWire) -> Result<Self, String> {
        let missing = |field: &str| format!("a venue report of this type needs `{field}`");
        Ok(match wire.kind {
            VenueReportKind::Acknowledged => VenueReport::Acknowledged {
                venue_order_id: wire.venue_order_id.ok_or_else(|| missing("venue_order_id"))?,
            },
            VenueReportKind::Fill => VenueReport::Fill {
                fill_id: wire.fill_id.ok_or_else(|| missing("fill_id"))?,
                quantity: wire.quantity.ok_or_else(|| missing("quantity"))?,
                price: wire.price.ok_or_else(|| missing("price"))?,
                fee: wire.fee.ok_or_else(|| missing("fee"))?,
            },
            VenueReportKind::Closed => VenueReport::Closed { reason: wire.reason.ok_or_else(|| missing("reason"))? },
            VenueReportKind::Rejected => {
                VenueReport::Rejected { reason: wire.reason.ok_or_else(|| missing("reason"))? }
            }
            VenueReportKind::TimedOut => VenueReport::TimedOut,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HedgeReport {
    pub client_order_id: String,
    pub report: VenueReport,
}

/// The hedging state of the desk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HedgeBook {
    policies: BTreeMap<AssetCode, HedgingPolicy>,
    /// Oldest first; numbered from 1 (`hedges_opened` is the newest's number).
    hedges: VecDeque<Hedge>,
    hedges_opened: u64,
    last_opened_at: BTreeMap<AssetCode, TimestampMs>,
    /// The active hedge of each asset (its number), so no command scans the kept hedges to find it.
    #[serde(default)]
    active: BTreeMap<AssetCode, u64>,
}

impl HedgeBook {
    pub fn policies(&self) -> impl Iterator<Item = &HedgingPolicy> {
        self.policies.values()
    }

    pub fn policy(&self, asset: AssetCode) -> Option<&HedgingPolicy> {
        self.policies.get(&asset)
    }

    /// Hedges oldest first (bounded: the oldest finished ones are dropped).
    pub fn hedges(&self) -> impl DoubleEndedIterator<Item = &Hedge> {
        self.hedges.iter()
    }

    pub fn active(&self, asset: AssetCode) -> Option<&Hedge> {
        let hedge = self.position_of(*self.active.get(&asset)?).map(|position| &self.hedges[position]);
        debug_assert!(hedge.is_some_and(|hedge| hedge.state.is_active()), "the index names active hedges only");
        hedge
    }

    /// Every active hedge (at most one per asset).
    pub fn active_hedges(&self) -> impl Iterator<Item = &Hedge> {
        self.active.values().filter_map(|number| self.position_of(*number).map(|position| &self.hedges[position]))
    }

    /// Stores a changed hedge back, keeping the active index.
    fn store(&mut self, position: usize, hedge: Hedge) {
        if !hedge.state.is_active() {
            self.active.remove(&hedge.asset);
        }
        self.hedges[position] = hedge;
    }

    fn position_of(&self, number: u64) -> Option<usize> {
        let oldest = self.hedges.front()?;
        let first = hedge_number(&oldest.hedge_id)?;
        // Finished hedges may be dropped from the middle: search from the number's earliest possible place.
        let start = usize::try_from(number.checked_sub(first)?).ok()?.min(self.hedges.len().saturating_sub(1));
        (0..=start).rev().find(|position| hedge_number(&self.hedges[*position].hedge_id) == Some(number))
    }

    pub fn hedge(&self, hedge_id: &str) -> Option<&Hedge> {
        self.position_of(hedge_number(hedge_id)?).map(|position| &self.hedges[position])
    }

    fn trim(&mut self) {
        while self.hedges.len() > HEDGES_KEPT_MAX {
            let Some(position) = self.hedges.iter().position(|hedge| !hedge.state.is_active()) else { return };
            self.hedges.remove(position);
        }
    }
}

fn hedge_number(id: &str) -> Option<u64> {
    id.strip_prefix("hg_")?.get(..10)?.parse().ok()
}

/// The hedge id inside a child's client order id (`hg_0000000001-1-0` → `hg_0000000001`).
pub fn hedge_id_of(client_order_id: &str) -> Option<&str> {
    client_order_id.get(..13).filter(|id| hedge_number(id).is_some())
}

fn validate_policy(policy: &HedgingPolicy, catalog: &crate::catalog::Catalog) -> Result<(), CommandError> {
    if catalog.asset(&policy.asset).is_none() {
        return Err(CommandError::invalid("asset", "is not in the catalog"));
    }
    if policy.band < 0 {
        return Err(CommandError::invalid("band", "must be zero or more"));
    }
    if policy.target.checked_add(policy.band).is_none() || policy.target.checked_sub(policy.band).is_none() {
        return Err(CommandError::invalid("band", "is too large"));
    }
    if policy.instruments.is_empty() || policy.instruments.len() > POLICY_INSTRUMENTS_MAX {
        return Err(CommandError::invalid("instruments", "1 to 8 instruments"));
    }
    for symbol in &policy.instruments {
        let instrument = catalog.instrument(symbol).ok_or_else(|| CommandError::InstrumentUnknown(symbol.clone()))?;
        if instrument.base != policy.asset {
            return Err(CommandError::invalid("instruments", format!("{symbol} does not trade {}", policy.asset)));
        }
    }
    if policy.venues.is_empty() || policy.venues.len() > POLICY_VENUES_MAX {
        return Err(CommandError::invalid("venues", "1 to 16 venues"));
    }
    if policy.venues.iter().any(|venue| venue.is_empty() || venue.len() > 64) {
        return Err(CommandError::invalid("venues", "venue names are 1 to 64 bytes"));
    }
    if policy.order_quantity_max <= 0 {
        return Err(CommandError::invalid("order_quantity_max", "must be greater than zero"));
    }
    if !(0..=super::SPREAD_CENTI_BPS_MAX / 10).contains(&policy.slippage_centi_bps_max) {
        return Err(CommandError::invalid("slippage_bps_max", "must be from 0 to 1000 bps"));
    }
    if policy.interval_ms_min < 0 {
        return Err(CommandError::invalid("interval_ms_min", "must be zero or more"));
    }
    if !(1..=ATTEMPTS_MAX).contains(&policy.attempts_max) {
        return Err(CommandError::invalid("attempts_max", "must be from 1 to 10"));
    }
    Ok(())
}

fn validate_inputs(inputs: &HedgeInputs) -> Result<(), CommandError> {
    if inputs.books.len() > VENUES_MAX || inputs.venues.len() > VENUES_MAX {
        return Err(CommandError::invalid("books", "at most 16 venues"));
    }
    for book in &inputs.books {
        book.validate().map_err(|error| CommandError::invalid("books", error.to_string()))?;
        if book.instrument != inputs.instrument {
            return Err(CommandError::invalid("books", "a book of another instrument"));
        }
    }
    if inputs.venues.iter().any(|terms| {
        !(0..=routing::VENUE_FEE_CENTI_BPS_MAX).contains(&terms.taker_fee_centi_bps)
            || terms.quote_available < 0
            || terms.base_available < 0
    }) {
        return Err(CommandError::invalid("venues", "fees 0 to 1000 bps, balances zero or more"));
    }
    Ok(())
}

fn text(field: &'static str, value: &str) -> Result<String, CommandError> {
    if value.len() > VENUE_TEXT_BYTES_MAX {
        return Err(CommandError::invalid(field, "is longer than 200 bytes"));
    }
    Ok(value.to_owned())
}

impl Desk {
    pub fn hedging(&self) -> &HedgeBook {
        &self.hedging
    }

    pub(super) fn put_hedging_policy(&mut self, policy: &HedgingPolicy) -> Result<Executed, CommandError> {
        validate_policy(policy, self.catalog().ok_or(CommandError::NotInitialized)?)?;
        if self.hedging.policies.get(&policy.asset) == Some(policy) {
            return Ok(Executed { outcome: Outcome::HedgingPolicy(policy.clone()), changed: false });
        }
        self.hedging.policies.insert(policy.asset, policy.clone());
        Ok(Executed::changed(Outcome::HedgingPolicy(policy.clone())))
    }

    /// How much the desk should trade now in `asset` under `policy` (signed: positive = buy), 0 inside the band.
    pub fn hedge_needed(&self, policy: &HedgingPolicy) -> i128 {
        let position = self.desk_position(policy.asset);
        let (low, high) = (policy.target - policy.band, policy.target + policy.band);
        let goal = match (policy.hedge_to, position) {
            (_, position) if (low..=high).contains(&position) => return 0,
            (HedgeTo::Target, _) => policy.target,
            (HedgeTo::BandEdge, position) if position > high => high,
            (HedgeTo::BandEdge, _) => low,
        };
        goal - position
    }

    /// Opens a hedge when the asset's position is outside its band, or routes the remainder of its active hedge
    /// once all of that hedge's children are done. Nothing to do: `changed == false`.
    pub(super) fn evaluate_hedge(&mut self, at: TimestampMs, inputs: &HedgeInputs) -> Result<Executed, CommandError> {
        validate_inputs(inputs)?;
        let policy = self
            .hedging
            .policies
            .get(&inputs.asset)
            .cloned()
            .ok_or_else(|| CommandError::not_found("hedging policy"))?;
        if !policy.instruments.contains(&inputs.instrument) {
            return Err(CommandError::invalid("instrument", "is not allowed by the asset's hedging policy"));
        }
        let instrument = self.instrument(&inputs.instrument)?.clone();
        if let Some(active) = self.hedging.active(inputs.asset) {
            let hedge_id = active.hedge_id.clone();
            return self.retry_hedge(at, &policy, &instrument, inputs, &hedge_id);
        }
        let idle = |reason: &str| Ok(Executed { outcome: Outcome::HedgeIdle(reason.to_owned()), changed: false });
        if !policy.enabled {
            return idle("hedging is off for the asset");
        }
        // The kill switch and a halt of the instrument stop new hedges (and their retries).
        self.check_trading_allowed(&instrument)?;
        let last = self.hedging.last_opened_at.get(&inputs.asset).copied();
        if last.is_some_and(|last| at.0.saturating_sub(last.0) < policy.interval_ms_min) {
            return idle("the minimum interval since the last hedge has not passed");
        }
        let needed = self.hedge_needed(&policy);
        let side = if needed > 0 { Side::Buy } else { Side::Sell };
        let quantity = needed.abs() - needed.abs().rem_euclid(instrument.quantity_step);
        if quantity <= 0 {
            return idle("the position is inside its band");
        }
        let books = allowed_books(&policy, inputs);
        let arrival = routing::arrival_price(&books, side)
            .ok_or_else(|| CommandError::PriceUnavailable(inputs.instrument.clone()))?;
        let limit = routing::slippage_limit(arrival, side, policy.slippage_centi_bps_max)
            .ok_or_else(|| CommandError::invalid("books", "prices too large"))?;
        let number = self.hedging.hedges_opened + 1;
        let mut hedge = Hedge {
            hedge_id: format!("hg_{number:010}"),
            asset: inputs.asset,
            instrument: inputs.instrument.clone(),
            side,
            position_at_open: self.desk_position(inputs.asset),
            quantity,
            filled: 0,
            quote_amount: 0,
            fee: 0,
            arrival_price: arrival,
            limit_price: limit,
            state: HedgeState::Open,
            attempts: 0,
            children: Vec::new(),
            opened_at: at,
            updated_at: at,
            closed_at: None,
            failure: None,
        };
        self.route_attempt(&policy, &instrument, &books, &inputs.venues, &mut hedge)?;
        if hedge.children.is_empty() {
            return Err(CommandError::PriceUnavailable(format!(
                "no venue can take the hedge of {} within its slippage bound and balances",
                inputs.asset
            )));
        }
        self.hedging.hedges_opened = number;
        self.hedging.last_opened_at.insert(inputs.asset, at);
        self.hedging.active.insert(inputs.asset, number);
        self.hedging.hedges.push_back(hedge.clone());
        self.hedging.trim();
        Ok(Executed::changed(Outcome::Hedge(Box::new(hedge))))
    }

    fn retry_hedge(
        &mut self,
        at: TimestampMs,
        policy: &HedgingPolicy,
        instrument: &Instrument,
        inputs: &HedgeInputs,
        hedge_id: &str,
    ) -> Result<Executed, CommandError> {
        let position = self.hedging.position_of(hedge_number(hedge_id).expect("engine ids parse")).expect("active");
        let current = &self.hedging.hedges[position];
        if current.instrument != inputs.instrument || current.in_flight() > 0 || current.remaining() == 0 {
            return Ok(Executed { outcome: Outcome::HedgeIdle("the active hedge is working".into()), changed: false });
        }
        self.check_trading_allowed(instrument)?;
        let mut hedge = current.clone();
        let books = allowed_books(policy, inputs);
        self.route_attempt(policy, instrument, &books, &inputs.venues, &mut hedge)?;
        hedge.updated_at = at;
        if hedge.children.len() == current.children.len() && hedge.attempts >= policy.attempts_max {
            self.fail_hedge(at, &mut hedge, "no venue could take the rest within the slippage bound and balances");
        }
        self.hedging.store(position, hedge.clone());
        Ok(Executed::changed(Outcome::Hedge(Box::new(hedge))))
    }

    /// One routing of the hedge's remainder: new children, attempt + 1.
    fn route_attempt(
        &self,
        policy: &HedgingPolicy,
        instrument: &Instrument,
        books: &[VenueBook],
        venues: &[VenueTerms],
        hedge: &mut Hedge,
    ) -> Result<(), CommandError> {
        let catalog = self.catalog().ok_or(CommandError::NotInitialized)?;
        let scale = |code: &AssetCode| catalog.asset(code).map_or(0, |asset| asset.scale);
        let request = RouteRequest {
            side: hedge.side,
            quantity: hedge.remaining(),
            quantity_step: instrument.quantity_step,
            child_quantity_max: policy.order_quantity_max,
            limit_price: hedge.limit_price,
            price_scale: instrument.price_scale,
            base_scale: scale(&instrument.base),
            quote_scale: scale(&instrument.quote),
        };
        let routes = routing::route(&request, books, venues);
        let room = HEDGE_CHILDREN_MAX.saturating_sub(hedge.children.len());
        hedge.attempts += 1;
        for (index, route) in routes.into_iter().take(room).enumerate() {
            hedge.children.push(ChildOrder {
                client_order_id: format!("{}-{}-{index}", hedge.hedge_id, hedge.attempts),
                venue: route.venue,
                quantity: route.quantity,
                limit_price: route.limit_price,
                state: ChildState::Pending,
                filled: 0,
                quote_amount: 0,
                fee: 0,
                venue_order_id: None,
                reason: None,
                fill_ids: Vec::new(),
                timed_out: false,
            });
        }
        Ok(())
    }

    fn fail_hedge(&mut self, at: TimestampMs, hedge: &mut Hedge, why: &str) {
        hedge.state = HedgeState::Failed;
        hedge.closed_at = Some(at);
        hedge.failure = Some(why.to_owned());
        let scale = self.catalog().and_then(|catalog| catalog.asset(&hedge.asset)).map_or(0, |asset| asset.scale);
        let evidence = format!(
            "hedge {} of {} could not complete after {} attempts: {} of {} {} traded; {why}",
            hedge.hedge_id,
            hedge.instrument,
            hedge.attempts,
            crate::readable::amount(hedge.filled, scale),
            crate::readable::amount(hedge.quantity, scale),
            hedge.asset,
        );
        self.raise_alert(at, AlertKind::HedgeFailed, None, evidence, None);
    }

    /// A venue's answer about a child order: state change, or a fill booked on the ledger.
    pub(super) fn hedge_report(&mut self, at: TimestampMs, report: &HedgeReport) -> Result<Executed, CommandError> {
        let hedge_id = hedge_id_of(&report.client_order_id).ok_or_else(|| CommandError::not_found("child order"))?;
        let position = self
            .hedging
            .position_of(hedge_number(hedge_id).expect("checked"))
            .ok_or_else(|| CommandError::not_found("hedge"))?;
        let mut hedge = self.hedging.hedges[position].clone();
        let instrument = self.instrument(&hedge.instrument)?.clone();
        let child = hedge.child_mut(&report.client_order_id).ok_or_else(|| CommandError::not_found("child order"))?;
        let before = child.clone();
        match &report.report {
            VenueReport::Acknowledged { venue_order_id } => {
                child.venue_order_id = Some(text("venue_order_id", venue_order_id)?);
                if matches!(child.state, ChildState::Pending | ChildState::TimedOut) {
                    child.state = ChildState::Acknowledged;
                }
            }
            VenueReport::Closed { reason } | VenueReport::Rejected { reason } => {
                let reason = text("reason", reason)?;
                if !child.state.is_done() {
                    let rejected = matches!(report.report, VenueReport::Rejected { .. }) && child.filled == 0;
                    child.state = if rejected { ChildState::Rejected } else { ChildState::Closed };
                    child.reason = Some(reason);
                }
            }
            VenueReport::TimedOut => {
                if matches!(child.state, ChildState::Pending | ChildState::Acknowledged | ChildState::PartiallyFilled) {
                    child.state = ChildState::TimedOut;
                    child.timed_out = true;
                }
            }
            VenueReport::Fill { fill_id, quantity, price, fee } => {
                let fill_id = text("fill_id", fill_id)?;
                if child.fill_ids.contains(&fill_id) {
                    return Ok(Executed { outcome: Outcome::Hedge(Box::new(hedge)), changed: false });
                }
                let (quantity, price, fee) = (*quantity, *price, *fee);
                if quantity <= 0 || quantity > child.quantity - child.filled || price <= 0 || fee < 0 {
                    return Err(CommandError::invalid(
                        "fill",
                        "quantity within the order's rest, positive price, fee ≥ 0",
                    ));
                }
                if child.fill_ids.len() >= CHILD_FILLS_MAX {
                    return Err(CommandError::conflict("the child order holds the maximum number of fills"));
                }
                let venue = child.venue.clone();
                let amount = self.book_venue_fill(
                    at,
                    &instrument,
                    hedge.side,
                    &venue,
                    &report.client_order_id,
                    quantity,
                    price,
                    fee,
                )?;
                let child = hedge.child_mut(&report.client_order_id).expect("found above");
                child.fill_ids.push(fill_id);
                child.filled += quantity;
                child.quote_amount += amount;
                child.fee += fee;
                if child.filled == child.quantity {
                    child.state = ChildState::Filled;
                } else if !child.state.is_done() {
                    child.state = ChildState::PartiallyFilled;
                }
                hedge.filled += quantity;
                hedge.quote_amount += amount;
                hedge.fee += fee;
            }
        }
        let changed = hedge.child_mut(&report.client_order_id).map(|child| *child != before).unwrap_or(true);
        if !changed {
            return Ok(Executed { outcome: Outcome::Hedge(Box::new(hedge)), changed: false });
        }
        hedge.updated_at = at;
        self.settle_hedge_state(at, &mut hedge);
        self.hedging.store(position, hedge.clone());
        Ok(Executed::changed(Outcome::Hedge(Box::new(hedge))))
    }

    /// Moves an active hedge to filled, partially filled, or failed (attempts spent, every child done, short).
    fn settle_hedge_state(&mut self, at: TimestampMs, hedge: &mut Hedge) {
        if !hedge.state.is_active() {
            return; // A late fill on a finished hedge is booked; its state stays.
        }
        if hedge.filled >= hedge.quantity {
            hedge.state = HedgeState::Filled;
            hedge.closed_at = Some(at);
            return;
        }
        if hedge.filled > 0 {
            hedge.state = HedgeState::PartiallyFilled;
        }
        let policy_attempts = self.hedging.policies.get(&hedge.asset).map_or(1, |policy| policy.attempts_max);
        if hedge.in_flight() == 0 && hedge.attempts >= policy_attempts {
            self.fail_hedge(at, hedge, "the venues did not fill it all and the attempts are spent");
        }
    }

    /// One balanced transaction for a venue fill (see the module comment). Returns its quote amount.
    #[allow(clippy::too_many_arguments)]
    fn book_venue_fill(
        &mut self,
        at: TimestampMs,
        instrument: &Instrument,
        side: Side,
        venue: &str,
        client_order_id: &str,
        quantity: i128,
        price: i128,
        fee: i128,
    ) -> Result<i128, CommandError> {
        // The desk pays what it buys rounded up and is paid what it sells rounded down: against the desk, so a
        // venue's own rounding can only leave the desk better off than its books say.
        let amount = self.quote_amount_of(instrument, price, quantity, side == Side::Buy)?;
        let sign = if side == Side::Buy { 1 } else { -1 };
        let venue_owner = Owner::Venue(venue.to_owned());
        let mut account = |owner: &Owner, asset, purpose| {
            self.ledger.open_account(AccountKey { owner: owner.clone(), asset, purpose }, None)
        };
        let venue_base = account(&venue_owner, instrument.base, Purpose::Venue);
        let venue_quote = account(&venue_owner, instrument.quote, Purpose::Venue);
        let inventory_base = account(&Owner::Desk, instrument.base, Purpose::Inventory);
        let inventory_quote = account(&Owner::Desk, instrument.quote, Purpose::Inventory);
        let mut postings = vec![
            Posting { account: venue_base, amount: -sign * quantity },
            Posting { account: inventory_base, amount: sign * quantity },
            Posting { account: venue_quote, amount: sign * amount + fee },
            Posting { account: inventory_quote, amount: -sign * amount },
        ];
        if fee > 0 {
            let fees = account(&Owner::Desk, instrument.quote, Purpose::VenueFees);
            postings.push(Posting { account: fees, amount: -fee });
        }
        // A sell whose fee equals its proceeds leaves the venue's quote account unmoved (the ledger takes no zeros).
        postings.retain(|posting| posting.amount != 0);
        let kind = TransactionKind::VenueFill { reference: client_order_id.to_owned() };
        self.ledger.apply(at, kind, &postings)?;
        Ok(amount)
    }
}

/// The books of venues the policy allows (others are ignored, never routed to).
fn allowed_books(policy: &HedgingPolicy, inputs: &HedgeInputs) -> Vec<VenueBook> {
    inputs.books.iter().filter(|book| policy.venues.contains(&book.venue)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::VenueReport;

    /// Every variant decodes from the journal's encoding, i128 amounts beyond 64 bits included, and the encoding
    /// is the one journals already hold (`{"type": "fill", ...}`).
    #[test]
    fn venue_reports_round_trip_through_the_journal_encoding() {
        let reports = [
            VenueReport::Acknowledged { venue_order_id: "v-1".into() },
            VenueReport::Fill {
                fill_id: "f-1".into(),
                quantity: 7_480_000_000_000_000_000_000,
                price: 300_250,
                fee: 1,
            },
            VenueReport::Closed { reason: "ioc".into() },
            VenueReport::Rejected { reason: "balance".into() },
            VenueReport::TimedOut,
        ];
        for report in reports {
            let encoded = serde_json::to_string(&report).unwrap();
            assert_eq!(serde_json::from_str::<VenueReport>(&encoded).unwrap(), report, "{encoded}");
        }
        let journaled =
            r#"{"type":"fill","fill_id":"paper-4-1","quantity":7480000000000000000,"price":300250,"fee":1123}"#;
        let decoded: VenueReport = serde_json::from_str(journaled).unwrap();
        assert_eq!(
            decoded,
            VenueReport::Fill {
                fill_id: "paper-4-1".into(),
                quantity: 7_480_000_000_000_000_000,
                price: 300_250,
                fee: 1123
            }
        );
        assert!(serde_json::from_str::<VenueReport>(r#"{"type":"fill","fill_id":"f"}"#).is_err(), "fields missing");
    }
}
