//! `POST /v1/sessions`: a short-lived, client-scoped session token for a web page (see `crate::sessions`).

use crate::app::{AppState, Signed};
use crate::json::{format_timestamp, parse_body};
use crate::problem::{ApiError, ApiResult};
use crate::sessions::{self, TokenPayload, TTL_SECONDS_DEFAULT, TTL_SECONDS_MAX, TTL_SECONDS_MIN};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use otcd_core::model::Scope;
use otcd_core::time::TimestampMs;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Lifetime of the token, 60 to 3600 seconds (default 900).
    ttl_seconds: Option<u32>,
    /// A subset of the key's scopes; `withdraw` and `admin` only for admin keys. Default: every scope the key
    /// may hand out.
    #[schema(value_type = Option<Vec<String>>, example = json!(["read", "trade"]))]
    scopes: Option<Vec<Scope>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Send as `Authorization: Bearer <token>`, or as `?token=` on `GET /v1/stream`.
    pub token: String,
    pub expires_at: String,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
}

/// Mints a session token for a browser. The request must be signed with the key itself (a session token cannot
/// make another); the token is never more than that key: same client, a subset of its scopes, and no `withdraw`
/// or `admin` unless the key is an admin key. Tokens are stateless and not journaled; revoking the key ends them.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = SessionRequest,
    responses((status = 201, body = SessionView), (status = 400, body = crate::problem::Problem),
        (status = 401, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem)))]
pub async fn create_session(
    State(state): State<AppState>,
    signed: Signed,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    if signed.principal.session_expires_at_ms.is_some() {
        return Err(ApiError::forbidden("a session token cannot create sessions; sign this request with the key"));
    }
    let request: SessionRequest = if signed.body.iter().all(u8::is_ascii_whitespace) {
        SessionRequest::default()
    } else {
        parse_body(&signed.body)?
    };
    let ttl = request.ttl_seconds.unwrap_or(TTL_SECONDS_DEFAULT);
    if !(TTL_SECONDS_MIN..=TTL_SECONDS_MAX).contains(&ttl) {
        return Err(ApiError::invalid("ttl_seconds", "must be between 60 and 3600"));
    }
    let key = &signed.principal.key;
    let scopes = sessions::grantable(&key.scopes, request.scopes.as_deref())?;
    let expires_at_ms = state.desk.clock.now().0 + i64::from(ttl) * 1_000;
    let client_id = key.client_id.as_ref().map(|id| id.to_string());
    let payload = TokenPayload {
        key_id: key.key_id.to_string(),
        client_id: client_id.clone(),
        scopes: scopes.clone(),
        expires_at_ms,
        nonce: String::new(),
    };
    let token = sessions::mint(state.desk.keys.master_key().session_key(), payload);
    let view = SessionView {
        token,
        expires_at: format_timestamp(TimestampMs(expires_at_ms)),
        client_id,
        scopes: scopes.iter().map(|scope| scope.as_str().to_owned()).collect(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}
