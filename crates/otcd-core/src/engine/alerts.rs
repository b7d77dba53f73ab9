//! Compliance alerts and the AML rules that raise them, evaluated inside the engine after the events they watch
//! (so replay raises the same alerts at the same points). Alerts carry their evidence and a case status (open,
//! investigating, closed) with notes, changed by compliance users through journaled commands.
//!
//! Rules (thresholds in `AmlRules`, set with `PutAmlRules`):
//! - sanctions screening: a client screened `review` or `hit`, a destination address on a list;
//! - structuring: `structuring_count` or more deposits within `window_ms`, each worth between
//!   `structuring_floor_percent`% of `structuring_threshold_usd` and the threshold itself;
//! - rapid in-and-out: a withdrawal to a destination registered within `window_ms`, by a client who deposited
//!   and traded within `window_ms`.

use super::{CommandError, Desk, Executed, Outcome};
use crate::ids::ClientId;
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};

pub const ALERTS_MAX: usize = 10_000_000;
pub const NOTES_PER_ALERT_MAX: usize = 100;
pub const NOTE_BYTES_MAX: usize = 2_000;
/// Deposits looked at per structuring check (a bound on the engine's work per deposit).
const DEPOSITS_SCANNED_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    SanctionsScreening,
    SanctionsAddress,
    Structuring,
    RapidInAndOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Investigating,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertNote {
    pub at: TimestampMs,
    pub by: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub kind: AlertKind,
    pub client_id: Option<ClientId>,
    pub created_at: TimestampMs,
    pub evidence: String,
    pub status: CaseStatus,
    pub notes: Vec<AlertNote>,
    pub updated_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmlRules {
    pub window_ms: i64,
    /// USD cents.
    pub structuring_threshold_usd: i128,
    pub structuring_floor_percent: i128,
    pub structuring_count: usize,
}

impl Default for AmlRules {
    fn default() -> Self {
        Self {
            window_ms: 86_400_000,
            structuring_threshold_usd: 1_000_000,
            structuring_floor_percent: 80,
            structuring_count: 3,
        }
    }
}

/// A compliance user's change to an alert's case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertUpdate {
    pub alert_id: String,
    pub status: Option<CaseStatus>,
    pub note: Option<String>,
}

impl Desk {
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    pub fn alert(&self, alert_id: &str) -> Option<&Alert> {
        alert_position(alert_id).and_then(|position| self.alerts.get(position))
    }

    pub fn aml_rules(&self) -> &AmlRules {
        &self.aml_rules
    }

    pub(super) fn raise_alert(
        &mut self,
        at: TimestampMs,
        kind: AlertKind,
        client_id: Option<ClientId>,
        evidence: String,
    ) {
        if self.alerts.len() >= ALERTS_MAX {
            return; // Bounded; the oldest are archived by operators (a gap noted in the docs).
        }
        let alert_id = format!("al_{:010}", self.alerts.len() + 1);
        self.alerts.push(Alert {
            alert_id,
            kind,
            client_id,
            created_at: at,
            evidence,
            status: CaseStatus::Open,
            notes: Vec::new(),
            updated_at: at,
        });
    }

    pub(super) fn update_alert(
        &mut self,
        at: TimestampMs,
        by: Option<String>,
        update: &AlertUpdate,
    ) -> Result<Executed, CommandError> {
        let position = alert_position(&update.alert_id)
            .filter(|position| *position < self.alerts.len())
            .ok_or_else(|| CommandError::not_found("alert"))?;
        if update.note.as_ref().is_some_and(|note| note.is_empty() || note.len() > NOTE_BYTES_MAX) {
            return Err(CommandError::invalid("note", "1 to 2000 bytes"));
        }
        let alert = &mut self.alerts[position];
        if update.note.is_some() && alert.notes.len() >= NOTES_PER_ALERT_MAX {
            return Err(CommandError::conflict("the alert holds the maximum number of notes (100)"));
        }
        if let Some(status) = update.status {
            alert.status = status;
        }
        if let Some(text) = &update.note {
            alert.notes.push(AlertNote { at, by, text: text.clone() });
        }
        alert.updated_at = at;
        Ok(Executed::changed(Outcome::Alert(alert.clone())))
    }

    pub(super) fn put_aml_rules(&mut self, rules: &AmlRules) -> Result<Executed, CommandError> {
        if rules.window_ms <= 0 || rules.window_ms > 90 * 86_400_000 {
            return Err(CommandError::invalid("window_ms", "1 ms to 90 days"));
        }
        if rules.structuring_threshold_usd <= 0 || !(1..=99).contains(&rules.structuring_floor_percent) {
            return Err(CommandError::invalid(
                "structuring_threshold_usd",
                "a positive threshold and a floor of 1 to 99%",
            ));
        }
        if !(2..=1_000).contains(&rules.structuring_count) {
            return Err(CommandError::invalid("structuring_count", "2 to 1000"));
        }
        self.aml_rules = rules.clone();
        Ok(Executed::changed(Outcome::AmlRules(rules.clone())))
    }

    /// Structuring: after a deposit, count the client's recent deposits just under the threshold.
    pub(super) fn after_deposit(&mut self, at: TimestampMs, client_id: &ClientId) {
        let rules = self.aml_rules.clone();
        let floor = rules.structuring_threshold_usd * rules.structuring_floor_percent / 100;
        let since = at.0 - rules.window_ms;
        let near_threshold: Vec<String> = self
            .deposits
            .iter()
            .rev()
            .take(DEPOSITS_SCANNED_MAX)
            .take_while(|deposit| deposit.created_at.0 >= since)
            .filter(|deposit| deposit.client_id == *client_id)
            .filter(|deposit| {
                deposit.notional_usd.is_some_and(|usd| usd >= floor && usd < rules.structuring_threshold_usd)
            })
            .map(|deposit| {
                format!(
                    "{} {} {} (USD cents {})",
                    deposit.reference,
                    deposit.amount,
                    deposit.asset,
                    deposit.notional_usd.unwrap_or(0)
                )
            })
            .collect();
        if near_threshold.len() < rules.structuring_count || self.recent_alert(client_id, AlertKind::Structuring, since)
        {
            return;
        }
        let evidence = format!(
            "{} deposits within {} ms each between {}% of and below {} USD cents: {}",
            near_threshold.len(),
            rules.window_ms,
            rules.structuring_floor_percent,
            rules.structuring_threshold_usd,
            near_threshold.join("; ")
        );
        self.raise_alert(at, AlertKind::Structuring, Some(client_id.clone()), evidence);
    }

    /// Rapid in-and-out: a withdrawal to a new destination shortly after a deposit and a trade.
    pub(super) fn after_withdrawal_requested(&mut self, at: TimestampMs, position: usize) {
        let withdrawal = self.withdrawals()[position].clone();
        let since = at.0 - self.aml_rules.window_ms;
        let Some(destination) = self.destination(&withdrawal.destination_id) else { return };
        let new_destination = destination.created_at.0 >= since;
        let deposited = self
            .deposits
            .iter()
            .rev()
            .take(DEPOSITS_SCANNED_MAX)
            .take_while(|deposit| deposit.created_at.0 >= since)
            .find(|deposit| deposit.client_id == withdrawal.client_id)
            .map(|deposit| deposit.reference.to_string());
        let traded = self
            .trades_of(&withdrawal.client_id)
            .next_back()
            .filter(|trade| trade.executed_at.0 >= since)
            .map(|trade| trade.trade_id.clone());
        if let (true, Some(deposit), Some(trade)) = (new_destination, deposited, traded) {
            let evidence = format!(
                "withdrawal {} of {} {} to destination {} registered at {} ms, after deposit {} and trade {} within {} ms",
                withdrawal.withdrawal_id,
                withdrawal.amount,
                withdrawal.asset,
                withdrawal.destination_id,
                destination.created_at.0,
                deposit,
                trade,
                self.aml_rules.window_ms
            );
            self.raise_alert(at, AlertKind::RapidInAndOut, Some(withdrawal.client_id.clone()), evidence);
        }
    }

    fn recent_alert(&self, client_id: &ClientId, kind: AlertKind, since: i64) -> bool {
        self.alerts
            .iter()
            .rev()
            .take_while(|alert| alert.created_at.0 >= since)
            .any(|alert| alert.kind == kind && alert.client_id.as_ref() == Some(client_id))
    }
}

fn alert_position(alert_id: &str) -> Option<usize> {
    let number: usize = alert_id.strip_prefix("al_")?.parse().ok()?;
    number.checked_sub(1)
}

impl Desk {
    /// A client whose screening is a hit may not get firm prices, trade or withdraw.
    pub(super) fn check_screening(&self, client: &crate::model::Client) -> Result<(), CommandError> {
        match client.screening.as_ref().map(|screening| screening.status) {
            Some(crate::model::ScreeningStatus::Hit) => Err(CommandError::SanctionsHit),
            _ => Ok(()),
        }
    }

    pub(super) fn raise_screening_alert(&mut self, at: TimestampMs, client: &crate::model::Client) {
        let Some(screening) = &client.screening else { return };
        let matches: Vec<String> = screening
            .matches
            .iter()
            .map(|found| {
                format!("{}:{} {} (score {}‰)", found.list, found.entry_id, found.name, found.score_thousandths)
            })
            .collect();
        let evidence = format!(
            "client {} {:?} screened {:?} on lists {}: {}",
            client.client_id,
            client.name,
            screening.status,
            screening.screening_version_short(),
            matches.join("; ")
        );
        self.raise_alert(at, AlertKind::SanctionsScreening, Some(client.client_id.clone()), evidence);
    }
}
