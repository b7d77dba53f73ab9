//! The desk's scheduled sanctions list update (`sanctions_refresh_hours`): every period it fetches the lists into
//! `--sanctions-dir` as `otcd sanctions fetch` does, then reloads and re-screens every client and destination
//! exactly as `POST /v1/admin/sanctions/reload` does (new possible matches are alerted and held by the engine,
//! naming the lists' version). A failed download, a file that does not parse or a set that does not load keeps
//! the lists in force and raises an operator alert through a journaled command.

use crate::sanctions_fetch::{fetch, Sources};
use otcd_core::engine::Actor;
use otcd_services::DeskServices;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Schedule {
    /// `--sanctions-dir`, replaced by each successful update.
    pub directory: PathBuf,
    pub sources: Sources,
    pub every: Duration,
}

/// Runs the schedule until `stop` turns true; the first update is one period after start.
pub async fn run(desk: Arc<DeskServices>, schedule: Schedule, mut stop: tokio::sync::watch::Receiver<bool>) {
    tracing::info!(every_s = schedule.every.as_secs(), directory = %schedule.directory.display(), "sanctions list updates scheduled");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(schedule.every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        update_once(&desk, &schedule).await;
    }
}

async fn update_once(desk: &DeskServices, schedule: &Schedule) {
    let in_force = desk.screening.screener().map(|screener| screener.lists().digest()).unwrap_or_default();
    let short = |version: &str| version.get(..12).unwrap_or(version).to_owned();
    let manifest = match fetch(&schedule.directory, &schedule.sources).await {
        Ok(manifest) => manifest,
        Err(error) => {
            let evidence =
                format!("sanctions list update failed; screening stays on lists {}: {error:#}", short(&in_force));
            return alert(desk, evidence).await;
        }
    };
    if manifest.lists_version == in_force {
        tracing::info!(lists_version = %in_force, "sanctions lists unchanged");
        return;
    }
    match desk.reload_sanctions(Actor::default()).await {
        Ok(summary) => tracing::info!(
            lists_version = %summary.lists_version,
            clients_screened = summary.clients_screened,
            changed = summary.changed,
            destinations_rejected = summary.destinations_rejected,
            "sanctions lists updated and everyone re-screened"
        ),
        Err(error) => {
            let evidence = format!(
                "sanctions lists {} were fetched but did not load; screening stays on lists {}: {error}",
                short(&manifest.lists_version),
                short(&in_force)
            );
            alert(desk, evidence).await;
        }
    }
}

async fn alert(desk: &DeskServices, evidence: String) {
    tracing::warn!(%evidence, "sanctions list update failed");
    if let Err(error) = desk.raise_sanctions_update_alert(&evidence).await {
        tracing::error!(%error, "could not raise the sanctions update alert");
    }
}
