//! Failed authentications of every edge (HTTP requests, FIX logons), counted per interval: one journaled summary record per interval instead of one record
//! per failure, so that a stranger without a key cannot grow the permanent journal by sending bad requests.
//!
//! Why a summary in the journal rather than a separate audit log: the journal is already hash-chained, signed
//! by checkpoints, exported and verified (`otcd verify`); a second log would need all of that again. What is
//! given up is per-request detail: a group keeps its count, its first and last time and its first request line.

use otcd_core::engine::audit::OTHER_FAILURES_CODE;
use otcd_core::engine::audit::{AuthFailureGroup, AuthFailureSummary, FailureCount, AUTH_FAILURE_GROUPS_MAX};
use otcd_core::time::TimestampMs;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;

/// Default of [`AuthFailureLog::interval_ms`]: one summary record a minute at most.
pub const AUTH_FAILURE_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// Bounds of the configured interval.
pub const AUTH_FAILURE_INTERVAL_MS_MIN: u64 = 100;
pub const AUTH_FAILURE_INTERVAL_MS_MAX: u64 = 3_600_000;
/// Longest claimed key id and request line kept (a stranger chooses them).
const CLAIMED_KEY_BYTES_MAX: usize = 64;
const WHAT_BYTES_MAX: usize = 128;

/// A group's identity: who (address), as whom (claimed key id), why (the reason's detail).
type GroupKey = (IpAddr, Option<String>, &'static str, String);

#[derive(Default)]
struct Interval {
    groups: HashMap<GroupKey, (String, FailureCount)>,
    other: Option<FailureCount>,
}

/// The failures of the current interval. Bounded: at most [`AUTH_FAILURE_GROUPS_MAX`] groups and one "other".
pub struct AuthFailureLog {
    pub interval_ms: u64,
    current: Mutex<Interval>,
}

impl AuthFailureLog {
    pub fn new(interval_ms: u64) -> Self {
        assert!((AUTH_FAILURE_INTERVAL_MS_MIN..=AUTH_FAILURE_INTERVAL_MS_MAX).contains(&interval_ms));
        Self { interval_ms, current: Mutex::new(Interval::default()) }
    }

    /// Counts one failure.
    pub fn record(
        &self,
        source_ip: IpAddr,
        claimed_key_id: Option<&str>,
        code: &'static str,
        detail: &str,
        what: &str,
        at: TimestampMs,
    ) {
        let key = (source_ip, claimed_key_id.map(|key| clip(key, CLAIMED_KEY_BYTES_MAX)), code, clip(detail, 200));
        let mut interval = self.current.lock();
        if let Some((_, count)) = interval.groups.get_mut(&key) {
            count.count += 1;
            count.last_at = count.last_at.max(at);
            return;
        }
        let first = FailureCount { count: 1, first_at: at, last_at: at };
        if interval.groups.len() < AUTH_FAILURE_GROUPS_MAX {
            interval.groups.insert(key, (clip(what, WHAT_BYTES_MAX), first));
            return;
        }
        match &mut interval.other {
            Some(other) => {
                other.count += 1;
                other.last_at = other.last_at.max(at);
            }
            None => interval.other = Some(first),
        }
    }

    /// The interval's summary (groups oldest first, "other" last), and a fresh interval; `None` when nothing
    /// failed.
    pub fn take(&self) -> Option<AuthFailureSummary> {
        let interval = std::mem::take(&mut *self.current.lock());
        let mut groups: Vec<AuthFailureGroup> = interval
            .groups
            .into_iter()
            .map(|((ip, claimed_key_id, code, detail), (what, failures))| AuthFailureGroup {
                source_ip: Some(ip.to_string()),
                claimed_key_id,
                code: code.to_owned(),
                detail,
                what,
                failures,
            })
            .collect();
        groups.sort_by(|a, b| (a.failures.first_at, &a.source_ip).cmp(&(b.failures.first_at, &b.source_ip)));
        if let Some(failures) = interval.other {
            groups.push(AuthFailureGroup {
                source_ip: None,
                claimed_key_id: None,
                code: OTHER_FAILURES_CODE.to_owned(),
                detail: format!("failures beyond the {AUTH_FAILURE_GROUPS_MAX} groups of this interval"),
                what: String::new(),
                failures,
            });
        }
        debug_assert!(groups.len() <= AUTH_FAILURE_GROUPS_MAX + 1);
        (!groups.is_empty()).then_some(AuthFailureSummary { groups })
    }
}

fn clip(text: &str, bytes_max: usize) -> String {
    let mut end = text.len().min(bytes_max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl AuthFailureLog {
    /// Journals the interval's summary, if anything failed (one record).
    pub fn flush(&self, engine: &otcd_host::runner::EngineHandle) {
        if let Some(summary) = self.take() {
            let failures: u64 = summary.groups.iter().map(|group| group.failures.count).sum();
            tracing::info!(groups = summary.groups.len(), failures, "failed authentications of the interval journaled");
            engine.record_auth_failures(summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_grouped_and_groups_are_bounded() {
        let log = AuthFailureLog::new(1_000);
        assert!(log.take().is_none());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for at in 0..100_000 {
            log.record(ip, Some("k_made_up"), "unauthenticated", "unknown key", "GET /v1/balances", TimestampMs(at));
        }
        for n in 0..100u16 {
            let other: IpAddr = format!("10.0.1.{}", n % 250).parse().unwrap();
            log.record(other, Some(&format!("k_{n}")), "unauthenticated", "unknown key", "GET /", TimestampMs(5));
        }
        let summary = log.take().unwrap();
        assert_eq!(summary.groups.len(), AUTH_FAILURE_GROUPS_MAX + 1);
        let first = summary.groups.iter().find(|group| group.source_ip.as_deref() == Some("10.0.0.1")).unwrap();
        assert_eq!(
            (first.failures.count, first.failures.first_at, first.failures.last_at.0),
            (100_000, TimestampMs(0), 99_999)
        );
        let other = summary.groups.last().unwrap();
        assert_eq!(
            (other.code.as_str(), other.failures.count),
            (OTHER_FAILURES_CODE, 100 - (AUTH_FAILURE_GROUPS_MAX as u64 - 1))
        );
        let total: u64 = summary.groups.iter().map(|group| group.failures.count).sum();
        assert_eq!(total, 100_100, "every failure is counted");
        assert!(serde_json::to_string(&summary).unwrap().len() < 8_000, "a summary is a few KB at most");
        assert!(log.take().is_none(), "a fresh interval");
    }

    #[test]
    fn stranger_chosen_texts_are_clipped() {
        let log = AuthFailureLog::new(1_000);
        let long = "k".repeat(10_000);
        log.record("::1".parse().unwrap(), Some(&long), "unauthenticated", "unknown key", &long, TimestampMs(1));
        let group = &log.take().unwrap().groups[0];
        assert_eq!(
            (group.claimed_key_id.as_ref().unwrap().len(), group.what.len()),
            (CLAIMED_KEY_BYTES_MAX, WHAT_BYTES_MAX)
        );
    }
}
