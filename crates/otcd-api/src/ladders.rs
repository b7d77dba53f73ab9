//! Streamed quote ladders, published per instrument.
//!
//! One publisher task per instrument with subscribers. It wakes on the market hub's version for the
//! instrument (a `watch`, so bursts conflate to the latest books), on a new subscriber, and on a refresh timer
//! that keeps a live firm quote on the wire in a quiet market. Each wake-up prices every firm-eligible
//! subscriber in ONE engine command (`RequestLadders`: the books once, then who asked for which sizes), so the
//! journal grows per tick, not per subscriber, and pushes the results. Subscribers that may not get firm
//! prices (no `trade` scope, KYC not approved, no fresh book) get an indicative ladder instead.

use crate::app::AppState;
use crate::json::format_timestamp;
use crate::market_inputs::{fresh, notional_usd, trim_for_quantity};
use crate::runner::now_ms;
use crate::stream::Outbound;
use axum::extract::ws::Utf8Bytes;
use otcd_core::catalog::Instrument;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::{Actor, Command, LadderBatchRequest, LadderSubscriber, Outcome};
use otcd_core::ids::ClientId;
use otcd_core::market::{pricing, Side, VenueBook};
use otcd_core::model::Quote;
use otcd_core::time::TimestampMs;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Distinct (client, sizes) ladders priced by one engine command; more subscribers are split into chunks.
const LADDERS_PER_COMMAND_MAX: usize = otcd_core::engine::quotes::LADDER_SUBSCRIBERS_MAX;

pub struct Subscriber {
    pub client_id: ClientId,
    pub sizes: Vec<i128>,
    /// The key has the `trade` scope (KYC is the engine's decision).
    pub firm_allowed: bool,
    pub outbound: Outbound,
}

#[derive(Default)]
pub struct LadderHub {
    instruments: Mutex<HashMap<String, Arc<InstrumentLadders>>>,
    next_id: AtomicU64,
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
#[derive(Default)]
struct InstrumentLadders {
    groups: Mutex<HashMap<LadderKey, HashMap<u64, Outbound>>>,
    nudge: Notify,
}

impl InstrumentLadders {
    fn keys(&self) -> Vec<LadderKey> {
        self.groups.lock().keys().cloned().collect()
    }

    /// Queues `message` for every subscriber of the ladder (never waits: a full queue closes that connection).
    fn deliver(&self, key: &LadderKey, message: &Utf8Bytes) {
        if let Some(group) = self.groups.lock().get(key) {
            group.values().for_each(|outbound| {
                outbound.push(message.clone());
            });
        }
    }
}

/// Unsubscribes on drop.
pub struct Registration {
    ladders: Arc<InstrumentLadders>,
    key: LadderKey,
    id: u64,
}

impl Drop for Registration {
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

impl LadderHub {
    pub fn subscribe(&self, state: &AppState, instrument: &Instrument, subscriber: Subscriber) -> Registration {
        let ladders = {
            let mut instruments = self.instruments.lock();
            match instruments.get(&instrument.symbol) {
                Some(ladders) => ladders.clone(),
                None => {
                    let ladders = Arc::new(InstrumentLadders::default());
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
        ladders.groups.lock().entry(key.clone()).or_default().insert(id, subscriber.outbound);
        ladders.nudge.notify_one();
        Registration { ladders, key, id }
    }
}

struct Publisher {
    state: AppState,
    instrument: Instrument,
    ladders: Arc<InstrumentLadders>,
}

impl Publisher {
    async fn run(self) {
        let Some(mut version) = self.state.market.subscribe(&self.instrument.symbol) else { return };
        // Re-quote before the last firm ladder expires, so a quiet market still has a live firm price.
        let refresh = Duration::from_millis((self.state.quote_validity_ms.max(200) as u64) * 4 / 5);
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
        let now = now_ms();
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
            validity_ms: self.state.quote_validity_ms,
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
                        .map(|size| notional_usd(&self.state.market, &self.state.catalog, &self.instrument, *size))
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
        let published_ms = (now_ms().0 - tick_at.0).max(0);
        self.state.metrics.ladder_publish_seconds.observe(published_ms as f64 / 1_000.0);
        refused
    }

    /// `tick_at` (an extension of API.md's message): the newest market update behind the ladder, so clients can
    /// measure tick-to-client latency.
    fn firm_message(&self, quotes: &[Quote], tick_at: TimestampMs) -> Utf8Bytes {
        let scale = self.base_scale();
        let price = |value: Option<i128>| value.map(|price| format_scaled(price, self.instrument.price_scale));
        let levels = quotes
            .iter()
            .map(|quote| LevelMessage {
                quantity: format_scaled(quote.quantity, scale),
                bid: price(quote.bid),
                ask: price(quote.ask),
                quote_id: Some(&quote.quote_id),
                valid_until: Some(format_timestamp(quote.valid_until)),
            })
            .collect();
        let as_of = quotes.iter().map(|quote| quote.market_as_of).min().unwrap_or_default();
        LadderMessage::new(&self.instrument.symbol, true, as_of, tick_at, levels).to_text()
    }

    fn base_scale(&self) -> u8 {
        self.state.catalog.asset(&self.instrument.base).map_or(0, |asset| asset.scale)
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
            .engine
            .query(move |desk| {
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
    ) -> Option<Utf8Bytes> {
        let scale = self.base_scale();
        let mut levels = Vec::with_capacity(sizes.len());
        let mut as_of = now;
        for size in sizes {
            let spread =
                tier.spread_for(notional_usd(&self.state.market, &self.state.catalog, &self.instrument, *size));
            let executable = |side| {
                crate::routes::quotes::indicative_executable(
                    &self.state,
                    &self.instrument,
                    books,
                    cross,
                    side,
                    *size,
                    now,
                )
            };
            let bid = executable(Side::Sell).ok()?;
            let ask = executable(Side::Buy).ok()?;
            as_of = as_of.min(bid.as_of).min(ask.as_of);
            let bid_price = pricing::client_price(&bid, Side::Sell, spread, skew, self.instrument.price_step).ok()?;
            let ask_price = pricing::client_price(&ask, Side::Buy, spread, skew, self.instrument.price_step).ok()?;
            levels.push(LevelMessage {
                quantity: format_scaled(*size, scale),
                bid: Some(format_scaled(bid_price, self.instrument.price_scale)),
                ask: Some(format_scaled(ask_price, self.instrument.price_scale)),
                quote_id: None,
                valid_until: None,
            });
        }
        Some(LadderMessage::new(&self.instrument.symbol, false, as_of, tick_at, levels).to_text())
    }
}

/// A `quotes` message as sent (API.md § Streaming), serialized straight from typed fields: building a
/// `serde_json::Value` first cost a map allocation per field for every distinct ladder of every tick.
#[derive(Serialize)]
struct LadderMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    instrument: &'a str,
    firm: bool,
    as_of: String,
    tick_at: String,
    levels: Vec<LevelMessage<'a>>,
}

#[derive(Serialize)]
struct LevelMessage<'a> {
    quantity: String,
    bid: Option<String>,
    ask: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quote_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
}

impl<'a> LadderMessage<'a> {
    fn new(
        instrument: &'a str,
        firm: bool,
        as_of: TimestampMs,
        tick_at: TimestampMs,
        levels: Vec<LevelMessage<'a>>,
    ) -> Self {
        Self {
            kind: "quotes",
            instrument,
            firm,
            as_of: format_timestamp(as_of),
            tick_at: format_timestamp(tick_at),
            levels,
        }
    }

    fn to_text(&self) -> Utf8Bytes {
        Utf8Bytes::from(serde_json::to_string(self).expect("a ladder message serializes"))
    }
}
