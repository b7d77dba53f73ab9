//! Firm quotes (RFQ) and the operator's manual market.
//!
//! An RFQ command carries everything its price depends on: the fresh venue books trimmed to what the size can
//! use (or the cross legs), and the indicative USD notional that selects the tier's size band. The engine prices
//! it; replay reproduces the quote to the unit.

use crate::market_inputs::{fresh, one_side, quote_amount_usd, trim_for_quantity};
use crate::{DeskServices, Done, ServiceError, ServiceResult};
use otcd_core::catalog::Instrument;
use otcd_core::engine::{Actor, Command, CommandError, Outcome, QuoteRequest};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::Side;
use otcd_core::model::{Quote, RequestedSize};
use otcd_core::time::TimestampMs;

/// A client's request for a firm quote, parsed.
#[derive(Debug, Clone)]
pub struct RfqTicket {
    pub client_id: ClientId,
    /// Unique per client: a repeat answers the original quote.
    pub client_rfq_id: Option<ClientReference>,
    pub instrument: Instrument,
    pub side: Side,
    /// A base quantity (checked against the instrument) or a quote-asset amount.
    pub size: RequestedSize,
}

impl DeskServices {
    /// A firm quote, executable once by the client before its `valid_until`.
    pub async fn request_quote(&self, actor: Actor, ticket: RfqTicket) -> ServiceResult<Done<Quote>> {
        let RfqTicket { client_id, client_rfq_id, instrument, side, size } = ticket;
        let now = self.clock.now();
        let books = fresh(&self.market, &instrument.symbol, now);
        let (books, notional_usd) = match size {
            RequestedSize::Base(quantity) => {
                self.check_quantity(&instrument, quantity)?;
                (trim_for_quantity(&books, Some(side), quantity), self.notional_usd(&instrument, quantity))
            }
            RequestedSize::Quote(amount) => {
                (one_side(&books, side), quote_amount_usd(&self.market, &self.catalog, &instrument, amount))
            }
        };
        let cross = self.cross_for(&instrument, &books, now, true);
        let request = QuoteRequest {
            client_id,
            client_rfq_id,
            instrument: instrument.symbol.clone(),
            side,
            size,
            validity_ms: self.settings.quote_validity_ms,
            notional_usd,
            books,
            cross,
        };
        self.execute(actor, Command::RequestQuote(request), |outcome| match outcome {
            Outcome::Quote(quote) => Some(quote),
            _ => None,
        })
        .await
    }

    /// Sets the manual reference price (venue `manual`, unlimited depth), fresh as of now; answers its time.
    pub fn put_manual_market(&self, instrument: &Instrument, bid: i128, ask: i128) -> ServiceResult<TimestampMs> {
        for (field, price) in [("bid", bid), ("ask", ask)] {
            if price % instrument.price_step != 0 {
                return Err(ServiceError::invalid(field, "is not a multiple of the instrument's price increment"));
            }
        }
        if bid >= ask {
            return Err(ServiceError::invalid("ask", "must be above the bid"));
        }
        let now = self.clock.now();
        let book = otcd_market::manual_book(instrument, bid, ask, now)
            .map_err(|error| CommandError::invalid("ask", error.to_string()))?;
        self.market.publish(book).map_err(|error| CommandError::invalid("instrument", error.to_string()))?;
        Ok(now)
    }
}
