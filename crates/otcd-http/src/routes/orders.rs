//! Orders and trades. `type: quote` executes a firm quote; `type: market` executes now at the desk's firm price
//! for the size within a slippage tolerance; `type: limit` fills when the firm price for its size reaches the
//! limit: `ioc`/`fok` now or never, `gtc`/`gtd` resting with their funds reserved (filled by the order watcher,
//! `otcd_services::order_watch`). Cancels release the reservation.

use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::json::{parse_body, parse_quantity, parse_timestamp, DecimalText};
use crate::problem::{ApiError, ApiResult};
use crate::views::{order_view, trade_view, OrderView, TradeView};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::engine::orders::{Order, TimeInForce, Trade};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::Side;
use otcd_core::model::Scope;
use otcd_services::orders::{order_with_trades, OrderTicket, OrderWithTrades};
use serde::Deserialize;

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
    quantity: DecimalText,
    /// The price the client expects; with `slippage_bps`, a worse firm price refuses the order.
    reference_price: Option<DecimalText>,
    /// Tolerance in bps against `reference_price` (default 0).
    slippage_bps: Option<DecimalText>,
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
    quantity: DecimalText,
    limit_price: DecimalText,
    /// `gtc`, `gtd` (with `expire_at`), `ioc` or `fok`.
    time_in_force: String,
    /// RFC 3339; `gtd` only.
    expire_at: Option<String>,
}

fn own_client(signed: &Signed) -> ApiResult<ClientId> {
    signed.principal.key.client_id.clone().ok_or_else(|| ApiError::forbidden("orders are placed with client keys"))
}

fn client_order_id(text: &str) -> ApiResult<ClientReference> {
    ClientReference::parse(text).map_err(|error| ApiError::invalid("client_order_id", error))
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
    let (client_order_id, ticket) = match value.get("type").and_then(|kind| kind.as_str()) {
        Some("quote") => quote_ticket(&signed.body)?,
        Some("market") => market_ticket(&state, &signed.body)?,
        Some("limit") => limit_ticket(&state, &signed.body)?,
        _ => return Err(ApiError::invalid("type", "must be quote, market or limit")),
    };
    let done = state.desk.place_order(signed.principal.actor(), client_id, client_order_id, ticket).await?;
    let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&state, &done.value)?)))
}

fn quote_ticket(body: &[u8]) -> ApiResult<(ClientReference, OrderTicket)> {
    let request: QuoteOrderRequest = parse_body(body)?;
    debug_assert_eq!(request.order_type, "quote");
    let client_order_id = client_order_id(&request.client_order_id)?;
    Ok((client_order_id, OrderTicket::Quote { quote_id: request.quote_id, side: request.side }))
}

fn market_ticket(state: &AppState, body: &[u8]) -> ApiResult<(ClientReference, OrderTicket)> {
    let request: MarketOrderRequest = parse_body(body)?;
    debug_assert_eq!(request.order_type, "market");
    let client_order_id = client_order_id(&request.client_order_id)?;
    let instrument = state.desk.instrument(&request.instrument)?.clone();
    let quantity = parse_quantity(&state.desk, &instrument, "quantity", &request.quantity)?;
    let reference_price = request
        .reference_price
        .as_ref()
        .map(|price| price.positive("reference_price", instrument.price_scale))
        .transpose()?;
    let slippage_centi_bps =
        request.slippage_bps.as_ref().map(|bps| bps.non_negative("slippage_bps", 2)).transpose()?;
    let ticket = OrderTicket::Market { instrument, side: request.side, quantity, reference_price, slippage_centi_bps };
    Ok((client_order_id, ticket))
}

fn limit_ticket(state: &AppState, body: &[u8]) -> ApiResult<(ClientReference, OrderTicket)> {
    let request: LimitOrderRequest = parse_body(body)?;
    debug_assert_eq!(request.order_type, "limit");
    let time_in_force = match request.time_in_force.as_str() {
        "ioc" => TimeInForce::Ioc,
        "fok" => TimeInForce::Fok,
        "gtc" => TimeInForce::Gtc,
        "gtd" => TimeInForce::Gtd,
        _ => return Err(ApiError::invalid("time_in_force", "must be gtc, gtd, ioc or fok")),
    };
    let expire_at = request.expire_at.as_deref().map(|text| parse_timestamp("expire_at", text)).transpose()?;
    let client_order_id = client_order_id(&request.client_order_id)?;
    let instrument = state.desk.instrument(&request.instrument)?.clone();
    let quantity = parse_quantity(&state.desk, &instrument, "quantity", &request.quantity)?;
    let limit_price = request.limit_price.positive("limit_price", instrument.price_scale)?;
    let side = request.side;
    let ticket = OrderTicket::Limit { instrument, side, quantity, limit_price, time_in_force, expire_at };
    Ok((client_order_id, ticket))
}

fn view(state: &AppState, placed: &OrderWithTrades) -> ApiResult<OrderView> {
    order_view(&state.desk.catalog, &placed.order, &placed.trades)
        .ok_or_else(|| ApiError::internal("order instrument missing"))
}

fn trades_of_order(desk: &otcd_core::engine::Desk, order: &Order) -> Vec<Trade> {
    order_with_trades(desk, order).trades
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
        .desk
        .read(move |desk| {
            let order = desk.order(&order_id).filter(|order| order.client_id == client_id)?;
            Some(order_with_trades(desk, order))
        })
        .await?;
    let found = found.ok_or_else(|| ApiError::not_found("no such order"))?;
    view(&state, &found).map(Json)
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
        .desk
        .read(move |desk| {
            let mut matching = desk
                .orders_of(&client_id)
                .rev()
                .filter(|order| before.as_ref().is_none_or(|cursor| order.order_id < *cursor))
                .filter(|order| status.as_ref().is_none_or(|wanted| status_matches(order, wanted)));
            let page: Vec<(Order, Vec<Trade>)> =
                matching.by_ref().take(limit).map(|order| (order.clone(), trades_of_order(desk, order))).collect();
            (page, matching.next().is_some())
        })
        .await?;
    let catalog = &state.desk.catalog;
    let items: Vec<OrderView> = page.iter().filter_map(|(order, trades)| order_view(catalog, order, trades)).collect();
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
        state.desk.instrument(symbol)?;
    }
    let from = params.from.as_deref().map(|text| parse_timestamp("from", text)).transpose()?;
    let to = params.to.as_deref().map(|text| parse_timestamp("to", text)).transpose()?;
    let (instrument, before) = (params.instrument, params.cursor);
    let (page, more) = state
        .desk
        .read(move |desk| {
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
    let items: Vec<TradeView> = page.iter().filter_map(|trade| trade_view(&state.desk.catalog, trade)).collect();
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
    let cancelled = state.desk.cancel_order(signed.principal.actor(), client_id, order_id).await?;
    view(&state, &cancelled).map(Json)
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
        state.desk.instrument(symbol)?;
    }
    let cancelled = state.desk.cancel_all_orders(signed.principal.actor(), client_id, params.instrument).await?;
    let catalog = &state.desk.catalog;
    let items = cancelled.iter().filter_map(|order| order_view(catalog, &order.order, &order.trades)).collect();
    Ok(Json(crate::views::ListView { items, next_cursor: None }))
}

/// `open` lists every live order (open or partially filled); the other statuses match exactly.
fn status_matches(order: &Order, wanted: &str) -> bool {
    if wanted == "open" {
        return order.is_live();
    }
    crate::json::enum_text(order.status) == wanted
}
