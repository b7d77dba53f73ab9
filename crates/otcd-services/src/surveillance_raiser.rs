//! The surveillance raiser: the adapter that turns the reports projection's market-abuse findings into durable
//! engine alerts. Every [`RAISE_INTERVAL`] it takes the findings made since the last one it handled, leaves out
//! those whose `dedup_key` the engine already holds (after a restart the rebuilt projection finds every past
//! pattern again) and submits the others as `RaiseSurveillanceAlert` commands. The engine decides: a pattern
//! already raised is an idempotent repeat and is not journaled, so two submissions can never make two alerts.
//!
//! The projection never submits anything itself: it stays a pure function of the journal, and reading the journal
//! never waits for the engine. An alert therefore appears within about `RAISE_INTERVAL` of the record that
//! completed its pattern becoming durable.

use crate::DeskServices;
use otcd_core::engine::{Actor, Command};
use otcd_host::runner::SubmitError;
use otcd_reports::SurveillanceAlert;
use std::sync::Arc;
use std::time::Duration;

pub const RAISE_INTERVAL: Duration = Duration::from_millis(250);
/// Findings read from the projection per round trip (a bound on the work under its shared lock).
const FINDINGS_PER_READ: usize = 256;

pub async fn run(state: Arc<DeskServices>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(RAISE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut handled_through = 0u64;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        handled_through = raise_pending(&state, handled_through).await;
    }
}

/// Raises every finding numbered after `handled_through`; returns the last one handled (a finding the engine
/// could not take right now is retried at the next round).
pub async fn raise_pending(state: &DeskServices, mut handled_through: u64) -> u64 {
    loop {
        let after = handled_through;
        let Ok(findings) = state
            .reports
            .read(0, move |projection| projection.surveillance().findings_after(after, FINDINGS_PER_READ))
            .await
        else {
            return handled_through; // The projection stopped or is disabled: nothing to raise.
        };
        let Some(first) = findings.first() else { return handled_through };
        if first.number > handled_through + 1 {
            tracing::warn!(
                missed = first.number - handled_through - 1,
                "surveillance findings dropped from the projection's bounded outbox before they were raised"
            );
        }
        let last = findings.last().map_or(handled_through, |finding| finding.number);
        for finding in new_findings(state, findings).await {
            match state.engine.submit(Actor::default(), Command::RaiseSurveillanceAlert(finding.finding)).await {
                Ok(_) => {}
                Err(SubmitError::Refused(error)) => {
                    tracing::warn!(%error, number = finding.number, "surveillance finding refused by the engine");
                }
                Err(error) => {
                    tracing::warn!(%error, "surveillance alerts wait for the engine");
                    return finding.number - 1;
                }
            }
        }
        handled_through = last;
    }
}

/// The findings whose pattern has no alert yet (a query, so that a restart does not queue thousands of repeats).
async fn new_findings(state: &DeskServices, findings: Vec<SurveillanceAlert>) -> Vec<SurveillanceAlert> {
    let all = findings.clone();
    state
        .read(move |desk| {
            findings
                .into_iter()
                .filter(|finding| desk.surveillance_alert(&finding.finding.evidence.dedup_key).is_none())
                .collect()
        })
        .await
        .unwrap_or(all)
}
