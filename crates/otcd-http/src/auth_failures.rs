//! Failed authentications of the HTTP edge: the log lives in the services (`otcd_services::auth_failures`,
//! shared with the FIX gateway); this module journals its summaries on the edge's schedule.

pub use otcd_services::auth_failures::*;

/// Journals the summary of each interval until `stop` turns true, then the last one.
pub async fn run(state: crate::app::AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(state.auth_failures.interval_ms));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => flush(&state),
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    flush(&state);
}

pub fn flush(state: &crate::app::AppState) {
    state.auth_failures.flush(&state.desk.engine);
}
