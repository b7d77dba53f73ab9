//! Command-line interface: `otcd serve`, `otcd demo`, `otcd verify`, `otcd audit-export`, `otcd report`,
//! `otcd sign`, `otcd sanctions fetch`.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "otcd", version, about = "otcd: an API-first OTC trading desk server", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
    /// On an error, print its whole chain and backtrace (also with RUST_LOG=debug), not one line.
    #[arg(long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MarketMode {
    /// Built-in simulated venues with moving prices.
    Sim,
    /// Prices only from PUT /v1/admin/market/{instrument}.
    Manual,
    /// Book snapshots replayed from --market-file (JSON lines).
    Replay,
    /// Exchange order books (Binance, Coinbase, Kraken, Bitstamp; optionally the simulation too) as listed in
    /// --venues-config (docs/market-data.md).
    Venues,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the desk keeps its journal, snapshots and keys. Created with a new desk when empty or missing.
    #[arg(long, default_value = "./otcd-data")]
    pub data_dir: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also start the FIX 4.4 acceptor on this address (docs/fix.md); off by default.
    #[arg(long)]
    pub fix_listen: Option<SocketAddr>,
    /// Market data source.
    #[arg(long, value_enum, default_value = "sim")]
    pub market: MarketMode,
    /// With --market replay: the JSON-lines file of venue books.
    #[arg(long)]
    pub market_file: Option<PathBuf>,
    /// With --market venues: the TOML file of venues (docs/market-data.md, docs/venues.example.toml).
    #[arg(long)]
    pub venues_config: Option<PathBuf>,
    /// Seed of the simulated market (same seed, same price paths).
    #[arg(long, default_value_t = 7)]
    pub market_seed: u64,
    /// Directory with ofac/{sdn,add,alt,sdn_comments}.csv and un/consolidated.xml: clients and destinations are
    /// screened against them (docs/compliance.md). Without it nothing is screened.
    #[arg(long)]
    pub sanctions_dir: Option<PathBuf>,
    /// A TOML file with further settings (see docs/configuration.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Start even though the journal or checkpoints.jsonl is behind the high-water mark (journal.high-water):
    /// only after knowingly restoring this data directory from a backup (docs/operations.md).
    #[arg(long)]
    pub accept_rollback: bool,
    /// Append a copy of every signed checkpoint to this file, outside the data directory (ideally another
    /// disk), and refuse to start when the data directory is behind it (config key `checkpoint_witness_file`).
    #[arg(long)]
    pub checkpoint_witness_file: Option<PathBuf>,
    /// Publish the desk's events to NATS JetStream at these servers (`nats://host:port`, comma-separated;
    /// docs/events.md; config key `events_nats`).
    #[arg(long, value_delimiter = ',')]
    pub events_nats: Vec<String>,
    /// Replicate the journal over these NATS JetStream servers (`nats://HOST:PORT,nats://...`) and run as one
    /// node of a replicated desk (docs/operations.md); needs --node-id. Without it the desk is a single node.
    #[arg(long)]
    pub replication: Option<String>,
    /// This node's name within its replicated desk (config key `node_id`).
    #[arg(long)]
    pub node_id: Option<String>,
    /// This node's HTTP base URL as clients reach it, named by standbys in `503 not_leader` (config key
    /// `advertise`; default `http://` + --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// On a standby, answer the reads that are safe to serve stale (balances, orders, trades, ...) from its own
    /// desk instead of `503 not_leader` (config key `replication_standby_reads`; docs/operations.md).
    #[arg(long)]
    pub standby_reads: bool,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the desk.
    Serve(ServeArgs),
    /// Print the OpenAPI document the desk serves at /openapi.json (for client generators and validators).
    Openapi,
    /// Run a ready-made demo desk: sample tiers, clients with balances and keys (in DATA_DIR/demo-clients.json).
    Demo {
        #[arg(long, default_value = "./otcd-demo")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// No simulated client flow (the demo otherwise trades as a simulated client so hedges happen).
        #[arg(long)]
        no_client_flow: bool,
        /// ms between two trades of the simulated client flow (100 to 3600000).
        #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
        client_flow_interval_ms: u64,
        /// Trades the simulated client flow makes before it stops (1 to 100000).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        client_flow_trades: u64,
    },
    /// Check the tamper-evident journal and its signed checkpoints offline (or an audit export bundle with
    /// --export): exit 0 when intact, non-zero naming the first bad record or checkpoint.
    Verify {
        /// Default: ./otcd-data, else the demo's ./otcd-demo.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The desk's Ed25519 public key (64 hex digits) obtained from the operator out of band; default: the
        /// data directory's desk-signing.pub (or, with --export, the key the bundle names).
        #[arg(long)]
        public_key: Option<String>,
        /// Verify this export bundle (from `otcd audit-export` or GET /v1/admin/audit/export) instead of a data
        /// directory.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Also check the data directory against this checkpoint witness (`checkpoint_witness_file`): every
        /// checkpoint it holds must be in the data directory, identical. Detects a rollback of the whole
        /// directory.
        #[arg(long)]
        witness: Option<PathBuf>,
    },
    /// Write a self-contained audit bundle of the journal records stamped in [--from, --to), anchored by signed
    /// checkpoints, for `otcd verify --export`.
    AuditExport {
        /// Default: ./otcd-data, else the demo's ./otcd-demo.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Start of the window (inclusive): RFC 3339, a date (2026-01-31), now, today, yesterday or now-24h.
        #[arg(long)]
        from: String,
        /// End of the window (exclusive), the same forms.
        #[arg(long)]
        to: String,
        /// Where to write the bundle (JSON lines).
        #[arg(long)]
        out: PathBuf,
    },
    /// A report or export from the journal (offline; the desk may be running): trades, positions, volume,
    /// revenue, statement, settlement, kyc, screening, alerts. Same filters and columns as
    /// GET /v1/admin/reports/{report} (docs/reports.md); CSV writes every matching row.
    Report(Box<ReportArgs>),
    /// Sanctions lists: `otcd sanctions fetch --out DIR [--sources FILE]`.
    Sanctions {
        #[command(subcommand)]
        command: SanctionsCommand,
    },
    /// Print the OTC-* headers that sign a request, for curl: `curl $(otcd sign ...) http://...`.
    Sign {
        /// A key file such as DATA_DIR/admin-key.json ({"key_id", "secret", "algorithm": "hmac"}).
        #[arg(long)]
        key_file: PathBuf,
        /// The client entry to use when the key file is demo-clients.json (a list): its client_id or name.
        #[arg(long)]
        client: Option<String>,
        /// HTTP method: GET, POST, PUT, PATCH or DELETE.
        #[arg(long, default_value = "GET")]
        method: String,
        /// Path with query, exactly as sent (not a URL): /v1/balances
        path: String,
        /// Request body, exactly as sent.
        #[arg(long, default_value = "")]
        body: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SanctionsCommand {
    /// Download the lists (OFAC SDN, UN, EU, UK) from their publication URLs into DIR, the layout --sanctions-dir
    /// reads, with DIR/manifest.json. Every file must parse before the new set replaces DIR (atomically); on any
    /// failure DIR is left as it was and the exit status is non-zero.
    Fetch {
        /// The sanctions directory to create or replace.
        #[arg(long)]
        out: PathBuf,
        /// TOML file replacing publication URLs: [ofac] sdn/alt/add/comments, [un] consolidated,
        /// [eu] consolidated, [uk] sanctions_list (docs/compliance.md).
        #[arg(long)]
        sources: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// trades, positions, volume, revenue, statement, settlement, kyc, screening or alerts.
    pub report: String,
    /// Default: ./otcd-data, else the demo's ./otcd-demo.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The desk's --config (its `[surveillance]` thresholds; the alerts report lists the alerts the desk raised).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub client_id: Option<String>,
    #[arg(long)]
    pub instrument: Option<String>,
    /// Trades whose base or quote is this asset; ledger entries of this asset.
    #[arg(long)]
    pub asset: Option<String>,
    /// buy or sell.
    #[arg(long)]
    pub side: Option<String>,
    /// Withdrawal or alert status.
    #[arg(long)]
    pub status: Option<String>,
    /// Alert kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Inclusive: RFC 3339, a date (2026-01-31), now, today, yesterday or now-24h (also s, m, d).
    #[arg(long)]
    pub from: Option<String>,
    /// Exclusive, the same forms.
    #[arg(long)]
    pub to: Option<String>,
    /// JSON: rows in the page (1..1000, default 100). CSV: every row unless given.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub cursor: Option<String>,
    /// json or csv.
    #[arg(long, default_value = "json")]
    pub format: String,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}
