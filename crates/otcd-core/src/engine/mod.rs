//! The sequenced engine: one state machine that every change of the desk's state goes through.
//!
//! `Desk::execute` takes a [`JournalRecord`] (a command with its time and actor) and either applies it entirely
//! or refuses it without changing anything. It performs no I/O and reads no clock, so the adapters can journal
//! each accepted record and rebuild the exact same state by replaying them.

pub mod alerts;
pub mod audit;
pub mod command;
pub mod controls;
pub mod custody;
pub mod error;
pub mod events;
mod fills;
pub mod fixtures;
pub mod flows;
pub mod hedging;
pub mod jurisdictions;
pub mod model;
pub mod netting;
pub mod orders;
mod queries;
pub mod quotes;
pub mod resting;
pub mod settlement;
pub mod venue_transfers;
pub mod webhooks;

pub use command::{
    Actor, ClientChanges, Command, CrossBooks, JournalRecord, LadderBatchRequest, LadderSubscriber, NewClient,
    NewDeposit, NewKey, QuoteRequest, TierSpec,
};
pub use error::CommandError;
pub use events::{BalanceEvent, DeskEvent, EventMark, EventScope, OrderEvent};
pub use queries::{BalanceLine, LedgerLine, LedgerQuery, Page, PAGE_LIMIT_MAX};

use crate::catalog::{AssetKind, Catalog};
use crate::ids::{ClientId, ClientReference, KeyId, TierName};
use crate::ledger::{AccountId, AccountKey, Ledger, Owner, Posting, Purpose, TransactionKind};
use crate::time::TimestampMs;
use model::{ApiKey, Client, Deposit, KeyAlgorithm, KeyOwner, KycChange, Quote, Scope, Settlement, Tier};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Spread of the `standard` tier every new desk starts with: 20 bps, in hundredths of a basis point.
pub const STANDARD_TIER_SPREAD_CENTI_BPS: i128 = 2_000;
/// Highest spread a tier may carry (100%).
pub const SPREAD_CENTI_BPS_MAX: i128 = 1_000_000;
/// Bounds that keep every collection of the desk finite.
pub const CLIENTS_MAX: usize = 1_000_000;
pub const KEYS_MAX: usize = 1_000_000;
pub const TIERS_MAX: usize = 1_000;
pub const CREDENTIAL_BYTES_MAX: usize = 256;
/// Highest per-key rate a tier may allow for one request class.
pub const RATE_LIMIT_PER_SECOND_MAX: u32 = 1_000_000;

fn is_active_admin(key: &ApiKey) -> bool {
    key.revoked_at.is_none() && key.has_scope(Scope::Admin)
}

/// What a successful command produced.
// One outcome is moved once per command; boxing the large variants would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    DeskInitialized,
    Client(Client),
    Key(ApiKey),
    Tier(Tier),
    /// `repeated`: the same deposit (same client, reference and body) was already credited; nothing moved.
    Deposit {
        deposit: Deposit,
        repeated: bool,
    },
    Quote(Quote),
    /// One entry per subscriber, in request order: its quotes, or why it got none (KYC, no fresh price).
    Ladders(Vec<Result<Vec<Quote>, CommandError>>),
    Skew(model::SkewSetting),
    Order(orders::Order),
    /// Orders a command changed: fills of a market tick, expiries, a cancel-all.
    Orders(Vec<orders::Order>),
    InstrumentControl(controls::InstrumentControl),
    KillSwitch(controls::KillSwitch),
    PositionLimit(controls::PositionLimit),
    Jurisdiction(jurisdictions::JurisdictionRule),
    Destination(settlement::Destination),
    Withdrawal(settlement::Withdrawal),
    Alert(alerts::Alert),
    AmlRules(alerts::AmlRules),
    Instructions(Vec<netting::Instruction>),
    Instruction(netting::Instruction),
    DepositAddress(custody::DepositAddress),
    ChainDeposit(custody::ChainDeposit),
    CustodyPolicy(custody::CustodyPolicy),
    TopUp(custody::TopUp),
    /// An audit record of a refusal or a failed authentication was journaled.
    Audited,
    Funding {
        funding: model::DeskFunding,
        repeated: bool,
    },
    /// A webhook as registered (or as it was when deleted).
    Webhook(webhooks::Webhook),
    WebhooksAdvanced,
    HedgingPolicy(hedging::HedgingPolicy),
    /// A hedge opened, routed again, or changed by a venue report.
    Hedge(Box<hedging::Hedge>),
    /// `EvaluateHedge` found nothing to do (why); never journaled.
    HedgeIdle(String),
    /// A venue transfer as booked (or as first booked, for a repeat).
    VenueTransfer(venue_transfers::VenueTransfer),
}

/// The result of an accepted command. `changed == false` means nothing changed (an idempotent repeat) and the
/// record need not be journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub outcome: Outcome,
    pub changed: bool,
}

impl Executed {
    fn changed(outcome: Outcome) -> Self {
        Self { outcome, changed: true }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Desk {
    catalog: Option<Catalog>,
    ledger: Ledger,
    clients: BTreeMap<ClientId, Client>,
    keys: BTreeMap<KeyId, ApiKey>,
    tiers: BTreeMap<TierName, Tier>,
    /// In chunks: a `Vec` would copy the whole history (and stall the engine) each time it doubles.
    deposits: crate::chunked_vec::ChunkedVec<Deposit>,
    quotes: quotes::QuoteBook,
    #[serde(default)]
    orders: orders::OrderBook,
    #[serde(default)]
    credit_used: BTreeMap<ClientId, i128>,
    #[serde(default)]
    skews: BTreeMap<crate::catalog::AssetCode, model::SkewSetting>,
    #[serde(default)]
    fundings: Vec<model::DeskFunding>,
    #[serde(default)]
    instrument_controls: BTreeMap<String, controls::InstrumentControl>,
    #[serde(default)]
    kill_switch: controls::KillSwitch,
    #[serde(default)]
    position_limits: BTreeMap<crate::catalog::AssetCode, controls::PositionLimit>,
    #[serde(default)]
    jurisdictions: BTreeMap<model::Jurisdiction, jurisdictions::JurisdictionRule>,
    #[serde(default)]
    settlement: settlement::SettlementBook,
    #[serde(default)]
    alerts: Vec<alerts::Alert>,
    #[serde(default)]
    aml_rules: alerts::AmlRules,
    #[serde(default)]
    netting: netting::NettingBook,
    #[serde(default)]
    custody: custody::CustodyBook,
    #[serde(default)]
    audit_events: std::collections::VecDeque<audit::AuditEntry>,
    #[serde(default)]
    webhooks: webhooks::WebhookBook,
    #[serde(default)]
    hedging: hedging::HedgeBook,
    #[serde(default)]
    venue_transfers: Vec<venue_transfers::VenueTransfer>,
    /// The journal seq of the last record this desk executed (aligned with the snapshot's seq at recovery:
    /// snapshots written before it existed hold 0).
    #[serde(default)]
    seq: u64,
    clients_created: u64,
    /// Time of the last executed command; command times never go backwards inside the engine.
    clock: TimestampMs,
    /// Each client's deposits by reference (rebuilt from `deposits`). Per client, so an idempotency check
    /// compares references within one client's tree instead of (client, reference) pairs across the desk's whole
    /// history (string compares were the engine's largest cost per deposit). The per-client trees are B-trees,
    /// not hash maps: they grow with every deposit for the desk's lifetime, and a hash map's rehash-everything
    /// growth would stall the engine once they hold millions; the outer map grows only with clients.
    #[serde(skip)]
    deposit_index: HashMap<ClientId, BTreeMap<ClientReference, usize>>,
    /// Each client's deposits and alerts as the AML rules see them (rebuilt from `deposits` and `alerts`).
    #[serde(skip)]
    flows: flows::FlowsIndex,
    /// Desk fundings by reference (rebuilt from `fundings`), so a funding's idempotency check is a lookup.
    #[serde(skip)]
    funding_index: BTreeMap<ClientReference, usize>,
    /// Venue transfers by reference (rebuilt from `venue_transfers`).
    #[serde(skip)]
    venue_transfer_index: BTreeMap<ClientReference, usize>,
    /// Keys that are active and carry the admin scope (rebuilt from `keys`), so a revocation need not count them.
    #[serde(skip)]
    active_admin_keys: usize,
    /// Surveillance alerts by `dedup_key` (rebuilt from `alerts`).
    #[serde(skip)]
    surveillance_keys: HashMap<String, usize>,
}

impl Desk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds derived indexes after loading a snapshot.
    pub fn rebuild_indexes(&mut self) {
        self.ledger.rebuild_indexes();
        self.rebuild_indexes_but_ledger();
    }

    /// [`Desk::rebuild_indexes`] but for the ledger's, which a recovery that decodes the ledger apart rebuilds
    /// with it ([`Desk::put_decoded_ledger`]).
    pub fn rebuild_indexes_but_ledger(&mut self) {
        self.quotes.rebuild_indexes();
        self.orders.rebuild_indexes();
        self.settlement.rebuild_indexes();
        self.deposit_index = HashMap::new();
        for (position, deposit) in self.deposits.iter().enumerate() {
            let references = self.deposit_index.entry(deposit.client_id.clone()).or_default();
            references.insert(deposit.reference.clone(), position);
        }
        self.rebuild_surveillance_keys();
        self.flows.rebuild(&self.deposits, &self.alerts);
        self.funding_index =
            self.fundings.iter().enumerate().map(|(position, funding)| (funding.reference.clone(), position)).collect();
        self.venue_transfer_index = self
            .venue_transfers
            .iter()
            .enumerate()
            .map(|(position, transfer)| (transfer.reference.clone(), position))
            .collect();
        self.active_admin_keys = self.keys.values().filter(|key| is_active_admin(key)).count();
        self.custody.rebuild_indexes();
    }

    /// Puts in the ledger of a snapshot decoded apart from the rest of it (a recovery decodes the two on two
    /// threads), its indexes rebuilt; the desk itself was decoded with an empty ledger in its place, which this
    /// returns. The derived `Deserialize` decodes each field on its own, so the result is the desk the whole
    /// snapshot decodes to.
    pub fn put_decoded_ledger(&mut self, ledger: Ledger) -> Ledger {
        std::mem::replace(&mut self.ledger, ledger)
    }

    pub fn is_initialized(&self) -> bool {
        self.catalog.is_some()
    }

    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The journal seq of the last record executed.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sets the seq of a desk loaded from the snapshot taken at `seq` (recovery).
    pub fn align_seq(&mut self, seq: u64) {
        assert!(self.seq == 0 || self.seq == seq, "a snapshot's desk at seq {} claims seq {seq}", self.seq);
        self.seq = seq;
    }

    /// Executes one command at its recorded time. Refusals change nothing.
    pub fn execute(&mut self, record: &JournalRecord) -> Result<Executed, CommandError> {
        self.execute_deriving(record, None).map(|(executed, _)| executed)
    }

    /// Executes a record; derives its events in `publish`'s scope when asked, or the client-visible ones when a
    /// webhook may want them (they go to the webhook outbox, which is state: so replay appends the same, and
    /// webhooks never take desk-level ledger events). A changed record takes the next seq.
    fn execute_deriving(
        &mut self,
        record: &JournalRecord,
        publish: Option<EventScope>,
    ) -> Result<(Executed, Vec<events::DeskEvent>), CommandError> {
        let mark = self.event_mark();
        let executed = self.execute_command(record)?;
        if !executed.changed {
            return Ok((executed, Vec::new()));
        }
        self.seq += 1;
        let hooked = self.webhooks.is_active();
        let scope = publish.or(hooked.then_some(EventScope::CLIENT_VISIBLE));
        let events = match scope {
            Some(scope) => self.events_since_in(&mark, &executed.outcome, scope),
            None => Vec::new(),
        };
        if hooked {
            let at = self.clock;
            self.webhooks.append(self.seq, at, &events);
        }
        Ok((executed, events))
    }

    fn execute_command(&mut self, record: &JournalRecord) -> Result<Executed, CommandError> {
        // Wall clocks step backwards; the engine's time never does, so expiries stay monotonic.
        let at = record.at.max(self.clock);
        let result = match (&record.command, self.is_initialized()) {
            (Command::InitializeDesk { catalog, admin_key }, false) => self.initialize(at, catalog, admin_key),
            (Command::InitializeDesk { .. }, true) => Err(CommandError::AlreadyInitialized),
            (_, false) => Err(CommandError::NotInitialized),
            (Command::CreateClient(new_client), true) => self.create_client(at, &record.actor, new_client),
            (Command::UpdateClient { client_id, changes }, true) => {
                self.update_client(at, &record.actor, client_id, changes)
            }
            (Command::CreateKey { owner, key }, true) => self.create_key(at, &record.actor, owner, key),
            (Command::RevokeKey { key_id }, true) => self.revoke_key(at, &record.actor, key_id),
            (Command::PutTier(spec), true) => self.put_tier(at, spec),
            (Command::Deposit(deposit), true) => self.deposit(at, &record.actor, deposit),
            (Command::RequestQuote(request), true) => self.request_quote(at, request),
            (Command::RequestLadders(request), true) => self.request_ladders(at, request),
            (Command::PutSkew(setting), true) => self.put_skew(setting),
            (Command::AcceptQuote(request), true) => self.accept_quote(at, request),
            (Command::MarketOrder(request), true) => self.market_order(at, request),
            (Command::LimitOrder(request), true) => self.limit_order(at, request),
            (Command::FundDesk { asset, amount, reference }, true) => self.fund_desk(at, *asset, *amount, reference),
            (Command::FillRestingOrders(tick), true) => self.fill_resting_orders(at, tick),
            (Command::ExpireOrders, true) => self.expire_orders(at),
            (Command::CancelOrder { client_id, order_id }, true) => self.cancel_order(at, client_id, order_id),
            (Command::CancelAllOrders { client_id, instrument }, true) => {
                self.cancel_all_orders(at, client_id, instrument.as_deref())
            }
            (Command::PutInstrumentControl(control), true) => self.put_instrument_control(control),
            (Command::PutKillSwitch(switch), true) => self.put_kill_switch(switch),
            (Command::PutPositionLimit(limit), true) => self.put_position_limit(limit),
            (Command::PutJurisdiction(rule), true) => self.put_jurisdiction(rule),
            (Command::AddDestination(new), true) => self.add_destination(at, new),
            (Command::SetDestinationStatus { destination_id, status }, true) => {
                self.set_destination_status(at, destination_id, *status)
            }
            (Command::RescreenDestination { destination_id, matches }, true) => {
                self.rescreen_destination(at, destination_id, matches)
            }
            (Command::RequestWithdrawal(new), true) => self.request_withdrawal(at, new),
            (Command::SettleWithdrawal { withdrawal_id, outcome }, true) => {
                self.settle_withdrawal(at, withdrawal_id, outcome)
            }
            (Command::UpdateAlert(update), true) => {
                self.update_alert(at, record.actor.key_id.as_ref().map(ToString::to_string), update)
            }
            (Command::PutAmlRules(rules), true) => self.put_aml_rules(rules),
            (Command::RunNetSettlement, true) => self.run_net_settlement(at),
            (Command::Audit(event), true) => self.record_audit(at, &record.actor, event),
            (Command::AuditAuthFailures(summary), true) => self.record_auth_failures(at, summary),
            (Command::AssignDepositAddress { client_id, asset }, true) => {
                self.assign_deposit_address(at, client_id, *asset)
            }
            (Command::ObserveDeposit(seen), true) => self.observe_deposit(at, seen),
            (Command::PutCustodyPolicy(policy), true) => self.put_custody_policy(at, policy),
            (Command::ApproveTopUp { top_up_id }, true) => {
                self.approve_top_up(at, record.actor.key_id.as_ref().map(ToString::to_string), top_up_id)
            }
            (Command::SettleInstruction { instruction_id, outcome }, true) => {
                self.settle_instruction(at, instruction_id, outcome)
            }
            (Command::RaiseSurveillanceAlert(finding), true) => self.raise_surveillance_alert(at, finding),
            (Command::RaiseSanctionsUpdateAlert { evidence }, true) => self.raise_sanctions_update_alert(at, evidence),
            (Command::CreateWebhook(new), true) => self.create_webhook(at, new),
            (Command::DeleteWebhook { webhook_id }, true) => self.delete_webhook(webhook_id),
            (Command::AdvanceWebhooks { advances }, true) => self.advance_webhooks(advances),
            (Command::PutHedgingPolicy(policy), true) => self.put_hedging_policy(policy),
            (Command::EvaluateHedge(inputs), true) => self.evaluate_hedge(at, inputs),
            (Command::HedgeReport(report), true) => self.hedge_report(at, report),
            (Command::TransferVenue(transfer), true) => self.transfer_venue(at, transfer),
        };
        if result.as_ref().is_ok_and(|executed| executed.changed) {
            self.clock = at;
            // Only journaled commands prune, so replay prunes the same quotes at the same points.
            self.quotes.prune(at);
        }
        if cfg!(debug_assertions) {
            if let Err(broken) = self.ledger.check_invariants() {
                panic!("ledger invariant broken after {:?}: {broken}", record.command);
            }
        }
        result
    }

    fn initialize(&mut self, at: TimestampMs, catalog: &Catalog, admin_key: &NewKey) -> Result<Executed, CommandError> {
        validate_new_key(&KeyOwner::Desk, admin_key)?;
        self.catalog = Some(catalog.clone());
        let standard = TierName::parse("standard").expect("valid tier name");
        let tier = Tier {
            name: standard.clone(),
            spread_centi_bps: STANDARD_TIER_SPREAD_CENTI_BPS,
            bands: Vec::new(),
            trade_notional_usd_max: None,
            daily_notional_usd_max: None,
            rate_limits: model::RateLimits::default(),
            fee_centi_bps: 0,
            updated_at: at,
        };
        self.tiers.insert(standard, tier);
        self.insert_key(at, None, KeyOwner::Desk, admin_key);
        Ok(Executed::changed(Outcome::DeskInitialized))
    }

    fn create_client(&mut self, at: TimestampMs, actor: &Actor, new: &NewClient) -> Result<Executed, CommandError> {
        if self.clients.len() >= CLIENTS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of clients"));
        }
        validate_name(&new.name)?;
        self.require_tier(&new.tier)?;
        validate_credit(new.settlement, new.credit_limit_usd)?;
        let client_id = ClientId::parse(&format!("cl_{:08}", self.clients_created + 1)).expect("valid id");
        let client = Client {
            client_id: client_id.clone(),
            name: new.name.clone(),
            jurisdiction: new.jurisdiction.clone(),
            tier: new.tier.clone(),
            kyc_status: new.kyc_status,
            kyc_expires_at: new.kyc_expires_at,
            settlement: new.settlement,
            credit_limit_usd: new.credit_limit_usd,
            created_at: at,
            updated_at: at,
            kyc_history: vec![KycChange {
                at,
                by: actor.key_id.clone(),
                status: new.kyc_status,
                expires_at: new.kyc_expires_at,
            }],
            screening: new.screening.clone(),
        };
        let mut client = client;
        if client.screening.as_ref().is_some_and(model::ClientScreening::needs_decision) {
            // A possible match keeps the client pending until compliance decides (and raises an alert).
            client.kyc_status = model::KycStatus::Pending;
            client.kyc_history[0].status = model::KycStatus::Pending;
            self.raise_screening_alert(at, &client);
        }
        self.clients_created += 1;
        self.clients.insert(client_id, client.clone());
        Ok(Executed::changed(Outcome::Client(client)))
    }

    fn update_client(
        &mut self,
        at: TimestampMs,
        actor: &Actor,
        client_id: &ClientId,
        changes: &ClientChanges,
    ) -> Result<Executed, CommandError> {
        let current = self.clients.get(client_id).ok_or_else(|| CommandError::not_found("client"))?.clone();
        let mut updated = current.clone();
        if let Some(name) = &changes.name {
            validate_name(name)?;
            updated.name = name.clone();
        }
        if let Some(tier) = &changes.tier {
            self.require_tier(tier)?;
            updated.tier = tier.clone();
        }
        if let Some(jurisdiction) = &changes.jurisdiction {
            updated.jurisdiction = jurisdiction.clone();
        }
        let rescreened = changes.screening.is_some() && changes.screening != current.screening;
        if let Some(screening) = &changes.screening {
            updated.screening = Some(screening.clone());
        }
        let needs_decision = updated.screening.as_ref().is_some_and(model::ClientScreening::needs_decision);
        if needs_decision && changes.kyc_status == Some(model::KycStatus::Approved) {
            return Err(CommandError::conflict(
                "the client's sanctions screening needs a compliance decision before KYC can be approved",
            ));
        }
        updated.kyc_status = changes.kyc_status.unwrap_or(updated.kyc_status);
        updated.kyc_expires_at = changes.kyc_expires_at.unwrap_or(updated.kyc_expires_at);
        updated.settlement = changes.settlement.unwrap_or(updated.settlement);
        updated.credit_limit_usd = match (changes.credit_limit_usd, changes.settlement) {
            (Some(limit), _) => limit,
            (None, Some(Settlement::Prefunded)) => None,
            (None, _) => updated.credit_limit_usd,
        };
        validate_credit(updated.settlement, updated.credit_limit_usd)?;
        if updated.settlement != current.settlement {
            self.set_available_floors(client_id, updated.settlement)?;
        }
        if (updated.kyc_status, updated.kyc_expires_at) != (current.kyc_status, current.kyc_expires_at) {
            updated.kyc_history.push(KycChange {
                at,
                by: actor.key_id.clone(),
                status: updated.kyc_status,
                expires_at: updated.kyc_expires_at,
            });
            if updated.kyc_history.len() > model::KYC_HISTORY_MAX {
                updated.kyc_history.remove(0);
            }
        }
        if updated == current {
            return Ok(Executed { outcome: Outcome::Client(updated), changed: false });
        }
        if rescreened && needs_decision {
            self.raise_screening_alert(at, &updated);
        }
        updated.updated_at = at;
        self.clients.insert(client_id.clone(), updated.clone());
        Ok(Executed::changed(Outcome::Client(updated)))
    }

    /// Prefunded clients may never spend below zero; credit clients are bounded by their limit in USD instead,
    /// which the pre-trade checks enforce (a per-account floor cannot express a limit across assets).
    fn set_available_floors(&mut self, client_id: &ClientId, settlement: Settlement) -> Result<(), CommandError> {
        let floor = available_floor(settlement);
        let owner = Owner::Client(client_id.clone());
        let accounts: Vec<AccountId> = self
            .catalog()
            .map(|catalog| catalog.assets().iter().map(|asset| asset.code).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|asset| {
                self.ledger.account_id(&AccountKey { owner: owner.clone(), asset, purpose: Purpose::Available })
            })
            .collect();
        if let Some(negative) =
            accounts.iter().find(|account| floor.is_some_and(|floor| self.ledger.balance(**account) < floor))
        {
            let asset = self.ledger.account(*negative).map(|account| account.key.asset.to_string()).unwrap_or_default();
            return Err(CommandError::conflict(format!(
                "the client owes {asset}; settle it before switching to prefunded"
            )));
        }
        for account in accounts {
            self.ledger.set_floor(account, floor)?;
        }
        Ok(())
    }

    fn create_key(
        &mut self,
        at: TimestampMs,
        actor: &Actor,
        owner: &KeyOwner,
        key: &NewKey,
    ) -> Result<Executed, CommandError> {
        validate_new_key(owner, key)?;
        if let KeyOwner::Client(client_id) = owner {
            if !self.clients.contains_key(client_id) {
                return Err(CommandError::not_found("client"));
            }
        }
        if self.keys.contains_key(&key.key_id) {
            return Err(CommandError::conflict("a key with this id exists"));
        }
        if self.keys.len() >= KEYS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of keys"));
        }
        let created = self.insert_key(at, actor.key_id.clone(), owner.clone(), key);
        Ok(Executed::changed(Outcome::Key(created)))
    }

    fn insert_key(&mut self, at: TimestampMs, created_by: Option<KeyId>, owner: KeyOwner, key: &NewKey) -> ApiKey {
        let mut scopes = key.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let record = ApiKey {
            key_id: key.key_id.clone(),
            owner,
            scopes,
            algorithm: key.algorithm,
            credential: key.credential.clone(),
            allowed_ips: key.allowed_ips.clone(),
            created_at: at,
            created_by,
            revoked_at: None,
        };
        if is_active_admin(&record) {
            self.active_admin_keys += 1;
        }
        if let Some(replaced) = self.keys.insert(record.key_id.clone(), record.clone()) {
            self.active_admin_keys -= usize::from(is_active_admin(&replaced));
        }
        record
    }

    fn revoke_key(&mut self, at: TimestampMs, actor: &Actor, key_id: &KeyId) -> Result<Executed, CommandError> {
        let key = self.keys.get(key_id).ok_or_else(|| CommandError::not_found("key"))?;
        if key.revoked_at.is_some() {
            return Ok(Executed { outcome: Outcome::Key(key.clone()), changed: false });
        }
        debug_assert_eq!(
            self.active_admin_keys,
            self.keys.values().filter(|other| is_active_admin(other)).count(),
            "the count follows every key change"
        );
        if is_active_admin(key) && self.active_admin_keys == 1 {
            return Err(CommandError::conflict("this is the desk's last active admin key; create another first"));
        }
        let _ = actor;
        let key = self.keys.get_mut(key_id).expect("checked above");
        if is_active_admin(key) {
            self.active_admin_keys -= 1;
        }
        key.revoked_at = Some(at);
        Ok(Executed::changed(Outcome::Key(key.clone())))
    }

    fn put_tier(&mut self, at: TimestampMs, spec: &TierSpec) -> Result<Executed, CommandError> {
        if !(0..=SPREAD_CENTI_BPS_MAX).contains(&spec.spread_centi_bps) {
            return Err(CommandError::invalid("spread_bps", "must be between 0 and 10000"));
        }
        for (field, limit) in [
            ("trade_notional_usd_max", spec.trade_notional_usd_max),
            ("daily_notional_usd_max", spec.daily_notional_usd_max),
        ] {
            if limit.is_some_and(|limit| limit <= 0) {
                return Err(CommandError::invalid(field, "must be greater than zero"));
            }
        }
        if !self.tiers.contains_key(&spec.name) && self.tiers.len() >= TIERS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of tiers"));
        }
        validate_bands(&spec.bands)?;
        if !(0..=crate::market::pricing::FEE_CENTI_BPS_MAX).contains(&spec.fee_centi_bps) {
            return Err(CommandError::invalid("fee_bps", "must be from 0 to 1000 bps"));
        }
        if let Some(limits) = spec.rate_limits {
            let all = [limits.reads, limits.rfq, limits.orders, limits.withdrawals];
            if all.iter().any(|per_second| !(1..=RATE_LIMIT_PER_SECOND_MAX).contains(per_second)) {
                return Err(CommandError::invalid("rate_limits", "each class allows 1 to 1000000 requests per second"));
            }
        }
        let tier = Tier {
            name: spec.name.clone(),
            spread_centi_bps: spec.spread_centi_bps,
            bands: spec.bands.clone(),
            trade_notional_usd_max: spec.trade_notional_usd_max,
            daily_notional_usd_max: spec.daily_notional_usd_max,
            rate_limits: spec.rate_limits.unwrap_or_default(),
            fee_centi_bps: spec.fee_centi_bps,
            updated_at: at,
        };
        if let Some(existing) = self.tiers.get(&spec.name) {
            if (Tier { updated_at: existing.updated_at, ..tier.clone() }) == *existing {
                return Ok(Executed { outcome: Outcome::Tier(existing.clone()), changed: false });
            }
        }
        self.tiers.insert(spec.name.clone(), tier.clone());
        Ok(Executed::changed(Outcome::Tier(tier)))
    }

    fn deposit(&mut self, at: TimestampMs, actor: &Actor, new: &NewDeposit) -> Result<Executed, CommandError> {
        let client = self.clients.get(&new.client_id).ok_or_else(|| CommandError::not_found("client"))?;
        let asset = self.catalog().and_then(|catalog| catalog.asset(&new.asset)).cloned();
        let asset = asset.ok_or_else(|| CommandError::invalid("asset", "is not in the catalog"))?;
        if new.amount <= 0 {
            return Err(CommandError::invalid("amount", "must be greater than zero"));
        }
        asset.check_amount(new.amount).map_err(|detail| CommandError::invalid("amount", detail))?;
        let known = self.deposit_index.get(&new.client_id).and_then(|references| references.get(&new.reference));
        if let Some(position) = known {
            let original = &self.deposits[*position];
            if original.asset != new.asset || original.amount != new.amount {
                return Err(CommandError::conflict("this reference was used for a different deposit"));
            }
            return Ok(Executed {
                outcome: Outcome::Deposit { deposit: original.clone(), repeated: true },
                changed: false,
            });
        }
        let floor = available_floor(client.settlement);
        self.check_deposit_fits(new, &asset)?;
        let available = self.ledger.open_account(
            AccountKey { owner: Owner::Client(new.client_id.clone()), asset: new.asset, purpose: Purpose::Available },
            floor,
        );
        let holding = self.ledger.open_account(
            AccountKey { owner: Owner::Desk, asset: new.asset, purpose: holding_purpose(asset.kind) },
            None,
        );
        let postings =
            [Posting { account: holding, amount: -new.amount }, Posting { account: available, amount: new.amount }];
        let kind = TransactionKind::Deposit { reference: new.reference.to_string() };
        let transaction = self.ledger.apply(at, kind, &postings)?;
        let deposit = Deposit {
            deposit_id: format!("dep_{:010}", self.deposits.len() + 1),
            client_id: new.client_id.clone(),
            asset: new.asset,
            amount: new.amount,
            reference: new.reference.clone(),
            transaction,
            created_at: at,
            created_by: actor.key_id.clone(),
            notional_usd: new.notional_usd,
        };
        let position = self.deposits.len();
        // `get_mut` first: the client's id is cloned only for its first deposit.
        if let Some(references) = self.deposit_index.get_mut(&new.client_id) {
            references.insert(new.reference.clone(), position);
        } else {
            let references = BTreeMap::from([(new.reference.clone(), position)]);
            self.deposit_index.insert(new.client_id.clone(), references);
        }
        self.flows.record_deposit(position, &deposit);
        self.deposits.push(deposit.clone());
        self.after_deposit(at, position);
        if asset.kind == AssetKind::Crypto {
            self.apply_custody_policy(at, new.asset)?;
        }
        Ok(Executed::changed(Outcome::Deposit { deposit, repeated: false }))
    }

    fn put_skew(&mut self, setting: &model::SkewSetting) -> Result<Executed, CommandError> {
        if self.catalog().and_then(|catalog| catalog.asset(&setting.asset)).is_none() {
            return Err(CommandError::invalid("asset", "is not in the catalog"));
        }
        if setting.centi_bps_per_unit < 0 || !(0..=SPREAD_CENTI_BPS_MAX).contains(&setting.max_centi_bps) {
            return Err(CommandError::invalid("bps_per_unit", "rates and caps must be between 0 and 10000 bps"));
        }
        if self.skews.get(&setting.asset) == Some(setting) {
            return Ok(Executed { outcome: Outcome::Skew(setting.clone()), changed: false });
        }
        self.skews.insert(setting.asset, setting.clone());
        Ok(Executed::changed(Outcome::Skew(setting.clone())))
    }

    /// The desk's inventory position in `asset` (minor units; positive = long).
    pub fn desk_position(&self, asset: crate::catalog::AssetCode) -> i128 {
        let key = AccountKey { owner: Owner::Desk, asset, purpose: Purpose::Inventory };
        self.ledger.account_id(&key).map_or(0, |account| self.ledger.balance(account))
    }

    /// Current inventory skew for instruments with `asset` as base, centi-bps (0 when no skew is set).
    pub fn skew_for(&self, asset: crate::catalog::AssetCode) -> i128 {
        let Some(setting) = self.skews.get(&asset) else { return 0 };
        let scale = self.catalog().and_then(|catalog| catalog.asset(&asset)).map_or(0, |asset| asset.scale);
        setting.skew_for(self.desk_position(asset), scale)
    }

    pub fn skews(&self) -> impl Iterator<Item = &model::SkewSetting> {
        self.skews.values()
    }

    fn fund_desk(
        &mut self,
        at: TimestampMs,
        asset: crate::catalog::AssetCode,
        amount: i128,
        reference: &ClientReference,
    ) -> Result<Executed, CommandError> {
        let entry = self.catalog().and_then(|catalog| catalog.asset(&asset)).cloned();
        let entry = entry.ok_or_else(|| CommandError::invalid("asset", "is not in the catalog"))?;
        let kind = entry.kind;
        if amount == 0 {
            return Err(CommandError::invalid("amount", "must not be zero"));
        }
        entry.check_amount(amount).map_err(|detail| CommandError::invalid("amount", detail))?;
        if let Some(existing) = self.funding_index.get(reference).map(|position| &self.fundings[*position]) {
            if existing.asset != asset || existing.amount != amount {
                return Err(CommandError::conflict("this reference was used for a different funding"));
            }
            return Ok(Executed {
                outcome: Outcome::Funding { funding: existing.clone(), repeated: true },
                changed: false,
            });
        }
        let balance = |purpose| {
            self.ledger
                .account_id(&AccountKey { owner: Owner::Desk, asset, purpose })
                .map_or(0, |id| self.ledger.balance(id))
        };
        let inventory_after = balance(Purpose::Inventory).checked_add(amount);
        if inventory_after.is_none() || balance(holding_purpose(kind)).checked_sub(amount).is_none() {
            return Err(CommandError::invalid("amount", "is out of range"));
        }
        if let Some(inventory_after) = inventory_after {
            entry.check_balance(inventory_after).map_err(|detail| CommandError::invalid("amount", detail))?;
        }
        let inventory =
            self.ledger.open_account(AccountKey { owner: Owner::Desk, asset, purpose: Purpose::Inventory }, None);
        let holding =
            self.ledger.open_account(AccountKey { owner: Owner::Desk, asset, purpose: holding_purpose(kind) }, None);
        let postings = [Posting { account: holding, amount: -amount }, Posting { account: inventory, amount }];
        let transaction =
            self.ledger.apply(at, TransactionKind::Funding { reference: reference.to_string() }, &postings)?;
        let funding = model::DeskFunding {
            funding_id: format!("fund_{:08}", self.fundings.len() + 1),
            asset,
            amount,
            reference: reference.clone(),
            transaction,
            created_at: at,
        };
        self.funding_index.insert(reference.clone(), self.fundings.len());
        self.fundings.push(funding.clone());
        Ok(Executed::changed(Outcome::Funding { funding, repeated: false }))
    }

    /// Refuses a deposit whose balances would overflow before any account is opened, so a refused deposit
    /// changes nothing (opening accounts would shift every later account id on replay).
    fn check_deposit_fits(&self, new: &NewDeposit, asset: &crate::catalog::Asset) -> Result<(), CommandError> {
        let kind = asset.kind;
        let balance = |key: AccountKey| self.ledger.account_id(&key).map_or(0, |account| self.ledger.balance(account));
        let available = balance(AccountKey {
            owner: Owner::Client(new.client_id.clone()),
            asset: new.asset,
            purpose: Purpose::Available,
        });
        let holding = balance(AccountKey { owner: Owner::Desk, asset: new.asset, purpose: holding_purpose(kind) });
        let Some(available_after) = available.checked_add(new.amount) else {
            return Err(CommandError::invalid("amount", "is out of range"));
        };
        if holding.checked_sub(new.amount).is_none() {
            return Err(CommandError::invalid("amount", "is out of range"));
        }
        asset.check_balance(available_after).map_err(|detail| CommandError::invalid("amount", detail))
    }

    fn require_tier(&self, tier: &TierName) -> Result<(), CommandError> {
        if self.tiers.contains_key(tier) {
            Ok(())
        } else {
            Err(CommandError::invalid(
                "tier",
                format!("unknown tier {tier:?}; create it with PUT /v1/admin/tiers/{tier}"),
            ))
        }
    }
}

fn validate_bands(bands: &[model::SpreadBand]) -> Result<(), CommandError> {
    if bands.len() > model::TIER_BANDS_MAX {
        return Err(CommandError::invalid("bands", "at most 16 bands"));
    }
    if bands
        .iter()
        .any(|band| band.notional_usd_min <= 0 || !(0..=SPREAD_CENTI_BPS_MAX).contains(&band.spread_centi_bps))
    {
        return Err(CommandError::invalid(
            "bands",
            "each band needs a positive notional_usd_min and a spread between 0 and 10000 bps",
        ));
    }
    if !bands.windows(2).all(|pair| pair[0].notional_usd_min < pair[1].notional_usd_min) {
        return Err(CommandError::invalid("bands", "must be in ascending order of notional_usd_min"));
    }
    Ok(())
}

impl Desk {
    /// The desk's account that holds a catalog asset ([`holding_purpose`] of its kind).
    pub(super) fn holding_purpose_of(&self, asset: crate::catalog::AssetCode) -> Result<Purpose, CommandError> {
        let kind = self.catalog().and_then(|catalog| catalog.asset(&asset)).map(|asset| asset.kind);
        kind.map(holding_purpose).ok_or(CommandError::NotInitialized)
    }
}

/// Where the desk holds deposits of an asset: crypto at its custodian, fiat at its bank.
pub(super) fn holding_purpose(kind: AssetKind) -> Purpose {
    match kind {
        AssetKind::Crypto => Purpose::Custody,
        AssetKind::Fiat => Purpose::Bank,
    }
}

pub(super) fn available_floor(settlement: Settlement) -> Option<i128> {
    match settlement {
        Settlement::Prefunded => Some(0),
        Settlement::Credit => None,
    }
}

fn validate_name(name: &str) -> Result<(), CommandError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > model::CLIENT_NAME_LENGTH_MAX || name.chars().any(char::is_control)
    {
        return Err(CommandError::invalid("name", "must be 1 to 200 printable characters"));
    }
    Ok(())
}

fn validate_credit(settlement: Settlement, credit_limit_usd: Option<i128>) -> Result<(), CommandError> {
    match (settlement, credit_limit_usd) {
        (Settlement::Prefunded, Some(_)) => {
            Err(CommandError::invalid("credit_limit_usd", "only credit clients have a credit limit"))
        }
        (Settlement::Credit, Some(limit)) if limit < 0 => {
            Err(CommandError::invalid("credit_limit_usd", "must not be negative"))
        }
        _ => Ok(()),
    }
}

fn validate_new_key(owner: &KeyOwner, key: &NewKey) -> Result<(), CommandError> {
    if key.scopes.is_empty() {
        return Err(CommandError::invalid("scopes", "must name at least one scope"));
    }
    if matches!(owner, KeyOwner::Client(_)) && key.scopes.contains(&Scope::Admin) {
        return Err(CommandError::invalid("scopes", "client keys cannot have the admin scope"));
    }
    if key.allowed_ips.len() > model::ALLOWED_IPS_MAX {
        return Err(CommandError::invalid("allowed_ips", "at most 32 entries"));
    }
    let credential_valid = match key.algorithm {
        KeyAlgorithm::Ed25519 => key.credential.len() == 32,
        KeyAlgorithm::Hmac => !key.credential.is_empty() && key.credential.len() <= CREDENTIAL_BYTES_MAX,
    };
    if !credential_valid {
        return Err(CommandError::invalid("public_key", "is not a valid key for the algorithm"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
