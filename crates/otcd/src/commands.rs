//! What each subcommand does.

use crate::cli::{CliCommand, MarketMode, ServeArgs};
use crate::server::{self, MarketSource, ServeOptions};
use anyhow::{bail, Context};
use otcd_host::store::journal_dir;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub async fn run_server(command: CliCommand) -> anyhow::Result<()> {
    match command {
        CliCommand::Serve(arguments) => serve(arguments).await,
        CliCommand::Demo { data_dir, listen, no_client_flow, client_flow_interval_ms, client_flow_trades } => {
            let flow = (!no_client_flow).then(|| crate::demo_flow::FlowSettings {
                interval: std::time::Duration::from_millis(client_flow_interval_ms),
                trades_max: client_flow_trades,
            });
            demo(&data_dir, listen, flow).await
        }
        _ => unreachable!("offline commands run without a runtime"),
    }
}

async fn serve(arguments: ServeArgs) -> anyhow::Result<()> {
    if let Some(directory) = &arguments.sanctions_dir {
        anyhow::ensure!(directory.is_dir(), "--sanctions-dir {} is not a directory", directory.display());
    }
    let mut options = ServeOptions::new(arguments.data_dir.clone(), arguments.listen);
    options.sanctions_dir = arguments.sanctions_dir.clone();
    options.accept_rollback = arguments.accept_rollback;
    if arguments.venues_config.is_some() && arguments.market != MarketMode::Venues {
        bail!("--venues-config is only used with --market venues");
    }
    options.market = match arguments.market {
        MarketMode::Sim => MarketSource::Sim { seed: arguments.market_seed, interval_ms: 100 },
        MarketMode::Manual => MarketSource::Manual,
        MarketMode::Replay => {
            let path = arguments.market_file.context("--market replay needs --market-file FILE")?;
            MarketSource::Replay { path, pace: true }
        }
        MarketMode::Venues => {
            let path = arguments.venues_config.context("--market venues needs --venues-config FILE")?;
            MarketSource::Venues { path }
        }
    };
    options.fix = arguments.fix_listen.map(server::FixOptions::new);
    if let Some(path) = &arguments.config {
        apply_config(&mut options, path)?;
    }
    if let Some(witness) = arguments.checkpoint_witness_file {
        options.checkpoint_witness_file = Some(witness);
    }
    if !arguments.events_nats.is_empty() {
        let stream = options.event_stream.get_or_insert_with(otcd_eventstream::Settings::default);
        stream.servers = arguments.events_nats;
    }
    if let Some(stream) = &options.event_stream {
        stream.validate()?;
    }
    // An override for hosts that start many short-lived desks (the test suites set 0).
    if let Ok(text) = std::env::var("OTCD_ENGINE_PREFAULT_MIB") {
        let mib: usize = text.parse().context("OTCD_ENGINE_PREFAULT_MIB must be a number of MiB")?;
        anyhow::ensure!(mib <= 65_536, "OTCD_ENGINE_PREFAULT_MIB must be at most 65536");
        options.engine_prefault_mib = mib;
    }
    let node = NodeArguments {
        servers: &arguments.replication,
        node_id: &arguments.node_id,
        advertise: &arguments.advertise,
        standby_reads: arguments.standby_reads,
    };
    let replication = replication_settings(node, &options)?;
    // Installed before anything starts: a SIGTERM at any moment after this is a graceful stop.
    let shutdown = shutdown_signal()?;
    if let Some(settings) = replication {
        return crate::replicated::serve(options, settings, shutdown).await;
    }
    let desk = server::start(&options).await?;
    if let Some(address) = desk.fix_address() {
        tracing::info!(fix_address = %address, "otcd FIX gateway listening");
    }
    tracing::info!(address = %desk.local_address(), "otcd listening");
    desk.serve(shutdown).await?;
    Ok(())
}

/// `otcd sanctions fetch`: downloads, checks and installs a list set; prints what it installed.
pub fn sanctions_fetch(out: &Path, sources: Option<&Path>) -> anyhow::Result<()> {
    let sources = crate::sanctions_fetch::Sources::load(sources)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let manifest = runtime.block_on(crate::sanctions_fetch::fetch(out, &sources))?;
    for file in &manifest.files {
        println!("{:<24} {:>10} bytes {:>7} entries  {}", file.path, file.size_bytes, file.entries, file.source_url);
    }
    println!("installed in {} (lists version {})", out.display(), manifest.lists_version);
    Ok(())
}

/// The replication options of the command line.
struct NodeArguments<'a> {
    servers: &'a Option<String>,
    node_id: &'a Option<String>,
    advertise: &'a Option<String>,
    standby_reads: bool,
}

/// `--replication`, `--node-id`, `--advertise`, `--standby-reads` over the `replication*` config keys (the
/// command line wins).
fn replication_settings(
    node: NodeArguments<'_>,
    options: &ServeOptions,
) -> anyhow::Result<Option<otcd_replication::ReplicationSettings>> {
    let NodeArguments { servers, node_id, advertise, standby_reads } = node;
    let config = &options.replication;
    let Some(servers) = servers.clone().or_else(|| config.servers.clone()) else {
        anyhow::ensure!(node_id.is_none(), "--node-id is only used with --replication");
        anyhow::ensure!(!standby_reads, "--standby-reads is only used with --replication");
        return Ok(None);
    };
    let servers: Vec<String> =
        servers.split(',').map(str::trim).filter(|server| !server.is_empty()).map(str::to_owned).collect();
    let node_id = node_id.clone().or_else(|| config.node_id.clone()).context("--replication needs --node-id NAME")?;
    let advertise =
        advertise.clone().or_else(|| config.advertise.clone()).unwrap_or_else(|| format!("http://{}", options.listen));
    let mut settings = otcd_replication::ReplicationSettings::new(servers, node_id, advertise);
    if let Some(stream) = &config.stream {
        settings.stream = stream.clone();
    }
    if let Some(replicas) = config.replicas {
        settings.replicas = replicas;
    }
    if let Some(ms) = config.lease_ms {
        settings.lease = std::time::Duration::from_millis(ms);
    }
    if let Some(ms) = config.renew_ms {
        settings.renew_every = std::time::Duration::from_millis(ms);
    }
    if let Some(ms) = config.ack_timeout_ms {
        anyhow::ensure!((100..=60_000).contains(&ms), "replication_ack_timeout_ms must be 100 to 60000");
        settings.ack_timeout = std::time::Duration::from_millis(ms);
    }
    settings.standby_reads = standby_reads || config.standby_reads.unwrap_or(false);
    settings.check().map_err(anyhow::Error::msg)?;
    Ok(Some(settings))
}

/// `--config FILE`: TOML settings beyond the command line.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Journal records between snapshots (default 500000).
    snapshot_every_records: Option<u64>,
    /// MiB of memory the engine touches at start, so history growth does not page-fault (default 512, 0 to 65536).
    engine_prefault_mib: Option<usize>,
    /// Venue books older than this are not used for firm quotes (default 2000).
    max_book_age_ms: Option<i64>,
    /// Per-venue overrides, e.g. `manual = 10000`.
    max_book_age_ms_by_venue: Option<std::collections::HashMap<String, i64>>,
    /// How long a firm quote stays executable (default 5000, 100 to 60000).
    quote_validity_ms: Option<i64>,
    /// Price instruments without a fresh book of their own through their USD legs (default true).
    cross_pricing: Option<bool>,
    /// Requests per second of one class from one source address (default 20000).
    rate_limit_per_ip_per_second: Option<u32>,
    /// Requests per second of one class from one desk (operator) key (default 10000).
    rate_limit_desk_key_per_second: Option<u32>,
    /// Failed authentications are journaled as one summary record per interval of this many ms (default 60000,
    /// 100 to 3600000).
    auth_failure_interval_ms: Option<u64>,
    /// Open connections in all (default 10000; sized under the open-files limit at start).
    connections_max: Option<usize>,
    /// Open connections from one source address (default 256).
    connections_per_address_max: Option<usize>,
    /// Open WebSocket streams in all (default 5000).
    websockets_max: Option<usize>,
    /// ms from a connection's start or its previous response to the end of the next request's headers; also
    /// ends idle keep-alive connections (default 10000, 100 to 600000).
    header_read_timeout_ms: Option<u64>,
    /// ms a connection (WebSockets included) may move no byte before it is closed (default 60000, 1000 to 3600000).
    idle_timeout_ms: Option<u64>,
    /// ms to receive a request's body (default 10000, 100 to 600000).
    body_read_timeout_ms: Option<u64>,
    /// Simulated custodian: ms from submission to confirmation of a crypto payout (default 1000).
    settlement_confirm_after_ms: Option<i64>,
    /// Simulated bank: ms from submission to confirmation of a fiat payout (default 2000).
    settlement_bank_confirm_after_ms: Option<i64>,
    /// Percent of payouts the simulated rails fail or return (default 0).
    settlement_failure_percent: Option<u8>,
    /// Paper venues (hedging): ms from placing an order to its execution against the venue's book (default 20).
    paper_latency_ms: Option<i64>,
    /// Percent of paper venue orders refused (default 0).
    paper_reject_percent: Option<u8>,
    /// Percent of paper venue orders taken but answered with a timeout (default 0).
    paper_timeout_percent: Option<u8>,
    /// Fault injection for tests: abort the process right after the paper venue takes its first order.
    paper_crash_after_send: Option<bool>,
    /// Paper venues open with 1,000 of each crypto and 100,000,000 of each fiat the ledger does not know of
    /// (default true); false: they open empty and hold what the desk transfers to them.
    paper_opening_balances: Option<bool>,
    /// How often a net settlement cycle runs for credit clients, ms (default 3600000; 0 = only on request).
    net_settlement_every_ms: Option<i64>,
    /// How often the ledger is reconciled with the rails' books and breaks logged, ms (default 60000; 0 = only
    /// on request at `GET /v1/admin/reconciliation`).
    reconcile_every_ms: Option<i64>,
    /// Journal records between two signed checkpoints (default 1000).
    checkpoint_every_records: Option<u64>,
    /// Longest time, ms, a durable record waits for a signed checkpoint (default 100).
    checkpoint_every_ms: Option<u64>,
    /// A file outside the data directory (another disk) that receives a copy of every signed checkpoint and is
    /// checked at start (docs/audit.md). Relative paths are read from the config file's directory.
    checkpoint_witness_file: Option<std::path::PathBuf>,
    /// Surveillance thresholds (docs/reports.md); every key optional.
    surveillance: Option<otcd_reports::SurveillanceConfig>,
    /// Run the reports projection in the desk (default true); false: reports only from `otcd report`.
    reports: Option<bool>,
    /// Recent events kept for `/v1/stream` resumes (default 100000; 0: no resume, every resume gets
    /// `resync_required`).
    stream_resume_events: Option<usize>,
    /// Estimated bytes those events may hold (default 67108864, 64 MiB).
    stream_resume_bytes: Option<usize>,
    /// Webhook URLs may resolve to loopback and private addresses (default false; tests and demos).
    webhooks_allow_private: Option<bool>,
    /// Fetch the sanctions lists into --sanctions-dir every this many hours, then reload and re-screen
    /// (1 to 720; default: never).
    sanctions_refresh_hours: Option<u64>,
    /// The same in seconds (1 to 2592000), for tests and short schedules; wins over the hours.
    sanctions_refresh_seconds: Option<u64>,
    /// The `--sources` file of `otcd sanctions fetch` for the scheduled update (default: the official URLs).
    sanctions_sources: Option<std::path::PathBuf>,
    /// Start the FIX 4.4 acceptor on this address (like `--fix-listen`, which wins).
    fix_listen: Option<std::net::SocketAddr>,
    /// TargetCompID of the desk's FIX sessions (default OTCD).
    fix_target_comp_id: Option<String>,
    /// FIX connections at once (default 1000, 1 to 100000).
    fix_connections_max: Option<usize>,
    /// Messages per second one FIX session may send before it is logged out (default 100, 1 to 100000).
    fix_messages_per_second: Option<u32>,
    /// Publish the desk's events to NATS JetStream at these servers (docs/events.md); `--events-nats` wins.
    events_nats: Option<Vec<String>>,
    /// Subjects are `<events_subject_prefix>.<type>` (default `otcd.events`).
    events_subject_prefix: Option<String>,
    /// The JetStream stream's name (default `OTCD_EVENTS`), created when missing.
    events_stream: Option<String>,
    /// Replicas of the stream when the desk creates it (default 1; 3 on a three-server cluster).
    events_stream_replicas: Option<usize>,
    /// NATS servers of a replicated desk, `nats://HOST:PORT,nats://...` (like `--replication`, which wins).
    replication: Option<String>,
    /// This node's name in its replicated desk (like `--node-id`).
    node_id: Option<String>,
    /// This node's HTTP base URL for clients (like `--advertise`).
    advertise: Option<String>,
    /// The JetStream stream of the desk's records (default OTCD_JOURNAL).
    replication_stream: Option<String>,
    /// Replicas of the stream and of the lease bucket (default 3, 1 to 5).
    replication_replicas: Option<usize>,
    /// ms a lease entry lives after its last renewal (default 2000).
    replication_lease_ms: Option<u64>,
    /// ms between two lease renewals (default 400; at most a third of the lease).
    replication_renew_ms: Option<u64>,
    /// ms one publish waits for JetStream's acknowledgement before it is retried (default 1000).
    replication_ack_timeout_ms: Option<u64>,
    /// Standbys answer the reads that are safe to serve stale (like `--standby-reads`; default false).
    replication_standby_reads: Option<bool>,
}

fn apply_connection_limits(
    limits: &mut otcd_http::connections::ConnectionLimits,
    config: &ConfigFile,
) -> anyhow::Result<()> {
    let caps = [
        ("connections_max", config.connections_max, &mut limits.connections_max),
        ("connections_per_address_max", config.connections_per_address_max, &mut limits.connections_per_address_max),
        ("websockets_max", config.websockets_max, &mut limits.websockets_max),
    ];
    for (name, value, limit) in caps {
        if let Some(value) = value {
            anyhow::ensure!((1..=1_000_000).contains(&value), "{name} must be between 1 and 1000000");
            *limit = value;
        }
    }
    let timeouts = [
        ("header_read_timeout_ms", config.header_read_timeout_ms, 100..=600_000, &mut limits.header_read_timeout),
        ("idle_timeout_ms", config.idle_timeout_ms, 1_000..=3_600_000, &mut limits.idle_timeout),
        ("body_read_timeout_ms", config.body_read_timeout_ms, 100..=600_000, &mut limits.body_read_timeout),
    ];
    for (name, value, bounds, timeout) in timeouts {
        if let Some(value) = value {
            anyhow::ensure!(bounds.contains(&value), "{name} must be between {} and {}", bounds.start(), bounds.end());
            *timeout = std::time::Duration::from_millis(value);
        }
    }
    Ok(())
}

/// `sanctions_refresh_*` and `sanctions_sources`: the scheduled list update (needs --sanctions-dir).
fn apply_sanctions_refresh(options: &mut ServeOptions, config: &ConfigFile) -> anyhow::Result<()> {
    let every = match (config.sanctions_refresh_seconds, config.sanctions_refresh_hours) {
        (Some(seconds), _) => {
            anyhow::ensure!((1..=2_592_000).contains(&seconds), "sanctions_refresh_seconds must be 1 to 2592000");
            std::time::Duration::from_secs(seconds)
        }
        (None, Some(hours)) => {
            anyhow::ensure!((1..=720).contains(&hours), "sanctions_refresh_hours must be 1 to 720");
            std::time::Duration::from_secs(hours * 3600)
        }
        (None, None) => {
            anyhow::ensure!(config.sanctions_sources.is_none(), "sanctions_sources needs sanctions_refresh_hours");
            return Ok(());
        }
    };
    let Some(directory) = options.sanctions_dir.clone() else {
        bail!("sanctions_refresh_hours needs --sanctions-dir (the directory the update replaces)");
    };
    let sources = crate::sanctions_fetch::Sources::load(config.sanctions_sources.as_deref())?;
    options.sanctions_refresh = Some(crate::sanctions_refresh::Schedule { directory, sources, every });
    Ok(())
}

/// The `events_*` keys: without `events_nats` (or `--events-nats`) nothing is published.
fn apply_event_stream(options: &mut ServeOptions, config: &ConfigFile) {
    let configured = config.events_nats.is_some()
        || config.events_subject_prefix.is_some()
        || config.events_stream.is_some()
        || config.events_stream_replicas.is_some();
    if !configured {
        return;
    }
    let stream = options.event_stream.get_or_insert_with(otcd_eventstream::Settings::default);
    if let Some(servers) = &config.events_nats {
        stream.servers = servers.clone();
    }
    if let Some(prefix) = &config.events_subject_prefix {
        stream.subject_prefix = prefix.clone();
    }
    if let Some(name) = &config.events_stream {
        stream.stream_name = name.clone();
    }
    if let Some(replicas) = config.events_stream_replicas {
        stream.replicas = replicas;
    }
}

/// The `fix_*` keys: without `fix_listen` (or `--fix-listen`, which wins) the gateway does not run.
fn apply_fix(options: &mut ServeOptions, config: &ConfigFile) -> anyhow::Result<()> {
    let Some(listen) = options.fix.as_ref().map(|fix| fix.listen).or(config.fix_listen) else {
        return Ok(());
    };
    let mut fix = server::FixOptions::new(listen);
    if let Some(target) = &config.fix_target_comp_id {
        let valid = !target.is_empty() && target.len() <= 32 && target.bytes().all(|byte| byte.is_ascii_graphic());
        anyhow::ensure!(valid, "fix_target_comp_id must be 1 to 32 printable ASCII characters");
        fix.target_comp_id = target.clone();
    }
    if let Some(connections) = config.fix_connections_max {
        anyhow::ensure!((1..=100_000).contains(&connections), "fix_connections_max must be 1 to 100000");
        fix.connections_max = connections;
    }
    if let Some(rate) = config.fix_messages_per_second {
        anyhow::ensure!((1..=100_000).contains(&rate), "fix_messages_per_second must be 1 to 100000");
        fix.messages_per_second = rate;
    }
    options.fix = Some(fix);
    Ok(())
}

fn apply_config(options: &mut ServeOptions, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: ConfigFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    apply_sanctions_refresh(options, &config)?;
    apply_connection_limits(&mut options.connection_limits, &config)?;
    apply_fix(options, &config)?;
    apply_event_stream(options, &config);
    options.replication = server::ReplicationConfig {
        servers: config.replication.clone(),
        node_id: config.node_id.clone(),
        advertise: config.advertise.clone(),
        stream: config.replication_stream.clone(),
        replicas: config.replication_replicas,
        lease_ms: config.replication_lease_ms,
        renew_ms: config.replication_renew_ms,
        ack_timeout_ms: config.replication_ack_timeout_ms,
        standby_reads: config.replication_standby_reads,
    };
    let rails = &mut options.simulation;
    rails.confirm_after_ms = config.settlement_confirm_after_ms.unwrap_or(rails.confirm_after_ms).clamp(0, 86_400_000);
    rails.bank_confirm_after_ms =
        config.settlement_bank_confirm_after_ms.unwrap_or(rails.bank_confirm_after_ms).clamp(0, 86_400_000);
    rails.failure_percent = config.settlement_failure_percent.unwrap_or(rails.failure_percent).min(100);
    let paper = &mut options.paper;
    paper.latency_ms = config.paper_latency_ms.unwrap_or(paper.latency_ms).clamp(0, 60_000);
    paper.reject_percent = config.paper_reject_percent.unwrap_or(paper.reject_percent).min(100);
    paper.crash_after_send = config.paper_crash_after_send.unwrap_or(paper.crash_after_send);
    paper.opening_balances = config.paper_opening_balances.unwrap_or(paper.opening_balances);
    paper.timeout_percent =
        config.paper_timeout_percent.unwrap_or(paper.timeout_percent).min(100 - paper.reject_percent);
    let workers = &mut options.services;
    workers.net_settlement_every_ms =
        config.net_settlement_every_ms.unwrap_or(workers.net_settlement_every_ms).clamp(0, 30 * 86_400_000);
    workers.reconcile_every_ms = config.reconcile_every_ms.unwrap_or(workers.reconcile_every_ms).clamp(0, 86_400_000);
    if let Some(records) = config.snapshot_every_records {
        options.snapshot_every_records = records.max(1);
    }
    if let Some(mib) = config.engine_prefault_mib {
        anyhow::ensure!(mib <= 65_536, "engine_prefault_mib must be at most 65536");
        options.engine_prefault_mib = mib;
    }
    if let Some(age) = config.max_book_age_ms {
        anyhow::ensure!(age > 0, "max_book_age_ms must be positive");
        options.max_book_age_ms = age;
    }
    options.max_book_age_ms_by_venue = config.max_book_age_ms_by_venue.unwrap_or_default();
    options.services.cross_pricing = config.cross_pricing.unwrap_or(options.services.cross_pricing);
    if let Some(per_second) = config.rate_limit_per_ip_per_second {
        anyhow::ensure!(per_second > 0, "rate_limit_per_ip_per_second must be positive");
        options.rate_limits.per_ip_per_second = per_second;
    }
    if let Some(per_second) = config.rate_limit_desk_key_per_second {
        anyhow::ensure!(per_second > 0, "rate_limit_desk_key_per_second must be positive");
        options.rate_limits.desk_key_per_second = per_second;
    }
    if let Some(interval_ms) = config.auth_failure_interval_ms {
        use otcd_http::auth_failures::{AUTH_FAILURE_INTERVAL_MS_MAX, AUTH_FAILURE_INTERVAL_MS_MIN};
        anyhow::ensure!(
            (AUTH_FAILURE_INTERVAL_MS_MIN..=AUTH_FAILURE_INTERVAL_MS_MAX).contains(&interval_ms),
            "auth_failure_interval_ms must be between 100 and 3600000"
        );
        options.auth_failure_interval_ms = interval_ms;
    }
    if let Some(surveillance) = config.surveillance {
        options.surveillance = surveillance;
    }
    options.reports = config.reports.unwrap_or(options.reports);
    options.webhooks_allow_private = config.webhooks_allow_private.unwrap_or(options.webhooks_allow_private);
    if let Some(events) = config.stream_resume_events {
        anyhow::ensure!(
            events <= otcd_host::events::RETAINED_EVENTS_MAX,
            "stream_resume_events must be at most {}",
            otcd_host::events::RETAINED_EVENTS_MAX
        );
        options.event_retention.events_max = events;
    }
    if let Some(bytes) = config.stream_resume_bytes {
        anyhow::ensure!(
            bytes <= otcd_host::events::RETAINED_BYTES_MAX,
            "stream_resume_bytes must be at most {}",
            otcd_host::events::RETAINED_BYTES_MAX
        );
        options.event_retention.bytes_max = bytes;
    }
    if let Some(records) = config.checkpoint_every_records {
        let records_max = otcd_journal::CHECKPOINT_EVERY_RECORDS_MAX;
        anyhow::ensure!(
            (1..=records_max).contains(&records),
            "checkpoint_every_records must be between 1 and {records_max}"
        );
        options.checkpoint_every_records = records;
    }
    if let Some(every_ms) = config.checkpoint_every_ms {
        anyhow::ensure!((10..=3_600_000).contains(&every_ms), "checkpoint_every_ms must be between 10 and 3600000");
        options.checkpoint_every = std::time::Duration::from_millis(every_ms);
    }
    if let Some(witness) = config.checkpoint_witness_file {
        let base = path.parent().unwrap_or(Path::new("."));
        options.checkpoint_witness_file = Some(base.join(witness));
    }
    if let Some(validity) = config.quote_validity_ms {
        let bounds =
            otcd_core::engine::quotes::QUOTE_VALIDITY_MS_MIN..=otcd_core::engine::quotes::QUOTE_VALIDITY_MS_MAX;
        anyhow::ensure!(bounds.contains(&validity), "quote_validity_ms must be between 100 and 60000");
        options.services.quote_validity_ms = validity;
    }
    Ok(())
}

async fn demo(
    data_dir: &Path,
    listen: std::net::SocketAddr,
    flow: Option<crate::demo_flow::FlowSettings>,
) -> anyhow::Result<()> {
    let mut options = ServeOptions::new(data_dir.to_owned(), listen);
    // The demo desk runs beside its user's own programs: a webhook receiver on localhost must be reachable.
    options.webhooks_allow_private = true;
    // The paper venues hold what the ledger says the desk transferred to them (docs/hedging.md).
    options.paper.opening_balances = false;
    let shutdown = shutdown_signal()?;
    let desk = server::start(&options).await?;
    let seeded = crate::demo::seed(&desk, data_dir).await?;
    let flow_client = crate::demo_flow::flow_client(data_dir);
    if let (Some(settings), Some(client_id)) = (flow, flow_client.clone()) {
        crate::demo_flow::spawn(desk.services().clone(), client_id, settings);
    }
    let address = desk.local_address();
    let clients_file = crate::demo::demo_clients_path(data_dir);
    let admin_file = otcd_host::store::admin_key_path(data_dir);
    println!();
    println!("  otcd demo desk is running at http://{address}");
    if !seeded.is_empty() {
        println!("  seeded {} sample clients with balances and API keys", seeded.len());
    }
    println!("  admin key:       {}", admin_file.display());
    println!("  client keys:     {}", clients_file.display());
    println!("  API contract:    http://{address}/openapi.json");
    let otcd = std::env::current_exe().map_or_else(|_| "otcd".to_owned(), |path| path.display().to_string());
    let keys = clients_file.display();
    println!("  balances: curl -s $({otcd} sign --key-file {keys} --client cl_00000001 /v1/balances) http://{address}/v1/balances");
    println!(
        "  prices:   curl -s $({otcd} sign --key-file {keys} --client cl_00000001 '/v1/prices/BTC-USD?quantity=1') 'http://{address}/v1/prices/BTC-USD?quantity=1'"
    );
    println!();
    println!("  web console:     http://{address}/  (sign in with key_id and secret from {})", admin_file.display());
    match (flow, flow_client) {
        (Some(settings), Some(_)) => println!(
            "  hedging:         BTC and ETH hedged on sim-alpha, sim-beta, sim-gamma; a simulated client trades every {} ms\n                   (--no-client-flow stops it; GET /v1/admin/hedging, the console's hedging panel)",
            settings.interval.as_millis()
        ),
        (None, Some(_)) => println!("  hedging:         BTC and ETH hedged on sim-alpha, sim-beta, sim-gamma (no simulated client flow)"),
        _ => println!("  hedging:         this demo directory predates the demo's hedging; start a new one to see it"),
    }
    match crate::demo::example_session_token(&desk, data_dir) {
        Some(token) => println!(
            "  client example:  http://{address}/ui/example.html#token={token}\n                   (web components as Aurora Capital GmbH; the link holds a 1-hour session token)"
        ),
        None => println!("  client example:  http://{address}/ui/example.html"),
    }
    println!();
    println!("  Ctrl-C stops the desk; its state stays in {}", data_dir.display());
    println!();
    desk.serve(shutdown).await?;
    Ok(())
}

pub fn verify(
    data_dir: &Path,
    public_key: Option<&str>,
    export: Option<&Path>,
    witness: Option<&Path>,
) -> anyhow::Result<()> {
    let public_key = public_key
        .map(otcd_host::audit::parse_public_key)
        .transpose()
        .map_err(|error| anyhow::anyhow!("--public-key: {error}"))?;
    if let Some(export) = export {
        return verify_export(export, public_key.as_ref());
    }
    let directory = journal_dir(data_dir);
    if !directory.is_dir() {
        bail!("{} holds no journal", data_dir.display());
    }
    let bar = crate::progress::journal(&directory, "verifying the journal");
    let verified =
        otcd_host::audit::verify_data_dir_observed(data_dir, public_key.as_ref(), &|bytes| bar.set_position(bytes));
    bar.finish_and_clear();
    match verified {
        Ok(report) => {
            let journal = &report.journal;
            println!(
                "journal intact: {} events, head {} (seq {})",
                journal.events,
                journal.head.hash_hex(),
                journal.head.seq
            );
            match &report.last_checkpoint {
                Some(last) => println!(
                    "checkpoints intact: {} signed checkpoints, the last (#{}) at seq {}; {} records after it are \
                     chained but not yet signed",
                    report.checkpoints, last.index, last.seq, report.unanchored_records
                ),
                None => println!("no signed checkpoints yet: {} records are chained but not signed", journal.events),
            }
            if journal.torn_tail_bytes > 0 {
                println!(
                    "note: {} bytes of a torn, never-acknowledged final record will be dropped on the next start",
                    journal.torn_tail_bytes
                );
            }
            if report.checkpoint_torn_bytes > 0 {
                println!(
                    "note: {} bytes of an interrupted final checkpoint line will be dropped on the next start",
                    report.checkpoint_torn_bytes
                );
            }
            match witness {
                Some(witness) => verify_witness(data_dir, public_key.as_ref(), witness),
                None => Ok(()),
            }
        }
        Err(error) => {
            let seq = error.seq().map_or_else(|| "unknown".to_owned(), |seq| seq.to_string());
            match error.checkpoint_index() {
                Some(index) => eprintln!("verification FAILED at checkpoint #{index} (seq {seq}): {error}"),
                None => eprintln!("journal verification FAILED at seq {seq}: {error}"),
            }
            std::process::exit(1);
        }
    }
}

/// The witness half of `otcd verify --witness`: exits non-zero when the data directory lacks a witnessed
/// checkpoint or holds another one.
fn verify_witness(
    data_dir: &Path,
    public_key: Option<&otcd_journal::VerifyingKey>,
    witness: &Path,
) -> anyhow::Result<()> {
    match otcd_host::audit::verify_witness(data_dir, public_key, witness) {
        Ok(report) => {
            let agreement = report.agreement;
            println!(
                "witness agrees: {} witnessed checkpoints (newest #{}) are in the data directory, identical; the \
                 witness lags it by {} checkpoints{}",
                agreement.witnessed,
                agreement.last_index,
                agreement.lagging,
                if report.missing > 0 {
                    format!(" and misses {} (failed writes)", report.missing)
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Err(error) => {
            eprintln!("verification FAILED against the witness {}: {error}", witness.display());
            std::process::exit(1);
        }
    }
}

fn verify_export(path: &Path, public_key: Option<&otcd_journal::VerifyingKey>) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    match otcd_journal::verify_export(std::io::BufReader::new(file), public_key) {
        Ok(report) => {
            println!(
                "export intact: {} records in the window (seq {}..={}), {} records in all, {} checkpoints signed by \
                 {}; the window's end is anchored by checkpoint #{} at seq {}; its start by {}",
                report.window_records,
                report.window_first_seq,
                report.window_last_seq,
                report.records,
                report.checkpoints,
                report.public_key_hex,
                report.anchor.0,
                report.anchor.1,
                report.start_anchor
            );
            if public_key.is_none() {
                println!(
                    "note: checked with the key the bundle names; pass --public-key to check against the key you trust"
                );
            }
            Ok(())
        }
        Err(error) => {
            eprintln!("export verification FAILED: {error}");
            std::process::exit(1);
        }
    }
}

pub fn audit_export(data_dir: &Path, from: &str, to: &str, out: &Path) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let (from, to) = (crate::inputs::time("from", from, now)?, crate::inputs::time("to", to, now)?);
    let parse = |field: &'static str, text: &str| {
        otcd_reports::render::parse_time(field, text).map_err(|error| anyhow::anyhow!("--{error}"))
    };
    let (from_ms, to_ms) = (parse("from", &from)?, parse("to", &to)?);
    anyhow::ensure!(to_ms > from_ms, "--to must be after --from");
    let window = otcd_journal::ExportWindow { from_ms, to_ms, from, to };
    let mut bundle = Vec::new();
    let bar = crate::progress::journal(&journal_dir(data_dir), "reading the journal");
    let exported = otcd_host::audit::export_data_dir_observed(
        data_dir,
        &window,
        otcd_journal::EXPORT_RECORDS_MAX,
        &mut bundle,
        &|bytes| bar.set_position(bytes),
    );
    bar.finish_and_clear();
    let summary = exported?;
    otcd_host::secrets::write_private_file(out, &bundle).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {}: {} records (window seq {}..={}), {} checkpoints, anchored at seq {}",
        out.display(),
        summary.records,
        summary.window_first_seq,
        summary.window_last_seq,
        summary.checkpoints,
        summary.last_seq
    );
    Ok(())
}

#[derive(serde::Deserialize)]
struct KeyFileEntry {
    key_id: String,
    secret: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

pub fn sign(key_file: &Path, client: Option<&str>, method: &str, path: &str, body: &str) -> anyhow::Result<()> {
    use hmac::Mac;
    let (method, path) = (crate::inputs::method(method)?, crate::inputs::path(path)?);
    let text = std::fs::read_to_string(key_file).with_context(|| format!("reading {}", key_file.display()))?;
    let entry: KeyFileEntry = match serde_json::from_str::<Vec<KeyFileEntry>>(&text) {
        Ok(entries) => {
            let wanted = client.context("this key file lists several clients: pass --client CLIENT_ID")?;
            entries
                .into_iter()
                .find(|entry| entry.client_id.as_deref() == Some(wanted) || entry.name.as_deref() == Some(wanted))
                .with_context(|| format!("no client {wanted} in {}", key_file.display()))?
        }
        Err(_) => serde_json::from_str(&text).context("a key file holds {\"key_id\", \"secret\"}")?,
    };
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis().to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(entry.secret.as_bytes())?;
    mac.update(format!("{timestamp}\n{method}\n{path}\n{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let mut arguments =
        format!("-X {method} -H OTC-KEY:{} -H OTC-TIMESTAMP:{timestamp} -H OTC-SIGNATURE:{signature}", entry.key_id);
    if !body.is_empty() {
        arguments.push_str(" -H Content-Type:application/json");
    }
    println!("{arguments}");
    Ok(())
}

/// Registers SIGINT and SIGTERM handlers now (not on first poll) and resolves when either arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutdown requested: finishing in-flight requests and flushing the journal");
    })
}

/// `otcd report`: rebuilds the projection from the journal (read-only; a running desk may be appending, only
/// records up to the end of the files are read) and renders one report.
pub fn report(arguments: crate::cli::ReportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let kind = otcd_reports::ReportKind::parse(&arguments.report).with_context(|| {
        format!(
            "unknown report {:?}: trades, positions, volume, revenue, statement, settlement, kyc, screening or alerts",
            arguments.report
        )
    })?;
    let data_dir = crate::inputs::data_dir(arguments.data_dir.clone())?;
    let mut options = ServeOptions::new(data_dir.clone(), "127.0.0.1:0".parse().expect("valid address"));
    if let Some(path) = &arguments.config {
        apply_config(&mut options, path)?;
    }
    let directory = journal_dir(&data_dir);
    anyhow::ensure!(directory.is_dir(), "{} holds no journal", data_dir.display());
    let now = time::OffsetDateTime::now_utc();
    let friendly = |flag, text: Option<String>| text.map(|text| crate::inputs::time(flag, &text, now)).transpose();
    let (from, to) = (friendly("from", arguments.from)?, friendly("to", arguments.to)?);
    let mut projection = otcd_reports::Projection::new(options.surveillance);
    let bar = crate::progress::journal(&directory, "reading the journal");
    let read = otcd_journal::read_records_observed(
        &directory,
        0,
        u64::MAX,
        |seq, payload| projection.apply_payload(seq, payload).map_err(|error| error.to_string()),
        &|bytes| bar.set_position(bytes),
    );
    bar.finish_and_clear();
    read.context("reading the journal")?;
    let csv = arguments.format == "csv";
    let mut params = otcd_reports::ReportParams {
        client_id: arguments.client_id,
        instrument: arguments.instrument,
        asset: arguments.asset,
        side: arguments.side,
        status: arguments.status,
        kind: arguments.kind,
        from,
        to,
        limit: arguments.limit,
        cursor: arguments.cursor,
        format: Some(arguments.format),
    };
    let mut output: Box<dyn Write> = match &arguments.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let every_row = csv && arguments.limit.is_none();
    let mut first = true;
    loop {
        let rendered = otcd_reports::render(&projection, kind, &params).map_err(|error| anyhow::anyhow!("{error}"))?;
        let body =
            if first { rendered.body.as_str() } else { rendered.body.split_once("\r\n").map_or("", |(_, rows)| rows) };
        output.write_all(body.as_bytes())?;
        first = false;
        match rendered.next_cursor {
            Some(cursor) if every_row => params.cursor = Some(cursor),
            _ => break,
        }
    }
    if !csv {
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(())
}
