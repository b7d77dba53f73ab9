//! otcd's desk services: what every protocol edge (HTTP today, FIX and SDK-driven flows next) calls to act on
//! the desk.
//!
//! A service takes input already parsed into domain values, adds what the desk knows and the client does not
//! (fresh venue books and cross legs, the USD notional that selects a size band, sanctions screening of names
//! and addresses), submits one engine command and answers a typed result: the one place where an engine outcome
//! is unpacked ([`DeskServices::execute`]). The workers that act without a request (order watch, settlement,
//! reconciliation, surveillance raising) and the streamed ladder publisher live here too, and talk to the
//! outside world only through the ports of [`ports`].
//!
//! Client-visible events are not published here: the host derives them from durable records
//! (`otcd_host::events`), so no service or worker announces a change by hand.
//!
//! Architecture invariant: this crate depends on no HTTP framework, and on no adapter's type (rails are
//! `Arc<dyn Rail>`, never a simulator).

pub mod accounts;
pub mod auth_failures;
pub mod compliance;
pub mod controls;
pub mod custody;
pub mod error;
pub mod hedge_worker;
pub mod hedging;
pub mod keys;
pub mod ladders;
pub mod market_inputs;
pub mod order_watch;
pub mod orders;
pub mod ports;
pub mod pricing;
pub mod quotes;
pub mod reconciliation;
pub mod screening;
pub mod settlement;
pub mod settlement_worker;
pub mod surveillance_raiser;
pub mod webhooks;

pub use error::{ServiceError, ServiceResult};

use otcd_core::catalog::{Asset, Catalog, Instrument};
use otcd_core::engine::{Actor, Command, CommandError, Desk, Outcome};
use otcd_host::clock::Clock;
use otcd_host::events::EventHub;
use otcd_host::metrics::Metrics;
use otcd_host::reports::ReportsService;
use otcd_host::runner::EngineHandle;
use otcd_market::MarketHub;
use ports::{Rail, RailSimulation, RailStatements};
use std::sync::Arc;

/// The result of a command the desk accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done<T> {
    pub value: T,
    /// False for an idempotent repeat of an earlier request: nothing changed, and `value` is the original.
    pub changed: bool,
}

/// How the services price and how often the workers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Validity of firm quotes, ms.
    pub quote_validity_ms: i64,
    /// Price instruments without a fresh book of their own through their USD legs.
    pub cross_pricing: bool,
    /// How often the settlement worker runs a net settlement cycle for credit clients (0: only on request).
    pub net_settlement_every_ms: i64,
    /// How often the settlement worker reconciles the ledger with the rails and logs breaks (0: only on request).
    pub reconcile_every_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            quote_validity_ms: otcd_core::engine::quotes::QUOTE_VALIDITY_MS_DEFAULT,
            cross_pricing: true,
            net_settlement_every_ms: 3_600_000,
            reconcile_every_ms: 60_000,
        }
    }
}

/// The desk's rails: who pays out, who reports balances, and (only when simulated) who books movements the
/// desk knows nothing about.
#[derive(Clone)]
pub struct Rails {
    pub rail: Arc<dyn Rail>,
    pub statements: Arc<dyn RailStatements>,
    pub simulation: Option<Arc<dyn RailSimulation>>,
}

/// Everything a service needs, built once at start by the binary (the composition root) and shared by every edge
/// and worker: `Arc::new(DeskServices { engine, catalog, ..., internal: Internal::new(&metrics) })`.
pub struct DeskServices {
    pub engine: EngineHandle,
    pub catalog: Catalog,
    pub clock: Arc<dyn Clock>,
    pub market: Arc<MarketHub>,
    pub keys: keys::KeyRegistry,
    pub screening: screening::ScreeningService,
    pub reports: ReportsService,
    pub events: EventHub,
    pub rails: Rails,
    /// Order entry at the venues the hedger trades on (`None`: hedges are decided but nothing is sent).
    pub execution: Option<Arc<dyn ports::VenueExecution>>,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub internal: Internal,
}

/// The services' own state, made once with the desk.
pub struct Internal {
    /// Held while a rail movement and the engine command that records it happen together, and while
    /// reconciliation reads both sides, so it never sees one without the other (a false, passing break).
    rail_step: tokio::sync::Mutex<()>,
    ladder_metrics: ladders::LadderMetrics,
}

impl Internal {
    /// Registers the services' metrics in `metrics`.
    pub fn new(metrics: &Metrics) -> Self {
        Self { rail_step: tokio::sync::Mutex::new(()), ladder_metrics: ladders::LadderMetrics::register(metrics) }
    }
}

impl DeskServices {
    /// Submits `command` for `actor` and unpacks its outcome with `pick`. The one place where an outcome that
    /// does not belong to its command becomes an error (it would be a bug in the engine).
    pub(crate) async fn execute<T>(
        &self,
        actor: Actor,
        command: Command,
        pick: impl FnOnce(Outcome) -> Option<T>,
    ) -> ServiceResult<Done<T>> {
        let name = command.name();
        let executed = self.engine.submit(actor, command).await?;
        let changed = executed.changed;
        match pick(executed.outcome) {
            Some(value) => Ok(Done { value, changed }),
            None => {
                Err(ServiceError::Internal(format!("the engine answered {name} with an outcome of another command")))
            }
        }
    }

    /// Runs a read of the desk in sequence with commands; answered once every change it may have seen is
    /// durable.
    pub async fn read<R: Send + 'static>(&self, read: impl FnOnce(&Desk) -> R + Send + 'static) -> ServiceResult<R> {
        Ok(self.engine.query(read).await?)
    }

    /// The catalog instrument `symbol` names, or `instrument_unknown`.
    pub fn instrument(&self, symbol: &str) -> ServiceResult<&Instrument> {
        self.catalog.instrument(symbol).ok_or_else(|| {
            CommandError::InstrumentUnknown(format!("unknown instrument {symbol:?}; see GET /v1/instruments")).into()
        })
    }

    /// The catalog asset `text` names, or `invalid_request` on `asset`.
    pub fn asset(&self, text: &str) -> ServiceResult<Asset> {
        self.catalog.asset_by_text(text).cloned().ok_or_else(|| ServiceError::invalid("asset", "is not in the catalog"))
    }

    /// Decimal places of an asset (0 for one the catalog does not hold).
    pub fn scale(&self, asset: &otcd_core::catalog::AssetCode) -> u8 {
        self.catalog.asset(asset).map_or(0, |asset| asset.scale)
    }

    pub fn base_scale(&self, instrument: &Instrument) -> u8 {
        self.scale(&instrument.base)
    }

    pub fn quote_scale(&self, instrument: &Instrument) -> u8 {
        self.scale(&instrument.quote)
    }

    /// Checks a base quantity against the instrument's increment and limits (`invalid_request` on `quantity`).
    pub fn check_quantity(&self, instrument: &Instrument, quantity: i128) -> ServiceResult<()> {
        otcd_core::engine::quotes::validate_quantity(instrument, quantity, "quantity")?;
        Ok(())
    }
}
