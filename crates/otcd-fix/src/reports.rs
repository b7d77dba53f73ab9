//! ExecutionReports (8) from orders as the desk holds them, and from the durable event feed.
//!
//! Every field is a standard FIX 4.4 field of ExecutionReport (a stock QuickFIX with `UseDataDictionary=Y`
//! accepts them): no QuoteID (not a field of 8 in FIX 4.4), quantities and prices as exact decimal strings at
//! the instrument's scales.

use crate::codec::Builder;
use crate::timestamps;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::events::OrderEvent;
use otcd_core::engine::orders::{Order, OrderStatus, Trade};
use otcd_core::market::Side;
use otcd_core::time::TimestampMs;
use otcd_services::DeskServices;

pub fn side_code(side: Side) -> &'static str {
    match side {
        Side::Buy => "1",
        Side::Sell => "2",
    }
}

pub fn status_code(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Open => "0",
        OrderStatus::PartiallyFilled => "1",
        OrderStatus::Filled => "2",
        OrderStatus::Cancelled => "4",
        OrderStatus::Expired => "C",
    }
}

/// The order's common fields; `exec_type` and the execution's own fields are added by the callers.
fn order_report(desk: &DeskServices, order: &Order, exec_id: String, exec_type: &str, cum_qty: i128) -> Builder {
    let (base_scale, price_scale) = scales(desk, &order.instrument);
    let leaves = if order.is_live() { order.quantity - cum_qty } else { 0 };
    let avg_px = order.average_price.unwrap_or(0);
    Builder::new("8")
        .field(37, order.order_id.clone())
        .field(11, order.client_order_id.as_str().to_owned())
        .field(17, exec_id)
        .field(150, exec_type)
        .field(39, status_code(order.status))
        .field(55, order.instrument.clone())
        .field(54, side_code(order.side))
        .field(38, format_scaled(order.quantity, base_scale))
        .field(14, format_scaled(cum_qty, base_scale))
        .field(151, format_scaled(leaves.max(0), base_scale))
        .field(6, format_scaled(avg_px, price_scale))
}

fn scales(desk: &DeskServices, symbol: &str) -> (u8, u8) {
    desk.catalog.instrument(symbol).map_or((0, 0), |instrument| (desk.base_scale(instrument), instrument.price_scale))
}

/// The reports one durable order event stands for: a trade report (`F`) per trade the record made, then the
/// order's end when the record cancelled or expired it; a new resting order (`0`) when it made neither.
/// The record's trades are the event's last `record_trades` (exact even when two records fill the order within
/// one millisecond). `cancel_request`: the ClOrdID of the OrderCancelRequest that cancelled the order, when this
/// session sent it: the canceled report then carries it as ClOrdID and the order's own as OrigClOrdID (41).
pub fn from_event(
    desk: &DeskServices,
    event: &OrderEvent,
    seq: u64,
    at: TimestampMs,
    cancel_request: Option<String>,
) -> Vec<Builder> {
    let order = &event.order;
    let first_new = event.trades.len().saturating_sub(event.record_trades);
    let new_trades: Vec<&Trade> = event.trades[first_new..].iter().collect();
    let new_quantity: i128 = new_trades.iter().map(|trade| trade.quantity).sum();
    let mut cum_qty = order.filled_quantity - new_quantity;
    let (base_scale, price_scale) = scales(desk, &order.instrument);
    let mut reports = Vec::new();
    for trade in &new_trades {
        cum_qty += trade.quantity;
        let mut report = order_report(desk, order, trade.trade_id.clone(), "F", cum_qty);
        // Until the last trade of the record the order is partially filled whatever its final status.
        if cum_qty < order.quantity {
            set(&mut report, 39, "1");
            set(&mut report, 151, format_scaled(order.quantity - cum_qty, base_scale));
        }
        reports.push(
            report
                .field(31, format_scaled(trade.price, price_scale))
                .field(32, format_scaled(trade.quantity, base_scale))
                .field(60, timestamps::format(trade.executed_at)),
        );
    }
    let end = match order.status {
        OrderStatus::Cancelled => Some("4"),
        OrderStatus::Expired => Some("C"),
        OrderStatus::Open if new_trades.is_empty() => Some("0"),
        _ => None,
    };
    if let Some(exec_type) = end {
        let mut report = order_report(desk, order, format!("{}-{seq}", order.order_id), exec_type, cum_qty)
            .field(60, timestamps::format(at));
        if let Some(reason) = &order.cancel_reason {
            report = report.field(58, reason.clone());
        }
        if let (Some(request), "4") = (cancel_request, exec_type) {
            set(&mut report, 11, request);
            report = report.field(41, order.client_order_id.as_str().to_owned());
        }
        reports.push(report);
    }
    reports
}

fn set(report: &mut Builder, tag: u32, value: impl Into<String>) {
    if let Some(field) = report.body.iter_mut().find(|(field, _)| *field == tag) {
        field.1 = value.into();
    }
}

/// An order's status (`ExecType` I), for OrderStatusRequest and for a repeated ClOrdID.
pub fn status(desk: &DeskServices, order: &Order, exec_id: String, now: TimestampMs) -> Builder {
    order_report(desk, order, exec_id, "I", order.filled_quantity).field(60, timestamps::format(now))
}

/// The refusal of a NewOrderSingle: ExecType 8 with OrdRejReason and the REST stable code in Text.
pub struct Rejection<'a> {
    pub client_order_id: &'a str,
    pub symbol: &'a str,
    pub side: &'a str,
    pub exec_id: String,
    pub reason: &'a str,
    pub text: String,
}

pub fn rejected(rejection: Rejection, now: TimestampMs) -> Builder {
    Builder::new("8")
        .field(37, "NONE")
        .field(11, rejection.client_order_id)
        .field(17, rejection.exec_id)
        .field(150, "8")
        .field(39, "8")
        .field(55, rejection.symbol)
        .field(54, rejection.side)
        .field(14, "0")
        .field(151, "0")
        .field(6, "0")
        .field(103, rejection.reason)
        .field(58, rejection.text)
        .field(60, timestamps::format(now))
}
