//! The trade log: one compact row per trade, in execution order (the engine numbers trades `t_1, t_2, ...` and
//! its clock never goes backwards, so row position = trade number − 1 and `executed_at` is non-decreasing), with
//! position lists per client, per instrument and per asset. A query picks the shortest applicable list, finds
//! the start by binary search (time window and cursor), and scans forward until the page is full.

use otcd_core::catalog::AssetCode;
use otcd_core::chunked_vec::ChunkedVec;
use otcd_core::ids::ClientId;
use otcd_core::market::Side;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    /// Trade number: `trade_id` is `t_{number:012}`.
    pub number: u64,
    /// Order number: `order_id` is `o_{number:012}`.
    pub order_number: u64,
    /// Journal seq of the record that executed it.
    pub seq: u64,
    pub client: u32,
    pub instrument: u16,
    pub side: Side,
    pub price: i128,
    pub quantity: i128,
    pub quote_amount: i128,
    pub notional_usd: Option<i128>,
    pub executed_at: i64,
    /// Spread revenue in quote-asset minor units (signed; see docs/reports.md), when the reference is known.
    pub spread_revenue: Option<i128>,
    /// The same in USD cents, when a USD rate is known.
    pub spread_revenue_usd: Option<i128>,
    /// The desk's fee in quote-asset minor units (0: none).
    pub fee: i128,
    /// The fee in USD cents, when a USD rate is known.
    pub fee_usd: Option<i128>,
}

/// What a trade-log query selects. Times are ms; `to` is exclusive. `after` is a cursor: trade numbers above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TradeFilter {
    pub client_id: Option<ClientId>,
    pub instrument: Option<String>,
    pub asset: Option<AssetCode>,
    pub side: Option<Side>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradesPage<'a> {
    pub rows: Vec<&'a TradeRow>,
    /// The last row's number when more rows match.
    pub next_cursor: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct TradeLog {
    /// Grows for the desk's lifetime: chunked so that growing it never copies (see `otcd_core::chunked_vec`).
    rows: ChunkedVec<TradeRow>,
    clients: Vec<ClientId>,
    client_index: HashMap<ClientId, u32>,
    instruments: Vec<(String, AssetCode, AssetCode)>,
    instrument_index: HashMap<String, u16>,
    by_client: Vec<ChunkedVec<u32>>,
    by_instrument: Vec<ChunkedVec<u32>>,
    by_asset: HashMap<AssetCode, ChunkedVec<u32>>,
}

impl TradeLog {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &ChunkedVec<TradeRow> {
        &self.rows
    }

    pub fn client_id(&self, index: u32) -> &ClientId {
        &self.clients[index as usize]
    }

    /// Symbol, base and quote of an instrument index.
    pub fn instrument(&self, index: u16) -> (&str, AssetCode, AssetCode) {
        let (symbol, base, quote) = &self.instruments[usize::from(index)];
        (symbol, *base, *quote)
    }

    pub fn intern_client(&mut self, client_id: &ClientId) -> u32 {
        if let Some(index) = self.client_index.get(client_id) {
            return *index;
        }
        let index = u32::try_from(self.clients.len()).expect("fewer than 2^32 clients");
        self.clients.push(client_id.clone());
        self.client_index.insert(client_id.clone(), index);
        self.by_client.push(ChunkedVec::new());
        index
    }

    pub fn intern_instrument(&mut self, symbol: &str, base: AssetCode, quote: AssetCode) -> u16 {
        if let Some(index) = self.instrument_index.get(symbol) {
            return *index;
        }
        let index = u16::try_from(self.instruments.len()).expect("fewer than 65536 instruments");
        self.instruments.push((symbol.to_owned(), base, quote));
        self.instrument_index.insert(symbol.to_owned(), index);
        self.by_instrument.push(ChunkedVec::new());
        index
    }

    /// Appends a trade. Rows must arrive in trade-number order (the projection guarantees it).
    pub fn push(&mut self, row: TradeRow) {
        let position = u32::try_from(self.rows.len()).expect("fewer than 2^32 trades");
        debug_assert_eq!(row.number, u64::from(position) + 1, "trades arrive in number order");
        let (_, base, quote) = self.instruments[usize::from(row.instrument)].clone();
        self.by_client[row.client as usize].push(position);
        self.by_instrument[usize::from(row.instrument)].push(position);
        self.by_asset.entry(base).or_default().push(position);
        if quote != base {
            self.by_asset.entry(quote).or_default().push(position);
        }
        self.rows.push(row);
    }

    /// Up to `limit` rows matching `filter`, oldest first.
    pub fn query<'a>(&'a self, filter: &TradeFilter, limit: usize) -> TradesPage<'a> {
        let client = match &filter.client_id {
            Some(client_id) => match self.client_index.get(client_id) {
                Some(index) => Some(*index),
                None => return TradesPage { rows: Vec::new(), next_cursor: None },
            },
            None => None,
        };
        let instrument = match &filter.instrument {
            Some(symbol) => match self.instrument_index.get(symbol) {
                Some(index) => Some(*index),
                None => return TradesPage { rows: Vec::new(), next_cursor: None },
            },
            None => None,
        };
        static EMPTY: ChunkedVec<u32> = ChunkedVec::new();
        let lists: [Option<&ChunkedVec<u32>>; 3] = [
            client.map(|client| &self.by_client[client as usize]),
            instrument.map(|instrument| &self.by_instrument[usize::from(instrument)]),
            filter.asset.map(|asset| self.by_asset.get(&asset).unwrap_or(&EMPTY)),
        ];
        let candidates: Option<&ChunkedVec<u32>> = lists.into_iter().flatten().min_by_key(|list| list.len());
        let matches = |row: &TradeRow| {
            client.is_none_or(|client| row.client == client)
                && instrument.is_none_or(|instrument| row.instrument == instrument)
                && filter.side.is_none_or(|side| row.side == side)
                && filter.asset.is_none_or(|asset| {
                    let (_, base, quote) = &self.instruments[usize::from(row.instrument)];
                    *base == asset || *quote == asset
                })
        };
        let limit = limit.max(1);
        let mut rows = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        let mut take = |row: &'a TradeRow| -> bool {
            if filter.to.is_some_and(|to| row.executed_at >= to) {
                return false;
            }
            if matches(row) {
                if rows.len() == limit {
                    more = true;
                    return false;
                }
                rows.push(row);
            }
            true
        };
        match candidates {
            Some(list) => {
                let start = self.start_in(list, filter);
                for position in list.range(start..list.len()) {
                    if !take(&self.rows[*position as usize]) {
                        break;
                    }
                }
            }
            None => {
                let start = self.start_in_rows(filter);
                for row in self.rows.range(start..self.rows.len()) {
                    if !take(row) {
                        break;
                    }
                }
            }
        }
        let next_cursor = if more { rows.last().map(|row| row.number) } else { None };
        TradesPage { rows, next_cursor }
    }

    fn start_in(&self, list: &ChunkedVec<u32>, filter: &TradeFilter) -> usize {
        let by_time = filter
            .from
            .map_or(0, |from| list.partition_point(|position| self.rows[*position as usize].executed_at < from));
        let by_cursor = filter.after.map_or(0, |after| list.partition_point(|position| u64::from(*position) < after));
        by_time.max(by_cursor)
    }

    fn start_in_rows(&self, filter: &TradeFilter) -> usize {
        let by_time = filter.from.map_or(0, |from| self.rows.partition_point(|row| row.executed_at < from));
        let by_cursor =
            filter.after.map_or(0, |after| usize::try_from(after).unwrap_or(usize::MAX).min(self.rows.len()));
        by_time.max(by_cursor)
    }
}
