//! Binance spot order entry on the wire, without I/O: request signing, the answers' parsers (decimal strings to
//! the desk's units, never through a float) and what each failure means for the hedge worker.
//!
//! Conversions round against the desk: a buy's fill price up and a sell's down, commissions up, balances down.

use hmac::{Hmac, Mac};
use otcd_core::decimal::{parse_scaled, power_of_ten};
use otcd_core::market::{pricing, Side};
use otcd_services::ports::{VenueError, VenueFill, VenueOrderStatus};
use serde::Deserialize;
use sha2::Sha256;

/// Binance writes up to 8 decimals; parsing at 18 keeps any venue text exact before rounding to the desk's scale.
const WIRE_SCALE: u8 = 18;

/// Binance's `signature`: hex HMAC-SHA256 of the total parameters (query string, then body) keyed by the secret.
pub fn signature(secret: &[u8], total_params: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(total_params.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `name=value&...` with values percent-encoded (ours are symbols, decimals and ids; encoding keeps any other
/// text from changing what was signed).
pub fn query_string(params: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in params.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// `units` of `10^-scale` as Binance wants a decimal: no trailing zeros, no trailing point.
pub fn decimal_text(units: i128, scale: u8) -> String {
    let text = otcd_core::decimal::format_scaled(units, scale);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A venue decimal at the desk's `scale`, rounded up or down (exact when it fits). `None`: not a decimal, or
/// negative, or out of range.
pub fn parse_rounded(text: &str, scale: u8, up: bool) -> Option<i128> {
    let wide = parse_scaled(text, WIRE_SCALE).ok().filter(|value| *value >= 0)?;
    let divisor = power_of_ten(WIRE_SCALE.checked_sub(scale)?);
    let (whole, rest) = (wide / divisor, wide % divisor);
    Some(if up && rest != 0 { whole + 1 } else { whole })
}

/// What the adapter needs to know of one symbol to read Binance's answers in the desk's units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolUnits {
    pub instrument: String,
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub base_scale: u8,
    pub quote_scale: u8,
    pub price_scale: u8,
}

/// A failed call, as the HTTP layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The connection was never made: the request did not reach the venue.
    NotSent(String),
    /// Sent, but no complete answer in time (timeout, reset, truncated body): the outcome is unknown.
    NoAnswer(String),
    /// An HTTP error status with Binance's `{"code", "msg"}` when the body had one.
    Status { status: u16, code: Option<i64>, message: String },
}

impl CallFailure {
    /// From an error status and its body.
    pub fn from_status(status: u16, body: &[u8]) -> CallFailure {
        #[derive(Deserialize)]
        struct ErrorBody {
            code: i64,
            msg: String,
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let message = match &parsed {
            Some(error) => error.msg.chars().take(200).collect(),
            None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        };
        CallFailure::Status { status, code: parsed.map(|error| error.code), message }
    }

    /// Binance's codes that need their own handling.
    pub fn code(&self) -> Option<i64> {
        match self {
            CallFailure::Status { code, .. } => *code,
            _ => None,
        }
    }

    /// 429 (request rate exceeded) or 418 (the IP is banned for not backing off): stop asking for a while.
    pub fn rate_limited(&self) -> bool {
        matches!(self, CallFailure::Status { status: 429 | 418, .. })
    }

    /// `-2010` "Duplicate order sent.": an order with this client order id exists; ask for it.
    pub fn duplicate_order(&self) -> bool {
        matches!(self, CallFailure::Status { code: Some(-2010), message, .. } if message.contains("Duplicate order"))
    }

    /// `-2013` NO_SUCH_ORDER.
    pub fn no_such_order(&self) -> bool {
        self.code() == Some(-2013)
    }
}

/// What a failed `POST /api/v3/order` means for the hedge worker:
/// - never sent, rate limited, refused for the clock (`-1021`) or by the firewall (403): `Unavailable` (the
///   order does not exist; the worker asks its status, then places it again next round);
/// - no answer, or 5xx (Binance: "the execution status is unknown"): `Timeout` (the worker asks for it by client
///   order id before anything else);
/// - any other 4xx (`-2010` NEW_ORDER_REJECTED, filters, `-1022` bad signature, unknown symbol): `Rejected`
///   (it will not exist; the engine routes the rest elsewhere).
pub fn place_error(failure: &CallFailure) -> VenueError {
    match failure {
        CallFailure::NotSent(error) => VenueError::Unavailable(format!("not sent: {error}")),
        CallFailure::NoAnswer(_) => VenueError::Timeout,
        CallFailure::Status { status, .. } if *status >= 500 => VenueError::Timeout,
        CallFailure::Status { status: 429 | 418 | 403, message, .. } => {
            VenueError::Unavailable(format!("rate limited: {message}"))
        }
        CallFailure::Status { code: Some(-1021), message, .. } => {
            VenueError::Unavailable(format!("timestamp outside recvWindow: {message}"))
        }
        CallFailure::Status { code, message, .. } => {
            VenueError::Rejected(format!("binance {}: {message}", code.unwrap_or(0)))
        }
    }
}

/// What a failed status query (`GET /api/v3/order`, `myTrades`) or cancel means: nothing is known, ask later.
pub fn query_error(failure: &CallFailure) -> VenueError {
    match failure {
        CallFailure::NotSent(error) | CallFailure::NoAnswer(error) => VenueError::Unavailable(error.clone()),
        CallFailure::Status { status, code, message } => {
            VenueError::Unavailable(format!("binance HTTP {status} {}: {message}", code.unwrap_or(0)))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    order_id: u64,
    status: String,
    side: String,
    executed_qty: String,
    #[serde(default)]
    fills: Option<Vec<WireFill>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFill {
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
    trade_id: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTrade {
    id: u64,
    order_id: u64,
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
}

/// An order as `POST` (FULL) or `GET /api/v3/order` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOrder {
    pub order_id: u64,
    /// NEW and PARTIALLY_FILLED (and PENDING_NEW) may still fill.
    pub open: bool,
    pub status: String,
    pub side: Side,
    /// Base minor units.
    pub executed: i128,
    /// The FULL answer's fills; `None` from a status query (they are in `myTrades`).
    pub fills: Option<Vec<VenueFill>>,
}

/// A venue's answer that is not what Binance documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("binance answered an unexpected body: {0}")]
pub struct Malformed(pub String);

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// The fill id: Binance's `tradeId`, unique per symbol, so prefixed with it.
pub fn fill_id(symbol: &str, trade_id: u64) -> String {
    format!("{symbol}-{trade_id}")
}

/// One execution in the desk's units; `fee` in the quote asset's minor units (a commission charged in the base
/// asset is valued at the fill price; in any other asset, such as BNB, it is the configured taker fee of the
/// fill's quote amount).
pub fn fill(
    units: &SymbolUnits,
    side: Side,
    taker_fee_centi_bps: i128,
    trade_id: u64,
    (price, qty): (&str, &str),
    (commission, commission_asset): (&str, &str),
) -> Result<VenueFill, Malformed> {
    let buying = side == Side::Buy;
    let price_text = price;
    let price = parse_rounded(price_text, units.price_scale, buying)
        .filter(|price| *price > 0)
        .ok_or_else(|| malformed(format!("fill price {price_text:?}")))?;
    let quantity = parse_rounded(qty, units.base_scale, false)
        .filter(|quantity| *quantity > 0)
        .ok_or_else(|| malformed(format!("fill qty {qty:?}")))?;
    let quote_of = |base: i128| {
        pricing::quote_amount(price, base, units.price_scale, units.base_scale, units.quote_scale, true).ok()
    };
    let fee = if commission_asset == units.quote {
        parse_rounded(commission, units.quote_scale, true)
    } else if commission_asset == units.base {
        match parse_rounded(commission, units.base_scale, true) {
            Some(0) => Some(0),
            Some(base) => quote_of(base),
            None => None,
        }
    } else {
        quote_of(quantity).and_then(|amount| pricing::fee_amount(amount, taker_fee_centi_bps).ok())
    };
    let fee = fee.ok_or_else(|| malformed(format!("commission {commission:?} {commission_asset:?}")))?;
    Ok(VenueFill { fill_id: fill_id(&units.symbol, trade_id), quantity, price, fee })
}

/// `POST /api/v3/order` (FULL) or `GET /api/v3/order`.
pub fn parse_order(body: &[u8], units: &SymbolUnits, taker_fee_centi_bps: i128) -> Result<ParsedOrder, Malformed> {
    let wire: WireOrder = serde_json::from_slice(body).map_err(|error| malformed(error.to_string()))?;
    let side = match wire.side.as_str() {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        other => return Err(malformed(format!("side {other:?}"))),
    };
    let open = match wire.status.as_str() {
        "NEW" | "PARTIALLY_FILLED" | "PENDING_NEW" | "PENDING_CANCEL" => true,
        "FILLED" | "CANCELED" | "REJECTED" | "EXPIRED" | "EXPIRED_IN_MATCH" => false,
        other => return Err(malformed(format!("order status {other:?}"))),
    };
    let executed = parse_rounded(&wire.executed_qty, units.base_scale, false)
        .ok_or_else(|| malformed(format!("executedQty {:?}", wire.executed_qty)))?;
    let fills = match wire.fills {
        None => None,
        Some(fills) => Some(
            fills
                .iter()
                .map(|f| {
                    let (price, qty) = (f.price.as_str(), f.qty.as_str());
                    let commission = (f.commission.as_str(), f.commission_asset.as_str());
                    fill(units, side, taker_fee_centi_bps, f.trade_id, (price, qty), commission)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(ParsedOrder { order_id: wire.order_id, open, status: wire.status, side, executed, fills })
}

/// `GET /api/v3/myTrades?orderId=`: the order's executions (trades of other orders are ignored).
pub fn parse_trades(
    body: &[u8],
    units: &SymbolUnits,
    side: Side,
    taker_fee_centi_bps: i128,
    order_id: u64,
) -> Result<Vec<VenueFill>, Malformed> {
    let trades: Vec<WireTrade> = serde_json::from_slice(body).map_err(|error| malformed(error.to_string()))?;
    trades
        .iter()
        .filter(|trade| trade.order_id == order_id)
        .map(|t| {
            let commission = (t.commission.as_str(), t.commission_asset.as_str());
            fill(units, side, taker_fee_centi_bps, t.id, (t.price.as_str(), t.qty.as_str()), commission)
        })
        .collect()
}

/// `GET /api/v3/account`: each listed asset's free balance, in minor units at `scale_of(asset)` (rounded down);
/// assets the desk does not know (`scale_of` answers `None`) are skipped.
pub fn parse_balances(body: &[u8], scale_of: impl Fn(&str) -> Option<u8>) -> Result<Vec<(String, i128)>, Malformed> {
    #[derive(Deserialize)]
    struct Account {
        balances: Vec<Balance>,
    }
    #[derive(Deserialize)]
    struct Balance {
        asset: String,
        free: String,
    }
    let account: Account = serde_json::from_slice(body).map_err(|error| malformed(error.to_string()))?;
    let mut out = Vec::new();
    for balance in account.balances {
        let Some(scale) = scale_of(&balance.asset) else { continue };
        let free = parse_rounded(&balance.free, scale, false)
            .ok_or_else(|| malformed(format!("free {:?} of {}", balance.free, balance.asset)))?;
        out.push((balance.asset, free));
    }
    Ok(out)
}

/// The port's status of a parsed order with its fills.
pub fn status_of(order: &ParsedOrder, fills: Vec<VenueFill>) -> VenueOrderStatus {
    let reason = match order.status.as_str() {
        "EXPIRED" | "EXPIRED_IN_MATCH" => Some("immediate-or-cancel: the rest expired at binance".to_owned()),
        "CANCELED" => Some("cancelled at binance".to_owned()),
        "REJECTED" => Some("rejected by binance".to_owned()),
        _ => None,
    };
    VenueOrderStatus { venue_order_id: order.order_id.to_string(), open: order.open, fills, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc_usdt() -> SymbolUnits {
        SymbolUnits {
            instrument: "BTC-USDT".into(),
            symbol: "BTCUSDT".into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            base_scale: 8,
            quote_scale: 6,
            price_scale: 2,
        }
    }

    #[test]
    fn the_signature_is_binances_documented_example() {
        // Binance's "SIGNED Endpoint Examples for POST /api/v3/order" (HMAC keys): this secret and query string
        // sign to this hex digest.
        let secret = b"NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000\
                     &timestamp=1499827319559";
        assert_eq!(signature(secret, query), "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71");
        let params = [
            ("symbol", "LTCBTC".to_owned()),
            ("side", "BUY".to_owned()),
            ("type", "LIMIT".to_owned()),
            ("timeInForce", "GTC".to_owned()),
            ("quantity", "1".to_owned()),
            ("price", "0.1".to_owned()),
            ("recvWindow", "5000".to_owned()),
            ("timestamp", "1499827319559".to_owned()),
        ];
        assert_eq!(query_string(&params), query);
        assert_eq!(query_string(&[("id", "a b&c".to_owned())]), "id=a%20b%26c");
    }

    #[test]
    fn decimals_are_written_without_trailing_zeros_and_read_rounding_against_the_desk() {
        assert_eq!(decimal_text(50_000_000, 8), "0.5");
        assert_eq!(decimal_text(5_001_000, 2), "50010");
        assert_eq!(decimal_text(5_001_050, 2), "50010.5");
        assert_eq!(parse_rounded("50010.12345678", 2, true), Some(5_001_013));
        assert_eq!(parse_rounded("50010.12345678", 2, false), Some(5_001_012));
        assert_eq!(parse_rounded("50010.10000000", 2, true), Some(5_001_010));
        assert_eq!(parse_rounded("-1", 2, true), None);
        assert_eq!(parse_rounded("1e3", 2, true), None);
    }

    #[test]
    fn a_full_answer_with_a_partial_fill_parses_into_desk_units() {
        let body = br#"{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"hg_0000000001-1-0",
            "transactTime":1507725176595,"price":"50010.00000000","origQty":"1.00000000","executedQty":"0.40000000",
            "cummulativeQuoteQty":"20003.00000000","status":"EXPIRED","timeInForce":"IOC","type":"LIMIT","side":"BUY",
            "fills":[{"price":"50005.00000000","qty":"0.30000000","commission":"15.00150000","commissionAsset":"USDT","tradeId":56},
                     {"price":"50010.00000000","qty":"0.10000000","commission":"0.00010000","commissionAsset":"BTC","tradeId":57}]}"#;
        let order = parse_order(body, &btc_usdt(), 1_000).unwrap();
        assert_eq!((order.order_id, order.open, order.executed), (28, false, 40_000_000));
        let fills = order.fills.clone().unwrap();
        assert_eq!(
            fills[0],
            VenueFill { fill_id: "BTCUSDT-56".into(), quantity: 30_000_000, price: 5_000_500, fee: 15_001_500 }
        );
        // 0.0001 BTC at 50010.00 = 5.001 USDT.
        assert_eq!(
            fills[1],
            VenueFill { fill_id: "BTCUSDT-57".into(), quantity: 10_000_000, price: 5_001_000, fee: 5_001_000 }
        );
        let status = status_of(&order, fills);
        assert_eq!((status.venue_order_id.as_str(), status.open), ("28", false));
        assert!(status.reason.unwrap().contains("expired"));
    }

    #[test]
    fn a_commission_in_another_asset_is_the_configured_taker_fee() {
        // 0.5 BTC at 50000 = 25000 USDT; 10 bps = 25 USDT.
        let fill = fill(&btc_usdt(), Side::Sell, 1_000, 9, ("50000.00", "0.5"), ("0.01", "BNB")).unwrap();
        assert_eq!((fill.quantity, fill.price, fill.fee), (50_000_000, 5_000_000, 25_000_000));
        // A sell's price rounds down.
        let fill = super::fill(&btc_usdt(), Side::Sell, 0, 9, ("50000.009", "1"), ("0", "USDT")).unwrap();
        assert_eq!(fill.price, 5_000_000);
    }

    #[test]
    fn trades_and_balances_parse() {
        let trades = br#"[{"symbol":"BTCUSDT","id":57,"orderId":28,"price":"50010.00","qty":"0.1","quoteQty":"5001",
            "commission":"5.001","commissionAsset":"USDT","time":1,"isBuyer":true,"isMaker":false,"isBestMatch":true},
            {"symbol":"BTCUSDT","id":58,"orderId":29,"price":"1","qty":"1","commission":"0","commissionAsset":"USDT"}]"#;
        let fills = parse_trades(trades, &btc_usdt(), Side::Buy, 0, 28).unwrap();
        assert_eq!(
            fills,
            [VenueFill { fill_id: "BTCUSDT-57".into(), quantity: 10_000_000, price: 5_001_000, fee: 5_001_000 }]
        );
        let account = br#"{"balances":[{"asset":"BTC","free":"1.23456789","locked":"0"},
            {"asset":"USDT","free":"100.12345678","locked":"0"},{"asset":"BNB","free":"1","locked":"0"}]}"#;
        let scale = |asset: &str| match asset {
            "BTC" => Some(8),
            "USDT" => Some(6),
            _ => None,
        };
        assert_eq!(
            parse_balances(account, scale).unwrap(),
            [("BTC".to_owned(), 123_456_789), ("USDT".to_owned(), 100_123_456)]
        );
        let weird = br#"{"orderId":1,"status":"WEIRD","side":"BUY","executedQty":"0"}"#;
        assert!(parse_order(weird, &btc_usdt(), 0).is_err());
    }

    #[test]
    fn failures_map_to_what_the_hedge_worker_must_do() {
        let status = |status: u16, body: &str| CallFailure::from_status(status, body.as_bytes());
        let rejected = status(400, r#"{"code":-2010,"msg":"Account has insufficient balance for requested action."}"#);
        assert!(matches!(place_error(&rejected), VenueError::Rejected(reason) if reason.contains("insufficient")));
        assert!(!rejected.duplicate_order());
        assert!(status(400, r#"{"code":-2010,"msg":"Duplicate order sent."}"#).duplicate_order());
        assert_eq!(place_error(&status(503, "<html>")), VenueError::Timeout);
        assert_eq!(place_error(&status(500, r#"{"code":-1001,"msg":"Internal error"}"#)), VenueError::Timeout);
        assert_eq!(place_error(&CallFailure::NoAnswer("timed out".into())), VenueError::Timeout);
        assert!(matches!(place_error(&CallFailure::NotSent("refused".into())), VenueError::Unavailable(_)));
        let limited = status(429, r#"{"code":-1003,"msg":"Too many requests"}"#);
        assert!(limited.rate_limited() && status(418, "").rate_limited());
        assert!(matches!(place_error(&limited), VenueError::Unavailable(_)));
        let clock = status(400, r#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#);
        assert!(matches!(place_error(&clock), VenueError::Unavailable(_)));
        let signature = status(400, r#"{"code":-1022,"msg":"Signature for this request is not valid."}"#);
        assert!(matches!(place_error(&signature), VenueError::Rejected(reason) if reason.contains("-1022")));
        assert!(status(400, r#"{"code":-2013,"msg":"Order does not exist."}"#).no_such_order());
        assert!(matches!(query_error(&status(502, "")), VenueError::Unavailable(_)));
    }
}
