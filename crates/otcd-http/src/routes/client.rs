//! A client's own account: profile and limits, balances, ledger history. Desk (admin) keys may read any
//! client's by passing `client_id`.

use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::auth::Principal;
use crate::json::parse_timestamp;
use crate::problem::{ApiError, ApiResult};
use crate::views::{AccountView, BalanceView, LedgerEntryView, ListView};
use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use otcd_core::engine::LedgerQuery;
use otcd_core::ids::ClientId;
use otcd_core::model::Scope;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerQuery {
    client_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerParams {
    client_id: Option<String>,
    asset: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Which client a read is about: a client key reads its own; a desk key with `admin` (or a read-only operator key)
/// names one.
fn subject(principal: &Principal, requested: Option<&str>) -> ApiResult<ClientId> {
    principal.require(Scope::Read).or_else(|_| principal.require(Scope::Admin))?;
    match (&principal.key.client_id, requested) {
        (Some(own), None) => Ok(own.clone()),
        (Some(own), Some(requested)) if requested == own.as_str() => Ok(own.clone()),
        (Some(_), Some(_)) => Err(ApiError::forbidden("a client key reads only its own account")),
        (None, Some(requested)) => {
            // Reads only (these are GET endpoints): an operator key, or a read-only operator key.
            if !principal.is_read_only_operator() {
                principal.require(Scope::Admin)?;
            }
            ClientId::parse(requested).map_err(|error| ApiError::invalid("client_id", error))
        }
        (None, None) => Err(ApiError::invalid("client_id", "desk keys must name the client to read")),
    }
}

/// The client's tier, KYC state, limits and usage.
#[utoipa::path(get, path = "/v1/account", tag = "account", params(("client_id" = Option<String>, Query, description = "desk keys only")),
    responses((status = 200, body = AccountView), (status = 401, body = crate::problem::Problem)))]
pub async fn account(State(state): State<AppState>, uri: Uri, signed: Signed) -> ApiResult<Json<AccountView>> {
    let params: OwnerQuery = parse_query(&uri)?;
    let client_id = subject(&signed.principal, params.client_id.as_deref())?;
    // The daily window is the UTC calendar day of the request.
    let day_start = otcd_core::time::TimestampMs(state.desk.clock.now().0.div_euclid(86_400_000) * 86_400_000);
    let view = state
        .desk
        .read(move |desk| {
            let client = desk.client(&client_id)?;
            let daily = desk.notional_traded_since(&client_id, day_start);
            let mut view = AccountView::new(client, desk.tier(&client.tier), daily, desk.credit_used(&client_id));
            let catalog = desk.catalog()?;
            view.unsettled = desk
                .unsettled_obligations(&client_id)
                .into_iter()
                .map(|(asset, amount)| crate::views::UnsettledView {
                    asset: asset.to_string(),
                    amount: otcd_core::decimal::format_scaled(
                        amount,
                        catalog.asset(&asset).map_or(0, |asset| asset.scale),
                    ),
                })
                .collect();
            Some(view)
        })
        .await?;
    view.map(Json).ok_or_else(|| ApiError::not_found("client not found"))
}

/// Available and reserved balance of every asset.
#[utoipa::path(get, path = "/v1/balances", tag = "account", params(("client_id" = Option<String>, Query, description = "desk keys only")),
    responses((status = 200, body = ListView<BalanceView>), (status = 401, body = crate::problem::Problem)))]
pub async fn balances(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<BalanceView>>> {
    let params: OwnerQuery = parse_query(&uri)?;
    let client_id = subject(&signed.principal, params.client_id.as_deref())?;
    let items = state
        .desk
        .read(move |desk| {
            desk.client(&client_id).map(|_| desk.balances(&client_id).iter().map(BalanceView::from).collect::<Vec<_>>())
        })
        .await?
        .ok_or_else(|| ApiError::not_found("client not found"))?;
    Ok(Json(ListView { items, next_cursor: None }))
}

/// Ledger entries of the client's accounts, oldest first, paged.
#[utoipa::path(get, path = "/v1/ledger", tag = "account",
    params(("asset" = Option<String>, Query,), ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339, exclusive"), ("limit" = Option<usize>, Query,), ("cursor" = Option<String>, Query,),
        ("client_id" = Option<String>, Query, description = "desk keys only")),
    responses((status = 200, body = ListView<LedgerEntryView>), (status = 400, body = crate::problem::Problem)))]
pub async fn ledger(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<LedgerEntryView>>> {
    let params: LedgerParams = parse_query(&uri)?;
    let client_id = subject(&signed.principal, params.client_id.as_deref())?;
    let asset = match &params.asset {
        Some(text) => Some(state.catalog_asset(text)?.code),
        None => None,
    };
    let query = LedgerQuery {
        asset,
        from: params.from.as_deref().map(|text| parse_timestamp("from", text)).transpose()?,
        to: params.to.as_deref().map(|text| parse_timestamp("to", text)).transpose()?,
        after: params
            .cursor
            .as_deref()
            .map(|text| text.parse().map_err(|_| ApiError::invalid("cursor", "is not a cursor this API returned")))
            .transpose()?,
        limit: page_limit(params.limit)?,
    };
    let page = state
        .desk
        .read(move |desk| desk.client(&client_id).map(|_| desk.ledger_lines(&client_id, &query)))
        .await?
        .ok_or_else(|| ApiError::not_found("client not found"))?;
    Ok(Json(ListView {
        items: page.items.iter().map(LedgerEntryView::from).collect(),
        next_cursor: page.next_cursor.map(|cursor| cursor.to_string()),
    }))
}
