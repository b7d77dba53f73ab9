//! Withdrawal destinations (validated per network, screened) and withdrawals (reserved at once, settled by the
//! settlement worker through the custodian or bank rail).

use super::admin::admin;
use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::json::{enum_text, format_timestamp, parse_body, DecimalText};
use crate::problem::{ApiError, ApiResult};
use crate::views::ListView;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::address::{self, Network};
use otcd_core::decimal::format_scaled;
use otcd_core::engine::settlement::{Destination, DestinationStatus, NewDestination, NewWithdrawal, Withdrawal};
use otcd_core::engine::{Command, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::model::Scope;
use serde::{Deserialize, Serialize};
use serde_json::json;

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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DestinationView {
    pub destination_id: String,
    pub asset: String,
    pub network: String,
    /// Normalized: EIP-55 checksummed, lowercase bech32, IBAN without spaces.
    pub address: String,
    pub label: Option<String>,
    /// `approved`, `pending_review` or `rejected`.
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    client_withdrawal_id: String,
    asset: String,
    amount: DecimalText,
    destination_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WithdrawalView {
    pub withdrawal_id: String,
    pub client_withdrawal_id: String,
    pub asset: String,
    pub amount: String,
    pub destination_id: String,
    /// `pending` (funds reserved), `submitted` (with the custodian or bank), `completed` or `failed`.
    pub status: String,
    pub external_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn destination_view(destination: &Destination) -> DestinationView {
    DestinationView {
        destination_id: destination.destination_id.clone(),
        asset: destination.asset.to_string(),
        network: destination.network.as_str().to_owned(),
        address: destination.address.clone(),
        label: destination.label.clone(),
        status: enum_text(destination.status),
        created_at: format_timestamp(destination.created_at),
    }
}

fn withdrawal_view(state: &AppState, withdrawal: &Withdrawal) -> WithdrawalView {
    let scale = state.catalog.asset(&withdrawal.asset).map_or(0, |asset| asset.scale);
    WithdrawalView {
        withdrawal_id: withdrawal.withdrawal_id.clone(),
        client_withdrawal_id: withdrawal.client_withdrawal_id.to_string(),
        asset: withdrawal.asset.to_string(),
        amount: format_scaled(withdrawal.amount, scale),
        destination_id: withdrawal.destination_id.clone(),
        status: enum_text(withdrawal.status),
        external_reference: withdrawal.external_reference.clone(),
        failure_reason: withdrawal.failure_reason.clone(),
        created_at: format_timestamp(withdrawal.created_at),
        updated_at: format_timestamp(withdrawal.updated_at),
    }
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
    let validated = address::validate(asset.as_str(), &request.address, request.network)
        .map_err(|error| ApiError::invalid("address", error.to_string()))?;
    let matches = state.screening.screen_address(&validated.normalized);
    let new = NewDestination {
        client_id,
        asset,
        network: validated.network,
        address: validated.normalized,
        label: request.label,
        matches,
    };
    let executed = state.engine.submit(signed.principal.actor(), Command::AddDestination(new)).await?;
    let Outcome::Destination(destination) = executed.outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
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
    let items =
        state.engine.query(move |desk| desk.destinations_of(&client_id).map(destination_view).collect()).await?;
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
    let executed = state.engine.submit(signed.principal.actor(), Command::RequestWithdrawal(new)).await?;
    let Outcome::Withdrawal(withdrawal) = executed.outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    if executed.changed {
        publish_withdrawal(&state, &withdrawal).await;
    }
    let status = if executed.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(withdrawal_view(&state, &withdrawal))))
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
        .engine
        .query(move |desk| {
            desk.withdrawal(&withdrawal_id).filter(|withdrawal| withdrawal.client_id == client_id).cloned()
        })
        .await?;
    let withdrawal = found.ok_or_else(|| ApiError::not_found("no such withdrawal"))?;
    Ok(Json(withdrawal_view(&state, &withdrawal)))
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
        state.engine.query(move |desk| desk.withdrawals_of(&client_id).rev().take(limit).cloned().collect()).await?;
    Ok(Json(ListView {
        items: page.iter().map(|withdrawal| withdrawal_view(&state, withdrawal)).collect(),
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
    let command = Command::SetDestinationStatus { destination_id, status: request.status };
    let executed = state.engine.submit(signed.principal.actor(), command).await?;
    let Outcome::Destination(destination) = executed.outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    Ok(Json(destination_view(&destination)))
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
        state.engine.query(move |desk| desk.withdrawals().iter().rev().take(limit).cloned().collect()).await?;
    Ok(Json(ListView {
        items: page.iter().map(|withdrawal| withdrawal_view(&state, withdrawal)).collect(),
        next_cursor: None,
    }))
}

/// Pushes a withdrawal's new state and the asset's balance to the client's `balances` channel.
pub async fn publish_withdrawal(state: &AppState, withdrawal: &Withdrawal) {
    let view = withdrawal_view(state, withdrawal);
    let mut message = serde_json::to_value(&view).unwrap_or_default();
    message["type"] = json!("withdrawal");
    state.events.publish(crate::events::ClientEvent {
        client_id: withdrawal.client_id.clone(),
        channel: crate::events::Channel::Balances,
        message: message.to_string().into(),
    });
    super::admin::publish_balance(state, &withdrawal.client_id, withdrawal.asset).await;
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstructionView {
    pub instruction_id: String,
    pub cycle: u64,
    pub client_id: String,
    pub asset: String,
    /// `client_pays` (the client delivers to the desk) or `desk_pays`.
    pub direction: String,
    pub amount: String,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn instruction_view(state: &AppState, instruction: &otcd_core::engine::netting::Instruction) -> InstructionView {
    let scale = state.catalog.asset(&instruction.asset).map_or(0, |asset| asset.scale);
    InstructionView {
        instruction_id: instruction.instruction_id.clone(),
        cycle: instruction.cycle,
        client_id: instruction.client_id.to_string(),
        asset: instruction.asset.to_string(),
        direction: enum_text(instruction.direction),
        amount: format_scaled(instruction.amount, scale),
        status: enum_text(instruction.status),
        failure_reason: instruction.failure_reason.clone(),
        created_at: format_timestamp(instruction.created_at),
        updated_at: format_timestamp(instruction.updated_at),
    }
}

/// Runs a net settlement cycle now: every credit client's obligations per asset since the last cycle become one
/// instruction each; answers the instructions issued (empty when nothing is owed either way).
#[utoipa::path(post, path = "/v1/admin/settlements/run", tag = "settlement", responses((status = 200, body = ListView<InstructionView>)))]
pub async fn run_net_settlement(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<ListView<InstructionView>>> {
    admin(&signed)?;
    let executed = state.engine.submit(signed.principal.actor(), Command::RunNetSettlement).await?;
    let Outcome::Instructions(issued) = executed.outcome else { return Err(ApiError::internal("unexpected outcome")) };
    Ok(Json(ListView {
        items: issued.iter().map(|instruction| instruction_view(&state, instruction)).collect(),
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
        state.engine.query(move |desk| desk.instructions().iter().rev().take(limit).cloned().collect()).await?;
    Ok(Json(ListView {
        items: page.iter().map(|instruction| instruction_view(&state, instruction)).collect(),
        next_cursor: None,
    }))
}
