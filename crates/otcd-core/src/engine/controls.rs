//! Trading controls set by operators: the desk-wide kill switch, per-instrument halts, the largest fill the desk
//! takes per trade on an instrument, and the desk's position limits per asset.
//!
//! Capacity rule (partial fills): the desk never takes a trade that would carry its position in the BASE asset
//! past a limit, nor one larger than the instrument's `fill_quantity_max`. An order larger than the capacity:
//! - `quote` and `market` orders are refused whole with `limit_exceeded` (`desk_capacity`);
//! - `fok` is cancelled unfilled; `ioc` fills the capacity (rounded down to the quantity increment) and cancels
//!   the rest; resting `gtc`/`gtd` orders fill the capacity and keep resting with the remainder.
//!
//! Limits on the QUOTE asset of a trade are checked whole: a trade that would carry the desk past one is
//! refused (immediate orders) or waits (resting orders); it is not resized, because the quote amount of a
//! smaller size depends on its price.

use super::{CommandError, Desk, Executed, Outcome};
use crate::catalog::{AssetCode, Instrument};
use crate::market::Side;
use serde::{Deserialize, Serialize};

/// Longest reason an operator may record with a halt.
pub const HALT_REASON_BYTES_MAX: usize = 500;

/// Operator settings of one instrument.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstrumentControl {
    pub instrument: String,
    pub halted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Largest fill per trade in base minor units (`None`: only the instrument's `quantity_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_quantity_max: Option<i128>,
}

/// The desk-wide kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KillSwitch {
    pub engaged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How long and how short the desk may go in one asset, in its minor units (`None`: no limit that way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionLimit {
    pub asset: AssetCode,
    pub long_max: Option<i128>,
    pub short_max: Option<i128>,
}

impl Desk {
    pub(super) fn put_instrument_control(&mut self, control: &InstrumentControl) -> Result<Executed, CommandError> {
        let instrument = self.instrument(&control.instrument)?.clone();
        validate_reason(control.reason.as_deref())?;
        if let Some(maximum) = control.fill_quantity_max {
            if maximum <= 0 || maximum % instrument.quantity_step != 0 {
                return Err(CommandError::invalid(
                    "fill_quantity_max",
                    "must be positive and a multiple of the instrument's quantity increment",
                ));
            }
        }
        self.instrument_controls.insert(control.instrument.clone(), control.clone());
        Ok(Executed::changed(Outcome::InstrumentControl(control.clone())))
    }

    pub(super) fn put_kill_switch(&mut self, switch: &KillSwitch) -> Result<Executed, CommandError> {
        validate_reason(switch.reason.as_deref())?;
        self.kill_switch = switch.clone();
        Ok(Executed::changed(Outcome::KillSwitch(switch.clone())))
    }

    pub(super) fn put_position_limit(&mut self, limit: &PositionLimit) -> Result<Executed, CommandError> {
        if self.catalog().and_then(|catalog| catalog.asset(&limit.asset)).is_none() {
            return Err(CommandError::invalid("asset", "is not in the catalog"));
        }
        if limit.long_max.is_some_and(|maximum| maximum < 0) || limit.short_max.is_some_and(|maximum| maximum < 0) {
            return Err(CommandError::invalid("long_max", "limits are zero or more"));
        }
        if limit.long_max.is_none() && limit.short_max.is_none() {
            self.position_limits.remove(&limit.asset);
        } else {
            self.position_limits.insert(limit.asset, limit.clone());
        }
        Ok(Executed::changed(Outcome::PositionLimit(limit.clone())))
    }

    pub fn instrument_control(&self, symbol: &str) -> Option<&InstrumentControl> {
        self.instrument_controls.get(symbol)
    }

    pub fn kill_switch(&self) -> &KillSwitch {
        &self.kill_switch
    }

    pub fn position_limits(&self) -> impl Iterator<Item = &PositionLimit> {
        self.position_limits.values()
    }

    /// Refuses firm prices and trades while the kill switch is engaged or the instrument is halted.
    pub(super) fn check_trading_allowed(&self, instrument: &Instrument) -> Result<(), CommandError> {
        if self.kill_switch.engaged {
            return Err(CommandError::TradingHalted { scope: "desk".into(), reason: self.kill_switch.reason.clone() });
        }
        match self.instrument_controls.get(&instrument.symbol) {
            Some(control) if control.halted => {
                Err(CommandError::TradingHalted { scope: instrument.symbol.clone(), reason: control.reason.clone() })
            }
            _ => Ok(()),
        }
    }

    /// How much of `quantity` the desk takes in one trade now (see the module comment), on the quantity increment.
    pub(super) fn desk_capacity(&self, instrument: &Instrument, side: Side, quantity: i128) -> i128 {
        let mut capacity = quantity;
        if let Some(maximum) = self.instrument_controls.get(&instrument.symbol).and_then(|c| c.fill_quantity_max) {
            capacity = capacity.min(maximum);
        }
        if let Some(limit) = self.position_limits.get(&instrument.base) {
            let position = self.desk_position(instrument.base);
            // A client buy makes the desk shorter in the base asset; a client sell makes it longer.
            let room = match side {
                Side::Buy => limit.short_max.map(|maximum| position + maximum),
                Side::Sell => limit.long_max.map(|maximum| maximum - position),
            };
            if let Some(room) = room {
                capacity = capacity.min(room.max(0));
            }
        }
        capacity - capacity.rem_euclid(instrument.quantity_step)
    }

    /// Immediate orders that must fill whole: refused when the desk cannot take the whole size.
    pub(super) fn require_capacity(
        &self,
        instrument: &Instrument,
        side: Side,
        quantity: i128,
    ) -> Result<(), CommandError> {
        let capacity = self.desk_capacity(instrument, side, quantity);
        if capacity < quantity {
            let scale = self.catalog().and_then(|catalog| catalog.asset(&instrument.base)).map(|asset| asset.scale);
            let in_units = |units: i128| match scale {
                Some(scale) => format!("{} {}", crate::readable::amount(units, scale), instrument.base),
                None => format!("{units} (base minor units)"),
            };
            return Err(CommandError::DeskCapacity {
                detail: format!(
                    "the desk can take at most {} of {} now; the order asks for {}",
                    in_units(capacity),
                    instrument.symbol,
                    in_units(quantity)
                ),
            });
        }
        Ok(())
    }

    /// The quote-asset side of a trade: refused when it would carry the desk past a limit in that asset.
    pub(super) fn check_quote_asset_limit(&self, asset: AssetCode, desk_change: i128) -> Result<(), CommandError> {
        let Some(limit) = self.position_limits.get(&asset) else { return Ok(()) };
        let after = self.desk_position(asset) + desk_change;
        let too_long = limit.long_max.is_some_and(|maximum| desk_change > 0 && after > maximum);
        let too_short = limit.short_max.is_some_and(|maximum| desk_change < 0 && after < -maximum);
        if too_long || too_short {
            return Err(CommandError::DeskCapacity {
                detail: format!("the trade would carry the desk's {asset} position past its limit"),
            });
        }
        Ok(())
    }
}

fn validate_reason(reason: Option<&str>) -> Result<(), CommandError> {
    if reason.is_some_and(|reason| reason.len() > HALT_REASON_BYTES_MAX) {
        return Err(CommandError::invalid("reason", "is longer than 500 bytes"));
    }
    Ok(())
}
