//! Orders and trades. `type: quote` executes a firm quote; `type: market` executes now at the desk's firm price
//! for the size within a slippage tolerance; `type: limit` fills when the firm price for its size reaches the
//! limit: `ioc`/`fok` now or never, `gtc`/`gtd` resting with their funds reserved (filled by the order watcher,
//! `order_watch.rs`). Cancels release the reservation.

use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::events::{Channel, ClientEvent};
use crate::json::{format_timestamp, parse_body};
use crate::market_inputs::notional_usd;
use crate::problem::{ApiError, ApiResult};
use crate::routes::quotes::{base_scale, instrument_of, quote_scale};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::orders::{AcceptQuote, Order, Trade};
use otcd_core::engine::{Command, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::Side;
use otcd_core::model::Scope;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteOrderRequest {
    /// Unique per client: a repeat with the same body returns the original order.
    client_order_id: String,
    /// `quote`.
    #[serde(rename = "type")]
    order_type: String,
    quote_id: String,
    /// Needed for a streamed two-way quote (`buy` takes its ask, `sell` its bid); must match an RFQ quote's side.
    #[schema(value_type = Option<String>)]
    side: Option<Side>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderTradeView {
    pub trade_id: String,
    pub price: String,
    pub quantity: String,
    /// The desk's fee on this fill, in the instrument's quote asset.
    pub fee: String,
    pub executed_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub client_order_id: String,
    #[serde(rename = "type")]
    pub order_type: String,
    pub quote_id: Option<String>,
    pub instrument: String,
    pub side: String,
    pub quantity: String,
    /// `filled`, `open`, `partially_filled`, `cancelled` or `expired`.
    pub status: String,
    pub filled_quantity: String,
    pub average_price: Option<String>,
    pub created_at: String,
    pub trades: Vec<OrderTradeView>,
    /// Limit orders: the limit, time in force and (gtd) expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<String>,
    /// Why the desk cancelled the order (e.g. desk capacity for the rest of an ioc order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TradeView {
    pub trade_id: String,
    pub order_id: String,
    pub instrument: String,
    pub side: String,
    pub price: String,
    pub quantity: String,
    /// The trade's value at its price, in the quote asset (before the fee).
    pub quote_amount: String,
    pub quote_asset: String,
    /// The desk's fee, in the quote asset (`"0.00"` when the client's tier has none).
    pub fee: String,
    /// What the client paid (buy: `quote_amount + fee`) or received (sell: `quote_amount − fee`).
    pub net_amount: String,
    pub executed_at: String,
}

fn side_text(side: Side) -> String {
    match side {
        Side::Buy => "buy".into(),
        Side::Sell => "sell".into(),
    }
}

/// What the client paid (buy) or received (sell) in the quote asset, the fee included.
pub(crate) fn net_amount(trade: &Trade) -> i128 {
    match trade.side {
        Side::Buy => trade.quote_amount + trade.fee,
        Side::Sell => trade.quote_amount - trade.fee,
    }
}

fn trade_view(state: &AppState, trade: &Trade) -> Option<TradeView> {
    let instrument = state.catalog.instrument(&trade.instrument)?;
    Some(TradeView {
        trade_id: trade.trade_id.clone(),
        order_id: trade.order_id.clone(),
        instrument: trade.instrument.clone(),
        side: side_text(trade.side),
        price: format_scaled(trade.price, instrument.price_scale),
        quantity: format_scaled(trade.quantity, base_scale(state, instrument)),
        quote_amount: format_scaled(trade.quote_amount, quote_scale(state, instrument)),
        quote_asset: instrument.quote.to_string(),
        fee: format_scaled(trade.fee, quote_scale(state, instrument)),
        net_amount: format_scaled(net_amount(trade), quote_scale(state, instrument)),
        executed_at: format_timestamp(trade.executed_at),
    })
}

pub(crate) fn order_view(state: &AppState, order: &Order, trades: &[Trade]) -> Option<OrderView> {
    let instrument = state.catalog.instrument(&order.instrument)?;
    let base = base_scale(state, instrument);
    let (limit_price, time_in_force, expire_at) = match &order.request {
        otcd_core::engine::orders::OrderRequest::Limit { limit_price, time_in_force, expire_at, .. } => (
            Some(format_scaled(*limit_price, instrument.price_scale)),
            Some(crate::json::enum_text(time_in_force)),
            expire_at.map(format_timestamp),
        ),
        _ => (None, None, None),
    };
    Some(OrderView {
        limit_price,
        time_in_force,
        expire_at,
        cancel_reason: order.cancel_reason.clone(),
        order_id: order.order_id.clone(),
        client_order_id: order.client_order_id.to_string(),
        order_type: order.order_type.clone(),
        quote_id: order.quote_id.clone(),
        instrument: order.instrument.clone(),
        side: side_text(order.side),
        quantity: format_scaled(order.quantity, base),
        status: crate::json::enum_text(order.status),
        filled_quantity: format_scaled(order.filled_quantity, base),
        average_price: order.average_price.map(|price| format_scaled(price, instrument.price_scale)),
        created_at: format_timestamp(order.created_at),
        trades: trades
            .iter()
            .map(|trade| OrderTradeView {
                trade_id: trade.trade_id.clone(),
                price: format_scaled(trade.price, instrument.price_scale),
                quantity: format_scaled(trade.quantity, base),
                fee: format_scaled(trade.fee, quote_scale(state, instrument)),
                executed_at: format_timestamp(trade.executed_at),
            })
            .collect(),
    })
}

fn own_client(signed: &Signed) -> ApiResult<ClientId> {
    signed.principal.key.client_id.clone().ok_or_else(|| ApiError::forbidden("orders are placed with client keys"))
}

/// Places an order. `type: quote` executes a firm quote at its price, once, before `valid_until`; `type: market`
/// executes now at the firm price for the size, refused with `slippage_exceeded` beyond the tolerance.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = QuoteOrderRequest,
    responses((status = 201, body = OrderView), (status = 200, description = "a repeat of an earlier order", body = OrderView),
        (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn place_order(State(state): State<AppState>, signed: Signed) -> ApiResult<(StatusCode, Json<OrderView>)> {
    signed.principal.require(Scope::Trade)?;
    let client_id = own_client(&signed)?;
    let value: serde_json::Value = parse_body(&signed.body)?;
    match value.get("type").and_then(|kind| kind.as_str()) {
        Some("quote") => {}
        Some("market") => return place_market_order(state, signed, client_id).await,
        Some("limit") => return place_limit_order(state, signed, client_id).await,
        _ => return Err(ApiError::invalid("type", "must be quote, market or limit")),
    }
    let request: QuoteOrderRequest = parse_body(&signed.body)?;
    debug_assert_eq!(request.order_type, "quote");
    let client_order_id = ClientReference::parse(&request.client_order_id)
        .map_err(|error| ApiError::invalid("client_order_id", error))?;
    let notional = quote_notional(&state, &client_id, &request.quote_id).await?;
    let command = Command::AcceptQuote(AcceptQuote {
        client_id: client_id.clone(),
        client_order_id,
        quote_id: request.quote_id,
        side: request.side,
        notional_usd: notional,
    });
    submit_order(&state, &signed, &client_id, command).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarketOrderRequest {
    client_order_id: String,
    /// `market`.
    #[serde(rename = "type")]
    order_type: String,
    instrument: String,
    #[schema(value_type = String, example = "buy")]
    side: Side,
    quantity: crate::json::DecimalText,
    /// The price the client expects; with `slippage_bps`, a worse firm price refuses the order.
    reference_price: Option<crate::json::DecimalText>,
    /// Tolerance in bps against `reference_price` (default 0).
    slippage_bps: Option<crate::json::DecimalText>,
}

async fn place_market_order(
    state: AppState,
    signed: Signed,
    client_id: ClientId,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let request: MarketOrderRequest = parse_body(&signed.body)?;
    debug_assert_eq!(request.order_type, "market");
    let client_order_id = ClientReference::parse(&request.client_order_id)
        .map_err(|error| ApiError::invalid("client_order_id", error))?;
    let instrument = instrument_of(&state, &request.instrument)?.clone();
    let quantity = crate::routes::quotes::parse_quantity(&state, &instrument, "quantity", &request.quantity)?;
    let reference_price = request
        .reference_price
        .as_ref()
        .map(|price| price.positive("reference_price", instrument.price_scale))
        .transpose()?;
    let slippage = request.slippage_bps.as_ref().map(|bps| bps.non_negative("slippage_bps", 2)).transpose()?;
    if slippage.is_some_and(|centi_bps| centi_bps >= otcd_core::market::pricing::CENTI_BPS_ONE) {
        return Err(ApiError::invalid("slippage_bps", "must be below 10000"));
    }
    let order = market_order_command(
        &state,
        &instrument,
        client_id.clone(),
        client_order_id,
        request.side,
        quantity,
        reference_price,
        slippage,
    );
    let command = Command::MarketOrder(order);
    submit_order(&state, &signed, &client_id, command).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitOrderRequest {
    client_order_id: String,
    /// `limit`.
    #[serde(rename = "type")]
    order_type: String,
    instrument: String,
    #[schema(value_type = String, example = "buy")]
    side: Side,
    quantity: crate::json::DecimalText,
    limit_price: crate::json::DecimalText,
    /// `gtc`, `gtd` (with `expire_at`), `ioc` or `fok`.
    time_in_force: String,
    /// RFC 3339; `gtd` only.
    expire_at: Option<String>,
}

async fn place_limit_order(
    state: AppState,
    signed: Signed,
    client_id: ClientId,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    use otcd_core::engine::orders::TimeInForce;
    let request: LimitOrderRequest = parse_body(&signed.body)?;
    debug_assert_eq!(request.order_type, "limit");
    let time_in_force = match request.time_in_force.as_str() {
        "ioc" => TimeInForce::Ioc,
        "fok" => TimeInForce::Fok,
        "gtc" => TimeInForce::Gtc,
        "gtd" => TimeInForce::Gtd,
        _ => return Err(ApiError::invalid("time_in_force", "must be gtc, gtd, ioc or fok")),
    };
    let expire_at =
        request.expire_at.as_deref().map(|text| crate::json::parse_timestamp("expire_at", text)).transpose()?;
    match (time_in_force, expire_at) {
        (TimeInForce::Gtd, None) => return Err(ApiError::invalid("expire_at", "a gtd order needs expire_at")),
        (TimeInForce::Gtc | TimeInForce::Ioc | TimeInForce::Fok, Some(_)) => {
            return Err(ApiError::invalid("expire_at", "only gtd orders take expire_at"))
        }
        _ => {}
    }
    let client_order_id = ClientReference::parse(&request.client_order_id)
        .map_err(|error| ApiError::invalid("client_order_id", error))?;
    let instrument = instrument_of(&state, &request.instrument)?.clone();
    let quantity = crate::routes::quotes::parse_quantity(&state, &instrument, "quantity", &request.quantity)?;
    let limit_price = request.limit_price.positive("limit_price", instrument.price_scale)?;
    let order = market_order_command(
        &state,
        &instrument,
        client_id.clone(),
        client_order_id,
        request.side,
        quantity,
        None,
        None,
    );
    let command =
        Command::LimitOrder(otcd_core::engine::orders::LimitOrder { order, limit_price, time_in_force, expire_at });
    submit_order(&state, &signed, &client_id, command).await
}

/// A market order with the books (or cross legs) and USD notional it is priced from.
#[allow(clippy::too_many_arguments)]
fn market_order_command(
    state: &AppState,
    instrument: &otcd_core::catalog::Instrument,
    client_id: ClientId,
    client_order_id: ClientReference,
    side: Side,
    quantity: i128,
    reference_price: Option<i128>,
    slippage_centi_bps: Option<i128>,
) -> otcd_core::engine::orders::MarketOrder {
    let now = crate::runner::now_ms();
    let books = crate::market_inputs::fresh(&state.market, &instrument.symbol, now);
    let books = crate::market_inputs::trim_for_quantity(&books, Some(side), quantity);
    let cross = state.cross_for(instrument, &books, now, true);
    otcd_core::engine::orders::MarketOrder {
        client_id,
        client_order_id,
        instrument: instrument.symbol.clone(),
        side,
        quantity,
        reference_price,
        slippage_centi_bps,
        notional_usd: notional_usd(&state.market, &state.catalog, instrument, quantity),
        books,
        cross,
    }
}

/// Submits an order command and answers with the order (201 when new, 200 for an idempotent repeat).
async fn submit_order(
    state: &AppState,
    signed: &Signed,
    client_id: &ClientId,
    command: Command,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let executed = state.engine.submit(signed.principal.actor(), command).await?;
    let Outcome::Order(order) = executed.outcome else { return Err(ApiError::internal("unexpected outcome")) };
    // The trades the order had when the command's reply was released: durable already, and a trade never
    // changes, so they are read without waiting for the journal again.
    let trade_ids = order.trade_ids.clone();
    let trades: Vec<Trade> =
        state.engine.peek(move |desk| trade_ids.iter().filter_map(|id| desk.trade(id).cloned()).collect()).await?;
    let view = order_view(state, &order, &trades).ok_or_else(|| ApiError::internal("order instrument missing"))?;
    if executed.changed {
        // The stream events follow the response rather than delay it (their balance reads wait for the journal).
        let (state, client_id, event_view) = (state.clone(), client_id.clone(), view.clone());
        tokio::spawn(async move { publish_fill(&state, &client_id, &event_view, &trades).await });
    }
    let status = if executed.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view)))
}

/// USD notional of the quote's size (for credit limits); `None` when the quote is not the caller's (the engine
/// then answers quote_not_found) or no USD price is known.
async fn quote_notional(state: &AppState, client_id: &ClientId, quote_id: &str) -> ApiResult<Option<i128>> {
    let (owner, quote_id) = (client_id.clone(), quote_id.to_owned());
    // An input of the command, never shown to the client: no need to wait for the journal.
    let quote = state
        .engine
        .peek(move |desk| {
            desk.quote(&quote_id)
                .filter(|quote| quote.client_id == owner)
                .map(|quote| (quote.instrument.clone(), quote.quantity))
        })
        .await?;
    Ok(quote.and_then(|(symbol, quantity)| {
        let instrument = state.catalog.instrument(&symbol)?;
        notional_usd(&state.market, &state.catalog, instrument, quantity)
    }))
}

fn trades_of_order(desk: &otcd_core::engine::Desk, order_id: &str) -> Vec<Trade> {
    desk.order(order_id)
        .map_or_else(Vec::new, |order| order.trade_ids.iter().filter_map(|id| desk.trade(id).cloned()).collect())
}

/// Pushes the order, its trades and the two changed balances to the client's stream subscribers.
async fn publish_fill(state: &AppState, client_id: &ClientId, view: &OrderView, trades: &[Trade]) {
    let publish = |channel, message: serde_json::Value| {
        state.events.publish(ClientEvent {
            client_id: client_id.clone(),
            channel,
            message: message.to_string().into(),
        });
    };
    let mut order = serde_json::to_value(view).unwrap_or_default();
    order["type"] = json!("order");
    order["order_type"] = json!(view.order_type);
    publish(Channel::Orders, order);
    for trade in trades.iter().filter_map(|trade| trade_view(state, trade)) {
        let mut message = serde_json::to_value(&trade).unwrap_or_default();
        message["type"] = json!("trade");
        publish(Channel::Trades, message);
    }
    if let Ok(instrument) = instrument_of(state, &view.instrument) {
        for asset in [instrument.base, instrument.quote] {
            crate::routes::admin::publish_balance(state, client_id, asset).await;
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderListParams {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "orders", responses((status = 200, body = OrderView), (status = 404, body = crate::problem::Problem)))]
pub async fn get_order(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<OrderView>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Trade))?;
    let client_id = own_client(&signed)?;
    let found = state
        .engine
        .query(move |desk| {
            let order = desk.order(&order_id).filter(|order| order.client_id == client_id)?.clone();
            let trades = trades_of_order(desk, &order.order_id);
            Some((order, trades))
        })
        .await?;
    let (order, trades) = found.ok_or_else(|| ApiError::not_found("no such order"))?;
    order_view(&state, &order, &trades).map(Json).ok_or_else(|| ApiError::internal("order instrument missing"))
}

/// The caller's orders, newest first, optionally by `status`.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(("status" = Option<String>, Query,), ("limit" = Option<usize>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = crate::views::ListView<OrderView>)))]
pub async fn list_orders(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<crate::views::ListView<OrderView>>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Trade))?;
    let client_id = own_client(&signed)?;
    let params: OrderListParams = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let status = match params.status.as_deref() {
        None => None,
        Some(text @ ("filled" | "open" | "partially_filled" | "cancelled" | "expired")) => Some(text.to_owned()),
        Some(_) => {
            return Err(ApiError::invalid("status", "must be filled, open, partially_filled, cancelled or expired"))
        }
    };
    let before: Option<String> = params.cursor;
    let (page, more) = state
        .engine
        .query(move |desk| {
            let mut matching = desk
                .orders_of(&client_id)
                .rev()
                .filter(|order| before.as_ref().is_none_or(|cursor| order.order_id < *cursor))
                .filter(|order| status.as_ref().is_none_or(|wanted| status_matches(order, wanted)));
            let page: Vec<(Order, Vec<Trade>)> = matching
                .by_ref()
                .take(limit)
                .map(|order| (order.clone(), trades_of_order(desk, &order.order_id)))
                .collect();
            (page, matching.next().is_some())
        })
        .await?;
    let items: Vec<OrderView> = page.iter().filter_map(|(order, trades)| order_view(&state, order, trades)).collect();
    let next_cursor = if more { items.last().map(|order| order.order_id.clone()) } else { None };
    Ok(Json(crate::views::ListView { items, next_cursor }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TradeListParams {
    instrument: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The caller's trades, newest first, by instrument and time window (`from` inclusive, `to` exclusive).
#[utoipa::path(get, path = "/v1/trades", tag = "orders",
    params(("instrument" = Option<String>, Query,), ("from" = Option<String>, Query,), ("to" = Option<String>, Query,), ("limit" = Option<usize>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = crate::views::ListView<TradeView>)))]
pub async fn list_trades(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<crate::views::ListView<TradeView>>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Trade))?;
    let client_id = own_client(&signed)?;
    let params: TradeListParams = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    if let Some(symbol) = &params.instrument {
        instrument_of(&state, symbol)?;
    }
    let from = params.from.as_deref().map(|text| crate::json::parse_timestamp("from", text)).transpose()?;
    let to = params.to.as_deref().map(|text| crate::json::parse_timestamp("to", text)).transpose()?;
    let (instrument, before) = (params.instrument, params.cursor);
    let (page, more) = state
        .engine
        .query(move |desk| {
            let mut matching = desk
                .trades_of(&client_id)
                .rev()
                .filter(|trade| before.as_ref().is_none_or(|cursor| trade.trade_id < *cursor))
                .filter(|trade| instrument.as_ref().is_none_or(|symbol| trade.instrument == *symbol))
                .filter(|trade| {
                    from.is_none_or(|from| trade.executed_at >= from) && to.is_none_or(|to| trade.executed_at < to)
                });
            let page: Vec<Trade> = matching.by_ref().take(limit).cloned().collect();
            (page, matching.next().is_some())
        })
        .await?;
    let items: Vec<TradeView> = page.iter().filter_map(|trade| trade_view(&state, trade)).collect();
    let next_cursor = if more { items.last().map(|trade| trade.trade_id.clone()) } else { None };
    Ok(Json(crate::views::ListView { items, next_cursor }))
}

/// Cancels one of the caller's live (open or partially filled) orders and releases its reservation; any other
/// order answers `409 order_not_cancelable`.
#[utoipa::path(delete, path = "/v1/orders/{order_id}", tag = "orders",
    responses((status = 200, body = OrderView), (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem)))]
pub async fn cancel_order(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<OrderView>> {
    signed.principal.require(Scope::Trade)?;
    let client_id = own_client(&signed)?;
    if order_id.len() > 64 {
        return Err(ApiError::not_found("no such order"));
    }
    let command = Command::CancelOrder { client_id, order_id };
    let executed = state.engine.submit(signed.principal.actor(), command).await?;
    let Outcome::Order(order) = executed.outcome else { return Err(ApiError::internal("unexpected outcome")) };
    let view = publish_orders(&state, vec![order], false).await.pop();
    view.map(Json).ok_or_else(|| ApiError::internal("order instrument missing"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelAllParams {
    instrument: Option<String>,
}

/// Cancels all of the caller's live orders, or those of `?instrument=`; answers the cancelled orders.
#[utoipa::path(delete, path = "/v1/orders", tag = "orders", params(("instrument" = Option<String>, Query,)),
    responses((status = 200, body = crate::views::ListView<OrderView>)))]
pub async fn cancel_all_orders(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<crate::views::ListView<OrderView>>> {
    signed.principal.require(Scope::Trade)?;
    let client_id = own_client(&signed)?;
    let params: CancelAllParams = parse_query(&uri)?;
    if let Some(symbol) = &params.instrument {
        instrument_of(&state, symbol)?;
    }
    let command = Command::CancelAllOrders { client_id: client_id.clone(), instrument: params.instrument };
    let executed = state.engine.submit(signed.principal.actor(), command).await?;
    let Outcome::Orders(orders) = executed.outcome else { return Err(ApiError::internal("unexpected outcome")) };
    let items = publish_orders(&state, orders, false).await;
    Ok(Json(crate::views::ListView { items, next_cursor: None }))
}

/// Pushes orders a command changed (fills from a tick, expiries, cancels) to their clients' streams, with the
/// order's latest trade when `with_latest_trade` (a tick fills an order at most once) and the balances; answers
/// their views.
pub(crate) async fn publish_orders(state: &AppState, orders: Vec<Order>, with_latest_trade: bool) -> Vec<OrderView> {
    let mut views = Vec::with_capacity(orders.len());
    for order in orders {
        let order_id = order.order_id.clone();
        let Ok(trades) = state.engine.query(move |desk| trades_of_order(desk, &order_id)).await else { continue };
        let Some(view) = order_view(state, &order, &trades) else { continue };
        let new_trades = if with_latest_trade { trades.last().cloned().into_iter().collect() } else { Vec::new() };
        publish_fill(state, &order.client_id, &view, &new_trades).await;
        views.push(view);
    }
    views
}

/// `open` lists every live order (open or partially filled); the other statuses match exactly.
fn status_matches(order: &Order, wanted: &str) -> bool {
    if wanted == "open" {
        return order.is_live();
    }
    crate::json::enum_text(order.status) == wanted
}
