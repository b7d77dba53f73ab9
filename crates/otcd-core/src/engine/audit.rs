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
    /// For failed authentications journaled as a summary: how many, and the first and last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailureCount>,
}

/// How many failures one summary group counts, and when the first and the last of them came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCount {
    pub count: u64,
    pub first_at: TimestampMs,
    pub last_at: TimestampMs,
}

/// Distinct (source address, claimed key, reason) groups in one summary record; failures beyond them are
/// counted in one more group, [`OTHER_FAILURES_CODE`]. Bounds a summary record to a few KB whatever the flood.
pub const AUTH_FAILURE_GROUPS_MAX: usize = 16;
/// The code of the group that counts failures beyond [`AUTH_FAILURE_GROUPS_MAX`] groups.
pub const OTHER_FAILURES_CODE: &str = "other";

/// One group of a summary: failures of one source address, claimed key id and reason in one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailureGroup {
    /// `None` in the "other" group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_key_id: Option<String>,
    /// The stable error code (`unauthenticated`), or [`OTHER_FAILURES_CODE`].
    pub code: String,
    /// The reason (`signature does not match`).
    pub detail: String,
    /// `METHOD path` of the group's first request.
    pub what: String,
    pub failures: FailureCount,
}

/// Failed authentications of one interval, journaled as one record instead of one record each: a stranger's
/// flood then grows the journal by one bounded record per interval, not by one record per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailureSummary {
    pub groups: Vec<AuthFailureGroup>,
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

    /// Each group of a summary becomes one `authentication_failed` audit event with its count.
    pub(super) fn record_auth_failures(
        &mut self,
        at: TimestampMs,
        summary: &AuthFailureSummary,
    ) -> Result<Executed, CommandError> {
        let groups = &summary.groups;
        if groups.is_empty() || groups.len() > AUTH_FAILURE_GROUPS_MAX + 1 {
            return Err(CommandError::invalid("groups", "1 to 17 groups"));
        }
        for group in groups {
            let texts = [Some(&group.code), Some(&group.detail), Some(&group.what), group.claimed_key_id.as_ref()];
            let counted = group.failures.count > 0 && group.failures.first_at <= group.failures.last_at;
            if texts.iter().flatten().any(|text| text.len() > AUDIT_TEXT_BYTES_MAX) || !counted {
                return Err(CommandError::invalid("groups", "audit texts are limited to 500 bytes, counts positive"));
            }
        }
        for group in groups {
            if self.audit_events.len() >= AUDIT_EVENTS_KEPT {
                self.audit_events.pop_front();
            }
            self.audit_events.push_back(AuditEntry {
                at,
                key_id: None,
                source_ip: group.source_ip.clone(),
                event: AuditEvent {
                    kind: AuditKind::AuthenticationFailed,
                    code: group.code.clone(),
                    detail: group.detail.clone(),
                    what: group.what.clone(),
                    claimed_key_id: group.claimed_key_id.clone(),
                    failures: Some(group.failures),
                },
            });
        }
        Ok(Executed::changed(Outcome::Audited))
    }
}
