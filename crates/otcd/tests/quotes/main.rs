//! Black-box tests of otcd's quote engine against API.md: exact RFQ prices per tier, size band, increment and
//! skew, quote-amount RFQs, validation, staleness, validity, idempotency, KYC, and the quote stream. Each test
//! starts its own `otcd serve --market manual` on a fresh data directory and port.

mod activity;
mod lifecycle;
mod orders;
mod pricing;
mod rate_limits;
mod resting;
mod resume;
mod settlement;
mod stream;
mod validation;
mod venues;
