//! Resting limit orders (`gtc`, `gtd`).
//!
//! A resting order reserves what it needs when placed (a two-phase ledger transfer): a prefunded buyer the
//! quote amount at the limit price (rounded up), a seller the base quantity. Credit clients reserve nothing;
//! their credit limit is checked at placement and again at each fill, and an order whose fill the credit no
//! longer covers is cancelled with a reason.
//!
//! Orders are indexed by instrument, side and limit price (time priority within a price). A market tick arrives
//! as a `FillRestingOrders` command carrying the fresh books; the engine computes the best price any client could
//! get (the lowest spread of any tier, smallest size, with the asset's skew) and walks only the orders whose limit
//! reaches it:
//! a buy with a limit below that bound cannot fill, whatever its size or tier, so the walk stops there.
//!
//! Each fill is ONE ledger transaction: the reserved leg (`Ledger::settle_pending`), the desk's other leg and,
//! for a buy priced so that per-fill rounding needs one more minor unit than the reservation holds, that
//! unit from the client's available balance. When the order completes, what is left of the reservation is
//! released. Expiry is a command too (`ExpireOrders`), sent by a timer in the adapters, so replay expires the
//! same orders at the same points.

use super::fills::FillTerms;
use super::orders::{limit_reached, prorate, LimitOrder, MarketOrder, Order, OrderRequest, OrderStatus, TimeInForce};
use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::Instrument;
use crate::ids::ClientId;
use crate::ledger::{AccountKey, Owner, PendingId, Posting, Purpose, TransactionKind};
use crate::market::{pricing, Side, VenueBook};
use crate::model::{Client, Settlement};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

/// Live resting orders one client may hold.
pub const RESTING_ORDERS_PER_CLIENT_MAX: usize = 1_000;
/// Live resting orders the desk holds.
pub const RESTING_ORDERS_MAX: usize = 1_000_000;
/// Fills one market tick may make; the rest wait for the next tick (bounds the engine's work per command).
pub const FILLS_PER_TICK_MAX: usize = 1_000;
/// Orders one expiry command may expire; the rest expire on the next one.
pub const EXPIRIES_PER_COMMAND_MAX: usize = 10_000;
/// Furthest a `gtd` order may expire: one year.
pub const GTD_HORIZON_MS: i64 = 366 * 86_400_000;

/// What a resting order carries beyond an ordinary order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingState {
    /// Price units of the instrument.
    pub limit_price: i128,
    pub time_in_force: TimeInForce,
    pub expire_at: Option<TimestampMs>,
    /// The funds held for the unfilled part (prefunded clients); `None` for credit clients.
    pub reservation: Option<PendingId>,
    /// USD value (cents) of the whole order at placement: resting orders are held to the tier's limits at this
    /// value, prorated per fill (market data at fill time is not in the client's request).
    pub notional_usd: Option<i128>,
    /// Σ price × quantity over the fills, for the average price.
    pub fill_value: i128,
    /// The tier's fee rate at placement: the reservation covers it, and every fill is charged at it.
    #[serde(default)]
    pub fee_centi_bps: i128,
}

/// The market data a tick brings for one instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillResting {
    pub instrument: String,
    pub books: Vec<VenueBook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross: Option<super::command::CrossBooks>,
}

/// Live resting orders by instrument and side, best limit first, then time; and by expiry. Values are positions
/// in the order list (stable: orders are only appended).
#[derive(Debug, Clone, Default)]
pub struct RestingIndex {
    buys: HashMap<String, BTreeSet<(Reverse<i128>, usize)>>,
    sells: HashMap<String, BTreeSet<(i128, usize)>>,
    expiries: BTreeSet<(TimestampMs, usize)>,
    by_client: HashMap<ClientId, BTreeSet<usize>>,
    count: usize,
}

impl RestingIndex {
    pub(super) fn insert(&mut self, position: usize, order: &Order) {
        let Some(resting) = &order.resting else { return };
        let added = match order.side {
            Side::Buy => {
                self.buys.entry(order.instrument.clone()).or_default().insert((Reverse(resting.limit_price), position))
            }
            Side::Sell => {
                self.sells.entry(order.instrument.clone()).or_default().insert((resting.limit_price, position))
            }
        };
        if let Some(expire_at) = resting.expire_at {
            self.expiries.insert((expire_at, position));
        }
        self.by_client.entry(order.client_id.clone()).or_default().insert(position);
        if added {
            self.count += 1;
        }
    }

    fn remove(&mut self, position: usize, order: &Order) {
        let Some(resting) = &order.resting else { return };
        let removed = match order.side {
            Side::Buy => self
                .buys
                .get_mut(&order.instrument)
                .is_some_and(|orders| orders.remove(&(Reverse(resting.limit_price), position))),
            Side::Sell => self
                .sells
                .get_mut(&order.instrument)
                .is_some_and(|orders| orders.remove(&(resting.limit_price, position))),
        };
        if let Some(expire_at) = resting.expire_at {
            self.expiries.remove(&(expire_at, position));
        }
        if let Some(positions) = self.by_client.get_mut(&order.client_id) {
            positions.remove(&position);
        }
        if removed {
            self.count -= 1;
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn client_count(&self, client_id: &ClientId) -> usize {
        self.by_client.get(client_id).map_or(0, BTreeSet::len)
    }

    /// Buys whose limit is at least `bound`, best first.
    fn buys_reaching(&self, instrument: &str, bound: i128) -> Vec<usize> {
        let Some(orders) = self.buys.get(instrument) else { return Vec::new() };
        orders.iter().take_while(|(limit, _)| limit.0 >= bound).map(|(_, position)| *position).collect()
    }

    /// Sells whose limit is at most `bound`, best first.
    fn sells_reaching(&self, instrument: &str, bound: i128) -> Vec<usize> {
        let Some(orders) = self.sells.get(instrument) else { return Vec::new() };
        orders.iter().take_while(|(limit, _)| *limit <= bound).map(|(_, position)| *position).collect()
    }

    /// Instruments with live resting orders.
    pub fn instruments(&self) -> Vec<String> {
        let mut symbols: BTreeSet<&String> =
            self.buys.iter().filter(|(_, orders)| !orders.is_empty()).map(|(symbol, _)| symbol).collect();
        symbols.extend(self.sells.iter().filter(|(_, orders)| !orders.is_empty()).map(|(symbol, _)| symbol));
        symbols.into_iter().cloned().collect()
    }

    pub fn next_expiry(&self) -> Option<TimestampMs> {
        self.expiries.first().map(|(at, _)| *at)
    }
}

impl Desk {
    pub fn resting_orders(&self) -> &RestingIndex {
        &self.orders.resting
    }

    /// Places a `gtc`/`gtd` order: reserves its funds, records it and fills at once what the books allow.
    pub(super) fn place_resting_order(
        &mut self,
        at: TimestampMs,
        client: &Client,
        instrument: &Instrument,
        request: &LimitOrder,
        identity: OrderRequest,
    ) -> Result<Executed, CommandError> {
        let market = &request.order;
        let expire_at = validate_expiry(at, request.time_in_force, request.expire_at)?;
        if self.orders.resting.len() >= RESTING_ORDERS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of resting orders"));
        }
        if self.orders.resting.client_count(&client.client_id) >= RESTING_ORDERS_PER_CLIENT_MAX {
            return Err(CommandError::conflict("the client holds the maximum number of resting orders (1000)"));
        }
        self.check_tier_limits(at, client, market.notional_usd)?;
        let mut order = self.unfilled_order(at, market, instrument, identity, OrderStatus::Open);
        let fee_centi_bps = self.fee_rate(client);
        let limit = FillTerms {
            side: market.side,
            price: request.limit_price,
            quantity: market.quantity,
            notional_usd: market.notional_usd,
            fee_centi_bps,
        };
        let reservation = self.reserve_for_order(at, client, instrument, &limit, &order.order_id)?;
        order.resting = Some(RestingState {
            limit_price: request.limit_price,
            time_in_force: request.time_in_force,
            expire_at,
            reservation,
            notional_usd: market.notional_usd,
            fill_value: 0,
            fee_centi_bps,
        });
        let position = self.orders.orders.len();
        self.orders.resting.insert(position, &order);
        self.orders.push_order(order);
        // Fills now what the current books allow; a refused fill leaves the order resting.
        let _ = self.fill_one(at, position, &market.books, market.cross.as_ref());
        Ok(Executed::changed(Outcome::Order(self.orders.orders[position].clone())))
    }

    /// Holds what a resting order may spend: a prefunded buyer's quote amount at the limit plus its fee, a
    /// seller's base quantity.
    fn reserve_for_order(
        &mut self,
        at: TimestampMs,
        client: &Client,
        instrument: &Instrument,
        limit: &FillTerms,
        order_id: &str,
    ) -> Result<Option<PendingId>, CommandError> {
        if client.settlement == Settlement::Credit {
            self.check_funds(client, instrument.quote, 0, limit.notional_usd)?;
            return Ok(None);
        }
        let whole = self.fill_amounts(instrument, limit)?;
        let (asset, amount) = (whole.gives, whole.gives_amount);
        self.check_funds(client, asset, amount, limit.notional_usd)?;
        let owner = Owner::Client(client.client_id.clone());
        let available =
            self.ledger.open_account(AccountKey { owner: owner.clone(), asset, purpose: Purpose::Available }, Some(0));
        let reserved = self.ledger.open_account(AccountKey { owner, asset, purpose: Purpose::Reserved }, Some(0));
        Ok(Some(self.ledger.reserve(at, available, reserved, amount, order_id)?))
    }

    /// A market tick: fills the resting orders of the instrument that the books now reach.
    pub(super) fn fill_resting_orders(
        &mut self,
        at: TimestampMs,
        tick: &FillResting,
    ) -> Result<Executed, CommandError> {
        let instrument = self.instrument(&tick.instrument)?.clone();
        super::quotes::validate_order_books(&tick.books, &instrument)?;
        if self.check_trading_allowed(&instrument).is_err() {
            return Ok(Executed { outcome: Outcome::Orders(Vec::new()), changed: false });
        }
        let mut candidates = Vec::new();
        for side in [Side::Buy, Side::Sell] {
            let Some(bound) = self.best_possible_price(at, &instrument, &tick.books, tick.cross.as_ref(), side) else {
                continue;
            };
            candidates.extend(match side {
                Side::Buy => self.orders.resting.buys_reaching(&instrument.symbol, bound),
                Side::Sell => self.orders.resting.sells_reaching(&instrument.symbol, bound),
            });
        }
        let mut changed = Vec::new();
        for position in candidates {
            if changed.len() >= FILLS_PER_TICK_MAX {
                break;
            }
            if let Ok(true) = self.fill_one(at, position, &tick.books, tick.cross.as_ref()) {
                changed.push(self.orders.orders[position].clone());
            }
        }
        let any = !changed.is_empty();
        Ok(Executed { outcome: Outcome::Orders(changed), changed: any })
    }

    /// The lowest spread any tier (or size band) charges: no client gets a better price than the book with it.
    fn lowest_spread(&self) -> i128 {
        self.tiers
            .values()
            .flat_map(|tier| {
                std::iter::once(tier.spread_centi_bps).chain(tier.bands.iter().map(|band| band.spread_centi_bps))
            })
            .min()
            .unwrap_or(0)
            .max(0)
    }

    /// The best firm price any client could get on `side`: the lowest spread of any tier, the smallest size, the
    /// asset's skew.
    fn best_possible_price(
        &self,
        at: TimestampMs,
        instrument: &Instrument,
        books: &[VenueBook],
        cross: Option<&super::command::CrossBooks>,
        side: Side,
    ) -> Option<i128> {
        let cross = if books.is_empty() { cross } else { None };
        let executable = self.executable_for(instrument, books, cross, side, instrument.quantity_step, at).ok()?;
        let spread = self.lowest_spread();
        pricing::client_price(&executable, side, spread, self.skew_for(instrument.base), instrument.price_step).ok()
    }

    /// Tries to fill one live resting order now. `Ok(true)` when it changed (filled, partly filled, or cancelled
    /// because the client's credit no longer covers it).
    fn fill_one(
        &mut self,
        at: TimestampMs,
        position: usize,
        books: &[VenueBook],
        cross: Option<&super::command::CrossBooks>,
    ) -> Result<bool, CommandError> {
        let order = self.orders.orders[position].clone();
        let Some(resting) = order.resting.clone().filter(|_| order.is_live()) else { return Ok(false) };
        if resting.expire_at.is_some_and(|expire_at| at >= expire_at) {
            return Ok(false);
        }
        let client = self.trading_client(at, &order.client_id)?;
        let instrument = self.instrument(&order.instrument)?.clone();
        self.check_jurisdiction_instrument(&client, &instrument)?;
        let remaining = order.quantity - order.filled_quantity;
        let quantity = self.desk_capacity(&instrument, order.side, remaining);
        if quantity <= 0 {
            return Ok(false);
        }
        let sized = MarketOrder {
            client_id: order.client_id.clone(),
            client_order_id: order.client_order_id.clone(),
            instrument: order.instrument.clone(),
            side: order.side,
            quantity,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: prorate(resting.notional_usd, quantity, order.quantity),
            books: books.to_vec(),
            cross: cross.cloned(),
        };
        let price = self.firm_price(at, &client, &instrument, &sized)?;
        if !limit_reached(order.side, price, resting.limit_price) {
            return Ok(false);
        }
        let terms = FillTerms {
            side: order.side,
            price,
            quantity,
            notional_usd: sized.notional_usd,
            fee_centi_bps: resting.fee_centi_bps,
        };
        let trade = match resting.reservation {
            Some(reservation) => self.settle_reserved_fill(at, &order, &client, &instrument, reservation, &terms)?,
            None => match self.settle_trade(at, order.order_id.clone(), &client, &instrument, &terms) {
                Ok(trade) => trade,
                Err(CommandError::InsufficientFunds { detail }) => {
                    self.finish_order(at, position, OrderStatus::Cancelled, Some(detail))?;
                    return Ok(true);
                }
                Err(other) => return Err(other),
            },
        };
        self.record_fill(at, position, trade, price, quantity)?;
        Ok(true)
    }

    /// One fill of a prefunded order, in one ledger transaction out of its reservation.
    fn settle_reserved_fill(
        &mut self,
        at: TimestampMs,
        order: &Order,
        client: &Client,
        instrument: &Instrument,
        reservation: PendingId,
        terms: &FillTerms,
    ) -> Result<super::orders::Trade, CommandError> {
        let amounts = self.fill_amounts(instrument, terms)?;
        self.check_tier_limits(at, client, terms.notional_usd)?;
        self.check_fill_quote_limit(instrument, terms, &amounts)?;
        let held = self.ledger.pending(reservation).map_or(0, |pending| pending.remaining);
        let from_reserved = amounts.gives_amount.min(held);
        let top_up = amounts.gives_amount - from_reserved;
        let owner = Owner::Client(client.client_id.clone());
        let client_receives = self.ledger.open_account(
            AccountKey { owner: owner.clone(), asset: amounts.receives, purpose: Purpose::Available },
            Some(0),
        );
        let mut others = vec![Posting { account: client_receives, amount: amounts.receives_amount }];
        others.extend(self.desk_fill_postings(instrument, &amounts));
        if top_up > 0 {
            let client_available = self
                .ledger
                .open_account(AccountKey { owner, asset: amounts.gives, purpose: Purpose::Available }, Some(0));
            others.push(Posting { account: client_available, amount: -top_up });
        }
        let trade_id = format!("t_{:012}", self.orders.trades.len() + 1);
        let kind = TransactionKind::Trade { reference: trade_id.clone() };
        let transaction = self.ledger.settle_pending(at, reservation, from_reserved, &others, kind)?;
        Ok(super::orders::new_trade(
            trade_id,
            order.order_id.clone(),
            client,
            instrument,
            terms,
            &amounts,
            at,
            transaction,
        ))
    }

    fn record_fill(
        &mut self,
        at: TimestampMs,
        position: usize,
        trade: super::orders::Trade,
        price: i128,
        quantity: i128,
    ) -> Result<(), CommandError> {
        let order = &mut self.orders.orders[position];
        let resting = order.resting.as_mut().expect("a resting order");
        // Cannot overflow: price and quantity are bounded by the catalog (≤ 10^18 each), far below i128's 10^38.
        resting.fill_value += price * quantity;
        order.filled_quantity += quantity;
        order.trade_ids.push(trade.trade_id.clone());
        let rounding_up = order.side == Side::Buy;
        let fill_value = resting.fill_value;
        order.average_price = Some(average(fill_value, order.filled_quantity, rounding_up));
        let complete = order.filled_quantity == order.quantity;
        order.status = OrderStatus::PartiallyFilled;
        let client_id = trade.client_id.clone();
        self.orders.push_trade(trade);
        self.after_trade(at, &client_id);
        if complete {
            self.finish_order(at, position, OrderStatus::Filled, None)?;
        }
        Ok(())
    }

    /// Ends a live order: releases what is left of its reservation and takes it out of the index.
    fn finish_order(
        &mut self,
        at: TimestampMs,
        position: usize,
        status: OrderStatus,
        reason: Option<String>,
    ) -> Result<(), CommandError> {
        let order = self.orders.orders[position].clone();
        if let Some(reservation) = order.resting.as_ref().and_then(|resting| resting.reservation) {
            if self.ledger.pending(reservation).is_some() {
                self.ledger.void_pending(at, reservation, &order.order_id)?;
            }
        }
        self.orders.resting.remove(position, &order);
        let order = &mut self.orders.orders[position];
        order.status = status;
        order.cancel_reason = reason;
        Ok(())
    }

    /// Cancels one of the client's live orders; anything else is `order_not_cancelable`.
    pub(super) fn cancel_order(
        &mut self,
        at: TimestampMs,
        client_id: &ClientId,
        order_id: &str,
    ) -> Result<Executed, CommandError> {
        let position = self
            .orders
            .position_of(order_id)
            .filter(|position| self.orders.orders[*position].client_id == *client_id)
            .ok_or_else(|| CommandError::not_found("order"))?;
        let order = &self.orders.orders[position];
        if !order.is_live() {
            return Err(CommandError::OrderNotCancelable { status: order.status });
        }
        self.finish_order(at, position, OrderStatus::Cancelled, None)?;
        Ok(Executed::changed(Outcome::Order(self.orders.orders[position].clone())))
    }

    /// Cancels all of a client's live orders, or those of one instrument.
    pub(super) fn cancel_all_orders(
        &mut self,
        at: TimestampMs,
        client_id: &ClientId,
        instrument: Option<&str>,
    ) -> Result<Executed, CommandError> {
        if let Some(symbol) = instrument {
            self.instrument(symbol)?;
        }
        let positions: Vec<usize> = self
            .orders
            .resting
            .by_client
            .get(client_id)
            .map(|positions| positions.iter().copied().collect())
            .unwrap_or_default();
        let mut cancelled = Vec::new();
        for position in positions {
            if instrument.is_some_and(|symbol| self.orders.orders[position].instrument != symbol) {
                continue;
            }
            self.finish_order(at, position, OrderStatus::Cancelled, None)?;
            cancelled.push(self.orders.orders[position].clone());
        }
        let changed = !cancelled.is_empty();
        Ok(Executed { outcome: Outcome::Orders(cancelled), changed })
    }

    /// Expires the `gtd` orders whose time has come.
    pub(super) fn expire_orders(&mut self, at: TimestampMs) -> Result<Executed, CommandError> {
        let due: Vec<usize> = self
            .orders
            .resting
            .expiries
            .iter()
            .take_while(|(expire_at, _)| *expire_at <= at)
            .take(EXPIRIES_PER_COMMAND_MAX)
            .map(|(_, position)| *position)
            .collect();
        let mut expired = Vec::with_capacity(due.len());
        for position in due {
            self.finish_order(at, position, OrderStatus::Expired, None)?;
            expired.push(self.orders.orders[position].clone());
        }
        let changed = !expired.is_empty();
        Ok(Executed { outcome: Outcome::Orders(expired), changed })
    }
}

/// `gtd` needs an `expire_at` after now and within a year; other resting orders take none.
fn validate_expiry(
    at: TimestampMs,
    time_in_force: TimeInForce,
    expire_at: Option<TimestampMs>,
) -> Result<Option<TimestampMs>, CommandError> {
    match (time_in_force, expire_at) {
        (TimeInForce::Gtd, None) => Err(CommandError::invalid("expire_at", "a gtd order needs expire_at")),
        (TimeInForce::Gtd, Some(expire_at)) if expire_at <= at => {
            Err(CommandError::invalid("expire_at", "must be in the future"))
        }
        (TimeInForce::Gtd, Some(expire_at)) if expire_at.0 - at.0 > GTD_HORIZON_MS => {
            Err(CommandError::invalid("expire_at", "must be within a year"))
        }
        (TimeInForce::Gtd, Some(expire_at)) => Ok(Some(expire_at)),
        (_, Some(_)) => Err(CommandError::invalid("expire_at", "only gtd orders take expire_at")),
        (_, None) => Ok(None),
    }
}

/// Quantity-weighted average price, rounded against the client: up for a buyer, down for a seller.
fn average(fill_value: i128, filled_quantity: i128, round_up: bool) -> i128 {
    let quotient = fill_value.div_euclid(filled_quantity);
    if round_up && fill_value.rem_euclid(filled_quantity) != 0 {
        quotient + 1
    } else {
        quotient
    }
}
