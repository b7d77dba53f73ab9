//! Prices and quotes: indicative prices, firm RFQ quotes, and the operator's manual market.

use super::parse_query;
use crate::app::{AppState, Signed};
use crate::json::{format_timestamp, parse_body, DecimalText};
use crate::market_inputs::{fresh, notional_usd, one_side, quote_amount_usd, trim_for_quantity};
use crate::problem::{ApiError, ApiResult};
use crate::runner::now_ms;
use crate::views::QuoteView;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::catalog::Instrument;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::{Command, Outcome, QuoteRequest};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::{pricing, Side};
use otcd_core::model::{RequestedSize, Scope};
use serde::{Deserialize, Serialize};

pub fn instrument_of<'a>(state: &'a AppState, symbol: &str) -> ApiResult<&'a Instrument> {
    state.catalog.instrument(symbol).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "instrument_unknown",
            format!("unknown instrument {symbol:?}; see GET /v1/instruments"),
        )
    })
}

pub fn base_scale(state: &AppState, instrument: &Instrument) -> u8 {
    state.catalog.asset(&instrument.base).map_or(0, |asset| asset.scale)
}

pub fn quote_scale(state: &AppState, instrument: &Instrument) -> u8 {
    state.catalog.asset(&instrument.quote).map_or(0, |asset| asset.scale)
}

/// Parses a base quantity and checks the instrument's increment and limits.
pub fn parse_quantity(state: &AppState, instrument: &Instrument, field: &str, text: &DecimalText) -> ApiResult<i128> {
    let quantity = text.positive(field, base_scale(state, instrument))?;
    otcd_core::engine::quotes::validate_quantity(instrument, quantity, "quantity").map_err(|error| match error {
        otcd_core::engine::CommandError::Invalid { detail, .. } => ApiError::invalid(field, detail),
        other => other.into(),
    })?;
    Ok(quantity)
}

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
    let instrument = instrument_of(&state, &symbol)?.clone();
    let quantity = match &params.quantity {
        Some(text) => parse_quantity(&state, &instrument, "quantity", &DecimalText(text.clone()))?,
        None => instrument.quantity_min,
    };
    let books = state.market.all_books(&instrument.symbol);
    let notional = notional_usd(&state.market, &state.catalog, &instrument, quantity);
    let client_id = signed.principal.key.client_id.clone();
    let base = instrument.base;
    let (spread, skew) = state
        .engine
        .query(move |desk| {
            let tier = client_id.and_then(|id| desk.client(&id).map(|client| client.tier.clone()));
            let tier = tier.unwrap_or_else(|| otcd_core::ids::TierName::parse("standard").expect("valid"));
            desk.tier(&tier).map(|tier| (tier.spread_for(notional), desk.skew_for(base)))
        })
        .await?
        .ok_or_else(|| ApiError::internal("the client's tier is missing"))?;
    let unavailable = |error: pricing::PricingError| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "price_unavailable",
            format!("no market data for this size: {error}"),
        )
    };
    let now = now_ms();
    let cross = state.cross_for(&instrument, &books, now, false);
    let executable = |side| indicative_executable(&state, &instrument, &books, cross.as_ref(), side, quantity, now);
    let bid = executable(Side::Sell).map_err(unavailable)?;
    let ask = executable(Side::Buy).map_err(unavailable)?;
    let bid_price =
        pricing::client_price(&bid, Side::Sell, spread, skew, instrument.price_step).map_err(unavailable)?;
    let ask_price = pricing::client_price(&ask, Side::Buy, spread, skew, instrument.price_step).map_err(unavailable)?;
    Ok(Json(IndicativePriceView {
        instrument: instrument.symbol.clone(),
        quantity: format_scaled(quantity, base_scale(&state, &instrument)),
        bid: format_scaled(bid_price, instrument.price_scale),
        ask: format_scaled(ask_price, instrument.price_scale),
        firm: false,
        as_of: format_timestamp(bid.as_of.min(ask.as_of)),
    }))
}

/// An executable from the instrument's own books or, when it has none, through its cross legs (staleness
/// ignored: indicative).
pub fn indicative_executable(
    state: &AppState,
    instrument: &Instrument,
    books: &[otcd_core::market::VenueBook],
    cross: Option<&otcd_core::engine::CrossBooks>,
    side: Side,
    quantity: i128,
    now: otcd_core::time::TimestampMs,
) -> Result<pricing::Executable, pricing::PricingError> {
    let Some(cross) = cross.filter(|_| books.is_empty()) else {
        return pricing::executable(books, side, quantity, now, i64::MAX);
    };
    let leg = |symbol: &str| state.catalog.instrument(symbol).ok_or(pricing::PricingError::InvalidBook);
    let legs = otcd_core::market::cross::CrossLegs {
        base_leg: leg(&cross.base_leg)?,
        base_books: &cross.base_books,
        quote_leg: leg(&cross.quote_leg)?,
        quote_books: &cross.quote_books,
        base_scale: base_scale(state, instrument),
        quote_scale: quote_scale(state, instrument),
    };
    otcd_core::market::cross::cross_executable(instrument, &legs, side, quantity, now, i64::MAX)
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
    let instrument = instrument_of(&state, &request.instrument)?.clone();
    let size = match (&request.quantity, &request.quote_quantity) {
        (Some(quantity), None) => RequestedSize::Base(parse_quantity(&state, &instrument, "quantity", quantity)?),
        (None, Some(amount)) => {
            RequestedSize::Quote(amount.positive("quote_quantity", quote_scale(&state, &instrument))?)
        }
        _ => return Err(ApiError::invalid("quantity", "give exactly one of quantity and quote_quantity")),
    };
    let client_rfq_id = request
        .client_rfq_id
        .as_deref()
        .map(|text| ClientReference::parse(text).map_err(|error| ApiError::invalid("client_rfq_id", error)))
        .transpose()?;
    let books = fresh(&state.market, &instrument.symbol, now_ms());
    let (books, notional) = match size {
        RequestedSize::Base(quantity) => (
            trim_for_quantity(&books, Some(request.side), quantity),
            notional_usd(&state.market, &state.catalog, &instrument, quantity),
        ),
        RequestedSize::Quote(amount) => {
            (one_side(&books, request.side), quote_amount_usd(&state.market, &state.catalog, &instrument, amount))
        }
    };
    let cross = state.cross_for(&instrument, &books, now_ms(), true);
    let command = Command::RequestQuote(QuoteRequest {
        client_id,
        client_rfq_id,
        instrument: instrument.symbol.clone(),
        side: request.side,
        size,
        validity_ms: state.quote_validity_ms,
        notional_usd: notional,
        books,
        cross,
    });
    let executed = state.engine.submit(signed.principal.actor(), command).await?;
    match executed.outcome {
        Outcome::Quote(quote) => {
            let status = if executed.changed { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, Json(QuoteView::new(&quote, &instrument, base_scale(&state, &instrument), now_ms()))))
        }
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
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
        .engine
        .query(move |desk| {
            desk.quote(&quote_id).filter(|quote| caller.as_ref().is_none_or(|own| *own == quote.client_id)).cloned()
        })
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "quote_not_found", "no such quote"))?;
    let instrument = instrument_of(&state, &quote.instrument)?;
    Ok(Json(QuoteView::new(&quote, instrument, base_scale(&state, instrument), now_ms())))
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
    let instrument = instrument_of(&state, &symbol)?.clone();
    let request: ManualMarketRequest = parse_body(&signed.body)?;
    let bid = request.bid.positive("bid", instrument.price_scale)?;
    let ask = request.ask.positive("ask", instrument.price_scale)?;
    for (field, price) in [("bid", bid), ("ask", ask)] {
        if price % instrument.price_step != 0 {
            return Err(ApiError::invalid(field, "is not a multiple of the instrument's price increment"));
        }
    }
    if bid >= ask {
        return Err(ApiError::invalid("ask", "must be above the bid"));
    }
    let now = now_ms();
    let book = otcd_market::manual_book(&instrument, bid, ask, now).map_err(|error| ApiError::invalid("ask", error))?;
    state.market.publish(book).map_err(|error| ApiError::invalid("instrument", error))?;
    Ok(Json(ManualMarketView {
        instrument: instrument.symbol.clone(),
        bid: format_scaled(bid, instrument.price_scale),
        ask: format_scaled(ask, instrument.price_scale),
        as_of: format_timestamp(now),
    }))
}
