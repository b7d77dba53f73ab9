//! Hedging for operators: the policy per asset, and the hedges, desk positions and venue balances (docs/hedging.md).

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::json::{enum_text, format_timestamp, parse_body, DecimalText};
use crate::problem::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::Json;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::hedging::{ChildOrder, Hedge, HedgeTo, HedgingPolicy};
use otcd_core::engine::venue_transfers::{NewVenueTransfer, TransferDirection};
use otcd_core::ids::ClientReference;
use otcd_services::hedging::HedgingOverview;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HedgingPolicyRequest {
    enabled: bool,
    /// The position the desk aims for, in the asset (default "0").
    target: Option<DecimalText>,
    /// Hedge when the position leaves target ± band.
    band: DecimalText,
    /// `target` (default) or `band_edge`.
    hedge_to: Option<String>,
    /// Instruments (base = the asset) the hedge may trade, in preference order.
    instruments: Vec<String>,
    /// Venues the hedge may trade on.
    venues: Vec<String>,
    /// Largest child order, in the asset.
    order_quantity_max: DecimalText,
    /// Worst price a hedge may reach against the best price when it opened (bps, default "50").
    slippage_bps_max: Option<DecimalText>,
    /// Least time between two hedges of the asset opening, ms (default 0).
    interval_ms_min: Option<i64>,
    /// Routings a hedge may make (default 3: two retries).
    attempts_max: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HedgingPolicyView {
    pub asset: String,
    pub enabled: bool,
    pub target: String,
    pub band: String,
    pub hedge_to: String,
    pub instruments: Vec<String>,
    pub venues: Vec<String>,
    pub order_quantity_max: String,
    pub slippage_bps_max: String,
    pub interval_ms_min: i64,
    pub attempts_max: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChildOrderView {
    pub client_order_id: String,
    pub venue: String,
    pub quantity: String,
    pub limit_price: String,
    pub state: String,
    pub filled: String,
    pub fee: String,
    pub venue_order_id: Option<String>,
    pub reason: Option<String>,
    /// The venue did not answer it in time at least once (it may have filled since).
    pub timed_out: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HedgeView {
    pub hedge_id: String,
    pub asset: String,
    pub instrument: String,
    /// The desk's side at the venues.
    pub side: String,
    pub state: String,
    pub position_at_open: String,
    pub quantity: String,
    pub filled: String,
    /// Σ price × quantity of the fills (quote asset), before fees.
    pub quote_amount: String,
    pub fee: String,
    /// Fills' average price (absent before the first fill).
    pub average_price: Option<String>,
    pub arrival_price: String,
    pub limit_price: String,
    pub attempts: u32,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub failure: Option<String>,
    pub children: Vec<ChildOrderView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeskPositionView {
    pub asset: String,
    pub position: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VenueBalanceView {
    pub venue: String,
    pub taker_fee_bps: String,
    /// Asset → spendable balance at the venue, as the venue adapter reports it.
    pub balances: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HedgingView {
    pub policies: Vec<HedgingPolicyView>,
    pub positions: Vec<DeskPositionView>,
    pub active: Vec<HedgeView>,
    /// Newest first, at most 100.
    pub recent: Vec<HedgeView>,
    pub venues: Vec<VenueBalanceView>,
}

fn policy_view(state: &AppState, policy: &HedgingPolicy) -> HedgingPolicyView {
    let scale = state.desk.scale(&policy.asset);
    HedgingPolicyView {
        asset: policy.asset.to_string(),
        enabled: policy.enabled,
        target: format_scaled(policy.target, scale),
        band: format_scaled(policy.band, scale),
        hedge_to: enum_text(policy.hedge_to),
        instruments: policy.instruments.clone(),
        venues: policy.venues.clone(),
        order_quantity_max: format_scaled(policy.order_quantity_max, scale),
        slippage_bps_max: format_scaled(policy.slippage_centi_bps_max, 2),
        interval_ms_min: policy.interval_ms_min,
        attempts_max: policy.attempts_max,
    }
}

/// Views of a hedge, with the instrument's scales (public: the reports renderer shares the average price rule).
pub fn hedge_view(state: &AppState, hedge: &Hedge) -> HedgeView {
    let instrument = state.desk.catalog.instrument(&hedge.instrument);
    let (price_scale, base, quote) = instrument.map_or((0, 0, 0), |instrument| {
        (instrument.price_scale, state.desk.base_scale(instrument), state.desk.quote_scale(instrument))
    });
    let child = |child: &ChildOrder| ChildOrderView {
        client_order_id: child.client_order_id.clone(),
        venue: child.venue.clone(),
        quantity: format_scaled(child.quantity, base),
        limit_price: format_scaled(child.limit_price, price_scale),
        state: enum_text(child.state),
        filled: format_scaled(child.filled, base),
        fee: format_scaled(child.fee, quote),
        venue_order_id: child.venue_order_id.clone(),
        reason: child.reason.clone(),
        timed_out: child.timed_out,
    };
    HedgeView {
        hedge_id: hedge.hedge_id.clone(),
        asset: hedge.asset.to_string(),
        instrument: hedge.instrument.clone(),
        side: enum_text(hedge.side),
        state: enum_text(hedge.state),
        position_at_open: format_scaled(hedge.position_at_open, base),
        quantity: format_scaled(hedge.quantity, base),
        filled: format_scaled(hedge.filled, base),
        quote_amount: format_scaled(hedge.quote_amount, quote),
        fee: format_scaled(hedge.fee, quote),
        average_price: otcd_reports::hedging::average_price(hedge, base, quote, price_scale)
            .map(|price| format_scaled(price, price_scale)),
        arrival_price: format_scaled(hedge.arrival_price, price_scale),
        limit_price: format_scaled(hedge.limit_price, price_scale),
        attempts: hedge.attempts,
        opened_at: format_timestamp(hedge.opened_at),
        closed_at: hedge.closed_at.map(format_timestamp),
        failure: hedge.failure.clone(),
        children: hedge.children.iter().map(child).collect(),
    }
}

fn overview_view(state: &AppState, overview: &HedgingOverview) -> HedgingView {
    HedgingView {
        policies: overview.policies.iter().map(|policy| policy_view(state, policy)).collect(),
        positions: overview
            .positions
            .iter()
            .map(|(asset, position)| DeskPositionView {
                asset: asset.to_string(),
                position: format_scaled(*position, state.desk.scale(asset)),
            })
            .collect(),
        active: overview.active.iter().map(|hedge| hedge_view(state, hedge)).collect(),
        recent: overview.recent.iter().map(|hedge| hedge_view(state, hedge)).collect(),
        venues: overview
            .venues
            .iter()
            .map(|account| VenueBalanceView {
                venue: account.venue.clone(),
                taker_fee_bps: format_scaled(account.taker_fee_centi_bps, 2),
                balances: account
                    .balances
                    .iter()
                    .map(|(asset, amount)| (asset.to_string(), format_scaled(*amount, state.desk.scale(asset))))
                    .collect(),
            })
            .collect(),
    }
}

/// Sets the hedging policy of an asset.
#[utoipa::path(put, path = "/v1/admin/hedging/{asset}", tag = "admin", request_body = HedgingPolicyRequest,
    responses((status = 200, body = HedgingPolicyView)))]
pub async fn put_hedging_policy(
    State(state): State<AppState>,
    Path(asset): Path<String>,
    signed: Signed,
) -> ApiResult<Json<HedgingPolicyView>> {
    admin(&signed)?;
    let request: HedgingPolicyRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&asset)?;
    let target = request.target.as_ref().map(|target| target.signed("target", asset.scale)).transpose()?.unwrap_or(0);
    let slippage = match &request.slippage_bps_max {
        Some(bps) => bps.non_negative("slippage_bps_max", 2)?,
        None => 5_000,
    };
    let policy = HedgingPolicy {
        asset: asset.code,
        enabled: request.enabled,
        target,
        band: request.band.non_negative("band", asset.scale)?,
        hedge_to: match request.hedge_to.as_deref() {
            None | Some("target") => HedgeTo::Target,
            Some("band_edge") => HedgeTo::BandEdge,
            Some(_) => return Err(ApiError::invalid("hedge_to", "must be target or band_edge")),
        },
        instruments: request.instruments,
        venues: request.venues,
        order_quantity_max: request.order_quantity_max.positive("order_quantity_max", asset.scale)?,
        slippage_centi_bps_max: slippage,
        interval_ms_min: request.interval_ms_min.unwrap_or(0),
        attempts_max: request.attempts_max.unwrap_or(3),
    };
    let stored = state.desk.put_hedging_policy(signed.principal.actor(), policy).await?;
    Ok(Json(policy_view(&state, &stored)))
}

/// Policies, desk positions, active and recent hedges, and the venues' balances.
#[utoipa::path(get, path = "/v1/admin/hedging", tag = "admin", responses((status = 200, body = HedgingView)))]
pub async fn get_hedging(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<HedgingView>> {
    admin(&signed)?;
    let overview = state.desk.hedging_overview().await?;
    Ok(Json(overview_view(&state, &overview)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueTransferRequest {
    asset: String,
    /// Greater than zero, in the asset.
    amount: DecimalText,
    /// `to_venue` (from the custodian's hot wallet or the bank) or `from_venue` (back to them).
    direction: String,
    /// Unique: a repeat with the same body returns the original (200).
    reference: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VenueTransferView {
    pub transfer_id: String,
    pub venue: String,
    pub asset: String,
    pub amount: String,
    pub direction: String,
    pub reference: String,
    /// The ledger transaction (kind `transfer`, reference `venue:<reference>`).
    pub transaction_id: u64,
    pub created_at: String,
    /// What the desk holds at the venue in the asset after the transfer, by the ledger.
    pub venue_balance: String,
}

/// Moves desk holdings between its custodian (crypto) or bank (fiat) and a venue: one balanced ledger transaction.
#[utoipa::path(post, path = "/v1/admin/venues/{venue}/transfers", tag = "admin", request_body = VenueTransferRequest,
    responses((status = 201, body = VenueTransferView), (status = 200, body = VenueTransferView)))]
pub async fn create_venue_transfer(
    State(state): State<AppState>,
    Path(venue): Path<String>,
    signed: Signed,
) -> ApiResult<(axum::http::StatusCode, Json<VenueTransferView>)> {
    admin(&signed)?;
    let request: VenueTransferRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?;
    let direction = match request.direction.as_str() {
        "to_venue" => TransferDirection::ToVenue,
        "from_venue" => TransferDirection::FromVenue,
        _ => return Err(ApiError::invalid("direction", "must be to_venue or from_venue")),
    };
    let reference =
        ClientReference::parse(&request.reference).map_err(|error| ApiError::invalid("reference", error))?;
    let transfer = NewVenueTransfer {
        venue,
        asset: asset.code,
        amount: request.amount.positive("amount", asset.scale)?,
        direction,
        reference,
    };
    let done = state.desk.transfer_venue(signed.principal.actor(), transfer).await?;
    let transfer = done.value;
    let (venue, code) = (transfer.venue.clone(), transfer.asset);
    let holding = state.desk.read(move |desk| desk.venue_holding(&venue, code)).await?;
    let status = if done.changed { axum::http::StatusCode::CREATED } else { axum::http::StatusCode::OK };
    let view = VenueTransferView {
        transfer_id: transfer.transfer_id.clone(),
        venue: transfer.venue.clone(),
        asset: transfer.asset.to_string(),
        amount: format_scaled(transfer.amount, asset.scale),
        direction: enum_text(transfer.direction),
        reference: transfer.reference.to_string(),
        transaction_id: transfer.transaction.0,
        created_at: format_timestamp(transfer.created_at),
        venue_balance: format_scaled(holding, asset.scale),
    };
    Ok((status, Json(view)))
}
