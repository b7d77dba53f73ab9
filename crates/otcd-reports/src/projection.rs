//! The projection: a shadow desk re-executing durable records, plus the report tables.

use crate::pnl::Position;
use crate::surveillance::{InstrumentUnits, Surveillance, SurveillanceConfig, TradeFact};
use crate::trades::{TradeLog, TradeRow};
use otcd_core::catalog::{AssetCode, Instrument};
use otcd_core::engine::orders::{OrderStatus, Trade};
use otcd_core::engine::{Command, CrossBooks, Desk, JournalRecord, Outcome};
use otcd_core::market::{cross, pricing, Side, VenueBook};
use otcd_core::time::TimestampMs;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// How long the books a quote was priced from are kept for its spread revenue (quotes are valid ≤ 60 s).
pub const QUOTE_BOOKS_RETENTION_MS: i64 = 120_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error("record {got} arrived but the projection expects {expected}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("record {seq} cannot be decoded: {detail}")]
    Decode { seq: u64, detail: String },
    #[error("record {seq} does not replay on the projection's desk: {detail}")]
    Diverged { seq: u64, detail: String },
}

/// The market data a trade was priced from.
#[derive(Debug)]
struct Source {
    books: Vec<VenueBook>,
    cross: Option<CrossBooks>,
}

pub struct Projection {
    desk: Desk,
    applied_seq: u64,
    last_at: i64,
    trades: TradeLog,
    positions: BTreeMap<AssetCode, Position>,
    quote_sources: HashMap<String, Arc<Source>>,
    quote_source_order: VecDeque<(i64, String)>,
    surveillance: Surveillance,
}

impl Default for Projection {
    fn default() -> Self {
        Self::new(SurveillanceConfig::default())
    }
}

impl Projection {
    pub fn new(config: SurveillanceConfig) -> Self {
        Self {
            desk: Desk::new(),
            applied_seq: 0,
            last_at: i64::MIN,
            trades: TradeLog::default(),
            positions: BTreeMap::new(),
            quote_sources: HashMap::new(),
            quote_source_order: VecDeque::new(),
            surveillance: Surveillance::new(config),
        }
    }

    /// The shadow desk: the same state as the engine's at [`Self::applied_seq`].
    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    pub fn trades(&self) -> &TradeLog {
        &self.trades
    }

    /// Mutable access for benchmarks that load rows directly.
    pub fn trades_mut(&mut self) -> &mut TradeLog {
        &mut self.trades
    }

    pub fn positions(&self) -> &BTreeMap<AssetCode, Position> {
        &self.positions
    }

    pub fn surveillance(&self) -> &Surveillance {
        &self.surveillance
    }

    /// Decodes and applies one journal payload.
    pub fn apply_payload(&mut self, seq: u64, payload: &[u8]) -> Result<(), ProjectionError> {
        let record: JournalRecord = serde_json::from_slice(payload)
            .map_err(|error| ProjectionError::Decode { seq, detail: error.to_string() })?;
        self.apply(seq, &record)
    }

    /// Applies the durable record `seq` (which must be the next one).
    pub fn apply(&mut self, seq: u64, record: &JournalRecord) -> Result<(), ProjectionError> {
        if seq != self.applied_seq + 1 {
            return Err(ProjectionError::OutOfOrder { expected: self.applied_seq + 1, got: seq });
        }
        let trades_before = self.trades.len() as u64;
        let executed =
            self.desk.execute(record).map_err(|error| ProjectionError::Diverged { seq, detail: error.to_string() })?;
        if !executed.changed {
            return Err(ProjectionError::Diverged { seq, detail: "replays as a no-op".into() });
        }
        self.applied_seq = seq;
        let at = record.at.0.max(self.last_at);
        self.last_at = at;
        let command_source = self.capture_sources(record, &executed.outcome, at, seq);
        self.order_events(record, &executed.outcome, at, seq);
        let mut number = trades_before + 1;
        while let Some(trade) = self.desk.trade(&format!("t_{number:012}")).cloned() {
            let source = match &record.command {
                Command::AcceptQuote(accept) => self.quote_sources.remove(&accept.quote_id),
                _ => command_source.clone(),
            };
            self.record_trade(seq, &trade, source.as_deref());
            number += 1;
        }
        Ok(())
    }

    /// Keeps the books quotes were priced from (for their spread revenue when accepted) and reports quote prices
    /// to surveillance; returns the books a market, limit or resting fill is priced from.
    fn capture_sources(&mut self, record: &JournalRecord, outcome: &Outcome, at: i64, seq: u64) -> Option<Arc<Source>> {
        while self.quote_source_order.front().is_some_and(|(created, _)| *created < at - QUOTE_BOOKS_RETENTION_MS) {
            if let Some((_, quote_id)) = self.quote_source_order.pop_front() {
                self.quote_sources.remove(&quote_id);
            }
        }
        match (&record.command, outcome) {
            (Command::RequestQuote(request), Outcome::Quote(quote)) => {
                let source = Arc::new(Source { books: request.books.clone(), cross: request.cross.clone() });
                self.quote_sources.insert(quote.quote_id.clone(), source);
                self.quote_source_order.push_back((at, quote.quote_id.clone()));
                if let Some(price) = quote.ask.or(quote.bid) {
                    self.surveillance.price(&quote.instrument, price, at, seq);
                }
                None
            }
            (Command::RequestLadders(request), Outcome::Ladders(results)) => {
                let source = Arc::new(Source { books: request.books.clone(), cross: request.cross.clone() });
                let mut observed = false;
                for quotes in results.iter().flatten() {
                    for quote in quotes {
                        self.quote_sources.insert(quote.quote_id.clone(), source.clone());
                        self.quote_source_order.push_back((at, quote.quote_id.clone()));
                        if let (false, Some(bid), Some(ask)) = (observed, quote.bid, quote.ask) {
                            self.surveillance.price(&quote.instrument, (bid + ask) / 2, at, seq);
                            observed = true;
                        }
                    }
                }
                None
            }
            (Command::MarketOrder(order), _) => {
                Some(Arc::new(Source { books: order.books.clone(), cross: order.cross.clone() }))
            }
            (Command::LimitOrder(limit), _) => {
                Some(Arc::new(Source { books: limit.order.books.clone(), cross: limit.order.cross.clone() }))
            }
            (Command::FillRestingOrders(tick), _) => {
                Some(Arc::new(Source { books: tick.books.clone(), cross: tick.cross.clone() }))
            }
            _ => None,
        }
    }

    /// Resting orders placed and cancelled by their clients, for the spoofing and layering rules.
    fn order_events(&mut self, record: &JournalRecord, outcome: &Outcome, at: i64, seq: u64) {
        match (&record.command, outcome) {
            (Command::LimitOrder(_), Outcome::Order(order)) if order.resting.is_some() => {
                self.learn_units(&order.instrument);
                self.surveillance.order_placed(
                    &order.order_id,
                    &order.client_id,
                    &order.instrument,
                    order.side,
                    order.quantity,
                    at,
                );
            }
            (Command::CancelOrder { .. }, Outcome::Order(order))
                if order.status == OrderStatus::Cancelled && order.cancel_reason.is_none() =>
            {
                self.surveillance.order_cancelled(&order.order_id, order.quantity - order.filled_quantity, at, seq);
            }
            (Command::CancelAllOrders { .. }, Outcome::Orders(orders)) => {
                for order in orders.iter().filter(|order| order.status == OrderStatus::Cancelled) {
                    self.surveillance.order_cancelled(&order.order_id, order.quantity - order.filled_quantity, at, seq);
                }
            }
            _ => {}
        }
    }

    /// Tells surveillance how `symbol` writes quantities and prices (from the catalog), for its summaries.
    fn learn_units(&mut self, symbol: &str) {
        if self.surveillance.has_instrument_units(symbol) {
            return;
        }
        let Some(catalog) = self.desk.catalog() else { return };
        let Some(instrument) = catalog.instrument(symbol) else { return };
        let Some(base) = catalog.asset(&instrument.base) else { return };
        let units = InstrumentUnits {
            base: instrument.base.to_string(),
            base_scale: base.scale,
            quote: instrument.quote.to_string(),
            price_scale: instrument.price_scale,
        };
        self.surveillance.instrument_units(symbol, units);
    }

    fn record_trade(&mut self, seq: u64, trade: &Trade, source: Option<&Source>) {
        let Some(instrument) = self.desk.catalog().and_then(|catalog| catalog.instrument(&trade.instrument)).cloned()
        else {
            return;
        };
        let number = trade.trade_id.strip_prefix("t_").and_then(|digits| digits.parse().ok()).unwrap_or(0);
        let order_number = trade.order_id.strip_prefix("o_").and_then(|digits| digits.parse().ok()).unwrap_or(0);
        let usd = AssetCode::parse("USD").expect("valid code");
        let spread_revenue = source.and_then(|source| self.spread_revenue(trade, &instrument, source));
        // Quote-asset amounts in USD: exact for USD-quoted instruments, else at the trade's own USD rate.
        let in_usd = |amount: i128| {
            if instrument.quote == usd {
                Some(amount)
            } else {
                let notional = trade.notional_usd?;
                (trade.quote_amount > 0)
                    .then(|| amount.checked_mul(notional).map(|product| product.div_euclid(trade.quote_amount)))
                    .flatten()
            }
        };
        let spread_revenue_usd = spread_revenue.and_then(in_usd);
        let fee_usd = in_usd(trade.fee);
        // The desk's legs, valued in USD (see pnl.rs).
        let value_usd = if instrument.quote == usd { Some(trade.quote_amount) } else { trade.notional_usd };
        // The desk's quote leg includes its fee: a buyer pays it on top, a seller has it kept from the proceeds.
        let (base_delta, quote_delta) = match trade.side {
            Side::Buy => (-trade.quantity, trade.quote_amount + trade.fee),
            Side::Sell => (trade.quantity, -(trade.quote_amount - trade.fee)),
        };
        for (asset, delta) in [(instrument.base, base_delta), (instrument.quote, quote_delta)] {
            self.positions.entry(asset).or_insert_with(|| Position::new(asset)).apply(delta, value_usd, asset == usd);
        }
        let client = self.trades.intern_client(&trade.client_id);
        let instrument_index = self.trades.intern_instrument(&instrument.symbol, instrument.base, instrument.quote);
        self.trades.push(TradeRow {
            number,
            order_number,
            seq,
            client,
            instrument: instrument_index,
            side: trade.side,
            price: trade.price,
            quantity: trade.quantity,
            quote_amount: trade.quote_amount,
            notional_usd: trade.notional_usd,
            executed_at: trade.executed_at.0,
            spread_revenue,
            spread_revenue_usd,
            fee: trade.fee,
            fee_usd,
        });
        self.learn_units(&instrument.symbol);
        self.surveillance.trade(&TradeFact {
            number,
            client_id: &trade.client_id,
            instrument: &instrument.symbol,
            side: trade.side,
            price: trade.price,
            quantity: trade.quantity,
            notional_usd: trade.notional_usd,
            at: trade.executed_at.0,
            seq,
        });
    }

    /// Spread revenue of a trade in quote minor units: what the client paid above (buy) or received below
    /// (sell) the desk's executable reference for the same size from the same books (the exact VWAP, before
    /// spread and skew), `(client amount − VWAP × quantity)` for a buy, the reverse for a sell, computed exactly
    /// and rounded down (toward −∞) once to the quote asset's minor unit.
    fn spread_revenue(&self, trade: &Trade, instrument: &Instrument, source: &Source) -> Option<i128> {
        let catalog = self.desk.catalog()?;
        let scale = |code: &AssetCode| catalog.asset(code).map(|asset| asset.scale);
        let (base_scale, quote_scale) = (scale(&instrument.base)?, scale(&instrument.quote)?);
        let at = trade.executed_at;
        let executable = if !source.books.is_empty() {
            pricing::executable(&source.books, trade.side, trade.quantity, at, i64::MAX).ok()?
        } else {
            let legs = source.cross.as_ref()?;
            let base_leg = catalog.instrument(&legs.base_leg)?;
            let quote_leg = catalog.instrument(&legs.quote_leg)?;
            let legs = cross::CrossLegs {
                base_leg,
                base_books: &legs.base_books,
                quote_leg,
                quote_books: &legs.quote_books,
                base_scale,
                quote_scale,
            };
            cross::cross_executable(instrument, &legs, trade.side, trade.quantity, at, i64::MAX).ok()?
        };
        let exponent = i32::from(instrument.price_scale) + i32::from(base_scale) - i32::from(quote_scale);
        let power = |exponent: i32| u8::try_from(exponent).ok().map(otcd_core::decimal::power_of_ten);
        let (client, reference, divisor) = if exponent >= 0 {
            let unit = power(exponent)?;
            (trade.quote_amount.checked_mul(unit)?, executable.notional, unit)
        } else {
            (trade.quote_amount, executable.notional.checked_mul(power(-exponent)?)?, 1)
        };
        let difference = match trade.side {
            Side::Buy => client.checked_sub(reference)?,
            Side::Sell => reference.checked_sub(client)?,
        };
        Some(difference.div_euclid(divisor))
    }

    /// Time of the newest applied record (ms).
    pub fn last_at(&self) -> Option<TimestampMs> {
        (self.applied_seq > 0).then_some(TimestampMs(self.last_at))
    }
}
