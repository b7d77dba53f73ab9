//! The process's own resource limits, raised at start.

/// Descriptors kept out of the connection caps: the journal's segments, snapshots, reports, the listener,
/// sanctions lists and what the runtime itself opens.
pub const DESCRIPTORS_RESERVED: u64 = 256;

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit and answers the soft limit in force.
/// A service started with the common default of 1,024 descriptors would otherwise run out of them long before
/// its connection caps, and a full descriptor table turns every client away. libc directly: two calls, no crate.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-files limit");
        return 1_024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(from = limit.rlim_cur, to = raised.rlim_cur, "raised the open-files limit");
            limit = raised;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), soft = limit.rlim_cur, "cannot raise the open-files limit");
        }
    }
    limit.rlim_cur
}
