//! The one test kit of otcd's test suites.
//!
//! With the `desk` feature (on by default), for black-box tests of the real binary: [`signing`] signs requests
//! as API clients do, [`http`] sends them and asserts on the answers, [`process`] starts, stops, crashes and
//! restarts `otcd` processes and runs its offline subcommands, [`stream`] speaks to `/v1/stream`, [`replication`] runs NATS clusters and replicated nodes, and [`attack`] does what the denial-of-service tests do.
//!
//! Always, and depending only on `otcd-core` and `serde_json`: [`sim`], the helpers the deterministic core's
//! seeded simulations and regression tests share. `otcd-core` dev-depends on this crate without default
//! features, so its tests build none of the HTTP, WebSocket and signature dependencies.

#[cfg(feature = "desk")]
pub mod attack;
#[cfg(feature = "desk")]
pub mod http;
#[cfg(feature = "desk")]
pub mod process;
#[cfg(feature = "desk")]
pub mod replication;
#[cfg(feature = "desk")]
pub mod signing;
#[cfg(feature = "desk")]
pub mod stream;

pub mod sim;
