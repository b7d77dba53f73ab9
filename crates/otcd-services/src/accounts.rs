//! Clients, their keys and tiers, deposits, and the desk's own capital and skew: the operator's account
//! services. Clients are screened against the loaded sanctions lists here, and the result travels inside the
//! command; key commands keep the key registry current before their answer leaves.

use crate::ports::{RailAccount, RailMovement};
use crate::{DeskServices, Done, ServiceError, ServiceResult};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::{Actor, ClientChanges, Command, NewClient, NewDeposit, NewKey, Outcome, TierSpec};
use otcd_core::ids::{ClientId, ClientReference, KeyId};
use otcd_core::model::{
    ApiKey, Client, ClientScreening, Deposit, DeskFunding, KeyAlgorithm, KeyOwner, Scope, ScreeningStatus, Settlement,
    SkewSetting, Tier,
};
use otcd_host::runner::{SubmitError, SUBMIT_MANY_MAX};
use otcd_host::secrets::{new_hmac_secret, new_key_id};

/// Deposits in one [`DeskServices::deposit_many`] request: a bank statement's or a custodian's batch. Bounded so
/// that one request holds the engine thread for at most a few milliseconds, and so that its body stays small
/// enough to read in one piece (about 200 bytes a deposit).
pub const DEPOSIT_BATCH_DEPOSITS_MAX: usize = 1_000;
const _: () = assert!(DEPOSIT_BATCH_DEPOSITS_MAX <= SUBMIT_MANY_MAX);

/// A deposit to credit, already parsed into domain values by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositOrder {
    pub client_id: ClientId,
    pub asset: AssetCode,
    /// Minor units of `asset`, above zero.
    pub amount: i128,
    /// Unique per client: a repeat with the same asset and amount answers the original deposit.
    pub reference: ClientReference,
}

/// What a new key is checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCredential {
    /// The desk makes a secret, shown once in the answer.
    Hmac,
    /// The client's Ed25519 public key (32 bytes, already checked to be a valid point).
    Ed25519([u8; 32]),
}

/// A key to create, parsed.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub scopes: Vec<Scope>,
    pub credential: KeyCredential,
    /// Normalized CIDR blocks; empty = any address.
    pub allowed_ips: Vec<String>,
}

/// A created key and, for an HMAC key, its secret (never stored in plain text, never shown again).
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: Option<String>,
}

/// A compliance decision on a client's screening matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreeningDecision {
    /// A compliance user reviewed the matches and clears the client (the matches are kept).
    Cleared,
}

impl DeskServices {
    /// Onboards a client, screened against the loaded lists (a possible match keeps KYC pending and raises an
    /// alert). A credit client without a limit gets a limit of 0.
    pub async fn create_client(&self, actor: Actor, mut new: NewClient) -> ServiceResult<Client> {
        new.screening = self.screening.screen_client(&new.name, new.jurisdiction.country());
        if new.settlement == Settlement::Credit && new.credit_limit_usd.is_none() {
            new.credit_limit_usd = Some(0);
        }
        Ok(self.execute(actor, Command::CreateClient(new), client_of).await?.value)
    }

    /// Changes a client: a new name or jurisdiction is screened again; `decision` records compliance's call.
    pub async fn update_client(
        &self,
        actor: Actor,
        client_id: ClientId,
        mut changes: ClientChanges,
        decision: Option<ScreeningDecision>,
    ) -> ServiceResult<Client> {
        changes.screening = self.rescreen(&client_id, &changes, decision).await?;
        Ok(self.execute(actor, Command::UpdateClient { client_id, changes }, client_of).await?.value)
    }

    /// A new screening when the name or jurisdiction changes, or the cleared one of a compliance decision.
    async fn rescreen(
        &self,
        client_id: &ClientId,
        changes: &ClientChanges,
        decision: Option<ScreeningDecision>,
    ) -> ServiceResult<Option<ClientScreening>> {
        let wanted = client_id.clone();
        let Some(current) = self.read(move |desk| desk.client(&wanted).cloned()).await? else { return Ok(None) };
        if decision == Some(ScreeningDecision::Cleared) {
            let Some(mut screening) = current.screening.clone() else {
                return Err(ServiceError::invalid("screening_decision", "the client has no screening to clear"));
            };
            screening.status = ScreeningStatus::Cleared;
            return Ok(Some(screening));
        }
        if changes.name.is_none() && changes.jurisdiction.is_none() {
            return Ok(None);
        }
        let name = changes.name.clone().unwrap_or(current.name);
        let jurisdiction = changes.jurisdiction.clone().unwrap_or(current.jurisdiction);
        Ok(self.screening.screen_client(&name, jurisdiction.country()))
    }

    /// Creates a key for a client or the desk.
    pub async fn create_key(&self, actor: Actor, owner: KeyOwner, request: KeyRequest) -> ServiceResult<IssuedKey> {
        let key_id = KeyId::parse(&new_key_id()).expect("generated ids are valid");
        let (algorithm, credential, secret) = match request.credential {
            KeyCredential::Hmac => {
                let secret = new_hmac_secret();
                let sealed = self.keys.master_key().seal(key_id.as_str(), secret.as_bytes());
                (KeyAlgorithm::Hmac, sealed, Some(secret))
            }
            KeyCredential::Ed25519(public_key) => (KeyAlgorithm::Ed25519, public_key.to_vec(), None),
        };
        let key = NewKey { key_id, scopes: request.scopes, algorithm, credential, allowed_ips: request.allowed_ips };
        let done = self.execute(actor, Command::CreateKey { owner, key }, key_of).await?;
        self.keys.upsert(&done.value);
        Ok(IssuedKey { key: done.value, secret })
    }

    /// Revokes a key: requests signed with it are refused from the next request on.
    pub async fn revoke_key(&self, actor: Actor, key_id: KeyId) -> ServiceResult<ApiKey> {
        let done = self.execute(actor, Command::RevokeKey { key_id }, key_of).await?;
        self.keys.upsert(&done.value);
        Ok(done.value)
    }

    /// Creates or replaces a tier.
    pub async fn put_tier(&self, actor: Actor, spec: TierSpec) -> ServiceResult<Tier> {
        let done = self
            .execute(actor, Command::PutTier(spec), |outcome| match outcome {
                Outcome::Tier(tier) => Some(tier),
                _ => None,
            })
            .await?;
        Ok(done.value)
    }

    /// Credits a confirmed deposit to a client's available balance (a repeat of the reference with the same
    /// body answers the original). The bank or custodian already holds it: its books are told.
    pub async fn deposit(
        &self,
        actor: Actor,
        client_id: ClientId,
        asset: AssetCode,
        amount: i128,
        reference: ClientReference,
    ) -> ServiceResult<Done<Deposit>> {
        let notional_usd = crate::market_inputs::asset_usd(&self.market, &self.catalog, asset, amount);
        let deposit = NewDeposit { client_id, asset, amount, reference, notional_usd };
        let _rail_step = self.rail_step().await;
        let done = self
            .execute(actor, Command::Deposit(deposit), |outcome| match outcome {
                Outcome::Deposit { deposit, .. } => Some(deposit),
                _ => None,
            })
            .await?;
        let deposit = &done.value;
        self.book_rail_movement(format!("deposit:{}", deposit.deposit_id), deposit.asset, deposit.amount);
        Ok(done)
    }

    /// Credits many confirmed deposits as one engine request (`submit_many`): each is its own journal record and
    /// is refused alone (`Err` in its place, same codes as [`DeskServices::deposit`]); all are answered in order
    /// once the last is durable. The whole request fails (`NotDurable`, `Overloaded`) when the desk cannot make
    /// it durable: then nothing was acknowledged. At most [`DEPOSIT_BATCH_DEPOSITS_MAX`] deposits.
    pub async fn deposit_many(
        &self,
        actor: Actor,
        deposits: Vec<DepositOrder>,
    ) -> ServiceResult<Vec<ServiceResult<Done<Deposit>>>> {
        if deposits.len() > DEPOSIT_BATCH_DEPOSITS_MAX {
            let detail = format!("at most {DEPOSIT_BATCH_DEPOSITS_MAX} deposits in one request");
            return Err(ServiceError::invalid("deposits", detail));
        }
        let commands: Vec<Command> = deposits
            .into_iter()
            .map(|order| {
                let notional_usd =
                    crate::market_inputs::asset_usd(&self.market, &self.catalog, order.asset, order.amount);
                let DepositOrder { client_id, asset, amount, reference } = order;
                Command::Deposit(NewDeposit { client_id, asset, amount, reference, notional_usd })
            })
            .collect();
        let count = commands.len();
        let _rail_step = self.rail_step().await;
        let results = self.engine.submit_many(actor, commands).await?;
        assert_eq!(results.len(), count, "submit_many answers every command");
        let mut answers = Vec::with_capacity(count);
        for result in results {
            let executed = match result {
                Ok(executed) => executed,
                Err(SubmitError::Refused(refusal)) => {
                    answers.push(Err(ServiceError::Rejected(refusal)));
                    continue;
                }
                // Not durable (or not taken): no deposit of the request may be acknowledged.
                Err(error) => return Err(error.into()),
            };
            let Outcome::Deposit { deposit, .. } = executed.outcome else {
                return Err(ServiceError::Internal("the engine answered a deposit with another outcome".into()));
            };
            self.book_rail_movement(format!("deposit:{}", deposit.deposit_id), deposit.asset, deposit.amount);
            answers.push(Ok(Done { value: deposit, changed: executed.changed }));
        }
        Ok(answers)
    }

    /// The desk funds (positive) or defunds its own inventory of an asset; its bank or custodian holds the money.
    pub async fn fund_desk(
        &self,
        actor: Actor,
        asset: AssetCode,
        amount: i128,
        reference: ClientReference,
    ) -> ServiceResult<Done<DeskFunding>> {
        let _rail_step = self.rail_step().await;
        let done = self
            .execute(actor, Command::FundDesk { asset, amount, reference }, |outcome| match outcome {
                Outcome::Funding { funding, .. } => Some(funding),
                _ => None,
            })
            .await?;
        let funding = &done.value;
        self.book_rail_movement(format!("funding:{}", funding.funding_id), funding.asset, funding.amount);
        Ok(done)
    }

    /// Inventory skew for an asset.
    pub async fn put_skew(&self, actor: Actor, setting: SkewSetting) -> ServiceResult<()> {
        let skew = |outcome| matches!(outcome, Outcome::Skew(_)).then_some(());
        self.execute(actor, Command::PutSkew(setting), skew).await.map(|_| ())
    }

    /// Tells the rail of the asset (custody for crypto, bank for fiat) of a movement the desk just recorded.
    pub(crate) fn book_rail_movement(&self, reference: String, asset: AssetCode, amount: i128) {
        let Some(kind) = self.catalog.asset(&asset).map(|asset| asset.kind) else { return };
        let account = RailAccount::for_kind(kind);
        self.rails.rail.book(RailMovement { reference, asset, account, amount, at_ms: self.clock.now().0 });
    }

    /// Held while a rail movement and the command that records it happen together.
    pub(crate) async fn rail_step(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.internal.rail_step.lock().await
    }
}

fn client_of(outcome: Outcome) -> Option<Client> {
    match outcome {
        Outcome::Client(client) => Some(client),
        _ => None,
    }
}

fn key_of(outcome: Outcome) -> Option<ApiKey> {
    match outcome {
        Outcome::Key(key) => Some(key),
        _ => None,
    }
}
