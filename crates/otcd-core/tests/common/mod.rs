//! What otcd-core's integration tests share beside the test kit. Each test binary uses part of it.
//!
//! [`Session`]: a desk initialized with the built-in catalog, a clock that advances 10 ms per command, the
//! journaled records kept for replay checks, and the ledger's invariants checked after every command. [`builders`]:
//! books, orders and clients, shared with the engine's unit tests of events as well. [`mix`]: the random command
//! mix the seeded simulations of orders and of events draw from.
#![allow(dead_code)]

pub mod builders;
pub mod mix;

use builders::{create_acme, created_client, market_order, unlimited_book};
// `builders` names no crate: it takes its types from these imports.
use otcd_core::engine::orders::{LimitOrder, MarketOrder, Order, TimeInForce};
use otcd_core::engine::resting::FillResting;
use otcd_core::engine::{fixtures, Command, CommandError, Desk, JournalRecord, Outcome};
use otcd_core::ids::{ClientId, ClientReference};
use otcd_core::market::{Level, Side, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;
use otcd_testkit::sim::{deposit, record};

pub use otcd_testkit::sim::code;

pub const BTC: i128 = 100_000_000;

pub struct Session {
    pub desk: Desk,
    pub records: Vec<JournalRecord>,
    pub at: i64,
    /// How far the clock moves per command.
    pub step_ms: i64,
}

impl Session {
    pub fn new() -> Self {
        Self::with_clock(1_000, 10)
    }

    /// A desk whose clock starts at `start_ms` and moves `step_ms` per command.
    pub fn with_clock(start_ms: i64, step_ms: i64) -> Self {
        let mut session = Session { desk: Desk::new(), records: Vec::new(), at: start_ms, step_ms };
        session.run(fixtures::initialize_desk()).unwrap();
        session
    }

    pub fn run(&mut self, command: Command) -> Result<Outcome, CommandError> {
        self.at += self.step_ms;
        let record = record(self.at, command);
        let executed = self.desk.execute(&record)?;
        if executed.changed {
            self.records.push(record);
        }
        self.desk.ledger().check_invariants().unwrap();
        Ok(executed.outcome)
    }

    pub fn client(&mut self, settlement: Settlement, credit_limit_usd: Option<i128>) -> ClientId {
        created_client(self.run(create_acme(settlement, credit_limit_usd)).unwrap())
    }

    pub fn deposit(&mut self, client_id: &ClientId, asset: &str, amount: i128) {
        let reference = format!("dep-{}", self.at);
        self.run(deposit(client_id, asset, amount, &reference)).unwrap();
    }

    pub fn balance(&self, client_id: &ClientId, asset: &str) -> (i128, i128) {
        let line = self.desk.balances(client_id).into_iter().find(|line| line.asset == code(asset));
        line.map_or((0, 0), |line| (line.available, line.reserved))
    }

    pub fn book(&self, bid: i128, ask: i128) -> VenueBook {
        unlimited_book(bid, ask, self.at + 10)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn limit(
        &mut self,
        client_id: &ClientId,
        id: &str,
        side: Side,
        quantity: i128,
        limit_price: i128,
        time_in_force: TimeInForce,
        expire_at: Option<i64>,
        book: (i128, i128),
    ) -> Result<Order, CommandError> {
        let order = market_order(client_id, id, side, quantity, vec![self.book(book.0, book.1)]);
        let request = LimitOrder { order, limit_price, time_in_force, expire_at: expire_at.map(TimestampMs) };
        match self.run(Command::LimitOrder(request))? {
            Outcome::Order(order) => Ok(order),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn tick(&mut self, bid: i128, ask: i128) -> Vec<Order> {
        let tick = FillResting { instrument: "BTC-USD".into(), books: vec![self.book(bid, ask)], cross: None };
        match self.run(Command::FillRestingOrders(tick)).unwrap() {
            Outcome::Orders(orders) => orders,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn order(&self, order_id: &str) -> Order {
        self.desk.order(order_id).unwrap().clone()
    }

    /// Replaying the journaled records rebuilds the same orders and balances.
    pub fn assert_replay_matches(&self) {
        let mut replayed = Desk::new();
        for record in &self.records {
            replayed.execute(record).unwrap();
        }
        let orders = |desk: &Desk| serde_json::to_string(&desk.orders_of_all()).unwrap();
        assert_eq!(orders(&replayed), orders(&self.desk));
        assert_eq!(
            serde_json::to_string(replayed.ledger()).unwrap(),
            serde_json::to_string(self.desk.ledger()).unwrap()
        );
    }
}

pub trait AllOrders {
    fn orders_of_all(&self) -> Vec<Order>;
}

impl AllOrders for Desk {
    fn orders_of_all(&self) -> Vec<Order> {
        self.clients().flat_map(|client| self.orders_of(&client.client_id).cloned().collect::<Vec<_>>()).collect()
    }
}
