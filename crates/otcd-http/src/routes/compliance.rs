//! Compliance endpoints: jurisdiction rules (`PUT /v1/admin/jurisdictions/{code}`).

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::json::parse_body;
use crate::problem::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::Json;
use otcd_core::catalog::AssetCode;
use otcd_core::engine::alerts::AlertFacts;
use otcd_core::engine::jurisdictions::JurisdictionRule;
use otcd_core::model::Jurisdiction;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionRequest {
    /// `true`: clients of this jurisdiction may not get firm prices, trade or withdraw.
    blocked: bool,
    /// Assets clients of this jurisdiction may not trade or withdraw, e.g. `["USDT"]`.
    #[serde(default)]
    blocked_assets: Vec<String>,
    /// When given, the only instruments they may trade.
    allowed_instruments: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JurisdictionView {
    pub code: String,
    pub blocked: bool,
    pub blocked_assets: Vec<String>,
    pub allowed_instruments: Option<Vec<String>>,
    /// 1 for the first rule of the code, +1 per change.
    pub version: u64,
}

fn view(rule: &JurisdictionRule) -> JurisdictionView {
    JurisdictionView {
        code: rule.code.as_str().to_owned(),
        blocked: rule.blocked,
        blocked_assets: rule.blocked_assets.iter().map(ToString::to_string).collect(),
        allowed_instruments: rule.allowed_instruments.clone(),
        version: rule.version,
    }
}

/// Creates or replaces the rule of a country (`DE`) or subdivision (`US-NY`); takes effect for the next command.
#[utoipa::path(put, path = "/v1/admin/jurisdictions/{code}", tag = "compliance", request_body = JurisdictionRequest,
    responses((status = 200, body = JurisdictionView)))]
pub async fn put_jurisdiction(
    State(state): State<AppState>,
    Path(code): Path<String>,
    signed: Signed,
) -> ApiResult<Json<JurisdictionView>> {
    admin(&signed)?;
    let request: JurisdictionRequest = parse_body(&signed.body)?;
    let code = Jurisdiction::parse_assigned(&code).map_err(|error| ApiError::invalid("code", error.to_string()))?;
    let blocked_assets = request
        .blocked_assets
        .iter()
        .map(|text| {
            state
                .desk
                .catalog
                .asset_by_text(text)
                .map(|asset| asset.code)
                .ok_or_else(|| ApiError::invalid("blocked_assets", format!("{text:?} is not in the catalog")))
        })
        .collect::<ApiResult<Vec<AssetCode>>>()?;
    let rule = JurisdictionRule {
        code,
        blocked: request.blocked,
        blocked_assets,
        allowed_instruments: request.allowed_instruments,
        version: 0,
    };
    let stored = state.desk.put_jurisdiction(signed.principal.actor(), rule).await?;
    Ok(Json(view(&stored)))
}

/// Every jurisdiction rule in force.
#[utoipa::path(get, path = "/v1/admin/jurisdictions", tag = "compliance", responses((status = 200, body = crate::views::ListView<JurisdictionView>)))]
pub async fn list_jurisdictions(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<crate::views::ListView<JurisdictionView>>> {
    admin(&signed)?;
    let items = state.desk.read(|desk| desk.jurisdiction_rules().map(view).collect()).await?;
    Ok(Json(crate::views::ListView { items, next_cursor: None }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenParams {
    name: String,
    date_of_birth: Option<String>,
    country: Option<String>,
    limit: Option<usize>,
}

/// Screens a name against the loaded lists: `{"matches": [{"list", "entry_id", "name", "score"}]}`, best first.
#[utoipa::path(get, path = "/v1/admin/sanctions/screen", tag = "compliance",
    params(("name" = String, Query,), ("date_of_birth" = Option<String>, Query,), ("country" = Option<String>, Query,)),
    responses((status = 200, description = "{\"matches\": [...]}"), (status = 503, body = crate::problem::Problem)))]
pub async fn screen(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    signed: Signed,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&signed)?;
    let params: ScreenParams = super::parse_query(&uri)?;
    if params.name.trim().is_empty() || params.name.len() > 300 {
        return Err(ApiError::invalid("name", "1 to 300 bytes"));
    }
    let limit = super::page_limit(params.limit.or(Some(20)))?;
    let screener =
        state.desk.screening.screener().ok_or_else(|| {
            ApiError::unavailable("no sanctions lists are loaded: start otcd with --sanctions-dir", 60)
        })?;
    let query = otcd_sanctions::NameQuery {
        name: &params.name,
        date_of_birth: params.date_of_birth.as_deref(),
        country: params.country.as_deref(),
    };
    let matches: Vec<serde_json::Value> = screener
        .screen_name(&query, limit)
        .iter()
        .map(|found| {
            let recorded = otcd_services::screening::recorded(found);
            serde_json::json!({"list": recorded.list, "entry_id": recorded.entry_id, "name": recorded.name,
                "score": (found.score * 1000.0).floor() / 1000.0})
        })
        .collect();
    Ok(Json(serde_json::json!({"matches": matches, "lists_version": screener.lists().digest()})))
}

/// Reloads the lists from `--sanctions-dir` without downtime and re-screens every client; new possible matches
/// raise alerts.
#[utoipa::path(post, path = "/v1/admin/sanctions/reload", tag = "compliance", responses((status = 200, description = "{\"lists_version\", \"clients_screened\", \"changed\"}")))]
pub async fn reload_sanctions(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<serde_json::Value>> {
    admin(&signed)?;
    let summary = state.desk.reload_sanctions(signed.principal.actor()).await?;
    Ok(Json(serde_json::json!({"lists_version": summary.lists_version, "clients_screened": summary.clients_screened,
        "changed": summary.changed, "destinations_rejected": summary.destinations_rejected})))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    /// `sanctions_screening`, `sanctions_address`, `structuring`, `rapid_in_and_out`, `velocity`, or a
    /// market-abuse rule: `surveillance_spoofing`, `surveillance_layering`, `surveillance_wash_trade`,
    /// `surveillance_front_running`.
    pub kind: String,
    pub client_id: Option<String>,
    pub created_at: String,
    /// The evidence in words, for people: amounts in asset units, durations in h/min/s (alerts raised before
    /// `details` existed read in minor units and ms). The same facts as values are in `details`.
    pub evidence: String,
    /// AML alerts (`structuring`, `rapid_in_and_out`, `velocity`): the facts behind `evidence` as values, amounts as
    /// full-scale decimal strings with their `asset`, values in USD as decimal strings, windows in `window_seconds`,
    /// times in RFC 3339 (see docs/api.md). Absent for other kinds and for alerts raised before it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Case status: `open`, `investigating`, `escalated` or `closed`.
    pub status: String,
    pub notes: Vec<serde_json::Value>,
    pub updated_at: String,
    /// Who works the case, when someone was assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// `surveillance` for alerts of the market-abuse rules (kinds `surveillance_*`); absent for AML and sanctions
    /// alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    /// Evidence: the trades and orders that form the pattern.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trade_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order_ids: Vec<String>,
    /// Surveillance: the measured values (the unit ends each name) and the thresholds in force when it fired.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub figures: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub thresholds: std::collections::BTreeMap<String, String>,
    /// Surveillance: when the pattern was completed, and the journal record that completed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_seq: Option<u64>,
}

/// Integers as decimal strings, like every other number the API may not hold exactly in a JSON number.
fn figure_texts(values: &std::collections::BTreeMap<String, i128>) -> std::collections::BTreeMap<String, String> {
    values.iter().map(|(name, value)| (name.clone(), value.to_string())).collect()
}

/// A full-scale decimal string of `units` of `asset` (minor units as an integer string if the asset is unknown).
fn asset_amount(
    catalog: Option<&otcd_core::catalog::Catalog>,
    asset: otcd_core::catalog::AssetCode,
    units: i128,
) -> String {
    catalog
        .and_then(|catalog| catalog.asset(&asset))
        .map_or_else(|| units.to_string(), |found| otcd_core::decimal::format_scaled(units, found.scale))
}

fn usd(cents: i128) -> String {
    otcd_core::decimal::format_scaled(cents, 2)
}

/// Milliseconds as whole seconds (AML windows are validated to be at least 1 ms; sub-second parts are dropped).
fn seconds(ms: i64) -> i64 {
    ms / 1000
}

fn alert_details(facts: &AlertFacts, catalog: Option<&otcd_core::catalog::Catalog>) -> serde_json::Value {
    use serde_json::json;
    match facts {
        AlertFacts::Structuring { window_ms, threshold_usd, floor_percent, deposits } => json!({
            "window_seconds": seconds(*window_ms),
            "threshold_usd": usd(*threshold_usd),
            "floor_percent": floor_percent,
            "deposits": deposits.iter().map(|deposit| json!({
                "reference": deposit.reference,
                "asset": deposit.asset.to_string(),
                "amount": asset_amount(catalog, deposit.asset, deposit.amount),
                "value_usd": usd(deposit.value_usd),
            })).collect::<Vec<_>>(),
        }),
        AlertFacts::RapidInAndOut {
            window_ms,
            withdrawal_id,
            asset,
            amount,
            destination_id,
            destination_registered_at,
            deposit_reference,
            trade_id,
        } => json!({
            "window_seconds": seconds(*window_ms),
            "withdrawal_id": withdrawal_id,
            "asset": asset.to_string(),
            "amount": asset_amount(catalog, *asset, *amount),
            "destination_id": destination_id,
            "destination_registered_at": crate::json::format_timestamp(*destination_registered_at),
            "deposit_reference": deposit_reference,
            "trade_id": trade_id,
        }),
        AlertFacts::Velocity { window_ms, traded_usd, baseline_usd, baseline_windows, active_windows, multiple } => {
            json!({
                "window_seconds": seconds(*window_ms),
                "traded_usd": usd(*traded_usd),
                "baseline_usd": usd(*baseline_usd),
                "baseline_windows": baseline_windows,
                "active_windows": active_windows,
                "multiple": multiple,
            })
        }
    }
}

pub(crate) fn alert_view(
    alert: &otcd_core::engine::alerts::Alert,
    catalog: Option<&otcd_core::catalog::Catalog>,
) -> AlertView {
    let surveillance = alert.surveillance.as_ref();
    AlertView {
        alert_id: alert.alert_id.clone(),
        kind: crate::json::enum_text(alert.kind),
        client_id: alert.client_id.as_ref().map(ToString::to_string),
        created_at: crate::json::format_timestamp(alert.created_at),
        evidence: alert.evidence.clone(),
        details: alert.facts.as_ref().map(|facts| alert_details(facts, catalog)),
        status: crate::json::enum_text(alert.status),
        notes: alert
            .notes
            .iter()
            .map(|note| serde_json::json!({"at": crate::json::format_timestamp(note.at), "by": note.by, "text": note.text}))
            .collect(),
        updated_at: crate::json::format_timestamp(alert.updated_at),
        assignee: alert.assignee.clone(),
        source: alert.kind.is_surveillance().then(|| "surveillance".to_owned()),
        instrument: surveillance.map(|evidence| evidence.instrument.clone()),
        trade_ids: surveillance.map(|evidence| evidence.trade_ids.clone()).unwrap_or_default(),
        order_ids: surveillance.map(|evidence| evidence.order_ids.clone()).unwrap_or_default(),
        figures: surveillance.map(|evidence| figure_texts(&evidence.figures)).unwrap_or_default(),
        thresholds: surveillance.map(|evidence| figure_texts(&evidence.thresholds)).unwrap_or_default(),
        observed_at: surveillance.map(|evidence| crate::json::format_timestamp(evidence.observed_at)),
        observed_seq: surveillance.map(|evidence| evidence.observed_seq),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertParams {
    status: Option<String>,
    client_id: Option<String>,
    /// One alert kind, e.g. `structuring` or `surveillance_wash_trade`.
    kind: Option<String>,
    limit: Option<usize>,
}

/// Compliance alerts, newest first, by case status and client.
#[utoipa::path(get, path = "/v1/admin/alerts", tag = "compliance", responses((status = 200, body = crate::views::ListView<AlertView>)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    signed: Signed,
) -> ApiResult<Json<crate::views::ListView<AlertView>>> {
    admin(&signed)?;
    let params: AlertParams = super::parse_query(&uri)?;
    let limit = super::page_limit(params.limit)?;
    let keep = move |alert: &AlertView| {
        params.status.as_ref().is_none_or(|status| alert.status == *status)
            && params.client_id.as_ref().is_none_or(|client| alert.client_id.as_ref() == Some(client))
            && params.kind.as_ref().is_none_or(|kind| alert.kind == *kind)
    };
    // Surveillance findings are engine alerts once raised (`RaiseSurveillanceAlert`), so one list has them all.
    let items: Vec<AlertView> = state
        .desk
        .read(move |desk| {
            let catalog = desk.catalog();
            desk.alerts().iter().rev().map(|alert| alert_view(alert, catalog)).filter(keep).take(limit).collect()
        })
        .await?;
    Ok(Json(crate::views::ListView { items, next_cursor: None }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertUpdateRequest {
    /// `open`, `investigating`, `escalated` or `closed`.
    #[schema(value_type = Option<String>)]
    status: Option<otcd_core::engine::alerts::CaseStatus>,
    note: Option<String>,
    /// Who works the case (at most 100 bytes); `""` removes the assignee.
    assignee: Option<String>,
}

/// Changes an alert's case status and/or adds a note (journaled with the key that made it).
#[utoipa::path(patch, path = "/v1/admin/alerts/{alert_id}", tag = "compliance", request_body = AlertUpdateRequest, responses((status = 200, body = AlertView)))]
pub async fn update_alert(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<AlertView>> {
    admin(&signed)?;
    let request: AlertUpdateRequest = parse_body(&signed.body)?;
    if request.status.is_none() && request.note.is_none() && request.assignee.is_none() {
        return Err(ApiError::invalid("status", "give a status, a note, an assignee or several of them"));
    }
    let update = otcd_core::engine::alerts::AlertUpdate {
        alert_id,
        status: request.status,
        note: request.note,
        assignee: request.assignee,
    };
    let alert = state.desk.update_alert(signed.principal.actor(), update).await?;
    Ok(Json(alert_view(&alert, Some(&state.desk.catalog))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmlRulesRequest {
    window_ms: i64,
    structuring_threshold_usd: crate::json::DecimalText,
    structuring_floor_percent: i128,
    structuring_count: usize,
    /// Velocity: alert when a window's notional exceeds this multiple of the client's baseline (default 5).
    velocity_multiple: Option<i128>,
    /// Windows the baseline averages over (default 30) and how many must be active (default 5).
    baseline_windows: Option<i64>,
    baseline_windows_min: Option<usize>,
}

/// Sets the AML rules' thresholds (see docs/compliance.md).
#[utoipa::path(put, path = "/v1/admin/aml-rules", tag = "compliance", request_body = AmlRulesRequest, responses((status = 200)))]
pub async fn put_aml_rules(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<serde_json::Value>> {
    admin(&signed)?;
    let request: AmlRulesRequest = parse_body(&signed.body)?;
    let rules = otcd_core::engine::alerts::AmlRules {
        window_ms: request.window_ms,
        structuring_threshold_usd: request.structuring_threshold_usd.positive("structuring_threshold_usd", 2)?,
        structuring_floor_percent: request.structuring_floor_percent,
        structuring_count: request.structuring_count,
        velocity_multiple: request.velocity_multiple.unwrap_or(5),
        baseline_windows: request.baseline_windows.unwrap_or(30),
        baseline_windows_min: request.baseline_windows_min.unwrap_or(5),
    };
    state.desk.put_aml_rules(signed.principal.actor(), rules.clone()).await?;
    Ok(Json(
        serde_json::json!({"window_ms": rules.window_ms, "structuring_threshold_usd": request.structuring_threshold_usd.0,
        "structuring_floor_percent": rules.structuring_floor_percent, "structuring_count": rules.structuring_count,
        "velocity_multiple": rules.velocity_multiple, "baseline_windows": rules.baseline_windows,
        "baseline_windows_min": rules.baseline_windows_min}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditEventParams {
    kind: Option<String>,
    limit: Option<usize>,
}

/// Recent audit records of refused commands and failed authentications, newest first (`kind=refused` or
/// `authentication_failed`). They are journaled like every command, so exports and `otcd verify` cover them.
/// Failed authentications come in groups per interval (source address, claimed key, reason) with `count`,
/// `first_at` and `last_at`.
#[utoipa::path(get, path = "/v1/admin/audit/events", tag = "admin", params(("kind" = Option<String>, Query,), ("limit" = Option<usize>, Query,)),
    responses((status = 200, description = "{\"items\": [{\"at\", \"kind\", \"code\", \"detail\", \"what\", \"key_id\", \"claimed_key_id\", \"source_ip\", \"count\"?, \"first_at\"?, \"last_at\"?}]}")))]
pub async fn audit_events(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    signed: Signed,
) -> ApiResult<Json<serde_json::Value>> {
    admin(&signed)?;
    let params: AuditEventParams = super::parse_query(&uri)?;
    let limit = super::page_limit(params.limit)?;
    if params.kind.as_deref().is_some_and(|kind| kind != "refused" && kind != "authentication_failed") {
        return Err(ApiError::invalid("kind", "must be refused or authentication_failed"));
    }
    let items: Vec<serde_json::Value> = state
        .desk
        .read(move |desk| {
            desk.audit_events()
                .iter()
                .rev()
                .filter_map(|entry| {
                    let kind = serde_json::to_value(entry.event.kind).ok()?;
                    if params.kind.as_deref().is_some_and(|wanted| kind != wanted) {
                        return None;
                    }
                    let mut item = serde_json::json!({"at": crate::json::format_timestamp(entry.at), "kind": kind,
                        "code": entry.event.code, "detail": entry.event.detail, "what": entry.event.what,
                        "key_id": entry.key_id, "claimed_key_id": entry.event.claimed_key_id, "source_ip": entry.source_ip});
                    if let Some(failures) = entry.event.failures {
                        item["count"] = failures.count.into();
                        item["first_at"] = crate::json::format_timestamp(failures.first_at).into();
                        item["last_at"] = crate::json::format_timestamp(failures.last_at).into();
                    }
                    Some(item)
                })
                .take(limit)
                .collect()
        })
        .await?;
    Ok(Json(serde_json::json!({"items": items, "next_cursor": null})))
}
