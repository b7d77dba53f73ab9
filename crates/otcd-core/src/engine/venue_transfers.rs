//! Venue funding: the desk moves its own holdings between its custodian (crypto) or bank (fiat) and a venue where
//! it hedges, so the ledger's venue accounts say what the desk holds there (docs/hedging.md, Venue funding).
//!
//! One transfer is one balanced ledger transaction (kind `transfer`): to a venue, the holding account (custody or
//! bank) `+amount` and the venue's account `−amount` (both negative when the desk holds value there); from a
//! venue, the reverse. The desk's inventory (its position) does not move: the asset only changes place.
//! Idempotent by the operator's reference: a repeat with the same venue, asset, amount and direction answers the
//! original; a different one is a conflict.

use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::AssetCode;
use crate::ids::ClientReference;
use crate::ledger::{AccountKey, Owner, Posting, Purpose, TransactionId, TransactionKind};
use crate::time::TimestampMs;
use serde::{Deserialize, Serialize};

/// Transfers the desk keeps (each is small; a desk moves funds to venues a few times a day).
pub const VENUE_TRANSFERS_MAX: usize = 100_000;
/// A venue's name: 1 to 64 bytes (as in a hedging policy).
pub const VENUE_NAME_BYTES_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    ToVenue,
    FromVenue,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVenueTransfer {
    pub venue: String,
    pub asset: AssetCode,
    /// Minor units, > 0.
    pub amount: i128,
    pub direction: TransferDirection,
    pub reference: ClientReference,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueTransfer {
    /// `vt_00000001`.
    pub transfer_id: String,
    pub venue: String,
    pub asset: AssetCode,
    pub amount: i128,
    pub direction: TransferDirection,
    pub reference: ClientReference,
    pub transaction: TransactionId,
    pub created_at: TimestampMs,
}

impl VenueTransfer {
    /// The signed amount arriving at the venue (negative: leaving it).
    pub fn amount_to_venue(&self) -> i128 {
        match self.direction {
            TransferDirection::ToVenue => self.amount,
            TransferDirection::FromVenue => -self.amount,
        }
    }
}

impl Desk {
    /// Every venue transfer, oldest first.
    pub fn venue_transfers(&self) -> &[VenueTransfer] {
        &self.venue_transfers
    }

    pub fn venue_transfer(&self, transfer_id: &str) -> Option<&VenueTransfer> {
        let number: usize = transfer_id.strip_prefix("vt_")?.parse().ok()?;
        self.venue_transfers.get(number.checked_sub(1)?).filter(|transfer| transfer.transfer_id == transfer_id)
    }

    /// What the desk holds at a venue in an asset, by the ledger (positive = held there).
    pub fn venue_holding(&self, venue: &str, asset: AssetCode) -> i128 {
        let key = AccountKey { owner: Owner::Venue(venue.to_owned()), asset, purpose: Purpose::Venue };
        self.ledger.account_id(&key).map_or(0, |id| -self.ledger.balance(id))
    }

    /// The ledger's holdings at the named venues and at every venue a hedging policy names: (venue, asset,
    /// holding, positive = held there), for every catalog asset with an account. Lookups, never a scan of the
    /// ledger's accounts (an admin read runs on the engine thread).
    pub fn venue_holdings(&self, venues: &[String]) -> Vec<(String, AssetCode, i128)> {
        let mut names: std::collections::BTreeSet<&str> = venues.iter().map(String::as_str).collect();
        names.extend(self.hedging.policies().flat_map(|policy| policy.venues.iter().map(String::as_str)));
        let assets: Vec<AssetCode> =
            self.catalog().map(|catalog| catalog.assets().iter().map(|asset| asset.code).collect()).unwrap_or_default();
        let mut holdings = Vec::new();
        for venue in names {
            for asset in &assets {
                let key = AccountKey { owner: Owner::Venue(venue.to_owned()), asset: *asset, purpose: Purpose::Venue };
                if let Some(id) = self.ledger.account_id(&key) {
                    holdings.push((venue.to_owned(), *asset, -self.ledger.balance(id)));
                }
            }
        }
        holdings
    }

    pub(super) fn transfer_venue(&mut self, at: TimestampMs, new: &NewVenueTransfer) -> Result<Executed, CommandError> {
        let entry = self.catalog().and_then(|catalog| catalog.asset(&new.asset)).cloned();
        let entry = entry.ok_or_else(|| CommandError::invalid("asset", "is not in the catalog"))?;
        if new.venue.is_empty() || new.venue.len() > VENUE_NAME_BYTES_MAX {
            return Err(CommandError::invalid("venue", "venue names are 1 to 64 bytes"));
        }
        if new.amount <= 0 {
            return Err(CommandError::invalid("amount", "must be greater than zero"));
        }
        entry.check_amount(new.amount).map_err(|detail| CommandError::invalid("amount", detail))?;
        if let Some(position) = self.venue_transfer_index.get(&new.reference) {
            let existing = &self.venue_transfers[*position];
            let same = existing.venue == new.venue
                && existing.asset == new.asset
                && existing.amount == new.amount
                && existing.direction == new.direction;
            if !same {
                return Err(CommandError::conflict("this reference was used for a different venue transfer"));
            }
            return Ok(Executed { outcome: Outcome::VenueTransfer(existing.clone()), changed: false });
        }
        if self.venue_transfers.len() >= VENUE_TRANSFERS_MAX {
            return Err(CommandError::conflict("the desk holds the maximum number of venue transfers"));
        }
        let holding_purpose = super::holding_purpose(entry.kind);
        let held = |desk: &Desk, key: AccountKey| desk.ledger.account_id(&key).map_or(0, |id| -desk.ledger.balance(id));
        let (source, held_there) = match new.direction {
            TransferDirection::ToVenue => {
                let key = AccountKey { owner: Owner::Desk, asset: new.asset, purpose: holding_purpose };
                (
                    if entry.kind == crate::catalog::AssetKind::Crypto { "custodian's hot wallet" } else { "bank" },
                    held(self, key),
                )
            }
            TransferDirection::FromVenue => ("venue", self.venue_holding(&new.venue, new.asset)),
        };
        if held_there < new.amount {
            return Err(CommandError::InsufficientFunds {
                detail: format!("the desk holds less than the amount of {} at the {source}", new.asset),
            });
        }
        let holding = self
            .ledger
            .open_account(AccountKey { owner: Owner::Desk, asset: new.asset, purpose: holding_purpose }, None);
        let venue = self.ledger.open_account(
            AccountKey { owner: Owner::Venue(new.venue.clone()), asset: new.asset, purpose: Purpose::Venue },
            None,
        );
        let to_venue = if new.direction == TransferDirection::ToVenue { new.amount } else { -new.amount };
        let postings = [Posting { account: holding, amount: to_venue }, Posting { account: venue, amount: -to_venue }];
        let reference = format!("venue:{}", new.reference);
        let transaction = self.ledger.apply(at, TransactionKind::Transfer { reference }, &postings)?;
        let transfer = VenueTransfer {
            transfer_id: format!("vt_{:08}", self.venue_transfers.len() + 1),
            venue: new.venue.clone(),
            asset: new.asset,
            amount: new.amount,
            direction: new.direction,
            reference: new.reference.clone(),
            transaction,
            created_at: at,
        };
        self.venue_transfer_index.insert(new.reference.clone(), self.venue_transfers.len());
        self.venue_transfers.push(transfer.clone());
        Ok(Executed::changed(Outcome::VenueTransfer(transfer)))
    }
}
