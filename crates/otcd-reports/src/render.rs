//! Reports as tables: the same columns in JSON (`{"items": [{column: value}], ...}`) and CSV (RFC 4180, header
//! line first). Amounts are decimal strings at the asset's scale, times RFC 3339 UTC with milliseconds, USD
//! values in dollars with 2 decimals. Shared by the admin API and the `otcd report` CLI.

use crate::csv::CsvWriter;
use crate::trades::{TradeFilter, TradeRow};
use crate::{Projection, PAGE_LIMIT_MAX};
use otcd_core::catalog::AssetCode;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::{LedgerQuery, Page};
use otcd_core::ids::ClientId;
use otcd_core::ledger::{Purpose, TransactionKind};
use otcd_core::market::Side;
use otcd_core::time::TimestampMs;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Most rows one CSV export (one request, or one page of the CLI's loop) returns.
pub const EXPORT_ROWS_MAX: usize = 100_000;
/// Most trades one aggregate report (volume, revenue) reads; a wider window is refused (narrow it).
pub const AGGREGATE_TRADES_MAX: usize = 20_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Trades,
    Positions,
    Volume,
    Revenue,
    Statement,
    Settlement,
    Kyc,
    Screening,
    Alerts,
    Hedging,
}

impl ReportKind {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "trades" => Self::Trades,
            "positions" => Self::Positions,
            "volume" => Self::Volume,
            "revenue" => Self::Revenue,
            "statement" => Self::Statement,
            "settlement" => Self::Settlement,
            "kyc" => Self::Kyc,
            "screening" => Self::Screening,
            "alerts" => Self::Alerts,
            "hedging" => Self::Hedging,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Trades => "trades",
            Self::Positions => "positions",
            Self::Volume => "volume",
            Self::Revenue => "revenue",
            Self::Statement => "statement",
            Self::Settlement => "settlement",
            Self::Kyc => "kyc",
            Self::Screening => "screening",
            Self::Alerts => "alerts",
            Self::Hedging => "hedging",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Csv,
}

/// Query parameters, as text (from the query string or the command line).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    pub client_id: Option<String>,
    pub instrument: Option<String>,
    pub asset: Option<String>,
    pub side: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A parameter is missing or malformed (`invalid_request`, 400).
    #[error("{field}: {detail}")]
    Invalid { field: &'static str, detail: String },
    /// No such client (`not_found`, 404).
    #[error("{0}")]
    NotFound(String),
}

fn invalid(field: &'static str, detail: impl Into<String>) -> ReportError {
    ReportError::Invalid { field, detail: detail.into() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: String,
    /// Pass as `cursor` for the next page (also in the JSON body).
    pub next_cursor: Option<String>,
    pub rows: usize,
}

struct Table {
    columns: &'static [&'static str],
    rows: Vec<Vec<Value>>,
    next_cursor: Option<String>,
    extra: Vec<(&'static str, Value)>,
}

struct Parsed {
    client_id: Option<ClientId>,
    instrument: Option<String>,
    asset: Option<AssetCode>,
    side: Option<Side>,
    status: Option<String>,
    kind: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    limit: usize,
    cursor: Option<u64>,
    format: Format,
}

pub fn parse_time(field: &'static str, text: &str) -> Result<i64, ReportError> {
    let moment = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|error| invalid(field, format!("must be an RFC 3339 time: {error}")))?;
    i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid(field, "is out of range"))
}

pub fn format_time(at: i64) -> String {
    let Ok(moment) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000) else {
        return "invalid".into();
    };
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    moment.format(&format).unwrap_or_else(|_| "invalid".into())
}

fn format_day(at: i64) -> String {
    format_time(at.div_euclid(86_400_000) * 86_400_000)[..10].to_owned()
}

fn parse(kind: ReportKind, params: &ReportParams, projection: &Projection) -> Result<Parsed, ReportError> {
    let catalog = projection.desk().catalog();
    let format = match params.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => return Err(invalid("format", "must be json or csv")),
    };
    let max = if format == Format::Csv { EXPORT_ROWS_MAX } else { PAGE_LIMIT_MAX };
    let limit = params.limit.unwrap_or(if format == Format::Csv { EXPORT_ROWS_MAX } else { 100 });
    if !(1..=max).contains(&limit) {
        return Err(invalid("limit", format!("must be between 1 and {max}")));
    }
    let client_id = match &params.client_id {
        Some(text) => {
            let id = ClientId::parse(text).map_err(|error| invalid("client_id", error.to_string()))?;
            if projection.desk().client(&id).is_none() {
                return Err(ReportError::NotFound(format!("no client {text}")));
            }
            Some(id)
        }
        None => None,
    };
    if let Some(symbol) = &params.instrument {
        if catalog.and_then(|catalog| catalog.instrument(symbol)).is_none() {
            return Err(invalid("instrument", "is not in the catalog"));
        }
    }
    let asset = match &params.asset {
        Some(text) => Some(
            catalog
                .and_then(|catalog| catalog.asset_by_text(text))
                .map(|asset| asset.code)
                .ok_or_else(|| invalid("asset", "is not in the catalog"))?,
        ),
        None => None,
    };
    let side = match params.side.as_deref() {
        None => None,
        Some("buy") => Some(Side::Buy),
        Some("sell") => Some(Side::Sell),
        Some(_) => return Err(invalid("side", "must be buy or sell")),
    };
    let from = params.from.as_deref().map(|text| parse_time("from", text)).transpose()?;
    let to = params.to.as_deref().map(|text| parse_time("to", text)).transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            return Err(invalid("to", "must not be before from"));
        }
    }
    let cursor = params
        .cursor
        .as_deref()
        .map(|text| text.parse::<u64>().map_err(|_| invalid("cursor", "is not a cursor this report returned")))
        .transpose()?;
    if kind == ReportKind::Statement && client_id.is_none() {
        return Err(invalid("client_id", "a statement is for one client"));
    }
    Ok(Parsed {
        client_id,
        instrument: params.instrument.clone(),
        asset,
        side,
        status: params.status.clone(),
        kind: params.kind.clone(),
        from,
        to,
        limit,
        cursor,
        format,
    })
}

/// Renders one report from the projection.
pub fn render(projection: &Projection, kind: ReportKind, params: &ReportParams) -> Result<Rendered, ReportError> {
    let parsed = parse(kind, params, projection)?;
    if (kind, parsed.format) == (ReportKind::Trades, Format::Csv) {
        // The export read most: written straight into one buffer, not through a table of JSON values.
        return Ok(trades_csv(projection, &parsed));
    }
    let table = match kind {
        ReportKind::Trades => trades(projection, &parsed),
        ReportKind::Positions => positions(projection),
        ReportKind::Volume => volume(projection, &parsed)?,
        ReportKind::Revenue => revenue(projection, &parsed)?,
        ReportKind::Statement => statement(projection, &parsed),
        ReportKind::Settlement => settlement(projection, &parsed),
        ReportKind::Kyc => kyc(projection, &parsed),
        ReportKind::Screening => screening(projection, &parsed),
        ReportKind::Alerts => alerts(projection, &parsed),
        ReportKind::Hedging => hedging(projection),
    };
    Ok(match parsed.format {
        Format::Json => to_json(kind, projection.applied_seq(), table),
        Format::Csv => to_csv(table),
    })
}

fn to_json(kind: ReportKind, seq: u64, table: Table) -> Rendered {
    let rows = table.rows.len();
    let items: Vec<Value> = table
        .rows
        .into_iter()
        .map(|row| Value::Object(table.columns.iter().map(|column| (*column).to_owned()).zip(row).collect()))
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("report".into(), json!(kind.name()));
    body.insert("as_of_seq".into(), json!(seq));
    for (key, value) in table.extra {
        body.insert(key.into(), value);
    }
    body.insert("items".into(), Value::Array(items));
    body.insert("next_cursor".into(), json!(table.next_cursor));
    Rendered {
        content_type: "application/json",
        body: Value::Object(body).to_string(),
        next_cursor: table.next_cursor,
        rows,
    }
}

fn to_csv(table: Table) -> Rendered {
    let mut csv = CsvWriter::with_capacity(CSV_LINE_BYTES_ESTIMATE * (table.rows.len() + 1));
    csv.header(table.columns);
    for row in &table.rows {
        for value in row {
            csv.value(value);
        }
        csv.end_line();
    }
    Rendered {
        content_type: crate::csv::CONTENT_TYPE,
        body: csv.finish(),
        next_cursor: table.next_cursor,
        rows: table.rows.len(),
    }
}

/// Room reserved per CSV line (a trade line is about 150 bytes), so the buffer rarely grows.
const CSV_LINE_BYTES_ESTIMATE: usize = 160;

fn usd(cents: Option<i128>) -> Value {
    cents.map_or(Value::Null, |cents| json!(format_scaled(cents, 2)))
}

struct Scales<'a>(&'a Projection);

impl Scales<'_> {
    fn asset(&self, code: &AssetCode) -> u8 {
        self.0.desk().catalog().and_then(|catalog| catalog.asset(code)).map_or(0, |asset| asset.scale)
    }
    fn price(&self, symbol: &str) -> u8 {
        self.0
            .desk()
            .catalog()
            .and_then(|catalog| catalog.instrument(symbol))
            .map_or(0, |instrument| instrument.price_scale)
    }
}

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn filter_of(parsed: &Parsed) -> TradeFilter {
    TradeFilter {
        client_id: parsed.client_id.clone(),
        instrument: parsed.instrument.clone(),
        asset: parsed.asset,
        side: parsed.side,
        from: parsed.from,
        to: parsed.to,
        after: parsed.cursor,
    }
}

pub const TRADE_COLUMNS: &[&str] = &[
    "trade_id",
    "order_id",
    "client_id",
    "instrument",
    "side",
    "price",
    "quantity",
    "quote_amount",
    "notional_usd",
    "spread_revenue",
    "spread_revenue_usd",
    "executed_at",
    "seq",
    "fee",
];

fn trade_row(projection: &Projection, row: &TradeRow) -> Vec<Value> {
    let log = projection.trades();
    let scales = Scales(projection);
    let (symbol, base, quote) = log.instrument(row.instrument);
    let quote_scale = scales.asset(&quote);
    vec![
        json!(format!("t_{:012}", row.number)),
        json!(format!("o_{:012}", row.order_number)),
        json!(log.client_id(row.client).as_str()),
        json!(symbol),
        json!(side_text(row.side)),
        json!(format_scaled(row.price, scales.price(symbol))),
        json!(format_scaled(row.quantity, scales.asset(&base))),
        json!(format_scaled(row.quote_amount, quote_scale)),
        usd(row.notional_usd),
        row.spread_revenue.map_or(Value::Null, |revenue| json!(format_scaled(revenue, quote_scale))),
        usd(row.spread_revenue_usd),
        json!(format_time(row.executed_at)),
        json!(row.seq),
        json!(format_scaled(row.fee, quote_scale)),
    ]
}

/// The trade log CSV through the generic table path, to check the direct writer against it.
#[cfg(test)]
pub(crate) fn trades_csv_through_table(projection: &Projection, params: &ReportParams) -> String {
    let parsed = parse(ReportKind::Trades, params, projection).expect("valid parameters");
    to_csv(trades(projection, &parsed)).body
}

/// Scales an instrument's fields are written at: (price, base, quote).
type RowScales = (u8, u8, u8);

/// The trade log as CSV, the same bytes as the generic table path (tested), written field by field.
fn trades_csv(projection: &Projection, parsed: &Parsed) -> Rendered {
    let page = projection.trades().query(&filter_of(parsed), parsed.limit);
    let log = projection.trades();
    let scales = Scales(projection);
    let mut per_instrument: Vec<Option<RowScales>> = Vec::new();
    let mut csv = CsvWriter::with_capacity(CSV_LINE_BYTES_ESTIMATE * (page.rows.len() + 1));
    csv.header(TRADE_COLUMNS);
    for row in &page.rows {
        let (symbol, base, quote) = log.instrument(row.instrument);
        let index = usize::from(row.instrument);
        if per_instrument.len() <= index {
            per_instrument.resize(index + 1, None);
        }
        let (price_scale, base_scale, quote_scale) = *per_instrument[index]
            .get_or_insert_with(|| (scales.price(symbol), scales.asset(&base), scales.asset(&quote)));
        csv.padded_id("t_", row.number, 12);
        csv.padded_id("o_", row.order_number, 12);
        csv.text(log.client_id(row.client).as_str());
        csv.text(symbol);
        csv.text(side_text(row.side));
        csv.scaled(row.price, price_scale);
        csv.scaled(row.quantity, base_scale);
        csv.scaled(row.quote_amount, quote_scale);
        csv.optional_scaled(row.notional_usd, 2);
        csv.optional_scaled(row.spread_revenue, quote_scale);
        csv.optional_scaled(row.spread_revenue_usd, 2);
        csv.time(row.executed_at);
        csv.number(row.seq);
        csv.scaled(row.fee, quote_scale);
        csv.end_line();
    }
    Rendered {
        content_type: crate::csv::CONTENT_TYPE,
        body: csv.finish(),
        next_cursor: page.next_cursor.map(|cursor| cursor.to_string()),
        rows: page.rows.len(),
    }
}

fn trades(projection: &Projection, parsed: &Parsed) -> Table {
    let page = projection.trades().query(&filter_of(parsed), parsed.limit);
    Table {
        columns: TRADE_COLUMNS,
        rows: page.rows.iter().map(|row| trade_row(projection, row)).collect(),
        next_cursor: page.next_cursor.map(|cursor| cursor.to_string()),
        extra: Vec::new(),
    }
}

fn positions(projection: &Projection) -> Table {
    let scales = Scales(projection);
    let mut rows = Vec::new();
    let mut total_realized: Option<i128> = Some(0);
    for asset in projection.desk().catalog().map(|catalog| catalog.assets().to_vec()).unwrap_or_default() {
        let position = projection.positions().get(&asset.code);
        let inventory = projection.desk().desk_position(asset.code);
        if position.is_none() && inventory == 0 {
            continue;
        }
        let default = crate::Position::new(asset.code);
        let position = position.unwrap_or(&default);
        let realized = position.valued.then_some(position.realized_pnl_usd);
        total_realized = total_realized.and_then(|total| realized.map(|realized| total + realized));
        rows.push(vec![
            json!(asset.code.as_str()),
            json!(format_scaled(position.quantity, scales.asset(&asset.code))),
            json!(format_scaled(inventory, scales.asset(&asset.code))),
            usd(position.valued.then_some(position.cost_basis_usd)),
            usd(position.average_cost_usd(asset.scale)),
            usd(realized),
            json!(position.trades),
            json!(position.valued),
        ]);
    }
    Table {
        columns: &[
            "asset",
            "traded_position",
            "inventory",
            "cost_basis_usd",
            "average_cost_usd",
            "realized_pnl_usd",
            "trades",
            "valued",
        ],
        rows,
        next_cursor: None,
        extra: vec![("total_realized_pnl_usd", usd(total_realized)), ("method", json!("average_cost_usd"))],
    }
}

/// Every trade matching the filter (no paging), for aggregates.
fn matching_trades<'a>(projection: &'a Projection, parsed: &Parsed) -> Result<Vec<&'a TradeRow>, ReportError> {
    let filter = TradeFilter { after: None, ..filter_of(parsed) };
    let page = projection.trades().query(&filter, AGGREGATE_TRADES_MAX);
    if page.next_cursor.is_some() {
        return Err(invalid("to", format!("more than {AGGREGATE_TRADES_MAX} trades match; narrow the window")));
    }
    Ok(page.rows)
}

fn paged(mut rows: Vec<Vec<Value>>, parsed: &Parsed) -> (Vec<Vec<Value>>, Option<String>) {
    let start = usize::try_from(parsed.cursor.unwrap_or(0)).unwrap_or(usize::MAX).min(rows.len());
    let end = start.saturating_add(parsed.limit).min(rows.len());
    let next = (end < rows.len()).then(|| end.to_string());
    rows.truncate(end);
    (rows.split_off(start), next)
}

fn volume(projection: &Projection, parsed: &Parsed) -> Result<Table, ReportError> {
    #[derive(Default)]
    struct Volume {
        trades: u64,
        bought: i128,
        sold: i128,
        quote_volume: i128,
        notional_usd: i128,
        unknown_usd: u64,
    }
    let log = projection.trades();
    let mut groups: BTreeMap<(i64, String, u16), Volume> = BTreeMap::new();
    for row in matching_trades(projection, parsed)? {
        let day = row.executed_at.div_euclid(86_400_000);
        let entry = groups.entry((day, log.client_id(row.client).to_string(), row.instrument)).or_default();
        entry.trades += 1;
        match row.side {
            Side::Buy => entry.bought += row.quantity,
            Side::Sell => entry.sold += row.quantity,
        }
        entry.quote_volume += row.quote_amount;
        match row.notional_usd {
            Some(notional) => entry.notional_usd += notional,
            None => entry.unknown_usd += 1,
        }
    }
    let scales = Scales(projection);
    let rows = groups
        .into_iter()
        .map(|((day, client, instrument), volume)| {
            let (symbol, base, quote) = log.instrument(instrument);
            vec![
                json!(format_day(day * 86_400_000)),
                json!(client),
                json!(symbol),
                json!(volume.trades),
                json!(format_scaled(volume.bought, scales.asset(&base))),
                json!(format_scaled(volume.sold, scales.asset(&base))),
                json!(format_scaled(volume.bought + volume.sold, scales.asset(&base))),
                json!(format_scaled(volume.quote_volume, scales.asset(&quote))),
                usd(Some(volume.notional_usd)),
                json!(volume.unknown_usd),
            ]
        })
        .collect();
    let (rows, next_cursor) = paged(rows, parsed);
    Ok(Table {
        columns: &[
            "day",
            "client_id",
            "instrument",
            "trades",
            "buy_quantity",
            "sell_quantity",
            "base_volume",
            "quote_volume",
            "notional_usd",
            "trades_without_usd",
        ],
        rows,
        next_cursor,
        extra: Vec::new(),
    })
}

fn revenue(projection: &Projection, parsed: &Parsed) -> Result<Table, ReportError> {
    #[derive(Default)]
    struct Revenue {
        trades: u64,
        priced: u64,
        spread: i128,
        spread_usd: i128,
        unknown_usd: u64,
        fee: i128,
        fee_usd: i128,
    }
    let log = projection.trades();
    let mut groups: BTreeMap<(i64, u16), Revenue> = BTreeMap::new();
    let (mut total_usd, mut total_unknown, mut total_fee_usd) = (0i128, 0u64, 0i128);
    for row in matching_trades(projection, parsed)? {
        let entry = groups.entry((row.executed_at.div_euclid(86_400_000), row.instrument)).or_default();
        entry.trades += 1;
        entry.fee += row.fee;
        // A fee without a USD rate is counted in its own asset only (the row's trades_without_usd says so).
        let fee_usd = row.fee_usd.unwrap_or(0);
        entry.fee_usd += fee_usd;
        total_fee_usd += fee_usd;
        if let Some(spread) = row.spread_revenue {
            entry.priced += 1;
            entry.spread += spread;
        }
        match row.spread_revenue_usd {
            Some(usd) => {
                entry.spread_usd += usd;
                total_usd += usd;
            }
            None => {
                entry.unknown_usd += 1;
                total_unknown += 1;
            }
        }
    }
    let scales = Scales(projection);
    let rows = groups
        .into_iter()
        .map(|((day, instrument), revenue)| {
            let (symbol, _, quote) = log.instrument(instrument);
            vec![
                json!(format_day(day * 86_400_000)),
                json!(symbol),
                json!(quote.as_str()),
                json!(revenue.trades),
                json!(revenue.priced),
                json!(format_scaled(revenue.spread, scales.asset(&quote))),
                usd(Some(revenue.spread_usd)),
                json!(revenue.unknown_usd),
                usd(Some(revenue.fee_usd)),
                json!(format_scaled(revenue.fee, scales.asset(&quote))),
            ]
        })
        .collect();
    let (rows, next_cursor) = paged(rows, parsed);
    Ok(Table {
        columns: &[
            "day",
            "instrument",
            "quote_asset",
            "trades",
            "trades_with_reference",
            "spread_revenue",
            "spread_revenue_usd",
            "trades_without_usd",
            "fee_revenue_usd",
            "fee_revenue",
        ],
        rows,
        next_cursor,
        extra: vec![
            ("total_spread_revenue_usd", usd(Some(total_usd))),
            ("total_trades_without_usd", json!(total_unknown)),
            ("total_fee_revenue_usd", usd(Some(total_fee_usd))),
        ],
    })
}

fn kind_text(kind: &TransactionKind) -> (&'static str, String) {
    kind.label()
}

fn statement(projection: &Projection, parsed: &Parsed) -> Table {
    let client_id = parsed.client_id.clone().expect("checked in parse");
    let query = LedgerQuery {
        asset: parsed.asset,
        from: parsed.from.map(TimestampMs),
        to: parsed.to.map(TimestampMs),
        after: parsed.cursor,
        limit: parsed.limit.min(PAGE_LIMIT_MAX),
    };
    let Page { items, next_cursor } = projection.desk().ledger_lines(&client_id, &query);
    let rows = items
        .iter()
        .map(|line| {
            let (kind, reference) = kind_text(&line.kind);
            let account = match line.purpose {
                Purpose::Reserved => "reserved",
                _ => "available",
            };
            vec![
                json!(line.position),
                json!(format_time(line.at.0)),
                json!(line.transaction.0),
                json!(kind),
                json!(reference),
                json!(line.asset.as_str()),
                json!(account),
                json!(format_scaled(line.balance_after - line.amount, line.scale)),
                json!(format_scaled(line.amount, line.scale)),
                json!(format_scaled(line.balance_after, line.scale)),
            ]
        })
        .collect();
    Table {
        columns: &[
            "position",
            "at",
            "transaction",
            "kind",
            "reference",
            "asset",
            "account",
            "balance_before",
            "amount",
            "balance_after",
        ],
        rows,
        next_cursor: next_cursor.map(|cursor| cursor.to_string()),
        extra: vec![("client_id", json!(client_id.as_str()))],
    }
}

fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

fn settlement(projection: &Projection, parsed: &Parsed) -> Table {
    let scales = Scales(projection);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let rows: Vec<Vec<Value>> = projection
        .desk()
        .withdrawals()
        .iter()
        .filter(|withdrawal| parsed.client_id.as_ref().is_none_or(|client| withdrawal.client_id == *client))
        .filter(|withdrawal| parsed.asset.is_none_or(|asset| withdrawal.asset == asset))
        .filter(|withdrawal| parsed.from.is_none_or(|from| withdrawal.created_at.0 >= from))
        .filter(|withdrawal| parsed.to.is_none_or(|to| withdrawal.created_at.0 < to))
        .inspect(|withdrawal| *counts.entry(enum_text(&withdrawal.status)).or_default() += 1)
        .filter(|withdrawal| parsed.status.as_ref().is_none_or(|status| enum_text(&withdrawal.status) == *status))
        .map(|withdrawal| {
            vec![
                json!(withdrawal.withdrawal_id),
                json!(withdrawal.client_withdrawal_id.to_string()),
                json!(withdrawal.client_id.as_str()),
                json!(withdrawal.asset.as_str()),
                json!(format_scaled(withdrawal.amount, scales.asset(&withdrawal.asset))),
                json!(withdrawal.destination_id),
                json!(enum_text(&withdrawal.status)),
                json!(withdrawal.external_reference),
                json!(withdrawal.failure_reason),
                json!(format_time(withdrawal.created_at.0)),
                withdrawal.submitted_at.map_or(Value::Null, |at| json!(format_time(at.0))),
                json!(format_time(withdrawal.updated_at.0)),
            ]
        })
        .collect();
    let (rows, next_cursor) = paged(rows, parsed);
    Table {
        columns: &[
            "withdrawal_id",
            "client_withdrawal_id",
            "client_id",
            "asset",
            "amount",
            "destination_id",
            "status",
            "external_reference",
            "failure_reason",
            "created_at",
            "submitted_at",
            "updated_at",
        ],
        rows,
        next_cursor,
        extra: vec![("by_status", json!(counts))],
    }
}

fn kyc(projection: &Projection, parsed: &Parsed) -> Table {
    let mut rows = Vec::new();
    for client in projection.desk().clients() {
        if parsed.client_id.as_ref().is_some_and(|wanted| *wanted != client.client_id) {
            continue;
        }
        for change in &client.kyc_history {
            if parsed.from.is_some_and(|from| change.at.0 < from) || parsed.to.is_some_and(|to| change.at.0 >= to) {
                continue;
            }
            rows.push(vec![
                json!(client.client_id.as_str()),
                json!(client.name),
                json!(client.jurisdiction.to_string()),
                json!(client.tier.to_string()),
                json!(enum_text(&client.kyc_status)),
                json!(format_time(change.at.0)),
                json!(enum_text(&change.status)),
                change.expires_at.map_or(Value::Null, |at| json!(format_time(at.0))),
                json!(change.by.as_ref().map(ToString::to_string)),
            ]);
        }
    }
    let (rows, next_cursor) = paged(rows, parsed);
    Table {
        columns: &[
            "client_id",
            "name",
            "jurisdiction",
            "tier",
            "current_kyc_status",
            "changed_at",
            "kyc_status",
            "kyc_expires_at",
            "changed_by",
        ],
        rows,
        next_cursor,
        extra: Vec::new(),
    }
}

fn screening(projection: &Projection, parsed: &Parsed) -> Table {
    let mut rows = Vec::new();
    let desk = projection.desk();
    for client in desk.clients() {
        if parsed.client_id.as_ref().is_some_and(|wanted| *wanted != client.client_id) {
            continue;
        }
        let client_row =
            |status: String, lists: &str, entry: Option<&otcd_core::engine::settlement::ScreeningMatch>| {
                vec![
                    json!("client"),
                    json!(client.client_id.as_str()),
                    json!(client.client_id.as_str()),
                    json!(client.name),
                    json!(status),
                    json!(lists),
                    json!(entry.map(|entry| entry.list.clone())),
                    json!(entry.map(|entry| entry.entry_id.clone())),
                    json!(entry.map(|entry| entry.name.clone())),
                    entry.map_or(Value::Null, |entry| json!(format_scaled(i128::from(entry.score_thousandths), 3))),
                ]
            };
        match &client.screening {
            Some(screening) if !screening.matches.is_empty() => {
                for entry in &screening.matches {
                    rows.push(client_row(enum_text(&screening.status), &screening.lists_version, Some(entry)));
                }
            }
            Some(screening) => rows.push(client_row(enum_text(&screening.status), &screening.lists_version, None)),
            None => rows.push(client_row("not_screened".into(), "", None)),
        }
        for destination in desk.destinations_of(&client.client_id) {
            let destination_row = |entry: Option<&otcd_core::engine::settlement::ScreeningMatch>| {
                vec![
                    json!("destination"),
                    json!(destination.destination_id),
                    json!(client.client_id.as_str()),
                    json!(destination.address),
                    json!(enum_text(&destination.status)),
                    Value::Null,
                    json!(entry.map(|entry| entry.list.clone())),
                    json!(entry.map(|entry| entry.entry_id.clone())),
                    json!(entry.map(|entry| entry.name.clone())),
                    entry.map_or(Value::Null, |entry| json!(format_scaled(i128::from(entry.score_thousandths), 3))),
                ]
            };
            if destination.matches.is_empty() {
                rows.push(destination_row(None));
            }
            for entry in &destination.matches {
                rows.push(destination_row(Some(entry)));
            }
        }
    }
    let (rows, next_cursor) = paged(rows, parsed);
    Table {
        columns: &[
            "subject",
            "subject_id",
            "client_id",
            "name_or_address",
            "status",
            "lists_version",
            "list",
            "entry_id",
            "matched_name",
            "score",
        ],
        rows,
        next_cursor,
        extra: Vec::new(),
    }
}

/// One alert as every alert list shows it (AML, sanctions and surveillance alerts alike).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertLine {
    pub alert_id: String,
    pub kind: String,
    pub client_id: Option<String>,
    pub instrument: Option<String>,
    pub created_at: i64,
    pub status: String,
    pub evidence: String,
    pub notes: Vec<Value>,
    pub trade_ids: Vec<String>,
    pub order_ids: Vec<String>,
    /// Surveillance: measured values and the thresholds in force (`name=value`, the unit ends the name).
    pub figures: BTreeMap<String, i128>,
    pub thresholds: BTreeMap<String, i128>,
    pub assignee: Option<String>,
    pub updated_at: i64,
    /// `engine` (an AML or sanctions rule of the engine) or `surveillance` (a market-abuse rule).
    pub source: &'static str,
}

/// Every alert of the desk (surveillance findings are alerts once raised), newest first.
pub fn alert_lines(projection: &Projection) -> Vec<AlertLine> {
    let mut lines: Vec<AlertLine> = projection.desk().alerts().iter().map(alert_line).collect();
    lines.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.alert_id.cmp(&a.alert_id)));
    lines
}

fn alert_line(alert: &otcd_core::engine::alerts::Alert) -> AlertLine {
    let surveillance = alert.surveillance.clone();
    AlertLine {
        alert_id: alert.alert_id.clone(),
        kind: enum_text(&alert.kind),
        client_id: alert.client_id.as_ref().map(ToString::to_string),
        instrument: surveillance.as_ref().map(|evidence| evidence.instrument.clone()),
        created_at: alert.created_at.0,
        status: enum_text(&alert.status),
        evidence: alert.evidence.clone(),
        notes: alert
            .notes
            .iter()
            .map(|note| json!({"at": format_time(note.at.0), "by": note.by, "text": note.text}))
            .collect(),
        source: if alert.kind.is_surveillance() { "surveillance" } else { "engine" },
        trade_ids: surveillance.as_ref().map(|evidence| evidence.trade_ids.clone()).unwrap_or_default(),
        order_ids: surveillance.as_ref().map(|evidence| evidence.order_ids.clone()).unwrap_or_default(),
        figures: surveillance.as_ref().map(|evidence| evidence.figures.clone()).unwrap_or_default(),
        thresholds: surveillance.map(|evidence| evidence.thresholds).unwrap_or_default(),
        assignee: alert.assignee.clone(),
        updated_at: alert.updated_at.0,
    }
}

fn named_values(values: &BTreeMap<String, i128>) -> String {
    values.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(" ")
}

fn alerts(projection: &Projection, parsed: &Parsed) -> Table {
    let rows = alert_lines(projection)
        .into_iter()
        .filter(|line| {
            parsed.client_id.as_ref().is_none_or(|client| line.client_id.as_deref() == Some(client.as_str()))
        })
        .filter(|line| parsed.status.as_ref().is_none_or(|status| line.status == *status))
        .filter(|line| parsed.kind.as_ref().is_none_or(|kind| line.kind == *kind))
        .filter(|line| parsed.from.is_none_or(|from| line.created_at >= from))
        .filter(|line| parsed.to.is_none_or(|to| line.created_at < to))
        .map(|line| {
            let notes: Vec<String> = line
                .notes
                .iter()
                .map(|note| {
                    format!(
                        "{} {}: {}",
                        note["at"].as_str().unwrap_or_default(),
                        note["by"].as_str().unwrap_or("-"),
                        note["text"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            vec![
                json!(line.alert_id),
                json!(line.kind),
                json!(line.source),
                json!(line.client_id),
                json!(line.instrument),
                json!(format_time(line.created_at)),
                json!(line.status),
                json!(line.evidence),
                json!(line.trade_ids.join(" ")),
                json!(line.order_ids.join(" ")),
                json!(notes.join(" | ")),
                json!(format_time(line.updated_at)),
                json!(named_values(&line.figures)),
                json!(named_values(&line.thresholds)),
                json!(line.assignee),
            ]
        })
        .collect();
    let (rows, next_cursor) = paged(rows, parsed);
    Table {
        columns: &[
            "alert_id",
            "kind",
            "source",
            "client_id",
            "instrument",
            "created_at",
            "status",
            "evidence",
            "trade_ids",
            "order_ids",
            "notes",
            "updated_at",
            "figures",
            "thresholds",
            "assignee",
        ],
        rows,
        next_cursor,
        extra: Vec::new(),
    }
}

fn hedge_state_text(state: otcd_core::engine::hedging::HedgeState) -> &'static str {
    use otcd_core::engine::hedging::HedgeState;
    match state {
        HedgeState::Open => "open",
        HedgeState::PartiallyFilled => "partially_filled",
        HedgeState::Filled => "filled",
        HedgeState::Failed => "failed",
    }
}

/// Hedges with their P&L against the client flow they laid off (`crate::hedging`), oldest first.
fn hedging(projection: &Projection) -> Table {
    let scales = Scales(projection);
    let rows = crate::hedging::hedge_pnl(projection)
        .iter()
        .map(|row| {
            let hedge = &row.hedge;
            let instrument = projection.desk().catalog().and_then(|catalog| catalog.instrument(&hedge.instrument));
            let (base, quote) = instrument.map_or((0, 0), |i| (scales.asset(&i.base), scales.asset(&i.quote)));
            let price = scales.price(&hedge.instrument);
            let optional =
                |value: Option<i128>, scale| value.map_or(Value::Null, |value| json!(format_scaled(value, scale)));
            vec![
                json!(hedge.hedge_id),
                json!(hedge.asset.as_str()),
                json!(hedge.instrument),
                json!(side_text(hedge.side)),
                json!(hedge_state_text(hedge.state)),
                json!(format_time(hedge.opened_at.0)),
                json!(format_scaled(hedge.quantity, base)),
                json!(format_scaled(hedge.filled, base)),
                optional(crate::hedging::average_price(hedge, base, quote, price), price),
                optional(crate::hedging::client_average_price(row, base, quote, price), price),
                json!(format_scaled(row.client_quantity, base)),
                json!(format_scaled(hedge.quote_amount, quote)),
                optional(row.client_amount_for_filled, quote),
                json!(format_scaled(hedge.fee, quote)),
                optional(row.pnl, quote),
            ]
        })
        .collect();
    Table {
        columns: &[
            "hedge_id",
            "asset",
            "instrument",
            "side",
            "state",
            "opened_at",
            "quantity",
            "filled",
            "hedge_price",
            "client_price",
            "client_quantity",
            "hedge_amount",
            "client_amount",
            "venue_fees",
            "pnl",
        ],
        rows,
        extra: Vec::new(),
        next_cursor: None,
    }
}
