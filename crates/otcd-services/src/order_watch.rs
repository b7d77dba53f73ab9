//! The order watcher: the adapter that turns market ticks and the clock into engine commands for resting
//! orders. Every `WATCH_INTERVAL` it asks the engine which instruments have live resting orders and when the next
//! `gtd` expires; for each such instrument whose books changed (or at least every `REEVALUATE_EVERY`, since
//! limits, halts and balances change too) it sends `FillRestingOrders` with the fresh books, and when an expiry
//! is due it sends `ExpireOrders`. The engine decides which orders fill (it walks only the orders the books can
//! reach) and refuses nothing here: a tick that fills nothing is not journaled. The fills' events reach clients
//! from the durable records (`otcd_host::events`), not from here.
//!
//! A resting order therefore fills within about `WATCH_INTERVAL` of the price reaching it, and expires within
//! about `WATCH_INTERVAL` of its `expire_at`, without any request arriving.

use crate::market_inputs::fresh;
use crate::DeskServices;
use otcd_core::engine::resting::FillResting;
use otcd_core::engine::{Actor, Command};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const WATCH_INTERVAL: Duration = Duration::from_millis(100);
pub const REEVALUATE_EVERY: Duration = Duration::from_secs(1);

pub async fn run(state: Arc<DeskServices>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(WATCH_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: HashMap<String, (Vec<Option<u64>>, Instant)> = HashMap::new();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        let Ok((instruments, next_expiry)) =
            state.read(|desk| (desk.resting_orders().instruments(), desk.resting_orders().next_expiry())).await
        else {
            continue;
        };
        seen.retain(|symbol, _| instruments.contains(symbol));
        for symbol in instruments {
            let versions = market_versions(&state, &symbol);
            let due = match seen.get(&symbol) {
                Some((previous, at)) => *previous != versions || at.elapsed() >= REEVALUATE_EVERY,
                None => true,
            };
            if due {
                seen.insert(symbol.clone(), (versions, Instant::now()));
                fill(&state, &symbol).await;
            }
        }
        if next_expiry.is_some_and(|expiry| expiry <= state.clock.now()) {
            submit(&state, Command::ExpireOrders).await;
        }
    }
}

/// Versions of the instrument's books and of its cross legs: a change in any may make an order fillable.
fn market_versions(state: &DeskServices, symbol: &str) -> Vec<Option<u64>> {
    let mut versions = vec![state.market.version(symbol)];
    if let Some(instrument) = state.catalog.instrument(symbol) {
        for leg in [format!("{}-USD", instrument.base), format!("{}-USD", instrument.quote)] {
            versions.push(state.market.version(&leg));
        }
    }
    versions
}

async fn fill(state: &DeskServices, symbol: &str) {
    let Some(instrument) = state.catalog.instrument(symbol) else { return };
    let now = state.clock.now();
    let books = fresh(&state.market, symbol, now);
    let cross = state.cross_for(instrument, &books, now, true);
    if books.is_empty() && cross.is_none() {
        return; // No fresh market data: nothing can fill.
    }
    let tick = FillResting { instrument: symbol.to_owned(), books, cross };
    submit(state, Command::FillRestingOrders(tick)).await;
}

async fn submit(state: &DeskServices, command: Command) {
    if let Err(error) = state.engine.submit(Actor::default(), command).await {
        tracing::warn!(%error, "order watcher command not executed");
    }
}
