//! Binance spot order entry: an adapter of the services' [`VenueExecution`] port over Binance's signed REST API.
//!
//! - `place`: `POST /api/v3/order`, LIMIT with `timeInForce=IOC` at the routed limit, `newClientOrderId` = the
//!   hedge child's client order id, `newOrderRespType=FULL` (the answer carries the fills);
//! - `status`: `GET /api/v3/order` by `origClientOrderId` (`-2013`: the venue never got it), and its fills from
//!   `GET /api/v3/myTrades?orderId=` (each fill's id is Binance's `tradeId`, prefixed with the symbol);
//! - `cancel`: `DELETE /api/v3/order`, then the status;
//! - `accounts`: `GET /api/v3/account` (free balances), at most every `account_refresh_ms`; the taker fee is the
//!   venue's `fee_bps`.
//!
//! Every request is SIGNED (see [`crate::binance_wire`]), bounded in time (`order_timeout_ms`), in answer size
//! ([`RESPONSE_BYTES_MAX`]) and in number at once (`orders_in_flight_max`); a 429 or 418 stops all requests for
//! the venue's `Retry-After` (or a default) before any is sent again.
//!
//! Blocking: the port is synchronous and the hedge worker calls it on tokio's blocking pool. The adapter uses the
//! server's own runtime through a [`tokio::runtime::Handle`] (`block_on` from a blocking-pool thread) with the
//! async reqwest client the venue connectors already use, rather than `reqwest::blocking`, which would start a
//! second runtime and thread per client and must never be dropped inside an async context. The runtime must be
//! multi-threaded (its workers drive the sockets while a blocking thread waits).

use crate::binance_wire::{
    decimal_text, parse_balances, parse_order, parse_trades, place_error, query_error, query_string, signature,
    status_of, CallFailure, SymbolUnits,
};
use otcd_core::catalog::{AssetCode, Catalog};
use otcd_core::market::Side;
use otcd_services::ports::{VenueAccount, VenueError, VenueExecution, VenueOrder, VenueOrderStatus};
use otcd_venues::config::{TradingConfig, VenueConfig};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest answer read from the venue; a longer one is abandoned (an order's outcome is then asked again).
pub const RESPONSE_BYTES_MAX: usize = 1 << 20;
/// Client order ids whose symbol and side the adapter remembers (older ones are found by asking every symbol).
pub const REMEMBERED_ORDERS_MAX: usize = 10_000;
/// How long requests stop after a 429 without `Retry-After`, and after a 418 (an IP ban).
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);
const BAN_PAUSE: Duration = Duration::from_secs(60);
const PAUSE_MAX: Duration = Duration::from_secs(300);
/// Balances older than this many refresh periods are not offered to the router (the venue is then not used).
const ACCOUNT_STALE_PERIODS: u32 = 10;

/// The API key and secret. Debug never shows them.
#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Credentials").field("api_key", &"<redacted>").field("secret", &"<redacted>").finish()
    }
}

impl Credentials {
    pub fn new(api_key: &str, secret: &str) -> Credentials {
        Credentials { api_key: api_key.to_owned(), secret: secret.to_owned() }
    }

    /// From the environment variables the venue's `api_key_env` and `api_secret_env` name.
    pub fn from_env(config: &TradingConfig) -> Result<Credentials, SetupError> {
        let read = |name: &str| match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            _ => Err(SetupError::MissingVariable(name.to_owned())),
        };
        Ok(Credentials { api_key: read(&config.api_key_env)?, secret: read(&config.api_secret_env)? })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("environment variable {0} (the venue's API credentials) is not set")]
    MissingVariable(String),
    #[error("venue {0} has no order entry configured (api_key_env, api_secret_env)")]
    NotTrading(String),
    #[error("venue {0} has no rest_url")]
    NoRestUrl(String),
    #[error("venue {venue}: instrument {instrument} is not in the catalog")]
    UnknownInstrument { venue: String, instrument: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// One Binance account's spot order entry.
pub struct BinanceSpot {
    venue: String,
    base_url: String,
    credentials: Credentials,
    settings: TradingConfig,
    taker_fee_centi_bps: i128,
    symbols: Vec<SymbolUnits>,
    /// Binance asset name → the desk's asset and scale.
    assets: BTreeMap<String, (AssetCode, u8)>,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    in_flight: AtomicUsize,
    paused_until: Mutex<Option<Instant>>,
    /// Client order id → index into `symbols`.
    remembered: Mutex<HashMap<String, usize>>,
    account: Mutex<Option<(Instant, VenueAccount)>>,
}

impl std::fmt::Debug for BinanceSpot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BinanceSpot")
            .field("venue", &self.venue)
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis())
}

impl BinanceSpot {
    /// The adapter of a configured Binance venue (`trading` set), credentials from the environment.
    pub fn from_config(
        venue: &VenueConfig,
        catalog: &Catalog,
        runtime: tokio::runtime::Handle,
    ) -> Result<BinanceSpot, SetupError> {
        let trading = venue.trading.clone().ok_or_else(|| SetupError::NotTrading(venue.name.clone()))?;
        let credentials = Credentials::from_env(&trading)?;
        BinanceSpot::new(venue, trading, credentials, catalog, runtime)
    }

    pub fn new(
        venue: &VenueConfig,
        settings: TradingConfig,
        credentials: Credentials,
        catalog: &Catalog,
        runtime: tokio::runtime::Handle,
    ) -> Result<BinanceSpot, SetupError> {
        let base_url = venue.rest_url.clone().ok_or_else(|| SetupError::NoRestUrl(venue.name.clone()))?;
        let mut symbols = Vec::new();
        let mut assets = BTreeMap::new();
        for (instrument_name, symbol) in &venue.symbols {
            let unknown =
                || SetupError::UnknownInstrument { venue: venue.name.clone(), instrument: instrument_name.clone() };
            let instrument = catalog.instrument(instrument_name).ok_or_else(unknown)?;
            let scale = |code: &AssetCode| catalog.asset(code).map(|asset| asset.scale).ok_or_else(unknown);
            let (base_scale, quote_scale) = (scale(&instrument.base)?, scale(&instrument.quote)?);
            assets.insert(instrument.base.as_str().to_owned(), (instrument.base, base_scale));
            assets.insert(instrument.quote.as_str().to_owned(), (instrument.quote, quote_scale));
            symbols.push(SymbolUnits {
                instrument: instrument_name.clone(),
                symbol: symbol.to_ascii_uppercase(),
                base: instrument.base.as_str().to_owned(),
                quote: instrument.quote.as_str().to_owned(),
                base_scale,
                quote_scale,
                price_scale: instrument.price_scale,
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.order_timeout_ms))
            .build()
            .map_err(|error| SetupError::Client(error.to_string()))?;
        Ok(BinanceSpot {
            venue: venue.name.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            credentials,
            taker_fee_centi_bps: otcd_core::decimal::parse_scaled(&venue.fee_bps, 2).unwrap_or(0),
            settings,
            symbols,
            assets,
            client,
            runtime,
            in_flight: AtomicUsize::new(0),
            paused_until: Mutex::new(None),
            remembered: Mutex::new(HashMap::new()),
            account: Mutex::new(None),
        })
    }

    pub fn venue(&self) -> &str {
        &self.venue
    }

    /// One signed request; the answer's body on a 2xx.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        mut params: Vec<(&str, String)>,
    ) -> Result<Vec<u8>, CallFailure> {
        if let Some(until) = *self.paused_until.lock() {
            if Instant::now() < until {
                return Err(CallFailure::NotSent("rate limited by binance: waiting before the next request".into()));
            }
        }
        let slots = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _slot = InFlight(&self.in_flight);
        if slots >= self.settings.orders_in_flight_max {
            return Err(CallFailure::NotSent("too many requests to binance in flight".into()));
        }
        params.push(("recvWindow", self.settings.recv_window_ms.to_string()));
        params.push(("timestamp", now_ms().to_string()));
        let query = query_string(&params);
        let signed = signature(self.credentials.secret.as_bytes(), &query);
        let url = format!("{}{path}?{query}&signature={signed}", self.base_url);
        let request = self
            .client
            .request(method, url)
            .header("X-MBX-APIKEY", &self.credentials.api_key)
            .timeout(Duration::from_millis(self.settings.order_timeout_ms));
        let (status, retry_after, body) = self.runtime.block_on(async move {
            let mut response = request.send().await.map_err(|error| {
                if error.is_connect() {
                    CallFailure::NotSent(error.without_url().to_string())
                } else {
                    CallFailure::NoAnswer(error.without_url().to_string())
                }
            })?;
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
            let mut body = Vec::new();
            while let Some(chunk) =
                response.chunk().await.map_err(|error| CallFailure::NoAnswer(error.without_url().to_string()))?
            {
                if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
                    return Err(CallFailure::NoAnswer(format!("answer longer than {RESPONSE_BYTES_MAX} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, CallFailure>((response.status().as_u16(), retry_after, body))
        })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let failure = CallFailure::from_status(status, &body);
        if failure.rate_limited() {
            let pause = match (status, retry_after) {
                (_, Some(seconds)) => Duration::from_secs(seconds),
                (418, None) => BAN_PAUSE,
                _ => RATE_LIMIT_PAUSE,
            };
            tracing::warn!(venue = %self.venue, status, ?pause, "binance rate limit: pausing requests");
            *self.paused_until.lock() = Some(Instant::now() + pause.min(PAUSE_MAX));
        }
        Err(failure)
    }

    fn units_for(&self, instrument: &str) -> Option<usize> {
        self.symbols.iter().position(|units| units.instrument == instrument)
    }

    fn remember(&self, client_order_id: &str, symbol: usize) {
        let mut remembered = self.remembered.lock();
        if remembered.len() >= REMEMBERED_ORDERS_MAX {
            remembered.clear(); // Forgotten ids are found by asking every symbol.
        }
        remembered.insert(client_order_id.to_owned(), symbol);
    }

    /// The symbols to ask for a client order id: the remembered one, else all of the venue's.
    fn candidates(&self, client_order_id: &str) -> Vec<usize> {
        match self.remembered.lock().get(client_order_id) {
            Some(index) => vec![*index],
            None => (0..self.symbols.len()).collect(),
        }
    }

    fn query(&self, client_order_id: &str) -> Result<Option<VenueOrderStatus>, VenueError> {
        for index in self.candidates(client_order_id) {
            let units = &self.symbols[index];
            let params = vec![("symbol", units.symbol.clone()), ("origClientOrderId", client_order_id.to_owned())];
            let body = match self.call(reqwest::Method::GET, "/api/v3/order", params) {
                Ok(body) => body,
                Err(failure) if failure.no_such_order() => continue,
                Err(failure) => return Err(query_error(&failure)),
            };
            let order = parse_order(&body, units, self.taker_fee_centi_bps)
                .map_err(|error| VenueError::Unavailable(error.to_string()))?;
            self.remember(client_order_id, index);
            let fills = if order.executed > 0 {
                let params = vec![("symbol", units.symbol.clone()), ("orderId", order.order_id.to_string())];
                let body = self.call(reqwest::Method::GET, "/api/v3/myTrades", params).map_err(|f| query_error(&f))?;
                parse_trades(&body, units, order.side, self.taker_fee_centi_bps, order.order_id)
                    .map_err(|error| VenueError::Unavailable(error.to_string()))?
            } else {
                Vec::new()
            };
            // Each fill's quantity is truncated to the desk's scale by less than one unit: fewer than that is a
            // trade list that lags the order, which is asked again rather than closed short.
            let filled: i128 = fills.iter().map(|fill| fill.quantity).sum();
            if filled + fills.len() as i128 <= order.executed && order.executed > 0 {
                return Err(VenueError::Unavailable("binance's trade list lags the order".into()));
            }
            return Ok(Some(status_of(&order, fills)));
        }
        Ok(None)
    }

    fn fetch_account(&self) -> Option<VenueAccount> {
        let body = match self.call(reqwest::Method::GET, "/api/v3/account", Vec::new()) {
            Ok(body) => body,
            Err(failure) => {
                tracing::warn!(venue = %self.venue, error = ?query_error(&failure), "binance balances not read");
                return None;
            }
        };
        let scale_of = |asset: &str| self.assets.get(asset).map(|(_, scale)| *scale);
        match parse_balances(&body, scale_of) {
            Ok(balances) => Some(VenueAccount {
                venue: self.venue.clone(),
                taker_fee_centi_bps: self.taker_fee_centi_bps,
                balances: balances.into_iter().map(|(asset, free)| (self.assets[&asset].0, free)).collect(),
            }),
            Err(error) => {
                tracing::warn!(venue = %self.venue, %error, "binance balances not read");
                None
            }
        }
    }
}

/// Frees an in-flight slot when the request ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl VenueExecution for BinanceSpot {
    fn accounts(&self) -> Vec<VenueAccount> {
        let refresh = Duration::from_millis(self.settings.account_refresh_ms);
        let cached = self.account.lock().clone();
        if let Some((read_at, account)) = &cached {
            if read_at.elapsed() < refresh {
                return vec![account.clone()];
            }
        }
        if let Some(account) = self.fetch_account() {
            *self.account.lock() = Some((Instant::now(), account.clone()));
            return vec![account];
        }
        // A short outage keeps the last balances; a long one takes the venue out of routing.
        match cached {
            Some((read_at, account)) if read_at.elapsed() < refresh * ACCOUNT_STALE_PERIODS => vec![account],
            _ => Vec::new(),
        }
    }

    fn place(&self, order: &VenueOrder) -> Result<VenueOrderStatus, VenueError> {
        let index = self.units_for(&order.instrument).ok_or_else(|| {
            VenueError::Rejected(format!("venue {} has no symbol for {}", self.venue, order.instrument))
        })?;
        if order.quantity <= 0 || order.limit_price <= 0 {
            return Err(VenueError::Rejected("quantity and price must be positive".into()));
        }
        let units = &self.symbols[index];
        self.remember(&order.client_order_id, index);
        let side = if order.side == Side::Buy { "BUY" } else { "SELL" };
        let params = vec![
            ("symbol", units.symbol.clone()),
            ("side", side.to_owned()),
            ("type", "LIMIT".to_owned()),
            ("timeInForce", "IOC".to_owned()),
            ("quantity", decimal_text(order.quantity, units.base_scale)),
            ("price", decimal_text(order.limit_price, units.price_scale)),
            ("newClientOrderId", order.client_order_id.clone()),
            ("newOrderRespType", "FULL".to_owned()),
        ];
        let body = match self.call(reqwest::Method::POST, "/api/v3/order", params) {
            Ok(body) => body,
            // Placed before (a resend after an unknown outcome): answer that order.
            Err(failure) if failure.duplicate_order() => {
                return self.query(&order.client_order_id)?.ok_or(VenueError::Timeout);
            }
            Err(failure) => {
                let error = place_error(&failure);
                tracing::info!(venue = %self.venue, order = %order.client_order_id, %error, "binance order not placed");
                return Err(error);
            }
        };
        match parse_order(&body, units, self.taker_fee_centi_bps) {
            Ok(parsed) => {
                let fills = parsed.fills.clone().unwrap_or_default();
                let filled: i128 = fills.iter().map(|fill| fill.quantity).sum();
                if parsed.open || (parsed.executed > 0 && filled + fills.len() as i128 <= parsed.executed) {
                    // Still working, or fills not all in the answer: the status query has the whole story.
                    return self.query(&order.client_order_id)?.ok_or(VenueError::Timeout);
                }
                Ok(status_of(&parsed, fills))
            }
            // Taken, but the answer cannot be read: the outcome is unknown until asked.
            Err(error) => {
                tracing::warn!(venue = %self.venue, %error, "binance order answer unreadable");
                Err(VenueError::Timeout)
            }
        }
    }

    fn cancel(&self, venue: &str, client_order_id: &str) -> Result<VenueOrderStatus, VenueError> {
        debug_assert_eq!(venue, self.venue);
        for index in self.candidates(client_order_id) {
            let params =
                vec![("symbol", self.symbols[index].symbol.clone()), ("origClientOrderId", client_order_id.to_owned())];
            match self.call(reqwest::Method::DELETE, "/api/v3/order", params) {
                Ok(_) => break,
                // -2011: not open (filled, expired) or not at this symbol; the status says which.
                Err(failure) if failure.code() == Some(-2011) || failure.no_such_order() => {}
                Err(failure) => return Err(query_error(&failure)),
            }
        }
        self.query(client_order_id)?.ok_or_else(|| VenueError::Rejected("unknown order".into()))
    }

    fn status(&self, venue: &str, client_order_id: &str) -> Result<Option<VenueOrderStatus>, VenueError> {
        debug_assert_eq!(venue, self.venue);
        self.query(client_order_id)
    }
}
