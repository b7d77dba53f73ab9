//! Streamed quote ladders, published per instrument.
//!
//! One publisher task per instrument with subscribers. It wakes on the market hub's version for the
//! instrument (a `watch`, so bursts conflate to the latest books), on a new subscriber, and on a refresh timer
//! that keeps a live firm quote on the wire in a quiet market. Each wake-up prices every firm-eligible
//! subscriber in ONE engine command (`RequestLadders`: the books once, then who asked for which sizes), so the
//! journal grows per tick, not per subscriber, and pushes the results. Subscribers that may not get firm
//! prices (no `trade` scope, KYC not approved, no fresh book) get an indicative ladder instead.
//!
//! The hub is generic over the protocol that carries ladders ([`LadderSink`]): each distinct ladder is rendered
//! once for that protocol (the WebSocket's JSON, a FIX market data message) and the same bytes are queued for
//! every subscriber of it.

use crate::market_inputs::{fresh, trim_for_quantity};
use crate::DeskServices;
use otcd_core::catalog::Instrument;
use otcd_core::engine::{Actor, Command, LadderBatchRequest, LadderSubscriber, Outcome};
use otcd_core::ids::ClientId;
use otcd_core::market::{pricing, Side, VenueBook};
use otcd_core::model::Quote;
use otcd_core::time::TimestampMs;
use otcd_host::metrics::{latency_buckets, Metrics};
use parking_lot::Mutex;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Distinct (client, sizes) ladders priced by one engine command; more subscribers are split into chunks.
const LADDERS_PER_COMMAND_MAX: usize = otcd_core::engine::quotes::LADDER_SUBSCRIBERS_MAX;

/// A priced ladder, as every protocol shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder<'a> {
    pub instrument: &'a str,
    /// Firm (each level a quote, executable once before `valid_until`) or indicative.
    pub firm: bool,
    /// The oldest market data behind the prices.
    pub as_of: TimestampMs,
    /// The newest market update behind the ladder, so clients can measure tick-to-client latency.
    pub tick_at: TimestampMs,
    pub levels: Vec<LadderLevel<'a>>,
    /// Decimal places of the base quantities and of the prices.
    pub quantity_scale: u8,
    pub price_scale: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderLevel<'a> {
    pub quantity: i128,
    pub bid: Option<i128>,
    pub ask: Option<i128>,
    pub quote_id: Option<&'a str>,
    pub valid_until: Option<TimestampMs>,
}

/// How one protocol carries ladders to a subscriber.
pub trait LadderSink: Clone + Send + Sync + 'static {
    /// What a ladder becomes on the wire; built once per distinct ladder and tick, cloned for each subscriber.
    type Message: Clone + Send + Sync;
    fn render(ladder: &Ladder<'_>) -> Self::Message;
    /// Queues the message for the subscriber; never waits (a full queue is the sink's to handle).
    fn push(&self, message: Self::Message);
}

pub struct Subscriber<S> {
    pub client_id: ClientId,
    pub sizes: Vec<i128>,
    /// The key has the `trade` scope (KYC is the engine's decision).
    pub firm_allowed: bool,
    pub sink: S,
}

/// The ladder publishers of one protocol.
pub struct LadderHub<S: LadderSink> {
    instruments: Mutex<HashMap<String, Arc<InstrumentLadders<S>>>>,
    next_id: AtomicU64,
}

impl<S: LadderSink> Default for LadderHub<S> {
    fn default() -> Self {
        Self { instruments: Mutex::new(HashMap::new()), next_id: AtomicU64::new(0) }
    }
}

/// `otcd_ladder_publish_seconds`.
#[derive(Clone)]
pub(crate) struct LadderMetrics {
    publish_seconds: Histogram,
}

impl LadderMetrics {
    pub(crate) fn register(metrics: &Metrics) -> Self {
        let publish_seconds = Histogram::new(latency_buckets());
        metrics.register(
            "ladder_publish_seconds",
            "Streamed ladder latency from its market tick to queued for every subscriber",
            publish_seconds.clone(),
        );
        Self { publish_seconds }
    }
}

/// Subscribers asking the same client's ladder for the same sizes share one priced ladder (and its quote ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LadderKey {
    client_id: ClientId,
    sizes: Vec<i128>,
    firm_allowed: bool,
}

/// Subscribers kept grouped by ladder as they come and go, so that a tick clones one key per distinct ladder
/// rather than every subscriber, and pushes one shared message to a group under one lock.
struct InstrumentLadders<S> {
    groups: Mutex<HashMap<LadderKey, HashMap<u64, S>>>,
    nudge: Notify,
}

impl<S: LadderSink> InstrumentLadders<S> {
    fn keys(&self) -> Vec<LadderKey> {
        self.groups.lock().keys().cloned().collect()
    }

    /// Queues `message` for every subscriber of the ladder (never waits).
    fn deliver(&self, key: &LadderKey, message: &S::Message) {
        if let Some(group) = self.groups.lock().get(key) {
            group.values().for_each(|sink| sink.push(message.clone()));
        }
    }
}

/// Unsubscribes on drop.
pub struct Registration<S: LadderSink> {
    ladders: Arc<InstrumentLadders<S>>,
    key: LadderKey,
    id: u64,
}

impl<S: LadderSink> Drop for Registration<S> {
    fn drop(&mut self) {
        let mut groups = self.ladders.groups.lock();
        if let Some(group) = groups.get_mut(&self.key) {
            group.remove(&self.id);
            if group.is_empty() {
                groups.remove(&self.key);
            }
        }
    }
}

impl<S: LadderSink> LadderHub<S> {
    /// Registers a subscriber (and starts the instrument's publisher if it has none); dropping the registration
    /// unsubscribes.
    pub fn subscribe(
        &self,
        state: &Arc<DeskServices>,
        instrument: &Instrument,
        subscriber: Subscriber<S>,
    ) -> Registration<S> {
        let ladders = {
            let mut instruments = self.instruments.lock();
            match instruments.get(&instrument.symbol) {
                Some(ladders) => ladders.clone(),
                None => {
                    let ladders =
                        Arc::new(InstrumentLadders { groups: Mutex::new(HashMap::new()), nudge: Notify::new() });
                    instruments.insert(instrument.symbol.clone(), ladders.clone());
                    let publisher =
                        Publisher { state: state.clone(), instrument: instrument.clone(), ladders: ladders.clone() };
                    tokio::spawn(publisher.run());
                    ladders
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let key = LadderKey {
            client_id: subscriber.client_id,
            sizes: subscriber.sizes,
            firm_allowed: subscriber.firm_allowed,
        };
        ladders.groups.lock().entry(key.clone()).or_default().insert(id, subscriber.sink);
        ladders.nudge.notify_one();
        Registration { ladders, key, id }
    }
}

struct Publisher<S: LadderSink> {
    state: Arc<DeskServices>,
    instrument: Instrument,
    ladders: Arc<InstrumentLadders<S>>,
}

impl<S: LadderSink> Publisher<S> {
    async fn run(self) {
        let Some(mut version) = self.state.market.subscribe(&self.instrument.symbol) else { return };
        // Re-quote before the last firm ladder expires, so a quiet market still has a live firm price.
        let refresh = Duration::from_millis((self.state.settings.quote_validity_ms.max(200) as u64) * 4 / 5);
        loop {
            self.publish().await;
            tokio::select! {
                changed = version.changed() => if changed.is_err() { return },
                () = self.ladders.nudge.notified() => {}
                () = tokio::time::sleep(refresh) => {}
            }
        }
    }

    async fn publish(&self) {
        let keys = self.ladders.keys();
        if keys.is_empty() {
            return;
        }
        let now = self.state.clock.now();
        let books = fresh(&self.state.market, &self.instrument.symbol, now);
        let cross = self.state.cross_for(&self.instrument, &books, now, true);
        let priceable = !books.is_empty() || cross.is_some();
        let (firm, mut indicative): (Vec<LadderKey>, Vec<LadderKey>) =
            keys.into_iter().partition(|key| key.firm_allowed && priceable);
        for chunk in firm.chunks(LADDERS_PER_COMMAND_MAX) {
            indicative.extend(self.publish_firm(chunk, &books, cross.as_ref(), now).await);
        }
        self.publish_indicative(&indicative, now).await;
    }

    /// Prices `keys` in one engine command and pushes each firm ladder; returns the keys that got none.
    async fn publish_firm(
        &self,
        keys: &[LadderKey],
        books: &[VenueBook],
        cross: Option<&otcd_core::engine::CrossBooks>,
        now: TimestampMs,
    ) -> Vec<LadderKey> {
        let largest = keys.iter().flat_map(|key| key.sizes.iter().copied()).max().unwrap_or_default();
        let leg_books = cross.iter().flat_map(|cross| cross.base_books.iter().chain(&cross.quote_books));
        let tick_at = books.iter().chain(leg_books).map(|book| book.as_of).max().unwrap_or(now);
        let request = LadderBatchRequest {
            instrument: self.instrument.symbol.clone(),
            validity_ms: self.state.settings.quote_validity_ms,
            books: trim_for_quantity(books, None, largest),
            cross: cross.cloned(),
            subscribers: keys
                .iter()
                .map(|key| LadderSubscriber {
                    client_id: key.client_id.clone(),
                    sizes: key.sizes.clone(),
                    notional_usd: key
                        .sizes
                        .iter()
                        .map(|size| self.state.notional_usd(&self.instrument, *size))
                        .collect(),
                })
                .collect(),
        };
        let results = match self.state.engine.submit(Actor::default(), Command::RequestLadders(request)).await {
            Ok(executed) => match executed.outcome {
                Outcome::Ladders(results) => results,
                _ => return keys.to_vec(),
            },
            Err(error) => {
                tracing::debug!(%error, instrument = %self.instrument.symbol, "firm ladders refused; sending indicative");
                return keys.to_vec();
            }
        };
        let mut refused = Vec::new();
        for (key, result) in keys.iter().zip(results) {
            match result {
                Ok(quotes) => {
                    // Serialized once; every subscriber's copy shares the same bytes.
                    self.ladders.deliver(key, &self.firm_message(&quotes, tick_at));
                }
                Err(_) => refused.push(key.clone()),
            }
        }
        let published_ms = (self.state.clock.now().0 - tick_at.0).max(0);
        self.state.internal.ladder_metrics.publish_seconds.observe(published_ms as f64 / 1_000.0);
        refused
    }

    fn firm_message(&self, quotes: &[Quote], tick_at: TimestampMs) -> S::Message {
        let levels = quotes
            .iter()
            .map(|quote| LadderLevel {
                quantity: quote.quantity,
                bid: quote.bid,
                ask: quote.ask,
                quote_id: Some(&quote.quote_id),
                valid_until: Some(quote.valid_until),
            })
            .collect();
        let as_of = quotes.iter().map(|quote| quote.market_as_of).min().unwrap_or_default();
        S::render(&self.ladder(true, as_of, tick_at, levels))
    }

    fn ladder<'a>(
        &'a self,
        firm: bool,
        as_of: TimestampMs,
        tick_at: TimestampMs,
        levels: Vec<LadderLevel<'a>>,
    ) -> Ladder<'a> {
        Ladder {
            instrument: &self.instrument.symbol,
            firm,
            as_of,
            tick_at,
            levels,
            quantity_scale: self.state.base_scale(&self.instrument),
            price_scale: self.instrument.price_scale,
        }
    }

    /// Indicative ladders at each client's tier spread, from every venue's latest book (stale ones included,
    /// shown by `as_of`). Nothing is sent when there is no book at all.
    async fn publish_indicative(&self, keys: &[LadderKey], now: TimestampMs) {
        if keys.is_empty() {
            return;
        }
        let books = self.state.market.all_books(&self.instrument.symbol);
        let cross = self.state.cross_for(&self.instrument, &books, now, false);
        let leg_books = cross.iter().flat_map(|cross| cross.base_books.iter().chain(&cross.quote_books));
        let Some(tick_at) = books.iter().chain(leg_books).map(|book| book.as_of).max() else { return };
        let clients: Vec<ClientId> = keys.iter().map(|key| key.client_id.clone()).collect();
        let base = self.instrument.base;
        let Ok(tiers) = self
            .state
            .read(move |desk| {
                let skew = desk.skew_for(base);
                clients
                    .into_iter()
                    .filter_map(|id| {
                        let tier = desk.client(&id).and_then(|client| desk.tier(&client.tier).cloned())?;
                        Some((id, (tier, skew)))
                    })
                    .collect::<HashMap<_, _>>()
            })
            .await
        else {
            return;
        };
        for key in keys {
            let Some((tier, skew)) = tiers.get(&key.client_id) else { continue };
            let Some(message) = self.indicative_message(&books, cross.as_ref(), &key.sizes, tier, *skew, now, tick_at)
            else {
                continue;
            };
            self.ladders.deliver(key, &message);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn indicative_message(
        &self,
        books: &[VenueBook],
        cross: Option<&otcd_core::engine::CrossBooks>,
        sizes: &[i128],
        tier: &otcd_core::model::Tier,
        skew: i128,
        now: TimestampMs,
        tick_at: TimestampMs,
    ) -> Option<S::Message> {
        let mut levels = Vec::with_capacity(sizes.len());
        let mut as_of = now;
        for size in sizes {
            let spread = tier.spread_for(self.state.notional_usd(&self.instrument, *size));
            let executable = |side| self.state.indicative_executable(&self.instrument, books, cross, side, *size, now);
            let bid = executable(Side::Sell).ok()?;
            let ask = executable(Side::Buy).ok()?;
            as_of = as_of.min(bid.as_of).min(ask.as_of);
            let bid_price = pricing::client_price(&bid, Side::Sell, spread, skew, self.instrument.price_step).ok()?;
            let ask_price = pricing::client_price(&ask, Side::Buy, spread, skew, self.instrument.price_step).ok()?;
            levels.push(LadderLevel {
                quantity: *size,
                bid: Some(bid_price),
                ask: Some(ask_price),
                quote_id: None,
                valid_until: None,
            });
        }
        Some(S::render(&self.ladder(false, as_of, tick_at, levels)))
    }
}
