//! The HTTP application: shared state, the router, the signed-request extractor and request metrics.

use crate::auth::{self, Principal, ReplayGuard, SignedParts};
use crate::metrics::{HttpMetrics, RequestLabels, RouteLabels};
use crate::problem::ApiError;
use crate::routes;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use otcd_services::DeskServices;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Largest request body accepted; larger bodies are refused with 413 before they are read in full.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// Largest body of `POST /v1/admin/deposits/batch`: its most deposits
/// ([`otcd_services::accounts::DEPOSIT_BATCH_DEPOSITS_MAX`]) at their longest valid fields (64-character ids and
/// references, a 40-digit amount), pretty-printed, are about 300 KiB; the rest is slack for whitespace.
pub const DEPOSIT_BATCH_BODY_BYTES_MAX: usize = 1024 * 1024;

/// The body limit of a route: every route has [`REQUEST_BODY_BYTES_MAX`] but the deposit batch.
pub fn request_body_bytes_max(path: &str) -> usize {
    match path {
        "/v1/admin/deposits/batch" => DEPOSIT_BATCH_BODY_BYTES_MAX,
        _ => REQUEST_BODY_BYTES_MAX,
    }
}

/// What the HTTP edge holds: the desk services, and its own state (authentication replay guard, rate limits,
/// stream connections and ladder subscriptions, metrics).
pub struct AppContext {
    pub desk: Arc<DeskServices>,
    pub replay: ReplayGuard,
    pub metrics: HttpMetrics,
    pub data_dir: PathBuf,
    /// Requests signed before this (Unix ms) are refused: signatures seen before a restart are not all known.
    pub started_at_ms: i64,
    pub stream_connections: crate::stream::ConnectionCounter,
    pub ladders: otcd_services::ladders::LadderHub<crate::stream::Outbound>,
    pub rate_limits: crate::ratelimit::RateLimits,
    /// Failed authentications of the current interval, journaled as one summary per interval.
    pub auth_failures: crate::auth_failures::AuthFailureLog,
    /// Open connections and WebSockets against their caps, and the edge's timeouts.
    pub connections: Arc<crate::connections::ConnectionTracker>,
    /// What webhook URLs may target (`webhooks_allow_private`, the desk's own listener).
    pub webhook_policy: otcd_services::webhooks::UrlPolicy,
    /// The webhook worker's delivery log (`None`: no worker runs).
    pub webhooks: Option<Arc<dyn otcd_services::webhooks::DeliveryLog>>,
    /// This node's view of its replicated desk (`None`: not replicated; `/v1/admin/cluster` is then 404).
    pub cluster: Option<Arc<otcd_host::cluster::ClusterStatus>>,
}

pub type AppState = Arc<AppContext>;

impl AppContext {
    pub fn new(
        desk: Arc<DeskServices>,
        data_dir: PathBuf,
        rate_limits: crate::ratelimit::RateLimitConfig,
        recent_signatures: &[(String, i64)],
        auth_failure_interval_ms: u64,
        connection_limits: crate::connections::ConnectionLimits,
    ) -> Self {
        let replay = ReplayGuard::new();
        for (signature, signed_at_ms) in recent_signatures {
            replay.seed(signature, *signed_at_ms);
        }
        Self {
            replay,
            metrics: HttpMetrics::register(&desk.metrics),
            data_dir,
            started_at_ms: desk.clock.now().0,
            stream_connections: crate::stream::ConnectionCounter::default(),
            ladders: otcd_services::ladders::LadderHub::default(),
            rate_limits: crate::ratelimit::RateLimits::new(rate_limits),
            auth_failures: crate::auth_failures::AuthFailureLog::new(auth_failure_interval_ms),
            connections: Arc::new(crate::connections::ConnectionTracker::new(connection_limits, &desk.metrics)),
            webhook_policy: otcd_services::webhooks::UrlPolicy::default(),
            webhooks: None,
            cluster: None,
            desk,
        }
    }

    /// The catalog asset `text` names, or `400 invalid_request` on `asset`.
    pub fn catalog_asset(&self, text: &str) -> crate::problem::ApiResult<otcd_core::catalog::Asset> {
        Ok(self.desk.asset(text)?)
    }
}

pub fn router(state: AppState) -> Router {
    routes::routes()
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(middleware::from_fn(crate::web::cors))
        .with_state(state)
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state
        .metrics
        .request_seconds
        .get_or_create(&RouteLabels { route: route.clone() })
        .observe(started.elapsed().as_secs_f64());
    state.metrics.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    response
}

/// An authenticated request and its body. Extracting it reads the body (bounded), checks the signature, the
/// timestamp window, replay, revocation and the key's IP allow-list. Scopes are checked by each handler.
pub struct Signed {
    pub principal: Principal,
    pub body: Bytes,
    /// `GET` requests of a read-only operator key may read operator endpoints (`routes::admin::admin`).
    pub method: axum::http::Method,
}

impl FromRequest<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let source_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or_else(|| ApiError::internal("the peer address is unknown"))?;
        let class = crate::ratelimit::RequestClass::of(&parts.method, parts.uri.path());
        let now_ms = state.desk.clock.now().0;
        state.rate_limits.check_ip(source_ip, class)?;
        let body_read_timeout = state.connections.limits.body_read_timeout;
        let body_bytes_max = request_body_bytes_max(parts.uri.path());
        let body = tokio::time::timeout(body_read_timeout, axum::body::to_bytes(body, body_bytes_max))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!("the request body did not arrive within {} ms", body_read_timeout.as_millis()),
                )
            })?
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request bodies are limited to {body_bytes_max} bytes"),
                )
            })?;
        require_json_body(&parts.headers, &body)?;
        if let Some(token) = session_token(&parts) {
            let principal = crate::sessions::authenticate(&state.desk.keys, token, source_ip, now_ms).inspect_err(
                |error| tracing::info!(code = error.code, detail = %error.detail, %source_ip, "session token refused"),
            )?;
            state.rate_limits.check_key(&principal, class)?;
            return Ok(Signed { principal, body, method: parts.method });
        }
        let path_with_query = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let signed = SignedParts {
            key_id: header(&parts.headers, "otc-key"),
            timestamp: header(&parts.headers, "otc-timestamp"),
            signature: header(&parts.headers, "otc-signature"),
            nonce: header(&parts.headers, "otc-nonce"),
            method: parts.method.as_str(),
            path_with_query,
            body: &body,
            source_ip,
        };
        let principal = auth::authenticate(&state.desk.keys, &state.replay, &signed, now_ms, state.started_at_ms)
            .inspect_err(|error| {
                tracing::info!(code = error.code, detail = %error.detail, %source_ip, "request refused by authentication");
                audit_failed_authentication(state, &signed, error);
            })?;
        state.rate_limits.check_key(&principal, class)?;
        Ok(Signed { principal, body, method: parts.method.clone() })
    }
}

/// Counts a failed authentication for the audit trail: nobody was authenticated, so the group carries the source
/// address and the key id the request claimed. Journaled once per interval as a summary
/// ([`crate::auth_failures`]), never once per request: strangers must not grow the journal.
fn audit_failed_authentication(state: &AppState, signed: &SignedParts<'_>, error: &ApiError) {
    if error.status != StatusCode::UNAUTHORIZED {
        return; // 403s (scope, allow-list) come from authenticated keys' requests and 503s from load.
    }
    let what = format!("{} {}", signed.method, signed.path_with_query);
    let at = state.desk.clock.now();
    state.auth_failures.record(signed.source_ip, signed.key_id, error.code, &error.detail, &what, at);
}

/// A request body typed as anything but JSON (`text/plain`, a form) is refused with `415` rather than guessed
/// at; `application/json` may carry parameters such as `charset`. An untyped body is read as JSON: the acceptance
/// contract (`API.md`) never asked clients for the header, and clients written to it must keep working. Bodiless
/// requests (GET, DELETE, a POST without a body) may send any type or none.
pub fn require_json_body(headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let Some(content_type) = header(headers, "content-type") else { return Ok(()) };
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "request bodies must be JSON sent with Content-Type: application/json",
    ))
}

/// A session token: `Authorization: Bearer otcd_sess_...`, or for the WebSocket upgrade (browsers cannot set its
/// headers) the `token` query parameter of `GET /v1/stream`.
fn session_token(parts: &axum::http::request::Parts) -> Option<&str> {
    if let Some(token) = header(&parts.headers, "authorization").and_then(|value| value.strip_prefix("Bearer ")) {
        return Some(token.trim());
    }
    if parts.uri.path() != "/v1/stream" {
        return None;
    }
    parts.uri.query()?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
