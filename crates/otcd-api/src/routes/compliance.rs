//! Compliance endpoints: jurisdiction rules (`PUT /v1/admin/jurisdictions/{code}`).

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::json::parse_body;
use crate::problem::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::Json;
use otcd_core::catalog::AssetCode;
use otcd_core::engine::jurisdictions::JurisdictionRule;
use otcd_core::engine::{Command, Outcome};
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
    let code = Jurisdiction::parse(&code).map_err(|error| ApiError::invalid("code", error.to_string()))?;
    let blocked_assets = request
        .blocked_assets
        .iter()
        .map(|text| {
            state
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
    let executed = state.engine.submit(signed.principal.actor(), Command::PutJurisdiction(rule)).await?;
    let Outcome::Jurisdiction(stored) = executed.outcome else { return Err(ApiError::internal("unexpected outcome")) };
    Ok(Json(view(&stored)))
}

/// Every jurisdiction rule in force.
#[utoipa::path(get, path = "/v1/admin/jurisdictions", tag = "compliance", responses((status = 200, body = crate::views::ListView<JurisdictionView>)))]
pub async fn list_jurisdictions(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<Json<crate::views::ListView<JurisdictionView>>> {
    admin(&signed)?;
    let items = state.engine.query(|desk| desk.jurisdiction_rules().map(view).collect()).await?;
    Ok(Json(crate::views::ListView { items, next_cursor: None }))
}
