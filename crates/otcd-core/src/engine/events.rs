//! PLACEHOLDER (replaced by the `events` branch): the API of domain events derived from executed records.

use super::alerts::Alert;
use super::netting::Instruction;
use super::orders::{Order, Trade};
use super::settlement::Withdrawal;
use super::{CommandError, Desk, Executed, JournalRecord, Outcome};
use crate::catalog::AssetCode;
use crate::ids::ClientId;

#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum DeskEvent {
    Order(OrderEvent),
    Trade(Trade),
    Balance(BalanceEvent),
    Withdrawal(Withdrawal),
    Instruction(Instruction),
    Alert(Alert),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub order: Order,
    pub trades: Vec<Trade>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceEvent {
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub available: i128,
    pub reserved: i128,
}

impl DeskEvent {
    pub fn client_id(&self) -> Option<&ClientId> {
        match self {
            DeskEvent::Order(event) => Some(&event.order.client_id),
            DeskEvent::Trade(trade) => Some(&trade.client_id),
            DeskEvent::Balance(balance) => Some(&balance.client_id),
            DeskEvent::Withdrawal(withdrawal) => Some(&withdrawal.client_id),
            DeskEvent::Instruction(instruction) => Some(&instruction.client_id),
            DeskEvent::Alert(alert) => alert.client_id.as_ref(),
        }
    }
}

pub struct EventMark;

impl Desk {
    pub fn event_mark(&self) -> EventMark {
        EventMark
    }

    pub fn events_since(&self, _mark: &EventMark, _outcome: &Outcome) -> Vec<DeskEvent> {
        Vec::new()
    }

    pub fn execute_with_events(&mut self, record: &JournalRecord) -> Result<(Executed, Vec<DeskEvent>), CommandError> {
        let mark = self.event_mark();
        let executed = self.execute(record)?;
        let events = if executed.changed { self.events_since(&mark, &executed.outcome) } else { Vec::new() };
        Ok((executed, events))
    }
}
