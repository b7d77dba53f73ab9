//! otcd's deterministic core: domain types, the catalog, the double-entry ledger and the sequenced engine.
//!
//! This crate performs no I/O, reads no clock and depends on no async runtime, web framework or database: it
//! is a pure state machine (commands in, outcomes out), which is what makes replay, crash recovery and
//! simulation testing possible. Address validation is its own pure crate (`otcd-address`); adapters live in
//! `otcd-journal`, `otcd-host`, `otcd-services` and the protocol crates.

/// Withdrawal address validation per network (its own crate, re-exported for the engine's types).
pub use otcd_address as address;

pub mod catalog;
pub mod chunked_vec;
pub mod decimal;
pub mod engine;
pub mod ids;
pub mod iso3166;
pub mod ledger;
pub mod market;
pub mod readable;
pub mod time;

pub use engine::model;
