//! The crate's error type.

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("cannot reach the NATS servers {servers}: {detail}")]
    Connect { servers: String, detail: String },
    #[error("JetStream {what}: {detail}")]
    JetStream { what: &'static str, detail: String },
    #[error(transparent)]
    Journal(#[from] otcd_journal::JournalError),
    #[error("the replicated journal and this node's journal disagree at seq {seq}: {detail}")]
    Diverged { seq: u64, detail: String },
    #[error("desk keys: {0}")]
    Identity(String),
}

impl ReplicationError {
    pub(crate) fn jetstream(what: &'static str, error: impl std::fmt::Display) -> Self {
        Self::JetStream { what, detail: error.to_string() }
    }
}
