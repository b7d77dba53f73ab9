//! Sanctions screening before the command: the lists (`--sanctions-dir`) are loaded into an `otcd_sanctions::Screener`;
//! client names and destination addresses are screened here and the RESULT travels inside the engine command
//! (journaled), so replay needs no lists and every decision names the list version (digest) it was made on.
//! Reload (`POST /v1/admin/sanctions/reload`) swaps the screener without downtime and re-screens every client.

use otcd_core::engine::settlement::ScreeningMatch;
use otcd_core::model::{ClientScreening, ScreeningStatus};
use otcd_sanctions::{Match, NameQuery, SanctionsLists, Screener};
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::Arc;

/// The loaded lists, swapped as a whole on reload; cheap to clone (clones share the lists).
#[derive(Clone)]
pub struct ScreeningService {
    directory: Option<PathBuf>,
    screener: Arc<RwLock<Option<Arc<Screener>>>>,
}

impl ScreeningService {
    /// Loads the lists when a directory is configured; an unreadable directory is an error at startup.
    pub fn load(directory: Option<PathBuf>) -> Result<Self, otcd_sanctions::LoadError> {
        let screener = match &directory {
            Some(directory) => Some(Arc::new(load_screener(directory)?)),
            None => None,
        };
        Ok(Self { directory, screener: Arc::new(RwLock::new(screener)) })
    }

    pub fn disabled() -> Self {
        Self { directory: None, screener: Arc::new(RwLock::new(None)) }
    }

    /// Loads the lists again from the same directory and swaps them in; answers the new screener.
    pub fn reload(&self) -> Result<Option<Arc<Screener>>, otcd_sanctions::LoadError> {
        let Some(directory) = &self.directory else { return Ok(None) };
        let screener = Arc::new(load_screener(directory)?);
        *self.screener.write() = Some(screener.clone());
        Ok(Some(screener))
    }

    pub fn screener(&self) -> Option<Arc<Screener>> {
        self.screener.read().clone()
    }

    /// The client's screening, `None` when no lists are loaded.
    pub fn screen_client(&self, name: &str, country: &str) -> Option<ClientScreening> {
        let screener = self.screener()?;
        Some(screen_client_with(&screener, name, country))
    }

    /// Matches of a destination address (sanctions lists' digital currency addresses and the blocklist).
    pub fn screen_address(&self, address: &str) -> Vec<ScreeningMatch> {
        self.screener()
            .map(|screener| screener.screen_address(address).iter().map(recorded).collect())
            .unwrap_or_default()
    }
}

pub fn screen_client_with(screener: &Screener, name: &str, country: &str) -> ClientScreening {
    let query = NameQuery { name, date_of_birth: None, country: Some(country) };
    let screening = screener.screen_client(&query);
    let status = match screening.status {
        otcd_sanctions::ScreeningStatus::Clear => ScreeningStatus::Clear,
        otcd_sanctions::ScreeningStatus::Review => ScreeningStatus::Review,
        otcd_sanctions::ScreeningStatus::Hit => ScreeningStatus::Hit,
    };
    ClientScreening {
        status,
        matches: screening
            .matches
            .iter()
            .take(otcd_core::engine::settlement::SCREENING_MATCHES_MAX)
            .map(recorded)
            .collect(),
        lists_version: screener.lists().digest(),
    }
}

/// A match as the engine records it: the score in thousandths (rounded down).
pub fn recorded(found: &Match) -> ScreeningMatch {
    let thousandths = (found.score.clamp(0.0, 1.0) * 1000.0).floor() as u16;
    ScreeningMatch {
        list: list_name(found),
        entry_id: found.entry_id.clone(),
        name: found.name.clone(),
        score_thousandths: thousandths,
    }
}

fn list_name(found: &Match) -> String {
    // The list's serde name (`ofac_sdn`, `un_consolidated`, ...), as the API shows it.
    serde_json::to_value(found.list).ok().and_then(|name| name.as_str().map(str::to_owned)).unwrap_or_default()
}

fn load_screener(directory: &std::path::Path) -> Result<Screener, otcd_sanctions::LoadError> {
    let started = std::time::Instant::now();
    let lists = SanctionsLists::load_dir(directory)?;
    tracing::info!(
        entries = lists.entry_count(),
        addresses = lists.address_count(),
        digest = %lists.digest(),
        load_ms = started.elapsed().as_millis() as u64,
        "sanctions lists loaded"
    );
    Ok(Screener::new(Arc::new(lists)))
}
