//! Small filesystem helpers: directory locking and directory fsync.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{io_error, JournalError};

/// Opens `dir` and takes an exclusive, non-blocking `flock` on it. Two writers on one journal
/// would interleave records and break the chain, so the second one must fail fast instead.
/// The lock lives as long as the returned handle.
pub(crate) fn lock_directory(dir: &Path) -> Result<File, JournalError> {
    let handle = File::open(dir).map_err(io_error("open journal directory", dir))?;
    // SAFETY: flock only reads the descriptor number, which `handle` keeps open for the call.
    let rc = unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(handle);
    }
    let error = io::Error::last_os_error();
    if error.kind() == io::ErrorKind::WouldBlock {
        return Err(JournalError::Locked { path: dir.to_path_buf() });
    }
    Err(io_error("lock journal directory", dir)(error))
}

/// Makes creations, renames and deletions inside `dir` durable.
pub(crate) fn sync_directory(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(io_error("fsync directory", dir))
}
