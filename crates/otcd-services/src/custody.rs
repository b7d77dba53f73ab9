//! Custody: client deposit addresses, on-chain deposits the custodian sees, the hot-wallet policy and top-up
//! approvals (the rules: `otcd_core::engine::custody`), and the two operations only a simulated rail offers.

use crate::ports::{BookingError, RailAccount, RailMovement};
use crate::{DeskServices, Done, ServiceError, ServiceResult};
use otcd_core::catalog::{Asset, AssetCode};
use otcd_core::engine::custody::{ChainDeposit, CustodyPolicy, DepositAddress, DepositObservation};
use otcd_core::engine::{Actor, Command, Outcome};
use otcd_core::ids::ClientId;

impl DeskServices {
    /// The client's deposit address for a crypto asset (the same one every time).
    pub async fn assign_deposit_address(
        &self,
        actor: Actor,
        client_id: ClientId,
        asset: AssetCode,
    ) -> ServiceResult<Done<DepositAddress>> {
        self.execute(actor, Command::AssignDepositAddress { client_id, asset }, |outcome| match outcome {
            Outcome::DepositAddress(assigned) => Some(assigned),
            _ => None,
        })
        .await
    }

    /// The simulated custodian sees an on-chain payment to a deposit address (0 confirmations); the settlement
    /// worker adds confirmations until the asset's requirement, then the client is credited.
    pub async fn simulate_chain_deposit(
        &self,
        actor: Actor,
        address: String,
        asset: &Asset,
        amount: i128,
    ) -> ServiceResult<ChainDeposit> {
        self.simulated_rails()?;
        let now = self.clock.now().0;
        let transaction_id = format!("simtx-{now}-{}", rand::random::<u32>());
        let seen = DepositObservation { transaction_id, asset: asset.code, address, amount, confirmations: 0 };
        let _rail_step = self.rail_step().await;
        let done = self.execute(actor, Command::ObserveDeposit(seen), chain_deposit_of).await?;
        // The custodian holds the coins from the moment it sees the transaction; the ledger credits them once
        // confirmed (reconciliation shows the difference as confirming deposits).
        let deposit = &done.value;
        self.book_rail_movement(format!("chain:{}", deposit.transaction_id), deposit.asset, deposit.amount);
        Ok(done.value)
    }

    /// The simulated custodian or bank books a movement the desk has no record of; `Ok(false)` when the reference
    /// is already on its books.
    pub fn simulate_rail_movement(&self, asset: &Asset, amount: i128, reference: String) -> ServiceResult<bool> {
        let simulation = self.simulated_rails()?;
        if amount == 0 {
            return Err(ServiceError::invalid("amount", "must not be zero"));
        }
        let account = RailAccount::for_kind(asset.kind);
        let movement = RailMovement { reference, asset: asset.code, account, amount, at_ms: self.clock.now().0 };
        simulation.book_external(movement).map_err(|error| match error {
            BookingError::Reference => ServiceError::invalid("reference", "1 to 200 bytes"),
            other => ServiceError::Internal(other.to_string()),
        })
    }

    /// Sets the hot-wallet bounds of a crypto asset.
    pub async fn put_custody_policy(&self, actor: Actor, policy: CustodyPolicy) -> ServiceResult<()> {
        let stored = |outcome| matches!(outcome, Outcome::CustodyPolicy(_)).then_some(());
        self.execute(actor, Command::PutCustodyPolicy(policy), stored).await.map(|_| ())
    }

    /// Approves a top-up of the hot wallet from cold.
    pub async fn approve_top_up(&self, actor: Actor, top_up_id: String) -> ServiceResult<()> {
        let approved = |outcome| matches!(outcome, Outcome::TopUp(_)).then_some(());
        self.execute(actor, Command::ApproveTopUp { top_up_id }, approved).await.map(|_| ())
    }

    fn simulated_rails(&self) -> ServiceResult<&std::sync::Arc<dyn crate::ports::RailSimulation>> {
        let missing = "this desk runs with real rails; only simulated rails take simulated movements";
        self.rails.simulation.as_ref().ok_or_else(|| ServiceError::NotFound(missing.into()))
    }
}

fn chain_deposit_of(outcome: Outcome) -> Option<ChainDeposit> {
    match outcome {
        Outcome::ChainDeposit(deposit) => Some(deposit),
        _ => None,
    }
}
