//! Unauthenticated endpoints: health, metrics, the OpenAPI document and the catalog.

use crate::app::AppState;
use crate::problem::{ApiError, ApiResult};
use crate::views::{AssetView, InstrumentView, ListView};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the engine answers and the journal accepts writes.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready", body = crate::problem::Problem)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let engine = &state.desk.engine;
    if !engine.is_healthy() {
        return Err(ApiError::unavailable("the journal failed; restart the desk", 5));
    }
    if !engine.accepts_requests() {
        return Err(ApiError::unavailable("the replicated journal has no quorum", 1));
    }
    state.desk.read(|_| ()).await?;
    Ok(Json(
        json!({"status": "ready", "journal_seq": engine.durable_seq(), "engine_queue_depth": engine.queue_depth()}),
    ))
}

/// This node's role in its replicated desk (docs/operations.md); 404 when the desk is not replicated.
#[utoipa::path(get, path = "/v1/admin/cluster", tag = "operations", responses((status = 200, description = "`{node_id, role, leader, applied_seq, stream_seq, lag_records, executed_seq, last_promotion}` (docs/operations.md)"), (status = 404, description = "the desk is not replicated", body = crate::problem::Problem)))]
pub async fn cluster(State(state): State<AppState>) -> ApiResult<Json<otcd_host::cluster::ClusterView>> {
    match &state.cluster {
        Some(status) => Ok(crate::cluster::cluster_view(status).await),
        None => Err(ApiError::not_found("this desk is not replicated")),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = &state.desk.metrics;
    metrics.engine_queue_depth.set(state.desk.engine.queue_depth() as i64);
    let mut text = metrics.render();
    let mut venues = super::market::render_metrics(&state.desk.market.venue_board().feeds(), state.desk.clock.now());
    if let Some(cluster) = &state.cluster {
        venues.push_str(&crate::cluster::metrics_text(cluster));
    }
    // The venue lines go before the OpenMetrics terminator, if the registry wrote one.
    match text.rfind("# EOF") {
        Some(end) => text.insert_str(end, &venues),
        None => text.push_str(&venues),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// This document.
pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::document())
}

/// The instruments the desk quotes.
#[utoipa::path(get, path = "/v1/instruments", tag = "catalog", responses((status = 200, body = ListView<InstrumentView>)))]
pub async fn instruments(State(state): State<AppState>) -> Json<ListView<InstrumentView>> {
    let catalog = &state.desk.catalog;
    let items = catalog.instruments().iter().map(|instrument| InstrumentView::new(instrument, catalog)).collect();
    Json(ListView { items, next_cursor: None })
}

/// The assets the ledger keeps, with their scales.
#[utoipa::path(get, path = "/v1/assets", tag = "catalog", responses((status = 200, body = ListView<AssetView>)))]
pub async fn assets(State(state): State<AppState>) -> Json<ListView<AssetView>> {
    Json(ListView { items: state.desk.catalog.assets().iter().map(AssetView::from).collect(), next_cursor: None })
}
