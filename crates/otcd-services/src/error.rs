//! Why a desk service did not do what it was asked. Every protocol edge maps these to its own errors (HTTP
//! problem+json, FIX Reject) with the same stable codes.

use otcd_core::engine::CommandError;
use otcd_host::runner::SubmitError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// A decision of the desk with its stable code: an engine refusal, or the same rule checked before a
    /// command is built (an unknown instrument, a quantity off the increment).
    #[error(transparent)]
    Rejected(#[from] CommandError),
    /// Nothing by that id for this caller (`not_found`), with the text to show.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (`forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// No market data to price this size indicatively (`price_unavailable`).
    #[error("no market data for this size: {0}")]
    PriceUnavailable(String),
    /// Something the request needs is not there right now (`unavailable`): lists not loaded, reports catching
    /// up, a checkpoint not yet written.
    #[error("{detail}")]
    Unavailable { detail: String, retry_after_seconds: u64 },
    /// The journal failed or the desk is stopping: nothing was acknowledged.
    #[error("the desk cannot make changes durable right now; nothing was acknowledged")]
    NotDurable,
    /// The engine's queue is full.
    #[error("the desk is at capacity; retry shortly")]
    Overloaded,
    /// A bug or an environment failure, never a client mistake.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        ServiceError::Rejected(CommandError::invalid(field, detail))
    }

    pub fn unavailable(detail: impl Into<String>, retry_after_seconds: u64) -> Self {
        ServiceError::Unavailable { detail: detail.into(), retry_after_seconds }
    }

    /// The stable code of API.md every edge shows for this error (HTTP's problem `code`, FIX's Text).
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Rejected(refusal) => refusal.code(),
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::PriceUnavailable(_) => "price_unavailable",
            ServiceError::Unavailable { .. } | ServiceError::NotDurable | ServiceError::Overloaded => "unavailable",
            ServiceError::Internal(_) => "internal",
        }
    }
}

impl From<SubmitError> for ServiceError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::Refused(refusal) => ServiceError::Rejected(refusal),
            SubmitError::Unavailable => ServiceError::NotDurable,
            SubmitError::Overloaded => ServiceError::Overloaded,
        }
    }
}

impl From<otcd_host::reports::ReportsUnavailable> for ServiceError {
    fn from(error: otcd_host::reports::ReportsUnavailable) -> Self {
        ServiceError::unavailable(error.to_string(), 1)
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
