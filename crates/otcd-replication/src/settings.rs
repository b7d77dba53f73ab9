//! What `--replication`, `--node-id` and the `replication_*` config keys set.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationSettings {
    /// NATS server URLs (`nats://HOST:PORT`); the client fails over between them.
    pub servers: Vec<String>,
    /// This node's name, unique within the desk.
    pub node_id: String,
    /// This node's HTTP base URL as clients reach it (named in `503 not_leader` answers by standbys).
    pub advertise: String,
    /// The JetStream stream of the desk's records; the lease and identity buckets are named after it.
    pub stream: String,
    /// Replicas of the stream and the buckets (3 in production; at most the number of NATS servers).
    pub replicas: usize,
    /// A lease entry expires this long after its last renewal; a standby takes over after that.
    pub lease: Duration,
    /// How often the leader renews its lease (well under `lease`).
    pub renew_every: Duration,
    /// How long one publish waits for JetStream's acknowledgement before it is retried.
    pub ack_timeout: Duration,
    /// Whether a standby answers the reads that are safe to serve stale (`otcd_http::cluster::STANDBY_READ_ROUTES`)
    /// from its own desk, instead of `503 not_leader` (docs/operations.md).
    pub standby_reads: bool,
}

pub const STREAM_DEFAULT: &str = "OTCD_JOURNAL";
pub const REPLICAS_DEFAULT: usize = 3;
pub const LEASE_MS_DEFAULT: u64 = 2_000;
pub const RENEW_MS_DEFAULT: u64 = 400;
pub const ACK_TIMEOUT_MS_DEFAULT: u64 = 1_000;

impl ReplicationSettings {
    pub fn new(servers: Vec<String>, node_id: String, advertise: String) -> Self {
        Self {
            servers,
            node_id,
            advertise,
            stream: STREAM_DEFAULT.to_owned(),
            replicas: REPLICAS_DEFAULT,
            lease: Duration::from_millis(LEASE_MS_DEFAULT),
            renew_every: Duration::from_millis(RENEW_MS_DEFAULT),
            ack_timeout: Duration::from_millis(ACK_TIMEOUT_MS_DEFAULT),
            standby_reads: false,
        }
    }

    /// Refuses settings under which the lease cannot work (a renewal interval that is not well inside it).
    pub fn check(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("--replication names no NATS server".into());
        }
        let valid_name = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        };
        if !valid_name(&self.node_id) {
            return Err("node id: 1 to 64 of A-Z a-z 0-9 - _".into());
        }
        if !valid_name(&self.stream) {
            return Err("replication_stream: 1 to 64 of A-Z a-z 0-9 - _".into());
        }
        if !(1..=5).contains(&self.replicas) {
            return Err("replication_replicas: 1 to 5".into());
        }
        if self.lease < Duration::from_millis(500) || self.renew_every * 3 > self.lease {
            return Err("replication_lease_ms must be at least 500 and at least 3 renewals long".into());
        }
        Ok(())
    }

    pub fn subject(&self) -> String {
        format!("otcd.journal.{}", self.stream)
    }

    pub fn lease_bucket(&self) -> String {
        format!("{}_LEASE", self.stream)
    }

    pub fn identity_bucket(&self) -> String {
        format!("{}_DESK", self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_shorter_than_three_renewals_is_refused() {
        let mut settings = ReplicationSettings::new(vec!["nats://127.0.0.1:4222".into()], "a".into(), "x".into());
        assert!(settings.check().is_ok());
        settings.renew_every = Duration::from_millis(700);
        assert!(settings.check().is_err());
        settings.renew_every = Duration::from_millis(100);
        settings.node_id = "a b".into();
        assert!(settings.check().is_err());
    }
}
