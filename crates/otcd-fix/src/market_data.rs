//! Market data: MarketDataRequest (V) → MarketDataSnapshotFullRefresh (W), then MarketDataIncrementalRefresh (X)
//! updates; MarketDataRequestReject (Y) on refusal. The ladders are the services' (`otcd_services::ladders`):
//! the same prices as the WebSocket `quotes` channel, firm (each level a quote id) for keys that may trade, else
//! indicative (marked `QuoteCondition` (276) `I`, non-firm).

use crate::codec::{Builder, Message};
use otcd_core::decimal::{format_scaled, parse_positive};
use otcd_services::ladders::{Ladder, LadderHub, LadderSink, Registration, Subscriber};
use otcd_services::DeskServices;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Subscriptions one session may hold.
pub const SUBSCRIPTIONS_MAX: usize = 20;
/// Sizes (levels) one subscription may ask for.
pub const SIZES_MAX: usize = 10;
/// Ladders waiting for one session; more are dropped (the next one supersedes them anyway).
pub const LADDER_QUEUE: usize = 64;

/// A ladder rendered once for every FIX subscriber of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedLadder {
    pub symbol: String,
    pub firm: bool,
    pub levels: Vec<RenderedLevel>,
}

/// (quantity, bid, ask, quote id), decimal strings.
pub type RenderedLevel = (String, Option<String>, Option<String>, Option<String>);

/// Where a session's ladders go: its queue, tagged with the MDReqID.
#[derive(Clone)]
pub struct FixLadders {
    request_id: Arc<str>,
    sender: mpsc::Sender<(Arc<str>, Arc<RenderedLadder>)>,
}

impl LadderSink for FixLadders {
    type Message = Arc<RenderedLadder>;

    fn render(ladder: &Ladder<'_>) -> Self::Message {
        let price = |value: Option<i128>| value.map(|price| format_scaled(price, ladder.price_scale));
        let levels = ladder
            .levels
            .iter()
            .map(|level| {
                let quantity = format_scaled(level.quantity, ladder.quantity_scale);
                (quantity, price(level.bid), price(level.ask), level.quote_id.map(str::to_owned))
            })
            .collect();
        Arc::new(RenderedLadder { symbol: ladder.instrument.to_owned(), firm: ladder.firm, levels })
    }

    fn push(&self, message: Self::Message) {
        // A full queue drops this ladder: the session is behind, and the next ladder replaces it.
        let _ = self.sender.try_send((self.request_id.clone(), message));
    }
}

/// One session's market data subscriptions.
pub struct MarketData {
    sender: mpsc::Sender<(Arc<str>, Arc<RenderedLadder>)>,
    pub receiver: mpsc::Receiver<(Arc<str>, Arc<RenderedLadder>)>,
    /// By MDReqID: the registration, whether the snapshot was sent, and whether updates follow.
    subscriptions: HashMap<Arc<str>, (Registration<FixLadders>, bool, bool)>,
}

impl Default for MarketData {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(LADDER_QUEUE);
        Self { sender, receiver, subscriptions: HashMap::new() }
    }
}

fn reject(request_id: &str, reason: &'static str, text: &str) -> Builder {
    Builder::new("Y").field(262, request_id).field(281, reason).field(58, text)
}

impl MarketData {
    /// Handles a MarketDataRequest: subscribes (the snapshot follows on the ladder queue), unsubscribes, or
    /// answers a reject.
    pub fn request(
        &mut self,
        desk: &Arc<DeskServices>,
        hub: &LadderHub<FixLadders>,
        key: &otcd_services::keys::AuthKey,
        message: &Message,
    ) -> Option<Builder> {
        let Some(request_id) = message.get(262) else {
            return Some(reject("NONE", "0", "invalid_request: MDReqID (262) missing"));
        };
        let request_type = message.get(263).unwrap_or("");
        if request_type == "2" {
            self.subscriptions.remove(request_id);
            return None;
        }
        if request_type != "0" && request_type != "1" {
            return Some(reject(request_id, "4", "invalid_request: SubscriptionRequestType must be 0, 1 or 2"));
        }
        if self.subscriptions.contains_key(request_id) {
            return Some(reject(request_id, "1", "conflict: MDReqID already subscribed"));
        }
        if self.subscriptions.len() >= SUBSCRIPTIONS_MAX {
            return Some(reject(request_id, "0", "limit_exceeded: at most 20 market data subscriptions"));
        }
        let Some(client_id) = key.client_id.clone() else {
            return Some(reject(request_id, "0", "forbidden: market data is for client keys"));
        };
        let symbols: Vec<&str> =
            message.from_tag(146).iter().filter(|(tag, _)| *tag == 55).map(|(_, value)| value.as_str()).collect();
        if symbols.len() != 1 {
            return Some(reject(request_id, "0", "invalid_request: NoRelatedSym (146) must hold one Symbol"));
        }
        let instrument = match desk.instrument(symbols[0]) {
            Ok(instrument) => instrument.clone(),
            Err(error) => return Some(reject(request_id, "0", &crate::app::text_of(&error))),
        };
        let base_scale = desk.base_scale(&instrument);
        let mut sizes = Vec::new();
        for (_, text) in message.fields.iter().filter(|(tag, _)| *tag == 271) {
            match parse_positive(text, base_scale) {
                Ok(size) if desk.check_quantity(&instrument, size).is_ok() => sizes.push(size),
                _ => {
                    return Some(reject(
                        request_id,
                        "0",
                        "invalid_request: an MDEntrySize (271) is not a valid quantity",
                    ))
                }
            }
        }
        if sizes.is_empty() {
            sizes.push(instrument.quantity_min);
        }
        if sizes.len() > SIZES_MAX {
            return Some(reject(request_id, "5", "invalid_request: at most 10 sizes (MDEntrySize)"));
        }
        let request_id: Arc<str> = Arc::from(request_id);
        let sink = FixLadders { request_id: request_id.clone(), sender: self.sender.clone() };
        let firm_allowed = key.has_scope(otcd_core::model::Scope::Trade);
        let registration = hub.subscribe(desk, &instrument, Subscriber { client_id, sizes, firm_allowed, sink });
        self.subscriptions.insert(request_id, (registration, false, request_type == "1"));
        None
    }

    /// The message a ladder of `request_id` becomes: the snapshot (W) first, then updates (X); `None` for a
    /// subscription that ended (or a snapshot-only one already answered).
    pub fn render(&mut self, request_id: &Arc<str>, ladder: &RenderedLadder) -> Option<Builder> {
        let (_, snapshot_sent, updates) = self.subscriptions.get_mut(request_id)?;
        if !*snapshot_sent {
            *snapshot_sent = true;
            let builder = snapshot(request_id, ladder);
            if !*updates {
                self.subscriptions.remove(request_id);
            }
            return Some(builder);
        }
        Some(incremental(request_id, ladder))
    }
}

/// Each level's bid and offer entries: (MDEntryType, price, size, quote id, entry id).
fn entries(ladder: &RenderedLadder) -> Vec<(&'static str, &str, &str, Option<&str>, String)> {
    let mut entries = Vec::new();
    for (index, (quantity, bid, ask, quote_id)) in ladder.levels.iter().enumerate() {
        if let Some(bid) = bid {
            entries.push(("0", bid.as_str(), quantity.as_str(), quote_id.as_deref(), format!("B{index}")));
        }
        if let Some(ask) = ask {
            entries.push(("1", ask.as_str(), quantity.as_str(), quote_id.as_deref(), format!("O{index}")));
        }
    }
    entries
}

fn snapshot(request_id: &str, ladder: &RenderedLadder) -> Builder {
    let entries = entries(ladder);
    let mut builder = Builder::new("W").field(262, request_id).field(55, ladder.symbol.clone());
    builder = builder.field(268, entries.len().to_string());
    for (entry_type, price, size, quote_id, _) in entries {
        builder = builder.field(269, entry_type).field(270, price).field(271, size);
        if !ladder.firm {
            builder = builder.field(276, "I");
        }
        builder = builder.optional(299, quote_id);
    }
    builder
}

fn incremental(request_id: &str, ladder: &RenderedLadder) -> Builder {
    let entries = entries(ladder);
    let mut builder = Builder::new("X").field(262, request_id).field(268, entries.len().to_string());
    for (entry_type, price, size, quote_id, entry_id) in entries {
        builder = builder
            .field(279, "1")
            .field(269, entry_type)
            .field(278, entry_id)
            .field(55, ladder.symbol.clone())
            .field(270, price)
            .field(271, size);
        if !ladder.firm {
            builder = builder.field(276, "I");
        }
        builder = builder.optional(299, quote_id);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ladder_becomes_standard_entries() {
        let ladder = RenderedLadder {
            symbol: "BTC-USD".into(),
            firm: false,
            levels: vec![("1".into(), Some("49990.00".into()), Some("50010.00".into()), None)],
        };
        let snapshot = snapshot("md-1", &ladder);
        let tags: Vec<u32> = snapshot.body.iter().map(|(tag, _)| *tag).collect();
        assert_eq!(tags, [262, 55, 268, 269, 270, 271, 276, 269, 270, 271, 276]);
        let update = incremental("md-1", &ladder);
        assert_eq!(update.body[2..5], [(279, "1".into()), (269, "0".into()), (278, "B0".into())]);
    }
}
