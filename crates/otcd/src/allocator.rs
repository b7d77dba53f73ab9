//! The global allocator and how it is tuned.
//!
//! The engine thread allocates what other threads free (journal payloads, replies, snapshots), which the system
//! allocator handles slowly on the trade path and mimalloc does not (BENCHMARKS.md, "Execution").
//!
//! mimalloc returns freed memory to the OS after a delay (1 s in the bundled mimalloc 3). The desk instead keeps it: memory that has been
//! touched once is reused without a page fault, which is what the engine's start-up prefault
//! (`otcd_host::runner::prefault_heap`) relies on (page faults inside engine commands: BENCHMARKS.md). A desk's
//! memory only grows with its history, so little would be returned anyway.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`. The bindings do not name the options of mimalloc v3 (they call them
/// unstable); the test below checks this index against the option's documented default, so an upgrade that
/// renumbers the options fails the build's tests instead of setting the wrong option.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// "Never purge" for `purge_delay`.
const PURGE_NEVER: std::os::raw::c_long = -1;

/// Keeps freed memory mapped (call before starting threads: mimalloc's option setters are not thread safe).
pub fn keep_freed_memory() {
    // SAFETY: sets one option value; called on the main thread before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_NEVER) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_index_is_the_one_with_its_documented_default() {
        // SAFETY: reads one option value; the test touches no other option.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // 1000 ms is purge_delay's default in the bundled mimalloc 3 (src/options.c); no neighbouring option has it.
        assert!(
            value == 1_000 || value == PURGE_NEVER,
            "option {MI_OPTION_PURGE_DELAY} is not purge_delay (value {value})"
        );
    }
}
