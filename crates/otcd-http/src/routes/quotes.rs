//! Prices and quotes: indicative prices, firm RFQ quotes, and the operator's manual market.

use super::parse_query;
use crate::app::{AppState, Signed};
use crate::json::{format_timestamp, parse_body, parse_quantity, DecimalText};
use crate::problem::{ApiError, ApiResult};
use crate::views::QuoteView;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::decimal::format_scaled;
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::Side;
use otcd_core::model::{RequestedSize, Scope};
use otcd_services::quotes::RfqTicket;
use serde::{Deserialize, Serialize};

fn client_of(signed: &Signed) -> ApiResult<ClientId> {
    signed.principal.key.client_id.clone().ok_or_else(|| ApiError::forbidden("quotes are for client keys"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceParams {
    quantity: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndicativePriceView {
    pub instrument: String,
    pub quantity: String,
    pub bid: String,
    pub ask: String,
    /// Always false: indicative prices cannot be executed.
    pub firm: bool,
    /// The oldest market data behind the prices.
    pub as_of: String,
}

/// Indicative two-way price for a size at the caller's tier spread (standard tier for desk keys). Stale market
/// data is still shown here, marked by `as_of`; firm quotes refuse it.
#[utoipa::path(get, path = "/v1/prices/{instrument}", tag = "quotes", params(("quantity" = Option<String>, Query, description = "defaults to the instrument's minimum")),
    responses((status = 200, body = IndicativePriceView), (status = 503, body = crate::problem::Problem)))]
pub async fn indicative_price(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<IndicativePriceView>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Admin))?;
    let params: PriceParams = parse_query(&uri)?;
    let desk = &state.desk;
    let instrument = desk.instrument(&symbol)?.clone();
    let quantity = match &params.quantity {
        Some(text) => parse_quantity(desk, &instrument, "quantity", &DecimalText(text.clone()))?,
        None => instrument.quantity_min,
    };
    let client_id = signed.principal.key.client_id.clone();
    let price = desk.indicative_price(client_id, &instrument, quantity).await?;
    Ok(Json(IndicativePriceView {
        instrument: instrument.symbol.clone(),
        quantity: format_scaled(price.quantity, desk.base_scale(&instrument)),
        bid: format_scaled(price.bid, instrument.price_scale),
        ask: format_scaled(price.ask, instrument.price_scale),
        firm: false,
        as_of: format_timestamp(price.as_of),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RfqRequest {
    /// Unique per client: a repeat with the same body returns the original quote.
    client_rfq_id: Option<String>,
    instrument: String,
    /// `buy` (the client receives the base asset) or `sell`.
    #[schema(value_type = String, example = "buy")]
    side: Side,
    /// Base quantity. Exactly one of `quantity` and `quote_quantity`.
    quantity: Option<DecimalText>,
    /// Amount of the quote asset to spend (buy) or receive (sell).
    quote_quantity: Option<DecimalText>,
}

/// A firm quote, executable once by this client before `valid_until`.
#[utoipa::path(post, path = "/v1/rfq", tag = "quotes", request_body = RfqRequest,
    responses((status = 201, body = QuoteView), (status = 200, description = "a repeat of an earlier request", body = QuoteView),
        (status = 403, body = crate::problem::Problem), (status = 503, body = crate::problem::Problem)))]
pub async fn request_for_quote(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<QuoteView>)> {
    signed.principal.require(Scope::Trade)?;
    let client_id = client_of(&signed)?;
    let request: RfqRequest = parse_body(&signed.body)?;
    let desk = &state.desk;
    let instrument = desk.instrument(&request.instrument)?.clone();
    let size = match (&request.quantity, &request.quote_quantity) {
        (Some(quantity), None) => RequestedSize::Base(parse_quantity(desk, &instrument, "quantity", quantity)?),
        (None, Some(amount)) => RequestedSize::Quote(amount.positive("quote_quantity", desk.quote_scale(&instrument))?),
        _ => return Err(ApiError::invalid("quantity", "give exactly one of quantity and quote_quantity")),
    };
    let client_rfq_id = request
        .client_rfq_id
        .as_deref()
        .map(|text| ClientReference::parse(text).map_err(|error| ApiError::invalid("client_rfq_id", error)))
        .transpose()?;
    let ticket = RfqTicket { client_id, client_rfq_id, instrument: instrument.clone(), side: request.side, size };
    let done = desk.request_quote(signed.principal.actor(), ticket).await?;
    let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(QuoteView::new(
            &done.value,
            &instrument,
            (desk.base_scale(&instrument), desk.quote_scale(&instrument)),
            desk.clock.now(),
        )),
    ))
}

/// One of the caller's quotes, with its state (`open`, `used`, `expired`).
#[utoipa::path(get, path = "/v1/quotes/{quote_id}", tag = "quotes", responses((status = 200, body = QuoteView), (status = 404, body = crate::problem::Problem)))]
pub async fn get_quote(
    State(state): State<AppState>,
    Path(quote_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<QuoteView>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Admin))?;
    let caller = signed.principal.key.client_id.clone();
    let quote = state
        .desk
        .read(move |desk| {
            desk.quote(&quote_id).filter(|quote| caller.as_ref().is_none_or(|own| *own == quote.client_id)).cloned()
        })
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "quote_not_found", "no such quote"))?;
    let instrument = state.desk.instrument(&quote.instrument)?;
    Ok(Json(QuoteView::new(
        &quote,
        instrument,
        (state.desk.base_scale(instrument), state.desk.quote_scale(instrument)),
        state.desk.clock.now(),
    )))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualMarketRequest {
    bid: DecimalText,
    ask: DecimalText,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ManualMarketView {
    pub instrument: String,
    pub bid: String,
    pub ask: String,
    pub as_of: String,
}

/// Sets the manual reference price (venue `manual`, unlimited depth), fresh as of now. It ages like any book.
#[utoipa::path(put, path = "/v1/admin/market/{instrument}", tag = "admin", request_body = ManualMarketRequest,
    responses((status = 200, body = ManualMarketView), (status = 400, body = crate::problem::Problem)))]
pub async fn put_manual_market(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    signed: Signed,
) -> ApiResult<Json<ManualMarketView>> {
    signed.principal.require(Scope::Admin)?;
    let instrument = state.desk.instrument(&symbol)?.clone();
    let request: ManualMarketRequest = parse_body(&signed.body)?;
    let bid = request.bid.positive("bid", instrument.price_scale)?;
    let ask = request.ask.positive("ask", instrument.price_scale)?;
    let as_of = state.desk.put_manual_market(&instrument, bid, ask)?;
    Ok(Json(ManualMarketView {
        instrument: instrument.symbol.clone(),
        bid: format_scaled(bid, instrument.price_scale),
        ask: format_scaled(ask, instrument.price_scale),
        as_of: format_timestamp(as_of),
    }))
}
