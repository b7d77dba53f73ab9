//! CPU priority of the desk's background threads.
//!
//! The trade path is the HTTP workers, the engine thread and the journal thread. The reports projection, the
//! snapshot writer and the checkpoint signer only follow the journal, and nothing on the trade path waits for
//! them. On a small machine (the reference machine has 2 cores) they must not take a core from a command that
//! is waiting, so they run at a lower priority: they use idle CPU, give way when the trade path needs it, and
//! catch up whenever the desk is not saturated. Measured on the HTTP RFQ-then-accept benchmark (BENCHMARKS.md).
//!
//! `setpriority` is called through `libc` directly: it is one call, and the crates that wrap thread priorities
//! mostly deal with real-time policies this desk does not want.

/// The `nice` value of background threads (0 is the default, 19 the lowest priority).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`] (never raises it: a desk started with `nice 15`
/// keeps 15). Best effort: a failure is logged, never fatal.
/// Only on Linux, where a priority can be set per thread; elsewhere it does nothing.
pub fn lower_current_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` has no preconditions; `getpriority` and `setpriority` only read their arguments. On
        // Linux, PRIO_PROCESS with a thread id applies to that thread alone (setpriority(2), "BUGS").
        let result = unsafe {
            let thread = libc::gettid() as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, thread);
            libc::setpriority(libc::PRIO_PROCESS, thread, current.max(BACKGROUND_NICE))
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a background thread's priority");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn current_thread_nice() -> i32 {
        // SAFETY: as above; `getpriority` only reads its arguments.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = current_thread_nice();
        let lowered = std::thread::spawn(|| {
            lower_current_thread_priority();
            current_thread_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, BACKGROUND_NICE.max(before));
        assert_eq!(current_thread_nice(), before, "the spawning thread keeps its priority");
    }
}
