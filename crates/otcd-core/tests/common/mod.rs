//! The engine session the integration tests share: a desk initialized with the built-in catalog, a clock that
//! advances 10 ms per command, the journaled records kept for replay checks, and the ledger's invariants checked
//! after every command. Each test binary uses part of it.
#![allow(dead_code)]

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
pub const UNLIMITED: i128 = i128::MAX / 4;

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
        let new = fixtures::approved_client("Acme Capital", settlement, credit_limit_usd);
        match self.run(Command::CreateClient(new)).unwrap() {
            Outcome::Client(client) => client.client_id,
            other => panic!("unexpected {other:?}"),
        }
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
        VenueBook {
            venue: "manual".into(),
            instrument: "BTC-USD".into(),
            bids: vec![Level { price: bid, quantity: UNLIMITED }],
            asks: vec![Level { price: ask, quantity: UNLIMITED }],
            as_of: TimestampMs(self.at + 10),
        }
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
        let order = MarketOrder {
            client_id: client_id.clone(),
            client_order_id: ClientReference::parse(id).unwrap(),
            instrument: "BTC-USD".into(),
            side,
            quantity,
            reference_price: None,
            slippage_centi_bps: None,
            notional_usd: None,
            books: vec![self.book(book.0, book.1)],
            cross: None,
        };
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
