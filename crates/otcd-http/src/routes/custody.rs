//! Custody: client deposit addresses, the simulated custodian's on-chain deposits, hot/cold wallets, the sweep
//! policy and top-up approvals (see `otcd_core::engine::custody`).

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::json::{format_timestamp, parse_body, DecimalText};
use crate::problem::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::custody::{ChainDeposit, CustodyPolicy};
use otcd_core::model::Scope;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositAddressRequest {
    asset: String,
}

fn scale(state: &AppState, asset: &otcd_core::catalog::AssetCode) -> u8 {
    state.desk.scale(asset)
}

/// The caller's deposit address for a crypto asset (the same one every time).
#[utoipa::path(post, path = "/v1/deposit-addresses", tag = "settlement", request_body = DepositAddressRequest,
    responses((status = 201, description = "{\"asset\", \"network\", \"address\"}")))]
pub async fn deposit_address(State(state): State<AppState>, signed: Signed) -> ApiResult<(StatusCode, Json<Value>)> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Trade))?;
    let client_id = signed
        .principal
        .key
        .client_id
        .clone()
        .ok_or_else(|| ApiError::forbidden("deposit addresses belong to client keys"))?;
    let request: DepositAddressRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?.code;
    let done = state.desk.assign_deposit_address(signed.principal.actor(), client_id, asset).await?;
    let assigned = done.value;
    let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
    let body = json!({"asset": assigned.asset.to_string(), "network": assigned.network.as_str(), "address": assigned.address,
        "confirmations_required": otcd_core::engine::custody::confirmations_required(assigned.asset)});
    Ok((status, Json(body)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedDepositRequest {
    address: String,
    asset: String,
    amount: DecimalText,
}

fn chain_deposit_view(state: &AppState, deposit: &ChainDeposit) -> Value {
    json!({"transaction_id": deposit.transaction_id, "client_id": deposit.client_id.to_string(), "asset": deposit.asset.to_string(),
        "address": deposit.address, "amount": format_scaled(deposit.amount, scale(state, &deposit.asset)),
        "confirmations": deposit.confirmations, "confirmations_required": deposit.confirmations_required,
        "status": if deposit.credited_at.is_some() { "credited" } else { "confirming" },
        "seen_at": format_timestamp(deposit.seen_at), "credited_at": deposit.credited_at.map(format_timestamp)})
}

/// The simulated custodian sees an on-chain payment to a deposit address (0 confirmations); the settlement
/// worker adds one confirmation per poll until the asset's requirement, then the client is credited.
#[utoipa::path(post, path = "/v1/admin/custody/simulate-deposit", tag = "settlement", request_body = SimulatedDepositRequest,
    responses((status = 201, description = "the observed deposit")))]
pub async fn simulate_deposit(State(state): State<AppState>, signed: Signed) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&signed)?;
    let request: SimulatedDepositRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?;
    let amount = request.amount.positive("amount", asset.scale)?;
    let deposit = state.desk.simulate_chain_deposit(signed.principal.actor(), request.address, &asset, amount).await?;
    Ok((StatusCode::CREATED, Json(chain_deposit_view(&state, &deposit))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustodyPolicyRequest {
    hot_min: DecimalText,
    hot_target: DecimalText,
    hot_max: DecimalText,
}

/// Sets the hot-wallet bounds of a crypto asset; applied at once.
#[utoipa::path(put, path = "/v1/admin/custody/policies/{asset}", tag = "settlement", request_body = CustodyPolicyRequest,
    responses((status = 200, description = "the wallets after the policy")))]
pub async fn put_policy(
    State(state): State<AppState>,
    Path(asset): Path<String>,
    signed: Signed,
) -> ApiResult<Json<Value>> {
    admin(&signed)?;
    let request: CustodyPolicyRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&asset)?;
    let policy = CustodyPolicy {
        asset: asset.code,
        hot_min: request.hot_min.non_negative("hot_min", asset.scale)?,
        hot_target: request.hot_target.non_negative("hot_target", asset.scale)?,
        hot_max: request.hot_max.non_negative("hot_max", asset.scale)?,
    };
    state.desk.put_custody_policy(signed.principal.actor(), policy).await?;
    custody_overview(&state).await.map(Json)
}

/// Approves a top-up of the hot wallet from cold.
#[utoipa::path(post, path = "/v1/admin/custody/top-ups/{top_up_id}/approve", tag = "settlement", responses((status = 200)))]
pub async fn approve_top_up(
    State(state): State<AppState>,
    Path(top_up_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<Value>> {
    admin(&signed)?;
    state.desk.approve_top_up(signed.principal.actor(), top_up_id).await?;
    custody_overview(&state).await.map(Json)
}

/// The desk's custody and bank holdings per asset against what the (simulated) custodian and bank report, with
/// submitted payouts and confirming deposits as reconciling items and every unexplained difference as a break.
#[utoipa::path(get, path = "/v1/admin/reconciliation", tag = "settlement",
    responses((status = 200, body = crate::views::ReconciliationView)))]
pub async fn get_reconciliation(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<crate::views::ReconciliationView>> {
    admin(&signed)?;
    let reconciliation = state.desk.reconcile().await?;
    Ok(Json(crate::views::reconciliation_view(&reconciliation, &state.desk.catalog)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RailMovementRequest {
    asset: String,
    /// Signed decimal: positive arrives at the desk's account at the rail, negative leaves it.
    amount: DecimalText,
    /// The rail's own reference, 1 to 200 bytes; recorded once.
    reference: String,
}

/// The simulated custodian or bank books a movement the desk has no record of (a network fee, an unannounced
/// wire): what reconciliation exists to catch. Only the simulated rails take this.
#[utoipa::path(post, path = "/v1/admin/custody/simulate-rail-movement", tag = "settlement", request_body = RailMovementRequest,
    responses((status = 201, description = "recorded"), (status = 409, description = "the reference is already on the rail's books")))]
pub async fn simulate_rail_movement(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&signed)?;
    let request: RailMovementRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?;
    let amount = request.amount.signed("amount", asset.scale)?;
    if !state.desk.simulate_rail_movement(&asset, amount, request.reference.clone())? {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", "the reference is already on the rail's books"));
    }
    let body = json!({"reference": request.reference, "asset": asset.code.to_string(),
        "amount": format_scaled(amount, asset.scale)});
    Ok((StatusCode::CREATED, Json(body)))
}

/// Hot and cold holdings per crypto asset, the policies, top-ups and deposits still confirming.
#[utoipa::path(get, path = "/v1/admin/custody", tag = "settlement", responses((status = 200)))]
pub async fn get_custody(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<Value>> {
    admin(&signed)?;
    custody_overview(&state).await.map(Json)
}

async fn custody_overview(state: &AppState) -> ApiResult<Value> {
    let view_state = state.clone();
    let overview = state
        .desk
        .read(move |desk| {
            let state = &view_state;
            let wallets: Vec<Value> = state
                .desk
                .catalog
                .assets()
                .iter()
                .filter(|asset| asset.kind == otcd_core::catalog::AssetKind::Crypto)
                .map(|asset| {
                    let (hot, cold) = desk.wallet_holdings(asset.code);
                    json!({"asset": asset.code.to_string(), "hot": format_scaled(hot, asset.scale), "cold": format_scaled(cold, asset.scale)})
                })
                .collect();
            let policies: Vec<Value> = desk
                .custody_policies()
                .map(|policy| {
                    let scale = scale(state, &policy.asset);
                    json!({"asset": policy.asset.to_string(), "hot_min": format_scaled(policy.hot_min, scale),
                        "hot_target": format_scaled(policy.hot_target, scale), "hot_max": format_scaled(policy.hot_max, scale)})
                })
                .collect();
            let top_ups: Vec<Value> = desk
                .top_ups()
                .iter()
                .rev()
                .take(100)
                .map(|top_up| {
                    json!({"top_up_id": top_up.top_up_id, "asset": top_up.asset.to_string(),
                        "amount": format_scaled(top_up.amount, scale(state, &top_up.asset)),
                        "status": if top_up.approved_at.is_some() { "completed" } else { "awaiting_approval" },
                        "requested_at": format_timestamp(top_up.requested_at), "approved_by": top_up.approved_by})
                })
                .collect();
            let confirming: Vec<Value> =
                desk.chain_deposits_confirming().iter().take(1_000).map(|deposit| chain_deposit_view(state, deposit)).collect();
            json!({"wallets": wallets, "policies": policies, "top_ups": top_ups, "deposits_confirming": confirming})
        })
        .await?;
    Ok(overview)
}
