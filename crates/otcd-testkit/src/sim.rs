//! What otcd-core's seeded simulations and the regression tests beside them share: a small reproducible random
//! source, journal records and a desk set up from the engine's fixtures, builders of identifiers from literals
//! the tests know to be valid, and comparisons of whole desks through their serialized (journal and snapshot)
//! form.

use otcd_core::catalog::AssetCode;
use otcd_core::engine::{fixtures, Actor, Command, Desk, JournalRecord, NewClient, NewDeposit, Outcome};
use otcd_core::ids::{ClientId, ClientReference, TierName};
use otcd_core::time::TimestampMs;

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
