//! Why a command was refused. A refused command changes nothing. Each variant maps to one stable API error code.

use crate::ledger::LedgerError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A field's value is not acceptable (the HTTP layer reports it as `invalid_request` naming the field).
    #[error("{field}: {detail}")]
    Invalid { field: &'static str, detail: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// An idempotency key reused with a different body, or a state that forbids the change.
    #[error("{detail}")]
    Conflict { detail: String },
    #[error("insufficient funds: {detail}")]
    InsufficientFunds { detail: String },
    /// A tier limit would be exceeded: which one, and by how much (USD cents).
    #[error("{limit} would be exceeded by {excess_usd_cents} USD cents")]
    LimitExceeded { limit: &'static str, excess_usd_cents: i128 },
    #[error("{0}")]
    InstrumentUnknown(String),
    #[error("KYC is not approved or has expired: firm prices, trading and withdrawals need approved KYC")]
    KycRequired,
    #[error("no fresh market data: {0}")]
    PriceUnavailable(String),
    #[error("no such quote for this client")]
    QuoteNotFound,
    #[error("the quote has expired")]
    QuoteExpired,
    #[error("the quote was already used")]
    QuoteAlreadyUsed,
    #[error("the firm price {price} is worse than the reference {reference} by more than the allowed slippage")]
    SlippageExceeded { price: i128, reference: i128 },
    /// The kill switch is engaged (`scope` = "desk") or the instrument is halted.
    #[error("trading is halted ({scope}){}", reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default())]
    TradingHalted { scope: String, reason: Option<String> },
    /// The desk cannot take the whole size now (position limits, largest fill per trade).
    #[error("desk capacity: {detail}")]
    DeskCapacity { detail: String },
    #[error("the order is {status:?}; only open or partially filled orders can be cancelled")]
    OrderNotCancelable { status: super::orders::OrderStatus },
    #[error("the destination is {status:?}: withdrawals go only to approved destinations")]
    DestinationNotApproved { status: super::settlement::DestinationStatus },
    #[error("the client matched a sanctions list; firm prices, trading and withdrawals are blocked")]
    SanctionsHit,
    #[error("jurisdiction restricted: {detail}")]
    JurisdictionRestricted { detail: String },
    #[error("the desk is not initialized")]
    NotInitialized,
    #[error("the desk is already initialized")]
    AlreadyInitialized,
    /// A ledger invariant would break; this is a bug or corrupt input, never a client mistake.
    #[error("ledger refused the change: {0}")]
    Ledger(#[from] LedgerError),
}

impl CommandError {
    /// The stable error code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::Invalid { .. } => "invalid_request",
            CommandError::NotFound { .. } => "not_found",
            CommandError::Conflict { .. } | CommandError::AlreadyInitialized => "conflict",
            CommandError::InsufficientFunds { .. } => "insufficient_funds",
            CommandError::LimitExceeded { .. } => "limit_exceeded",
            CommandError::InstrumentUnknown(_) => "instrument_unknown",
            CommandError::KycRequired => "kyc_required",
            CommandError::QuoteNotFound => "quote_not_found",
            CommandError::QuoteExpired => "quote_expired",
            CommandError::QuoteAlreadyUsed => "quote_already_used",
            CommandError::SlippageExceeded { .. } => "slippage_exceeded",
            CommandError::PriceUnavailable(_) => "price_unavailable",
            CommandError::TradingHalted { .. } => "trading_halted",
            CommandError::DestinationNotApproved { .. } => "destination_not_approved",
            CommandError::SanctionsHit => "sanctions_hit",
            CommandError::JurisdictionRestricted { .. } => "jurisdiction_restricted",
            CommandError::DeskCapacity { .. } => "limit_exceeded",
            CommandError::OrderNotCancelable { .. } => "order_not_cancelable",
            CommandError::NotInitialized | CommandError::Ledger(_) => "internal",
        }
    }

    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        CommandError::Invalid { field, detail: detail.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        CommandError::NotFound { what: what.into() }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        CommandError::Conflict { detail: detail.into() }
    }
}
