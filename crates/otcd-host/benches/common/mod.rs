//! What both durability benchmarks submit (`durability.rs` and `tigerbeetle_shaped.rs`): one RFQ, its
//! acceptance and the book it is priced from, the same shape in both so their figures compare.

use otcd_core::engine::orders::AcceptQuote;
use otcd_core::engine::{Command, QuoteRequest};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::{Side, VenueBook};
use otcd_core::model::RequestedSize;

/// A one-level BTC-USD book, deep enough for every benchmark trade.
pub fn btc_usd_book() -> VenueBook {
    let level = |price| otcd_core::market::Level { price, quantity: 1_000_000_000_000 };
    VenueBook {
        venue: "bench".into(),
        instrument: "BTC-USD".into(),
        bids: vec![level(4_999_000)],
        asks: vec![level(5_000_000)],
        as_of: otcd_host::clock::Clock::now(&otcd_host::clock::SystemClock),
    }
}

/// An RFQ for 0.01 BTC, priced from the book carried in the command.
pub fn quote_request(client_id: ClientId, book: &VenueBook) -> Command {
    Command::RequestQuote(QuoteRequest {
        client_id,
        client_rfq_id: None,
        instrument: "BTC-USD".into(),
        side: Side::Buy,
        size: RequestedSize::Base(1_000_000),
        validity_ms: 60_000,
        notional_usd: None,
        books: vec![book.clone()],
        cross: None,
    })
}

/// The acceptance of trade `index`'s quote.
pub fn accept(client_id: ClientId, index: u64, quote_id: String) -> Command {
    Command::AcceptQuote(AcceptQuote {
        client_id,
        client_order_id: ClientReference::parse(&format!("t-{index}")).unwrap(),
        quote_id,
        side: None,
        notional_usd: None,
    })
}
