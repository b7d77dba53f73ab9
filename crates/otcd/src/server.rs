//! Starting and stopping a desk: the composition root. It recovers the data directory, starts the engine runner
//! with its event feed and the reports projection, builds the desk services over the simulated rails and the
//! market source, creates the first operator key on a new desk, serves HTTP until told to stop, then drains and
//! flushes.

use otcd_core::catalog::Catalog;
use otcd_core::engine::{Actor, Command, NewKey};
use otcd_core::ids::KeyId;
use otcd_core::model::{KeyAlgorithm, Scope};
use otcd_host::clock::{Clock, SystemClock};
use otcd_host::events::EventHub;
use otcd_host::metrics::Metrics;
use otcd_host::reports::ReportsService;
use otcd_host::runner::{CheckpointSettings, EngineHandle, Runner, RunnerConfig, SubmitError};
use otcd_host::secrets::{new_hmac_secret, new_key_id, write_private_file, MasterKey};
use otcd_host::store::{self, admin_key_path, OpenedDesk, StoreError};
use otcd_http::app::{AppContext, AppState};
use otcd_services::keys::KeyRegistry;
use otcd_services::{DeskServices, Internal, Settings};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Default of [`ServeOptions::engine_prefault_mib`]: the resident memory it costs at start, for no page faults in
/// the engine while the history grows into it (BENCHMARKS.md, "page faults").
pub const ENGINE_PREFAULT_MIB_DEFAULT: usize = 512;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub snapshot_every_records: u64,
    pub market: MarketSource,
    /// Books older than this are not used for firm quotes (per venue overrides in `max_book_age_ms_by_venue`).
    pub max_book_age_ms: i64,
    pub max_book_age_ms_by_venue: std::collections::HashMap<String, i64>,
    /// Quote validity, cross pricing, and the settlement worker's schedule.
    pub services: Settings,
    pub rate_limits: otcd_http::ratelimit::RateLimitConfig,
    /// Failed authentications are journaled as one summary record per this many ms.
    pub auth_failure_interval_ms: u64,
    /// Connection caps and timeouts of the HTTP edge; the caps are sized under the descriptor limit at start.
    pub connection_limits: otcd_http::connections::ConnectionLimits,
    /// `--sanctions-dir`: ofac/{sdn,add,alt,sdn_comments}.csv and un/consolidated.xml (eu/, uk/ optional).
    pub sanctions_dir: Option<PathBuf>,
    /// The scheduled list update into `sanctions_dir` (`sanctions_refresh_hours`).
    pub sanctions_refresh: Option<crate::sanctions_refresh::Schedule>,
    /// The simulated custodian and bank: how long a payout takes and how often one fails (percent).
    pub simulation: otcd_rails_sim::SimulationSettings,
    /// The paper venues the hedger trades on (latency, simulated rejects and timeouts).
    pub paper: otcd_rails_sim::paper::PaperSettings,
    /// Journal records between two signed checkpoints.
    pub checkpoint_every_records: u64,
    /// Longest time a durable record waits for a signed checkpoint.
    pub checkpoint_every: std::time::Duration,
    /// `--accept-rollback`: start although the data directory is behind its high-water mark (a restored backup).
    pub accept_rollback: bool,
    /// A copy of every signed checkpoint outside the data directory (docs/audit.md); checked at start.
    pub checkpoint_witness_file: Option<PathBuf>,
    /// Surveillance rules' thresholds (`[surveillance]` in `--config`).
    pub surveillance: otcd_reports::SurveillanceConfig,
    /// Run the reports projection (default true).
    pub reports: bool,
    /// MiB the engine thread touches before its first command (`otcd_host::runner::prefault_heap`).
    pub engine_prefault_mib: usize,
    /// Webhook URLs may resolve to loopback and private addresses (`webhooks_allow_private`; tests, demos).
    pub webhooks_allow_private: bool,
    /// Recent events the event feed keeps for stream resumes (`stream_resume_events`, `stream_resume_bytes`).
    pub event_retention: otcd_host::events::Retention,
    /// The FIX 4.4 acceptor (`--fix-listen`, `fix_*` keys); off when `None`.
    pub fix: Option<FixOptions>,
    /// The event stream to NATS JetStream (`--events-nats`, `events_*` keys); off when `None`.
    pub event_stream: Option<otcd_eventstream::Settings>,
    /// The `replication*`, `node_id` and `advertise` config keys (the command line's flags win over them).
    pub replication: ReplicationConfig,
}

/// The config file's replication keys, as written (checked when the settings are built).
#[derive(Debug, Clone, Default)]
pub struct ReplicationConfig {
    pub servers: Option<String>,
    pub node_id: Option<String>,
    pub advertise: Option<String>,
    pub stream: Option<String>,
    pub replicas: Option<usize>,
    pub lease_ms: Option<u64>,
    pub renew_ms: Option<u64>,
    pub ack_timeout_ms: Option<u64>,
    pub standby_reads: Option<bool>,
}

/// Where the FIX gateway listens and how it runs (docs/fix.md).
#[derive(Debug, Clone)]
pub struct FixOptions {
    pub listen: SocketAddr,
    pub target_comp_id: String,
    pub connections_max: usize,
    pub messages_per_second: u32,
}

impl FixOptions {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            target_comp_id: otcd_fix::gateway::TARGET_COMP_ID_DEFAULT.to_owned(),
            connections_max: otcd_fix::gateway::CONNECTIONS_MAX_DEFAULT,
            messages_per_second: otcd_fix::gateway::MESSAGES_PER_SECOND_DEFAULT,
        }
    }
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
    /// Exchange connectors (and optionally the simulation) from a venues file (`--venues-config`).
    Venues { path: PathBuf },
}

impl ServeOptions {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            data_dir,
            listen,
            snapshot_every_records: otcd_host::runner::SNAPSHOT_EVERY_RECORDS_DEFAULT,
            market: MarketSource::Sim { seed: 7, interval_ms: 100 },
            max_book_age_ms: 2_000,
            max_book_age_ms_by_venue: std::collections::HashMap::new(),
            services: Settings::default(),
            rate_limits: otcd_http::ratelimit::RateLimitConfig::default(),
            auth_failure_interval_ms: otcd_http::auth_failures::AUTH_FAILURE_INTERVAL_MS_DEFAULT,
            connection_limits: otcd_http::connections::ConnectionLimits::default(),
            sanctions_dir: None,
            sanctions_refresh: None,
            simulation: otcd_rails_sim::SimulationSettings::default(),
            paper: otcd_rails_sim::paper::PaperSettings::default(),
            checkpoint_every_records: otcd_host::runner::CHECKPOINT_EVERY_RECORDS_DEFAULT,
            checkpoint_every: otcd_host::runner::CHECKPOINT_EVERY_DEFAULT,
            accept_rollback: false,
            checkpoint_witness_file: None,
            surveillance: otcd_reports::SurveillanceConfig::default(),
            reports: true,
            engine_prefault_mib: ENGINE_PREFAULT_MIB_DEFAULT,
            event_retention: otcd_host::events::Retention::DEFAULT,
            webhooks_allow_private: false,
            fix: None,
            event_stream: None,
            replication: ReplicationConfig::default(),
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
    #[error("venues config {path}: {message}")]
    Venues { path: PathBuf, message: String },
    #[error("cannot load the sanctions lists: {0}")]
    Sanctions(String),
    #[error("cannot open the paper venues: {0}")]
    Paper(String),
    #[error("cannot start order entry at venue {venue}: {message}")]
    VenueTrading { venue: String, message: String },
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    RailBooks(#[from] otcd_rails_sim::RailBooksError),
}

/// A desk that has recovered its state and is ready to serve.
pub struct StartedDesk {
    runner: Runner,
    sanctions_refresh: Option<crate::sanctions_refresh::Schedule>,
    context: AppState,
    listener: tokio::net::TcpListener,
    /// The FIX gateway's listener, when `--fix-listen` is given.
    fix_listener: Option<tokio::net::TcpListener>,
    fix_settings: Option<otcd_fix::Settings>,
    event_stream: Option<otcd_eventstream::Settings>,
    auth_failure_interval_ms: u64,
    market_stop: tokio::sync::watch::Sender<bool>,
    /// Stops the webhook worker (it journals its progress once more), before the engine stops.
    webhook_stop: tokio::sync::watch::Sender<bool>,
    /// What recovery did at start (or what a standby's hand-over did, `replicated.rs`).
    recovery: otcd_host::store::RecoveryReport,
    /// The data directory's lock, held as long as the desk runs: a second process would corrupt it.
    _lock: std::fs::File,
}

impl StartedDesk {
    pub fn local_address(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Where the FIX gateway listens, when it runs.
    pub fn fix_address(&self) -> Option<SocketAddr> {
        self.fix_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// What recovery did at start.
    pub fn recovery(&self) -> &otcd_host::store::RecoveryReport {
        &self.recovery
    }

    pub fn services(&self) -> &Arc<DeskServices> {
        &self.context.desk
    }

    pub fn rate_limits(&self) -> &otcd_http::ratelimit::RateLimits {
        &self.context.rate_limits
    }

    /// Serves until `shutdown` resolves (then drains for at most `otcd_http::server::SHUTDOWN_DRAIN`), stops the
    /// workers and the market source, and flushes the journal.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
        let StartedDesk {
            runner,
            sanctions_refresh,
            context,
            listener,
            fix_listener,
            fix_settings,
            event_stream,
            auth_failure_interval_ms,
            market_stop,
            webhook_stop,
            recovery: _,
            _lock,
        } = self;
        let desk = context.desk.clone();
        if let Some(schedule) = sanctions_refresh {
            tokio::spawn(crate::sanctions_refresh::run(desk.clone(), schedule, market_stop.subscribe()));
        }
        let fix = fix_listener.zip(fix_settings).map(|(fix_listener, settings)| {
            let gateway = otcd_fix::Gateway::new(desk.clone(), settings, auth_failure_interval_ms);
            tokio::spawn(otcd_fix::serve(gateway, fix_listener, webhook_stop.subscribe()))
        });
        if let Some(settings) = event_stream {
            otcd_eventstream::start(desk.clone(), Arc::new(render_stream_event), settings, market_stop.subscribe());
        }
        tokio::spawn(otcd_services::order_watch::run(desk.clone(), market_stop.subscribe()));
        if let Some(execution) = desk.execution.clone() {
            tokio::spawn(otcd_services::hedge_worker::run(desk.clone(), execution, market_stop.subscribe()));
        }
        tokio::spawn(otcd_services::settlement_worker::run(desk.clone(), market_stop.subscribe()));
        tokio::spawn(otcd_services::surveillance_raiser::run(desk, market_stop.subscribe()));
        let served = otcd_http::server::serve(listener, context, shutdown).await;
        webhook_stop.send_replace(true);
        if let Some(fix) = fix {
            // Sessions log out and the last failed logons are journaled before the engine stops.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), fix).await;
        }
        // The worker's last progress command goes in before the engine stops (bounded: a stuck engine is the
        // runner's shutdown's problem).
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        market_stop.send_replace(true);
        tokio::task::spawn_blocking(move || runner.shutdown()).await.ok();
        tracing::info!("desk stopped; journal flushed");
        served.map_err(ServerError::Http)
    }
}

/// An event as the event stream carries it (docs/events.md): the objects the REST API shows.
fn render_stream_event(
    desk: &DeskServices,
    event: &otcd_host::events::SequencedEvent,
) -> Option<otcd_eventstream::Rendered> {
    Some(otcd_eventstream::Rendered {
        event_type: otcd_http::stream::event_type(&event.event),
        at: otcd_http::json::format_timestamp(event.at),
        data: otcd_http::stream::desk_event_data(desk, &event.event)?,
    })
}

/// Wraps the node's file journal into the replicated journal (given the desk's metrics to register into).
pub type WrapJournal =
    Box<dyn FnOnce(otcd_journal::FileJournal, &Arc<Metrics>) -> Box<dyn otcd_journal::Journal> + Send>;

/// What a replicated desk's leader changes in the composition (`replicated.rs`).
pub struct LeaderParts {
    pub journal: WrapJournal,
    /// Closed while the stream does not acknowledge (see `RunnerConfig::write_gate`).
    pub write_gate: Arc<std::sync::atomic::AtomicBool>,
    pub cluster: Arc<otcd_host::cluster::ClusterStatus>,
    /// The standby's live desk over its journal, handed over at promotion; `None`: recover from the files.
    pub opened: Option<OpenedDesk>,
}

/// Binds the listener, then recovers the desk in `options.data_dir` (creating a new one if it is empty).
pub async fn start(options: &ServeOptions) -> Result<StartedDesk, ServerError> {
    start_with(options, None).await
}

/// [`start`], as the leader of a replicated desk when `leader` is given.
pub async fn start_with(options: &ServeOptions, mut leader: Option<LeaderParts>) -> Result<StartedDesk, ServerError> {
    // The port first: a busy port is found before a data directory is created or recovered.
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServerError::Listen { address: options.listen, source })?;
    let fix_listener = match &options.fix {
        Some(fix) => Some(
            tokio::net::TcpListener::bind(fix.listen)
                .await
                .map_err(|source| ServerError::Listen { address: fix.listen, source })?,
        ),
        None => None,
    };
    let fix_settings = options.fix.as_ref().map(|fix| otcd_fix::Settings {
        target_comp_id: fix.target_comp_id.clone(),
        connections_max: fix.connections_max,
        messages_per_second: fix.messages_per_second,
        ..otcd_fix::Settings::new(options.data_dir.join("fix"))
    });
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let opened = match leader.as_mut().and_then(|leader| leader.opened.take()) {
        Some(opened) => opened,
        None => open_store(options, clock.clone()).await?,
    };
    let reader = opened.journal_reader();
    let recovery = opened.recovery.clone();
    let metrics = Arc::new(Metrics::new());
    let master_key = Arc::new(opened.master_key);
    let keys = KeyRegistry::new(master_key.clone());
    opened.desk.keys().for_each(|key| keys.upsert(key));
    let initialized = opened.desk.is_initialized();
    let catalog = opened.desk.catalog().cloned().unwrap_or_else(Catalog::builtin);
    let tiers: Vec<_> = opened.desk.tiers().map(|tier| (tier.name.clone(), tier.rate_limits)).collect();
    let client_tiers: Vec<_> =
        opened.desk.clients().map(|client| (client.client_id.clone(), client.tier.clone())).collect();
    let (projection_sender, projection_receiver) = otcd_host::reports::channel();
    let events = EventHub::with_scope(Some(metrics.clone()), options.event_retention, event_scope(options));
    events.start_at(opened.replayed_events_floor_seq, opened.recovery.head_seq, opened.replayed_events);
    let config = RunnerConfig {
        snapshot_every_records: options.snapshot_every_records,
        checkpoints: Some(CheckpointSettings {
            log: opened.checkpoints,
            every_records: options.checkpoint_every_records,
            every: options.checkpoint_every,
        }),
        projection: options.reports.then_some(projection_sender),
        engine_prefault_mib: options.engine_prefault_mib,
        clock: clock.clone(),
        events: Some(events.clone()),
        write_gate: leader.as_ref().map(|leader| leader.write_gate.clone()),
    };
    let (journal, cluster): (Box<dyn otcd_journal::Journal>, _) = match leader {
        Some(leader) => ((leader.journal)(opened.journal, &metrics), Some(leader.cluster)),
        None => (Box::new(opened.journal), None),
    };
    let runner = Runner::start(opened.desk, journal, opened.snapshots, config, metrics.clone());
    let engine = runner.handle();
    // The projector thread ends when the journal thread drops its sender (at shutdown).
    let reports = if options.reports {
        ReportsService::start(reader, options.surveillance.clone(), projection_receiver, engine.clone()).0
    } else {
        ReportsService::disabled()
    };
    if !initialized {
        initialize_desk(&engine, &keys, &master_key, options, &catalog).await?;
    }
    let venues = load_venues(&options.market, &catalog)?;
    let mut max_age_ms_by_venue = options.max_book_age_ms_by_venue.clone();
    if let Some(venues) = &venues {
        // The venues file's own max ages, unless the --config file names the venue too.
        for (venue, age) in otcd_venues::max_book_ages(venues) {
            max_age_ms_by_venue.entry(venue).or_insert(age);
        }
    }
    let hub_config = otcd_market::HubConfig { default_max_age_ms: options.max_book_age_ms, max_age_ms_by_venue };
    let market = otcd_market::MarketHub::new(&catalog, hub_config);
    let (market_stop, stop_receiver) = tokio::sync::watch::channel(false);
    start_market_source(&options.market, venues.as_ref(), &catalog, &market, stop_receiver)?;
    let sanctions_dir = options.sanctions_dir.clone();
    let screening =
        tokio::task::spawn_blocking(move || otcd_services::screening::ScreeningService::load(sanctions_dir))
            .await
            .expect("loading the lists does not panic")
            .map_err(|error| ServerError::Sanctions(error.to_string()))?;
    let rails = otcd_rails_sim::open(&options.data_dir, options.simulation)?;
    let paper = open_paper_venues(options, venues.as_ref(), &catalog, &market, &clock)?;
    let execution = open_venue_execution(paper, venues.as_ref(), &catalog)?;
    let desk = Arc::new(DeskServices {
        engine,
        catalog,
        clock,
        market,
        keys,
        screening,
        reports,
        events,
        rails,
        execution: Some(execution),
        settings: options.services.clone(),
        internal: Internal::new(&metrics),
        metrics,
    });
    let (webhook_stop, webhook_stop_receiver) = tokio::sync::watch::channel(false);
    let render: otcd_webhooks::Render = Arc::new(otcd_http::stream::event_data);
    let webhooks =
        otcd_webhooks::start(desk.clone(), render, otcd_webhooks::Settings::default(), webhook_stop_receiver);
    let descriptors = crate::limits::raise_open_files_limit();
    let connection_limits = options.connection_limits.sized_under(descriptors, crate::limits::DESCRIPTORS_RESERVED);
    tracing::info!(
        descriptors,
        connections_max = connection_limits.connections_max,
        connections_per_address_max = connection_limits.connections_per_address_max,
        websockets_max = connection_limits.websockets_max,
        "connection caps"
    );
    let mut context = AppContext::new(
        desk,
        options.data_dir.clone(),
        options.rate_limits,
        &opened.recent_signatures,
        options.auth_failure_interval_ms,
        connection_limits,
    );
    context.webhooks = Some(webhooks);
    context.cluster = cluster;
    context.webhook_policy = otcd_services::webhooks::UrlPolicy {
        allow_private: options.webhooks_allow_private,
        own_listener: listener.local_addr().ok(),
    };
    tiers.iter().for_each(|(name, limits)| context.rate_limits.set_tier(name, *limits));
    client_tiers.iter().for_each(|(client_id, tier)| context.rate_limits.set_client_tier(client_id, tier));
    Ok(StartedDesk {
        runner,
        sanctions_refresh: options.sanctions_refresh.clone(),
        context: Arc::new(context),
        listener,
        fix_listener,
        fix_settings,
        event_stream: options.event_stream.clone(),
        auth_failure_interval_ms: options.auth_failure_interval_ms,
        market_stop,
        webhook_stop,
        recovery,
        _lock: opened.lock,
    })
}

/// The events the engine derives for the feed: desk-level ledger transactions only when the event stream,
/// their one consumer, is configured (otherwise they would cost a clone per posting and take resume-ring slots).
pub(crate) fn event_scope(options: &ServeOptions) -> otcd_core::engine::EventScope {
    match options.event_stream {
        Some(_) => otcd_core::engine::EventScope::ALL,
        None => otcd_core::engine::EventScope::CLIENT_VISIBLE,
    }
}

/// Opens the data directory on a blocking thread and logs what recovery did.
pub(crate) async fn open_store(options: &ServeOptions, clock: Arc<dyn Clock>) -> Result<OpenedDesk, ServerError> {
    let data_dir = options.data_dir.clone();
    let events_max = options.event_retention.events_max;
    let checks = store::StartChecks {
        events_max,
        event_scope: event_scope(options),
        rollback: if options.accept_rollback { store::Rollback::Accept } else { store::Rollback::Refuse },
        witness: options.checkpoint_witness_file.clone(),
    };
    let opened = tokio::task::spawn_blocking(move || store::open_checked(&data_dir, clock.as_ref(), &checks))
        .await
        .expect("recovery does not panic")?;
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
    Ok(opened)
}

/// The paper venues the hedger trades on: the simulated venues (`--market sim`), `manual`, or the venues of the
/// venues file with their taker fees (`--market venues`); every one funded (`PaperVenue::funded`), or empty
/// when `paper_opening_balances` is off (the demo funds them through the ledger's venue transfers).
fn open_paper_venues(
    options: &ServeOptions,
    venues: Option<&otcd_venues::config::VenuesConfig>,
    catalog: &Catalog,
    market: &Arc<otcd_market::MarketHub>,
    clock: &Arc<dyn otcd_services::ports::Clock>,
) -> Result<Arc<dyn otcd_services::ports::VenueExecution>, ServerError> {
    use otcd_rails_sim::paper::{PaperVenue, PaperVenues};
    let venue = |name: &str, fee| match options.paper.opening_balances {
        true => PaperVenue::funded(name, fee, catalog),
        false => PaperVenue::empty(name, fee),
    };
    // Simulated taker fees (bps × 100): different enough that routing by all-in price shows.
    let mut paper: Vec<PaperVenue> =
        otcd_market::SIM_VENUES.iter().zip([1_000, 500, 2_000]).map(|(name, fee)| venue(name, fee)).collect();
    paper.push(venue(otcd_market::MANUAL_VENUE, 0));
    for configured in venues.map(|config| config.venues.as_slice()).unwrap_or_default() {
        let fee = otcd_core::decimal::parse_scaled(&configured.fee_bps, 2).unwrap_or(0);
        paper.push(venue(&configured.name, fee));
    }
    let opened = PaperVenues::open(
        market.clone(),
        catalog.clone(),
        clock.clone(),
        options.paper,
        paper,
        Some(&options.data_dir),
    )
    .map_err(|error| ServerError::Paper(error.to_string()))?;
    Ok(Arc::new(opened))
}

/// The hedger's order entry: each venue of the venues file with trading credentials (`kind = "binance"` with
/// `api_key_env`) trades at the exchange through its adapter; every other venue stays on `paper`.
fn open_venue_execution(
    paper: Arc<dyn otcd_services::ports::VenueExecution>,
    venues: Option<&otcd_venues::config::VenuesConfig>,
    catalog: &Catalog,
) -> Result<Arc<dyn otcd_services::ports::VenueExecution>, ServerError> {
    let trading: Vec<_> =
        venues.map(|config| config.venues.iter().filter(|venue| venue.trading.is_some()).collect()).unwrap_or_default();
    if trading.is_empty() {
        return Ok(paper);
    }
    let mut composite = otcd_execution::ByVenue::new(paper);
    for venue in trading {
        let adapter =
            otcd_execution::binance::BinanceSpot::from_config(venue, catalog, tokio::runtime::Handle::current())
                .map_err(|error| ServerError::VenueTrading { venue: venue.name.clone(), message: error.to_string() })?;
        tracing::info!(venue = %venue.name, url = ?venue.rest_url, "binance order entry started");
        composite = composite.with(&venue.name, Arc::new(adapter));
    }
    Ok(Arc::new(composite))
}

/// Reads and validates `--venues-config` against the desk's catalog (with `--market venues`).
fn load_venues(
    source: &MarketSource,
    catalog: &Catalog,
) -> Result<Option<otcd_venues::config::VenuesConfig>, ServerError> {
    let MarketSource::Venues { path } = source else { return Ok(None) };
    let error = |message: String| ServerError::Venues { path: path.clone(), message };
    let metadata = std::fs::metadata(path).map_err(|source| error(source.to_string()))?;
    if metadata.len() > otcd_venues::config::CONFIG_BYTES_MAX as u64 {
        return Err(error(format!("larger than {} bytes", otcd_venues::config::CONFIG_BYTES_MAX)));
    }
    let text = std::fs::read_to_string(path).map_err(|source| error(source.to_string()))?;
    otcd_venues::config::VenuesConfig::parse(&text, catalog).map(Some).map_err(|source| error(source.to_string()))
}

fn start_market_source(
    source: &MarketSource,
    venues: Option<&otcd_venues::config::VenuesConfig>,
    catalog: &Catalog,
    hub: &Arc<otcd_market::MarketHub>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServerError> {
    use otcd_market::MarketDataSource;
    let source: Box<dyn MarketDataSource> = match source {
        MarketSource::Manual => return Ok(()),
        MarketSource::Venues { .. } => {
            for venue in venues.map(|config| config.venues.as_slice()).unwrap_or_default() {
                let source = otcd_venues::source(venue, catalog);
                tracing::info!(venue = %venue.name, kind = venue.kind.as_str(), url = %venue.ws_url, "venue connector started");
                drop(source.spawn(hub.clone(), stop.clone()));
            }
            return Ok(());
        }
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
