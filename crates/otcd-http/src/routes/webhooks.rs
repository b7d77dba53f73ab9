//! Webhooks: registration (`POST /v1/webhooks`: a client key with `read` for its own client, a desk key with
//! `admin` desk-wide), listing, deletion, and the delivery log with manual redelivery. Deliveries themselves
//! are made by the `otcd-webhooks` worker.

use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::json::{format_timestamp, parse_body};
use crate::problem::{ApiError, ApiResult};
use crate::views::ListView;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use otcd_core::engine::webhooks::{Webhook, WebhookEventKind};
use otcd_core::model::Scope;
use otcd_services::webhooks::{DeliveryView, WebhookOwner};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// `https://...` (or `http://` for tests and demos); must not resolve to the desk itself, a link-local or
    /// cloud-metadata address, or (unless `webhooks_allow_private = true`) a loopback or private one.
    url: String,
    events: Vec<EventKind>,
}

/// A kind of event a webhook receives.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Order,
    Trade,
    Withdrawal,
    Settlement,
    Balance,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    id: String,
    url: String,
    events: Vec<EventKind>,
    /// `null` for a desk-wide webhook.
    client_id: Option<String>,
    created_at: String,
    /// The signing secret: only in the answer to `POST /v1/webhooks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// One delivery of an event to a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryItem {
    /// Stable across retries and restarts (`OTC-WEBHOOK-ID`).
    id: String,
    webhook_id: String,
    seq: u64,
    #[serde(rename = "type")]
    kind: EventKind,
    status: DeliveryStatus,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

impl EventKind {
    fn name(self) -> &'static str {
        match self {
            EventKind::Order => "order",
            EventKind::Trade => "trade",
            EventKind::Withdrawal => "withdrawal",
            EventKind::Settlement => "settlement",
            EventKind::Balance => "balance",
        }
    }
}

fn kind_of(kind: WebhookEventKind) -> EventKind {
    match kind {
        WebhookEventKind::Order => EventKind::Order,
        WebhookEventKind::Trade => EventKind::Trade,
        WebhookEventKind::Withdrawal => EventKind::Withdrawal,
        WebhookEventKind::Settlement => EventKind::Settlement,
        WebhookEventKind::Balance => EventKind::Balance,
    }
}

fn webhook_view(webhook: &Webhook, secret: Option<String>) -> WebhookView {
    WebhookView {
        id: webhook.webhook_id.clone(),
        url: webhook.url.clone(),
        events: webhook.events.iter().copied().map(kind_of).collect(),
        client_id: webhook.client_id.as_ref().map(ToString::to_string),
        created_at: format_timestamp(webhook.created_at),
        secret,
    }
}

fn delivery_item(view: DeliveryView) -> DeliveryItem {
    let kind = WebhookEventKind::parse(view.kind).map_or(EventKind::Order, kind_of);
    let status = match view.status {
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        _ => DeliveryStatus::Pending,
    };
    DeliveryItem {
        id: view.id,
        webhook_id: view.webhook_id,
        seq: view.seq,
        kind,
        status,
        attempts: view.attempts,
        last_status_code: view.last_status_code,
        last_error: view.last_error,
        next_attempt_at: view.next_attempt_at,
        delivered_at: view.delivered_at,
        created_at: view.created_at,
    }
}

/// A client key with `read` owns its client's webhooks; a desk key with `admin` owns desk-wide ones and sees all.
fn owner(signed: &Signed) -> ApiResult<WebhookOwner> {
    let key = &signed.principal.key;
    match &key.client_id {
        Some(client_id) => {
            signed.principal.require(Scope::Read)?;
            Ok(WebhookOwner::Client(client_id.clone()))
        }
        None => {
            signed.principal.require(Scope::Admin)?;
            Ok(WebhookOwner::Desk)
        }
    }
}

/// Registers a webhook; the answer carries its signing secret, never shown again.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = WebhookRequest,
    responses((status = 201, body = WebhookView)))]
pub async fn create_webhook(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    let owner = owner(&signed)?;
    let request: WebhookRequest = parse_body(&signed.body)?;
    let events: Vec<String> = request.events.iter().map(|kind| kind.name().to_owned()).collect();
    let (webhook, secret) =
        state.desk.create_webhook(signed.principal.actor(), owner, &request.url, &events, state.webhook_policy).await?;
    Ok((StatusCode::CREATED, Json(webhook_view(&webhook, Some(secret)))))
}

/// The caller's webhooks (a desk key: all of them).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", responses((status = 200, body = ListView<WebhookView>)))]
pub async fn list_webhooks(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<ListView<WebhookView>>> {
    let webhooks = state.desk.webhooks_of(owner(&signed)?).await?;
    let items = webhooks.iter().map(|webhook| webhook_view(webhook, None)).collect();
    Ok(Json(ListView { items, next_cursor: None }))
}

#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path)), responses((status = 200, body = WebhookView)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    signed: Signed,
) -> ApiResult<Json<WebhookView>> {
    let webhook = state.desk.webhook_of(owner(&signed)?, webhook_id).await?;
    Ok(Json(webhook_view(&webhook, None)))
}

/// Deletes a webhook: nothing more is delivered to it.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path)), responses((status = 204, description = "deleted")))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    signed: Signed,
) -> ApiResult<StatusCode> {
    state.desk.delete_webhook(signed.principal.actor(), owner(&signed)?, webhook_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's delivery log, newest first (the last 1,000 deliveries, kept in memory since the desk started).
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(("webhook_id" = String, Path), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = ListView<DeliveryItem>)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Path(webhook_id): Path<String>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<DeliveryItem>>> {
    let query: DeliveriesQuery = parse_query(&uri)?;
    let limit = page_limit(query.limit)?;
    let webhook = state.desk.webhook_of(owner(&signed)?, webhook_id).await?;
    let log = state.webhooks.as_ref().ok_or_else(|| ApiError::unavailable("webhook deliveries are off", 60))?;
    let (items, next_cursor) = log.deliveries(&webhook.webhook_id, limit, query.cursor.as_deref());
    Ok(Json(ListView { items: items.into_iter().map(delivery_item).collect(), next_cursor }))
}

/// Sends a logged delivery again (same id and body).
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("webhook_id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = DeliveryItem)))]
pub async fn redeliver(
    State(state): State<AppState>,
    Path((webhook_id, delivery_id)): Path<(String, String)>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<DeliveryItem>)> {
    let webhook = state.desk.webhook_of(owner(&signed)?, webhook_id).await?;
    let log = state.webhooks.as_ref().ok_or_else(|| ApiError::unavailable("webhook deliveries are off", 60))?;
    let view = log
        .redeliver(&webhook.webhook_id, &delivery_id)
        .ok_or_else(|| ApiError::not_found("no such delivery in the log"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery_item(view))))
}
