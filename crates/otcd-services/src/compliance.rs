//! Compliance services: jurisdiction rules, alert cases, the AML rules' thresholds, and reloading the sanctions
//! lists (which re-screens every client and destination; new matches become engine alerts).

use crate::screening::{recorded, screen_client_with};
use crate::{DeskServices, ServiceError, ServiceResult};
use otcd_core::engine::alerts::{Alert, AlertUpdate, AmlRules};
use otcd_core::engine::jurisdictions::JurisdictionRule;
use otcd_core::engine::settlement::DestinationStatus;
use otcd_core::engine::{Actor, ClientChanges, Command, Outcome};
use otcd_core::ids::ClientId;
use otcd_core::model::{ClientScreening, ScreeningStatus};
use otcd_sanctions::Screener;

/// What a reload of the sanctions lists did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    pub lists_version: String,
    pub clients_screened: usize,
    /// Clients whose screening result changed (recorded, and alerted when it needs a decision).
    pub changed: usize,
    /// Destinations whose address is now listed (rejected and alerted).
    pub destinations_rejected: usize,
}

impl DeskServices {
    /// Creates or replaces the rule of a country or subdivision; answers it with its version.
    pub async fn put_jurisdiction(&self, actor: Actor, rule: JurisdictionRule) -> ServiceResult<JurisdictionRule> {
        let done = self
            .execute(actor, Command::PutJurisdiction(rule), |outcome| match outcome {
                Outcome::Jurisdiction(stored) => Some(stored),
                _ => None,
            })
            .await?;
        Ok(done.value)
    }

    /// Changes an alert's case status, assignee and/or notes.
    pub async fn update_alert(&self, actor: Actor, update: AlertUpdate) -> ServiceResult<Alert> {
        let done = self
            .execute(actor, Command::UpdateAlert(update), |outcome| match outcome {
                Outcome::Alert(alert) => Some(alert),
                _ => None,
            })
            .await?;
        Ok(done.value)
    }

    pub async fn put_aml_rules(&self, actor: Actor, rules: AmlRules) -> ServiceResult<()> {
        let stored = |outcome| matches!(outcome, Outcome::AmlRules(_)).then_some(());
        self.execute(actor, Command::PutAmlRules(rules), stored).await.map(|_| ())
    }

    /// Loads the lists again from the configured directory, swaps them in without downtime and re-screens every
    /// client and destination; each changed result is a journaled command of `actor`.
    pub async fn reload_sanctions(&self, actor: Actor) -> ServiceResult<ReloadSummary> {
        let screening = self.screening.clone();
        let screener = tokio::task::spawn_blocking(move || screening.reload())
            .await
            .map_err(|_| ServiceError::Internal("reload was interrupted".into()))?
            .map_err(|error| ServiceError::unavailable(format!("cannot load the lists: {error}"), 60))?
            .ok_or_else(|| ServiceError::unavailable("otcd runs without --sanctions-dir", 60))?;
        let (clients_screened, changed) = self.rescreen_clients(&actor, &screener).await?;
        let destinations_rejected = self.rescreen_destinations(&actor, &screener).await?;
        Ok(ReloadSummary { lists_version: screener.lists().digest(), clients_screened, changed, destinations_rejected })
    }

    /// Alerts operators that a scheduled list update failed (the lists in force stay); journaled as the desk's own
    /// command. The evidence is cut to the engine's limit on a character boundary.
    pub async fn raise_sanctions_update_alert(&self, evidence: &str) -> ServiceResult<Alert> {
        use otcd_core::engine::alerts::SANCTIONS_UPDATE_EVIDENCE_BYTES_MAX;
        let mut end = evidence.len().min(SANCTIONS_UPDATE_EVIDENCE_BYTES_MAX);
        while !evidence.is_char_boundary(end) {
            end -= 1;
        }
        let evidence = if end == 0 { "sanctions list update failed".to_owned() } else { evidence[..end].to_owned() };
        let command = Command::RaiseSanctionsUpdateAlert { evidence };
        let done = self
            .execute(Actor::default(), command, |outcome| match outcome {
                Outcome::Alert(alert) => Some(alert),
                _ => None,
            })
            .await?;
        Ok(done.value)
    }

    /// Screens every client again; answers (clients screened, results changed).
    async fn rescreen_clients(&self, actor: &Actor, screener: &Screener) -> ServiceResult<(usize, usize)> {
        type Screened = (ClientId, String, String, Option<ClientScreening>);
        let clients: Vec<Screened> = self
            .read(|desk| {
                desk.clients()
                    .map(|client| {
                        let country = client.jurisdiction.country().to_owned();
                        (client.client_id.clone(), client.name.clone(), country, client.screening.clone())
                    })
                    .collect()
            })
            .await?;
        let mut changed = 0;
        for (client_id, name, country, previous) in &clients {
            let screening = screen_client_with(screener, name, country);
            let same_result = previous.as_ref().is_some_and(|previous| {
                previous.matches == screening.matches
                    && (previous.status == screening.status || previous.status == ScreeningStatus::Cleared)
            });
            if same_result {
                continue;
            }
            let changes = ClientChanges { screening: Some(screening), ..Default::default() };
            let command = Command::UpdateClient { client_id: client_id.clone(), changes };
            self.engine.submit(actor.clone(), command).await?;
            changed += 1;
        }
        Ok((clients.len(), changed))
    }

    /// Screens every destination's address again; a newly listed one is rejected (and alerted) by the engine.
    async fn rescreen_destinations(&self, actor: &Actor, screener: &Screener) -> ServiceResult<usize> {
        let destinations: Vec<(String, String)> = self
            .read(|desk| {
                desk.clients()
                    .flat_map(|client| desk.destinations_of(&client.client_id))
                    .filter(|destination| destination.status != DestinationStatus::Rejected)
                    .map(|destination| (destination.destination_id.clone(), destination.address.clone()))
                    .collect()
            })
            .await?;
        let mut rejected = 0;
        for (destination_id, address) in destinations {
            let matches: Vec<_> = screener.screen_address(&address).iter().map(recorded).collect();
            if matches.is_empty() {
                continue;
            }
            self.engine.submit(actor.clone(), Command::RescreenDestination { destination_id, matches }).await?;
            rejected += 1;
        }
        Ok(rejected)
    }
}
