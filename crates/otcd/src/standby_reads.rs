//! Stale reads on a standby (`replication_standby_reads`, docs/operations.md): the HTTP application over desk
//! services that can only read, their queries answered by the standby's snapshot follower from the desk it
//! re-executes (`EngineHandle::for_standby`). Nothing here can change the desk: the services have no market
//! feed, no rails, no venues, no reports projection and no workers, and the HTTP filter
//! (`otcd_http::cluster::STANDBY_READ_ROUTES`) lets through only reads that need none of them.

use crate::server::ServeOptions;
use otcd_core::catalog::{AssetCode, AssetKind, Catalog};
use otcd_core::engine::custody::ChainDeposit;
use otcd_core::engine::netting::Instruction;
use otcd_core::engine::settlement::Withdrawal;
use otcd_core::engine::Desk;
use otcd_core::ids::{ClientId, TierName};
use otcd_core::model::{ApiKey, RateLimits};
use otcd_core::time::TimestampMs;
use otcd_host::clock::{Clock, SystemClock};
use otcd_host::cluster::ClusterStatus;
use otcd_host::metrics::Metrics;
use otcd_host::runner::{EngineHandle, StandbyRequests, SubmitError};
use otcd_host::secrets::MasterKey;
use otcd_http::app::{AppContext, AppState};
use otcd_http::cluster::StandbyReads;
use otcd_services::ports::{Rail, RailAccount, RailMovement, RailStatements, RailStatus};
use otcd_services::{DeskServices, Internal, Rails};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the standby's key registry is brought in step with its desk: a key created or revoked on the leader
/// works, or stops working, on the standby within about this long after the standby executed its record.
const KEYS_REFRESH_INTERVAL: Duration = Duration::from_millis(250);
/// Least time between two refreshes of the rate-limit tiers (which only protect the standby itself), taken when the
/// desk moved since the last one.
const TIERS_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Builds the read-only application from the standby's recovered `desk` (before the follower takes it) and starts
/// serving it through `reads`; answers the requests the follower must answer.
pub fn start(
    desk: &Desk,
    master_key: MasterKey,
    options: &ServeOptions,
    status: Arc<ClusterStatus>,
    reads: &StandbyReads,
) -> StandbyRequests {
    let metrics = Arc::new(Metrics::new());
    let (engine, requests) = EngineHandle::for_standby(metrics.clone());
    let catalog = desk.catalog().cloned().unwrap_or_else(Catalog::builtin);
    let keys = otcd_services::keys::KeyRegistry::new(Arc::new(master_key));
    desk.keys().for_each(|key| keys.upsert(key));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let market = otcd_market::MarketHub::new(&catalog, otcd_market::HubConfig::default());
    let services = Arc::new(DeskServices {
        engine: engine.clone(),
        catalog,
        clock,
        market,
        keys,
        screening: otcd_services::screening::ScreeningService::disabled(),
        reports: otcd_host::reports::ReportsService::disabled(),
        events: otcd_host::events::EventHub::new(None),
        rails: no_rails(),
        execution: None,
        settings: options.services.clone(),
        internal: Internal::new(&metrics),
        metrics,
    });
    let context = Arc::new(AppContext::new(
        services,
        options.data_dir.clone(),
        options.rate_limits,
        &[],
        options.auth_failure_interval_ms,
        options.connection_limits,
    ));
    set_tiers(&context, desk);
    reads.serve(context.clone(), status.clone());
    tokio::spawn(keep_in_step(engine, context, status, keys_seen(desk)));
    requests
}

/// Keeps the key registry and the rate-limit tiers in step with the standby's desk until the follower stops
/// answering (the node was promoted or stopped). A read refused because the reads' queue is full is tried again
/// next round: a flood of client reads delays a refresh, never ends them.
async fn keep_in_step(engine: EngineHandle, context: AppState, status: Arc<ClusterStatus>, desk_keys: KeysSeen) {
    let mut keys_seen = desk_keys;
    let (mut keys_seq, mut tiers_seq) = (status.executed_seq(), status.executed_seq());
    let mut tiers_at = Instant::now();
    loop {
        tokio::time::sleep(KEYS_REFRESH_INTERVAL).await;
        let executed_seq = status.executed_seq();
        if executed_seq != keys_seq {
            match engine.query(move |desk| changed_keys(desk, keys_seen)).await {
                Ok(changed) => {
                    if let Some((keys, now)) = changed {
                        keys.iter().for_each(|key| context.desk.keys.upsert(key));
                        keys_seen = now;
                    }
                    keys_seq = executed_seq;
                }
                Err(SubmitError::Overloaded) => continue,
                Err(_) => return,
            }
        }
        if executed_seq != tiers_seq && tiers_at.elapsed() >= TIERS_REFRESH_INTERVAL {
            match engine.query(tiers_of).await {
                Ok(tiers) => apply_tiers(&context, tiers),
                Err(SubmitError::Overloaded) => continue,
                Err(_) => return,
            }
            (tiers_seq, tiers_at) = (executed_seq, Instant::now());
        }
    }
}

/// Keys change only by creation and revocation, never by removal: their count and the revoked ones' count say
/// whether the registry is behind the desk.
type KeysSeen = (usize, usize);

fn keys_seen(desk: &Desk) -> KeysSeen {
    desk.keys().fold((0, 0), |(all, revoked), key| (all + 1, revoked + usize::from(key.revoked_at.is_some())))
}

/// Every key, when the desk's keys are not the ones `seen` counted.
fn changed_keys(desk: &Desk, seen: KeysSeen) -> Option<(Vec<ApiKey>, KeysSeen)> {
    let now = keys_seen(desk);
    (now != seen).then(|| (desk.keys().cloned().collect(), now))
}

type Tiers = (Vec<(TierName, RateLimits)>, Vec<(ClientId, TierName)>);

fn tiers_of(desk: &Desk) -> Tiers {
    let tiers = desk.tiers().map(|tier| (tier.name.clone(), tier.rate_limits)).collect();
    let clients = desk.clients().map(|client| (client.client_id.clone(), client.tier.clone())).collect();
    (tiers, clients)
}

fn set_tiers(context: &AppContext, desk: &Desk) {
    apply_tiers(context, tiers_of(desk));
}

fn apply_tiers(context: &AppContext, (tiers, clients): Tiers) {
    tiers.iter().for_each(|(name, limits)| context.rate_limits.set_tier(name, *limits));
    clients.iter().for_each(|(client_id, tier)| context.rate_limits.set_client_tier(client_id, tier));
}

/// A standby moves no money: its services have rails that refuse and report nothing (no read it serves asks them).
struct NoRails;

const NO_RAILS: &str = "a standby moves no money";

impl Rail for NoRails {
    fn submit(&self, _: &Withdrawal, _: AssetKind) -> Result<String, String> {
        Err(NO_RAILS.to_owned())
    }

    fn status(&self, _: &Withdrawal, _: AssetKind, _: TimestampMs) -> RailStatus {
        RailStatus::Failed(NO_RAILS.to_owned())
    }

    fn instruction_status(&self, _: &Instruction, _: AssetKind, _: TimestampMs) -> RailStatus {
        RailStatus::Failed(NO_RAILS.to_owned())
    }

    fn deposit_confirmations(&self, _: &ChainDeposit) -> Option<u32> {
        None
    }
}

impl RailStatements for NoRails {
    fn balances(&self) -> BTreeMap<(AssetCode, RailAccount), i128> {
        BTreeMap::new()
    }

    fn movements(&self, _: AssetCode, _: usize) -> Vec<RailMovement> {
        Vec::new()
    }
}

fn no_rails() -> Rails {
    let rails = Arc::new(NoRails);
    Rails { rail: rails.clone(), statements: rails, simulation: None }
}
