//! Hedging: the policy per asset (the rules are the engine's: `otcd_core::engine::hedging`), and what the admin
//! view shows (policies, active and recent hedges, desk positions, the venues' balances as the adapter reports
//! them). The hedge worker (`hedge_worker.rs`) does the sending.

use crate::ports::VenueAccount;
use crate::{DeskServices, ServiceResult};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::hedging::{Hedge, HedgingPolicy};
use otcd_core::engine::{Actor, Command, Outcome};

/// Recent finished hedges the overview lists (active ones always).
pub const RECENT_HEDGES_MAX: usize = 100;

/// What `GET /v1/admin/hedging` shows.
#[derive(Debug, Clone)]
pub struct HedgingOverview {
    pub policies: Vec<HedgingPolicy>,
    /// (asset, desk position in minor units) for every asset with a policy.
    pub positions: Vec<(AssetCode, i128)>,
    pub active: Vec<Hedge>,
    /// Newest first.
    pub recent: Vec<Hedge>,
    pub venues: Vec<VenueAccount>,
}

impl DeskServices {
    pub async fn put_hedging_policy(&self, actor: Actor, policy: HedgingPolicy) -> ServiceResult<HedgingPolicy> {
        let stored = |outcome| match outcome {
            Outcome::HedgingPolicy(policy) => Some(policy),
            _ => None,
        };
        self.execute(actor, Command::PutHedgingPolicy(policy), stored).await.map(|done| done.value)
    }

    pub async fn hedging_overview(&self) -> ServiceResult<HedgingOverview> {
        let mut overview = self
            .read(|desk| {
                let book = desk.hedging();
                let policies: Vec<HedgingPolicy> = book.policies().cloned().collect();
                let positions =
                    policies.iter().map(|policy| (policy.asset, desk.desk_position(policy.asset))).collect();
                let active = book.active_hedges().cloned().collect();
                let recent = book
                    .hedges()
                    .rev()
                    .filter(|hedge| !hedge.state.is_active())
                    .take(RECENT_HEDGES_MAX)
                    .cloned()
                    .collect();
                HedgingOverview { policies, positions, active, recent, venues: Vec::new() }
            })
            .await?;
        if let Some(execution) = self.execution.clone() {
            overview.venues = tokio::task::spawn_blocking(move || execution.accounts()).await.unwrap_or_default();
        }
        Ok(overview)
    }
}
