//! What otcd-core's seeded simulations, the regression tests and benches beside them, and the host's tests share:
//! a small reproducible random source, journal records and a desk set up from the engine's fixtures, builders of
//! identifiers from literals the tests know to be valid, every client's balances and how they changed, a deep
//! book, and comparisons and restarts of whole desks through their serialized (journal and snapshot) form.

use otcd_core::catalog::AssetCode;
use otcd_core::engine::{fixtures, Actor, Command, Desk, JournalRecord, NewClient, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference, TierName};
use otcd_core::market::{Level, VenueBook};
use otcd_core::model::Settlement;
use otcd_core::time::TimestampMs;
use std::collections::BTreeMap;

/// splitmix64: tiny, fast and good enough to drive a simulation reproducibly (the same run on every machine).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: i128, high: i128) -> i128 {
        low + (self.next_u64() as i128).rem_euclid(high - low + 1)
    }

    /// An index into a slice of `length`.
    pub fn index(&mut self, length: usize) -> usize {
        self.below(length as u64) as usize
    }

    /// True with a chance of `chance` in 100.
    pub fn percent(&mut self, chance: u64) -> bool {
        self.below(100) < chance
    }

    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())].clone()
    }
}

/// A journal record of `command` at `at` (Unix ms) by the default actor.
pub fn record(at: i64, command: Command) -> JournalRecord {
    JournalRecord { at: TimestampMs(at), actor: Actor::default(), command }
}

/// A desk initialized at time 1 with the built-in catalog and the fixtures' admin key.
pub fn initialized_desk() -> Desk {
    let mut desk = Desk::new();
    desk.execute(&record(1, fixtures::initialize_desk())).expect("initialized");
    desk
}

/// Creates the client at `at`; returns its id.
pub fn create_client(desk: &mut Desk, at: i64, new: NewClient) -> ClientId {
    match desk.execute(&record(at, Command::CreateClient(new))).expect("created").outcome {
        Outcome::Client(client) => client.client_id,
        other => panic!("unexpected {other:?}"),
    }
}

/// Creates an approved prefunded client named `name` at `at`, holding ample USD and BTC (10^13 minor units of
/// each: more than a bench ever trades, and a tenth of USD's largest balance, 10^12 whole units, so deposits on
/// top of it still fit); returns its id.
pub fn funded_client(desk: &mut Desk, at: i64, name: &str) -> ClientId {
    let client_id = create_client(desk, at, fixtures::approved_client(name, Settlement::Prefunded, None));
    for asset in ["USD", "BTC"] {
        let funding = deposit(&client_id, asset, 10_000_000_000_000, &format!("funding-{asset}"));
        desk.execute(&record(at, funding)).expect("funded");
    }
    client_id
}

/// A deposit of `amount` minor units of `asset`, without a USD value.
pub fn deposit(client_id: &ClientId, asset: &str, amount: i128, reference: &str) -> Command {
    Command::Deposit(NewDeposit {
        client_id: client_id.clone(),
        asset: code(asset),
        amount,
        reference: self::reference(reference),
        notional_usd: None,
    })
}

pub fn code(text: &str) -> AssetCode {
    AssetCode::parse(text).expect("valid asset code")
}

pub fn reference(text: &str) -> ClientReference {
    ClientReference::parse(text).expect("valid reference")
}

pub fn tier(text: &str) -> TierName {
    TierName::parse(text).expect("valid tier name")
}

/// The desk as a snapshot stores it.
pub fn serialize(desk: &Desk) -> String {
    serde_json::to_string(desk).expect("a desk serializes")
}

/// Equal texts, or a failure showing where they part (a whole desk is far too long to print).
#[track_caller]
pub fn assert_same(expected: &str, actual: &str, context: &str) {
    if expected == actual {
        return;
    }
    let at = expected.bytes().zip(actual.bytes()).take_while(|(a, b)| a == b).count();
    let window = |text: &str| {
        let (mut start, mut end) = (at.saturating_sub(300), (at + 300).min(text.len()));
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        text[start..end].to_owned()
    };
    panic!(
        "{context}: differs from byte {at} on\nexpected: ...{}...\nactual:   ...{}...",
        window(expected),
        window(actual)
    );
}

/// A record as the journal stores and reads it back, asserting it reads back equal.
#[track_caller]
pub fn journal_round_trip(record: &JournalRecord) -> JournalRecord {
    let line = serde_json::to_string(record).expect("a record serializes");
    let parsed: JournalRecord = serde_json::from_str(&line).expect("a journal line parses");
    assert_eq!(&parsed, record, "journal round trip of {line}");
    parsed
}

/// Every client's balance of every asset it holds, (available, reserved) in minor units, as `Desk::balances`
/// reports them.
pub type Balances = BTreeMap<(ClientId, AssetCode), (i128, i128)>;

/// [`Balances`] of every client of `desk`.
pub fn all_balances(desk: &Desk) -> Balances {
    desk.clients()
        .flat_map(|client| {
            desk.balances(&client.client_id)
                .into_iter()
                .map(move |line| ((client.client_id.clone(), line.asset), (line.available, line.reserved)))
        })
        .collect()
}

/// The balances of `after` that differ from `before`, as they are in `after`. A pair missing from `before` (a new
/// client's, or an asset the client did not hold yet) counts as zero there: only a change from zero is a change.
pub fn changed_balances(before: &Balances, after: &Balances) -> Balances {
    after
        .iter()
        .filter(|(pair, now)| before.get(*pair).unwrap_or(&(0, 0)) != *now)
        .map(|(pair, now)| (pair.clone(), *now))
        .collect()
}

/// A BTC-USD book of one level a side, 49,990.00 bid and 50,000.00 ask, 10,000 BTC deep (more than any order of
/// the benches and the host's tests takes), as of `as_of`.
pub fn deep_book(as_of: TimestampMs) -> VenueBook {
    let level = |price| Level { price, quantity: 1_000_000_000_000 };
    VenueBook {
        venue: "deep".into(),
        instrument: "BTC-USD".into(),
        bids: vec![level(4_999_000)],
        asks: vec![level(5_000_000)],
        as_of,
    }
}

/// A restart: `desk` serialized as a snapshot stores it and restored with its indexes rebuilt, asserting that the
/// restored desk serializes to the same text.
#[track_caller]
pub fn restarted(desk: &Desk) -> Desk {
    let snapshot = serialize(desk);
    let mut restored: Desk = serde_json::from_str(&snapshot).expect("a snapshot parses");
    restored.rebuild_indexes();
    assert_same(&snapshot, &serialize(&restored), "restored snapshot");
    restored
}
