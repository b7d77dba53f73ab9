//! Orders: a firm quote's acceptance, market orders (now, at the firm price for the size, within a slippage
//! tolerance) and limit orders (`ioc`/`fok` now or never, `gtc`/`gtd` resting with their funds reserved and
//! filled later by the order watcher); cancels release the reservation.
//!
//! Each order command carries the market data it is priced from (fresh books trimmed to the size, or the cross
//! legs) and the USD notional for the client's limits, so the engine decides alone and replay repeats it.

use crate::market_inputs::{fresh, trim_for_quantity};
use crate::{DeskServices, Done, ServiceError, ServiceResult};
use otcd_core::catalog::Instrument;
use otcd_core::engine::orders::{AcceptQuote, LimitOrder, MarketOrder, Order, TimeInForce, Trade};
use otcd_core::engine::{Actor, Command, Desk, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::pricing::CENTI_BPS_ONE;
use otcd_core::market::Side;
use otcd_core::time::TimestampMs;

/// What a client asks to trade, parsed.
#[derive(Debug, Clone)]
pub enum OrderTicket {
    /// Execute a firm quote (an RFQ quote, or a streamed two-way quote with `side`).
    Quote { quote_id: String, side: Option<Side> },
    /// Execute now at the firm price for the size; refused when it is worse than `reference_price` by more than
    /// `slippage_centi_bps`.
    Market {
        instrument: Instrument,
        side: Side,
        quantity: i128,
        reference_price: Option<i128>,
        slippage_centi_bps: Option<i128>,
    },
    Limit {
        instrument: Instrument,
        side: Side,
        quantity: i128,
        limit_price: i128,
        time_in_force: TimeInForce,
        /// `gtd` only.
        expire_at: Option<TimestampMs>,
    },
}

/// An order with every trade it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderWithTrades {
    pub order: Order,
    pub trades: Vec<Trade>,
}

impl DeskServices {
    /// Places an order; a repeat of `client_order_id` with the same request answers the original order.
    pub async fn place_order(
        &self,
        actor: Actor,
        client_id: ClientId,
        client_order_id: ClientReference,
        ticket: OrderTicket,
    ) -> ServiceResult<Done<OrderWithTrades>> {
        let command = match ticket {
            OrderTicket::Quote { quote_id, side } => {
                let notional_usd = self.quote_notional(&client_id, &quote_id).await?;
                Command::AcceptQuote(AcceptQuote { client_id, client_order_id, quote_id, side, notional_usd })
            }
            OrderTicket::Market { instrument, side, quantity, reference_price, slippage_centi_bps } => {
                self.check_quantity(&instrument, quantity)?;
                if slippage_centi_bps.is_some_and(|centi_bps| !(0..CENTI_BPS_ONE).contains(&centi_bps)) {
                    return Err(ServiceError::invalid("slippage_bps", "must be below 10000"));
                }
                let order = self.market_order(&instrument, client_id, client_order_id, side, quantity);
                Command::MarketOrder(MarketOrder { reference_price, slippage_centi_bps, ..order })
            }
            OrderTicket::Limit { instrument, side, quantity, limit_price, time_in_force, expire_at } => {
                self.check_quantity(&instrument, quantity)?;
                check_expiry(time_in_force, expire_at)?;
                let order = self.market_order(&instrument, client_id, client_order_id, side, quantity);
                Command::LimitOrder(LimitOrder { order, limit_price, time_in_force, expire_at })
            }
        };
        let done = self.execute(actor, command, order_of).await?;
        let trades = self.trades_of(&done.value).await?;
        Ok(Done { value: OrderWithTrades { order: done.value, trades }, changed: done.changed })
    }

    /// Cancels one of the client's live orders and releases its reservation; any other order is
    /// `order_not_cancelable`.
    pub async fn cancel_order(
        &self,
        actor: Actor,
        client_id: ClientId,
        order_id: String,
    ) -> ServiceResult<OrderWithTrades> {
        let done = self.execute(actor, Command::CancelOrder { client_id, order_id }, order_of).await?;
        let trades = self.trades_of(&done.value).await?;
        Ok(OrderWithTrades { order: done.value, trades })
    }

    /// Cancels every live order of the client, or those of one instrument; answers the cancelled orders.
    pub async fn cancel_all_orders(
        &self,
        actor: Actor,
        client_id: ClientId,
        instrument: Option<String>,
    ) -> ServiceResult<Vec<OrderWithTrades>> {
        let command = Command::CancelAllOrders { client_id, instrument };
        let done = self
            .execute(actor, command, |outcome| match outcome {
                Outcome::Orders(orders) => Some(orders),
                _ => None,
            })
            .await?;
        let mut cancelled = Vec::with_capacity(done.value.len());
        for order in done.value {
            let trades = self.trades_of(&order).await?;
            cancelled.push(OrderWithTrades { order, trades });
        }
        Ok(cancelled)
    }

    /// The client's order with `client_order_id` (placed through any edge) and its trades, read in sequence with
    /// commands.
    pub async fn order_by_client_order_id(
        &self,
        client_id: ClientId,
        client_order_id: ClientReference,
    ) -> ServiceResult<Option<OrderWithTrades>> {
        self.read(move |desk| {
            desk.order_by_client_order_id(&client_id, &client_order_id).map(|order| order_with_trades(desk, order))
        })
        .await
    }

    /// A market order with the books (or cross legs) and USD notional it is priced from.
    fn market_order(
        &self,
        instrument: &Instrument,
        client_id: ClientId,
        client_order_id: ClientReference,
        side: Side,
        quantity: i128,
    ) -> MarketOrder {
        let now = self.clock.now();
        let books = fresh(&self.market, &instrument.symbol, now);
        let books = trim_for_quantity(&books, Some(side), quantity);
        let cross = self.cross_for(instrument, &books, now, true);
        MarketOrder {
            client_id,
            client_order_id,
            instrument: instrument.symbol.clone(),
            side,
            quantity,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: self.notional_usd(instrument, quantity),
            books,
            cross,
        }
    }

    /// USD notional of the quote's size (for credit limits); `None` when the quote is not the caller's (the engine
    /// then answers `quote_not_found`) or no USD price is known.
    async fn quote_notional(&self, client_id: &ClientId, quote_id: &str) -> ServiceResult<Option<i128>> {
        let (owner, quote_id) = (client_id.clone(), quote_id.to_owned());
        // An input of the command, never shown to the client: no need to wait for the journal.
        let quote = self
            .engine
            .peek(move |desk| {
                desk.quote(&quote_id)
                    .filter(|quote| quote.client_id == owner)
                    .map(|quote| (quote.instrument.clone(), quote.quantity))
            })
            .await?;
        Ok(quote.and_then(|(symbol, quantity)| self.notional_usd(self.catalog.instrument(&symbol)?, quantity)))
    }

    /// The order's trades. Read without waiting for the journal: the command that answered `order` is durable
    /// already, and a trade never changes.
    async fn trades_of(&self, order: &Order) -> ServiceResult<Vec<Trade>> {
        let trade_ids = order.trade_ids.clone();
        Ok(self.engine.peek(move |desk| trade_ids.iter().filter_map(|id| desk.trade(id).cloned()).collect()).await?)
    }
}

fn order_of(outcome: Outcome) -> Option<Order> {
    match outcome {
        Outcome::Order(order) => Some(order),
        _ => None,
    }
}

/// `gtd` orders need `expire_at`; no other order takes one.
fn check_expiry(time_in_force: TimeInForce, expire_at: Option<TimestampMs>) -> ServiceResult<()> {
    match (time_in_force, expire_at) {
        (TimeInForce::Gtd, None) => Err(ServiceError::invalid("expire_at", "a gtd order needs expire_at")),
        (TimeInForce::Gtc | TimeInForce::Ioc | TimeInForce::Fok, Some(_)) => {
            Err(ServiceError::invalid("expire_at", "only gtd orders take expire_at"))
        }
        _ => Ok(()),
    }
}

/// An order of the desk with its trades, read in sequence with commands.
pub fn order_with_trades(desk: &Desk, order: &Order) -> OrderWithTrades {
    let trades = order.trade_ids.iter().filter_map(|id| desk.trade(id).cloned()).collect();
    OrderWithTrades { order: order.clone(), trades }
}
