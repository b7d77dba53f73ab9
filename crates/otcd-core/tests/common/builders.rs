//! Builders that both the integration tests (through `common`) and the engine's unit tests of events
//! (`src/engine/events/tests.rs`, which includes this file by path) use. A unit test cannot use the test kit: the
//! kit's `otcd_core` is another crate than the one a unit test is compiled in. So this file names no crate: its
//! parent module imports the types it uses (from `otcd_core`, or from `crate`).

use super::{
    fixtures, ClientId, ClientReference, Command, Level, MarketOrder, Outcome, Settlement, Side, TimestampMs, VenueBook,
};

/// A level's depth no test's order takes up.
pub const UNLIMITED: i128 = i128::MAX / 4;

/// A BTC-USD book on venue "manual" with one level of unlimited depth a side, as of `as_of` (Unix ms).
pub fn unlimited_book(bid: i128, ask: i128, as_of: i64) -> VenueBook {
    VenueBook {
        venue: "manual".into(),
        instrument: "BTC-USD".into(),
        bids: vec![Level { price: bid, quantity: UNLIMITED }],
        asks: vec![Level { price: ask, quantity: UNLIMITED }],
        as_of: TimestampMs(as_of),
    }
}

/// A BTC-USD order of `quantity` base units against `books`, its client order id `id`, without a notional value,
/// a reference price or a slippage bound.
pub fn market_order(client_id: &ClientId, id: &str, side: Side, quantity: i128, books: Vec<VenueBook>) -> MarketOrder {
    MarketOrder {
        client_id: client_id.clone(),
        client_order_id: ClientReference::parse(id).unwrap(),
        instrument: "BTC-USD".into(),
        side,
        quantity,
        reference_price: None,
        slippage_centi_bps: None,
        notional_usd: None,
        books,
        cross: None,
    }
}

/// The command creating the engine fixtures' approved client "Acme Capital".
pub fn create_acme(settlement: Settlement, credit_limit_usd: Option<i128>) -> Command {
    Command::CreateClient(fixtures::approved_client("Acme Capital", settlement, credit_limit_usd))
}

/// The id of the client `outcome` created.
pub fn created_client(outcome: Outcome) -> ClientId {
    match outcome {
        Outcome::Client(client) => client.client_id,
        other => panic!("unexpected {other:?}"),
    }
}
