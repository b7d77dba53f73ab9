//! Audit records of what changed nothing: refused commands and failed authentications. The adapters journal them
//! as `Audit` commands (with the actor: key and source address), so they sit in the same hash-chained, signed
//! record as everything else; executing one changes no balance, order or limit, only the bounded list of recent
//! audit events the desk keeps for `GET /v1/admin/audit/events`.

use super::{CommandError, Desk, Executed, Outcome};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Recent audit events kept in the desk's state (older ones stay in the journal and its exports).
pub const AUDIT_EVENTS_KEPT: usize = 100_000;
pub const AUDIT_TEXT_BYTES_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A signed request's command was refused by the engine.
    Refused,
    /// A request failed authentication (bad or replayed signature, unknown or revoked key, stale timestamp).
    AuthenticationFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub kind: AuditKind,
    /// The stable error code of the refusal.
    pub code: String,
    pub detail: String,
    /// What was asked: the command's name, or `METHOD path` for an authentication failure.
    pub what: String,
    /// The key id a failed authentication claimed (the actor's key is `None` then: nobody was authenticated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: TimestampMs,
    pub key_id: Option<String>,
    pub source_ip: Option<String>,
    pub event: AuditEvent,
}

impl Desk {
    pub fn audit_events(&self) -> &VecDeque<AuditEntry> {
        &self.audit_events
    }

    pub(super) fn record_audit(
        &mut self,
        at: TimestampMs,
        actor: &super::Actor,
        event: &AuditEvent,
    ) -> Result<Executed, CommandError> {
        let texts = [&event.code, &event.detail, &event.what];
        if texts.iter().any(|text| text.len() > AUDIT_TEXT_BYTES_MAX)
            || event.claimed_key_id.as_ref().is_some_and(|key| key.len() > AUDIT_TEXT_BYTES_MAX)
        {
            return Err(CommandError::invalid("audit", "audit texts are limited to 500 bytes"));
        }
        if self.audit_events.len() >= AUDIT_EVENTS_KEPT {
            self.audit_events.pop_front();
        }
        let entry = AuditEntry {
            at,
            key_id: actor.key_id.as_ref().map(ToString::to_string),
            source_ip: actor.source_ip.clone(),
            event: event.clone(),
        };
        self.audit_events.push_back(entry);
        Ok(Executed::changed(Outcome::Audited))
    }
}
