//! Client events for the `orders`, `trades` and `balances` stream channels. Publishers (handlers, after the
//! change is durable) send here; each stream connection forwards its own client's events.

use otcd_core::ids::ClientId;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events buffered for the slowest subscriber; a connection that falls further behind is closed.
pub const EVENT_BUFFER: usize = 4_096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Orders,
    Trades,
    Balances,
}

impl Channel {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "orders" => Some(Channel::Orders),
            "trades" => Some(Channel::Trades),
            "balances" => Some(Channel::Balances),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientEvent {
    pub client_id: ClientId,
    pub channel: Channel,
    /// The complete server message, e.g. `{"type": "balance", ...}`.
    pub message: Arc<str>,
}

pub struct EventBus {
    sender: broadcast::Sender<ClientEvent>,
}

impl EventBus {
    pub fn new() -> Self {
        Self { sender: broadcast::channel(EVENT_BUFFER).0 }
    }

    pub fn publish(&self, event: ClientEvent) {
        // No subscriber is not an error: nobody is listening.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
