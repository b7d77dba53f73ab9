//! The hedge worker: the adapter between the engine's hedger and the venues' order entry
//! ([`crate::ports::VenueExecution`]). It decides nothing: every `WORK_INTERVAL`, and at once when the event feed
//! publishes a trade (a client fill that may have moved a position out of its band), it
//!
//! 1. asks the engine to evaluate each asset with an enabled policy (`EvaluateHedge`, carrying the fresh books of
//!    the policy's first instrument that has any, and each venue's taker fee and balances); the engine opens a
//!    hedge, routes a retry, or does nothing (not journaled);
//! 2. works each child order the engine holds as pending or timed out: it first asks the venue for the order by
//!    its client order id, and places it only when the venue does not know it, so a crash between a send and
//!    its acknowledgement never doubles a hedge (the id is the venue's idempotency key as well);
//! 3. follows acknowledged children by status until the venue closes them.
//!
//! Every answer goes back as a journaled `HedgeReport` (fills once per venue fill id: the engine ignores a fill it
//! booked). A fill the venue reports after a close (a cancel in flight) is reported and booked like any other.

use crate::ports::{VenueAccount, VenueError, VenueExecution, VenueOrder, VenueOrderStatus};
use crate::DeskServices;
use otcd_core::catalog::AssetCode;
use otcd_core::engine::hedging::{ChildOrder, ChildState, Hedge, HedgeInputs, HedgeReport, HedgingPolicy, VenueReport};
use otcd_core::engine::{Actor, Command, Desk};
use otcd_core::market::routing::VenueTerms;
use std::sync::Arc;
use std::time::Duration;

pub const WORK_INTERVAL: Duration = Duration::from_millis(50);
/// Children worked per round: a bound on one round's venue calls.
pub const CHILDREN_PER_ROUND_MAX: usize = 64;

/// What one round needs from the desk, read in one engine query.
struct Round {
    policies: Vec<HedgingPolicy>,
    children: Vec<(Hedge, ChildOrder)>,
}

fn round_of(desk: &Desk) -> Round {
    let book = desk.hedging();
    let policies = book.policies().filter(|policy| policy.enabled || book.active(policy.asset).is_some()).cloned();
    // Only an active hedge has children that are not done: a hedge fails only with none in flight.
    let children = book
        .active_hedges()
        .flat_map(|hedge| {
            hedge.children.iter().filter(|child| !child.state.is_done()).map(|child| (hedge.clone(), child.clone()))
        })
        .take(CHILDREN_PER_ROUND_MAX)
        .collect();
    Round { policies: policies.collect(), children }
}

pub async fn run(
    state: Arc<DeskServices>,
    venues: Arc<dyn VenueExecution>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let traded = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(wake_on_trades(state.clone(), traded.clone(), stop.clone()));
    // The poll stays as the fallback: venue answers, retries, and a feed subscription that fell behind.
    let mut interval = tokio::time::interval(WORK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unavailable = UnavailableLog::default();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = traded.notified() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        work_once(&state, &venues, &mut unavailable).await;
    }
}

/// Queue of the worker's event-feed subscription (trades are all it looks for; a burst conflates to one wake).
const WAKE_QUEUE: usize = 1_024;

/// Wakes the worker when the event feed publishes a trade (durable: the engine has the position already).
async fn wake_on_trades(
    state: Arc<DeskServices>,
    traded: Arc<tokio::sync::Notify>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use otcd_core::engine::events::DeskEvent;
    use otcd_host::events::{EventFilter, SubscriptionEnded};
    loop {
        let Ok(mut events) = state.events.subscribe(EventFilter::All, WAKE_QUEUE) else {
            tokio::time::sleep(WORK_INTERVAL).await; // The poll covers the gap.
            continue;
        };
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => {
                        let mut trade = matches!(event.event, DeskEvent::Trade(_));
                        while let Some(event) = events.try_recv() {
                            trade |= matches!(event.event, DeskEvent::Trade(_));
                        }
                        if trade {
                            traded.notify_one();
                        }
                    }
                    Err(SubscriptionEnded::FellBehind) => break,
                    Err(SubscriptionEnded::Closed) => return,
                },
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
        }
    }
}

/// One round: evaluate, then work every open child.
async fn work_once(state: &Arc<DeskServices>, venues: &Arc<dyn VenueExecution>, unavailable: &mut UnavailableLog) {
    let Ok(round) = state.read(round_of).await else { return };
    if round.policies.is_empty() && round.children.is_empty() {
        return;
    }
    let accounts = {
        let venues = venues.clone();
        tokio::task::spawn_blocking(move || venues.accounts()).await.unwrap_or_default()
    };
    let mut opened = false;
    for policy in &round.policies {
        if let Some(inputs) = inputs_for(state, policy, &accounts) {
            opened |= submit(state, Command::EvaluateHedge(inputs)).await;
        }
    }
    // Children an evaluation just opened (or routed again) are sent now, not a poll later.
    let children = match opened {
        true => state.read(round_of).await.map(|round| round.children).unwrap_or(round.children),
        false => round.children,
    };
    for (hedge, child) in children {
        work_child(state, venues, &hedge, &child, unavailable).await;
    }
}

fn inputs_for(state: &DeskServices, policy: &HedgingPolicy, accounts: &[VenueAccount]) -> Option<HedgeInputs> {
    let now = state.clock.now();
    policy.instruments.iter().find_map(|symbol| {
        let instrument = state.catalog.instrument(symbol)?;
        let books: Vec<_> = state
            .market
            .fresh_books(symbol, now)
            .into_iter()
            .filter(|book| policy.venues.contains(&book.venue))
            .collect();
        let venues: Vec<VenueTerms> = accounts
            .iter()
            .filter(|account| books.iter().any(|book| book.venue == account.venue))
            .map(|account| terms(account, instrument.base, instrument.quote))
            .collect();
        (!venues.is_empty()).then(|| HedgeInputs { asset: policy.asset, instrument: symbol.clone(), books, venues })
    })
}

fn terms(account: &VenueAccount, base: AssetCode, quote: AssetCode) -> VenueTerms {
    let balance = |asset| account.balances.get(&asset).copied().unwrap_or(0).max(0);
    VenueTerms {
        venue: account.venue.clone(),
        taker_fee_centi_bps: account.taker_fee_centi_bps,
        quote_available: balance(quote),
        base_available: balance(base),
    }
}

async fn work_child(
    state: &DeskServices,
    venues: &Arc<dyn VenueExecution>,
    hedge: &Hedge,
    child: &ChildOrder,
    unavailable: &mut UnavailableLog,
) {
    let (venue, id) = (child.venue.clone(), child.client_order_id.clone());
    // Always ask first: after a restart the engine cannot know whether its last send reached the venue.
    let known = blocking(venues, move |venues| venues.status(&venue, &id)).await;
    let status = match known {
        Ok(Some(status)) => Ok(status),
        Ok(None) if child.state == ChildState::Pending => {
            let order = VenueOrder {
                venue: child.venue.clone(),
                client_order_id: child.client_order_id.clone(),
                instrument: hedge.instrument.clone(),
                side: hedge.side,
                quantity: child.quantity,
                limit_price: child.limit_price,
            };
            blocking(venues, move |venues| venues.place(&order)).await
        }
        // Timed out earlier and the venue never got it: closed, the engine routes the rest again.
        Ok(None) => Err(VenueError::Rejected("not known at the venue after a timeout".into())),
        Err(error) => Err(error),
    };
    match status {
        Ok(status) => report_status(state, child, &status).await,
        Err(VenueError::Rejected(reason)) => {
            let report = if child.state == ChildState::Pending {
                VenueReport::Rejected { reason }
            } else {
                VenueReport::Closed { reason }
            };
            send_report(state, child, report).await;
        }
        Err(VenueError::Timeout) => {
            if child.state != ChildState::TimedOut {
                send_report(state, child, VenueReport::TimedOut).await;
            }
        }
        Err(VenueError::Unavailable(error)) => {
            if unavailable.due(&child.venue, std::time::Instant::now()) {
                tracing::warn!(%error, venue = %child.venue, order = %child.client_order_id, "venue unavailable");
            }
        }
    }
}

/// How often an unavailable venue is logged: a lasting cause (clock skew, a rate-limit pause, an outage) would
/// otherwise log every round, twenty times a second.
const UNAVAILABLE_LOG_EVERY: Duration = Duration::from_secs(60);

/// When each venue's unavailability was last logged; the worker's own, so one desk's venues never quiet
/// another's. Bounded: venues come from the configured adapters, and the map is cleared past `VENUES_MAX`.
#[derive(Default)]
struct UnavailableLog {
    logged_at: std::collections::HashMap<String, std::time::Instant>,
}

impl UnavailableLog {
    const VENUES_MAX: usize = 256;

    /// Whether the venue's unavailability should be logged at `now`: at most once per [`UNAVAILABLE_LOG_EVERY`].
    fn due(&mut self, venue: &str, now: std::time::Instant) -> bool {
        if let Some(at) = self.logged_at.get_mut(venue) {
            if now.duration_since(*at) < UNAVAILABLE_LOG_EVERY {
                return false;
            }
            *at = now;
            return true;
        }
        if self.logged_at.len() >= Self::VENUES_MAX {
            self.logged_at.clear();
        }
        self.logged_at.insert(venue.to_owned(), now);
        true
    }
}

async fn report_status(state: &DeskServices, child: &ChildOrder, status: &VenueOrderStatus) {
    if child.venue_order_id.is_none() {
        let acknowledged = VenueReport::Acknowledged { venue_order_id: status.venue_order_id.clone() };
        send_report(state, child, acknowledged).await;
    }
    for fill in status.fills.iter().filter(|fill| !child.fill_ids.contains(&fill.fill_id)) {
        let report = VenueReport::Fill {
            fill_id: fill.fill_id.clone(),
            quantity: fill.quantity,
            price: fill.price,
            fee: fill.fee,
        };
        send_report(state, child, report).await;
    }
    let filled: i128 = status.fills.iter().map(|fill| fill.quantity).sum();
    if !status.open && filled < child.quantity {
        let reason = status.reason.clone().unwrap_or_else(|| "closed by the venue".into());
        send_report(state, child, VenueReport::Closed { reason }).await;
    }
}

async fn send_report(state: &DeskServices, child: &ChildOrder, report: VenueReport) {
    let report = HedgeReport { client_order_id: child.client_order_id.clone(), report };
    submit(state, Command::HedgeReport(report)).await;
}

async fn blocking<T: Send + 'static>(
    venues: &Arc<dyn VenueExecution>,
    call: impl FnOnce(&dyn VenueExecution) -> Result<T, VenueError> + Send + 'static,
) -> Result<T, VenueError> {
    let venues = venues.clone();
    tokio::task::spawn_blocking(move || call(venues.as_ref()))
        .await
        .unwrap_or_else(|error| Err(VenueError::Unavailable(error.to_string())))
}

/// Whether the command changed the desk.
async fn submit(state: &DeskServices, command: Command) -> bool {
    let name = command.name();
    match state.engine.submit(Actor::default(), command).await {
        Ok(executed) => executed.changed,
        Err(error) => {
            tracing::debug!(%error, command = name, "hedge worker command not executed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{UnavailableLog, UNAVAILABLE_LOG_EVERY};
    use std::time::{Duration, Instant};

    #[test]
    fn an_unavailable_venue_is_logged_once_a_minute_each() {
        let mut log = UnavailableLog::default();
        let start = Instant::now();
        assert!(log.due("a", start));
        assert!(!log.due("a", start + Duration::from_secs(1)), "the next round within the minute is quiet");
        assert!(log.due("b", start + Duration::from_secs(1)), "another venue is logged on its own");
        assert!(log.due("a", start + UNAVAILABLE_LOG_EVERY), "a minute later it is logged again");
    }
}
