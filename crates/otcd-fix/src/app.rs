//! Application messages: parse the FIX fields into the services' tickets, call the desk services (the same
//! calls the HTTP routes make), render the answer. Nothing here decides a business rule.

use crate::codec::{Builder, Message};
use crate::reports::{self, Rejection};
use crate::timestamps;
use otcd_core::catalog::Instrument;
use otcd_core::decimal::{format_scaled, parse_non_negative, parse_positive};
use otcd_core::engine::orders::TimeInForce;
use otcd_core::engine::{Actor, CommandError};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::Side;
use otcd_core::model::{Quote, RequestedSize, Scope};
use otcd_services::keys::AuthKey;
use otcd_services::orders::OrderTicket;
use otcd_services::quotes::RfqTicket;
use otcd_services::{DeskServices, ServiceError};

/// The custom tag of a market order's slippage tolerance, in basis points (decimal, up to 2 places; default 0).
pub const SLIPPAGE_BPS_TAG: u32 = 20001;

/// What a session needs to act for its key.
pub struct Caller<'a> {
    pub desk: &'a DeskServices,
    pub key: &'a AuthKey,
    pub source_ip: String,
}

/// A message that is well framed but wrong at the session level: Reject (3) with this reason and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReject {
    pub tag: Option<u32>,
    /// SessionRejectReason (373).
    pub reason: &'static str,
    pub text: String,
}

impl SessionReject {
    fn missing(tag: u32) -> Self {
        Self { tag: Some(tag), reason: "1", text: format!("required tag {tag} missing") }
    }

    fn incorrect(tag: u32, text: impl Into<String>) -> Self {
        Self { tag: Some(tag), reason: "5", text: text.into() }
    }
}

type Answer = Result<Vec<Builder>, SessionReject>;

impl Caller<'_> {
    fn actor(&self) -> Actor {
        Actor {
            key_id: Some(self.key.key_id.clone()),
            source_ip: Some(self.source_ip.clone()),
            signature: None,
            signed_at_ms: None,
        }
    }

    fn now(&self) -> otcd_core::time::TimestampMs {
        self.desk.clock.now()
    }

    /// The client that trades through this key, when it may trade.
    fn trader(&self) -> Result<ClientId, String> {
        if !self.key.has_scope(Scope::Trade) {
            return Err("forbidden: this key has no trade scope".into());
        }
        self.key.client_id.clone().ok_or_else(|| "forbidden: orders and quotes are for client keys".into())
    }

    /// Answers one application message.
    pub async fn handle(&self, message: &Message) -> Answer {
        match message.msg_type().unwrap_or("") {
            "R" => self.quote_request(message).await,
            "D" => self.new_order(message).await,
            "F" => self.cancel(message).await,
            "H" => self.order_status(message).await,
            other => Ok(vec![business_reject(message, other, "3", "unsupported message type")]),
        }
    }

    async fn quote_request(&self, message: &Message) -> Answer {
        let request_id = required(message, 131)?;
        let group = message.from_tag(146);
        let symbol = group_value(group, 55).unwrap_or("");
        let reject = |reason: &'static str, text: String| {
            vec![Builder::new("AG")
                .field(131, request_id)
                .field(658, reason)
                .field(58, text)
                .field(146, "1")
                .field(55, if symbol.is_empty() { "NONE" } else { symbol })]
        };
        if group_value(group, 146) != Some("1") {
            return Ok(reject("99", "invalid_request: NoRelatedSym (146) must be 1".into()));
        }
        let client_id = match self.trader() {
            Ok(client_id) => client_id,
            Err(text) => return Ok(reject("6", text)),
        };
        let side = parse_side(group_value(group, 54).ok_or_else(|| SessionReject::missing(54))?)?;
        let instrument = match self.desk.instrument(symbol) {
            Ok(instrument) => instrument.clone(),
            Err(error) => return Ok(reject("1", text_of(&error))),
        };
        let size = match (group_value(group, 38), group_value(group, 152)) {
            (Some(quantity), None) => parse_positive(quantity, self.desk.base_scale(&instrument))
                .map(RequestedSize::Base)
                .map_err(|error| SessionReject::incorrect(38, format!("OrderQty: {error}")))?,
            (None, Some(amount)) => parse_positive(amount, self.desk.quote_scale(&instrument))
                .map(RequestedSize::Quote)
                .map_err(|error| SessionReject::incorrect(152, format!("CashOrderQty: {error}")))?,
            _ => return Err(SessionReject::incorrect(38, "give exactly one of OrderQty (38) and CashOrderQty (152)")),
        };
        let client_rfq_id = ClientReference::parse(request_id)
            .map_err(|error| SessionReject::incorrect(131, format!("QuoteReqID: {error}")))?;
        let ticket =
            RfqTicket { client_id, client_rfq_id: Some(client_rfq_id), instrument: instrument.clone(), side, size };
        match self.desk.request_quote(self.actor(), ticket).await {
            Ok(done) => Ok(vec![self.quote(request_id, &done.value, &instrument)]),
            Err(error) => Ok(reject(quote_reject_reason(&error), text_of(&error))),
        }
    }

    fn quote(&self, request_id: &str, quote: &Quote, instrument: &Instrument) -> Builder {
        let base_scale = self.desk.base_scale(instrument);
        let size = format_scaled(quote.quantity, base_scale);
        let mut builder = Builder::new("S")
            .field(131, request_id)
            .field(117, quote.quote_id.clone())
            .field(55, quote.instrument.clone())
            .optional(54, quote.side.map(reports::side_code))
            .field(38, size.clone());
        if let Some(bid) = quote.bid {
            builder = builder.field(132, format_scaled(bid, instrument.price_scale)).field(134, size.clone());
        }
        if let Some(ask) = quote.ask {
            builder = builder.field(133, format_scaled(ask, instrument.price_scale)).field(135, size);
        }
        builder.field(62, timestamps::format(quote.valid_until)).field(60, timestamps::format(quote.created_at))
    }

    async fn new_order(&self, message: &Message) -> Answer {
        let client_order_id_text = required(message, 11)?;
        let side_text = required(message, 54)?;
        let side = parse_side(side_text)?;
        let symbol = message.get(55).unwrap_or("NONE");
        let reject = |code_text: String, reason: &'static str| {
            let exec_id = format!("{client_order_id_text}-rejected-{}", self.now().0);
            let rejection = Rejection {
                client_order_id: client_order_id_text,
                symbol,
                side: side_text,
                exec_id,
                reason,
                text: code_text,
            };
            Ok(vec![reports::rejected(rejection, self.now())])
        };
        let client_id = match self.trader() {
            Ok(client_id) => client_id,
            Err(text) => return reject(text, "99"),
        };
        let client_order_id = ClientReference::parse(client_order_id_text)
            .map_err(|error| SessionReject::incorrect(11, format!("ClOrdID: {error}")))?;
        let ticket = match self.order_ticket(message, side) {
            Ok(ticket) => ticket,
            Err(TicketError::Session(reject)) => return Err(reject),
            Err(TicketError::Service(error)) => return reject(text_of(&error), order_reject_reason(&error)),
        };
        match self.desk.place_order(self.actor(), client_id, client_order_id, ticket).await {
            // A new order's reports come from the durable event feed (the session reads them next).
            Ok(done) if done.changed => Ok(Vec::new()),
            Ok(done) => {
                let exec_id = format!("{}-repeat-{}", done.value.order.order_id, self.now().0);
                Ok(vec![reports::status(self.desk, &done.value.order, exec_id, self.now())])
            }
            Err(error) => reject(text_of(&error), order_reject_reason(&error)),
        }
    }

    fn order_ticket(&self, message: &Message, side: Side) -> Result<OrderTicket, TicketError> {
        let order_type = required(message, 40)?;
        if order_type == "D" {
            let quote_id = required(message, 117)?.to_owned();
            return Ok(OrderTicket::Quote { quote_id, side: Some(side) });
        }
        let instrument = self.desk.instrument(required(message, 55)?)?.clone();
        let quantity = parse_positive(required(message, 38)?, self.desk.base_scale(&instrument))
            .map_err(|error| SessionReject::incorrect(38, format!("OrderQty: {error}")))?;
        let price_scale = instrument.price_scale;
        let price = |tag: u32| -> Result<Option<i128>, SessionReject> {
            message
                .get(tag)
                .map(|text| {
                    parse_positive(text, price_scale)
                        .map_err(|error| SessionReject::incorrect(tag, format!("Price: {error}")))
                })
                .transpose()
        };
        match order_type {
            "1" => {
                let slippage = message.get(SLIPPAGE_BPS_TAG).map(|text| parse_non_negative(text, 2)).transpose();
                let slippage_centi_bps = slippage
                    .map_err(|error| SessionReject::incorrect(SLIPPAGE_BPS_TAG, format!("SlippageBps: {error}")))?;
                Ok(OrderTicket::Market { instrument, side, quantity, reference_price: price(44)?, slippage_centi_bps })
            }
            "2" => {
                let limit_price = price(44)?.ok_or_else(|| SessionReject::missing(44))?;
                let time_in_force = match message.get(59).unwrap_or("1") {
                    "1" => TimeInForce::Gtc,
                    "3" => TimeInForce::Ioc,
                    "4" => TimeInForce::Fok,
                    "6" => TimeInForce::Gtd,
                    _ => return Err(SessionReject::incorrect(59, "TimeInForce must be 1, 3, 4 or 6").into()),
                };
                let expire_at = message
                    .get(126)
                    .map(|text| timestamps::parse(text).ok_or_else(|| SessionReject::incorrect(126, "ExpireTime")))
                    .transpose()?;
                Ok(OrderTicket::Limit { instrument, side, quantity, limit_price, time_in_force, expire_at })
            }
            _ => {
                Err(SessionReject::incorrect(40, "OrdType must be D (previously quoted), 1 (market) or 2 (limit)")
                    .into())
            }
        }
    }

    async fn cancel(&self, message: &Message) -> Answer {
        let client_order_id = required(message, 11)?;
        let original = required(message, 41)?;
        let cancel_reject = |order_id: &str, status: &str, reason: &'static str, text: String| {
            vec![Builder::new("9")
                .field(37, order_id)
                .field(11, client_order_id)
                .field(41, original)
                .field(39, status)
                .field(434, "1")
                .field(102, reason)
                .field(58, text)]
        };
        let client_id = match self.trader() {
            Ok(client_id) => client_id,
            Err(text) => return Ok(cancel_reject("NONE", "8", "99", text)),
        };
        let found = match self.find(client_id.clone(), original).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(cancel_reject("NONE", "8", "1", "not_found: no order with this OrigClOrdID".into())),
            Err(error) => return Ok(cancel_reject("NONE", "8", "99", text_of(&error))),
        };
        let order = &found.order;
        match self.desk.cancel_order(self.actor(), client_id, order.order_id.clone()).await {
            // The canceled report comes from the durable event feed.
            Ok(_) => Ok(Vec::new()),
            Err(error) => Ok(cancel_reject(&order.order_id, reports::status_code(order.status), "0", text_of(&error))),
        }
    }

    async fn order_status(&self, message: &Message) -> Answer {
        let client_order_id = required(message, 11)?;
        let side = required(message, 54)?;
        parse_side(side)?;
        let now = self.now();
        let unknown = |text: String| {
            let rejection = Rejection {
                client_order_id,
                symbol: message.get(55).unwrap_or("NONE"),
                side,
                exec_id: format!("{client_order_id}-status-{}", now.0),
                reason: "5",
                text,
            };
            let mut report = reports::rejected(rejection, now);
            report.body.iter_mut().filter(|(tag, _)| *tag == 150).for_each(|field| field.1 = "I".into());
            Ok(vec![report])
        };
        let client_id = match self.trader() {
            Ok(client_id) => client_id,
            Err(text) => return unknown(text),
        };
        match self.find(client_id, client_order_id).await {
            Ok(Some(found)) => {
                let exec_id = format!("{}-status-{}", found.order.order_id, now.0);
                Ok(vec![reports::status(self.desk, &found.order, exec_id, now)])
            }
            Ok(None) => unknown("not_found: no order with this ClOrdID".into()),
            Err(error) => unknown(text_of(&error)),
        }
    }

    async fn find(
        &self,
        client_id: ClientId,
        client_order_id: &str,
    ) -> Result<Option<otcd_services::orders::OrderWithTrades>, ServiceError> {
        let Ok(reference) = ClientReference::parse(client_order_id) else { return Ok(None) };
        self.desk.order_by_client_order_id(client_id, reference).await
    }
}

enum TicketError {
    Session(SessionReject),
    Service(ServiceError),
}

impl From<SessionReject> for TicketError {
    fn from(reject: SessionReject) -> Self {
        TicketError::Session(reject)
    }
}

impl From<ServiceError> for TicketError {
    fn from(error: ServiceError) -> Self {
        TicketError::Service(error)
    }
}

fn required(message: &Message, tag: u32) -> Result<&str, SessionReject> {
    message.get(tag).ok_or_else(|| SessionReject::missing(tag))
}

fn group_value(group: &[(u32, String)], tag: u32) -> Option<&str> {
    group.iter().find(|(field, _)| *field == tag).map(|(_, value)| value.as_str())
}

fn parse_side(text: &str) -> Result<Side, SessionReject> {
    match text {
        "1" => Ok(Side::Buy),
        "2" => Ok(Side::Sell),
        _ => Err(SessionReject::incorrect(54, "Side must be 1 (buy) or 2 (sell)")),
    }
}

/// `code: detail`: the REST stable code first, so a client can branch on it.
pub fn text_of(error: &ServiceError) -> String {
    let text = format!("{}: {error}", error.code());
    text.chars().take(200).collect()
}

/// QuoteRequestRejectReason (658) for a refusal.
fn quote_reject_reason(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::Rejected(CommandError::InstrumentUnknown(_)) => "1",
        ServiceError::Rejected(CommandError::TradingHalted { .. }) => "2",
        ServiceError::Rejected(CommandError::LimitExceeded { .. } | CommandError::DeskCapacity { .. }) => "3",
        ServiceError::Rejected(
            CommandError::KycRequired | CommandError::JurisdictionRestricted { .. } | CommandError::SanctionsHit,
        )
        | ServiceError::Forbidden(_) => "6",
        ServiceError::PriceUnavailable(_) | ServiceError::Rejected(CommandError::PriceUnavailable(_)) => "8",
        _ => "99",
    }
}

/// OrdRejReason (103) for a refusal.
fn order_reject_reason(error: &ServiceError) -> &'static str {
    match error {
        ServiceError::Rejected(CommandError::InstrumentUnknown(_)) => "1",
        ServiceError::Rejected(CommandError::TradingHalted { .. }) => "2",
        ServiceError::Rejected(CommandError::LimitExceeded { .. } | CommandError::DeskCapacity { .. }) => "3",
        ServiceError::Rejected(CommandError::QuoteExpired) => "4",
        ServiceError::Rejected(CommandError::Conflict { .. }) => "6",
        ServiceError::Rejected(CommandError::QuoteNotFound | CommandError::QuoteAlreadyUsed) => "99",
        _ => "99",
    }
}

/// BusinessMessageReject (j).
pub fn business_reject(message: &Message, msg_type: &str, reason: &'static str, text: &str) -> Builder {
    Builder::new("j").optional(45, message.get(34)).field(372, msg_type).field(380, reason).field(58, text)
}
