//! Withdrawal destinations (validated per network and screened against the lists' addresses), withdrawals
//! (reserved at once, paid by the settlement worker through a rail) and net settlement cycles for credit clients.

use crate::{DeskServices, Done, ServiceResult};
use otcd_core::address::{self, Network};
use otcd_core::catalog::AssetCode;
use otcd_core::engine::netting::Instruction;
use otcd_core::engine::settlement::{Destination, DestinationStatus, NewDestination, NewWithdrawal, Withdrawal};
use otcd_core::engine::{Actor, Command, CommandError, Outcome};
use otcd_core::ids::ClientId;

/// A destination to register, parsed.
#[derive(Debug, Clone)]
pub struct DestinationRequest {
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub address: String,
    /// Needed only where the asset has several networks and the address does not tell.
    pub network: Option<Network>,
    pub label: Option<String>,
}

impl DeskServices {
    /// Registers a destination: the address is validated for its network (checksums included) and normalized,
    /// then screened; a listed address is `rejected` (and alerted) by the engine.
    pub async fn add_destination(&self, actor: Actor, request: DestinationRequest) -> ServiceResult<Destination> {
        let validated = address::validate(request.asset.as_str(), &request.address, request.network)
            .map_err(|error| CommandError::invalid("address", error.to_string()))?;
        let matches = self.screening.screen_address(&validated.normalized);
        let new = NewDestination {
            client_id: request.client_id,
            asset: request.asset,
            network: validated.network,
            address: validated.normalized,
            label: request.label,
            matches,
        };
        Ok(self.execute(actor, Command::AddDestination(new), destination_of).await?.value)
    }

    /// An operator approves, rejects or holds a destination.
    pub async fn set_destination_status(
        &self,
        actor: Actor,
        destination_id: String,
        status: DestinationStatus,
    ) -> ServiceResult<Destination> {
        let command = Command::SetDestinationStatus { destination_id, status };
        Ok(self.execute(actor, command, destination_of).await?.value)
    }

    /// Requests a withdrawal: the amount is reserved at once and leaves the balance when the rail confirms.
    pub async fn request_withdrawal(&self, actor: Actor, new: NewWithdrawal) -> ServiceResult<Done<Withdrawal>> {
        self.execute(actor, Command::RequestWithdrawal(new), |outcome| match outcome {
            Outcome::Withdrawal(withdrawal) => Some(withdrawal),
            _ => None,
        })
        .await
    }

    /// Runs a net settlement cycle now; answers the instructions issued (empty when nothing is owed).
    pub async fn run_net_settlement(&self, actor: Actor) -> ServiceResult<Vec<Instruction>> {
        let done = self
            .execute(actor, Command::RunNetSettlement, |outcome| match outcome {
                Outcome::Instructions(issued) => Some(issued),
                _ => None,
            })
            .await?;
        Ok(done.value)
    }
}

fn destination_of(outcome: Outcome) -> Option<Destination> {
    match outcome {
        Outcome::Destination(destination) => Some(destination),
        _ => None,
    }
}
