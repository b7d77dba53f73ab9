//! otcd's FIX 4.4 gateway (acceptor): institutional clients trade over FIX as over REST, through the same desk
//! services and the same durable event feed.
//!
//! - [`codec`]: the tag=value wire format (framing, BodyLength, CheckSum, limits); never panics.
//! - [`session`]: the session layer's decisions (sequence numbers, resend plans), without I/O.
//! - [`logon`]: the signed Logon, verified by the services' key registry (`otcd_services::keys`).
//! - [`store`]: each session's sequence numbers and sent messages, persisted in the data directory.
//! - [`app`]: QuoteRequest, NewOrderSingle, OrderCancelRequest, OrderStatusRequest through the desk services.
//! - [`reports`]: ExecutionReports from orders and from the durable event feed.
//! - [`market_data`]: MarketDataRequest → snapshot and incremental refreshes from the services' ladder hub.
//! - [`gateway`]: the listener, the connection cap, one task per session.
//!
//! Architecture invariant: this crate depends on the services, the host and the core, never on `otcd-http` or
//! an HTTP framework; it copies no HTTP handler logic (the services hold it). Checked by
//! `crates/otcd/tests/architecture.rs`.

pub mod app;
pub mod codec;
pub mod gateway;
pub mod logon;
pub mod market_data;
pub mod rate;
pub mod reports;
pub mod session;
pub mod store;
pub mod timestamps;

pub use gateway::{serve, Gateway, Settings};
