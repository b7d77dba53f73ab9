//! What one fill moves: the client's two legs, the desk's inventory legs and the fee leg.
//!
//! Every trade path (an accepted quote, a market or immediate limit order, a resting order's fill out of its
//! reservation) prices its fill the same way:
//!
//! * `quote_amount` = price × quantity in quote minor units, rounded against the client (up for a buy, down for
//!   a sell);
//! * `fee` = `ceil(quote_amount × fee_centi_bps / 10^6)`, in the quote asset, at the rate the client's tier had
//!   when the quote was given or the resting order placed (a market order: now);
//! * a buyer gives `quote_amount + fee` and receives `quantity`; a seller gives `quantity` and receives
//!   `quote_amount − fee`;
//! * the desk's inventory takes the other side of `quote_amount` and `quantity`, and its `Fees` account takes
//!   `fee`.
//!
//! So each trade is one balanced transaction per asset: the fee moves from the client to the desk's fee revenue,
//! the inventory legs carry the trade at its price.

use super::{CommandError, Desk};
use crate::catalog::{AssetCode, Instrument};
use crate::ledger::{AccountKey, Owner, Posting, Purpose};
use crate::market::{pricing, Side};
use crate::model::Client;

/// The terms of one fill, decided before anything moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FillTerms {
    pub side: Side,
    /// Price units of the instrument.
    pub price: i128,
    /// Base minor units.
    pub quantity: i128,
    /// USD value (cents), when known.
    pub notional_usd: Option<i128>,
    pub fee_centi_bps: i128,
}

/// The amounts one fill moves, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FillAmounts {
    pub gives: AssetCode,
    pub gives_amount: i128,
    pub receives: AssetCode,
    pub receives_amount: i128,
    /// The trade's value at its price, before the fee (quote minor units).
    pub quote_amount: i128,
    /// The desk's fee (quote minor units).
    pub fee: i128,
}

impl Desk {
    /// The fee rate of the client's tier now (0 when the tier has none).
    pub(super) fn fee_rate(&self, client: &Client) -> i128 {
        self.tiers.get(&client.tier).map_or(0, |tier| tier.fee_centi_bps)
    }

    /// Quote minor units of `quantity` at `price`, rounded up (`round_up`, what a buyer pays) or down.
    pub(super) fn quote_amount_of(
        &self,
        instrument: &Instrument,
        price: i128,
        quantity: i128,
        round_up: bool,
    ) -> Result<i128, CommandError> {
        let catalog = self.catalog().ok_or(CommandError::NotInitialized)?;
        let scale = |code: &AssetCode| catalog.asset(code).map_or(0, |asset| asset.scale);
        pricing::quote_amount(
            price,
            quantity,
            instrument.price_scale,
            scale(&instrument.base),
            scale(&instrument.quote),
            round_up,
        )
        .map_err(|error| CommandError::invalid("quantity", error.to_string()))
    }

    /// What a fill moves. Refused (before any account is opened, so a refusal changes nothing) when its value
    /// rounds to zero or a seller's fee would take all of the proceeds.
    pub(super) fn fill_amounts(&self, instrument: &Instrument, terms: &FillTerms) -> Result<FillAmounts, CommandError> {
        let buying = terms.side == Side::Buy;
        let quote_amount = self.quote_amount_of(instrument, terms.price, terms.quantity, buying)?;
        if quote_amount <= 0 {
            return Err(CommandError::invalid("quantity", "the trade is too small: its value rounds to zero"));
        }
        let fee = pricing::fee_amount(quote_amount, terms.fee_centi_bps)
            .map_err(|error| CommandError::invalid("quantity", error.to_string()))?;
        let amounts = if buying {
            FillAmounts {
                gives: instrument.quote,
                gives_amount: quote_amount.checked_add(fee).ok_or(CommandError::invalid("quantity", "is too large"))?,
                receives: instrument.base,
                receives_amount: terms.quantity,
                quote_amount,
                fee,
            }
        } else {
            FillAmounts {
                gives: instrument.base,
                gives_amount: terms.quantity,
                receives: instrument.quote,
                receives_amount: quote_amount - fee,
                quote_amount,
                fee,
            }
        };
        if amounts.receives_amount <= 0 {
            return Err(CommandError::invalid("quantity", "the trade is too small: the fee takes all of its value"));
        }
        debug_assert_eq!(amounts.quote_amount + amounts.fee, quote_amount + fee);
        Ok(amounts)
    }

    /// The desk's position limit on the quote asset, for the fill's move of its inventory: the trade's value in
    /// on a client buy, out on a sell (the fee goes to the `Fees` account, not the position).
    pub(super) fn check_fill_quote_limit(
        &self,
        instrument: &Instrument,
        terms: &FillTerms,
        amounts: &FillAmounts,
    ) -> Result<(), CommandError> {
        let change = if terms.side == Side::Buy { amounts.quote_amount } else { -amounts.quote_amount };
        self.check_quote_asset_limit(instrument.quote, change)
    }

    /// The desk's postings for a fill: inventory takes what the client gives net of the fee and pays out what the
    /// client receives gross of it; the fee goes to the `Fees` account of the quote asset.
    pub(super) fn desk_fill_postings(&mut self, instrument: &Instrument, amounts: &FillAmounts) -> Vec<Posting> {
        let mut account =
            |asset, purpose| self.ledger.open_account(AccountKey { owner: Owner::Desk, asset, purpose }, None);
        let (inventory_in, inventory_out) = if amounts.gives == instrument.quote {
            (amounts.quote_amount, amounts.receives_amount)
        } else {
            (amounts.gives_amount, amounts.quote_amount)
        };
        let mut postings = vec![
            Posting { account: account(amounts.gives, Purpose::Inventory), amount: inventory_in },
            Posting { account: account(amounts.receives, Purpose::Inventory), amount: -inventory_out },
        ];
        if amounts.fee > 0 {
            postings.push(Posting { account: account(instrument.quote, Purpose::Fees), amount: amounts.fee });
        }
        postings
    }
}
