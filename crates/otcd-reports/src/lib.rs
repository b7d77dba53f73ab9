//! otcd's read models. A [`Projection`] consumes the journal's records, in seq order and only once they are
//! durable, re-executes each on a shadow [`otcd_core::engine::Desk`] (deterministic: the same records build the
//! same state as the engine's), and keeps indexed tables beside it: the trade log, positions and realized P&L
//! per asset, spread revenue per trade, order events, and surveillance alerts. Reports are answered from the
//! projection, never from the engine, so reading them never holds up trading.
//!
//! No I/O, no async runtime: the adapters feed it (`otcd-host` on its own thread, the `otcd report` CLI from the
//! journal files). Methods and limits: `docs/reports.md`.

mod csv;
pub mod hedging;
mod pnl;
mod projection;
pub mod render;
pub mod surveillance;
mod trades;

pub use pnl::Position;
pub use projection::{Projection, ProjectionError, QUOTE_BOOKS_RETENTION_MS};
pub use render::{render, Format, Rendered, ReportError, ReportKind, ReportParams, EXPORT_ROWS_MAX};
pub use surveillance::{SurveillanceAlert, SurveillanceConfig};
pub use trades::{TradeFilter, TradeLog, TradeRow, TradesPage};

/// Largest page of a JSON list.
pub const PAGE_LIMIT_MAX: usize = 1_000;

#[cfg(test)]
mod tests;
