//! Reports, trade log and compliance exports (`docs/reports.md`), answered from the reports projection, never by
//! the engine. A report reflects every command acknowledged before the request arrived.

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::problem::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use otcd_host::reports::ReportsUnavailable;
use otcd_reports::{ReportError, ReportKind, ReportParams};

impl From<ReportsUnavailable> for ApiError {
    fn from(error: ReportsUnavailable) -> Self {
        ApiError::unavailable(error.to_string(), 1)
    }
}

fn report_error(error: ReportError) -> ApiError {
    match error {
        ReportError::Invalid { field, detail } => ApiError::invalid(field, detail),
        ReportError::NotFound(detail) => ApiError::not_found(detail),
    }
}

async fn render(state: &AppState, kind: ReportKind, uri: &axum::http::Uri) -> ApiResult<Response> {
    let params: ReportParams = super::parse_query(uri)?;
    let wanted = state.desk.engine.durable_seq();
    let rendered = state
        .desk
        .reports
        .read(wanted, move |projection| otcd_reports::render(projection, kind, &params))
        .await?
        .map_err(report_error)?;
    let mut response = ([(header::CONTENT_TYPE, rendered.content_type)], rendered.body).into_response();
    if let Some(cursor) = rendered.next_cursor.and_then(|cursor| HeaderValue::from_str(&cursor).ok()) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    Ok(response)
}

/// The desk's trade log: every client's trades, oldest first, filtered by `client_id`, `instrument`, `asset`
/// (base or quote), `side` and the window `[from, to)`; `format=json` (pages of ≤ 1000) or `csv` (≤ 100,000
/// rows, next cursor in `X-Next-Cursor`).
#[utoipa::path(get, path = "/v1/admin/trades", tag = "reports", params(
    ("client_id" = Option<String>, Query), ("instrument" = Option<String>, Query), ("asset" = Option<String>, Query),
    ("side" = Option<String>, Query), ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
    ("to" = Option<String>, Query, description = "RFC 3339, exclusive"), ("limit" = Option<usize>, Query),
    ("cursor" = Option<String>, Query), ("format" = Option<String>, Query, description = "json or csv")),
    responses((status = 200, description = "the trade log page (JSON or CSV)")))]
pub async fn trades(State(state): State<AppState>, uri: axum::http::Uri, signed: Signed) -> ApiResult<Response> {
    admin(&signed)?;
    render(&state, ReportKind::Trades, &uri).await
}

/// A report: `positions`, `volume`, `revenue`, `statement` (needs `client_id`), `settlement`, `trades`, and the
/// compliance exports `kyc`, `screening`, `alerts`. Same parameters and formats as the trade log.
#[utoipa::path(get, path = "/v1/admin/reports/{report}", tag = "reports", params(("report" = String, Path)),
    responses((status = 200, description = "the report (JSON or CSV)")))]
pub async fn report(
    State(state): State<AppState>,
    Path(name): Path<String>,
    uri: axum::http::Uri,
    signed: Signed,
) -> ApiResult<Response> {
    admin(&signed)?;
    let kind = ReportKind::parse(&name).ok_or_else(|| ApiError::not_found(format!("no report named {name:?}")))?;
    render(&state, kind, &uri).await
}
