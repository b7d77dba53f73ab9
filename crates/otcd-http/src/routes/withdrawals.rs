//! Withdrawal destinations (validated per network, screened) and withdrawals (reserved at once, settled by the
//! settlement worker through the custodian or bank rail).

use super::admin::admin;
use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::json::{parse_body, DecimalText};
use crate::problem::{ApiError, ApiResult};
use crate::views::{
    destination_view, instruction_view, withdrawal_view, DestinationView, InstructionView, ListView, WithdrawalView,
};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::address::Network;
use otcd_core::engine::settlement::{DestinationStatus, NewWithdrawal, Withdrawal};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::model::Scope;
use otcd_services::settlement::DestinationRequest as NewDestination;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationRequest {
    asset: String,
    address: String,
    /// `bitcoin`, `ethereum`, `tron` or `iban`; needed only where the asset has several (USDT) and the address
    /// does not tell.
    #[schema(value_type = Option<String>)]
    network: Option<Network>,
    label: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    client_withdrawal_id: String,
    asset: String,
    amount: DecimalText,
    destination_id: String,
}

fn own_client(signed: &Signed) -> ApiResult<ClientId> {
    signed
        .principal
        .key
        .client_id
        .clone()
        .ok_or_else(|| ApiError::forbidden("destinations and withdrawals belong to client keys"))
}

/// Registers a withdrawal destination: the address is validated for its network (checksums included) and
/// screened against the sanctions lists' addresses; a match is `rejected`.
#[utoipa::path(post, path = "/v1/destinations", tag = "settlement", request_body = DestinationRequest,
    responses((status = 201, body = DestinationView), (status = 400, body = crate::problem::Problem)))]
pub async fn create_destination(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<DestinationView>)> {
    signed.principal.require(Scope::Withdraw)?;
    let client_id = own_client(&signed)?;
    let request: DestinationRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?.code;
    let new =
        NewDestination { client_id, asset, address: request.address, network: request.network, label: request.label };
    let destination = state.desk.add_destination(signed.principal.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(destination_view(&destination))))
}

/// The caller's destinations.
#[utoipa::path(get, path = "/v1/destinations", tag = "settlement", responses((status = 200, body = ListView<DestinationView>)))]
pub async fn list_destinations(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<ListView<DestinationView>>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Withdraw))?;
    let client_id = own_client(&signed)?;
    let items = state.desk.read(move |desk| desk.destinations_of(&client_id).map(destination_view).collect()).await?;
    Ok(Json(ListView { items, next_cursor: None }))
}

/// Requests a withdrawal: the amount is reserved at once and leaves the balance when the rail confirms.
#[utoipa::path(post, path = "/v1/withdrawals", tag = "settlement", request_body = WithdrawalRequest,
    responses((status = 201, body = WithdrawalView), (status = 200, description = "a repeat", body = WithdrawalView),
        (status = 422, body = crate::problem::Problem)))]
pub async fn create_withdrawal(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<WithdrawalView>)> {
    signed.principal.require(Scope::Withdraw)?;
    let client_id = own_client(&signed)?;
    let request: WithdrawalRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?;
    let new = NewWithdrawal {
        client_id,
        client_withdrawal_id: ClientReference::parse(&request.client_withdrawal_id)
            .map_err(|error| ApiError::invalid("client_withdrawal_id", error))?,
        asset: asset.code,
        amount: request.amount.positive("amount", asset.scale)?,
        destination_id: request.destination_id,
    };
    let done = state.desk.request_withdrawal(signed.principal.actor(), new).await?;
    let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(withdrawal_view(&state.desk.catalog, &done.value))))
}

/// One of the caller's withdrawals.
#[utoipa::path(get, path = "/v1/withdrawals/{withdrawal_id}", tag = "settlement", responses((status = 200, body = WithdrawalView), (status = 404, body = crate::problem::Problem)))]
pub async fn get_withdrawal(
    State(state): State<AppState>,
    Path(withdrawal_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<WithdrawalView>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Withdraw))?;
    let client_id = own_client(&signed)?;
    let found = state
        .desk
        .read(move |desk| {
            desk.withdrawal(&withdrawal_id).filter(|withdrawal| withdrawal.client_id == client_id).cloned()
        })
        .await?;
    let withdrawal = found.ok_or_else(|| ApiError::not_found("no such withdrawal"))?;
    Ok(Json(withdrawal_view(&state.desk.catalog, &withdrawal)))
}

/// The caller's withdrawals, newest first.
#[utoipa::path(get, path = "/v1/withdrawals", tag = "settlement", responses((status = 200, body = ListView<WithdrawalView>)))]
pub async fn list_withdrawals(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<WithdrawalView>>> {
    signed.principal.require(Scope::Read).or_else(|_| signed.principal.require(Scope::Withdraw))?;
    let client_id = own_client(&signed)?;
    let params: super::orders_params::LimitOnly = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let page: Vec<Withdrawal> =
        state.desk.read(move |desk| desk.withdrawals_of(&client_id).rev().take(limit).cloned().collect()).await?;
    Ok(Json(ListView {
        items: page.iter().map(|withdrawal| withdrawal_view(&state.desk.catalog, withdrawal)).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationStatusRequest {
    /// `approved`, `pending_review` or `rejected`.
    #[schema(value_type = String)]
    status: DestinationStatus,
}

/// An operator approves, rejects or holds a destination.
#[utoipa::path(patch, path = "/v1/admin/destinations/{destination_id}", tag = "settlement", request_body = DestinationStatusRequest,
    responses((status = 200, body = DestinationView)))]
pub async fn set_destination_status(
    State(state): State<AppState>,
    Path(destination_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<DestinationView>> {
    admin(&signed)?;
    let request: DestinationStatusRequest = parse_body(&signed.body)?;
    let destination =
        state.desk.set_destination_status(signed.principal.actor(), destination_id, request.status).await?;
    Ok(Json(destination_view(&destination)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationParams {
    /// `approved`, `pending_review` or `rejected`.
    status: Option<String>,
    client_id: Option<String>,
    limit: Option<usize>,
}

/// Every client's destinations, newest first, by status (`pending_review`: the operator's review queue) and client.
#[utoipa::path(get, path = "/v1/admin/destinations", tag = "settlement",
    params(("status" = Option<String>, Query,), ("client_id" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, body = ListView<DestinationView>)))]
pub async fn admin_destinations(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<DestinationView>>> {
    admin(&signed)?;
    let params: DestinationParams = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let status = params
        .status
        .map(|text| {
            serde_json::from_value::<DestinationStatus>(serde_json::Value::String(text))
                .map_err(|_| ApiError::invalid("status", "approved, pending_review or rejected"))
        })
        .transpose()?;
    let items = state
        .desk
        .read(move |desk| {
            desk.destinations()
                .iter()
                .rev()
                .filter(|destination| status.is_none_or(|status| destination.status == status))
                .filter(|destination| {
                    params.client_id.as_ref().is_none_or(|client| destination.client_id.as_str() == client)
                })
                .take(limit)
                .map(destination_view)
                .collect()
        })
        .await?;
    Ok(Json(ListView { items, next_cursor: None }))
}

/// Every withdrawal on the desk, newest first (operations view of settlement status).
#[utoipa::path(get, path = "/v1/admin/withdrawals", tag = "settlement", responses((status = 200, body = ListView<WithdrawalView>)))]
pub async fn admin_withdrawals(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<WithdrawalView>>> {
    admin(&signed)?;
    let params: super::orders_params::LimitOnly = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let page: Vec<Withdrawal> =
        state.desk.read(move |desk| desk.withdrawals().iter().rev().take(limit).cloned().collect()).await?;
    Ok(Json(ListView {
        items: page.iter().map(|withdrawal| withdrawal_view(&state.desk.catalog, withdrawal)).collect(),
        next_cursor: None,
    }))
}

/// Runs a net settlement cycle now: every credit client's obligations per asset since the last cycle become one
/// instruction each; answers the instructions issued (empty when nothing is owed either way).
#[utoipa::path(post, path = "/v1/admin/settlements/run", tag = "settlement", responses((status = 200, body = ListView<InstructionView>)))]
pub async fn run_net_settlement(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<ListView<InstructionView>>> {
    admin(&signed)?;
    let issued = state.desk.run_net_settlement(signed.principal.actor()).await?;
    Ok(Json(ListView {
        items: issued.iter().map(|instruction| instruction_view(&state.desk.catalog, instruction)).collect(),
        next_cursor: None,
    }))
}

/// Settlement instructions, newest first.
#[utoipa::path(get, path = "/v1/admin/settlements", tag = "settlement", responses((status = 200, body = ListView<InstructionView>)))]
pub async fn list_instructions(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<InstructionView>>> {
    admin(&signed)?;
    let params: super::orders_params::LimitOnly = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let page: Vec<otcd_core::engine::netting::Instruction> =
        state.desk.read(move |desk| desk.instructions().iter().rev().take(limit).cloned().collect()).await?;
    Ok(Json(ListView {
        items: page.iter().map(|instruction| instruction_view(&state.desk.catalog, instruction)).collect(),
        next_cursor: None,
    }))
}
