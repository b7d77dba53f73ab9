//! Starting and stopping a desk: recover the data directory, start the engine runner, create the first
//! operator key on a new desk, serve HTTP until told to stop, then drain and flush.

use crate::app::{router, AppContext};
use crate::auth::{KeyRegistry, ReplayGuard};
use crate::metrics::Metrics;
use crate::runner::{now_ms, EngineHandle, Runner, RunnerConfig, SubmitError};
use crate::secrets::{new_hmac_secret, new_key_id, write_private_file, MasterKey};
use crate::store::{self, admin_key_path, StoreError};
use otcd_core::catalog::Catalog;
use otcd_core::engine::{Actor, Command, NewKey};
use otcd_core::ids::KeyId;
use otcd_core::model::{KeyAlgorithm, Scope};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// How long a stopping desk waits for open requests before closing them.
/// Default of [`ServeOptions::engine_prefault_mib`]: the resident memory it costs at start, for no page faults in
/// the engine while the history grows into it (256 MiB left some in a 10 s run at 2,000 trades/s; 512 none).
pub const ENGINE_PREFAULT_MIB_DEFAULT: usize = 512;

pub const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub snapshot_every_records: u64,
    pub market: MarketSource,
    /// Books older than this are not used for firm quotes (per venue overrides in `max_book_age_ms_by_venue`).
    pub max_book_age_ms: i64,
    pub max_book_age_ms_by_venue: std::collections::HashMap<String, i64>,
    pub quote_validity_ms: i64,
    /// Price an instrument with no fresh book of its own through BASE-USD and QUOTE-USD (e.g. ETH-EUR from
    /// ETH-USD and EUR-USD).
    pub cross_pricing: bool,
    pub rate_limits: crate::ratelimit::RateLimitConfig,
    /// `--sanctions-dir`: ofac/{sdn,add,alt,sdn_comments}.csv and un/consolidated.xml.
    pub sanctions_dir: Option<PathBuf>,
    /// The simulated custodian and bank: how long a payout takes and how often one fails (percent).
    pub settlement: crate::settlement_worker::SimulatedRails,
    /// Journal records between two signed checkpoints.
    pub checkpoint_every_records: u64,
    /// Longest time a durable record waits for a signed checkpoint.
    pub checkpoint_every: std::time::Duration,
    /// Surveillance rules' thresholds (`[surveillance]` in `--config`).
    pub surveillance: otcd_reports::SurveillanceConfig,
    /// Run the reports projection (default true).
    pub reports: bool,
    /// MiB the engine thread touches before its first command ([`crate::runner::prefault_heap`]).
    pub engine_prefault_mib: usize,
}

/// Where market data comes from (`--market`).
#[derive(Debug, Clone)]
pub enum MarketSource {
    /// Simulated venues, seeded.
    Sim { seed: u64, interval_ms: u64 },
    /// Only `PUT /v1/admin/market/{instrument}`.
    Manual,
    /// Book snapshots from a JSON-lines file.
    Replay { path: PathBuf, pace: bool },
}

impl ServeOptions {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            data_dir,
            listen,
            snapshot_every_records: crate::runner::SNAPSHOT_EVERY_RECORDS_DEFAULT,
            market: MarketSource::Sim { seed: 7, interval_ms: 100 },
            max_book_age_ms: 2_000,
            max_book_age_ms_by_venue: std::collections::HashMap::new(),
            quote_validity_ms: otcd_core::engine::quotes::QUOTE_VALIDITY_MS_DEFAULT,
            cross_pricing: true,
            rate_limits: crate::ratelimit::RateLimitConfig::default(),
            sanctions_dir: None,
            settlement: crate::settlement_worker::SimulatedRails::default(),
            checkpoint_every_records: crate::runner::CHECKPOINT_EVERY_RECORDS_DEFAULT,
            checkpoint_every: crate::runner::CHECKPOINT_EVERY_DEFAULT,
            surveillance: otcd_reports::SurveillanceConfig::default(),
            reports: true,
            engine_prefault_mib: ENGINE_PREFAULT_MIB_DEFAULT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the engine refused to initialize the desk: {0}")]
    Initialize(SubmitError),
    #[error("cannot read market data file {path}: {source}")]
    Market { path: PathBuf, source: std::io::Error },
    #[error("cannot load the sanctions lists: {0}")]
    Sanctions(String),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    RailBooks(#[from] crate::rail_books::RailBooksError),
}

/// A desk that has recovered its state and is ready to serve.
pub struct StartedDesk {
    runner: Runner,
    context: Arc<AppContext>,
    listener: tokio::net::TcpListener,
    market_stop: tokio::sync::watch::Sender<bool>,
    settlement: crate::settlement_worker::SimulatedRails,
}

impl StartedDesk {
    pub fn local_address(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    pub fn engine(&self) -> EngineHandle {
        self.context.engine.clone()
    }

    pub(crate) fn state(&self) -> &Arc<AppContext> {
        &self.context
    }

    pub fn keys(&self) -> &KeyRegistry {
        &self.context.keys
    }

    pub fn rate_limits(&self) -> &crate::ratelimit::RateLimits {
        &self.context.rate_limits
    }

    pub fn catalog(&self) -> &Catalog {
        &self.context.catalog
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests (for at most `SHUTDOWN_DRAIN`: a
    /// client that never completes its request must not keep the desk from stopping) and flushes the journal.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        let StartedDesk { runner, context, listener, market_stop, settlement } = self;
        tokio::spawn(crate::order_watch::run(context.clone(), market_stop.subscribe()));
        tokio::spawn(crate::settlement_worker::run(context.clone(), settlement, market_stop.subscribe()));
        tokio::spawn(crate::surveillance_raiser::run(context.clone(), market_stop.subscribe()));
        let app = router(context).into_make_service_with_connect_info::<SocketAddr>();
        let (stopping, mut stop_requested) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            stopping.send_replace(true);
        };
        // Small messages (stream pushes, short responses) must not wait for Nagle's algorithm and the peer's
        // delayed ACK (a ~40 ms stall per burst).
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
            let _ = stream.set_nodelay(true);
        });
        let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
        let drain_deadline = async move {
            let _ = stop_requested.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(SHUTDOWN_DRAIN).await;
        };
        let served = tokio::select! {
            served = server => served,
            () = drain_deadline => {
                tracing::warn!(drain_seconds = SHUTDOWN_DRAIN.as_secs(), "requests still open after the drain period; closing them");
                Ok(())
            }
        };
        market_stop.send_replace(true);
        tokio::task::spawn_blocking(move || runner.shutdown()).await.ok();
        tracing::info!("desk stopped; journal flushed");
        served.map_err(ServerError::Http)
    }
}

/// Recovers the desk in `options.data_dir` (creating a new one if it is empty) and binds the listener.
pub async fn start(options: &ServeOptions) -> Result<StartedDesk, ServerError> {
    let data_dir = options.data_dir.clone();
    let opened = tokio::task::spawn_blocking(move || store::open(&data_dir)).await.expect("recovery does not panic")?;
    let recovery = &opened.recovery;
    tracing::info!(
        data_dir = %options.data_dir.display(),
        snapshot_seq = recovery.snapshot_seq,
        replayed_records = recovery.replayed_records,
        head_seq = recovery.head_seq,
        head = %recovery.head_hash,
        torn_bytes_truncated = recovery.torn_bytes_truncated,
        elapsed_ms = recovery.elapsed.as_millis() as u64,
        "desk recovered"
    );
    let metrics = Arc::new(Metrics::new());
    let master_key = Arc::new(opened.master_key);
    let keys = KeyRegistry::new(master_key.clone());
    opened.desk.keys().for_each(|key| keys.upsert(key));
    let initialized = opened.desk.is_initialized();
    let recent_signatures = opened.recent_signatures;
    let rate_limits = crate::ratelimit::RateLimits::new(options.rate_limits);
    opened.desk.tiers().for_each(|tier| rate_limits.set_tier(&tier.name, tier.rate_limits));
    opened.desk.clients().for_each(|client| rate_limits.set_client_tier(&client.client_id, &client.tier));
    let catalog = opened.desk.catalog().cloned().unwrap_or_else(Catalog::builtin);
    // The lock file travels with the runner's lifetime: dropping it would let a second process in.
    let lock = opened.lock;
    let (projection_sender, projection_receiver) = crate::reports::channel();
    let runner = Runner::start(
        opened.desk,
        Box::new(opened.journal),
        opened.snapshots,
        RunnerConfig {
            snapshot_every_records: options.snapshot_every_records,
            checkpoints: Some(crate::runner::CheckpointSettings {
                log: opened.checkpoints,
                every_records: options.checkpoint_every_records,
                every: options.checkpoint_every,
            }),
            projection: options.reports.then_some(projection_sender),
            engine_prefault_mib: options.engine_prefault_mib,
        },
        metrics.clone(),
    );
    let engine = runner.handle();
    // The projector thread ends when the journal thread drops its sender (at shutdown).
    let reports = if options.reports {
        crate::reports::ReportsService::start(
            store::journal_dir(&options.data_dir),
            options.surveillance.clone(),
            projection_receiver,
            engine.clone(),
        )
        .0
    } else {
        crate::reports::ReportsService::disabled()
    };
    if !initialized {
        initialize_desk(&engine, &keys, &master_key, options, &catalog).await?;
    }
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServerError::Listen { address: options.listen, source })?;
    let hub_config = otcd_market::HubConfig {
        default_max_age_ms: options.max_book_age_ms,
        max_age_ms_by_venue: options.max_book_age_ms_by_venue.clone(),
    };
    let market = otcd_market::MarketHub::new(&catalog, hub_config);
    let (market_stop, stop_receiver) = tokio::sync::watch::channel(false);
    start_market_source(&options.market, &catalog, &market, stop_receiver)?;
    let replay = ReplayGuard::new();
    for (signature, signed_at_ms) in &recent_signatures {
        replay.seed(signature, *signed_at_ms);
    }
    let sanctions_dir = options.sanctions_dir.clone();
    let screening = tokio::task::spawn_blocking(move || crate::screening::ScreeningService::load(sanctions_dir))
        .await
        .expect("loading the lists does not panic")
        .map_err(|error| ServerError::Sanctions(error.to_string()))?;
    let context = Arc::new(AppContext {
        engine,
        keys,
        replay,
        metrics,
        catalog,
        data_dir: options.data_dir.clone(),
        started_at_ms: now_ms().0,
        _lock: lock,
        market,
        quote_validity_ms: options.quote_validity_ms,
        events: crate::events::EventBus::new(),
        stream_connections: crate::stream::ConnectionCounter::default(),
        ladders: crate::ladders::LadderHub::default(),
        cross_pricing: options.cross_pricing,
        rate_limits,
        screening,
        reports,
        rail_books: Arc::new(crate::rail_books::SimulatedRailBooks::open(&options.data_dir)?),
        rail_step: tokio::sync::Mutex::new(()),
    });
    Ok(StartedDesk { runner, context, listener, market_stop, settlement: options.settlement.clone() })
}

fn start_market_source(
    source: &MarketSource,
    catalog: &Catalog,
    hub: &Arc<otcd_market::MarketHub>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServerError> {
    use otcd_market::MarketDataSource;
    let source: Box<dyn MarketDataSource> = match source {
        MarketSource::Manual => return Ok(()),
        MarketSource::Sim { seed, interval_ms } => Box::new(
            otcd_market::SimulatedMarket::new(catalog, *seed)
                .with_interval(std::time::Duration::from_millis(*interval_ms)),
        ),
        MarketSource::Replay { path, pace } => {
            let options = otcd_market::ReplayOptions {
                rebase_to_now: true,
                pace: *pace,
                ..otcd_market::ReplayOptions::default()
            };
            let source = otcd_market::ReplaySource::open(path, catalog, options)
                .map_err(|source| ServerError::Market { path: path.clone(), source })?;
            Box::new(source)
        }
    };
    tracing::info!(source = source.name(), "market data source started");
    drop(source.spawn(hub.clone(), stop));
    Ok(())
}

/// A new desk: write the first operator key to `admin-key.json` (0600) first, then journal it. A crash in
/// between leaves an uninitialized desk that makes a new key on the next start.
async fn initialize_desk(
    engine: &EngineHandle,
    keys: &KeyRegistry,
    master_key: &MasterKey,
    options: &ServeOptions,
    catalog: &Catalog,
) -> Result<(), ServerError> {
    let key_id = KeyId::parse(&new_key_id()).expect("generated ids are valid");
    let secret = new_hmac_secret();
    let path = admin_key_path(&options.data_dir);
    let contents = serde_json::json!({"key_id": key_id.as_str(), "secret": secret, "algorithm": "hmac"});
    write_private_file(&path, format!("{contents:#}\n").as_bytes())
        .map_err(|source| ServerError::Write { path: path.clone(), source })?;
    let admin_key = NewKey {
        key_id: key_id.clone(),
        scopes: vec![Scope::Admin, Scope::Read],
        algorithm: KeyAlgorithm::Hmac,
        credential: master_key.seal(key_id.as_str(), secret.as_bytes()),
        allowed_ips: Vec::new(),
    };
    let command = Command::InitializeDesk { catalog: catalog.clone(), admin_key };
    engine.submit(Actor::default(), command).await.map_err(ServerError::Initialize)?;
    let record = engine.query(move |desk| desk.key(&key_id).cloned()).await.map_err(ServerError::Initialize)?;
    record.iter().for_each(|key| keys.upsert(key));
    tracing::info!(path = %path.display(), "new desk created; the admin key is in this file (mode 0600)");
    Ok(())
}
