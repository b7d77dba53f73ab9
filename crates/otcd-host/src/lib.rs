//! otcd's host: everything that runs the deterministic core on a machine, and nothing that speaks a client
//! protocol.
//!
//! - [`runner`]: the engine thread (owns the `Desk`, stamps each command with the clock) and the journal thread
//!   (group commit, then the replies, the events and the projection's feed), and the checkpoint signer;
//! - [`store`]: the data directory and recovery (newest snapshot + journal replay), [`snapshot_follower`];
//! - [`audit`]: the desk signing key, data-directory verify and export (also used by the offline CLI);
//! - [`secrets`]: the master key and sealed HMAC secrets;
//! - [`reports`]: the reports projection's thread, fed by durable records;
//! - [`events`]: the feed of client-visible events derived from durable records;
//! - [`cluster`]: this node's role and lag when the journal is replicated (the replication adapter writes it);
//! - [`metrics`], [`clock`], [`background`].
//!
//! Architecture invariant: this crate depends on no HTTP framework (no axum, hyper or tower).

pub mod audit;
pub mod background;
pub mod clock;
pub mod cluster;
pub mod events;
pub mod metrics;
pub mod reports;
pub mod runner;
pub mod secrets;
pub mod snapshot_follower;
pub mod store;
