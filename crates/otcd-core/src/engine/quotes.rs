//! Firm quotes: priced inside the engine from the market data in the command, bound to a client, single use,
//! valid until `valid_until`, idempotent per `client_rfq_id`.

use super::command::{CrossBooks, LadderBatchRequest, LadderSubscriber, QuoteRequest};
use super::model::{Client, Quote, QuoteState, RequestedSize};
use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::Instrument;
use crate::ids::{ClientId, ClientReference};
use crate::market::{pricing, PricingError, Side, VenueBook};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Quote validity bounds (ms). The desk's default is 5 s; a quote must be long enough to act on and short
/// enough that the market cannot run away from it.
pub const QUOTE_VALIDITY_MS_MIN: i64 = 100;
pub const QUOTE_VALIDITY_MS_MAX: i64 = 60_000;
pub const QUOTE_VALIDITY_MS_DEFAULT: i64 = 5_000;
/// How long an expired or used quote stays queryable (and its client_rfq_id remembered) before it is pruned.
/// Short on purpose: at thousands of RFQs a second, every second of retention is thousands of quotes in memory
/// and in every snapshot. The journal keeps every quote forever.
pub const QUOTE_RETENTION_MS: i64 = 60 * 1_000;
/// Streamed quotes are kept this long after they expire (an order that raced the expiry gets `quote_expired`
/// rather than `quote_not_found`).
pub const LADDER_QUOTE_RETENTION_MS: i64 = 5 * 1_000;
/// Quotes held at once; beyond this new quotes are refused until old ones are pruned.
pub const QUOTES_HELD_MAX: usize = 2_000_000;
/// Sizes in one ladder.
pub const LADDER_SIZES_MAX: usize = 10;
/// Subscribers priced by one ladder command.
pub const LADDER_SUBSCRIBERS_MAX: usize = 10_000;

/// One priced two-way level of a ladder, before it becomes a quote.
struct PricedLevel {
    quantity: i128,
    bid: i128,
    ask: i128,
    market_as_of: TimestampMs,
    venues_used: u8,
    spread: i128,
}
/// Venue books carried by one quote command.
pub const QUOTE_BOOKS_MAX: usize = crate::market::VENUES_MAX;

/// Held quotes, keyed by the number inside their id (ordered, so snapshots serialize deterministically). Values
/// are shared (`Arc`) so that cloning the desk for a snapshot costs a reference count per quote, not a deep copy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuoteBook {
    quotes: BTreeMap<u64, Arc<Quote>>,
    /// (prune at, quote number) in issue order, one queue per retention class (RFQ quotes, stream quotes).
    /// Validity is a desk setting, so prune times are nearly in order within a class; a quote behind a later
    /// one simply waits for it (bounded by the largest validity).
    #[serde(skip)]
    prune_queues: [VecDeque<(TimestampMs, u64)>; 2],
    #[serde(skip)]
    by_client_rfq_id: HashMap<(ClientId, ClientReference), u64>,
    issued: u64,
}

/// `q_000000000042` → 42.
fn quote_number(quote_id: &str) -> Option<u64> {
    let digits = quote_id.strip_prefix("q_")?;
    if digits.len() != 12 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl QuoteBook {
    pub fn get(&self, quote_id: &str) -> Option<&Quote> {
        self.quotes.get(&quote_number(quote_id)?).map(Arc::as_ref)
    }

    pub fn len(&self) -> usize {
        self.quotes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.quotes.is_empty()
    }

    pub fn rebuild_indexes(&mut self) {
        let mut order: Vec<(u64, &Quote)> =
            self.quotes.iter().map(|(number, quote)| (*number, quote.as_ref())).collect();
        order.sort_unstable_by_key(|(number, _)| *number);
        self.prune_queues = Default::default();
        for (number, quote) in order {
            self.prune_queues[retention_class(quote)].push_back((prune_at(quote), number));
        }
        self.by_client_rfq_id = self
            .quotes
            .iter()
            .filter_map(|(number, quote)| {
                let reference = quote.client_rfq_id.clone()?;
                Some(((quote.client_id.clone(), reference), *number))
            })
            .collect();
    }

    fn next_id(&mut self) -> String {
        format!("q_{:012}", self.issued + 1)
    }

    fn insert(&mut self, quote: Quote) {
        let number = quote_number(&quote.quote_id).expect("ids come from next_id");
        assert_eq!(number, self.issued + 1, "quotes are inserted in issue order");
        self.issued = number;
        if let Some(reference) = &quote.client_rfq_id {
            self.by_client_rfq_id.insert((quote.client_id.clone(), reference.clone()), number);
        }
        self.prune_queues[retention_class(&quote)].push_back((prune_at(&quote), number));
        self.quotes.insert(number, Arc::new(quote));
    }

    /// Drops quotes whose retention has passed. Called only after a journaled command, so replay prunes the
    /// same quotes at the same points.
    pub fn prune(&mut self, now: TimestampMs) {
        for class in 0..self.prune_queues.len() {
            while let Some((at, number)) = self.prune_queues[class].front().copied() {
                if at > now {
                    break;
                }
                self.prune_queues[class].pop_front();
                if let Some(quote) = self.quotes.remove(&number) {
                    if let Some(reference) = &quote.client_rfq_id {
                        self.by_client_rfq_id.remove(&(quote.client_id.clone(), reference.clone()));
                    }
                }
            }
        }
    }

    /// Marks a quote as used by `order_id`. Single use is decided here, in the engine.
    pub fn mark_used(&mut self, quote_id: &str, order_id: &str, at: TimestampMs) {
        let Some(number) = quote_number(quote_id) else { return };
        if let Some(quote) = self.quotes.get_mut(&number) {
            Arc::make_mut(quote).state = QuoteState::Used { order_id: order_id.to_owned(), at };
        }
    }
}

/// 0: RFQ quotes (one side, kept `QUOTE_RETENTION_MS` for lookups and idempotency); 1: streamed two-way
/// quotes (many per second per subscriber, kept only `LADDER_QUOTE_RETENTION_MS`).
fn retention_class(quote: &Quote) -> usize {
    usize::from(quote.side.is_none())
}

fn prune_at(quote: &Quote) -> TimestampMs {
    let retention = if retention_class(quote) == 0 { QUOTE_RETENTION_MS } else { LADDER_QUOTE_RETENTION_MS };
    quote.valid_until.plus_ms(retention)
}

impl Desk {
    pub fn quote(&self, quote_id: &str) -> Option<&Quote> {
        self.quotes.get(quote_id)
    }

    pub(super) fn request_quote(&mut self, at: TimestampMs, request: &QuoteRequest) -> Result<Executed, CommandError> {
        let client = self.quoting_client(at, &request.client_id)?;
        let instrument = self.instrument(&request.instrument)?.clone();
        self.check_trading_allowed(&instrument)?;
        self.check_jurisdiction_instrument(&client, &instrument)?;
        if let Some(reference) = &request.client_rfq_id {
            if let Some(existing) = self.repeated_rfq(&request.client_id, reference, request)? {
                return Ok(Executed { outcome: Outcome::Quote(existing), changed: false });
            }
        }
        validate_validity(request.validity_ms)?;
        validate_books(&request.books, &instrument)?;
        // A quote the client could not execute is not given.
        if matches!(request.size, RequestedSize::Base(_)) {
            self.check_tier_limits(at, &client, request.notional_usd)?;
        }
        let spread = self.spread_for(&client, request.notional_usd)?;
        let cross = if request.books.is_empty() { request.cross.as_ref() } else { None };
        let skew = self.skew_for(instrument.base);
        let (quantity, price, executable) = match request.size {
            RequestedSize::Base(quantity) => {
                validate_quantity(&instrument, quantity, "quantity")?;
                let executable = self.executable_for(&instrument, &request.books, cross, request.side, quantity, at)?;
                let price = pricing::client_price(&executable, request.side, spread, skew, instrument.price_step)
                    .map_err(pricing_refusal)?;
                (quantity, price, executable)
            }
            RequestedSize::Quote(_) if cross.is_some() => {
                return Err(CommandError::invalid(
                    "quote_quantity",
                    "is not available for cross-priced instruments; ask with quantity",
                ));
            }
            RequestedSize::Quote(amount) => self.price_quote_amount(at, &instrument, request, amount, spread, skew)?,
        };
        self.check_quote_capacity()?;
        let quote = Quote {
            quote_id: self.quotes.next_id(),
            client_id: request.client_id.clone(),
            client_rfq_id: request.client_rfq_id.clone(),
            instrument: instrument.symbol.clone(),
            side: Some(request.side),
            quantity,
            bid: (request.side == Side::Sell).then_some(price),
            ask: (request.side == Side::Buy).then_some(price),
            requested: request.size,
            created_at: at,
            valid_until: at.plus_ms(request.validity_ms),
            market_as_of: executable.as_of,
            venues_used: executable.venues_used,
            spread_centi_bps: spread,
            fee_centi_bps: self.fee_rate(&client),
            state: QuoteState::Open,
        };
        self.quotes.insert(quote.clone());
        Ok(Executed { outcome: Outcome::Quote(quote), changed: true })
    }

    fn price_quote_amount(
        &self,
        at: TimestampMs,
        instrument: &Instrument,
        request: &QuoteRequest,
        amount: i128,
        spread: i128,
        skew: i128,
    ) -> Result<(i128, i128, pricing::Executable), CommandError> {
        if amount <= 0 {
            return Err(CommandError::invalid("quote_quantity", "must be greater than zero"));
        }
        let catalog = self.catalog().ok_or(CommandError::NotInitialized)?;
        let base_scale = catalog.asset(&instrument.base).map_or(0, |asset| asset.scale);
        let quote_scale = catalog.asset(&instrument.quote).map_or(0, |asset| asset.scale);
        let (quantity, price) = pricing::quantity_for_quote_amount(
            &request.books,
            request.side,
            amount,
            instrument,
            base_scale,
            quote_scale,
            spread,
            skew,
            at,
            i64::MAX,
        )
        .map_err(|error| match error {
            PricingError::OutsideLimits => CommandError::invalid(
                "quote_quantity",
                "no quantity within the instrument's limits matches this amount",
            ),
            other => pricing_refusal(other),
        })?;
        let executable =
            pricing::executable(&request.books, request.side, quantity, at, i64::MAX).map_err(pricing_refusal)?;
        Ok((quantity, price, executable))
    }

    pub(super) fn request_ladders(
        &mut self,
        at: TimestampMs,
        request: &LadderBatchRequest,
    ) -> Result<Executed, CommandError> {
        let instrument = self.instrument(&request.instrument)?.clone();
        validate_validity(request.validity_ms)?;
        validate_books(&request.books, &instrument)?;
        let cross = if request.books.is_empty() { request.cross.as_ref() } else { None };
        if request.subscribers.is_empty() || request.subscribers.len() > LADDER_SUBSCRIBERS_MAX {
            return Err(CommandError::invalid("subscribers", "1 to 10000 subscribers per batch"));
        }
        let skew = self.skew_for(instrument.base);
        let trading = self.check_trading_allowed(&instrument);
        let priced: Vec<Result<Vec<PricedLevel>, CommandError>> = request
            .subscribers
            .iter()
            .map(|subscriber| {
                trading.clone()?;
                self.price_ladder(at, &instrument, &request.books, cross, subscriber, skew)
            })
            .collect();
        let quote_count: usize = priced.iter().filter_map(|ladder| ladder.as_ref().ok()).map(Vec::len).sum();
        if self.quotes.len() + quote_count > QUOTES_HELD_MAX {
            return Err(CommandError::conflict("the desk holds too many live quotes; retry shortly"));
        }
        let valid_until = at.plus_ms(request.validity_ms);
        let results: Vec<Result<Vec<Quote>, CommandError>> = request
            .subscribers
            .iter()
            .zip(priced)
            .map(|(subscriber, ladder)| {
                ladder.map(|levels| {
                    levels
                        .into_iter()
                        .map(|level| {
                            self.issue_ladder_quote(at, valid_until, &subscriber.client_id, &instrument, level)
                        })
                        .collect()
                })
            })
            .collect();
        let changed = quote_count > 0;
        Ok(Executed { outcome: Outcome::Ladders(results), changed })
    }

    fn price_ladder(
        &self,
        at: TimestampMs,
        instrument: &Instrument,
        books: &[VenueBook],
        cross: Option<&CrossBooks>,
        subscriber: &LadderSubscriber,
        skew: i128,
    ) -> Result<Vec<PricedLevel>, CommandError> {
        let client = self.quoting_client(at, &subscriber.client_id)?;
        self.check_jurisdiction_instrument(&client, instrument)?;
        if subscriber.sizes.is_empty()
            || subscriber.sizes.len() > LADDER_SIZES_MAX
            || subscriber.notional_usd.len() != subscriber.sizes.len()
        {
            return Err(CommandError::invalid("levels", "1 to 10 sizes"));
        }
        subscriber
            .sizes
            .iter()
            .zip(&subscriber.notional_usd)
            .map(|(quantity, notional)| {
                validate_quantity(instrument, *quantity, "levels")?;
                let spread = self.spread_for(&client, *notional)?;
                let bid = self.executable_for(instrument, books, cross, Side::Sell, *quantity, at)?;
                let ask = self.executable_for(instrument, books, cross, Side::Buy, *quantity, at)?;
                Ok(PricedLevel {
                    quantity: *quantity,
                    bid: pricing::client_price(&bid, Side::Sell, spread, skew, instrument.price_step)
                        .map_err(pricing_refusal)?,
                    ask: pricing::client_price(&ask, Side::Buy, spread, skew, instrument.price_step)
                        .map_err(pricing_refusal)?,
                    market_as_of: bid.as_of.min(ask.as_of),
                    venues_used: bid.venues_used.max(ask.venues_used),
                    spread,
                })
            })
            .collect()
    }

    fn issue_ladder_quote(
        &mut self,
        at: TimestampMs,
        valid_until: TimestampMs,
        client_id: &ClientId,
        instrument: &Instrument,
        level: PricedLevel,
    ) -> Quote {
        let fee_centi_bps = self.clients.get(client_id).map_or(0, |client| self.fee_rate(client));
        let quote = Quote {
            quote_id: self.quotes.next_id(),
            client_id: client_id.clone(),
            client_rfq_id: None,
            instrument: instrument.symbol.clone(),
            side: None,
            quantity: level.quantity,
            bid: Some(level.bid),
            ask: Some(level.ask),
            requested: RequestedSize::Base(level.quantity),
            created_at: at,
            valid_until,
            market_as_of: level.market_as_of,
            venues_used: level.venues_used,
            spread_centi_bps: level.spread,
            fee_centi_bps,
            state: QuoteState::Open,
        };
        self.quotes.insert(quote.clone());
        quote
    }

    /// The executable for a size: from the instrument's own books, or through its cross legs when it has none.
    pub(super) fn executable_for(
        &self,
        instrument: &Instrument,
        books: &[VenueBook],
        cross: Option<&CrossBooks>,
        side: Side,
        quantity: i128,
        at: TimestampMs,
    ) -> Result<pricing::Executable, CommandError> {
        let Some(cross) = cross.filter(|_| books.is_empty()) else {
            return pricing::executable(books, side, quantity, at, i64::MAX).map_err(pricing_refusal);
        };
        let base_leg = self.instrument(&cross.base_leg)?;
        let quote_leg = self.instrument(&cross.quote_leg)?;
        validate_books(&cross.base_books, base_leg)?;
        validate_books(&cross.quote_books, quote_leg)?;
        let catalog = self.catalog().ok_or(CommandError::NotInitialized)?;
        let scale = |code| catalog.asset(code).map_or(0, |asset| asset.scale);
        let legs = crate::market::cross::CrossLegs {
            base_leg,
            base_books: &cross.base_books,
            quote_leg,
            quote_books: &cross.quote_books,
            base_scale: scale(&instrument.base),
            quote_scale: scale(&instrument.quote),
        };
        crate::market::cross::cross_executable(instrument, &legs, side, quantity, at, i64::MAX).map_err(|error| {
            match error {
                PricingError::InvalidBook => CommandError::invalid("cross", "the legs do not make this instrument"),
                other => pricing_refusal(other),
            }
        })
    }

    /// Only approved, unexpired clients get firm prices.
    fn quoting_client(&self, at: TimestampMs, client_id: &ClientId) -> Result<Client, CommandError> {
        let client = self.clients.get(client_id).ok_or_else(|| CommandError::not_found("client"))?;
        self.check_screening(client)?;
        if !client.kyc_valid_at(at) {
            return Err(CommandError::KycRequired);
        }
        Ok(client.clone())
    }

    pub(super) fn instrument(&self, symbol: &str) -> Result<&Instrument, CommandError> {
        self.catalog().and_then(|catalog| catalog.instrument(symbol)).ok_or_else(|| {
            CommandError::InstrumentUnknown(format!("unknown instrument {symbol:?}; see GET /v1/instruments"))
        })
    }

    fn spread_for(&self, client: &Client, notional_usd: Option<i128>) -> Result<i128, CommandError> {
        let tier = self.tiers.get(&client.tier).ok_or_else(|| CommandError::not_found("the client's tier"))?;
        Ok(tier.spread_for(notional_usd))
    }

    /// The original quote for a repeated client_rfq_id; `Err(conflict)` when the repeat asks for something else.
    fn repeated_rfq(
        &self,
        client_id: &ClientId,
        reference: &ClientReference,
        request: &QuoteRequest,
    ) -> Result<Option<Quote>, CommandError> {
        let Some(number) = self.quotes.by_client_rfq_id.get(&(client_id.clone(), reference.clone())) else {
            return Ok(None);
        };
        let original = self.quotes.quotes.get(number).expect("index points at a held quote");
        let same = original.instrument == request.instrument
            && original.side == Some(request.side)
            && original.requested == request.size;
        if !same {
            return Err(CommandError::conflict("this client_rfq_id was used for a different request"));
        }
        Ok(Some(Quote::clone(original)))
    }

    fn check_quote_capacity(&self) -> Result<(), CommandError> {
        if self.quotes.len() >= QUOTES_HELD_MAX {
            return Err(CommandError::conflict("the desk holds too many live quotes; retry shortly"));
        }
        Ok(())
    }
}

fn validate_validity(validity_ms: i64) -> Result<(), CommandError> {
    if !(QUOTE_VALIDITY_MS_MIN..=QUOTE_VALIDITY_MS_MAX).contains(&validity_ms) {
        return Err(CommandError::invalid("validity_ms", "must be between 100 and 60000"));
    }
    Ok(())
}

/// Checks market data carried by an order command (the same rules as for quotes).
pub(super) fn validate_order_books(books: &[VenueBook], instrument: &Instrument) -> Result<(), CommandError> {
    validate_books(books, instrument)
}

fn validate_books(books: &[VenueBook], instrument: &Instrument) -> Result<(), CommandError> {
    if books.len() > QUOTE_BOOKS_MAX {
        return Err(CommandError::invalid("books", "too many venue books"));
    }
    for book in books {
        if book.instrument != instrument.symbol {
            return Err(CommandError::invalid("books", "a book of another instrument"));
        }
        book.validate().map_err(|error| CommandError::invalid("books", error.to_string()))?;
    }
    Ok(())
}

/// Quantity rules of the instrument: on its step, within its minimum and maximum.
pub fn validate_quantity(instrument: &Instrument, quantity: i128, field: &'static str) -> Result<(), CommandError> {
    if quantity < instrument.quantity_min || quantity > instrument.quantity_max {
        return Err(CommandError::invalid(
            field,
            "is outside the instrument's minimum and maximum (see GET /v1/instruments)",
        ));
    }
    if quantity % instrument.quantity_step != 0 {
        return Err(CommandError::invalid(field, "is not a multiple of the instrument's quantity increment"));
    }
    Ok(())
}

fn pricing_refusal(error: PricingError) -> CommandError {
    match error {
        PricingError::NoFreshBook => CommandError::PriceUnavailable("no venue has a fresh book".into()),
        PricingError::InsufficientDepth => {
            CommandError::PriceUnavailable("the fresh books cannot fill this size".into())
        }
        other => CommandError::invalid("quantity", other.to_string()),
    }
}
