//! Hedging: the policy per asset (the rules are the engine's: `otcd_core::engine::hedging`), and what the admin
//! view shows (policies, active and recent hedges, desk positions, the venues' balances as the adapter reports
//! them). The hedge worker (`hedge_worker.rs`) does the sending.

use crate::ports::VenueAccount;
use crate::{DeskServices, Done, ServiceError, ServiceResult};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::hedging::{Hedge, HedgingPolicy};
use otcd_core::engine::venue_transfers::{NewVenueTransfer, VenueTransfer};
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

    /// Moves desk holdings between its custodian or bank and a venue (docs/hedging.md, Venue funding). The
    /// venue must be one the execution adapter trades on (`not_found` otherwise). Once durable, the rail's books
    /// and the venue adapter are told (a real rail and venue see the movement themselves and ignore it).
    pub async fn transfer_venue(&self, actor: Actor, transfer: NewVenueTransfer) -> ServiceResult<Done<VenueTransfer>> {
        let execution = self.execution.clone().ok_or_else(|| ServiceError::NotFound("no venue adapter".into()))?;
        let accounts = tokio::task::spawn_blocking(move || execution.accounts())
            .await
            .map_err(|error| ServiceError::Internal(error.to_string()))?;
        if !accounts.iter().any(|account| account.venue == transfer.venue) {
            return Err(ServiceError::NotFound(format!("venue {:?} is not one the desk trades on", transfer.venue)));
        }
        let _rail_step = self.rail_step().await;
        let done = self
            .execute(actor, Command::TransferVenue(transfer), |outcome| match outcome {
                Outcome::VenueTransfer(transfer) => Some(transfer),
                _ => None,
            })
            .await?;
        if done.changed {
            let transfer = &done.value;
            let to_venue = transfer.amount_to_venue();
            self.book_rail_movement(format!("venue_transfer:{}", transfer.transfer_id), transfer.asset, -to_venue);
            if let Some(execution) = self.execution.clone() {
                let (venue, asset) = (transfer.venue.clone(), transfer.asset);
                let booked = tokio::task::spawn_blocking(move || execution.book_transfer(&venue, asset, to_venue));
                booked.await.map_err(|error| ServiceError::Internal(error.to_string()))?;
            }
        }
        Ok(done)
    }
}
