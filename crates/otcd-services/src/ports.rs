//! The ports the desk services and workers talk to the outside world through. Adapters implement them: the
//! simulated custodian, bank and chain (`otcd-rails-sim`) today, a real custodian's or bank's API tomorrow.
//! Services and workers hold `Arc<dyn …>`, never an adapter's type.
//!
//! The clock and the journal reader are ports too; they live below this crate because the host uses them
//! (`otcd_host::clock::Clock`, `otcd_journal::JournalReader`) and are re-exported here.

use otcd_core::catalog::{AssetCode, AssetKind};
use otcd_core::engine::custody::ChainDeposit;
use otcd_core::engine::netting::Instruction;
use otcd_core::engine::settlement::Withdrawal;
use otcd_core::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use otcd_host::clock::{Clock, ManualClock, SystemClock};
pub use otcd_journal::JournalReader;

/// What a rail says about a movement it was asked to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailStatus {
    InFlight,
    Confirmed,
    Failed(String),
}

/// A custodian (crypto) or bank (fiat) that moves the desk's money.
pub trait Rail: Send + Sync {
    /// Hands a payout to the rail and answers the rail's reference. Idempotent per withdrawal id: asking again
    /// after a crash must never pay twice.
    fn submit(&self, withdrawal: &Withdrawal, kind: AssetKind) -> Result<String, String>;
    /// Where a submitted payout stands.
    fn status(&self, withdrawal: &Withdrawal, kind: AssetKind, now: TimestampMs) -> RailStatus;
    /// Where a net settlement instruction stands: the client's delivery arriving, or the desk's payment leaving.
    fn instruction_status(&self, instruction: &Instruction, kind: AssetKind, now: TimestampMs) -> RailStatus;
    /// The confirmations the chain shows now for a deposit the custodian saw; `None` when nothing is new.
    fn deposit_confirmations(&self, deposit: &ChainDeposit) -> Option<u32>;
    /// Tells the rail's books of a movement the desk has just recorded (a payout sent or returned, a deposit or
    /// funding an operator entered, a settled instruction). A real rail books its own movements and ignores
    /// this; a simulated one has no other way to know.
    fn book(&self, movement: RailMovement) {
        let _ = movement;
    }
}

/// Which external account an asset's holdings sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RailAccount {
    /// The custodian's wallets for a crypto asset (hot and cold together: sweeps move within the custodian).
    Custody,
    /// The desk's bank account for a fiat currency.
    Bank,
}

impl RailAccount {
    pub fn for_kind(kind: AssetKind) -> Self {
        match kind {
            AssetKind::Crypto => RailAccount::Custody,
            AssetKind::Fiat => RailAccount::Bank,
        }
    }
}

/// One movement on a rail's own books, signed: positive arrives at the desk's account, negative leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RailMovement {
    /// `payout:<withdrawal id>`, `return:<withdrawal id>`, `chain:<transaction id>`, `deposit:<deposit id>`,
    /// `funding:<funding id>`, `instruction:<instruction id>`, or anything else the rail reports.
    pub reference: String,
    pub asset: AssetCode,
    pub account: RailAccount,
    /// Minor units, signed.
    #[serde(with = "amount_text")]
    pub amount: i128,
    pub at_ms: i64,
}

/// What a custodian or bank reports about the desk's accounts, for reconciliation.
pub trait RailStatements: Send + Sync {
    /// The balance the rail reports per asset and account, minor units.
    fn balances(&self) -> BTreeMap<(AssetCode, RailAccount), i128>;
    /// The rail's latest movements of an asset, newest first, at most `limit`.
    fn movements(&self, asset: AssetCode, limit: usize) -> Vec<RailMovement>;
}

/// Why a simulated rail did not book a movement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("a reference is 1 to 200 bytes")]
    Reference,
    #[error("the simulated rails hold the maximum number of movements")]
    Full,
    #[error("{0}")]
    Storage(String),
}

/// What only a simulated rail can do: book a movement the desk knows nothing about (a network fee, an
/// unannounced wire), the way to show a reconciliation break in the demo and the tests. Real rails do not
/// implement it, and the endpoints that use it answer that the desk runs without simulated rails.
pub trait RailSimulation: Send + Sync {
    /// `Ok(false)` when the reference is already on the books.
    fn book_external(&self, movement: RailMovement) -> Result<bool, BookingError>;
}

/// i128 amounts as decimal strings in the rail books' file (JSON numbers lose precision beyond 2^53).
mod amount_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i128, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i128, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One order the hedge worker asks a venue to execute: immediate-or-cancel at a limit, identified by the
/// engine's client order id (the venue's idempotency key: placing the same id twice never makes two orders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueOrder {
    pub venue: String,
    pub client_order_id: String,
    pub instrument: String,
    /// The desk's side at the venue.
    pub side: otcd_core::market::Side,
    /// Base minor units.
    pub quantity: i128,
    /// Price units of the instrument.
    pub limit_price: i128,
}

/// One execution of a venue order. `fee` in the quote asset's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueFill {
    pub fill_id: String,
    pub quantity: i128,
    pub price: i128,
    pub fee: i128,
}

/// Where a venue order stands, as the venue says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueOrderStatus {
    pub venue_order_id: String,
    /// False once the venue will fill no more of it (filled, cancelled, expired, rest of an IOC).
    pub open: bool,
    pub fills: Vec<VenueFill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    /// The venue refused the order (balance, filters, unknown symbol); it will not exist.
    #[error("rejected: {0}")]
    Rejected(String),
    /// No answer in time: the order may or may not exist; ask its status by client order id.
    #[error("no answer in time")]
    Timeout,
    /// The venue cannot be reached or answered nonsense; nothing is known.
    #[error("venue unavailable: {0}")]
    Unavailable(String),
}

/// The desk's standing at one venue: its taker fee and spendable balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueAccount {
    pub venue: String,
    pub taker_fee_centi_bps: i128,
    /// Spendable balance per asset, minor units.
    pub balances: BTreeMap<AssetCode, i128>,
}

/// Order entry at trading venues (the paper venue, a real exchange's API). Calls may block on the network:
/// the hedge worker makes them on the blocking pool.
pub trait VenueExecution: Send + Sync {
    /// The venues this adapter trades on, with fees and balances (as the venues report them).
    fn accounts(&self) -> Vec<VenueAccount>;
    /// Places an order; idempotent per client order id (a second call answers the first order's status).
    fn place(&self, order: &VenueOrder) -> Result<VenueOrderStatus, VenueError>;
    /// Asks the venue to cancel; a fill may still arrive (the status says what happened).
    fn cancel(&self, venue: &str, client_order_id: &str) -> Result<VenueOrderStatus, VenueError>;
    /// The order the venue knows by this client order id, with all of its fills; `None`: the venue never got it.
    fn status(&self, venue: &str, client_order_id: &str) -> Result<Option<VenueOrderStatus>, VenueError>;
    /// Tells the adapter of a transfer the desk has just booked (minor units, positive: arriving at the venue).
    /// A real venue sees its own deposits and withdrawals and ignores this; the paper venue has no other way to
    /// know (like `Rail::book` for the simulated rails).
    fn book_transfer(&self, venue: &str, asset: AssetCode, amount: i128) {
        let _ = (venue, asset, amount);
    }
}
