//! Operator endpoints (scope `admin`): clients, keys, tiers, deposits, audit verification.

use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::json::{double_option, parse_body, parse_timestamp, parse_value, BoundedList, DecimalText};
use crate::problem::{ApiError, ApiResult};
use crate::views::{ClientView, DepositView, KeyView, ListView, TierView, USD_SCALE};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use ed25519_dalek::VerifyingKey;
use ipnet::IpNet;
use otcd_core::engine::{ClientChanges, NewClient, TierSpec};
use otcd_core::ids::{ClientId, ClientReference, KeyId, TierName};
use otcd_core::model::{Client, Jurisdiction, KeyAlgorithm, KeyOwner, KycStatus, Scope, Settlement, SpreadBand};
use otcd_services::accounts::{DepositOrder, KeyCredential, KeyRequest, ScreeningDecision, DEPOSIT_BATCH_DEPOSITS_MAX};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;

type Created<T> = (StatusCode, Json<T>);

/// Operator endpoints need scope `admin`; their reads (`GET`) are also open to a read-only operator key (a desk
/// key with `read` only), which is refused every change with `403 forbidden`.
pub(crate) fn admin(signed: &Signed) -> ApiResult<()> {
    if signed.method == axum::http::Method::GET && signed.principal.is_read_only_operator() {
        return Ok(());
    }
    signed.principal.require(Scope::Admin)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    name: String,
    /// ISO 3166 country code with optional subdivision: `DE`, `US-NY`.
    jurisdiction: String,
    /// Defaults to `standard`.
    tier: Option<String>,
    #[schema(value_type = String, example = "approved")]
    kyc_status: KycStatus,
    kyc_expires_at: Option<String>,
    #[schema(value_type = String, example = "prefunded")]
    settlement: Settlement,
    credit_limit_usd: Option<DecimalText>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClientRequest {
    name: Option<String>,
    jurisdiction: Option<String>,
    tier: Option<String>,
    #[schema(value_type = Option<String>)]
    kyc_status: Option<KycStatus>,
    /// `null` clears the expiry.
    #[serde(default, deserialize_with = "double_option")]
    kyc_expires_at: Option<Option<String>>,
    #[schema(value_type = Option<String>)]
    settlement: Option<Settlement>,
    /// `null` clears the limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    credit_limit_usd: Option<Option<DecimalText>>,
    /// `"cleared"`: a compliance user reviewed the screening matches and clears the client.
    screening_decision: Option<String>,
}

fn parse_jurisdiction(text: &str) -> ApiResult<Jurisdiction> {
    Jurisdiction::parse_assigned(text).map_err(|error| ApiError::invalid("jurisdiction", error))
}

fn parse_tier_name(field: &str, text: &str) -> ApiResult<TierName> {
    TierName::parse(text).map_err(|error| ApiError::invalid(field, error))
}

fn parse_client_id(text: &str) -> ApiResult<ClientId> {
    ClientId::parse(text).map_err(|_| ApiError::not_found("client not found"))
}

fn usd(field: &str, text: &DecimalText) -> ApiResult<i128> {
    text.non_negative(field, USD_SCALE)
}

/// The client's view; keeps the rate limiter's view of the client's tier current.
fn client_view(state: &AppState, client: &Client) -> ClientView {
    state.rate_limits.set_client_tier(&client.client_id, &client.tier);
    ClientView::from(client)
}

/// Onboards a client.
#[utoipa::path(post, path = "/v1/admin/clients", tag = "admin", request_body = CreateClientRequest,
    responses((status = 201, body = ClientView), (status = 400, body = crate::problem::Problem)))]
pub async fn create_client(State(state): State<AppState>, signed: Signed) -> ApiResult<Created<ClientView>> {
    admin(&signed)?;
    let request: CreateClientRequest = parse_body(&signed.body)?;
    let jurisdiction = parse_jurisdiction(&request.jurisdiction)?;
    let new = NewClient {
        screening: None,
        name: request.name,
        jurisdiction,
        tier: parse_tier_name("tier", request.tier.as_deref().unwrap_or("standard"))?,
        kyc_status: request.kyc_status,
        kyc_expires_at: request
            .kyc_expires_at
            .as_deref()
            .map(|text| parse_timestamp("kyc_expires_at", text))
            .transpose()?,
        settlement: request.settlement,
        credit_limit_usd: request.credit_limit_usd.as_ref().map(|limit| usd("credit_limit_usd", limit)).transpose()?,
    };
    let client = state.desk.create_client(signed.principal.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(client_view(&state, &client))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Lists clients in id order.
#[utoipa::path(get, path = "/v1/admin/clients", tag = "admin", params(("limit" = Option<usize>, Query,), ("cursor" = Option<String>, Query,)),
    responses((status = 200, body = ListView<ClientView>)))]
pub async fn list_clients(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<ClientView>>> {
    admin(&signed)?;
    let params: ListParams = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let (items, more) = state
        .desk
        .read(move |desk| {
            let after = params.cursor.unwrap_or_default();
            let mut clients = desk.clients().filter(|client| client.client_id.as_str() > after.as_str());
            let items: Vec<ClientView> = clients.by_ref().take(limit).map(ClientView::from).collect();
            (items, clients.next().is_some())
        })
        .await?;
    let next_cursor = if more { items.last().map(|client| client.client_id.clone()) } else { None };
    Ok(Json(ListView { items, next_cursor }))
}

#[utoipa::path(get, path = "/v1/admin/clients/{client_id}", tag = "admin", responses((status = 200, body = ClientView), (status = 404, body = crate::problem::Problem)))]
pub async fn get_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<ClientView>> {
    admin(&signed)?;
    let client_id = parse_client_id(&client_id)?;
    let view = state.desk.read(move |desk| desk.client(&client_id).map(ClientView::from)).await?;
    view.map(Json).ok_or_else(|| ApiError::not_found("client not found"))
}

/// Changes any of a client's fields; every KYC change is recorded with the key that made it.
#[utoipa::path(patch, path = "/v1/admin/clients/{client_id}", tag = "admin", request_body = UpdateClientRequest,
    responses((status = 200, body = ClientView), (status = 404, body = crate::problem::Problem)))]
pub async fn update_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<ClientView>> {
    admin(&signed)?;
    let client_id = parse_client_id(&client_id)?;
    let request: UpdateClientRequest = parse_body(&signed.body)?;
    let decision = match request.screening_decision.as_deref() {
        None => None,
        Some("cleared") => Some(ScreeningDecision::Cleared),
        Some(_) => return Err(ApiError::invalid("screening_decision", "must be \"cleared\"")),
    };
    let changes = ClientChanges {
        screening: None,
        name: request.name,
        jurisdiction: request.jurisdiction.as_deref().map(parse_jurisdiction).transpose()?,
        tier: request.tier.as_deref().map(|text| parse_tier_name("tier", text)).transpose()?,
        kyc_status: request.kyc_status,
        kyc_expires_at: match request.kyc_expires_at {
            Some(Some(text)) => Some(Some(parse_timestamp("kyc_expires_at", &text)?)),
            Some(None) => Some(None),
            None => None,
        },
        settlement: request.settlement,
        credit_limit_usd: match request.credit_limit_usd {
            Some(Some(limit)) => Some(Some(usd("credit_limit_usd", &limit)?)),
            Some(None) => Some(None),
            None => None,
        },
    };
    let client = state.desk.update_client(signed.principal.actor(), client_id, changes, decision).await?;
    Ok(Json(client_view(&state, &client)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Any of `read`, `trade`, `withdraw` (and `admin` for desk keys).
    #[schema(value_type = Vec<String>)]
    scopes: Vec<Scope>,
    /// `hmac` (default) or `ed25519`.
    #[schema(value_type = Option<String>)]
    algorithm: Option<KeyAlgorithm>,
    /// Ed25519 only: the 32-byte public key, standard base64.
    public_key: Option<String>,
    /// CIDR blocks or addresses; empty or absent = any.
    allowed_ips: Option<Vec<String>>,
}

fn normalize_allowed_ips(entries: &[String]) -> ApiResult<Vec<String>> {
    if entries.len() > otcd_core::model::ALLOWED_IPS_MAX {
        return Err(ApiError::invalid("allowed_ips", "at most 32 entries"));
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let network =
                entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    ApiError::invalid(format!("allowed_ips[{index}]"), "must be an IP address or CIDR block")
                })?;
            Ok(network.trunc().to_string())
        })
        .collect()
}

/// The key's credential as the request gives it: none for HMAC (the desk makes the secret), the Ed25519 public key.
fn key_credential(request: &CreateKeyRequest) -> ApiResult<KeyCredential> {
    match (request.algorithm.unwrap_or(KeyAlgorithm::Hmac), &request.public_key) {
        (KeyAlgorithm::Hmac, Some(_)) => Err(ApiError::invalid("public_key", "only ed25519 keys take a public key")),
        (KeyAlgorithm::Hmac, None) => Ok(KeyCredential::Hmac),
        (KeyAlgorithm::Ed25519, None) => Err(ApiError::invalid("public_key", "ed25519 keys need the public key")),
        (KeyAlgorithm::Ed25519, Some(text)) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok();
            let bytes: [u8; 32] = bytes
                .and_then(|bytes| bytes.try_into().ok())
                .filter(|bytes| VerifyingKey::from_bytes(bytes).is_ok())
                .ok_or_else(|| {
                    ApiError::invalid("public_key", "must be a 32-byte Ed25519 public key in standard base64")
                })?;
            Ok(KeyCredential::Ed25519(bytes))
        }
    }
}

async fn create_key(state: AppState, signed: Signed, owner: KeyOwner) -> ApiResult<Created<KeyView>> {
    let request: CreateKeyRequest = parse_body(&signed.body)?;
    let credential = key_credential(&request)?;
    let allowed_ips = normalize_allowed_ips(request.allowed_ips.as_deref().unwrap_or_default())?;
    let key_request = KeyRequest { scopes: request.scopes, credential, allowed_ips };
    let issued = state.desk.create_key(signed.principal.actor(), owner, key_request).await?;
    Ok((StatusCode::CREATED, Json(KeyView::new(&issued.key, issued.secret))))
}

/// Creates an API key for a client. An HMAC secret is in this response only.
#[utoipa::path(post, path = "/v1/admin/clients/{client_id}/keys", tag = "admin", request_body = CreateKeyRequest,
    responses((status = 201, body = KeyView), (status = 404, body = crate::problem::Problem)))]
pub async fn create_client_key(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    signed: Signed,
) -> ApiResult<Created<KeyView>> {
    admin(&signed)?;
    let client_id = parse_client_id(&client_id)?;
    create_key(state, signed, KeyOwner::Client(client_id)).await
}

/// Creates a desk (operator) key; it may carry the `admin` scope.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "admin", request_body = CreateKeyRequest, responses((status = 201, body = KeyView)))]
pub async fn create_desk_key(State(state): State<AppState>, signed: Signed) -> ApiResult<Created<KeyView>> {
    admin(&signed)?;
    create_key(state, signed, KeyOwner::Desk).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyParams {
    /// A client's keys; without it, the desk (operator) keys.
    client_id: Option<String>,
    limit: Option<usize>,
}

/// A client's keys (`client_id=`) or the desk's operator keys, newest first, revoked ones included; never a secret.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin", params(("client_id" = Option<String>, Query,)),
    responses((status = 200, body = ListView<KeyView>)))]
pub async fn list_keys(State(state): State<AppState>, uri: Uri, signed: Signed) -> ApiResult<Json<ListView<KeyView>>> {
    admin(&signed)?;
    let params: KeyParams = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let owner = params.client_id.as_deref().map(parse_client_id).transpose()?;
    let mut items: Vec<KeyView> = state
        .desk
        .read(move |desk| {
            desk.keys().filter(|key| key.client_id() == owner.as_ref()).map(|key| KeyView::new(key, None)).collect()
        })
        .await?;
    // Newest first: creation time, then id (ids are assigned in creation order within a millisecond).
    items.sort_by(|a, b| (&b.created_at, &b.key_id).cmp(&(&a.created_at, &a.key_id)));
    items.truncate(limit);
    Ok(Json(ListView { items, next_cursor: None }))
}

/// Revokes a key: requests signed with it are refused from the next request on.
#[utoipa::path(delete, path = "/v1/admin/keys/{key_id}", tag = "admin", responses((status = 200, body = KeyView), (status = 404, body = crate::problem::Problem)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<KeyView>> {
    admin(&signed)?;
    let key_id = KeyId::parse(&key_id).map_err(|_| ApiError::not_found("key not found"))?;
    let record = state.desk.revoke_key(signed.principal.actor(), key_id).await?;
    Ok(Json(KeyView::new(&record, None)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTierRequest {
    /// Basis points added to the executable price, e.g. `"10"` or `"12.5"`.
    spread_bps: DecimalText,
    /// Size bands: from `notional_usd_min` (USD) upwards the band's spread applies instead. Ascending.
    bands: Option<Vec<SpreadBandRequest>>,
    trade_notional_usd_max: Option<DecimalText>,
    daily_notional_usd_max: Option<DecimalText>,
    /// Requests per second one key may send, per class (each defaults to 100).
    rate_limits: Option<RateLimitsRequest>,
    /// The desk's fee per trade in basis points of the trade's quote amount, e.g. `"2.5"` (default `"0"`: no
    /// fee leg; at most `"1000"`). Charged in the quote asset and rounded up.
    fee_bps: Option<DecimalText>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsRequest {
    reads: Option<u32>,
    rfq: Option<u32>,
    orders: Option<u32>,
    withdrawals: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpreadBandRequest {
    notional_usd_min: DecimalText,
    spread_bps: DecimalText,
}

#[utoipa::path(get, path = "/v1/admin/tiers", tag = "admin", responses((status = 200, body = ListView<TierView>)))]
pub async fn list_tiers(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<ListView<TierView>>> {
    admin(&signed)?;
    let items = state.desk.read(|desk| desk.tiers().map(TierView::from).collect()).await?;
    Ok(Json(ListView { items, next_cursor: None }))
}

/// Creates or replaces a tier.
#[utoipa::path(put, path = "/v1/admin/tiers/{tier}", tag = "admin", request_body = PutTierRequest, responses((status = 200, body = TierView)))]
pub async fn put_tier(
    State(state): State<AppState>,
    Path(tier): Path<String>,
    signed: Signed,
) -> ApiResult<Json<TierView>> {
    admin(&signed)?;
    let request: PutTierRequest = parse_body(&signed.body)?;
    let positive_usd =
        |field: &str, text: &Option<DecimalText>| text.as_ref().map(|text| text.positive(field, USD_SCALE)).transpose();
    let spec = TierSpec {
        name: parse_tier_name("tier", &tier)?,
        spread_centi_bps: request.spread_bps.non_negative("spread_bps", 2)?,
        bands: request
            .bands
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(index, band)| {
                Ok(SpreadBand {
                    notional_usd_min: band
                        .notional_usd_min
                        .positive(&format!("bands[{index}].notional_usd_min"), USD_SCALE)?,
                    spread_centi_bps: band.spread_bps.non_negative(&format!("bands[{index}].spread_bps"), 2)?,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
        trade_notional_usd_max: positive_usd("trade_notional_usd_max", &request.trade_notional_usd_max)?,
        daily_notional_usd_max: positive_usd("daily_notional_usd_max", &request.daily_notional_usd_max)?,
        fee_centi_bps: request.fee_bps.as_ref().map(|fee| fee.non_negative("fee_bps", 2)).transpose()?.unwrap_or(0),
        rate_limits: request.rate_limits.map(|limits| {
            let defaults = otcd_core::model::RateLimits::default();
            otcd_core::model::RateLimits {
                reads: limits.reads.unwrap_or(defaults.reads),
                rfq: limits.rfq.unwrap_or(defaults.rfq),
                orders: limits.orders.unwrap_or(defaults.orders),
                withdrawals: limits.withdrawals.unwrap_or(defaults.withdrawals),
            }
        }),
    };
    let tier = state.desk.put_tier(signed.principal.actor(), spec).await?;
    state.rate_limits.set_tier(&tier.name, tier.rate_limits);
    Ok(Json(TierView::from(&tier)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    client_id: String,
    asset: String,
    amount: DecimalText,
    /// Unique per client: repeating it with the same body returns the original deposit; a different body is 409.
    reference: String,
}

/// Credits a confirmed deposit to a client's available balance.
#[utoipa::path(post, path = "/v1/admin/deposits", tag = "admin", request_body = DepositRequest,
    responses((status = 201, body = DepositView), (status = 200, description = "a repeat of an earlier deposit", body = DepositView), (status = 409, body = crate::problem::Problem)))]
pub async fn create_deposit(State(state): State<AppState>, signed: Signed) -> ApiResult<Created<DepositView>> {
    admin(&signed)?;
    let request: DepositRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?;
    let amount = request.amount.positive("amount", asset.scale)?;
    let client_id = ClientId::parse(&request.client_id).map_err(|error| ApiError::invalid("client_id", error))?;
    let reference =
        ClientReference::parse(&request.reference).map_err(|error| ApiError::invalid("reference", error))?;
    let done = state.desk.deposit(signed.principal.actor(), client_id, asset.code, amount, reference).await?;
    let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(DepositView::new(&done.value, asset.scale))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositBatchRequest {
    /// 1 to 1,000 deposits, each shaped as `POST /v1/admin/deposits`'s body; answered in this order.
    #[schema(value_type = Vec<DepositRequest>)]
    deposits: BoundedList<serde_json::Value, DEPOSIT_BATCH_DEPOSITS_MAX>,
}

/// Credits many confirmed deposits in one request: each item is validated and credited (or refused) on its own,
/// as `POST /v1/admin/deposits` would, and the `200` answer, one result per item in request order, is sent once
/// every credited deposit is durable. A body that is not `{"deposits": [...]}` with 1 to 1,000 items is
/// `400 invalid_request` and changes nothing; a desk that cannot make the batch durable answers `503` and
/// acknowledged none of it.
#[utoipa::path(post, path = "/v1/admin/deposits/batch", tag = "admin", request_body = DepositBatchRequest,
    responses((status = 200, body = DepositBatchView), (status = 400, body = crate::problem::Problem), (status = 413, body = crate::problem::Problem), (status = 503, body = crate::problem::Problem)))]
pub async fn create_deposits(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<DepositBatchView>> {
    admin(&signed)?;
    let request: DepositBatchRequest = parse_body(&signed.body)?;
    let items = request.deposits.0;
    if items.is_empty() {
        return Err(ApiError::invalid("deposits", "at least one deposit is required"));
    }
    // Items that fail at the edge keep their place in the answer; the rest go to the engine together.
    let parsed: Vec<ApiResult<DepositOrder>> = items.into_iter().map(|item| deposit_order(&state, item)).collect();
    let orders: Vec<DepositOrder> = parsed.iter().filter_map(|item| item.as_ref().ok().cloned()).collect();
    let mut credited = state.desk.deposit_many(signed.principal.actor(), orders).await?.into_iter();
    let results = parsed
        .into_iter()
        .map(|item| {
            let answer = item.and_then(|_| credited.next().expect("one answer per order").map_err(ApiError::from));
            DepositBatchResult::new(&state, answer)
        })
        .collect();
    assert!(credited.next().is_none(), "every answer is placed");
    Ok(Json(DepositBatchView { results }))
}

/// One deposit of a batch, parsed into domain values as `create_deposit` parses its body.
fn deposit_order(state: &AppState, item: serde_json::Value) -> ApiResult<DepositOrder> {
    let request: DepositRequest = parse_value(item)?;
    let asset = state.catalog_asset(&request.asset)?;
    let amount = request.amount.positive("amount", asset.scale)?;
    let client_id = ClientId::parse(&request.client_id).map_err(|error| ApiError::invalid("client_id", error))?;
    let reference =
        ClientReference::parse(&request.reference).map_err(|error| ApiError::invalid("reference", error))?;
    Ok(DepositOrder { client_id, asset: asset.code, amount, reference })
}

/// The answer of a deposit batch: one result per item, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepositBatchView {
    pub results: Vec<DepositBatchResult>,
}

/// One item's answer: the status `POST /v1/admin/deposits` would have answered with its body (`201` credited,
/// `200` a repeat of the reference, the deposit in `deposit`), or its 4xx with the problem in `problem`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepositBatchResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deposit: Option<DepositView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::problem::Problem>,
}

impl DepositBatchResult {
    fn new(state: &AppState, answer: ApiResult<otcd_services::Done<otcd_core::model::Deposit>>) -> Self {
        match answer {
            Ok(done) => {
                let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
                let scale = state.desk.scale(&done.value.asset);
                Self { status: status.as_u16(), deposit: Some(DepositView::new(&done.value, scale)), problem: None }
            }
            Err(error) => Self { status: error.status.as_u16(), deposit: None, problem: Some(error.to_problem()) },
        }
    }
}

/// Verifies the whole hash chain of the journal on disk, and the desk's signed checkpoints against it.
#[utoipa::path(get, path = "/v1/admin/audit/verify", tag = "admin", responses((status = 200, description = "{\"valid\", \"events\", \"head\", \"head_seq\", \"checkpoints\", \"last_checkpoint_seq\", \"unanchored_records\"}; when invalid also \"first_bad_seq\", \"checkpoint_index\", \"error\"")))]
pub async fn audit_verify(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<serde_json::Value>> {
    admin(&signed)?;
    let data_dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || otcd_host::audit::verify_data_dir(&data_dir, None))
        .await
        .map_err(|_| ApiError::internal("verification was interrupted"))?;
    Ok(Json(match result {
        Ok(report) => json!({
            "valid": true,
            "events": report.journal.events,
            "head": report.journal.head.hash_hex(),
            "head_seq": report.journal.head.seq,
            "checkpoints": report.checkpoints,
            "last_checkpoint_seq": report.last_checkpoint.map(|checkpoint| checkpoint.seq),
            "unanchored_records": report.unanchored_records,
        }),
        Err(error) => json!({
            "valid": false,
            "events": null,
            "head": null,
            "first_bad_seq": error.seq(),
            "checkpoint_index": error.checkpoint_index(),
            "error": error.to_string(),
        }),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointsQuery {
    limit: Option<usize>,
    /// The index of the last checkpoint of the previous page (pages go from the newest back).
    cursor: Option<String>,
}

/// The desk's public signing key and its signed journal checkpoints, newest first.
#[utoipa::path(get, path = "/v1/admin/audit/checkpoints", tag = "admin", responses((status = 200, description = "{\"algorithm\": \"ed25519\", \"public_key\", \"count\", \"items\": [{\"index\", \"seq\", \"record_count\", \"head_hash\", \"timestamp\", \"timestamp_ms\", \"prev_checkpoint_hash\", \"signature\"}], \"next_cursor\"}")))]
pub async fn audit_checkpoints(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&signed)?;
    let query: CheckpointsQuery = parse_query(&uri)?;
    let limit = page_limit(query.limit)?;
    let before = match query.cursor {
        Some(cursor) => {
            cursor.parse::<u64>().map_err(|_| ApiError::invalid("cursor", "is not a cursor from this list"))?
        }
        None => u64::MAX,
    };
    let data_dir = state.data_dir.clone();
    let read = tokio::task::spawn_blocking(move || {
        let key = otcd_host::audit::read_public_key(&data_dir)?;
        let path = otcd_host::audit::checkpoints_path(&data_dir);
        let file = otcd_journal::read_checkpoints(&path, otcd_journal::SignatureCheck::None)
            .map_err(|error| error.to_string())?;
        Ok::<_, String>((key, file.checkpoints))
    })
    .await
    .map_err(|_| ApiError::internal("reading the checkpoints was interrupted"))?;
    let (key, checkpoints) = read.map_err(ApiError::internal)?;
    let count = checkpoints.len();
    let mut page = checkpoints.iter().rev().filter(|checkpoint| checkpoint.index < before);
    let items: Vec<serde_json::Value> = page
        .by_ref()
        .take(limit)
        .map(|checkpoint| {
            let mut item = serde_json::to_value(checkpoint).expect("checkpoints serialize");
            item["timestamp"] =
                crate::json::format_timestamp(otcd_core::time::TimestampMs(checkpoint.timestamp_ms)).into();
            item
        })
        .collect();
    let next_cursor = match page.next() {
        Some(_) => items.last().map(|item| item["index"].to_string()),
        None => None,
    };
    Ok(Json(json!({
        "algorithm": "ed25519",
        "public_key": hex::encode(key.as_bytes()),
        "count": count,
        "items": items,
        "next_cursor": next_cursor,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    from: String,
    to: String,
}

/// A self-contained audit bundle (JSON lines) of the journal records stamped in `[from, to)`, with the signed
/// checkpoints that anchor them and the desk public key; `otcd verify --export FILE` checks it offline.
#[utoipa::path(get, path = "/v1/admin/audit/export", tag = "admin", params(("from" = String, Query, description = "RFC 3339"), ("to" = String, Query, description = "RFC 3339")), responses((status = 200, description = "application/x-ndjson bundle (docs/audit.md)"), (status = 404, description = "no records in the window"), (status = 400, description = "window holds more than 50000 records"), (status = 503, description = "the window's end is not yet covered by a checkpoint")))]
pub async fn audit_export(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    admin(&signed)?;
    let query: ExportQuery = parse_query(&uri)?;
    let from = parse_timestamp("from", &query.from)?;
    let to = parse_timestamp("to", &query.to)?;
    if to <= from {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    let window = otcd_journal::ExportWindow { from_ms: from.0, to_ms: to.0, from: query.from, to: query.to };
    let data_dir = state.data_dir.clone();
    let exported = tokio::task::spawn_blocking(move || {
        let mut bundle = Vec::new();
        otcd_host::audit::export_data_dir(&data_dir, &window, otcd_journal::EXPORT_RECORDS_MAX, &mut bundle)
            .map(|_| bundle)
    })
    .await
    .map_err(|_| ApiError::internal("the export was interrupted"))?;
    let bundle = exported.map_err(|failure| match failure {
        otcd_host::audit::VerifyFailure::Audit(error @ otcd_journal::AuditError::EmptyWindow { .. }) => {
            ApiError::not_found(error.to_string())
        }
        otcd_host::audit::VerifyFailure::Audit(error @ otcd_journal::AuditError::TooLarge { .. }) => {
            ApiError::invalid("to", error)
        }
        otcd_host::audit::VerifyFailure::Audit(error @ otcd_journal::AuditError::NotAnchored { .. }) => {
            ApiError::unavailable(error.to_string(), otcd_host::runner::CHECKPOINT_EVERY_DEFAULT.as_secs().max(1))
        }
        other => ApiError::internal(other.to_string()),
    })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], bundle).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkewRequest {
    /// Basis points of shading per one whole unit of desk position (`"0"` turns skew off).
    bps_per_unit: DecimalText,
    /// Cap on the shading either way, in bps.
    max_bps: DecimalText,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkewView {
    pub asset: String,
    pub bps_per_unit: String,
    pub max_bps: String,
    /// The desk's current position in the asset.
    pub position: String,
    /// The shading applied right now, in bps (positive = prices shaded down).
    pub current_bps: String,
}

fn skew_view(desk: &otcd_core::engine::Desk, setting: &otcd_core::model::SkewSetting, scale: u8) -> SkewView {
    SkewView {
        asset: setting.asset.to_string(),
        bps_per_unit: crate::json::format_trimmed(setting.centi_bps_per_unit, 2),
        max_bps: crate::json::format_trimmed(setting.max_centi_bps, 2),
        position: otcd_core::decimal::format_scaled(desk.desk_position(setting.asset), scale),
        current_bps: crate::json::format_trimmed(desk.skew_for(setting.asset), 2),
    }
}

/// Inventory skew for an asset: when the desk is long it, prices of instruments with it as base shade down.
#[utoipa::path(put, path = "/v1/admin/skew/{asset}", tag = "admin", request_body = SkewRequest, responses((status = 200, body = SkewView)))]
pub async fn put_skew(
    State(state): State<AppState>,
    Path(asset): Path<String>,
    signed: Signed,
) -> ApiResult<Json<SkewView>> {
    admin(&signed)?;
    let request: SkewRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&asset)?;
    let setting = otcd_core::model::SkewSetting {
        asset: asset.code,
        centi_bps_per_unit: request.bps_per_unit.non_negative("bps_per_unit", 2)?,
        max_centi_bps: request.max_bps.non_negative("max_bps", 2)?,
    };
    state.desk.put_skew(signed.principal.actor(), setting.clone()).await?;
    let view = state.desk.read(move |desk| skew_view(desk, &setting, asset.scale)).await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundingRequest {
    asset: String,
    /// Positive puts capital into the desk's inventory, negative takes it out.
    amount: DecimalText,
    /// Unique: a repeat with the same body returns the original.
    reference: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PositionView {
    pub asset: String,
    /// The desk's inventory: positive = long.
    pub position: String,
    /// Inventory skew applied now, bps.
    pub skew_bps: String,
}

/// The desk funds (or defunds) its own inventory of an asset.
#[utoipa::path(post, path = "/v1/admin/desk/funding", tag = "admin", request_body = FundingRequest, responses((status = 201, body = PositionView)))]
pub async fn fund_desk(State(state): State<AppState>, signed: Signed) -> ApiResult<Created<PositionView>> {
    admin(&signed)?;
    let request: FundingRequest = parse_body(&signed.body)?;
    let asset = state.catalog_asset(&request.asset)?;
    let amount = request.amount.signed("amount", asset.scale)?;
    let reference =
        ClientReference::parse(&request.reference).map_err(|error| ApiError::invalid("reference", error))?;
    let done = state.desk.fund_desk(signed.principal.actor(), asset.code, amount, reference).await?;
    let status = if done.changed { StatusCode::CREATED } else { StatusCode::OK };
    let view = state.desk.read(move |desk| position_view(desk, asset.code, asset.scale)).await?;
    Ok((status, Json(view)))
}

fn position_view(desk: &otcd_core::engine::Desk, asset: otcd_core::catalog::AssetCode, scale: u8) -> PositionView {
    PositionView {
        asset: asset.to_string(),
        position: otcd_core::decimal::format_scaled(desk.desk_position(asset), scale),
        skew_bps: crate::json::format_trimmed(desk.skew_for(asset), 2),
    }
}

/// The desk's inventory position and current skew per asset.
#[utoipa::path(get, path = "/v1/admin/desk/positions", tag = "admin", responses((status = 200, body = ListView<PositionView>)))]
pub async fn desk_positions(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<ListView<PositionView>>> {
    admin(&signed)?;
    let assets: Vec<_> = state.desk.catalog.assets().iter().map(|asset| (asset.code, asset.scale)).collect();
    let items = state
        .desk
        .read(move |desk| assets.iter().map(|(code, scale)| position_view(desk, *code, *scale)).collect())
        .await?;
    Ok(Json(ListView { items, next_cursor: None }))
}
