//! CPU priority of the desk's background threads.
//!
//! The trade path is the HTTP workers, the engine thread and the journal thread. The reports projection, the
//! snapshot writer and the checkpoint signer only follow the journal, and nothing on the trade path waits for
//! them. On a small machine (the reference machine has 2 cores) they must not take a core from a command that
//! is waiting, so the projection and the snapshot writer run under Linux's `SCHED_IDLE` policy (the checkpoint
//! signer, whose CPU work is tiny and whose delay widens the unsigned window, only at `nice 10`): they use CPU time the trade path leaves, and the
//! scheduler preempts them as soon as any normal thread wakes on their core.
//!
//! Why not only `nice`: under EEVDF (Linux 6.6 and later) a woken thread preempts the running one only if it is
//! eligible, and the busy trade-path threads are often not (they have used more than their share lately). A
//! `nice 10` snapshot follower was seen (`perf sched timehist`) keeping a core until the next scheduler tick
//! while an HTTP worker with a reply ready waited for it (BENCHMARKS.md, "HTTP"). A `SCHED_IDLE` thread is preempted
//! at every wake-up of a normal one, whatever its lag. The cost: on a machine saturated for a long time,
//! snapshots and reports fall behind (and catch up when the load drops); the trade path never waits for them.
//!
//! `setpriority` and `sched_setscheduler` are called through `libc` directly: they are one call each, and the
//! crates that wrap thread priorities mostly deal with real-time policies this desk does not want.

/// The `nice` value of background threads (0 is the default, 19 the lowest priority), set first and kept where
/// `SCHED_IDLE` is not available.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority: `nice` [`BACKGROUND_NICE`] (never raised: a desk started with `nice 15`
/// keeps 15), then the `SCHED_IDLE` policy. Best effort: a failure is logged, never fatal.
/// Only on Linux, where both can be set per thread; elsewhere it does nothing.
pub fn lower_current_thread_priority() {
    lower_current_thread_nice();
    #[cfg(target_os = "linux")]
    {
        let parameters = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads its arguments, the last a pointer to a live, initialized
        // `sched_param`; a thread id applies to that thread alone (sched_setscheduler(2)).
        let idle_result = unsafe { libc::sched_setscheduler(libc::gettid(), libc::SCHED_IDLE, &parameters) };
        log_failure(idle_result, "SCHED_IDLE");
    }
}

/// Lowers the calling thread's priority to `nice` [`BACKGROUND_NICE`] only (never raised), without `SCHED_IDLE`.
/// For the checkpoint signer: its work is a signature and a few fsyncs every 100 ms (microseconds of CPU), too
/// little to hold a core from the trade path, and under `SCHED_IDLE` a saturated machine starved it: the window
/// of durable but unsigned records grew from about 0.1 s to 0.5–2 s (BENCHMARKS.md, "Checkpoint window").
pub fn lower_current_thread_nice() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` has no preconditions; `getpriority` and `setpriority` only read their arguments. On
        // Linux, a thread id applies to that thread alone (setpriority(2), "BUGS").
        let nice_result = unsafe {
            let thread = libc::gettid() as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, thread);
            libc::setpriority(libc::PRIO_PROCESS, thread, current.max(BACKGROUND_NICE))
        };
        log_failure(nice_result, "nice");
    }
}

/// Logs a failed priority call right after it, while `errno` is still that call's.
#[cfg(target_os = "linux")]
fn log_failure(result: libc::c_int, setting: &str) {
    if result != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, setting, "could not lower a background thread's priority");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn current_thread_nice() -> i32 {
        // SAFETY: as above; `getpriority` only reads its arguments.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    fn current_thread_policy() -> i32 {
        // SAFETY: `sched_getscheduler` only reads its argument.
        unsafe { libc::sched_getscheduler(libc::gettid()) }
    }

    #[test]
    fn lowers_only_the_calling_thread() {
        let (nice_before, policy_before) = (current_thread_nice(), current_thread_policy());
        let (lowered_nice, lowered_policy) = std::thread::spawn(|| {
            lower_current_thread_priority();
            (current_thread_nice(), current_thread_policy())
        })
        .join()
        .unwrap();
        assert_eq!(lowered_nice, BACKGROUND_NICE.max(nice_before));
        assert_eq!(lowered_policy, libc::SCHED_IDLE);
        assert_eq!(current_thread_nice(), nice_before, "the spawning thread keeps its priority");
        assert_eq!(current_thread_policy(), policy_before, "the spawning thread keeps its policy");
        assert_eq!(policy_before, libc::SCHED_OTHER);
    }
}
