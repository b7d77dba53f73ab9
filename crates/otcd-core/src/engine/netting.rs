//! Net settlement for credit clients.
//!
//! A credit client's trades settle on the ledger at once (its available balances may go negative: that is what it
//! owes) and accrue obligations per client and asset: what the client gave is owed to the desk, what it received
//! is owed by the desk. A settlement cycle (`RunNetSettlement`, on operator request or on the adapter's schedule)
//! nets each client's obligations per asset since the last cycle into one instruction per (client, asset):
//! `client_pays` (the client delivers that amount to the desk's bank or custodian) or `desk_pays` (the desk pays
//! it out). Each instruction is tracked to completion by the settlement worker (`SettleInstruction`):
//! - `client_pays` completed: the desk's holding account pays into the client's available balance (the debt is
//!   covered);
//! - `desk_pays` completed: the client's available balance pays into the desk's holding account (paid out);
//! - failed: the amount returns to the client's unsettled obligations, so the next cycle carries it.
//!
//! When every instruction of a client in a cycle has completed, the credit exposure (USD notional of the trades
//! the cycle covered) is released, so `GET /v1/account` shows the client's room again.

use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::AssetCode;
use crate::ids::ClientId;
use crate::ledger::{AccountKey, Owner, Posting, Purpose, TransactionKind};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Instructions one cycle may issue; the rest wait for the next cycle.
pub const INSTRUCTIONS_PER_CYCLE_MAX: usize = 100_000;
pub const INSTRUCTIONS_MAX: usize = 50_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ClientPays,
    DeskPays,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionStatus {
    Pending,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub instruction_id: String,
    pub cycle: u64,
    pub client_id: ClientId,
    pub asset: AssetCode,
    pub direction: Direction,
    /// Minor units, > 0.
    pub amount: i128,
    pub status: InstructionStatus,
    pub failure_reason: Option<String>,
    pub created_at: TimestampMs,
    pub updated_at: TimestampMs,
}

/// What a settlement report says about an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionOutcome {
    Completed,
    Failed { reason: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NettingBook {
    /// Per (client, asset): net amount since the last cycle; negative = the client owes the desk.
    #[serde(with = "pairs")]
    unsettled: BTreeMap<(ClientId, AssetCode), i128>,
    /// Per client: USD notional traded on credit since the last cycle.
    unsettled_notional: BTreeMap<ClientId, i128>,
    instructions: Vec<Instruction>,
    /// Per (cycle, client): the notional released when all of its instructions complete.
    #[serde(with = "pairs")]
    releases: BTreeMap<(u64, ClientId), i128>,
    cycles: u64,
}

impl Desk {
    /// Records a credit client's trade legs as obligations (called when the trade settles on the ledger).
    pub(super) fn accrue_obligation(&mut self, client_id: &ClientId, legs: [(AssetCode, i128); 2], notional_usd: i128) {
        for (asset, amount) in legs {
            *self.netting.unsettled.entry((client_id.clone(), asset)).or_default() += amount;
        }
        *self.netting.unsettled_notional.entry(client_id.clone()).or_default() += notional_usd;
    }

    pub fn instructions(&self) -> &[Instruction] {
        &self.netting.instructions
    }

    /// An instruction by its id (`si_0000000001`: the position is in the id, so this is a lookup, not a scan).
    pub fn instruction(&self, instruction_id: &str) -> Option<&Instruction> {
        let position = instruction_position(instruction_id)?;
        self.netting.instructions.get(position).filter(|instruction| instruction.instruction_id == instruction_id)
    }

    pub fn instructions_pending(&self, limit: usize) -> Vec<Instruction> {
        self.netting
            .instructions
            .iter()
            .rev()
            .filter(|instruction| instruction.status == InstructionStatus::Pending)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Net per client and asset since the last cycle (negative: the client owes the desk).
    pub fn unsettled_obligations(&self, client_id: &ClientId) -> Vec<(AssetCode, i128)> {
        self.netting
            .unsettled
            // "00" sorts before every asset code (digits before capitals), so the range starts at the client's first.
            .range((client_id.clone(), AssetCode::parse("00").expect("a valid asset code"))..)
            .take_while(|((owner, _), _)| owner == client_id)
            .filter(|(_, amount)| **amount != 0)
            .map(|((_, asset), amount)| (*asset, *amount))
            .collect()
    }

    /// Nets every client's obligations into instructions.
    pub(super) fn run_net_settlement(&mut self, at: TimestampMs) -> Result<Executed, CommandError> {
        let due: Vec<((ClientId, AssetCode), i128)> = self
            .netting
            .unsettled
            .iter()
            .filter(|(_, amount)| **amount != 0)
            .take(INSTRUCTIONS_PER_CYCLE_MAX)
            .map(|(key, amount)| (key.clone(), *amount))
            .collect();
        if due.is_empty() {
            return Ok(Executed { outcome: Outcome::Instructions(Vec::new()), changed: false });
        }
        if self.netting.instructions.len() + due.len() > INSTRUCTIONS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of settlement instructions"));
        }
        self.netting.cycles += 1;
        let cycle = self.netting.cycles;
        let mut issued = Vec::with_capacity(due.len());
        for ((client_id, asset), amount) in due {
            self.netting.unsettled.remove(&(client_id.clone(), asset));
            if let Some(notional) = self.netting.unsettled_notional.remove(&client_id) {
                self.netting.releases.insert((cycle, client_id.clone()), notional);
            }
            let instruction = Instruction {
                instruction_id: format!("si_{:010}", self.netting.instructions.len() + 1),
                cycle,
                client_id,
                asset,
                direction: if amount < 0 { Direction::ClientPays } else { Direction::DeskPays },
                amount: amount.abs(),
                status: InstructionStatus::Pending,
                failure_reason: None,
                created_at: at,
                updated_at: at,
            };
            self.netting.instructions.push(instruction.clone());
            issued.push(instruction);
        }
        Ok(Executed::changed(Outcome::Instructions(issued)))
    }

    pub(super) fn settle_instruction(
        &mut self,
        at: TimestampMs,
        instruction_id: &str,
        outcome: &InstructionOutcome,
    ) -> Result<Executed, CommandError> {
        let position = instruction_position(instruction_id)
            .filter(|position| *position < self.netting.instructions.len())
            .ok_or_else(|| CommandError::not_found("settlement instruction"))?;
        let instruction = self.netting.instructions[position].clone();
        if instruction.status != InstructionStatus::Pending {
            return Err(CommandError::conflict(format!("the instruction is {:?}", instruction.status)));
        }
        let status = match outcome {
            InstructionOutcome::Completed => {
                self.post_instruction(at, &instruction)?;
                InstructionStatus::Completed
            }
            InstructionOutcome::Failed { reason } => {
                if reason.len() > super::settlement::REASON_BYTES_MAX {
                    return Err(CommandError::invalid("reason", "is longer than 500 bytes"));
                }
                let signed = match instruction.direction {
                    Direction::ClientPays => -instruction.amount,
                    Direction::DeskPays => instruction.amount,
                };
                *self.netting.unsettled.entry((instruction.client_id.clone(), instruction.asset)).or_default() +=
                    signed;
                // The next cycle carries the obligation, and the exposure it releases.
                if let Some(notional) =
                    self.netting.releases.remove(&(instruction.cycle, instruction.client_id.clone()))
                {
                    *self.netting.unsettled_notional.entry(instruction.client_id.clone()).or_default() += notional;
                }
                InstructionStatus::Failed
            }
        };
        let stored = &mut self.netting.instructions[position];
        stored.status = status;
        stored.updated_at = at;
        if let InstructionOutcome::Failed { reason } = outcome {
            stored.failure_reason = Some(reason.clone());
        }
        let stored = stored.clone();
        self.release_credit_if_settled(&stored);
        Ok(Executed::changed(Outcome::Instruction(stored)))
    }

    /// Moves the settled amount between the client's available balance and the desk's bank or custody account.
    fn post_instruction(&mut self, at: TimestampMs, instruction: &Instruction) -> Result<(), CommandError> {
        if instruction.direction == Direction::DeskPays {
            // The desk pays from its wallet: never below what submitted withdrawals already need from it.
            self.check_wallet_covers(instruction.asset, instruction.amount)?;
        }
        let purpose = self.holding_purpose_of(instruction.asset)?;
        let owner = Owner::Client(instruction.client_id.clone());
        let available =
            self.ledger.open_account(AccountKey { owner, asset: instruction.asset, purpose: Purpose::Available }, None);
        let holding =
            self.ledger.open_account(AccountKey { owner: Owner::Desk, asset: instruction.asset, purpose }, None);
        let amount = match instruction.direction {
            Direction::ClientPays => instruction.amount,
            Direction::DeskPays => -instruction.amount,
        };
        let postings = [Posting { account: available, amount }, Posting { account: holding, amount: -amount }];
        let reference = instruction.instruction_id.clone();
        self.ledger.apply(at, TransactionKind::Settlement { reference }, &postings)?;
        Ok(())
    }

    /// Releases the cycle's credit exposure once none of the client's instructions in it is pending or failed.
    fn release_credit_if_settled(&mut self, instruction: &Instruction) {
        let all_completed = self
            .netting
            .instructions
            .iter()
            .rev()
            .take_while(|other| other.cycle >= instruction.cycle)
            .filter(|other| other.cycle == instruction.cycle && other.client_id == instruction.client_id)
            .all(|other| other.status == InstructionStatus::Completed);
        if !all_completed {
            return;
        }
        if let Some(notional) = self.netting.releases.remove(&(instruction.cycle, instruction.client_id.clone())) {
            let used = self.credit_used.entry(instruction.client_id.clone()).or_default();
            *used = (*used - notional).max(0);
        }
    }
}

fn instruction_position(instruction_id: &str) -> Option<usize> {
    let number: usize = instruction_id.strip_prefix("si_")?.parse().ok()?;
    number.checked_sub(1)
}

/// Maps with tuple keys as lists of `[key, value]` pairs: JSON (the snapshot format) only has string keys.
pub(super) mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize + Ord, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}
