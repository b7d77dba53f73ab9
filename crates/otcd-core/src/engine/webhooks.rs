//! Webhooks: the registrations and the outbox of events waiting for delivery, both part of the desk's state.
//!
//! Why in the core: a delivery pending at a crash must be delivered after the restart, but events are derived
//! when a record executes, and recovery re-executes only the records after the newest snapshot. So the events a
//! webhook still needs are kept in the state itself (in every snapshot, and re-appended when a record replays),
//! and the delivery worker's progress is journaled (`AdvanceWebhooks`, batched): after any restart the outbox
//! holds exactly the events after each webhook's journaled position. Deliveries are at least once: an event
//! delivered after the last journaled advance is delivered again, with the same delivery id.
//!
//! Bounds: at most [`WEBHOOKS_MAX`] webhooks ([`WEBHOOKS_PER_OWNER_MAX`] per client or for the desk), and an outbox
//! of at most [`OUTBOX_EVENTS_MAX`] events: beyond it the oldest is dropped and counted on every webhook that had
//! not passed it (`dropped`), rather than let a dead endpoint grow the desk's memory without limit.

use super::events::DeskEvent;
use super::{CommandError, Desk, Executed, Outcome};
use crate::ids::ClientId;
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

pub const WEBHOOKS_MAX: usize = 1_000;
pub const WEBHOOKS_PER_OWNER_MAX: usize = 10;
pub const OUTBOX_EVENTS_MAX: usize = 100_000;
pub const URL_BYTES_MAX: usize = 2_048;
/// Most positions one `AdvanceWebhooks` command carries.
pub const ADVANCES_MAX: usize = WEBHOOKS_MAX;

/// The kinds of event a webhook can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventKind {
    Order,
    Trade,
    Withdrawal,
    /// Settlement instructions (net settlement cycles and their steps).
    Settlement,
    Balance,
}

impl WebhookEventKind {
    pub const ALL: [WebhookEventKind; 5] =
        [Self::Order, Self::Trade, Self::Withdrawal, Self::Settlement, Self::Balance];

    /// The kind of an event; `None` for alerts and ledger transactions (never delivered: desk-level).
    pub fn of(event: &DeskEvent) -> Option<Self> {
        match event {
            DeskEvent::Order(_) => Some(Self::Order),
            DeskEvent::Trade(_) => Some(Self::Trade),
            DeskEvent::Withdrawal(_) => Some(Self::Withdrawal),
            DeskEvent::Instruction(_) => Some(Self::Settlement),
            DeskEvent::Balance(_) => Some(Self::Balance),
            DeskEvent::Alert(_) | DeskEvent::LedgerTransaction(_) => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Trade => "trade",
            Self::Withdrawal => "withdrawal",
            Self::Settlement => "settlement",
            Self::Balance => "balance",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }
}

/// Where an event sits in the outbox: its record's seq and its index among that record's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct OutboxPosition {
    pub seq: u64,
    pub index: u32,
}

/// A webhook to register. The id and the sealed secret are made by the services (the secret is shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhook {
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<WebhookEventKind>,
    /// `None`: desk-wide (every client's events).
    pub client_id: Option<ClientId>,
    /// The signing secret, sealed with the desk's master key.
    pub sealed_secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<WebhookEventKind>,
    pub client_id: Option<ClientId>,
    pub sealed_secret: Vec<u8>,
    pub created_at: TimestampMs,
    /// Every outbox event at or before this position was delivered or given up on (journaled progress).
    pub delivered_through: OutboxPosition,
    /// Events this webhook wanted that the outbox dropped for its bound before they were delivered.
    pub dropped: u64,
}

impl Webhook {
    pub fn wants(&self, event: &DeskEvent) -> bool {
        let kind_wanted = WebhookEventKind::of(event).is_some_and(|kind| self.events.contains(&kind));
        let client_matches = match &self.client_id {
            None => true,
            Some(client_id) => event.client_id() == Some(client_id),
        };
        kind_wanted && client_matches
    }
}

/// One event waiting for the webhooks that want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub position: OutboxPosition,
    pub at: TimestampMs,
    #[serde(with = "stored_event")]
    pub event: DeskEvent,
}

/// Events as the outbox stores them (in snapshots): externally tagged, because `DeskEvent`'s internal tag
/// makes serde buffer the content, which cannot hold the i128 amounts.
mod stored_event {
    use super::super::alerts::Alert;
    use super::super::events::{BalanceEvent, DeskEvent, LedgerTransactionEvent, OrderEvent};
    use super::super::netting::Instruction;
    use super::super::orders::Trade;
    use super::super::settlement::Withdrawal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    enum Borrowed<'a> {
        Order(&'a OrderEvent),
        Trade(&'a Trade),
        Balance(&'a BalanceEvent),
        Withdrawal(&'a Withdrawal),
        Instruction(&'a Instruction),
        Alert(&'a Alert),
        LedgerTransaction(&'a LedgerTransactionEvent),
    }

    // Built once per stored event and converted at once, as `DeskEvent` itself.
    #[allow(clippy::large_enum_variant)]
    #[derive(Deserialize)]
    enum Owned {
        Order(OrderEvent),
        Trade(Trade),
        Balance(BalanceEvent),
        Withdrawal(Withdrawal),
        Instruction(Instruction),
        Alert(Alert),
        LedgerTransaction(LedgerTransactionEvent),
    }

    pub fn serialize<S: Serializer>(event: &DeskEvent, serializer: S) -> Result<S::Ok, S::Error> {
        match event {
            DeskEvent::Order(event) => Borrowed::Order(event),
            DeskEvent::Trade(event) => Borrowed::Trade(event),
            DeskEvent::Balance(event) => Borrowed::Balance(event),
            DeskEvent::Withdrawal(event) => Borrowed::Withdrawal(event),
            DeskEvent::Instruction(event) => Borrowed::Instruction(event),
            DeskEvent::Alert(event) => Borrowed::Alert(event),
            DeskEvent::LedgerTransaction(event) => Borrowed::LedgerTransaction(event),
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DeskEvent, D::Error> {
        Ok(match Owned::deserialize(deserializer)? {
            Owned::Order(event) => DeskEvent::Order(event),
            Owned::Trade(event) => DeskEvent::Trade(event),
            Owned::Balance(event) => DeskEvent::Balance(event),
            Owned::Withdrawal(event) => DeskEvent::Withdrawal(event),
            Owned::Instruction(event) => DeskEvent::Instruction(event),
            Owned::Alert(event) => DeskEvent::Alert(event),
            Owned::LedgerTransaction(event) => DeskEvent::LedgerTransaction(event),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookBook {
    webhooks: BTreeMap<String, Webhook>,
    /// In position order; only events some webhook wanted when they happened.
    outbox: VecDeque<OutboxEntry>,
}

impl WebhookBook {
    pub fn is_active(&self) -> bool {
        !self.webhooks.is_empty()
    }

    /// Appends the events of the record `seq` that some webhook wants, then applies the bound.
    pub(crate) fn append(&mut self, seq: u64, at: TimestampMs, events: &[DeskEvent]) {
        for (index, event) in events.iter().enumerate() {
            if self.webhooks.values().any(|webhook| webhook.wants(event)) {
                let position = OutboxPosition { seq, index: u32::try_from(index).unwrap_or(u32::MAX) };
                self.outbox.push_back(OutboxEntry { position, at, event: event.clone() });
            }
        }
        while self.outbox.len() > OUTBOX_EVENTS_MAX {
            let dropped = self.outbox.pop_front().expect("the outbox is over its bound");
            for webhook in self.webhooks.values_mut() {
                if webhook.delivered_through < dropped.position && webhook.wants(&dropped.event) {
                    webhook.dropped += 1;
                }
            }
        }
    }

    /// Drops the entries every webhook is past.
    fn trim(&mut self) {
        let through = self.webhooks.values().map(|webhook| webhook.delivered_through).min();
        match through {
            None => self.outbox.clear(),
            Some(through) => {
                while self.outbox.front().is_some_and(|entry| entry.position <= through) {
                    self.outbox.pop_front();
                }
            }
        }
    }
}

impl Desk {
    pub fn webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks.webhooks.values()
    }

    pub fn webhook(&self, webhook_id: &str) -> Option<&Webhook> {
        self.webhooks.webhooks.get(webhook_id)
    }

    /// Up to `limit` outbox entries after `after`, in order (whether the webhook wants them or not: the caller
    /// filters, and passes the rest).
    pub fn webhook_outbox_after(&self, after: OutboxPosition, limit: usize) -> Vec<OutboxEntry> {
        let start = self.webhooks.outbox.partition_point(|entry| entry.position <= after);
        self.webhooks.outbox.range(start..).take(limit).cloned().collect()
    }

    /// Events in the outbox.
    pub fn webhook_outbox_len(&self) -> usize {
        self.webhooks.outbox.len()
    }

    pub(super) fn create_webhook(&mut self, at: TimestampMs, new: &NewWebhook) -> Result<Executed, CommandError> {
        if self.webhooks.webhooks.contains_key(&new.webhook_id) {
            return Err(CommandError::conflict("a webhook with this id exists"));
        }
        if new.url.is_empty() || new.url.len() > URL_BYTES_MAX {
            return Err(CommandError::invalid("url", "1 to 2048 bytes"));
        }
        if new.events.is_empty() || new.events.len() > WebhookEventKind::ALL.len() {
            return Err(CommandError::invalid("events", "1 to 5 event kinds"));
        }
        if let Some(client_id) = &new.client_id {
            if !self.clients.contains_key(client_id) {
                return Err(CommandError::not_found("client"));
            }
        }
        if self.webhooks.webhooks.len() >= WEBHOOKS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of webhooks"));
        }
        let owned = self.webhooks.webhooks.values().filter(|webhook| webhook.client_id == new.client_id).count();
        if owned >= WEBHOOKS_PER_OWNER_MAX {
            return Err(CommandError::conflict("at most 10 webhooks per client (and for the desk)"));
        }
        let mut events = new.events.clone();
        events.sort();
        events.dedup();
        let webhook = Webhook {
            webhook_id: new.webhook_id.clone(),
            url: new.url.clone(),
            events,
            client_id: new.client_id.clone(),
            sealed_secret: new.sealed_secret.clone(),
            created_at: at,
            // Only the events of later records: this one's seq is the next.
            delivered_through: OutboxPosition { seq: self.seq + 1, index: u32::MAX },
            dropped: 0,
        };
        self.webhooks.webhooks.insert(webhook.webhook_id.clone(), webhook.clone());
        Ok(Executed::changed(Outcome::Webhook(webhook)))
    }

    pub(super) fn delete_webhook(&mut self, webhook_id: &str) -> Result<Executed, CommandError> {
        let removed = self.webhooks.webhooks.remove(webhook_id).ok_or_else(|| CommandError::not_found("webhook"))?;
        self.webhooks.trim();
        Ok(Executed::changed(Outcome::Webhook(removed)))
    }

    /// Moves webhooks' journaled progress forward (never back); ids no longer registered are ignored.
    pub(super) fn advance_webhooks(&mut self, advances: &[(String, OutboxPosition)]) -> Result<Executed, CommandError> {
        if advances.len() > ADVANCES_MAX {
            return Err(CommandError::invalid("advances", "too many"));
        }
        let mut changed = false;
        for (webhook_id, through) in advances {
            if let Some(webhook) = self.webhooks.webhooks.get_mut(webhook_id) {
                if *through > webhook.delivered_through {
                    webhook.delivered_through = *through;
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(Executed { outcome: Outcome::WebhooksAdvanced, changed: false });
        }
        self.webhooks.trim();
        Ok(Executed::changed(Outcome::WebhooksAdvanced))
    }
}
