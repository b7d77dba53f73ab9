//! `--venues-config FILE`: which venues to connect to, with which symbols and limits (TOML, docs/market-data.md).
//!
//! Unknown keys, unknown kinds, unknown desk instruments, duplicate names and out-of-range limits are startup
//! errors naming the venue and the key: a desk must not start half-configured and price from fewer venues than
//! the operator believes.

use crate::book::LOCAL_LEVELS_DEFAULT;
use otcd_core::catalog::Catalog;
use otcd_core::decimal::parse_scaled;
use otcd_core::market::{BOOK_LEVELS_MAX, VENUES_MAX};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Longest configuration file read, in bytes.
pub const CONFIG_BYTES_MAX: usize = 1 << 20;
/// Venues (tables) in one file.
pub const CONFIG_VENUES_MAX: usize = VENUES_MAX;
/// Instruments one venue may map.
pub const VENUE_SYMBOLS_MAX: usize = 64;
/// Kraken's book channel accepts only these depths.
pub const KRAKEN_DEPTHS: [usize; 5] = [10, 25, 100, 500, 1000];
/// Binance's REST depth snapshot accepts only these limits.
pub const BINANCE_SNAPSHOT_LIMITS: [usize; 8] = [5, 10, 20, 50, 100, 500, 1000, 5000];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VenueKind {
    Binance,
    Coinbase,
    Kraken,
    Bitstamp,
    /// The built-in simulated venues (`sim-alpha`, `sim-beta`, `sim-gamma`), mixed in with real ones.
    Sim,
}

impl VenueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VenueKind::Binance => "binance",
            VenueKind::Coinbase => "coinbase",
            VenueKind::Kraken => "kraken",
            VenueKind::Bitstamp => "bitstamp",
            VenueKind::Sim => "sim",
        }
    }

    /// The venue's public WebSocket endpoint.
    pub fn default_ws_url(self) -> &'static str {
        match self {
            VenueKind::Binance => "wss://stream.binance.com:9443/ws",
            VenueKind::Coinbase => "wss://advanced-trade-ws.coinbase.com",
            VenueKind::Kraken => "wss://ws.kraken.com/v2",
            VenueKind::Bitstamp => "wss://ws.bitstamp.net",
            VenueKind::Sim => "",
        }
    }

    /// The venue's public REST endpoint (book snapshots), where it needs one.
    pub fn default_rest_url(self) -> Option<&'static str> {
        match self {
            VenueKind::Binance => Some("https://api.binance.com"),
            VenueKind::Bitstamp => Some("https://www.bitstamp.net"),
            _ => None,
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    venues: Vec<VenueText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueText {
    name: String,
    kind: VenueKind,
    ws_url: Option<String>,
    rest_url: Option<String>,
    depth: Option<usize>,
    max_book_age_ms: Option<i64>,
    fee_bps: Option<String>,
    #[serde(default)]
    symbols: BTreeMap<String, String>,
    message_bytes_max: Option<usize>,
    messages_per_second_max: Option<u32>,
    book_levels_max: Option<usize>,
    ping_interval_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    reconnect_delay_ms_min: Option<u64>,
    reconnect_delay_ms_max: Option<u64>,
    snapshot_limit: Option<usize>,
    /// `kind = "sim"` only.
    seed: Option<u64>,
    interval_ms: Option<u64>,
    /// `kind = "binance"` order entry: the names of the environment variables holding the API key and secret.
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    recv_window_ms: Option<u64>,
    order_timeout_ms: Option<u64>,
    orders_in_flight_max: Option<usize>,
    account_refresh_ms: Option<u64>,
}

/// One venue, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueConfig {
    pub name: String,
    pub kind: VenueKind,
    pub ws_url: String,
    pub rest_url: Option<String>,
    /// Levels per side published to the desk (at most `BOOK_LEVELS_MAX`), and Kraken's subscription depth.
    pub depth: usize,
    pub max_book_age_ms: i64,
    /// The venue's taker fee in basis points (a decimal string, 0 to 1000), carried for hedging and shown.
    pub fee_bps: String,
    /// Desk instrument → venue symbol, in instrument order.
    pub symbols: Vec<(String, String)>,
    pub limits: Limits,
    /// `kind = "sim"`: the simulation's seed and step interval.
    pub seed: u64,
    pub interval_ms: u64,
    /// Order entry at the venue (`kind = "binance"` with `api_key_env` and `api_secret_env`); `None`: the
    /// desk hedges on this venue's paper twin.
    pub trading: Option<TradingConfig>,
}

/// How the desk trades at a venue. It names the environment variables that hold the credentials, never the
/// credentials themselves, so the venues file can be shown and committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingConfig {
    pub api_key_env: String,
    pub api_secret_env: String,
    /// Binance's `recvWindow`: how long after its `timestamp` the venue still accepts a request.
    pub recv_window_ms: u64,
    /// A request unanswered this long is abandoned; an order's outcome is then unknown until asked.
    pub order_timeout_ms: u64,
    /// Requests to the venue at once; more are refused (the hedge worker retries them next round).
    pub orders_in_flight_max: usize,
    /// Balances are read from the venue at most this often.
    pub account_refresh_ms: u64,
}

/// The limits of one venue's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket message (and REST snapshot body) accepted, in bytes; larger ones drop the connection.
    pub message_bytes_max: usize,
    /// Messages per second accepted; more drop the connection (a feed that floods cannot starve the desk).
    pub messages_per_second_max: u32,
    /// Levels kept per side of the local book (the worst beyond are dropped).
    pub book_levels_max: usize,
    /// How often a ping (WebSocket ping, plus the venue's own where it has one) is sent.
    pub ping_interval_ms: u64,
    /// A connection silent this long is dropped and reopened.
    pub idle_timeout_ms: u64,
    pub reconnect_delay_ms_min: u64,
    pub reconnect_delay_ms_max: u64,
    /// Levels asked of a REST snapshot (Binance `limit`).
    pub snapshot_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes_max: 16 << 20,
            messages_per_second_max: 5_000,
            book_levels_max: LOCAL_LEVELS_DEFAULT,
            ping_interval_ms: 10_000,
            idle_timeout_ms: 30_000,
            reconnect_delay_ms_min: 500,
            reconnect_delay_ms_max: 30_000,
            snapshot_limit: 1_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the venues file is larger than {CONFIG_BYTES_MAX} bytes")]
    TooLarge,
    #[error("{0}")]
    Toml(String),
    #[error("the venues file lists no venue")]
    Empty,
    #[error("the venues file lists more than {CONFIG_VENUES_MAX} venues")]
    TooManyVenues,
    #[error("venue {venue:?}: {message}")]
    Venue { venue: String, message: String },
}

/// Every configured venue, validated against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenuesConfig {
    pub venues: Vec<VenueConfig>,
}

impl VenuesConfig {
    /// Parses and validates a venues file's text.
    pub fn parse(text: &str, catalog: &Catalog) -> Result<VenuesConfig, ConfigError> {
        if text.len() > CONFIG_BYTES_MAX {
            return Err(ConfigError::TooLarge);
        }
        let file: FileText = toml::from_str(text).map_err(|error| ConfigError::Toml(error.to_string()))?;
        if file.venues.is_empty() {
            return Err(ConfigError::Empty);
        }
        if file.venues.len() > CONFIG_VENUES_MAX {
            return Err(ConfigError::TooManyVenues);
        }
        let mut venues: Vec<VenueConfig> = Vec::with_capacity(file.venues.len());
        for text in file.venues {
            let venue = validate(text, catalog)?;
            if venues.iter().any(|other| other.name == venue.name) {
                return Err(venue_error(&venue.name, "the name is used by another venue"));
            }
            if venue.kind == VenueKind::Sim && venues.iter().any(|other| other.kind == VenueKind::Sim) {
                return Err(venue_error(&venue.name, "only one kind = \"sim\" venue may be configured"));
            }
            venues.push(venue);
        }
        Ok(VenuesConfig { venues })
    }
}

fn venue_error(venue: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Venue { venue: venue.to_owned(), message: message.into() }
}

fn validate(text: VenueText, catalog: &Catalog) -> Result<VenueConfig, ConfigError> {
    let name = text.name;
    let error = |message: String| venue_error(&name, message);
    let name_ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !name_ok {
        return Err(error("name must be 1 to 32 letters, digits, '-' or '_'".to_owned()));
    }
    if name == otcd_market::MANUAL_VENUE || otcd_market::SIM_VENUES.contains(&name.as_str()) {
        return Err(error("name is reserved for the desk's own venues".to_owned()));
    }
    let kind = text.kind;
    if kind == VenueKind::Sim {
        if text.api_key_env.is_some() || text.api_secret_env.is_some() {
            return Err(error("kind = \"sim\" trades on its paper twin: no api_key_env".to_owned()));
        }
        return validate_sim(name.clone(), &text.symbols, text.seed, text.interval_ms, text.max_book_age_ms);
    }
    if text.seed.is_some() || text.interval_ms.is_some() {
        return Err(error("seed and interval_ms are for kind = \"sim\" only".to_owned()));
    }
    let trading = trading(
        &name,
        kind,
        TradingText {
            api_key_env: text.api_key_env,
            api_secret_env: text.api_secret_env,
            recv_window_ms: text.recv_window_ms,
            order_timeout_ms: text.order_timeout_ms,
            orders_in_flight_max: text.orders_in_flight_max,
            account_refresh_ms: text.account_refresh_ms,
        },
    )?;
    let ws_url = text.ws_url.unwrap_or_else(|| kind.default_ws_url().to_owned());
    if !(ws_url.starts_with("ws://") || ws_url.starts_with("wss://")) {
        return Err(error(format!("ws_url {ws_url:?} must start with ws:// or wss://")));
    }
    let rest_url = match (kind.default_rest_url(), text.rest_url) {
        (None, Some(_)) => return Err(error(format!("rest_url is not used by kind = {:?}", kind.as_str()))),
        (None, None) => None,
        (Some(default), url) => Some(url.unwrap_or_else(|| default.to_owned())),
    };
    if let Some(url) = &rest_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(error(format!("rest_url {url:?} must start with http:// or https://")));
        }
    }
    let depth = text.depth.unwrap_or(25);
    if kind == VenueKind::Kraken {
        // Kraken's subscription depth; the desk is shown at most BOOK_LEVELS_MAX of them.
        if !KRAKEN_DEPTHS.contains(&depth) {
            return Err(error(format!("Kraken's book depth must be one of {KRAKEN_DEPTHS:?}")));
        }
    } else if depth == 0 || depth > BOOK_LEVELS_MAX {
        return Err(error(format!("depth must be 1 to {BOOK_LEVELS_MAX}")));
    }
    let max_book_age_ms = max_age(&name, text.max_book_age_ms)?;
    let fee_bps = text.fee_bps.unwrap_or_else(|| "0".to_owned());
    match parse_scaled(&fee_bps, 4) {
        Ok(value) if (0..=1_000 * 10_000).contains(&value) => {}
        _ => return Err(error(format!("fee_bps {fee_bps:?} must be a decimal string from 0 to 1000"))),
    }
    let symbols = symbols(&name, text.symbols, catalog)?;
    let defaults = Limits::default();
    let limits = Limits {
        message_bytes_max: text.message_bytes_max.unwrap_or(defaults.message_bytes_max),
        messages_per_second_max: text.messages_per_second_max.unwrap_or(defaults.messages_per_second_max),
        book_levels_max: text.book_levels_max.unwrap_or(defaults.book_levels_max),
        ping_interval_ms: text.ping_interval_ms.unwrap_or(defaults.ping_interval_ms),
        idle_timeout_ms: text.idle_timeout_ms.unwrap_or(defaults.idle_timeout_ms),
        reconnect_delay_ms_min: text.reconnect_delay_ms_min.unwrap_or(defaults.reconnect_delay_ms_min),
        reconnect_delay_ms_max: text.reconnect_delay_ms_max.unwrap_or(defaults.reconnect_delay_ms_max),
        snapshot_limit: text.snapshot_limit.unwrap_or(defaults.snapshot_limit),
    };
    check_limits(&name, kind, depth, &limits)?;
    Ok(VenueConfig {
        name,
        kind,
        ws_url,
        rest_url,
        depth,
        max_book_age_ms,
        fee_bps,
        symbols,
        limits,
        seed: 0,
        interval_ms: 0,
        trading,
    })
}

/// The order-entry keys of one venue as written.
struct TradingText {
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    recv_window_ms: Option<u64>,
    order_timeout_ms: Option<u64>,
    orders_in_flight_max: Option<usize>,
    account_refresh_ms: Option<u64>,
}

fn trading(name: &str, kind: VenueKind, text: TradingText) -> Result<Option<TradingConfig>, ConfigError> {
    let tuning = text.recv_window_ms.is_some()
        || text.order_timeout_ms.is_some()
        || text.orders_in_flight_max.is_some()
        || text.account_refresh_ms.is_some();
    let (api_key_env, api_secret_env) = match (text.api_key_env, text.api_secret_env) {
        (None, None) if tuning => {
            return Err(venue_error(name, "order entry keys need api_key_env and api_secret_env"));
        }
        (None, None) => return Ok(None),
        (Some(key), Some(secret)) => (key, secret),
        _ => return Err(venue_error(name, "api_key_env and api_secret_env go together")),
    };
    if kind != VenueKind::Binance {
        return Err(venue_error(name, "order entry (api_key_env) is supported for kind = \"binance\" only"));
    }
    let variable_ok = |text: &str| {
        !text.is_empty() && text.len() <= 64 && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    };
    if !variable_ok(&api_key_env) || !variable_ok(&api_secret_env) {
        return Err(venue_error(name, "api_key_env and api_secret_env must be environment variable names"));
    }
    let config = TradingConfig {
        api_key_env,
        api_secret_env,
        recv_window_ms: text.recv_window_ms.unwrap_or(5_000),
        order_timeout_ms: text.order_timeout_ms.unwrap_or(5_000),
        orders_in_flight_max: text.orders_in_flight_max.unwrap_or(8),
        account_refresh_ms: text.account_refresh_ms.unwrap_or(1_000),
    };
    let checks = [
        // Binance refuses a recvWindow above 60000.
        ((1..=60_000).contains(&config.recv_window_ms), "recv_window_ms must be 1 to 60000"),
        ((100..=60_000).contains(&config.order_timeout_ms), "order_timeout_ms must be 100 to 60000"),
        ((1..=256).contains(&config.orders_in_flight_max), "orders_in_flight_max must be 1 to 256"),
        ((100..=600_000).contains(&config.account_refresh_ms), "account_refresh_ms must be 100 to 600000"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, message)) => Err(venue_error(name, *message)),
        None => Ok(Some(config)),
    }
}

fn validate_sim(
    name: String,
    symbols: &BTreeMap<String, String>,
    seed: Option<u64>,
    interval_ms: Option<u64>,
    max_book_age_ms: Option<i64>,
) -> Result<VenueConfig, ConfigError> {
    if !symbols.is_empty() {
        return Err(venue_error(&name, "kind = \"sim\" quotes every catalog instrument: no symbols"));
    }
    let interval_ms = interval_ms.unwrap_or(100);
    if !(10..=60_000).contains(&interval_ms) {
        return Err(venue_error(&name, "interval_ms must be 10 to 60000"));
    }
    Ok(VenueConfig {
        max_book_age_ms: max_age(&name, max_book_age_ms)?,
        name,
        kind: VenueKind::Sim,
        ws_url: String::new(),
        rest_url: None,
        depth: BOOK_LEVELS_MAX,
        fee_bps: "0".to_owned(),
        symbols: Vec::new(),
        limits: Limits::default(),
        seed: seed.unwrap_or(7),
        interval_ms,
        trading: None,
    })
}

fn max_age(name: &str, value: Option<i64>) -> Result<i64, ConfigError> {
    let value = value.unwrap_or(otcd_market::DEFAULT_MAX_AGE_MS);
    if !(1..=3_600_000).contains(&value) {
        return Err(venue_error(name, "max_book_age_ms must be 1 to 3600000"));
    }
    Ok(value)
}

fn symbols(
    name: &str,
    symbols: BTreeMap<String, String>,
    catalog: &Catalog,
) -> Result<Vec<(String, String)>, ConfigError> {
    if symbols.is_empty() {
        return Err(venue_error(name, "[venues.symbols] maps no instrument"));
    }
    if symbols.len() > VENUE_SYMBOLS_MAX {
        return Err(venue_error(name, format!("more than {VENUE_SYMBOLS_MAX} symbols")));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(symbols.len());
    for (instrument, venue_symbol) in symbols {
        if catalog.instrument(&instrument).is_none() {
            return Err(venue_error(name, format!("instrument {instrument:?} is not in the desk's catalog")));
        }
        let symbol_ok = !venue_symbol.is_empty()
            && venue_symbol.len() <= 32
            && venue_symbol.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_/.".contains(&byte));
        if !symbol_ok {
            return Err(venue_error(name, format!("venue symbol {venue_symbol:?} of {instrument} is not a symbol")));
        }
        if out.iter().any(|(_, other)| other.eq_ignore_ascii_case(&venue_symbol)) {
            return Err(venue_error(name, format!("venue symbol {venue_symbol:?} is mapped twice")));
        }
        out.push((instrument, venue_symbol));
    }
    Ok(out)
}

fn check_limits(name: &str, kind: VenueKind, depth: usize, limits: &Limits) -> Result<(), ConfigError> {
    let checks = [
        ((1_024..=64 << 20).contains(&limits.message_bytes_max), "message_bytes_max must be 1024 to 67108864"),
        ((1..=1_000_000).contains(&limits.messages_per_second_max), "messages_per_second_max must be 1 to 1000000"),
        (
            (depth..=100_000).contains(&limits.book_levels_max),
            "book_levels_max must be at least the depth and at most 100000",
        ),
        ((100..=600_000).contains(&limits.ping_interval_ms), "ping_interval_ms must be 100 to 600000"),
        ((100..=600_000).contains(&limits.idle_timeout_ms), "idle_timeout_ms must be 100 to 600000"),
        (
            (10..=600_000).contains(&limits.reconnect_delay_ms_min)
                && (limits.reconnect_delay_ms_min..=600_000).contains(&limits.reconnect_delay_ms_max),
            "reconnect_delay_ms_min must be 10 to 600000 and at most reconnect_delay_ms_max (at most 600000)",
        ),
    ];
    if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(venue_error(name, *message));
    }
    if kind == VenueKind::Binance && !BINANCE_SNAPSHOT_LIMITS.contains(&limits.snapshot_limit) {
        return Err(venue_error(name, format!("snapshot_limit must be one of {BINANCE_SNAPSHOT_LIMITS:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VenuesConfig, ConfigError> {
        VenuesConfig::parse(text, &Catalog::builtin())
    }

    #[test]
    fn a_full_file_parses_with_defaults() {
        let config = parse(
            r#"
            [[venues]]
            name = "kraken"
            kind = "kraken"
            depth = 25
            max_book_age_ms = 2000
            fee_bps = "26"
            [venues.symbols]
            "BTC-USD" = "BTC/USD"
            "ETH-USD" = "ETH/USD"

            [[venues]]
            name = "binance"
            kind = "binance"
            ws_url = "ws://127.0.0.1:9/ws"
            rest_url = "http://127.0.0.1:9"
            [venues.symbols]
            "BTC-USDT" = "BTCUSDT"

            [[venues]]
            name = "sim"
            kind = "sim"
            seed = 3
            "#,
        )
        .unwrap();
        let kraken = &config.venues[0];
        assert_eq!(kraken.ws_url, "wss://ws.kraken.com/v2");
        assert_eq!(kraken.rest_url, None);
        assert_eq!(kraken.symbols, [("BTC-USD".into(), "BTC/USD".into()), ("ETH-USD".into(), "ETH/USD".into())]);
        assert_eq!(kraken.fee_bps, "26");
        assert_eq!(kraken.limits, Limits::default());
        let binance = &config.venues[1];
        assert_eq!(binance.rest_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!((binance.depth, binance.max_book_age_ms), (25, 2_000));
        assert_eq!((config.venues[2].kind, config.venues[2].seed), (VenueKind::Sim, 3));
    }

    #[test]
    fn mistakes_are_clear_errors() {
        let venue = |extra: &str, symbols: &str| {
            parse(&format!("[[venues]]\nname = \"k\"\nkind = \"kraken\"\n{extra}\n[venues.symbols]\n{symbols}\n"))
                .unwrap_err()
                .to_string()
        };
        let btc = "\"BTC-USD\" = \"BTC/USD\"";
        assert!(venue("colour = \"red\"", btc).contains("unknown field `colour`"));
        assert!(venue("", "\"DOGE-USD\" = \"DOGE/USD\"").contains("\"DOGE-USD\" is not in the desk's catalog"));
        assert!(venue("depth = 20", btc).contains("depth must be one of"));
        assert!(venue("fee_bps = \"1e3\"", btc).contains("fee_bps"));
        assert!(venue("rest_url = \"https://x\"", btc).contains("rest_url is not used"));
        assert!(venue("ws_url = \"http://x\"", btc).contains("must start with ws://"));
        assert!(venue("max_book_age_ms = 0", btc).contains("max_book_age_ms"));
        assert!(venue("message_bytes_max = 10", btc).contains("message_bytes_max"));
        assert!(venue("", "").contains("maps no instrument"));
        assert!(venue("", "\"BTC-USD\" = \"BTC USD\"").contains("is not a symbol"));
        assert!(parse("[[venues]]\nname = \"k\"\nkind = \"ftx\"\n")
            .unwrap_err()
            .to_string()
            .contains("unknown variant"));
        assert_eq!(parse("venues = []").unwrap_err(), ConfigError::Empty);
        let twice = format!("[[venues]]\nname = \"a\"\nkind = \"sim\"\n[[venues]]\nname = \"a\"\nkind = \"kraken\"\n[venues.symbols]\n{btc}\n");
        assert!(parse(&twice).unwrap_err().to_string().contains("used by another venue"));
        assert!(parse("[[venues]]\nname = \"manual\"\nkind = \"sim\"\n").unwrap_err().to_string().contains("reserved"));
        let binance = |extra: &str| {
            parse(&format!(
                "[[venues]]\nname = \"b\"\nkind = \"binance\"\n{extra}\n[venues.symbols]\n\"BTC-USDT\" = \"BTCUSDT\"\n"
            ))
        };
        assert!(binance("api_key_env = \"K\"").unwrap_err().to_string().contains("go together"));
        assert!(binance("recv_window_ms = 100").unwrap_err().to_string().contains("need api_key_env"));
        assert!(binance("api_key_env = \"K\"\napi_secret_env = \"S\"\nrecv_window_ms = 70000")
            .unwrap_err()
            .to_string()
            .contains("recv_window_ms"));
        assert!(binance("api_key_env = \"K-1\"\napi_secret_env = \"S\"").unwrap_err().to_string().contains("variable"));
        assert!(venue("api_key_env = \"K\"\napi_secret_env = \"S\"", btc).contains("binance\" only"));
        let trading =
            binance("api_key_env = \"K\"\napi_secret_env = \"S\"").unwrap().venues[0].trading.clone().unwrap();
        assert_eq!(
            (trading.api_key_env.as_str(), trading.recv_window_ms, trading.orders_in_flight_max),
            ("K", 5_000, 8)
        );
        assert!(parse("[[venues]]\nname = \"b\"\nkind = \"binance\"\nsnapshot_limit = 7\n[venues.symbols]\n\"BTC-USDT\" = \"BTCUSDT\"\n")
            .unwrap_err()
            .to_string()
            .contains("snapshot_limit"));
    }
}
