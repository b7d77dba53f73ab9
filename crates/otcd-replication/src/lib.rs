//! otcd's replicated journal on NATS JetStream (`otcd serve --replication`).
//!
//! One desk, several nodes. The journal's records (the same bytes and hash chain as the file journal) are also
//! messages of one JetStream stream, **stream seq = journal seq**, appended by the one leader:
//!
//! - [`journal::ReplicatedJournal`] is the leader's [`otcd_journal::Journal`]: a group commit first publishes
//!   the group's records to the stream, each with `Nats-Expected-Last-Sequence: seq - 1`, waits for every
//!   publish acknowledgement (a quorum of the stream's replicas has it), and only then appends and fsyncs the
//!   records to the node's own file journal. So the local journal is always a prefix of the stream, and a 2xx
//!   (released after `sync`) means the record is on a quorum. The expected-last-sequence condition is the
//!   fence: once another leader has appended, a paused old leader's append is refused, it stops acknowledging
//!   and steps down;
//! - [`lease::Lease`]: one leader at a time, through a key in a JetStream KV bucket whose entries expire after
//!   the lease duration (`max_age`), created only when absent and renewed with a revision check; the leader also
//!   stops publishing on its own once its last renewal is older than three quarters of the lease;
//! - [`follower::StreamFollower`]: a standby copies the stream into its own file journal (ordered consumer),
//!   checking that each record's recomputed chain hash equals the leader's (`Otcd-Chain-Hash` header);
//! - [`identity`]: the desk's keys are never sent through NATS; the stream's KV holds their fingerprints, and a
//!   node whose keys differ (or that has none while the stream holds a desk) refuses to start.
//!
//! Architecture invariant: the host and the core know nothing of NATS; this crate implements the host's
//! `Journal` port and writes the host's `ClusterStatus`.

pub mod cluster;
pub mod error;
pub mod follower;
pub mod identity;
pub mod journal;
pub mod lease;
pub mod settings;

pub use cluster::Cluster;
pub use error::ReplicationError;
pub use settings::ReplicationSettings;

/// The header carrying a record's chain hash (hex) on the stream.
pub const CHAIN_HASH_HEADER: &str = "Otcd-Chain-Hash";
