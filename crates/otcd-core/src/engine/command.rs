//! Commands: the only way the desk's state changes. Each accepted command is journaled as a [`JournalRecord`]
//! (with its time and actor) and replaying the records through [`crate::engine::Desk::execute`] rebuilds the state.
//! Commands carry already-parsed domain values: parsing and authentication happen at the edge.

use super::model::Jurisdiction;
use super::model::{KeyAlgorithm, KeyOwner, KycStatus, RequestedSize, Scope, Settlement, SkewSetting, SpreadBand};
use crate::catalog::{AssetCode, Catalog};
use crate::ids::{ClientId, ClientReference, KeyId, TierName};
use crate::market::{Side, VenueBook};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};

/// Who issued a command and from where; journaled with it for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    pub key_id: Option<KeyId>,
    pub source_ip: Option<String>,
    /// Fingerprint (hex) of the request signature and its signed timestamp: after a restart, the replay guard is
    /// seeded from recent journal records so an acknowledged request cannot be replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at_ms: Option<i64>,
}

/// One journal record: everything needed to execute a command deterministically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub at: TimestampMs,
    pub actor: Actor,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// The first record of every desk: the catalog in force and the first operator key.
    InitializeDesk {
        catalog: Catalog,
        admin_key: NewKey,
    },
    CreateClient(NewClient),
    UpdateClient {
        client_id: ClientId,
        changes: ClientChanges,
    },
    CreateKey {
        owner: KeyOwner,
        key: NewKey,
    },
    RevokeKey {
        key_id: KeyId,
    },
    PutTier(TierSpec),
    Deposit(NewDeposit),
    /// A firm RFQ quote priced by the engine from the market data carried in the command.
    RequestQuote(QuoteRequest),
    /// Two-way firm ladders for every stream subscriber of an instrument, priced from one set of books.
    RequestLadders(LadderBatchRequest),
    /// Executes a firm quote for its client (an order of type `quote`).
    AcceptQuote(super::orders::AcceptQuote),
    /// Executes now at the desk's firm price for the size, within the client's slippage tolerance.
    MarketOrder(super::orders::MarketOrder),
    /// Executes now if the firm price for the size reaches the limit, else records the order as cancelled.
    LimitOrder(super::orders::LimitOrder),
    /// Sets (or, with a zero rate, turns off) the inventory skew of an asset.
    PutSkew(SkewSetting),
    /// The desk puts its own capital into (or takes it out of) its inventory.
    FundDesk {
        asset: AssetCode,
        amount: i128,
        reference: ClientReference,
    },
    /// A market tick for an instrument with resting orders: fills those its books now reach.
    FillRestingOrders(super::resting::FillResting),
    /// Expires the `gtd` orders whose `expire_at` has come (sent by a timer).
    ExpireOrders,
    /// Cancels one of the client's live orders and releases its reservation.
    CancelOrder {
        client_id: ClientId,
        order_id: String,
    },
    /// Cancels all of the client's live orders (of one instrument when given).
    CancelAllOrders {
        client_id: ClientId,
        instrument: Option<String>,
    },
    /// Halts or resumes an instrument, and its largest fill per trade.
    PutInstrumentControl(super::controls::InstrumentControl),
    /// Engages or releases the desk-wide kill switch.
    PutKillSwitch(super::controls::KillSwitch),
    /// Sets (or with both limits absent, removes) the desk's position limits in an asset.
    PutPositionLimit(super::controls::PositionLimit),
    /// Creates or replaces the rule of a country or subdivision (the engine assigns its version).
    PutJurisdiction(super::jurisdictions::JurisdictionRule),
    /// Registers a validated, screened withdrawal destination.
    AddDestination(super::settlement::NewDestination),
    /// An operator approves, rejects or holds a destination for review.
    SetDestinationStatus {
        destination_id: String,
        status: super::settlement::DestinationStatus,
    },
    /// A list reload found the destination's address listed: rejected, with an alert.
    RescreenDestination {
        destination_id: String,
        matches: Vec<super::settlement::ScreeningMatch>,
    },
    /// Reserves the funds and records a withdrawal to an approved destination.
    RequestWithdrawal(super::settlement::NewWithdrawal),
    /// The settlement adapter reports a withdrawal submitted, completed or failed.
    SettleWithdrawal {
        withdrawal_id: String,
        outcome: super::settlement::SettlementOutcome,
    },
    /// A compliance user changes an alert's case status or adds a note.
    UpdateAlert(super::alerts::AlertUpdate),
    PutAmlRules(super::alerts::AmlRules),
    /// Nets every credit client's obligations since the last cycle into settlement instructions.
    RunNetSettlement,
    /// Records a refused command or a failed authentication in the audit trail; changes nothing else.
    Audit(super::audit::AuditEvent),
    /// One interval's failed authentications, grouped and counted (bounded); changes nothing else.
    AuditAuthFailures(super::audit::AuthFailureSummary),
    /// Gives the client its deposit address for the asset (derived once, then the same).
    AssignDepositAddress {
        client_id: ClientId,
        asset: AssetCode,
    },
    /// The custodian saw a transaction to a deposit address; credited at the asset's confirmations.
    ObserveDeposit(super::custody::DepositObservation),
    /// Hot-wallet bounds of a crypto asset: sweeps above `hot_max`, top-up requests below `hot_min`.
    PutCustodyPolicy(super::custody::CustodyPolicy),
    /// An operator approves a top-up of the hot wallet from cold.
    ApproveTopUp {
        top_up_id: String,
    },
    /// The settlement worker reports an instruction completed or failed.
    SettleInstruction {
        instruction_id: String,
        outcome: super::netting::InstructionOutcome,
    },
    /// A surveillance rule of the reports projection fired: an alert with its evidence, once per pattern.
    RaiseSurveillanceAlert(super::alerts::SurveillanceFinding),
    /// The scheduled sanctions list update failed (download, or a file that does not parse): the old lists stay
    /// in force and operators are alerted. `evidence` says what failed (1 to 2,000 bytes).
    RaiseSanctionsUpdateAlert {
        evidence: String,
    },
    CreateWebhook(super::webhooks::NewWebhook),
    DeleteWebhook {
        webhook_id: String,
    },
    /// The delivery worker's progress per webhook (batched): every event up to the position was delivered or
    /// given up on.
    AdvanceWebhooks {
        advances: Vec<(String, super::webhooks::OutboxPosition)>,
    },
    /// Sets the hedging policy of an asset.
    PutHedgingPolicy(super::hedging::HedgingPolicy),
    /// The hedge worker's view of the venues (books, fees, balances): the engine opens a hedge when the asset's
    /// position is outside its band, or routes the rest of its active hedge.
    EvaluateHedge(super::hedging::HedgeInputs),
    /// A venue's answer about a hedge's child order (acknowledged, fill, closed, rejected, timed out).
    HedgeReport(super::hedging::HedgeReport),
    /// The desk moves its holdings between its custodian or bank and a venue (one balanced transaction).
    TransferVenue(super::venue_transfers::NewVenueTransfer),
}

impl Command {
    /// The command's name as journaled (`snake_case`), for audit records and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::InitializeDesk { .. } => "initialize_desk",
            Command::CreateClient(_) => "create_client",
            Command::UpdateClient { .. } => "update_client",
            Command::CreateKey { .. } => "create_key",
            Command::RevokeKey { .. } => "revoke_key",
            Command::PutTier(_) => "put_tier",
            Command::Deposit(_) => "deposit",
            Command::RequestQuote(_) => "request_quote",
            Command::RequestLadders(_) => "request_ladders",
            Command::AcceptQuote(_) => "accept_quote",
            Command::MarketOrder(_) => "market_order",
            Command::LimitOrder(_) => "limit_order",
            Command::PutSkew(_) => "put_skew",
            Command::FundDesk { .. } => "fund_desk",
            Command::FillRestingOrders(_) => "fill_resting_orders",
            Command::ExpireOrders => "expire_orders",
            Command::CancelOrder { .. } => "cancel_order",
            Command::CancelAllOrders { .. } => "cancel_all_orders",
            Command::PutInstrumentControl(_) => "put_instrument_control",
            Command::PutKillSwitch(_) => "put_kill_switch",
            Command::PutPositionLimit(_) => "put_position_limit",
            Command::PutJurisdiction(_) => "put_jurisdiction",
            Command::AddDestination(_) => "add_destination",
            Command::SetDestinationStatus { .. } => "set_destination_status",
            Command::RescreenDestination { .. } => "rescreen_destination",
            Command::RequestWithdrawal(_) => "request_withdrawal",
            Command::SettleWithdrawal { .. } => "settle_withdrawal",
            Command::UpdateAlert(_) => "update_alert",
            Command::PutAmlRules(_) => "put_aml_rules",
            Command::RunNetSettlement => "run_net_settlement",
            Command::Audit(_) => "audit",
            Command::AuditAuthFailures(_) => "audit_auth_failures",
            Command::AssignDepositAddress { .. } => "assign_deposit_address",
            Command::ObserveDeposit(_) => "observe_deposit",
            Command::PutCustodyPolicy(_) => "put_custody_policy",
            Command::ApproveTopUp { .. } => "approve_top_up",
            Command::SettleInstruction { .. } => "settle_instruction",
            Command::RaiseSurveillanceAlert(_) => "raise_surveillance_alert",
            Command::RaiseSanctionsUpdateAlert { .. } => "raise_sanctions_update_alert",
            Command::CreateWebhook(_) => "create_webhook",
            Command::DeleteWebhook { .. } => "delete_webhook",
            Command::AdvanceWebhooks { .. } => "advance_webhooks",
            Command::PutHedgingPolicy(_) => "put_hedging_policy",
            Command::EvaluateHedge(_) => "evaluate_hedge",
            Command::HedgeReport(_) => "hedge_report",
            Command::TransferVenue(_) => "transfer_venue",
        }
    }
}

/// Market data travels inside quote commands: the journal then records exactly what each quote was priced
/// from, and replay prices it again to the same result without any market-data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRequest {
    pub client_id: ClientId,
    pub client_rfq_id: Option<ClientReference>,
    pub instrument: String,
    pub side: Side,
    pub size: RequestedSize,
    pub validity_ms: i64,
    /// Indicative USD value of the request in cents, for the tier's size bands (`None` = unknown).
    pub notional_usd: Option<i128>,
    /// The fresh venue books (trimmed to the side and depth the request needs).
    pub books: Vec<VenueBook>,
    /// When the instrument has no fresh book of its own: the two legs it is priced through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross: Option<CrossBooks>,
}

/// The legs of a cross (for ETH-EUR: ETH-USD and EUR-USD) and their fresh books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossBooks {
    pub base_leg: String,
    pub base_books: Vec<VenueBook>,
    pub quote_leg: String,
    pub quote_books: Vec<VenueBook>,
}

/// One journal record per market tick and instrument, however many clients subscribe: the books once, then
/// who asked for which sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderBatchRequest {
    pub instrument: String,
    pub validity_ms: i64,
    pub books: Vec<VenueBook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross: Option<CrossBooks>,
    pub subscribers: Vec<LadderSubscriber>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderSubscriber {
    pub client_id: ClientId,
    /// Base minor units, one two-way quote each.
    pub sizes: Vec<i128>,
    /// Indicative USD notional per size (same order), for size bands.
    pub notional_usd: Vec<Option<i128>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    pub key_id: KeyId,
    pub scopes: Vec<Scope>,
    pub algorithm: KeyAlgorithm,
    /// Sealed HMAC secret or Ed25519 public key (see [`super::model::ApiKey`]).
    #[serde(with = "hex_vec")]
    pub credential: Vec<u8>,
    pub allowed_ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewClient {
    pub name: String,
    pub jurisdiction: Jurisdiction,
    pub tier: TierName,
    pub kyc_status: KycStatus,
    pub kyc_expires_at: Option<TimestampMs>,
    pub settlement: Settlement,
    pub credit_limit_usd: Option<i128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening: Option<super::model::ClientScreening>,
}

/// A partial update: `None` leaves a field as it is. For the two optional fields, `Some(None)` clears them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub jurisdiction: Option<Jurisdiction>,
    pub tier: Option<TierName>,
    pub kyc_status: Option<KycStatus>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub kyc_expires_at: Option<Option<TimestampMs>>,
    pub settlement: Option<Settlement>,
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub credit_limit_usd: Option<Option<i128>>,
    /// A new screening result (name or jurisdiction changed, lists reloaded, or a compliance decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening: Option<super::model::ClientScreening>,
}

/// Keeps "absent" (`None`, leave as is) apart from `null` (`Some(None)`, clear) through a JSON round trip.
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierSpec {
    pub name: TierName,
    pub spread_centi_bps: i128,
    #[serde(default)]
    pub bands: Vec<SpreadBand>,
    pub trade_notional_usd_max: Option<i128>,
    pub daily_notional_usd_max: Option<i128>,
    /// `None` keeps the defaults (100 per second per class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<super::model::RateLimits>,
    /// Hundredths of a basis point of each trade's quote amount (0: no fee); at most `FEE_CENTI_BPS_MAX`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fee_centi_bps: i128,
}

fn is_zero(value: &i128) -> bool {
    *value == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDeposit {
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub amount: i128,
    pub reference: ClientReference,
    /// USD value (cents) at the edge's prices, for AML rules; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional_usd: Option<i128>,
}

mod hex_vec {
    pub(crate) use super::super::model::hex_bytes_deserialize as deserialize;
    pub(crate) use super::super::model::hex_bytes_serialize as serialize;
}
