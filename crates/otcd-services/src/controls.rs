//! Trading controls: instrument halts and the largest fill per trade, the desk-wide kill switch, and the desk's
//! position limits per asset (the rules are the engine's: `otcd_core::engine::controls`).

use crate::{DeskServices, ServiceResult};
use otcd_core::engine::controls::{InstrumentControl, KillSwitch, PositionLimit};
use otcd_core::engine::{Actor, Command, Outcome};

impl DeskServices {
    pub async fn put_instrument_control(&self, actor: Actor, control: InstrumentControl) -> ServiceResult<()> {
        let stored = |outcome| matches!(outcome, Outcome::InstrumentControl(_)).then_some(());
        self.execute(actor, Command::PutInstrumentControl(control), stored).await.map(|_| ())
    }

    pub async fn put_kill_switch(&self, actor: Actor, switch: KillSwitch) -> ServiceResult<()> {
        let stored = |outcome| matches!(outcome, Outcome::KillSwitch(_)).then_some(());
        self.execute(actor, Command::PutKillSwitch(switch), stored).await.map(|_| ())
    }

    pub async fn put_position_limit(&self, actor: Actor, limit: PositionLimit) -> ServiceResult<()> {
        let stored = |outcome| matches!(outcome, Outcome::PositionLimit(_)).then_some(());
        self.execute(actor, Command::PutPositionLimit(limit), stored).await.map(|_| ())
    }
}
