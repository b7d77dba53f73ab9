//! Trading controls for operators: instrument halts and the largest fill per trade, the desk-wide kill switch,
//! and the desk's position limits per asset (see `otcd_core::engine::controls` for the capacity rule).

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::json::{parse_body, DecimalText};
use crate::problem::ApiResult;
use axum::extract::{Path, State};
use axum::Json;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::controls::{InstrumentControl, KillSwitch, PositionLimit};
use otcd_core::engine::Desk;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstrumentControlRequest {
    /// `true` halts firm quotes and trading of the instrument; resting orders wait.
    halted: bool,
    reason: Option<String>,
    /// Largest fill per trade (base asset); absent = the instrument's maximum quantity.
    fill_quantity_max: Option<DecimalText>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstrumentControlView {
    pub instrument: String,
    pub halted: bool,
    pub reason: Option<String>,
    pub fill_quantity_max: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchRequest {
    /// `true` stops all firm quotes and trading on the desk.
    engaged: bool,
    reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KillSwitchView {
    pub engaged: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionLimitRequest {
    /// How long the desk may be, in the asset (absent: no limit).
    long_max: Option<DecimalText>,
    /// How short the desk may be, as a positive amount (absent: no limit).
    short_max: Option<DecimalText>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PositionLimitView {
    pub asset: String,
    pub long_max: Option<String>,
    pub short_max: Option<String>,
    /// The desk's position now (positive = long).
    pub position: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TradingControlsView {
    pub kill_switch: KillSwitchView,
    pub instruments: Vec<InstrumentControlView>,
    pub position_limits: Vec<PositionLimitView>,
}

fn base_scale_of(state: &AppState, symbol: &str) -> u8 {
    state.desk.catalog.instrument(symbol).map_or(0, |instrument| state.desk.base_scale(instrument))
}

fn instrument_view(state: &AppState, control: &InstrumentControl) -> InstrumentControlView {
    let scale = base_scale_of(state, &control.instrument);
    InstrumentControlView {
        instrument: control.instrument.clone(),
        halted: control.halted,
        reason: control.reason.clone(),
        fill_quantity_max: control.fill_quantity_max.map(|maximum| format_scaled(maximum, scale)),
    }
}

fn limit_view(state: &AppState, desk: &Desk, limit: &PositionLimit) -> PositionLimitView {
    let scale = state.desk.scale(&limit.asset);
    PositionLimitView {
        asset: limit.asset.to_string(),
        long_max: limit.long_max.map(|maximum| format_scaled(maximum, scale)),
        short_max: limit.short_max.map(|maximum| format_scaled(maximum, scale)),
        position: format_scaled(desk.desk_position(limit.asset), scale),
    }
}

/// Halts or resumes an instrument, and sets its largest fill per trade.
#[utoipa::path(put, path = "/v1/admin/instruments/{instrument}", tag = "admin", request_body = InstrumentControlRequest,
    responses((status = 200, body = InstrumentControlView)))]
pub async fn put_instrument_control(
    State(state): State<AppState>,
    Path(symbol): Path<String>,
    signed: Signed,
) -> ApiResult<Json<InstrumentControlView>> {
    admin(&signed)?;
    let request: InstrumentControlRequest = parse_body(&signed.body)?;
    let instrument = state.desk.instrument(&symbol)?.clone();
    let scale = base_scale_of(&state, &instrument.symbol);
    let fill_quantity_max =
        request.fill_quantity_max.as_ref().map(|maximum| maximum.positive("fill_quantity_max", scale)).transpose()?;
    let control = InstrumentControl {
        instrument: instrument.symbol.clone(),
        halted: request.halted,
        reason: request.reason,
        fill_quantity_max,
    };
    state.desk.put_instrument_control(signed.principal.actor(), control.clone()).await?;
    Ok(Json(instrument_view(&state, &control)))
}

/// Engages or releases the desk-wide kill switch.
#[utoipa::path(put, path = "/v1/admin/desk/kill-switch", tag = "admin", request_body = KillSwitchRequest,
    responses((status = 200, body = KillSwitchView)))]
pub async fn put_kill_switch(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<KillSwitchView>> {
    admin(&signed)?;
    let request: KillSwitchRequest = parse_body(&signed.body)?;
    let switch = KillSwitch { engaged: request.engaged, reason: request.reason };
    state.desk.put_kill_switch(signed.principal.actor(), switch.clone()).await?;
    Ok(Json(KillSwitchView { engaged: switch.engaged, reason: switch.reason }))
}

/// Sets the desk's position limits in an asset (both absent: no limits).
#[utoipa::path(put, path = "/v1/admin/desk/position-limits/{asset}", tag = "admin", request_body = PositionLimitRequest,
    responses((status = 200, body = PositionLimitView)))]
pub async fn put_position_limit(
    State(state): State<AppState>,
    Path(asset): Path<String>,
    signed: Signed,
) -> ApiResult<Json<PositionLimitView>> {
    admin(&signed)?;
    let request: PositionLimitRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&asset)?;
    let parse = |value: &Option<DecimalText>, field: &str| {
        value.as_ref().map(|amount| amount.non_negative(field, asset.scale)).transpose()
    };
    let limit = PositionLimit {
        asset: asset.code,
        long_max: parse(&request.long_max, "long_max")?,
        short_max: parse(&request.short_max, "short_max")?,
    };
    state.desk.put_position_limit(signed.principal.actor(), limit.clone()).await?;
    let state_for_view = state.clone();
    let view = state.desk.read(move |desk| limit_view(&state_for_view, desk, &limit)).await?;
    Ok(Json(view))
}

/// The kill switch, instrument controls and position limits in force.
#[utoipa::path(get, path = "/v1/admin/trading", tag = "admin", responses((status = 200, body = TradingControlsView)))]
pub async fn get_trading_controls(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<TradingControlsView>> {
    admin(&signed)?;
    let state_for_view = state.clone();
    let view = state
        .desk
        .read(move |desk| {
            let state = &state_for_view;
            let switch = desk.kill_switch();
            let mut instruments = Vec::new();
            for instrument in state.desk.catalog.instruments() {
                if let Some(control) = desk.instrument_control(&instrument.symbol) {
                    instruments.push(instrument_view(state, control));
                }
            }
            TradingControlsView {
                kill_switch: KillSwitchView { engaged: switch.engaged, reason: switch.reason.clone() },
                instruments,
                position_limits: desk.position_limits().map(|limit| limit_view(state, desk, limit)).collect(),
            }
        })
        .await?;
    Ok(Json(view))
}
