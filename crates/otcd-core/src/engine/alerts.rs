//! Compliance alerts and the AML rules that raise them, evaluated inside the engine after the events they watch
//! (so replay raises the same alerts at the same points). Alerts carry their evidence and a case status (open,
//! investigating, closed) with notes, changed by compliance users through journaled commands.
//!
//! Market-abuse surveillance alerts are raised here too, by `RaiseSurveillanceAlert` commands that an adapter
//! submits when the reports projection's rules fire: the engine does not evaluate those rules (they need the
//! projection's history of orders and prices), it records the finding with its evidence once per `dedup_key`, so
//! the same case workflow, lists, exports and audit trail apply to both.
//!
//! Rules (thresholds in `AmlRules`, set with `PutAmlRules`):
//! - sanctions screening: a client screened `review` or `hit`, a destination address on a list;
//! - structuring: `structuring_count` or more deposits within `window_ms`, each worth between
//!   `structuring_floor_percent`% of `structuring_threshold_usd` and the threshold itself;
//! - rapid in-and-out: a withdrawal to a destination registered within `window_ms`, by a client who deposited
//!   and traded within `window_ms`;
//! - velocity: the client's USD notional traded within `window_ms` exceeds `velocity_multiple` times its own
//!   baseline (its average per window over the previous windows, at most `baseline_windows` of them, counted
//!   from its first trade in that period), once it traded in at least `baseline_windows_min` of them (a new
//!   client has no baseline to compare with).

use super::flows::StructuringBand;
use super::{CommandError, Desk, Executed, Outcome};
use crate::chunked_vec::ChunkedVec;
use crate::ids::ClientId;
use crate::readable;
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const ALERTS_MAX: usize = 10_000_000;
pub const NOTES_PER_ALERT_MAX: usize = 100;
pub const NOTE_BYTES_MAX: usize = 2_000;
pub const ASSIGNEE_BYTES_MAX: usize = 100;
/// Deposits named in a structuring alert's evidence, newest first (the count it gives stays exact): a bound on
/// the alert's size, not on what the rule sees.
pub const EVIDENCE_DEPOSITS_MAX: usize = 1_000;
/// Bounds of a surveillance finding, so one command cannot grow an alert without limit.
pub const SURVEILLANCE_SUMMARY_BYTES_MAX: usize = 4_000;
pub const SURVEILLANCE_DEDUP_KEY_BYTES_MAX: usize = 200;
pub const SURVEILLANCE_IDS_MAX: usize = 1_000;
pub const SURVEILLANCE_FIGURES_MAX: usize = 32;
const IDENTIFIER_BYTES_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    SanctionsScreening,
    SanctionsAddress,
    Structuring,
    RapidInAndOut,
    Velocity,
    SurveillanceSpoofing,
    SurveillanceLayering,
    SurveillanceWashTrade,
    SurveillanceFrontRunning,
    /// The scheduled update of the sanctions lists failed; the desk screens on the lists it had.
    SanctionsListUpdate,
    /// A hedge could not complete within its policy's attempts.
    HedgeFailed,
}

impl AlertKind {
    /// Raised by the market-abuse rules of the reports projection (through `RaiseSurveillanceAlert`).
    pub fn is_surveillance(self) -> bool {
        matches!(
            self,
            Self::SurveillanceSpoofing
                | Self::SurveillanceLayering
                | Self::SurveillanceWashTrade
                | Self::SurveillanceFrontRunning
        )
    }
}

/// Longest evidence of a failed sanctions list update.
pub const SANCTIONS_UPDATE_EVIDENCE_BYTES_MAX: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Investigating,
    /// Handed up (to the MLRO, for a regulatory report): still being worked, by someone with more authority.
    Escalated,
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
    /// Who works the case (free text: a person, a team, a mailbox), if anyone was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The pattern a surveillance rule found (absent for AML and sanctions alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surveillance: Option<SurveillanceEvidence>,
    /// What an AML rule saw, as values (absent for alerts raised before these were kept, and for sanctions and
    /// surveillance alerts): adapters render it with the catalog's scales, `evidence` is the same in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<AlertFacts>,
}

/// The values behind an AML alert's `evidence` text, in the engine's units (minor units, USD cents, ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertFacts {
    Structuring {
        window_ms: i64,
        /// USD cents.
        threshold_usd: i128,
        floor_percent: i128,
        deposits: Vec<DepositFact>,
    },
    RapidInAndOut {
        window_ms: i64,
        withdrawal_id: String,
        asset: crate::catalog::AssetCode,
        /// Minor units of `asset`.
        amount: i128,
        destination_id: String,
        destination_registered_at: TimestampMs,
        deposit_reference: String,
        trade_id: String,
    },
    Velocity {
        window_ms: i64,
        /// USD cents traded in the current window.
        traded_usd: i128,
        /// USD cents per window, averaged over the baseline.
        baseline_usd: i128,
        baseline_windows: i64,
        active_windows: usize,
        multiple: i128,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositFact {
    pub reference: String,
    pub asset: crate::catalog::AssetCode,
    /// Minor units of `asset`.
    pub amount: i128,
    /// USD cents at the deposit's time.
    pub value_usd: i128,
}

/// What a surveillance rule saw, kept with the alert so that a case can be worked from it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveillanceEvidence {
    pub instrument: String,
    /// Names the pattern independently of when it was detected (rule, client, instrument and the order or trade
    /// that completed it): a pattern found again (after a restart, the projection rebuilt) is not raised twice.
    pub dedup_key: String,
    /// Time and journal seq of the record that completed the pattern.
    pub observed_at: TimestampMs,
    pub observed_seq: u64,
    pub trade_ids: Vec<String>,
    pub order_ids: Vec<String>,
    /// Measured values (counts, minor units, USD cents, ms, ‰, bps; the unit ends the name).
    pub figures: BTreeMap<String, i128>,
    /// The thresholds in force when the rule fired, named like the `[surveillance]` config keys.
    pub thresholds: BTreeMap<String, i128>,
}

/// A surveillance rule fired: raise an alert of `kind` for the client (once per `evidence.dedup_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveillanceFinding {
    pub kind: AlertKind,
    pub client_id: ClientId,
    /// The finding in words (becomes the alert's `evidence`).
    pub summary: String,
    pub evidence: SurveillanceEvidence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmlRules {
    pub window_ms: i64,
    /// USD cents.
    pub structuring_threshold_usd: i128,
    pub structuring_floor_percent: i128,
    pub structuring_count: usize,
    #[serde(default = "velocity_multiple_default")]
    pub velocity_multiple: i128,
    #[serde(default = "baseline_windows_default")]
    pub baseline_windows: i64,
    #[serde(default = "baseline_windows_min_default")]
    pub baseline_windows_min: usize,
}

fn velocity_multiple_default() -> i128 {
    5
}

fn baseline_windows_default() -> i64 {
    30
}

fn baseline_windows_min_default() -> usize {
    5
}

impl Default for AmlRules {
    fn default() -> Self {
        Self {
            window_ms: 86_400_000,
            structuring_threshold_usd: 1_000_000,
            structuring_floor_percent: 80,
            structuring_count: 3,
            velocity_multiple: velocity_multiple_default(),
            baseline_windows: baseline_windows_default(),
            baseline_windows_min: baseline_windows_min_default(),
        }
    }
}

/// A compliance user's change to an alert's case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertUpdate {
    pub alert_id: String,
    pub status: Option<CaseStatus>,
    pub note: Option<String>,
    /// Assigns the case (`Some("")` removes the assignee; `None` leaves it as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
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
        facts: Option<AlertFacts>,
    ) {
        if self.alerts.len() >= ALERTS_MAX {
            return; // Bounded; the oldest are archived by operators (a gap noted in the docs).
        }
        let alert_id = format!("al_{:010}", self.alerts.len() + 1);
        if let Some(client_id) = &client_id {
            self.flows.record_alert(client_id, kind, at);
        }
        self.alerts.push(Alert {
            alert_id,
            kind,
            client_id,
            created_at: at,
            evidence,
            status: CaseStatus::Open,
            notes: Vec::new(),
            updated_at: at,
            assignee: None,
            surveillance: None,
            facts,
        });
    }

    /// The alert raised for a surveillance pattern, if any.
    pub fn surveillance_alert(&self, dedup_key: &str) -> Option<&Alert> {
        self.surveillance_keys.get(dedup_key).and_then(|position| self.alerts.get(*position))
    }

    /// Records a surveillance finding as an alert; the same `dedup_key` again changes nothing (not journaled).
    /// An operator alert that the scheduled sanctions list update failed (no client; the old lists stay).
    pub(super) fn raise_sanctions_update_alert(
        &mut self,
        at: TimestampMs,
        evidence: &str,
    ) -> Result<Executed, CommandError> {
        if evidence.is_empty() || evidence.len() > SANCTIONS_UPDATE_EVIDENCE_BYTES_MAX {
            return Err(CommandError::invalid("evidence", "1 to 2000 bytes"));
        }
        if self.alerts.len() >= ALERTS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of alerts"));
        }
        self.raise_alert(at, AlertKind::SanctionsListUpdate, None, evidence.to_owned(), None);
        let alert = self.alerts.last().cloned().expect("an alert was just raised");
        Ok(Executed::changed(Outcome::Alert(alert)))
    }

    pub(super) fn raise_surveillance_alert(
        &mut self,
        at: TimestampMs,
        finding: &SurveillanceFinding,
    ) -> Result<Executed, CommandError> {
        validate_finding(finding)?;
        if self.client(&finding.client_id).is_none() {
            return Err(CommandError::not_found("client"));
        }
        if self.catalog().and_then(|catalog| catalog.instrument(&finding.evidence.instrument)).is_none() {
            return Err(CommandError::InstrumentUnknown(finding.evidence.instrument.clone()));
        }
        if let Some(existing) = self.surveillance_alert(&finding.evidence.dedup_key) {
            return Ok(Executed { outcome: Outcome::Alert(existing.clone()), changed: false });
        }
        if self.alerts.len() >= ALERTS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of alerts"));
        }
        let position = self.alerts.len();
        let alert = Alert {
            alert_id: format!("al_{:010}", position + 1),
            kind: finding.kind,
            client_id: Some(finding.client_id.clone()),
            created_at: at,
            evidence: finding.summary.clone(),
            status: CaseStatus::Open,
            notes: Vec::new(),
            updated_at: at,
            assignee: None,
            surveillance: Some(finding.evidence.clone()),
            facts: None,
        };
        self.flows.record_alert(&finding.client_id, finding.kind, at);
        self.alerts.push(alert.clone());
        self.surveillance_keys.insert(finding.evidence.dedup_key.clone(), position);
        Ok(Executed::changed(Outcome::Alert(alert)))
    }

    /// The dedup index is derived from the alerts (not kept in snapshots).
    pub(super) fn rebuild_surveillance_keys(&mut self) {
        self.surveillance_keys = self
            .alerts
            .iter()
            .enumerate()
            .filter_map(|(position, alert)| Some((alert.surveillance.as_ref()?.dedup_key.clone(), position)))
            .collect();
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
        if update.assignee.as_ref().is_some_and(|assignee| assignee.len() > ASSIGNEE_BYTES_MAX) {
            return Err(CommandError::invalid("assignee", "at most 100 bytes"));
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
        if let Some(assignee) = &update.assignee {
            alert.assignee = (!assignee.is_empty()).then(|| assignee.clone());
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
        if !(2..=1_000).contains(&rules.velocity_multiple)
            || !(2..=365).contains(&rules.baseline_windows)
            || rules.baseline_windows_min < 1
            || rules.baseline_windows_min as i64 > rules.baseline_windows
        {
            return Err(CommandError::invalid(
                "velocity_multiple",
                "a multiple of 2 to 1000 over 2 to 365 baseline windows, at least one of them active",
            ));
        }
        self.aml_rules = rules.clone();
        Ok(Executed::changed(Outcome::AmlRules(rules.clone())))
    }

    /// Structuring: after the deposit at `position`, count the client's deposits just under the threshold within
    /// the window (from its own queue: the work does not grow with the desk's history or other clients).
    pub(super) fn after_deposit(&mut self, at: TimestampMs, position: usize) {
        let rules = &self.aml_rules;
        let band = StructuringBand {
            floor_usd: rules.structuring_threshold_usd * rules.structuring_floor_percent / 100,
            threshold_usd: rules.structuring_threshold_usd,
            window_ms: rules.window_ms,
        };
        let (count_min, floor_percent) = (rules.structuring_count, rules.structuring_floor_percent);
        let count = self.flows.near_threshold_after_deposit(&self.deposits, position, band, at);
        let client_id = &self.deposits[position].client_id;
        let since = at.0 - band.window_ms;
        if count < count_min || self.recent_alert(client_id, AlertKind::Structuring, since) {
            return;
        }
        // Newest first, as the rule has always listed them; the count stays exact beyond the listed ones.
        let listed: Vec<DepositFact> = self
            .flows
            .near_threshold(client_id)
            .rev()
            .take(EVIDENCE_DEPOSITS_MAX)
            .map(|each| {
                let deposit = &self.deposits[each];
                DepositFact {
                    reference: deposit.reference.to_string(),
                    asset: deposit.asset,
                    amount: deposit.amount,
                    value_usd: deposit.notional_usd.unwrap_or(0),
                }
            })
            .collect();
        let words: Vec<String> = listed
            .iter()
            .map(|deposit| {
                format!(
                    "{} of {} ({})",
                    deposit.reference,
                    self.readable_amount(deposit.asset, deposit.amount),
                    readable::usd_cents(deposit.value_usd)
                )
            })
            .collect();
        let unlisted = count - listed.len();
        let mut evidence = format!(
            "{} deposits within {}, each worth between {}% of and below {}: {}",
            count,
            readable::duration_ms(band.window_ms),
            floor_percent,
            readable::usd_cents(band.threshold_usd),
            words.join("; ")
        );
        if unlisted > 0 {
            evidence.push_str(&format!("; and {unlisted} older ones not listed"));
        }
        let facts = AlertFacts::Structuring {
            window_ms: band.window_ms,
            threshold_usd: band.threshold_usd,
            floor_percent,
            deposits: listed,
        };
        let client_id = client_id.clone();
        self.raise_alert(at, AlertKind::Structuring, Some(client_id), evidence, Some(facts));
    }

    /// Rapid in-and-out: a withdrawal to a new destination shortly after a deposit and a trade.
    pub(super) fn after_withdrawal_requested(&mut self, at: TimestampMs, position: usize) {
        let withdrawal = self.withdrawals()[position].clone();
        let window_ms = self.aml_rules.window_ms;
        let since = at.0 - window_ms;
        let Some(destination) = self.destination(&withdrawal.destination_id) else { return };
        let registered_at = destination.created_at;
        let new_destination = registered_at.0 >= since;
        let deposited = self
            .flows
            .last_deposit(&withdrawal.client_id)
            .map(|each| &self.deposits[each])
            .filter(|deposit| deposit.created_at.0 >= since)
            .map(|deposit| deposit.reference.to_string());
        let traded = self
            .trades_of(&withdrawal.client_id)
            .next_back()
            .filter(|trade| trade.executed_at.0 >= since)
            .map(|trade| trade.trade_id.clone());
        let (true, Some(deposit), Some(trade)) = (new_destination, deposited, traded) else { return };
        let evidence = format!(
            "withdrawal {} of {} to destination {} registered {} before it, within {} of deposit {} and trade {}",
            withdrawal.withdrawal_id,
            self.readable_amount(withdrawal.asset, withdrawal.amount),
            withdrawal.destination_id,
            readable::elapsed_ms(at.0 - registered_at.0),
            readable::duration_ms(window_ms),
            deposit,
            trade,
        );
        let facts = AlertFacts::RapidInAndOut {
            window_ms,
            withdrawal_id: withdrawal.withdrawal_id.clone(),
            asset: withdrawal.asset,
            amount: withdrawal.amount,
            destination_id: withdrawal.destination_id.clone(),
            destination_registered_at: registered_at,
            deposit_reference: deposit,
            trade_id: trade,
        };
        self.raise_alert(at, AlertKind::RapidInAndOut, Some(withdrawal.client_id.clone()), evidence, Some(facts));
    }

    /// Velocity: after a trade, the client's notional in the current window against its own baseline.
    pub(super) fn after_trade(&mut self, at: TimestampMs, client_id: &ClientId) {
        let rules = &self.aml_rules;
        let window = rules.window_ms;
        let Some(flow) = self.orders.trade_flow(client_id) else { return };
        let velocity = flow.velocity(at, window, rules.baseline_windows);
        // Averaged over the windows since the client's first trade in the baseline period, so a client with a
        // short history is compared with what it actually did, not with empty windows before it existed.
        let average = velocity.baseline / i128::from(velocity.span_windows.max(1));
        let exceeded = velocity.active_windows >= rules.baseline_windows_min
            && average > 0
            && velocity.current > average.saturating_mul(rules.velocity_multiple);
        if !exceeded || self.recent_alert(client_id, AlertKind::Velocity, at.0 - window) {
            return;
        }
        let current = velocity.current;
        let evidence = format!(
            "{} traded within {}, more than {} times the baseline of {} per {} (averaged over the previous {} \
             windows, {} of them active)",
            readable::usd_cents(current),
            readable::duration_ms(window),
            rules.velocity_multiple,
            readable::usd_cents(average),
            readable::duration_ms(window),
            rules.baseline_windows,
            velocity.active_windows,
        );
        let facts = AlertFacts::Velocity {
            window_ms: window,
            traded_usd: current,
            baseline_usd: average,
            baseline_windows: rules.baseline_windows,
            active_windows: velocity.active_windows,
            multiple: rules.velocity_multiple,
        };
        self.raise_alert(at, AlertKind::Velocity, Some(client_id.clone()), evidence, Some(facts));
    }

    /// `"0.25 BTC"`: exact, grouped, in the asset's units (minor units when the asset is not in the catalog).
    fn readable_amount(&self, asset: crate::catalog::AssetCode, units: i128) -> String {
        match self.catalog().and_then(|catalog| catalog.asset(&asset)) {
            Some(found) => format!("{} {asset}", readable::amount(units, found.scale)),
            None => format!("{units} minor units of {asset}"),
        }
    }

    /// Whether an alert of `kind` was raised for the client at or after `since` (from the client's own flows,
    /// not by walking back over the desk's alerts).
    fn recent_alert(&self, client_id: &ClientId, kind: AlertKind, since: i64) -> bool {
        self.flows.alerted_since(client_id, kind, since)
    }
}

fn validate_finding(finding: &SurveillanceFinding) -> Result<(), CommandError> {
    let evidence = &finding.evidence;
    if !finding.kind.is_surveillance() {
        return Err(CommandError::invalid("kind", "a surveillance alert kind"));
    }
    if finding.summary.is_empty() || finding.summary.len() > SURVEILLANCE_SUMMARY_BYTES_MAX {
        return Err(CommandError::invalid("summary", "1 to 4000 bytes"));
    }
    if evidence.dedup_key.is_empty() || evidence.dedup_key.len() > SURVEILLANCE_DEDUP_KEY_BYTES_MAX {
        return Err(CommandError::invalid("dedup_key", "1 to 200 bytes"));
    }
    let identifiers_valid = |ids: &[String]| {
        ids.len() <= SURVEILLANCE_IDS_MAX && ids.iter().all(|id| !id.is_empty() && id.len() <= IDENTIFIER_BYTES_MAX)
    };
    if !identifiers_valid(&evidence.trade_ids) || !identifiers_valid(&evidence.order_ids) {
        return Err(CommandError::invalid("trade_ids", "at most 1000 ids of 1 to 64 bytes each"));
    }
    let figures_valid = |figures: &BTreeMap<String, i128>| {
        figures.len() <= SURVEILLANCE_FIGURES_MAX
            && figures.keys().all(|name| !name.is_empty() && name.len() <= IDENTIFIER_BYTES_MAX)
    };
    if !figures_valid(&evidence.figures) || !figures_valid(&evidence.thresholds) {
        return Err(CommandError::invalid("figures", "at most 32 named values, names of 1 to 64 bytes"));
    }
    Ok(())
}

/// A client's trades as time-window rules see them: their times and the running sum of their USD notional, in
/// trade order. Kept beside the trade list (and rebuilt from it), so that a check over windows finds each
/// window's trades by binary search instead of walking the client's trades after every trade. Trade times never
/// decrease (the engine's clock never goes back), which is what makes the binary search exact.
#[derive(Debug, Clone, Default)]
pub struct TradeFlow {
    times: ChunkedVec<i64>,
    /// Element `i`: the USD cents of trades `0..=i` (an unknown value counts zero).
    running_notional: ChunkedVec<i128>,
}

/// What the velocity rule measures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Velocity {
    /// USD cents traded in the current window.
    pub current: i128,
    /// USD cents traded in the earlier windows of the baseline period.
    pub baseline: i128,
    /// Earlier windows with at least one trade.
    pub active_windows: usize,
    /// How many windows back the earliest trade of the baseline period is (0 when there is none).
    pub span_windows: i64,
}

impl TradeFlow {
    pub fn push(&mut self, executed_at: TimestampMs, notional_usd: Option<i128>) {
        debug_assert!(self.times.last().is_none_or(|last| *last <= executed_at.0), "trade times never decrease");
        let before = self.running_notional.last().copied().unwrap_or(0);
        self.times.push(executed_at.0);
        self.running_notional.push(before + notional_usd.unwrap_or(0));
    }

    /// USD cents of the trades at positions `from..to`.
    fn notional(&self, from: usize, to: usize) -> i128 {
        let through = |end: usize| end.checked_sub(1).map_or(0, |last| self.running_notional[last]);
        through(to) - through(from)
    }

    /// The first position in `from..to` whose time is at or after `time` (`to` when none).
    fn first_at_or_after(&self, from: usize, to: usize, time: i64) -> usize {
        self.times.partition_point_in(from..to, |traded| *traded < time)
    }

    /// USD cents traded at or after `since`.
    pub fn notional_since(&self, since: TimestampMs) -> i128 {
        let end = self.times.len();
        self.notional(self.first_at_or_after(0, end, since.0), end)
    }

    /// The velocity rule's figures at `at`: every trade back to the start of
    /// the baseline period, `baseline_windows + 1` windows before `at`; window `k` holds the trades with
    /// `(at - time) / window_ms == k`.
    pub fn velocity(&self, at: TimestampMs, window_ms: i64, baseline_windows: i64) -> Velocity {
        let end = self.times.len();
        let start = self.first_at_or_after(0, end, at.0 - window_ms * (baseline_windows + 1));
        let current_from = self.first_at_or_after(start, end, at.0 - window_ms + 1);
        let mut velocity = Velocity {
            current: self.notional(current_from, end),
            baseline: self.notional(start, current_from),
            active_windows: 0,
            span_windows: 0,
        };
        // Walk back one non-empty window at a time: a binary search each, never a trade at a time.
        let mut newer = current_from;
        while newer > start {
            let windows_back = (at.0 - self.times[newer - 1]) / window_ms;
            velocity.active_windows += 1;
            velocity.span_windows = windows_back;
            newer = self.first_at_or_after(start, newer, at.0 - window_ms * (windows_back + 1) + 1);
        }
        velocity
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
        self.raise_alert(at, AlertKind::SanctionsScreening, Some(client.client_id.clone()), evidence, None);
    }
}

#[cfg(test)]
mod tests {
    use super::{TradeFlow, Velocity};
    use crate::time::TimestampMs;
    use proptest::prelude::*;

    /// The rule's definition, trade by trade: the newest trades back to the baseline period's start.
    fn velocity_by_walking(trades: &[(i64, Option<i128>)], at: i64, window: i64, baseline_windows: i64) -> Velocity {
        let baseline_start = at - window * (baseline_windows + 1);
        let (mut current, mut baseline) = (0, 0);
        let mut active = std::collections::BTreeSet::new();
        for (time, notional) in trades.iter().rev() {
            if *time < baseline_start {
                break;
            }
            let windows_back = (at - time) / window;
            if windows_back == 0 {
                current += notional.unwrap_or(0);
            } else {
                baseline += notional.unwrap_or(0);
                active.insert(windows_back);
            }
        }
        let span_windows = active.last().copied().unwrap_or(0);
        Velocity { current, baseline, active_windows: active.len(), span_windows }
    }

    proptest! {
        #[test]
        fn binary_searched_windows_agree_with_walking_every_trade(
            gaps in proptest::collection::vec((0i64..40, proptest::option::of(0i128..1_000)), 0..200),
            window in 1i64..30,
            baseline_windows in 0i64..12,
            after_last in 0i64..200,
        ) {
            let mut time = 1_000;
            let mut trades = Vec::new();
            let mut flow = TradeFlow::default();
            for (gap, notional) in gaps {
                time += gap;
                trades.push((time, notional));
                flow.push(TimestampMs(time), notional);
            }
            let at = time + after_last;
            prop_assert_eq!(
                flow.velocity(TimestampMs(at), window, baseline_windows),
                velocity_by_walking(&trades, at, window, baseline_windows)
            );
            let since = at - window * 3;
            let walked: i128 = trades.iter().rev().take_while(|(traded, _)| *traded >= since).filter_map(|(_, notional)| *notional).sum();
            prop_assert_eq!(flow.notional_since(TimestampMs(since)), walked);
        }
    }
}
