//! Hand-written ledger cases at the edges the random tests do not aim at.
//!
//! The regression tests at the end pin down defects once found in `ledger.rs`: each is a call the ledger once
//! accepted (or panicked on) although it breaks one of the ledger's own invariants; now it must be refused.

use otcd_core::catalog::AssetCode;
use otcd_core::ids::ClientId;
use otcd_core::ledger::{AccountId, AccountKey, Ledger, LedgerError, Owner, Posting, Purpose, TransactionKind};
use otcd_core::time::TimestampMs;

const AT: TimestampMs = TimestampMs(1);

struct Fixture {
    ledger: Ledger,
    custody: AccountId,
    inventory: AccountId,
    alice: AccountId,
    alice_reserved: AccountId,
    bob_reserved: AccountId,
}

fn key(owner: Owner, purpose: Purpose) -> AccountKey {
    AccountKey { owner, asset: AssetCode::parse("BTC").unwrap(), purpose }
}

fn client(name: &str) -> Owner {
    Owner::Client(ClientId::parse(name).unwrap())
}

fn trade() -> TransactionKind {
    TransactionKind::Trade { reference: "t".into() }
}

/// Alice is prefunded with 1,000 units; both clients' reserved accounts have a zero floor, as the ledger's docs
/// require.
fn fixture() -> Fixture {
    let mut ledger = Ledger::new();
    let custody = ledger.open_account(key(Owner::Desk, Purpose::Custody), None);
    let inventory = ledger.open_account(key(Owner::Desk, Purpose::Inventory), None);
    let alice = ledger.open_account(key(client("alice"), Purpose::Available), Some(0));
    let alice_reserved = ledger.open_account(key(client("alice"), Purpose::Reserved), Some(0));
    let bob_reserved = ledger.open_account(key(client("bob"), Purpose::Reserved), Some(0));
    let funding = [Posting { account: custody, amount: -1_000 }, Posting { account: alice, amount: 1_000 }];
    ledger.apply(AT, TransactionKind::Deposit { reference: "d".into() }, &funding).unwrap();
    Fixture { ledger, custody, inventory, alice, alice_reserved, bob_reserved }
}

fn snapshot(ledger: &Ledger) -> String {
    serde_json::to_string(ledger).unwrap()
}

/// The ledger must refuse the call, leave everything as it was, and stay consistent.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(ledger: &Ledger, before: &str, result: Result<T, LedgerError>) {
    let invariants = ledger.check_invariants();
    assert!(result.is_err(), "accepted: {result:?}; invariants now: {invariants:?}");
    assert_eq!(snapshot(ledger), before, "a refused call changed the ledger");
    assert_eq!(invariants, Ok(()));
}

#[test]
fn several_postings_to_one_account_record_running_balances() {
    let mut fixture = fixture();
    let (alice, inventory) = (fixture.alice, fixture.inventory);
    let postings = [
        Posting { account: alice, amount: -700 },
        Posting { account: inventory, amount: 700 },
        Posting { account: alice, amount: 200 },
        Posting { account: inventory, amount: -200 },
        Posting { account: alice, amount: -500 },
        Posting { account: inventory, amount: 500 },
    ];
    // Alice dips to 300, recovers to 500 and ends at exactly her floor: only the end state is checked.
    let id = fixture.ledger.apply(AT, trade(), &postings).unwrap();
    let transaction = fixture.ledger.transaction(id).unwrap().clone();
    let after: Vec<i128> = fixture.ledger.entries_of(&transaction).map(|entry| entry.balance_after).collect();
    assert_eq!(after, vec![300, 700, 500, 500, 0, 1_000]);
    assert_eq!(fixture.ledger.balance(alice), 0);
    // One more unit would end below the floor, even though an intermediate posting would make room for it.
    let before = snapshot(&fixture.ledger);
    let postings = [
        Posting { account: inventory, amount: -5 },
        Posting { account: alice, amount: 5 },
        Posting { account: alice, amount: -6 },
        Posting { account: inventory, amount: 6 },
    ];
    let result = fixture.ledger.apply(AT, trade(), &postings);
    assert_eq!(result, Err(LedgerError::BelowFloor { account: alice, balance_after: -1, floor: 0 }));
    assert_refused(&fixture.ledger, &before, result);
}

#[test]
fn partial_posts_then_void_return_exactly_the_rest() {
    let mut fixture = fixture();
    let (alice, reserved, inventory) = (fixture.alice, fixture.alice_reserved, fixture.inventory);
    let pending = fixture.ledger.reserve(AT, alice, reserved, 600, "order-1").unwrap();
    fixture.ledger.post_pending(AT, pending, 100, inventory, "fill-1").unwrap();
    fixture.ledger.post_pending(AT, pending, 250, inventory, "fill-2").unwrap();
    assert_eq!(fixture.ledger.pending(pending).unwrap().remaining, 250);
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.post_pending(AT, pending, 251, inventory, "too-much");
    assert_eq!(result, Err(LedgerError::ExceedsPending { amount: 251, remaining: 250 }));
    assert_refused(&fixture.ledger, &before, result);
    fixture.ledger.void_pending(AT, pending, "cancel").unwrap();
    assert!(fixture.ledger.pending(pending).is_none());
    assert_eq!(
        (fixture.ledger.balance(alice), fixture.ledger.balance(reserved), fixture.ledger.balance(inventory)),
        (650, 0, 350)
    );
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.void_pending(AT, pending, "again");
    assert_eq!(result, Err(LedgerError::UnknownPending(pending)));
    assert_refused(&fixture.ledger, &before, result);
    fixture.ledger.check_invariants().unwrap();
}

#[test]
fn a_reversal_can_be_reversed_once_and_never_past_a_floor() {
    let mut fixture = fixture();
    let (alice, inventory) = (fixture.alice, fixture.inventory);
    let spend = [Posting { account: alice, amount: -400 }, Posting { account: inventory, amount: 400 }];
    let original = fixture.ledger.apply(AT, trade(), &spend).unwrap();
    let reversal = fixture.ledger.reverse(AT, original).unwrap();
    assert_eq!(fixture.ledger.balance(alice), 1_000);
    let again = fixture.ledger.reverse(AT, reversal).unwrap();
    assert_eq!(fixture.ledger.balance(alice), 600);
    assert_eq!(fixture.ledger.transaction(original).unwrap().reversed_by, Some(reversal));
    assert_eq!(fixture.ledger.transaction(reversal).unwrap().reversed_by, Some(again));
    for id in [original, reversal] {
        let before = snapshot(&fixture.ledger);
        let result = fixture.ledger.reverse(AT, id);
        assert_eq!(result, Err(LedgerError::AlreadyReversed(id)));
        assert_refused(&fixture.ledger, &before, result);
    }
    // Reversing the funding deposit would take Alice to -400.
    let deposit = fixture.ledger.transactions()[0].id;
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.reverse(AT, deposit);
    assert_eq!(result, Err(LedgerError::BelowFloor { account: alice, balance_after: -400, floor: 0 }));
    assert_refused(&fixture.ledger, &before, result);
}

#[test]
fn overflow_is_refused_not_wrapped() {
    let mut fixture = fixture();
    let (custody, inventory) = (fixture.custody, fixture.inventory);
    let before = snapshot(&fixture.ledger);
    let postings =
        [Posting { account: inventory, amount: i128::MAX }, Posting { account: custody, amount: -i128::MAX }];
    // Custody holds -1,000: one more -i128::MAX does not fit.
    let result = fixture.ledger.apply(AT, trade(), &postings);
    assert_eq!(result, Err(LedgerError::Overflow));
    assert_refused(&fixture.ledger, &before, result);
    let result = fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, i128::MIN, "min");
    assert_eq!(result, Err(LedgerError::NotPositive));
    assert_refused(&fixture.ledger, &before, result);
}

#[test]
fn reopening_an_account_keeps_its_id_and_floor() {
    let mut fixture = fixture();
    let before = snapshot(&fixture.ledger);
    assert_eq!(fixture.ledger.open_account(key(client("alice"), Purpose::Available), None), fixture.alice);
    assert_eq!(fixture.ledger.account(fixture.alice).unwrap().floor, Some(0));
    assert_eq!(snapshot(&fixture.ledger), before);
}

// ---- Defects: each of these is accepted today although it breaks an invariant. ----

/// `post_pending` accepts the transfer's own reserved account as destination: the two postings cancel out, the
/// reserved balance stays, but `remaining` shrinks, so invariant 3 (reserved balance == sum of pending) breaks.
#[test]
fn post_pending_to_its_own_reserved_account_is_refused() {
    let mut fixture = fixture();
    let pending = fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, 100, "order").unwrap();
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.post_pending(AT, pending, 40, fixture.alice_reserved, "fill");
    assert_refused(&fixture.ledger, &before, result);
}

/// `post_pending` accepts any reserved account as destination: Bob's reserved account then holds 40 that no
/// pending transfer accounts for.
#[test]
fn post_pending_into_another_reserved_account_is_refused() {
    let mut fixture = fixture();
    let pending = fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, 100, "order").unwrap();
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.post_pending(AT, pending, 40, fixture.bob_reserved, "fill");
    assert_refused(&fixture.ledger, &before, result);
}

/// `post_pending` does not require a positive amount. A negative amount passes `amount > remaining`, moves value
/// from the destination back into the reservation and grows `remaining` beyond what was ever reserved.
#[test]
fn post_pending_with_a_negative_amount_is_refused() {
    let mut fixture = fixture();
    let pending = fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, 100, "order").unwrap();
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.post_pending(AT, pending, -500, fixture.custody, "fill");
    assert_refused(&fixture.ledger, &before, result);
}

/// `post_pending` negates the amount with a plain `-amount`: `i128::MIN` panics with "attempt to negate with
/// overflow" in debug builds (and wraps in release) instead of returning `LedgerError::Overflow`.
#[test]
fn post_pending_with_i128_min_returns_an_error_instead_of_panicking() {
    let mut fixture = fixture();
    let pending = fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, 100, "order").unwrap();
    let before = snapshot(&fixture.ledger);
    let custody = fixture.custody;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fixture.ledger.post_pending(AT, pending, i128::MIN, custody, "fill")
    }));
    let result = outcome.expect("post_pending panicked");
    assert_refused(&fixture.ledger, &before, result);
}

/// `reserve` does not require a positive amount. When the reserved account already holds another reservation, a
/// negative amount passes the zero floor and creates a pending transfer with a negative `remaining`.
#[test]
fn reserve_with_a_negative_amount_is_refused() {
    let mut fixture = fixture();
    fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, 100, "order-1").unwrap();
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.reserve(AT, fixture.alice, fixture.alice_reserved, -30, "order-2");
    assert_refused(&fixture.ledger, &before, result);
}

/// `reserve` does not check that the two accounts differ (or that the second one is a reserved account): with
/// the same account twice the postings cancel, yet a pending transfer of 100 is recorded.
#[test]
fn reserve_into_the_same_account_is_refused() {
    let mut fixture = fixture();
    let before = snapshot(&fixture.ledger);
    let result = fixture.ledger.reserve(AT, fixture.alice_reserved, fixture.alice_reserved, 100, "order");
    assert_refused(&fixture.ledger, &before, result);
}

/// `check_invariants` adds balances with `checked_add` in account order, so a consistent ledger whose positive
/// balances together exceed `i128::MAX` is reported as broken (`Overflow`), although every transaction was
/// accepted and each asset does sum to zero. Amounts this large are absurd for real assets, but the engine
/// asserts `check_invariants` after every command, so such a state would turn into a panic there.
#[test]
fn check_invariants_accepts_every_state_apply_accepts() {
    let mut ledger = Ledger::new();
    let first = ledger.open_account(key(client("first"), Purpose::Available), None);
    let second = ledger.open_account(key(client("second"), Purpose::Available), None);
    let custody = ledger.open_account(key(Owner::Desk, Purpose::Custody), None);
    let half = i128::MAX / 2 + 1;
    for account in [first, second] {
        let postings = [Posting { account: custody, amount: -half }, Posting { account, amount: half }];
        ledger.apply(AT, trade(), &postings).unwrap();
    }
    assert_eq!(ledger.balance(custody), i128::MIN);
    assert_eq!(ledger.check_invariants(), Ok(()));
}
