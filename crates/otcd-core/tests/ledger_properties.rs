//! Property tests of the double-entry ledger.
//!
//! Each case builds a random ledger (several assets, prefunded clients with a zero floor, credit clients and desk
//! accounts without one) and runs a random sequence of operations against it: balanced multi-posting
//! transactions, unbalanced ones, zero amounts, postings that would break a floor, overflowing postings,
//! reservations with partial and full posts and voids, reversals, floor changes and account openings.
//!
//! Next to the ledger runs a deliberately simple model (balances in a `HashMap`, pending transfers in a
//! `BTreeMap`, transactions as plain posting lists). For every operation the model predicts whether the ledger
//! must accept it and, if not, which refusals are acceptable; after every operation the whole ledger is compared
//! with the model and with its own entry history:
//!
//! * `check_invariants()` is `Ok`;
//! * a refused operation leaves the serialized ledger byte-for-byte unchanged;
//! * every account's balance equals the model's, the sum of its entries, and the last `balance_after`;
//! * every entry's `balance_after` is the running sum of that account's entries;
//! * transactions are dense, contiguous, balanced per asset and hold exactly the postings that were applied;
//! * pending transfers match the model's.
//!
//! A ledger that skipped the floor check, the balance check or the overflow check, applied part of a refused
//! transaction, forgot to shrink a pending transfer or to mark a reversed transaction would fail here: the
//! model predicts a refusal the ledger does not produce (or the reverse), or the state comparison differs.

use otcd_core::catalog::AssetCode;
use otcd_core::ids::ClientId;
use otcd_core::ledger::{
    AccountId, AccountKey, Ledger, LedgerError, Owner, PendingId, Posting, Purpose, TransactionId, TransactionKind,
    TRANSACTION_POSTINGS_MAX,
};
use otcd_core::time::TimestampMs;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::{BTreeMap, HashMap};

const ASSET_CODES: [&str; 4] = ["BTC", "ETH", "USD", "EUR"];

fn asset_code(position: usize) -> AssetCode {
    AssetCode::parse(ASSET_CODES[position]).expect("valid asset code")
}

/// What the test knows about an account it opened.
#[derive(Debug, Clone)]
struct AccountInfo {
    id: AccountId,
    key: AccountKey,
    asset: usize,
}

impl AccountInfo {
    fn is_reserved(&self) -> bool {
        self.key.purpose == Purpose::Reserved
    }
}

#[derive(Debug, Clone)]
struct ModelTransaction {
    at: TimestampMs,
    kind: TransactionKind,
    postings: Vec<Posting>,
    reversed_by: Option<TransactionId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelPending {
    asset: AssetCode,
    available: AccountId,
    reserved: AccountId,
    remaining: i128,
}

/// The reference model: as simple as possible, updated only when the ledger accepted an operation.
#[derive(Debug, Default)]
struct Model {
    balances: HashMap<AccountId, i128>,
    floors: HashMap<AccountId, Option<i128>>,
    assets: HashMap<AccountId, AssetCode>,
    pending: BTreeMap<PendingId, ModelPending>,
    last_pending: u64,
    transactions: Vec<ModelTransaction>,
}

impl Model {
    fn open(&mut self, id: AccountId, asset: AssetCode, floor: Option<i128>) {
        assert!(self.balances.insert(id, 0).is_none(), "account {id:?} opened twice");
        self.floors.insert(id, floor);
        self.assets.insert(id, asset);
    }

    /// Every refusal `Ledger::apply` may answer with for these postings; empty when it must accept them.
    fn apply_refusals(&self, postings: &[Posting]) -> Vec<LedgerError> {
        if postings.is_empty() || postings.len() > TRANSACTION_POSTINGS_MAX {
            return vec![LedgerError::PostingCount(postings.len())];
        }
        let mut refusals = Vec::new();
        let mut sums: Vec<(AssetCode, i128)> = Vec::new();
        let mut after: Vec<(AccountId, i128)> = Vec::new();
        let mut overflow = false;
        for posting in postings {
            if posting.amount == 0 {
                refusals.push(LedgerError::ZeroAmount);
                continue;
            }
            let Some(asset) = self.assets.get(&posting.account).copied() else {
                refusals.push(LedgerError::UnknownAccount(posting.account));
                continue;
            };
            match sums.iter_mut().find(|(code, _)| *code == asset) {
                Some((_, sum)) => match sum.checked_add(posting.amount) {
                    Some(total) => *sum = total,
                    None => overflow = true,
                },
                None => sums.push((asset, posting.amount)),
            }
            let start = self.balances[&posting.account];
            let slot = match after.iter_mut().position(|(id, _)| *id == posting.account) {
                Some(slot) => slot,
                None => {
                    after.push((posting.account, start));
                    after.len() - 1
                }
            };
            match after[slot].1.checked_add(posting.amount) {
                Some(balance) => after[slot].1 = balance,
                None => overflow = true,
            }
        }
        if overflow {
            refusals.push(LedgerError::Overflow);
            return refusals;
        }
        refusals.extend(sums.iter().filter(|(_, sum)| *sum != 0).map(|(asset, _)| LedgerError::Unbalanced(*asset)));
        for (account, balance_after) in after {
            if let Some(floor) = self.floors[&account] {
                if balance_after < floor {
                    refusals.push(LedgerError::BelowFloor { account, balance_after, floor });
                }
            }
        }
        refusals
    }

    fn record(&mut self, id: TransactionId, at: TimestampMs, kind: TransactionKind, postings: &[Posting]) {
        assert_eq!(id, TransactionId(self.transactions.len() as u64 + 1), "transaction ids must be dense from 1");
        for posting in postings {
            *self.balances.get_mut(&posting.account).expect("known account") += posting.amount;
        }
        self.transactions.push(ModelTransaction { at, kind, postings: postings.to_vec(), reversed_by: None });
    }

    fn shrink_pending(&mut self, id: PendingId, amount: i128) {
        let pending = self.pending.get_mut(&id).expect("known pending transfer");
        pending.remaining -= amount;
        if pending.remaining == 0 {
            self.pending.remove(&id);
        }
    }
}

#[derive(Debug, Clone)]
struct Setup {
    assets: usize,
    /// One client per entry: `true` = prefunded (available floor 0), `false` = credit (no floor).
    clients: Vec<bool>,
    fees_floored: bool,
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (1..=ASSET_CODES.len(), prop::collection::vec(any::<bool>(), 1..=4), any::<bool>())
        .prop_map(|(assets, clients, fees_floored)| Setup { assets, clients, fees_floored })
}

#[derive(Debug, Clone)]
enum ReserveAmount {
    /// Between 1 and the available balance (1 when there is none).
    Within(Index),
    /// Exactly the available balance: leaves a prefunded client at its floor.
    All,
    /// More than the available balance.
    Exceeding(i128),
    Zero,
}

#[derive(Debug, Clone)]
enum PostAmount {
    Full,
    Partial(Index),
    Exceeding(i128),
    Zero,
}

#[derive(Debug, Clone)]
enum FloorChoice {
    Unbounded,
    Zero,
    AboveBalance(i128),
    BelowBalance(i128),
}

#[derive(Debug, Clone)]
enum Op {
    /// Desk custody pays a client's (or any) available account.
    Fund {
        account: Index,
        amount: i128,
    },
    /// Random postings plus, per asset that does not sum to zero, a balancing posting.
    Balanced {
        postings: Vec<(Index, i128)>,
        balancers: [Index; 4],
        via_custody: bool,
    },
    /// Balanced postings, then one of them is skewed.
    Unbalanced {
        postings: Vec<(Index, i128)>,
        skew: i128,
    },
    /// Balanced postings plus a zero posting.
    WithZero {
        postings: Vec<(Index, i128)>,
        zero_account: Index,
    },
    /// Takes a floored account `excess` below its floor (`excess == 0`: exactly to it, which is allowed).
    DrainToFloor {
        account: Index,
        excess: i128,
    },
    PostingCount(usize),
    UnknownAccount {
        beyond: u32,
        amount: i128,
    },
    Overflow {
        account: Index,
    },
    Reserve {
        pair: Index,
        amount: ReserveAmount,
        mismatched: bool,
    },
    PostPending {
        pending: Index,
        amount: PostAmount,
        destination: Index,
    },
    VoidPending {
        pending: Index,
    },
    UnknownPending {
        beyond: u64,
        post: bool,
    },
    Reverse {
        transaction: Index,
    },
    SetFloor {
        account: Index,
        floor: FloorChoice,
    },
    Reopen {
        account: Index,
        floor: Option<i128>,
    },
    OpenClient {
        asset: Index,
        prefunded: bool,
    },
}

fn signed_amount() -> impl Strategy<Value = i128> {
    let magnitude = prop_oneof![4 => 1i128..=1_000, 1 => 1i128..=1_000_000_000_000];
    (magnitude, any::<bool>()).prop_map(|(magnitude, negative)| if negative { -magnitude } else { magnitude })
}

fn postings_strategy(max: usize) -> impl Strategy<Value = Vec<(Index, i128)>> {
    prop::collection::vec((any::<Index>(), signed_amount()), 1..=max)
}

/// How far past a limit to go: usually by the smallest step, which is where off-by-one mistakes hide.
fn excess() -> impl Strategy<Value = i128> {
    prop_oneof![2 => Just(1i128), 1 => 2i128..=1_000]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let reserve_amount = prop_oneof![
        4 => any::<Index>().prop_map(ReserveAmount::Within),
        1 => Just(ReserveAmount::All),
        1 => excess().prop_map(ReserveAmount::Exceeding),
        1 => Just(ReserveAmount::Zero),
    ];
    let post_amount = prop_oneof![
        2 => Just(PostAmount::Full),
        3 => any::<Index>().prop_map(PostAmount::Partial),
        1 => excess().prop_map(PostAmount::Exceeding),
        1 => Just(PostAmount::Zero),
    ];
    let floor = prop_oneof![
        Just(FloorChoice::Unbounded),
        Just(FloorChoice::Zero),
        (1i128..=1_000).prop_map(FloorChoice::AboveBalance),
        (0i128..=1_000).prop_map(FloorChoice::BelowBalance),
    ];
    prop_oneof![
        3 => (any::<Index>(), 1i128..=1_000_000).prop_map(|(account, amount)| Op::Fund { account, amount }),
        6 => (postings_strategy(5), prop::array::uniform4(any::<Index>()), prop::bool::weighted(0.8))
            .prop_map(|(postings, balancers, via_custody)| Op::Balanced { postings, balancers, via_custody }),
        1 => (postings_strategy(4), signed_amount()).prop_map(|(postings, skew)| Op::Unbalanced { postings, skew }),
        1 => (postings_strategy(4), any::<Index>())
            .prop_map(|(postings, zero_account)| Op::WithZero { postings, zero_account }),
        2 => (any::<Index>(), prop_oneof![Just(0i128), excess()])
            .prop_map(|(account, excess)| Op::DrainToFloor { account, excess }),
        1 => prop_oneof![Just(0usize), TRANSACTION_POSTINGS_MAX + 1..=TRANSACTION_POSTINGS_MAX + 4]
            .prop_map(Op::PostingCount),
        1 => (0u32..3, signed_amount()).prop_map(|(beyond, amount)| Op::UnknownAccount { beyond, amount }),
        1 => any::<Index>().prop_map(|account| Op::Overflow { account }),
        5 => (any::<Index>(), reserve_amount, prop::bool::weighted(0.1))
            .prop_map(|(pair, amount, mismatched)| Op::Reserve { pair, amount, mismatched }),
        4 => (any::<Index>(), post_amount, any::<Index>())
            .prop_map(|(pending, amount, destination)| Op::PostPending { pending, amount, destination }),
        2 => any::<Index>().prop_map(|pending| Op::VoidPending { pending }),
        1 => (0u64..3, any::<bool>()).prop_map(|(beyond, post)| Op::UnknownPending { beyond, post }),
        3 => any::<Index>().prop_map(|transaction| Op::Reverse { transaction }),
        1 => (any::<Index>(), floor).prop_map(|(account, floor)| Op::SetFloor { account, floor }),
        1 => (any::<Index>(), prop::option::of(-5i128..=5)).prop_map(|(account, floor)| Op::Reopen { account, floor }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(asset, prefunded)| Op::OpenClient { asset, prefunded }),
    ]
}

/// The ledger under test, the model, and what the test knows about the accounts.
struct World {
    ledger: Ledger,
    model: Model,
    accounts: Vec<AccountInfo>,
    assets: usize,
    clients_opened: usize,
    accepted: usize,
    refused: usize,
    /// Refusals seen, by `LedgerError` variant name.
    refusals: HashMap<String, usize>,
}

impl World {
    fn new(setup: &Setup) -> Self {
        let mut world = World {
            ledger: Ledger::new(),
            model: Model::default(),
            accounts: Vec::new(),
            assets: setup.assets,
            clients_opened: 0,
            accepted: 0,
            refused: 0,
            refusals: HashMap::new(),
        };
        for asset in 0..setup.assets {
            for (client, prefunded) in setup.clients.iter().enumerate() {
                world.open_client_accounts(asset, client, *prefunded);
            }
            for (purpose, floor) in
                [(Purpose::Custody, None), (Purpose::Inventory, None), (Purpose::Fees, setup.fees_floored.then_some(0))]
            {
                world.open(AccountKey { owner: Owner::Desk, asset: asset_code(asset), purpose }, floor);
            }
        }
        world.clients_opened = setup.clients.len();
        world.check();
        world
    }

    fn open(&mut self, key: AccountKey, floor: Option<i128>) -> AccountId {
        let expected = AccountId(self.accounts.len() as u32);
        let id = self.ledger.open_account(key.clone(), floor);
        assert_eq!(id, expected, "accounts get dense ids in opening order");
        let asset = ASSET_CODES.iter().position(|code| *code == key.asset.as_str()).expect("known asset");
        self.model.open(id, key.asset, floor);
        self.accounts.push(AccountInfo { id, key, asset });
        id
    }

    fn open_client_accounts(&mut self, asset: usize, client: usize, prefunded: bool) {
        let owner = Owner::Client(ClientId::parse(&format!("cl_{client}")).expect("valid client id"));
        let code = asset_code(asset);
        self.open(
            AccountKey { owner: owner.clone(), asset: code, purpose: Purpose::Available },
            prefunded.then_some(0),
        );
        self.open(AccountKey { owner, asset: code, purpose: Purpose::Reserved }, Some(0));
    }

    /// Accounts raw postings may touch: everything but reserved accounts, whose balance belongs to pending transfers.
    fn postable(&self) -> Vec<&AccountInfo> {
        self.accounts.iter().filter(|account| !account.is_reserved()).collect()
    }

    fn postable_of(&self, asset: usize) -> Vec<&AccountInfo> {
        self.accounts.iter().filter(|account| !account.is_reserved() && account.asset == asset).collect()
    }

    fn desk_account(&self, asset: usize, purpose: Purpose) -> AccountId {
        let key = AccountKey { owner: Owner::Desk, asset: asset_code(asset), purpose };
        self.accounts.iter().find(|account| account.key == key).expect("desk account exists").id
    }

    /// (available, reserved) pairs of every client and asset.
    fn reservation_pairs(&self) -> Vec<(AccountId, AccountId, usize)> {
        self.accounts
            .iter()
            .filter(|account| account.key.purpose == Purpose::Available)
            .map(|available| {
                let reserved_key = AccountKey { purpose: Purpose::Reserved, ..available.key.clone() };
                let reserved = self.accounts.iter().find(|account| account.key == reserved_key).expect("paired");
                (available.id, reserved.id, available.asset)
            })
            .collect()
    }

    fn balance(&self, id: AccountId) -> i128 {
        self.model.balances[&id]
    }

    fn resolve(&self, postings: &[(Index, i128)]) -> Vec<Posting> {
        let postable = self.postable();
        postings
            .iter()
            .map(|(index, amount)| Posting { account: postable[index.index(postable.len())].id, amount: *amount })
            .collect()
    }

    /// Adds, per asset whose postings do not sum to zero, one posting that balances it: on the asset's custody
    /// account, or on an account the balancers pick.
    fn balance_postings(&self, postings: &mut Vec<Posting>, balancers: Option<&[Index; 4]>) {
        for asset in 0..self.assets {
            let code = asset_code(asset);
            let sum: i128 =
                postings.iter().filter(|posting| self.model.assets[&posting.account] == code).map(|p| p.amount).sum();
            if sum == 0 {
                continue;
            }
            let account = match balancers {
                None => self.desk_account(asset, Purpose::Custody),
                Some(balancers) => {
                    let candidates = self.postable_of(asset);
                    candidates[balancers[asset].index(candidates.len())].id
                }
            };
            postings.push(Posting { account, amount: -sum });
        }
    }

    fn apply(&mut self, at: TimestampMs, kind: TransactionKind, postings: &[Posting]) {
        let expected = self.model.apply_refusals(postings);
        let result = self.ledger.apply(at, kind.clone(), postings);
        if self.judge("apply", &result, &expected) {
            self.model.record(result.expect("accepted"), at, kind, postings);
        }
    }

    /// Compares the ledger's answer with the model's prediction; returns whether the operation was accepted.
    fn judge<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        result: &Result<T, LedgerError>,
        expected: &[LedgerError],
    ) -> bool {
        match result {
            Ok(value) => {
                assert!(expected.is_empty(), "{what} accepted ({value:?}) but the model expected one of {expected:?}");
                self.accepted += 1;
                true
            }
            Err(error) => {
                assert!(!expected.is_empty(), "{what} refused with {error:?} but the model expected it to succeed");
                let known = expected.iter().any(|candidate| match (candidate, error) {
                    (LedgerError::Invariant(_), LedgerError::Invariant(_)) => true,
                    (candidate, error) => candidate == error,
                });
                assert!(known, "{what} refused with {error:?}; the model expected one of {expected:?}");
                self.refused += 1;
                let variant = format!("{error:?}").split(['(', ' ']).next().unwrap_or_default().to_owned();
                *self.refusals.entry(variant).or_default() += 1;
                false
            }
        }
    }

    fn run(&mut self, step: usize, op: &Op) {
        let at = TimestampMs(1_000 + step as i64);
        let reference = format!("op-{step}");
        match op {
            Op::Fund { account, amount } => {
                let postable = self.postable();
                let target = postable[account.index(postable.len())];
                let custody = self.desk_account(target.asset, Purpose::Custody);
                let postings =
                    [Posting { account: custody, amount: -amount }, Posting { account: target.id, amount: *amount }];
                self.apply(at, TransactionKind::Funding { reference }, &postings);
            }
            Op::Balanced { postings, balancers, via_custody } => {
                let mut postings = self.resolve(postings);
                self.balance_postings(&mut postings, (!via_custody).then_some(balancers));
                self.apply(at, TransactionKind::Trade { reference }, &postings);
            }
            Op::Unbalanced { postings, skew } => {
                let mut postings = self.resolve(postings);
                self.balance_postings(&mut postings, None);
                let last = postings.len() - 1;
                postings[last].amount += skew;
                if postings[last].amount == 0 {
                    postings[last].amount = *skew;
                }
                self.apply(at, TransactionKind::Trade { reference }, &postings);
            }
            Op::WithZero { postings, zero_account } => {
                let mut postings = self.resolve(postings);
                self.balance_postings(&mut postings, None);
                let postable = self.postable();
                let position = zero_account.index(postings.len() + 1);
                postings
                    .insert(position, Posting { account: postable[zero_account.index(postable.len())].id, amount: 0 });
                self.apply(at, TransactionKind::Fee { reference }, &postings);
            }
            Op::DrainToFloor { account, excess } => {
                let floored: Vec<(AccountId, usize, i128)> = self
                    .postable()
                    .iter()
                    .filter_map(|info| self.model.floors[&info.id].map(|floor| (info.id, info.asset, floor)))
                    .collect();
                if floored.is_empty() {
                    return;
                }
                let (target, asset, floor) = floored[account.index(floored.len())];
                let amount = self.balance(target) - floor + excess;
                let custody = self.desk_account(asset, Purpose::Custody);
                let counterparty =
                    if target == custody { self.desk_account(asset, Purpose::Inventory) } else { custody };
                let postings =
                    [Posting { account: target, amount: -amount }, Posting { account: counterparty, amount }];
                let expected = self.model.apply_refusals(&postings);
                let broken = LedgerError::BelowFloor { account: target, balance_after: floor - excess, floor };
                assert_eq!(
                    expected.contains(&broken),
                    *excess > 0,
                    "the model must see the broken floor: {expected:?}"
                );
                self.apply(at, TransactionKind::Withdrawal { reference }, &postings);
            }
            Op::PostingCount(count) => {
                let custody = self.desk_account(0, Purpose::Custody);
                let inventory = self.desk_account(0, Purpose::Inventory);
                let postings: Vec<Posting> = (0..*count)
                    .map(|position| {
                        let account = if position % 2 == 0 { custody } else { inventory };
                        Posting { account, amount: if position % 2 == 0 { 1 } else { -1 } }
                    })
                    .collect();
                self.apply(at, TransactionKind::Trade { reference }, &postings);
            }
            Op::UnknownAccount { beyond, amount } => {
                let unknown = AccountId(self.accounts.len() as u32 + beyond);
                let custody = self.desk_account(0, Purpose::Custody);
                let postings =
                    [Posting { account: custody, amount: -amount }, Posting { account: unknown, amount: *amount }];
                self.apply(at, TransactionKind::Trade { reference }, &postings);
            }
            Op::Overflow { account } => {
                let postable = self.postable();
                let first = postable[account.index(postable.len())];
                let custody = self.desk_account(first.asset, Purpose::Custody);
                let second =
                    if first.id == custody { self.desk_account(first.asset, Purpose::Inventory) } else { custody };
                let postings = [
                    Posting { account: first.id, amount: i128::MAX },
                    Posting { account: first.id, amount: i128::MAX },
                    Posting { account: second, amount: -i128::MAX },
                    Posting { account: second, amount: -i128::MAX },
                ];
                let expected = self.model.apply_refusals(&postings);
                assert_eq!(expected, vec![LedgerError::Overflow]);
                self.apply(at, TransactionKind::Trade { reference }, &postings);
            }
            Op::Reserve { pair, amount, mismatched } => self.reserve(at, &reference, pair, amount, *mismatched),
            Op::PostPending { pending, amount, destination } => {
                self.post_pending(at, &reference, pending, amount, destination)
            }
            Op::VoidPending { pending } => {
                let ids: Vec<PendingId> = self.model.pending.keys().copied().collect();
                let id =
                    if ids.is_empty() { PendingId(self.model.last_pending + 1) } else { ids[pending.index(ids.len())] };
                self.void_pending(at, &reference, id);
            }
            Op::UnknownPending { beyond, post } => {
                let id = if *beyond == 0 { PendingId(0) } else { PendingId(self.model.last_pending + beyond) };
                if *post {
                    let destination = self.desk_account(0, Purpose::Inventory);
                    let result = self.ledger.post_pending(at, id, 1, destination, &reference);
                    self.judge("post_pending", &result, &[LedgerError::UnknownPending(id)]);
                } else {
                    self.void_pending(at, &reference, id);
                }
            }
            Op::Reverse { transaction } => {
                let count = self.model.transactions.len();
                let choice = transaction.index(count + 2);
                let id = match choice {
                    choice if choice < count => TransactionId(choice as u64 + 1),
                    choice if choice == count => TransactionId(0),
                    _ => TransactionId(count as u64 + 1),
                };
                self.reverse(at, id);
            }
            Op::SetFloor { account, floor } => {
                let postable = self.postable();
                let id = postable[account.index(postable.len())].id;
                let balance = self.balance(id);
                let floor = match floor {
                    FloorChoice::Unbounded => None,
                    FloorChoice::Zero => Some(0),
                    FloorChoice::AboveBalance(above) => Some(balance + above),
                    FloorChoice::BelowBalance(below) => Some(balance - below),
                };
                let expected = match floor {
                    Some(floor) if balance < floor => {
                        vec![LedgerError::BelowFloor { account: id, balance_after: balance, floor }]
                    }
                    _ => Vec::new(),
                };
                let result = self.ledger.set_floor(id, floor);
                if self.judge("set_floor", &result, &expected) {
                    self.model.floors.insert(id, floor);
                }
            }
            Op::Reopen { account, floor } => {
                let info = self.accounts[account.index(self.accounts.len())].clone();
                assert_eq!(
                    self.ledger.open_account(info.key.clone(), *floor),
                    info.id,
                    "reopening returns the same id"
                );
            }
            Op::OpenClient { asset, prefunded } => {
                let asset = asset.index(self.assets);
                self.open_client_accounts(asset, self.clients_opened, *prefunded);
                self.clients_opened += 1;
            }
        }
    }

    fn reserve(&mut self, at: TimestampMs, reference: &str, pair: &Index, amount: &ReserveAmount, mismatched: bool) {
        let pairs = self.reservation_pairs();
        let (available, mut reserved, asset) = pairs[pair.index(pairs.len())];
        if mismatched && self.assets > 1 {
            let other = pairs.iter().find(|(_, _, other)| *other != asset).expect("several assets");
            reserved = other.1;
        }
        let spendable = self.balance(available).max(0);
        let amount = match amount {
            ReserveAmount::Within(index) => {
                1 + index.index(usize::try_from(spendable).unwrap_or(usize::MAX).max(1)) as i128
            }
            ReserveAmount::All => spendable,
            ReserveAmount::Exceeding(excess) => spendable + excess,
            ReserveAmount::Zero => 0,
        };
        let expected = if amount == 0 {
            vec![LedgerError::ZeroAmount]
        } else if self.model.assets[&available] != self.model.assets[&reserved] {
            vec![LedgerError::AssetMismatch]
        } else {
            self.model.apply_refusals(&[
                Posting { account: available, amount: -amount },
                Posting { account: reserved, amount },
            ])
        };
        let result = self.ledger.reserve(at, available, reserved, amount, reference);
        if self.judge("reserve", &result, &expected) {
            let id = result.expect("accepted");
            assert_eq!(id, PendingId(self.model.last_pending + 1), "pending ids are dense from 1");
            self.model.last_pending = id.0;
            let kind = TransactionKind::Reservation { pending: id, reference: reference.to_owned() };
            let transaction = TransactionId(self.model.transactions.len() as u64 + 1);
            self.model.record(
                transaction,
                at,
                kind,
                &[Posting { account: available, amount: -amount }, Posting { account: reserved, amount }],
            );
            let asset = self.model.assets[&available];
            self.model.pending.insert(id, ModelPending { asset, available, reserved, remaining: amount });
        }
    }

    fn post_pending(
        &mut self,
        at: TimestampMs,
        reference: &str,
        pending: &Index,
        amount: &PostAmount,
        destination: &Index,
    ) {
        let postable = self.postable();
        let destination = postable[destination.index(postable.len())].id;
        let ids: Vec<PendingId> = self.model.pending.keys().copied().collect();
        if ids.is_empty() {
            let id = PendingId(self.model.last_pending + 1);
            let result = self.ledger.post_pending(at, id, 1, destination, reference);
            self.judge("post_pending", &result, &[LedgerError::UnknownPending(id)]);
            return;
        }
        let id = ids[pending.index(ids.len())];
        let transfer = self.model.pending[&id].clone();
        let amount = match amount {
            PostAmount::Full => transfer.remaining,
            PostAmount::Partial(index) => {
                1 + index.index(usize::try_from(transfer.remaining).unwrap_or(usize::MAX)) as i128
            }
            PostAmount::Exceeding(excess) => transfer.remaining + excess,
            PostAmount::Zero => 0,
        };
        let postings =
            [Posting { account: transfer.reserved, amount: -amount }, Posting { account: destination, amount }];
        let mut expected = Vec::new();
        if amount == 0 {
            expected.push(LedgerError::ZeroAmount);
        }
        if amount > transfer.remaining {
            expected.push(LedgerError::ExceedsPending { amount, remaining: transfer.remaining });
        }
        if self.model.assets[&destination] != transfer.asset {
            expected.push(LedgerError::AssetMismatch);
        }
        if expected.is_empty() {
            expected = self.model.apply_refusals(&postings);
        }
        let result = self.ledger.post_pending(at, id, amount, destination, reference);
        if self.judge("post_pending", &result, &expected) {
            let kind = TransactionKind::ReservationPosted { pending: id, reference: reference.to_owned() };
            self.model.record(result.expect("accepted"), at, kind, &postings);
            self.model.shrink_pending(id, amount);
        }
    }

    fn void_pending(&mut self, at: TimestampMs, reference: &str, id: PendingId) {
        let Some(transfer) = self.model.pending.get(&id).cloned() else {
            let result = self.ledger.void_pending(at, id, reference);
            self.judge("void_pending", &result, &[LedgerError::UnknownPending(id)]);
            return;
        };
        let postings = [
            Posting { account: transfer.reserved, amount: -transfer.remaining },
            Posting { account: transfer.available, amount: transfer.remaining },
        ];
        let expected = self.model.apply_refusals(&postings);
        let result = self.ledger.void_pending(at, id, reference);
        if self.judge("void_pending", &result, &expected) {
            let kind = TransactionKind::ReservationReleased { pending: id, reference: reference.to_owned() };
            self.model.record(result.expect("accepted"), at, kind, &postings);
            self.model.shrink_pending(id, transfer.remaining);
        }
    }

    fn reverse(&mut self, at: TimestampMs, id: TransactionId) {
        let original =
            (id.0 as usize).checked_sub(1).and_then(|position| self.model.transactions.get(position)).cloned();
        let (expected, postings) = match &original {
            None => (vec![LedgerError::UnknownTransaction(id)], Vec::new()),
            Some(original) if original.reversed_by.is_some() => (vec![LedgerError::AlreadyReversed(id)], Vec::new()),
            Some(original)
                if matches!(
                    original.kind,
                    TransactionKind::Reservation { .. }
                        | TransactionKind::ReservationPosted { .. }
                        | TransactionKind::ReservationReleased { .. }
                ) =>
            {
                (vec![LedgerError::Invariant(String::new())], Vec::new())
            }
            Some(original) => {
                let postings: Vec<Posting> = original
                    .postings
                    .iter()
                    .map(|posting| Posting { account: posting.account, amount: -posting.amount })
                    .collect();
                (self.model.apply_refusals(&postings), postings)
            }
        };
        let result = self.ledger.reverse(at, id);
        if self.judge("reverse", &result, &expected) {
            let reversal = result.expect("accepted");
            self.model.record(reversal, at, TransactionKind::Reversal { of: id }, &postings);
            self.model.transactions[(id.0 - 1) as usize].reversed_by = Some(reversal);
        }
    }

    /// Compares the whole ledger with the model and with its own entry history.
    fn check(&self) {
        let ledger = &self.ledger;
        if let Err(broken) = ledger.check_invariants() {
            panic!("check_invariants failed: {broken}");
        }
        let accounts = ledger.accounts();
        assert_eq!(accounts.len(), self.accounts.len(), "number of accounts");

        // Transactions: dense ids, contiguous entries, exactly the applied postings, balanced per asset.
        let transactions = ledger.transactions();
        assert_eq!(transactions.len(), self.model.transactions.len(), "number of transactions");
        let mut next_entry = 0u64;
        for (position, (transaction, expected)) in transactions.iter().zip(&self.model.transactions).enumerate() {
            assert_eq!(transaction.id, TransactionId(position as u64 + 1));
            assert_eq!(ledger.transaction(transaction.id), Some(transaction));
            assert_eq!(transaction.first_entry, next_entry, "entries of {:?} are not contiguous", transaction.id);
            assert_eq!((transaction.at, &transaction.kind), (expected.at, &expected.kind));
            assert_eq!(transaction.reversed_by, expected.reversed_by, "reversed_by of {:?}", transaction.id);
            let entries = ledger.entries_of(transaction);
            assert_eq!(entries.len(), usize::from(transaction.entry_count));
            let postings: Vec<Posting> =
                entries.clone().map(|entry| Posting { account: entry.account, amount: entry.amount }).collect();
            assert_eq!(postings, expected.postings, "entries of {:?}", transaction.id);
            let mut sums: BTreeMap<AssetCode, i128> = BTreeMap::new();
            for entry in entries {
                assert_eq!(entry.transaction, transaction.id);
                *sums.entry(accounts[entry.account.0 as usize].key.asset).or_default() += entry.amount;
            }
            assert!(sums.values().all(|sum| *sum == 0), "{:?} does not balance: {sums:?}", transaction.id);
            next_entry += u64::from(transaction.entry_count);
        }
        assert!(ledger.entry(next_entry).is_none(), "entries beyond the last transaction");
        assert!(ledger.transaction(TransactionId(0)).is_none());
        assert!(ledger.transaction(TransactionId(transactions.len() as u64 + 1)).is_none());

        // Entries in order: each balance_after is the running sum of its account's amounts.
        let mut running = vec![0i128; accounts.len()];
        let mut positions: Vec<Vec<u64>> = vec![Vec::new(); accounts.len()];
        for position in 0..next_entry {
            let entry = ledger.entry(position).expect("entry exists");
            let slot = entry.account.0 as usize;
            running[slot] += entry.amount;
            assert_eq!(entry.balance_after, running[slot], "balance_after of entry {position}");
            positions[slot].push(position);
        }

        for (info, account) in self.accounts.iter().zip(accounts) {
            let id = info.id;
            assert_eq!(account.key, info.key);
            assert_eq!(ledger.account_id(&info.key), Some(id));
            assert_eq!(account.balance, self.model.balances[&id], "balance of {id:?} differs from the model");
            assert_eq!(ledger.balance(id), account.balance);
            assert_eq!(account.floor, self.model.floors[&id], "floor of {id:?}");
            assert_eq!(*ledger.entry_positions(id), *positions[id.0 as usize].as_slice(), "entry index of {id:?}");
            let from_entries: i128 =
                ledger.entry_positions(id).iter().map(|position| ledger.entry(*position).expect("entry").amount).sum();
            assert_eq!(from_entries, account.balance, "entries of {id:?} do not sum to its balance");
            let last =
                ledger.entry_positions(id).last().map_or(0, |position| ledger.entry(*position).unwrap().balance_after);
            assert_eq!(last, account.balance, "last balance_after of {id:?}");
        }
        assert!(ledger.account(AccountId(accounts.len() as u32)).is_none());

        let pending: Vec<(PendingId, ModelPending)> = ledger
            .pending_transfers()
            .map(|transfer| {
                let model = ModelPending {
                    asset: transfer.asset,
                    available: transfer.available,
                    reserved: transfer.reserved,
                    remaining: transfer.remaining,
                };
                (transfer.id, model)
            })
            .collect();
        let expected: Vec<(PendingId, ModelPending)> =
            self.model.pending.iter().map(|(id, transfer)| (*id, transfer.clone())).collect();
        assert_eq!(pending, expected, "pending transfers differ from the model");
        for id in self.model.pending.keys() {
            assert_eq!(ledger.pending(*id).map(|transfer| transfer.id), Some(*id));
        }
    }
}

fn serialized(ledger: &Ledger) -> String {
    serde_json::to_string(ledger).expect("a ledger serializes")
}

fn run_case(setup: &Setup, ops: &[Op]) -> World {
    let mut world = World::new(setup);
    for (step, op) in ops.iter().enumerate() {
        let before = serialized(&world.ledger);
        let refused_before = world.refused;
        world.run(step, op);
        if world.refused > refused_before || matches!(op, Op::Reopen { .. }) {
            assert_eq!(serialized(&world.ledger), before, "step {step}: {op:?} was refused but changed the ledger");
        }
        world.check();
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_ledger_consistent_with_its_model(
        setup in setup_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..120),
    ) {
        let world = run_case(&setup, &ops);

        // A snapshot (serde round trip plus rebuilt indexes) is the same ledger, lookups included.
        let text = serialized(&world.ledger);
        let mut restored: Ledger = serde_json::from_str(&text).expect("the snapshot parses");
        restored.rebuild_indexes();
        prop_assert_eq!(serialized(&restored), text);
        restored.check_invariants().expect("restored ledger is consistent");
        for info in &world.accounts {
            prop_assert_eq!(restored.account_id(&info.key), Some(info.id));
            prop_assert_eq!(restored.entry_positions(info.id), world.ledger.entry_positions(info.id));
        }
    }

    #[test]
    fn balanced_funded_transfers_are_always_accepted(
        setup in setup_strategy(),
        transfers in prop::collection::vec((any::<Index>(), any::<Index>(), 1i128..=1_000_000), 1..40),
    ) {
        // Custody funds clients first, so moving at most what an account holds must always be accepted; the model
        // makes the same prediction, and the balances must end up exactly where the model says.
        let mut world = World::new(&setup);
        let accepted_before = world.accepted;
        for (step, (from, to, amount)) in transfers.iter().enumerate() {
            let postable = world.postable();
            let source = postable[from.index(postable.len())].clone();
            let candidates = world.postable_of(source.asset);
            let target = candidates[to.index(candidates.len())].id;
            let custody = world.desk_account(source.asset, Purpose::Custody);
            let funding = [Posting { account: custody, amount: -amount }, Posting { account: source.id, amount: *amount }];
            world.apply(TimestampMs(step as i64), TransactionKind::Funding { reference: format!("f{step}") }, &funding);
            let moved = [Posting { account: source.id, amount: -amount }, Posting { account: target, amount: *amount }];
            world.apply(TimestampMs(step as i64), TransactionKind::Trade { reference: format!("t{step}") }, &moved);
            world.check();
        }
        prop_assert_eq!(world.refused, 0);
        prop_assert_eq!(world.accepted - accepted_before, transfers.len() * 2);
    }
}

/// The generated sequences must actually exercise both outcomes of every kind of operation; otherwise the
/// property above would pass vacuously. Runs a fixed set of long sequences and counts.
#[test]
fn the_generator_exercises_acceptances_and_refusals() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let mut accepted_kinds: HashMap<&'static str, usize> = HashMap::new();
    let (mut accepted, mut refused, mut partial_posts) = (0, 0, 0);
    let mut refusals: HashMap<String, usize> = HashMap::new();
    for _ in 0..40 {
        let setup = setup_strategy().new_tree(&mut runner).expect("setup").current();
        let ops = prop::collection::vec(op_strategy(), 150).new_tree(&mut runner).expect("ops").current();
        let world = run_case(&setup, &ops);
        accepted += world.accepted;
        refused += world.refused;
        for (variant, count) in &world.refusals {
            *refusals.entry(variant.clone()).or_default() += count;
        }
        for transaction in world.ledger.transactions() {
            let kind = match transaction.kind {
                TransactionKind::Reservation { .. } => "reservation",
                TransactionKind::ReservationPosted { .. } => "posted",
                TransactionKind::ReservationReleased { .. } => "released",
                TransactionKind::Reversal { .. } => "reversal",
                _ => "other",
            };
            *accepted_kinds.entry(kind).or_default() += 1;
        }
        // A partial post: a transfer posted at least once and afterwards still open, posted again or voided.
        let mut settled: HashMap<PendingId, usize> = HashMap::new();
        for transaction in world.ledger.transactions() {
            if let TransactionKind::ReservationPosted { pending, .. }
            | TransactionKind::ReservationReleased { pending, .. } = transaction.kind
            {
                *settled.entry(pending).or_default() += 1;
            }
        }
        partial_posts += settled.values().filter(|count| **count > 1).count();
        partial_posts += world.ledger.pending_transfers().filter(|transfer| settled.contains_key(&transfer.id)).count();
    }
    eprintln!("accepted {accepted} refused {refused} partial {partial_posts} {accepted_kinds:?} {refusals:?}");
    assert!(partial_posts > 20, "too few partial posts: {partial_posts}");
    for variant in [
        "PostingCount",
        "ZeroAmount",
        "UnknownAccount",
        "Unbalanced",
        "Overflow",
        "BelowFloor",
        "UnknownPending",
        "ExceedsPending",
        "AssetMismatch",
        "UnknownTransaction",
        "AlreadyReversed",
        "Invariant",
    ] {
        assert!(refusals.get(variant).copied().unwrap_or(0) > 5, "too few {variant} refusals: {refusals:?}");
    }
    assert!(accepted > 1_000 && refused > 1_000, "accepted {accepted}, refused {refused}");
    for kind in ["reservation", "posted", "released", "reversal", "other"] {
        assert!(accepted_kinds.get(kind).copied().unwrap_or(0) > 20, "too few accepted {kind}: {accepted_kinds:?}");
    }
}
