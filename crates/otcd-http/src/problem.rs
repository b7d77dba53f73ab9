//! RFC 9457 problem details with otcd's stable error codes. Every refusal the API gives is one of these.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use otcd_core::engine::CommandError;
use otcd_services::ServiceError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type: `/errors/{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable machine-readable code (see API.md).
    pub code: String,
    /// The request field at fault, for `invalid_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), field: None, retry_after_seconds: None }
    }

    /// `400 invalid_request` naming the field at fault.
    pub fn invalid(field: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        let field = field.into();
        let mut error = Self::new(StatusCode::BAD_REQUEST, "invalid_request", format!("{field}: {detail}"));
        error.field = Some(field);
        error
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unavailable(detail: impl Into<String>, retry_after_seconds: u64) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        error.retry_after_seconds = Some(retry_after_seconds);
        error
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    pub fn title(&self) -> &'static str {
        match self.code {
            "invalid_request" => "Invalid request",
            "unauthenticated" => "Unauthenticated",
            "forbidden" => "Forbidden",
            "not_found" => "Not found",
            "conflict" => "Conflict",
            "insufficient_funds" => "Insufficient funds",
            "unavailable" => "Service unavailable",
            "payload_too_large" => "Payload too large",
            "unsupported_media_type" => "Unsupported media type",
            "request_timeout" => "Request timeout",
            "method_not_allowed" => "Method not allowed",
            "upgrade_required" => "Upgrade required",
            "rate_limited" => "Rate limited",
            "instrument_unknown" => "Unknown instrument",
            "kyc_required" => "KYC required",
            "price_unavailable" => "Price unavailable",
            "quote_not_found" => "Quote not found",
            "quote_expired" => "Quote expired",
            "quote_already_used" => "Quote already used",
            "slippage_exceeded" => "Slippage exceeded",
            "limit_exceeded" => "Limit exceeded",
            "order_not_cancelable" => "Order not cancelable",
            "not_leader" => "Not the leader",
            "internal" => "Internal error",
            // Every other code (sanctions_hit, trading_halted, overloaded, ...) is titled by its status, never
            // as an internal error it is not.
            _ => self.status.canonical_reason().unwrap_or("Error"),
        }
    }

    pub fn to_problem(&self) -> Problem {
        Problem {
            problem_type: format!("/errors/{}", self.code),
            title: self.title().to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            field: self.field.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).expect("problems serialize");
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match &error {
            CommandError::Invalid { field, detail } => ApiError::invalid(*field, detail),
            CommandError::NotFound { what } => ApiError::not_found(format!("{what} not found")),
            CommandError::Conflict { detail } => ApiError::new(StatusCode::CONFLICT, "conflict", detail.clone()),
            CommandError::AlreadyInitialized => ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            CommandError::InstrumentUnknown(detail) => {
                ApiError::new(StatusCode::BAD_REQUEST, "instrument_unknown", detail.clone())
            }
            CommandError::KycRequired => ApiError::new(StatusCode::FORBIDDEN, "kyc_required", error.to_string()),
            CommandError::QuoteNotFound => ApiError::new(StatusCode::NOT_FOUND, "quote_not_found", error.to_string()),
            CommandError::QuoteExpired => ApiError::new(StatusCode::CONFLICT, "quote_expired", error.to_string()),
            CommandError::QuoteAlreadyUsed => {
                ApiError::new(StatusCode::CONFLICT, "quote_already_used", error.to_string())
            }
            CommandError::PriceUnavailable(detail) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "price_unavailable",
                format!("no fresh market data: {detail}"),
            )
            .with_retry_after(1),
            CommandError::InsufficientFunds { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds", error.to_string())
            }
            CommandError::LimitExceeded { limit, excess_usd_cents } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "limit_exceeded",
                format!("{limit} would be exceeded by {} USD", otcd_core::decimal::format_scaled(*excess_usd_cents, 2)),
            ),
            CommandError::SlippageExceeded { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "slippage_exceeded", error.to_string())
            }
            CommandError::DestinationNotApproved { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "destination_not_approved", error.to_string())
            }
            CommandError::SanctionsHit => ApiError::new(StatusCode::FORBIDDEN, "sanctions_hit", error.to_string()),
            CommandError::JurisdictionRestricted { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "jurisdiction_restricted", error.to_string())
            }
            CommandError::TradingHalted { .. } => {
                ApiError::new(StatusCode::CONFLICT, "trading_halted", error.to_string())
            }
            CommandError::DeskCapacity { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", error.to_string())
            }
            CommandError::OrderNotCancelable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "order_not_cancelable", error.to_string())
            }
            CommandError::NotInitialized | CommandError::Ledger(_) => {
                tracing::error!(%error, "engine refused a command for an internal reason");
                ApiError::internal("the desk could not process the command")
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Rejected(refusal) => refusal.into(),
            ServiceError::NotFound(detail) => ApiError::not_found(detail),
            ServiceError::Forbidden(detail) => ApiError::forbidden(detail),
            error @ ServiceError::PriceUnavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "price_unavailable", error.to_string())
            }
            ServiceError::Unavailable { detail, retry_after_seconds } => {
                ApiError::unavailable(detail, retry_after_seconds)
            }
            error @ ServiceError::NotDurable => ApiError::unavailable(error.to_string(), 5),
            error @ ServiceError::Overloaded => ApiError::unavailable(error.to_string(), 1),
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "a desk service failed");
                ApiError::internal(detail)
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_titled_by_its_code_or_else_by_its_status_never_as_an_internal_error_it_is_not() {
        let title = |status, code| ApiError::new(status, code, "detail").to_problem().title;
        assert_eq!(title(StatusCode::SERVICE_UNAVAILABLE, "not_leader"), "Not the leader");
        assert_eq!(title(StatusCode::FORBIDDEN, "sanctions_hit"), "Forbidden");
        assert_eq!(title(StatusCode::SERVICE_UNAVAILABLE, "overloaded"), "Service Unavailable");
        assert_eq!(title(StatusCode::INTERNAL_SERVER_ERROR, "internal"), "Internal error");
        assert_eq!(title(StatusCode::UNPROCESSABLE_ENTITY, "quote_expired"), "Quote expired");
    }
}
