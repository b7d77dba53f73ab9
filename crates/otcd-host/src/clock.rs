//! The clock port. The deterministic core never reads a clock: time reaches it inside each command, stamped by
//! the engine thread from this clock. Adapters (workers, protocol edges) read the same clock, so a test or a
//! simulation can drive the whole desk with a clock of its own.

use otcd_core::time::TimestampMs;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the desk reads the time.
pub trait Clock: Send + Sync {
    /// Unix time in milliseconds.
    fn now(&self) -> TimestampMs;
}

/// The machine's wall clock (it may step backwards; the engine keeps its own time monotonic).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> TimestampMs {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        TimestampMs(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicI64,
}

impl ManualClock {
    pub fn starting_at(now: TimestampMs) -> Self {
        Self { now_ms: AtomicI64::new(now.0) }
    }

    pub fn set(&self, now: TimestampMs) {
        self.now_ms.store(now.0, Ordering::Release);
    }

    pub fn advance_ms(&self, milliseconds: i64) {
        self.now_ms.fetch_add(milliseconds, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> TimestampMs {
        TimestampMs(self.now_ms.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::starting_at(TimestampMs(1_000));
        assert_eq!(clock.now(), TimestampMs(1_000));
        clock.advance_ms(250);
        assert_eq!(clock.now(), TimestampMs(1_250));
        clock.set(TimestampMs(5));
        assert_eq!(clock.now(), TimestampMs(5));
    }

    #[test]
    fn the_system_clock_is_unix_milliseconds() {
        let now = SystemClock.now().0;
        assert!(now > 1_700_000_000_000, "{now} is after November 2023");
    }
}
