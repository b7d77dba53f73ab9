//! Orders and trades: accepting a firm quote (`type: quote`) and market orders (`type: market`, priced from
//! the books carried in the command, with a slippage guard). Acceptance is decided here, in the
//! engine's sequence: the quote must be the client's own, unused and unexpired at the engine's time, so of two
//! concurrent accepts exactly one fills. A fill settles on the ledger at once: both legs in one balanced
//! transaction, the client's cost rounded up and proceeds rounded down to the quote asset's minor unit.

use super::fills::{FillAmounts, FillTerms};
use super::model::{Client, Quote, QuoteState, Settlement};
use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::{AssetCode, Instrument};
use crate::chunked_vec::ChunkedVec;
use crate::ids::{ClientId, ClientReference};
use crate::ledger::{AccountKey, Owner, Posting, Purpose, TransactionId, TransactionKind};
use crate::market::{pricing, Side};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

const DAY_MS: i64 = 86_400_000;

/// Orders held per desk before the oldest would have to be archived (a bound, not a business rule).
pub const ORDERS_MAX: usize = 50_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptQuote {
    pub client_id: ClientId,
    pub client_order_id: ClientReference,
    pub quote_id: String,
    /// Required for two-way (streamed) quotes, optional (must match) for RFQ quotes.
    pub side: Option<Side>,
    /// Indicative USD value of the trade in cents, for credit clients' limits (`None` = unknown).
    pub notional_usd: Option<i128>,
}

/// A market order: executes now at the desk's firm price for the size, unless that price is worse than
/// `reference_price` by more than `slippage_centi_bps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketOrder {
    pub client_id: ClientId,
    pub client_order_id: ClientReference,
    pub instrument: String,
    pub side: Side,
    /// Base minor units.
    pub quantity: i128,
    /// Price units of the instrument.
    pub reference_price: Option<i128>,
    /// Hundredths of a basis point; absent with a reference price means no worse price is accepted.
    pub slippage_centi_bps: Option<i128>,
    pub notional_usd: Option<i128>,
    pub books: Vec<crate::market::VenueBook>,
    pub cross: Option<super::command::CrossBooks>,
}

/// Time in force of a limit order: `ioc` fills what the desk can take now and cancels the rest, `fok` fills
/// whole now or not at all, `gtc` rests until filled or cancelled, `gtd` until its `expire_at`. Resting orders
/// reserve their funds (see `resting.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    Ioc,
    Fok,
    Gtc,
    Gtd,
}

impl TimeInForce {
    pub fn rests(self) -> bool {
        matches!(self, TimeInForce::Gtc | TimeInForce::Gtd)
    }
}

/// A limit order that executes now if the desk's firm price for its size reaches the limit, else is cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitOrder {
    /// The order as a market order (no reference price) plus the limit below.
    pub order: MarketOrder,
    /// Price units of the instrument: the most a buyer pays, the least a seller takes.
    pub limit_price: i128,
    pub time_in_force: TimeInForce,
    /// `gtd` only: when the order expires if not filled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<TimestampMs>,
}

/// What an order asked for, kept to tell an idempotent repeat from a conflicting one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderRequest {
    Quote(AcceptQuote),
    /// The market data is not part of the identity of a market order: a retry sees other books.
    Market {
        instrument: String,
        side: Side,
        quantity: i128,
        reference_price: Option<i128>,
        slippage_centi_bps: Option<i128>,
    },
    Limit {
        instrument: String,
        side: Side,
        quantity: i128,
        limit_price: i128,
        time_in_force: TimeInForce,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expire_at: Option<TimestampMs>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Filled,
    Open,
    PartiallyFilled,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub trade_id: String,
    pub order_id: String,
    pub client_id: ClientId,
    pub instrument: String,
    pub side: Side,
    /// Price units of the instrument.
    pub price: i128,
    /// Base minor units.
    pub quantity: i128,
    /// Quote minor units the trade is worth at its price (before the fee).
    pub quote_amount: i128,
    /// The desk's fee, quote minor units: a buyer pays `quote_amount + fee`, a seller receives
    /// `quote_amount − fee`.
    #[serde(default)]
    pub fee: i128,
    /// Indicative USD value at execution (cents), when known.
    #[serde(default)]
    pub notional_usd: Option<i128>,
    pub executed_at: TimestampMs,
    pub transaction: TransactionId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub client_order_id: ClientReference,
    pub client_id: ClientId,
    /// `quote` so far.
    pub order_type: String,
    pub quote_id: Option<String>,
    pub instrument: String,
    pub side: Side,
    pub quantity: i128,
    pub status: OrderStatus,
    pub filled_quantity: i128,
    /// Quantity-weighted average fill price, rounded against the client (up for buys, down for sells).
    pub average_price: Option<i128>,
    pub created_at: TimestampMs,
    pub trade_ids: Vec<String>,
    /// What the request asked for, to tell an idempotent repeat from a conflicting one.
    pub request: OrderRequest,
    /// Limit orders that rest (`gtc`, `gtd`): their limit, reservation and fills so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resting: Option<super::resting::RestingState>,
    /// Why the desk (not the client) cancelled the order, e.g. the client's credit no longer covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl Order {
    /// Still working: open or partially filled.
    pub fn is_live(&self) -> bool {
        matches!(self.status, OrderStatus::Open | OrderStatus::PartiallyFilled)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OrderBook {
    /// Histories grow for the desk's lifetime: chunked so that growing them never stalls the engine.
    pub(super) orders: ChunkedVec<Order>,
    pub(super) trades: ChunkedVec<Trade>,
    /// Live resting orders by instrument, side and limit price, and by expiry (rebuilt from `orders`).
    #[serde(skip)]
    pub(super) resting: super::resting::RestingIndex,
    #[serde(skip)]
    /// A B-tree, not a hash map: it grows with every order for the desk's lifetime, and a hash map's
    /// rehash-everything growth would stall the engine for tens of milliseconds once it holds millions.
    by_client_order_id: BTreeMap<(ClientId, ClientReference), usize>,
    /// Positions of each client's orders and trades, in time order (so per-client lists never scan the desk).
    #[serde(skip)]
    orders_by_client: HashMap<ClientId, ChunkedVec<usize>>,
    #[serde(skip)]
    trades_by_client: HashMap<ClientId, ChunkedVec<usize>>,
    /// Each client's trade times and running USD notional, for checks over time windows.
    #[serde(skip)]
    trade_flow_by_client: HashMap<ClientId, super::alerts::TradeFlow>,
}

/// The id of the order at `position` of the history.
fn order_id_at(position: usize) -> String {
    format!("o_{:012}", position + 1)
}

impl OrderBook {
    pub fn rebuild_indexes(&mut self) {
        self.by_client_order_id.clear();
        self.orders_by_client.clear();
        self.trades_by_client.clear();
        self.trade_flow_by_client.clear();
        for (position, order) in self.orders.iter().enumerate() {
            assert_eq!(order.order_id, order_id_at(position), "order ids are their position in the history");
            self.by_client_order_id.insert((order.client_id.clone(), order.client_order_id.clone()), position);
            self.orders_by_client.entry(order.client_id.clone()).or_default().push(position);
        }
        for (position, trade) in self.trades.iter().enumerate() {
            self.trades_by_client.entry(trade.client_id.clone()).or_default().push(position);
            self.trade_flow_by_client
                .entry(trade.client_id.clone())
                .or_default()
                .push(trade.executed_at, trade.notional_usd);
        }
        self.resting = super::resting::RestingIndex::default();
        for (position, order) in self.orders.iter().enumerate() {
            if order.is_live() {
                self.resting.insert(position, order);
            }
        }
    }

    pub(super) fn next_order_id(&self) -> String {
        order_id_at(self.orders.len())
    }

    /// Order ids are dense: `o_` and the 1-based position in the history (no index to grow or rehash).
    pub(super) fn position_of(&self, order_id: &str) -> Option<usize> {
        let number: usize = order_id.strip_prefix("o_")?.parse().ok()?;
        let position = number.checked_sub(1)?;
        // "o_1" parses like "o_000000000001" but is not an id the desk gave.
        (self.orders.get(position)?.order_id == order_id).then_some(position)
    }

    pub(super) fn push_trade(&mut self, trade: Trade) {
        self.trades_by_client.entry(trade.client_id.clone()).or_default().push(self.trades.len());
        self.trade_flow_by_client
            .entry(trade.client_id.clone())
            .or_default()
            .push(trade.executed_at, trade.notional_usd);
        self.trades.push(trade);
    }

    /// Records an order and indexes it (alone: an immediate limit order whose limit was not reached).
    pub(super) fn push_order(&mut self, order: Order) {
        let position = self.orders.len();
        assert_eq!(order.order_id, order_id_at(position), "order ids are their position in the history");
        self.by_client_order_id.insert((order.client_id.clone(), order.client_order_id.clone()), position);
        self.orders_by_client.entry(order.client_id.clone()).or_default().push(position);
        self.orders.push(order);
    }

    /// Records an order filled by one trade.
    fn push(&mut self, order: Order, trade: Trade) {
        self.push_trade(trade);
        self.push_order(order);
    }

    pub fn order(&self, order_id: &str) -> Option<&Order> {
        self.position_of(order_id).map(|position| &self.orders[position])
    }

    pub fn orders(&self) -> &ChunkedVec<Order> {
        &self.orders
    }

    pub fn trades(&self) -> &ChunkedVec<Trade> {
        &self.trades
    }

    pub fn trade(&self, trade_id: &str) -> Option<&Trade> {
        let number: usize = trade_id.strip_prefix("t_")?.parse().ok()?;
        self.trades.get(number.checked_sub(1)?)
    }

    pub(super) fn trade_flow(&self, client_id: &ClientId) -> Option<&super::alerts::TradeFlow> {
        self.trade_flow_by_client.get(client_id)
    }
}

impl Desk {
    pub fn order(&self, order_id: &str) -> Option<&Order> {
        self.orders.order(order_id)
    }

    /// Every order, oldest first (operators, simulations).
    pub fn all_orders(&self) -> &ChunkedVec<Order> {
        self.orders.orders()
    }

    /// Every trade, oldest first (simulations, and checks that each new trade was published).
    pub fn all_trades(&self) -> &ChunkedVec<Trade> {
        self.orders.trades()
    }

    /// A client's orders, oldest first.
    pub fn orders_of<'a>(&'a self, client_id: &ClientId) -> impl DoubleEndedIterator<Item = &'a Order> + 'a {
        let positions = self.orders.orders_by_client.get(client_id).map(ChunkedVec::iter).unwrap_or_default();
        positions.map(|position| &self.orders.orders[*position])
    }

    /// The client's order placed with `client_order_id`, through any edge.
    pub fn order_by_client_order_id(&self, client_id: &ClientId, client_order_id: &ClientReference) -> Option<&Order> {
        let position = self.orders.by_client_order_id.get(&(client_id.clone(), client_order_id.clone()))?;
        Some(&self.orders.orders[*position])
    }

    /// A client's trades, oldest first.
    pub fn trades_of<'a>(&'a self, client_id: &ClientId) -> impl DoubleEndedIterator<Item = &'a Trade> + 'a {
        let positions = self.orders.trades_by_client.get(client_id).map(ChunkedVec::iter).unwrap_or_default();
        positions.map(|position| &self.orders.trades[*position])
    }

    pub fn trade(&self, trade_id: &str) -> Option<&Trade> {
        self.orders.trade(trade_id)
    }

    /// The original order for a repeated client_order_id; `Err(conflict)` when the repeat asks for something else.
    pub(super) fn repeated_order(
        &self,
        client_id: &ClientId,
        client_order_id: &ClientReference,
        request: &OrderRequest,
    ) -> Result<Option<Order>, CommandError> {
        let Some(position) = self.orders.by_client_order_id.get(&(client_id.clone(), client_order_id.clone())) else {
            return Ok(None);
        };
        let original = &self.orders.orders[*position];
        if original.request != *request {
            return Err(CommandError::conflict("this client_order_id was used for a different order"));
        }
        Ok(Some(original.clone()))
    }

    /// The client, if it may trade now (approved, unexpired KYC).
    pub(super) fn trading_client(&self, at: TimestampMs, client_id: &ClientId) -> Result<Client, CommandError> {
        let client = self.clients.get(client_id).ok_or_else(|| CommandError::not_found("client"))?;
        self.check_screening(client)?;
        if !client.kyc_valid_at(at) {
            return Err(CommandError::KycRequired);
        }
        if self.orders.orders.len() >= ORDERS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of orders"));
        }
        Ok(client.clone())
    }

    pub(super) fn market_order(&mut self, at: TimestampMs, request: &MarketOrder) -> Result<Executed, CommandError> {
        let identity = OrderRequest::Market {
            instrument: request.instrument.clone(),
            side: request.side,
            quantity: request.quantity,
            reference_price: request.reference_price,
            slippage_centi_bps: request.slippage_centi_bps,
        };
        if let Some(original) = self.repeated_order(&request.client_id, &request.client_order_id, &identity)? {
            return Ok(Executed { outcome: Outcome::Order(original), changed: false });
        }
        let client = self.trading_client(at, &request.client_id)?;
        let instrument = self.instrument(&request.instrument)?.clone();
        super::quotes::validate_quantity(&instrument, request.quantity, "quantity")?;
        self.check_trading_allowed(&instrument)?;
        self.check_jurisdiction_instrument(&client, &instrument)?;
        self.require_capacity(&instrument, request.side, request.quantity)?;
        let price = self.firm_price(at, &client, &instrument, request)?;
        check_slippage(request.side, price, request.reference_price, request.slippage_centi_bps)?;
        let terms = FillTerms {
            side: request.side,
            price,
            quantity: request.quantity,
            notional_usd: request.notional_usd,
            fee_centi_bps: self.fee_rate(&client),
        };
        let trade = self.settle_trade(at, self.orders.next_order_id(), &client, &instrument, &terms)?;
        let order = filled_order(&trade, &request.client_order_id, "market", None, identity, at);
        self.orders.push(order.clone(), trade);
        self.after_trade(at, &order.client_id);
        Ok(Executed::changed(Outcome::Order(order)))
    }

    pub(super) fn limit_order(&mut self, at: TimestampMs, request: &LimitOrder) -> Result<Executed, CommandError> {
        let market = &request.order;
        let identity = OrderRequest::Limit {
            instrument: market.instrument.clone(),
            side: market.side,
            quantity: market.quantity,
            limit_price: request.limit_price,
            time_in_force: request.time_in_force,
            expire_at: request.expire_at,
        };
        if let Some(original) = self.repeated_order(&market.client_id, &market.client_order_id, &identity)? {
            return Ok(Executed { outcome: Outcome::Order(original), changed: false });
        }
        let client = self.trading_client(at, &market.client_id)?;
        let instrument = self.instrument(&market.instrument)?.clone();
        super::quotes::validate_quantity(&instrument, market.quantity, "quantity")?;
        if request.limit_price <= 0 || request.limit_price % instrument.price_step != 0 {
            return Err(CommandError::invalid(
                "limit_price",
                "must be positive and on the instrument's price increment",
            ));
        }
        self.check_trading_allowed(&instrument)?;
        self.check_jurisdiction_instrument(&client, &instrument)?;
        if request.time_in_force.rests() {
            return self.place_resting_order(at, &client, &instrument, request, identity);
        }
        if request.expire_at.is_some() {
            return Err(CommandError::invalid("expire_at", "only gtd orders take expire_at"));
        }
        let price = self.firm_price(at, &client, &instrument, market)?;
        let reached = limit_reached(market.side, price, request.limit_price);
        let capacity = self.desk_capacity(&instrument, market.side, market.quantity);
        let fill_quantity = match request.time_in_force {
            TimeInForce::Fok if capacity < market.quantity => 0,
            _ => capacity.min(market.quantity),
        };
        if !reached || fill_quantity == 0 {
            let order = self.unfilled_order(at, market, &instrument, identity, OrderStatus::Cancelled);
            self.orders.push_order(order.clone());
            return Ok(Executed::changed(Outcome::Order(order)));
        }
        // A smaller fill is priced for its own size (never worse than the whole order's price).
        let (price, notional) = if fill_quantity < market.quantity {
            let partial = MarketOrder { quantity: fill_quantity, ..market.clone() };
            (
                self.firm_price(at, &client, &instrument, &partial)?,
                prorate(market.notional_usd, fill_quantity, market.quantity),
            )
        } else {
            (price, market.notional_usd)
        };
        let terms = FillTerms {
            side: market.side,
            price,
            quantity: fill_quantity,
            notional_usd: notional,
            fee_centi_bps: self.fee_rate(&client),
        };
        let trade = self.settle_trade(at, self.orders.next_order_id(), &client, &instrument, &terms)?;
        let mut order = filled_order(&trade, &market.client_order_id, "limit", None, identity, at);
        if fill_quantity < market.quantity {
            // ioc: the rest is cancelled at once.
            order.quantity = market.quantity;
            order.status = OrderStatus::Cancelled;
            order.cancel_reason = Some("desk capacity: the rest of an ioc order is cancelled".into());
        }
        self.orders.push(order.clone(), trade);
        self.after_trade(at, &order.client_id);
        Ok(Executed::changed(Outcome::Order(order)))
    }

    /// An order recorded without any fill: an immediate order whose limit was not reached, or a new resting order.
    pub(super) fn unfilled_order(
        &self,
        at: TimestampMs,
        market: &MarketOrder,
        instrument: &Instrument,
        identity: OrderRequest,
        status: OrderStatus,
    ) -> Order {
        Order {
            order_id: self.orders.next_order_id(),
            client_order_id: market.client_order_id.clone(),
            client_id: market.client_id.clone(),
            order_type: "limit".into(),
            quote_id: None,
            instrument: instrument.symbol.clone(),
            side: market.side,
            quantity: market.quantity,
            status,
            filled_quantity: 0,
            average_price: None,
            created_at: at,
            trade_ids: Vec::new(),
            request: identity,
            resting: None,
            cancel_reason: None,
        }
    }

    pub(super) fn accept_quote(&mut self, at: TimestampMs, request: &AcceptQuote) -> Result<Executed, CommandError> {
        let identity = OrderRequest::Quote(request.clone());
        if let Some(original) = self.repeated_order(&request.client_id, &request.client_order_id, &identity)? {
            return Ok(Executed { outcome: Outcome::Order(original), changed: false });
        }
        let client = self.trading_client(at, &request.client_id)?;
        let quote = self.usable_quote(at, request)?;
        let side = quote
            .side
            .or(request.side)
            .ok_or_else(|| CommandError::invalid("side", "a streamed two-way quote needs the side: buy or sell"))?;
        if quote.side.is_some_and(|quoted| request.side.is_some_and(|asked| asked != quoted)) {
            return Err(CommandError::invalid("side", "does not match the quote's side"));
        }
        let price =
            quote.price_for(side).ok_or_else(|| CommandError::invalid("side", "the quote has no price for it"))?;
        let instrument = self.instrument(&quote.instrument)?.clone();
        self.check_trading_allowed(&instrument)?;
        self.check_jurisdiction_instrument(&client, &instrument)?;
        self.require_capacity(&instrument, side, quote.quantity)?;
        let terms = FillTerms {
            side,
            price,
            quantity: quote.quantity,
            notional_usd: request.notional_usd,
            // The rate the quote was given at: the client accepted the quote with it.
            fee_centi_bps: quote.fee_centi_bps,
        };
        let trade = self.settle_trade(at, self.orders.next_order_id(), &client, &instrument, &terms)?;
        self.quotes.mark_used(&quote.quote_id, &trade.order_id, at);
        let order = filled_order(&trade, &request.client_order_id, "quote", Some(quote.quote_id.clone()), identity, at);
        self.orders.push(order.clone(), trade);
        self.after_trade(at, &order.client_id);
        Ok(Executed::changed(Outcome::Order(order)))
    }

    /// The desk's firm price for a market order's size: the same pricing as an RFQ quote.
    pub(super) fn firm_price(
        &self,
        at: TimestampMs,
        client: &Client,
        instrument: &Instrument,
        request: &MarketOrder,
    ) -> Result<i128, CommandError> {
        super::quotes::validate_order_books(&request.books, instrument)?;
        let cross = if request.books.is_empty() { request.cross.as_ref() } else { None };
        let spread = self
            .tiers
            .get(&client.tier)
            .ok_or_else(|| CommandError::not_found("the client's tier"))?
            .spread_for(request.notional_usd);
        let skew = self.skew_for(instrument.base);
        let executable = self.executable_for(instrument, &request.books, cross, request.side, request.quantity, at)?;
        pricing::client_price(&executable, request.side, spread, skew, instrument.price_step)
            .map_err(|error| CommandError::PriceUnavailable(error.to_string()))
    }

    /// The client's own quote, unused and not expired at `at`. Someone else's quote is reported as not found,
    /// so quote ids reveal nothing about other clients.
    fn usable_quote(&self, at: TimestampMs, request: &AcceptQuote) -> Result<Quote, CommandError> {
        let quote = self
            .quotes
            .get(&request.quote_id)
            .filter(|quote| quote.client_id == request.client_id)
            .ok_or(CommandError::QuoteNotFound)?;
        if matches!(quote.state, QuoteState::Used { .. }) {
            return Err(CommandError::QuoteAlreadyUsed);
        }
        if at >= quote.valid_until {
            return Err(CommandError::QuoteExpired);
        }
        Ok(quote.clone())
    }

    /// Checks funds and limits, then posts both legs of a trade and its fee in one balanced transaction.
    pub(super) fn settle_trade(
        &mut self,
        at: TimestampMs,
        order_id: String,
        client: &Client,
        instrument: &Instrument,
        terms: &FillTerms,
    ) -> Result<Trade, CommandError> {
        // Computed before any account is opened: a refused command must change nothing.
        let amounts = self.fill_amounts(instrument, terms)?;
        self.check_tier_limits(at, client, terms.notional_usd)?;
        self.check_funds(client, amounts.gives, amounts.gives_amount, terms.notional_usd)?;
        self.check_fill_quote_limit(instrument, terms, &amounts)?;
        let floor = match client.settlement {
            Settlement::Prefunded => Some(0),
            Settlement::Credit => None,
        };
        let owner = Owner::Client(client.client_id.clone());
        let client_gives = self.ledger.open_account(
            AccountKey { owner: owner.clone(), asset: amounts.gives, purpose: Purpose::Available },
            floor,
        );
        let client_receives =
            self.ledger.open_account(AccountKey { owner, asset: amounts.receives, purpose: Purpose::Available }, floor);
        let trade_id = format!("t_{:012}", self.orders.trades.len() + 1);
        let mut postings = vec![
            Posting { account: client_gives, amount: -amounts.gives_amount },
            Posting { account: client_receives, amount: amounts.receives_amount },
        ];
        postings.extend(self.desk_fill_postings(instrument, &amounts));
        let transaction = self.ledger.apply(at, TransactionKind::Trade { reference: trade_id.clone() }, &postings)?;
        if client.settlement == Settlement::Credit {
            *self.credit_used.entry(client.client_id.clone()).or_default() += terms.notional_usd.unwrap_or(0);
            let legs = [(amounts.gives, -amounts.gives_amount), (amounts.receives, amounts.receives_amount)];
            self.accrue_obligation(&client.client_id, legs, terms.notional_usd.unwrap_or(0));
        }
        Ok(new_trade(trade_id, order_id, client, instrument, terms, &amounts, at, transaction))
    }

    /// Prefunded clients need the funds available now. Credit clients need room under their credit limit for
    /// the trade's USD notional; until net settlement exists (execution issue), usage is the sum of traded USD
    /// notionals at trade time.
    pub(super) fn check_funds(
        &self,
        client: &Client,
        asset: AssetCode,
        amount: i128,
        notional_usd: Option<i128>,
    ) -> Result<(), CommandError> {
        match client.settlement {
            Settlement::Prefunded => {
                let key =
                    AccountKey { owner: Owner::Client(client.client_id.clone()), asset, purpose: Purpose::Available };
                let available = self.ledger.account_id(&key).map_or(0, |account| self.ledger.balance(account));
                if available < amount {
                    return Err(CommandError::InsufficientFunds {
                        detail: format!("{asset} available is below what the trade needs"),
                    });
                }
            }
            Settlement::Credit => {
                let notional = notional_usd
                    .ok_or_else(|| CommandError::PriceUnavailable("no USD price to check the credit limit".into()))?;
                let used = self.credit_used.get(&client.client_id).copied().unwrap_or(0);
                if used + notional > client.credit_limit_usd.unwrap_or(0) {
                    return Err(CommandError::InsufficientFunds {
                        detail: "the trade exceeds the client's credit limit".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The client's tier limits for a trade of `notional_usd` cents: per trade, and per UTC day (trades since
    /// 00:00 UTC of the engine's time, at each trade's USD value when it executed). An unknown USD value passes
    /// only when the tier has no limits.
    pub(super) fn check_tier_limits(
        &self,
        at: TimestampMs,
        client: &Client,
        notional_usd: Option<i128>,
    ) -> Result<(), CommandError> {
        let Some(tier) = self.tiers.get(&client.tier) else { return Ok(()) };
        if tier.trade_notional_usd_max.is_none() && tier.daily_notional_usd_max.is_none() {
            return Ok(());
        }
        let notional = notional_usd
            .ok_or_else(|| CommandError::PriceUnavailable("no USD price to check the tier's limits".into()))?;
        if let Some(maximum) = tier.trade_notional_usd_max.filter(|maximum| notional > *maximum) {
            return Err(CommandError::LimitExceeded {
                limit: "trade_notional_usd_max",
                excess_usd_cents: notional - maximum,
            });
        }
        if let Some(maximum) = tier.daily_notional_usd_max {
            let day_start = TimestampMs(at.0.div_euclid(DAY_MS) * DAY_MS);
            let used = self.notional_traded_since(&client.client_id, day_start);
            if used + notional > maximum {
                return Err(CommandError::LimitExceeded {
                    limit: "daily_notional_usd_max",
                    excess_usd_cents: used + notional - maximum,
                });
            }
        }
        Ok(())
    }

    /// USD notional the client traded since `since` (cents; trades without a known USD value count zero).
    pub fn notional_traded_since(&self, client_id: &ClientId, since: TimestampMs) -> i128 {
        self.orders.trade_flow(client_id).map_or(0, |flow| flow.notional_since(since))
    }

    /// USD notional traded on credit so far (cents).
    pub fn credit_used(&self, client_id: &ClientId) -> i128 {
        self.credit_used.get(client_id).copied().unwrap_or(0)
    }
}

/// The trade record of one fill.
#[allow(clippy::too_many_arguments)]
pub(super) fn new_trade(
    trade_id: String,
    order_id: String,
    client: &Client,
    instrument: &Instrument,
    terms: &FillTerms,
    amounts: &FillAmounts,
    executed_at: TimestampMs,
    transaction: TransactionId,
) -> Trade {
    Trade {
        trade_id,
        order_id,
        client_id: client.client_id.clone(),
        instrument: instrument.symbol.clone(),
        side: terms.side,
        price: terms.price,
        quantity: terms.quantity,
        quote_amount: amounts.quote_amount,
        fee: amounts.fee,
        notional_usd: terms.notional_usd,
        executed_at,
        transaction,
    }
}

/// An order filled at once by one trade.
fn filled_order(
    trade: &Trade,
    client_order_id: &ClientReference,
    order_type: &str,
    quote_id: Option<String>,
    request: OrderRequest,
    at: TimestampMs,
) -> Order {
    Order {
        order_id: trade.order_id.clone(),
        client_order_id: client_order_id.clone(),
        client_id: trade.client_id.clone(),
        order_type: order_type.to_owned(),
        quote_id,
        instrument: trade.instrument.clone(),
        side: trade.side,
        quantity: trade.quantity,
        status: OrderStatus::Filled,
        filled_quantity: trade.quantity,
        average_price: Some(trade.price),
        created_at: at,
        trade_ids: vec![trade.trade_id.clone()],
        request,
        resting: None,
        cancel_reason: None,
    }
}

/// Whether a firm `price` satisfies a limit: a buyer pays at most the limit, a seller takes at least it.
pub(super) fn limit_reached(side: Side, price: i128, limit_price: i128) -> bool {
    match side {
        Side::Buy => price <= limit_price,
        Side::Sell => price >= limit_price,
    }
}

/// The USD value of part of an order, in proportion, rounded up (limits are checked against the client).
pub(super) fn prorate(notional_usd: Option<i128>, part: i128, whole: i128) -> Option<i128> {
    let notional = notional_usd?;
    if whole <= 0 {
        return Some(notional);
    }
    let scaled = notional.checked_mul(part)?;
    Some(scaled.div_euclid(whole) + i128::from(scaled.rem_euclid(whole) != 0))
}

/// Refuses a price worse than `reference` by more than `slippage_centi_bps` (0 when absent), compared exactly:
/// a buy refuses `price × 10^6 > reference × (10^6 + slippage)`, a sell `price × 10^6 < reference × (10^6 − slippage)`.
fn check_slippage(
    side: Side,
    price: i128,
    reference: Option<i128>,
    slippage_centi_bps: Option<i128>,
) -> Result<(), CommandError> {
    let Some(reference) = reference else { return Ok(()) };
    let slippage = slippage_centi_bps.unwrap_or(0);
    let scaled_price =
        price.checked_mul(pricing::CENTI_BPS_ONE).ok_or(CommandError::invalid("reference_price", "is out of range"))?;
    let (factor, worse) = match side {
        Side::Buy => (pricing::CENTI_BPS_ONE + slippage, true),
        Side::Sell => (pricing::CENTI_BPS_ONE - slippage, false),
    };
    let bound = reference.checked_mul(factor).ok_or(CommandError::invalid("reference_price", "is out of range"))?;
    let exceeded = if worse { scaled_price > bound } else { scaled_price < bound };
    if exceeded {
        return Err(CommandError::SlippageExceeded { price, reference });
    }
    Ok(())
}
