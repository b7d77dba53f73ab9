//! The fake Binance spot order entry (feature `fake`), served by a [`crate::fake::FakeVenue`] of kind Binance on
//! its REST port beside the depth snapshots, in Binance's documented formats:
//!
//! - `POST /api/v3/order` (LIMIT with `timeInForce=IOC`, or MARKET; `newOrderRespType=FULL` answers the fills),
//!   `GET /api/v3/order`, `DELETE /api/v3/order` (by `origClientOrderId` or `orderId`), `GET /api/v3/myTrades`
//!   (by `orderId`), `GET /api/v3/account`;
//! - every one SIGNED: the `X-MBX-APIKEY` header must be the configured key (else HTTP 401, `-2015`), the
//!   `signature` parameter the hex HMAC-SHA256 of the rest of the query string and the body with the secret
//!   (else HTTP 400, `-1022`), and `timestamp` within `recvWindow` (at most 60000) of the server's clock
//!   (else `-1021`);
//! - a `newClientOrderId` it already holds is refused with `-2010` "Duplicate order sent." (real Binance
//!   refuses only while the first order is open: the fake is stricter, which the adapter handles alike);
//! - orders fill at once against a configured book (which they consume), one trade per level, the rest of an
//!   IOC expires; the taker commission is charged in the quote asset; balances move.
//!
//! Faults for the next orders ([`Fault`]): a business reject, a 5xx (with or without taking the order), an answer
//! delayed past the client's timeout (the order is taken), a 429 rate limit.

use hmac::{Hmac, Mac};
use otcd_core::decimal::{format_scaled, parse_scaled};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Binance's decimals: 8 places.
const SCALE: u8 = 8;
/// Orders the fake remembers.
const ORDERS_MAX: usize = 10_000;

/// A misbehaviour applied to the next `POST /api/v3/order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400, `-2010` with this message; no order.
    Reject(String),
    /// HTTP 503 `-1001`; with `taken` the order exists and is filled anyway (status unknown to the client).
    ServerError { taken: bool },
    /// The order is taken and filled, but the answer comes after `delay` (past the client's timeout).
    Slow(Duration),
    /// HTTP 429 `-1003`; no order.
    RateLimited,
}

/// What the fake answers: HTTP status, JSON body, and how long to wait before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAnswer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

/// One order as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOrder {
    pub symbol: String,
    pub order_id: u64,
    pub client_order_id: String,
    pub side: String,
    pub order_type: String,
    pub price: i128,
    pub orig_qty: i128,
    pub executed_qty: i128,
    pub quote_qty: i128,
    pub status: String,
    pub trades: Vec<FakeTrade>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTrade {
    pub id: u64,
    pub price: i128,
    pub qty: i128,
    pub commission: i128,
    pub commission_asset: String,
}

/// One tradable symbol: its assets and book (8-decimal units, best first).
#[derive(Debug, Clone)]
struct Market {
    base: String,
    quote: String,
    bids: Vec<(i128, i128)>,
    asks: Vec<(i128, i128)>,
}

#[derive(Debug, Default)]
struct State {
    markets: BTreeMap<String, Market>,
    balances: BTreeMap<String, i128>,
    orders: VecDeque<FakeOrder>,
    next_order_id: u64,
    next_trade_id: u64,
    faults: VecDeque<Fault>,
    /// Signed requests by path, for tests ("the status was asked before any resend").
    requests: Vec<String>,
}

/// The order-entry side of a fake Binance.
pub struct FakeBinanceTrading {
    api_key: String,
    secret: String,
    /// Taker commission, in hundredths of a basis point of the quote amount.
    taker_fee_centi_bps: i128,
    state: Mutex<State>,
}

fn parse8(text: &str) -> i128 {
    parse_scaled(text, SCALE).expect("a fixture decimal with at most 8 places")
}

fn text8(units: i128) -> String {
    format_scaled(units, SCALE)
}

/// `price × quantity` at 8 places (both at 8), rounded down.
fn notional(price: i128, quantity: i128) -> i128 {
    price.saturating_mul(quantity) / 100_000_000
}

fn error(status: u16, code: i64, message: &str) -> FakeAnswer {
    FakeAnswer { status, body: json!({"code": code, "msg": message}).to_string(), delay: Duration::ZERO }
}

fn ok(body: Value) -> FakeAnswer {
    FakeAnswer { status: 200, body: body.to_string(), delay: Duration::ZERO }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Hex HMAC-SHA256 of `payload` with `secret`: Binance's `signature`.
pub fn binance_signature(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl FakeBinanceTrading {
    pub fn new(api_key: &str, secret: &str, taker_fee_centi_bps: i128) -> FakeBinanceTrading {
        FakeBinanceTrading {
            api_key: api_key.to_owned(),
            secret: secret.to_owned(),
            taker_fee_centi_bps,
            state: Mutex::new(State { next_order_id: 1_000, next_trade_id: 50_000, ..State::default() }),
        }
    }

    /// Sets the book orders of `symbol` fill against (text levels, best first), and its assets.
    pub fn set_book(&self, symbol: &str, base: &str, quote: &str, bids: &[(&str, &str)], asks: &[(&str, &str)]) {
        let levels = |levels: &[(&str, &str)]| levels.iter().map(|(p, q)| (parse8(p), parse8(q))).collect();
        let market = Market { base: base.to_owned(), quote: quote.to_owned(), bids: levels(bids), asks: levels(asks) };
        self.lock().markets.insert(symbol.to_owned(), market);
    }

    /// Sets the account's free balance of `asset`.
    pub fn set_balance(&self, asset: &str, free: &str) {
        self.lock().balances.insert(asset.to_owned(), parse8(free));
    }

    /// The account's free balance of `asset`, as Binance writes it.
    pub fn balance(&self, asset: &str) -> String {
        text8(self.lock().balances.get(asset).copied().unwrap_or(0))
    }

    /// Queues a fault for the next order.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Faults queued and not yet applied.
    pub fn faults_pending(&self) -> usize {
        self.lock().faults.len()
    }

    /// Every order taken, oldest first.
    pub fn orders(&self) -> Vec<FakeOrder> {
        self.lock().orders.iter().cloned().collect()
    }

    /// `METHOD path` of every request that passed the signature check, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this handles `path` (the rest of the fake's REST paths are market data).
    pub fn handles(path: &str) -> bool {
        ["/api/v3/order", "/api/v3/myTrades", "/api/v3/account"].contains(&path)
    }

    /// Answers one request: `query` without the `?`, `body` the form body (may be empty).
    pub fn handle(&self, method: &str, path: &str, query: &str, body: &str, api_key: Option<&str>) -> FakeAnswer {
        if api_key != Some(self.api_key.as_str()) {
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.");
        }
        let total = if body.is_empty() { query.to_owned() } else { format!("{query}{body}") };
        // The signature is the last parameter; what precedes it is what was signed.
        let (signed, signature) = match total.rsplit_once("&signature=") {
            Some((signed, signature)) => (signed.to_owned(), signature.to_owned()),
            None => {
                return error(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
            }
        };
        if !signature.eq_ignore_ascii_case(&binance_signature(&self.secret, &signed)) {
            return error(400, -1022, "Signature for this request is not valid.");
        }
        let params: HashMap<&str, &str> = signed.split('&').filter_map(|pair| pair.split_once('=')).collect();
        if let Some(answer) = check_time(&params) {
            return answer;
        }
        self.lock().requests.push(format!("{method} {path}"));
        match (method, path) {
            ("POST", "/api/v3/order") => self.place(&params),
            ("GET", "/api/v3/order") => self.query(&params),
            ("DELETE", "/api/v3/order") => self.cancel(&params),
            ("GET", "/api/v3/myTrades") => self.trades(&params),
            ("GET", "/api/v3/account") => self.account(),
            _ => error(404, -1000, "An unknown error occurred while processing the request."),
        }
    }

    fn place(&self, params: &HashMap<&str, &str>) -> FakeAnswer {
        let mut state = self.lock();
        let fault = state.faults.pop_front();
        match &fault {
            Some(Fault::Reject(message)) => return error(400, -2010, message),
            Some(Fault::RateLimited) => return error(429, -1003, "Too many requests; current limit is exceeded."),
            Some(Fault::ServerError { taken: false }) => return server_error(),
            _ => {}
        }
        let Some(symbol) = params.get("symbol").filter(|symbol| state.markets.contains_key(**symbol)) else {
            return error(400, -1121, "Invalid symbol.");
        };
        let client_order_id = params.get("newClientOrderId").copied().unwrap_or("");
        let id_ok = (1..=36).contains(&client_order_id.len())
            && client_order_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".:/_-".contains(&byte));
        if !id_ok {
            return error(400, -1100, "Illegal characters found in parameter 'newClientOrderId'.");
        }
        if state.orders.iter().any(|order| order.client_order_id == client_order_id) {
            return error(400, -2010, "Duplicate order sent.");
        }
        let order = match self.execute(&mut state, symbol, client_order_id, params) {
            Ok(order) => order,
            Err(answer) => return answer,
        };
        let answer = ok(full_response(&order));
        state.orders.push_back(order);
        while state.orders.len() > ORDERS_MAX {
            state.orders.pop_front();
        }
        match fault {
            Some(Fault::ServerError { taken: true }) => server_error(),
            Some(Fault::Slow(delay)) => FakeAnswer { delay, ..answer },
            _ => answer,
        }
    }

    fn execute(
        &self,
        state: &mut State,
        symbol: &str,
        client_order_id: &str,
        params: &HashMap<&str, &str>,
    ) -> Result<FakeOrder, FakeAnswer> {
        let side = params.get("side").copied().unwrap_or("");
        let order_type = params.get("type").copied().unwrap_or("");
        let decimal = |name: &str| params.get(name).and_then(|text| parse_scaled(text, SCALE).ok()).filter(|v| *v > 0);
        let quantity = decimal("quantity").ok_or_else(|| error(400, -1013, "Filter failure: LOT_SIZE"))?;
        let limit = match (order_type, params.get("timeInForce").copied()) {
            ("LIMIT", Some("IOC")) => {
                decimal("price").ok_or_else(|| error(400, -1013, "Filter failure: PRICE_FILTER"))?
            }
            ("MARKET", None) => 0,
            _ => return Err(error(400, -1116, "Invalid orderType.")),
        };
        let buying = match side {
            "BUY" => true,
            "SELL" => false,
            _ => return Err(error(400, -1117, "Invalid side.")),
        };
        state.next_order_id += 1;
        let mut order = FakeOrder {
            symbol: symbol.to_owned(),
            order_id: state.next_order_id,
            client_order_id: client_order_id.to_owned(),
            side: side.to_owned(),
            order_type: order_type.to_owned(),
            price: limit,
            orig_qty: quantity,
            executed_qty: 0,
            quote_qty: 0,
            status: "NEW".to_owned(),
            trades: Vec::new(),
        };
        let market = state.markets.get(symbol).cloned().expect("checked");
        let levels = if buying { market.asks.clone() } else { market.bids.clone() };
        let mut consumed = Vec::new();
        for (price, available) in levels {
            let reachable = limit == 0 || if buying { price <= limit } else { price >= limit };
            let remaining = quantity - order.executed_qty;
            if remaining <= 0 || !reachable {
                break;
            }
            let qty = remaining.min(available);
            let amount = notional(price, qty);
            let product = amount * self.taker_fee_centi_bps;
            let commission = product / 1_000_000 + i128::from(product % 1_000_000 != 0);
            let balance = |asset: &str| state.balances.get(asset).copied().unwrap_or(0);
            let affordable =
                if buying { balance(&market.quote) >= amount + commission } else { balance(&market.base) >= qty };
            if !affordable {
                break;
            }
            let sign = if buying { 1 } else { -1 };
            *state.balances.entry(market.base.clone()).or_insert(0) += sign * qty;
            *state.balances.entry(market.quote.clone()).or_insert(0) -= sign * amount + commission;
            state.next_trade_id += 1;
            order.trades.push(FakeTrade {
                id: state.next_trade_id,
                price,
                qty,
                commission,
                commission_asset: market.quote.clone(),
            });
            order.executed_qty += qty;
            order.quote_qty += amount;
            consumed.push(qty);
        }
        if order.trades.is_empty() && !affordable_any(state, &market, buying) {
            return Err(error(400, -2010, "Account has insufficient balance for requested action."));
        }
        let book = state.markets.get_mut(symbol).expect("checked");
        let side_levels = if buying { &mut book.asks } else { &mut book.bids };
        for (level, qty) in consumed.into_iter().enumerate() {
            side_levels[level].1 -= qty;
        }
        side_levels.retain(|(_, qty)| *qty > 0);
        order.status = if order.executed_qty == quantity { "FILLED" } else { "EXPIRED" }.to_owned();
        Ok(order)
    }

    fn find<'a>(state: &'a mut State, params: &HashMap<&str, &str>) -> Option<&'a mut FakeOrder> {
        let symbol = params.get("symbol").copied().unwrap_or("");
        let by_client = params.get("origClientOrderId").copied();
        let by_id = params.get("orderId").and_then(|id| id.parse::<u64>().ok());
        state.orders.iter_mut().find(|order| {
            order.symbol == symbol
                && (by_client == Some(order.client_order_id.as_str()) || by_id == Some(order.order_id))
        })
    }

    fn query(&self, params: &HashMap<&str, &str>) -> FakeAnswer {
        let mut state = self.lock();
        match Self::find(&mut state, params) {
            Some(order) => ok(order_json(order)),
            None => error(400, -2013, "Order does not exist."),
        }
    }

    fn cancel(&self, params: &HashMap<&str, &str>) -> FakeAnswer {
        let mut state = self.lock();
        match Self::find(&mut state, params) {
            Some(order) if ["NEW", "PARTIALLY_FILLED"].contains(&order.status.as_str()) => {
                order.status = "CANCELED".to_owned();
                ok(order_json(order))
            }
            _ => error(400, -2011, "Unknown order sent."),
        }
    }

    fn trades(&self, params: &HashMap<&str, &str>) -> FakeAnswer {
        let mut state = self.lock();
        let Some(order) = Self::find(&mut state, params) else { return ok(json!([])) };
        let order = order.clone();
        let trades: Vec<Value> = order
            .trades
            .iter()
            .map(|trade| {
                json!({"symbol": order.symbol, "id": trade.id, "orderId": order.order_id, "orderListId": -1,
                    "price": text8(trade.price), "qty": text8(trade.qty),
                    "quoteQty": text8(notional(trade.price, trade.qty)), "commission": text8(trade.commission),
                    "commissionAsset": trade.commission_asset, "time": now_ms(), "isBuyer": order.side == "BUY",
                    "isMaker": false, "isBestMatch": true})
            })
            .collect();
        ok(Value::Array(trades))
    }

    fn account(&self) -> FakeAnswer {
        let state = self.lock();
        let balances: Vec<Value> = state
            .balances
            .iter()
            .map(|(asset, free)| json!({"asset": asset, "free": text8(*free), "locked": "0.00000000"}))
            .collect();
        ok(json!({"makerCommission": 10, "takerCommission": 10, "canTrade": true, "canWithdraw": true,
            "canDeposit": true, "updateTime": now_ms(), "accountType": "SPOT", "balances": balances,
            "permissions": ["SPOT"]}))
    }
}

fn affordable_any(state: &State, market: &Market, buying: bool) -> bool {
    let asset = if buying { &market.quote } else { &market.base };
    state.balances.get(asset).copied().unwrap_or(0) > 0
}

fn server_error() -> FakeAnswer {
    error(503, -1001, "Internal error; unable to process your request. Please try again.")
}

fn check_time(params: &HashMap<&str, &str>) -> Option<FakeAnswer> {
    let recv_window: i64 = match params.get("recvWindow") {
        Some(text) => match text.parse() {
            Ok(value) if (1..=60_000).contains(&value) => value,
            _ => return Some(error(400, -1131, "recvWindow must be less than 60000")),
        },
        None => 5_000,
    };
    let Some(timestamp) = params.get("timestamp").and_then(|text| text.parse::<i64>().ok()) else {
        return Some(error(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."));
    };
    let now = now_ms();
    // Binance: accepted when timestamp < serverTime + 1000 and serverTime − timestamp ≤ recvWindow.
    if timestamp >= now + 1_000 || now - timestamp > recv_window {
        return Some(error(400, -1021, "Timestamp for this request is outside of the recvWindow."));
    }
    None
}

fn order_json(order: &FakeOrder) -> Value {
    json!({"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
        "clientOrderId": order.client_order_id, "price": text8(order.price), "origQty": text8(order.orig_qty),
        "executedQty": text8(order.executed_qty), "cummulativeQuoteQty": text8(order.quote_qty),
        "status": order.status, "timeInForce": if order.order_type == "LIMIT" { "IOC" } else { "GTC" },
        "type": order.order_type, "side": order.side, "time": now_ms(), "updateTime": now_ms(),
        "isWorking": true, "selfTradePreventionMode": "NONE"})
}

fn full_response(order: &FakeOrder) -> Value {
    let mut body = order_json(order);
    body["transactTime"] = json!(now_ms());
    body["fills"] = order
        .trades
        .iter()
        .map(|trade| {
            json!({"price": text8(trade.price), "qty": text8(trade.qty), "commission": text8(trade.commission),
                "commissionAsset": trade.commission_asset, "tradeId": trade.id})
        })
        .collect();
    body
}
