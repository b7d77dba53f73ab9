//! The high-water mark: the highest signed checkpoint the desk ever wrote, kept in a small fsynced file
//! (`journal.high-water`) beside `checkpoints.jsonl`.
//!
//! The checkpoint chain proves nothing about lines that are gone: deleting `checkpoints.jsonl`, its last
//! lines, or the journal's tail together with them leaves a consistent, shorter history. The mark is
//! rewritten after every durable checkpoint (so it never runs ahead of the checkpoints file), and at open and
//! in `otcd verify` a checkpoints file or journal behind it is a rollback. With no mark and no checkpoints,
//! a journal holding more records than a checkpoint interval can leave unsigned is refused too.
//!
//! Deleting the mark together with the checkpoint lines is not detected here: that needs a copy outside
//! the data directory (a checkpoint witness).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointError, CheckpointFile};

/// File name of the mark, in the directory of the checkpoints file.
pub const HIGH_WATER_FILE: &str = "journal.high-water";
/// Most records a journal without any checkpoint (and without a mark) may hold: the desk signs its durable
/// head at least every `CHECKPOINT_EVERY_RECORDS_MAX` records, so more means the checkpoints were removed.
pub const UNSIGNED_RECORDS_MAX: u64 = 10_000;
/// Largest configurable records-per-checkpoint interval (leaves room for a group commit below
/// [`UNSIGNED_RECORDS_MAX`]).
pub const CHECKPOINT_EVERY_RECORDS_MAX: u64 = 5_000;
/// Largest mark file read (it is a one-line JSON object).
const HIGH_WATER_BYTES_MAX: u64 = 4_096;

/// The highest checkpoint written: its seq and its index (the count of checkpoint lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWater {
    pub seq: u64,
    pub checkpoints: u64,
}

/// Where the mark of the checkpoints file at `checkpoints_path` lives.
pub fn high_water_path(checkpoints_path: &Path) -> PathBuf {
    checkpoints_path.parent().unwrap_or(Path::new(".")).join(HIGH_WATER_FILE)
}

fn io_error<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io { operation, path: path.to_path_buf(), source }
}

/// Reads the mark of the checkpoints file at `checkpoints_path` (`None`: never written).
pub fn read_high_water(checkpoints_path: &Path) -> Result<Option<HighWater>, CheckpointError> {
    let path = high_water_path(checkpoints_path);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read high-water mark", &path)(error)),
    };
    let rollback = |reason: String| CheckpointError::Rollback { reason, high_water: path.clone() };
    if bytes.len() as u64 > HIGH_WATER_BYTES_MAX {
        return Err(rollback(format!("the high-water mark is larger than {HIGH_WATER_BYTES_MAX} bytes")));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| rollback(format!("the high-water mark is unreadable: {error}")))
}

/// Replaces the mark durably (temporary file, fsync, rename, fsync of the directory).
pub fn write_high_water(checkpoints_path: &Path, mark: HighWater) -> Result<(), CheckpointError> {
    let path = high_water_path(checkpoints_path);
    let temporary = path.with_extension("high-water.tmp");
    let mut line = serde_json::to_string(&mark).expect("a high-water mark serializes");
    line.push('\n');
    File::create(&temporary)
        .and_then(|mut file| file.write_all(line.as_bytes()).and_then(|()| file.sync_all()))
        .map_err(io_error("write high-water mark", &temporary))?;
    fs::rename(&temporary, &path).map_err(io_error("rename high-water mark", &path))?;
    if let Some(parent) = path.parent() {
        File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_error("fsync directory", parent))?;
    }
    Ok(())
}

/// The mark that describes `file` as it is now.
pub fn high_water_of(file: &CheckpointFile) -> HighWater {
    HighWater { seq: file.last().map_or(0, |last| last.seq), checkpoints: file.checkpoints.len() as u64 }
}

/// Refuses a checkpoints file or journal (whose last record is `journal_head_seq`) that is behind `mark`
/// (read *before* the checkpoints file, so a desk writing concurrently never makes it look ahead), or a journal
/// with more unsigned records than a checkpoint interval allows while no checkpoint and no mark exist.
pub fn check_rollback(
    checkpoints_path: &Path,
    mark: Option<HighWater>,
    file: &CheckpointFile,
    journal_head_seq: u64,
) -> Result<(), CheckpointError> {
    let rollback = |reason: String| CheckpointError::Rollback { reason, high_water: high_water_path(checkpoints_path) };
    let path = checkpoints_path.display();
    let count = file.checkpoints.len() as u64;
    let last_seq = file.last().map_or(0, |last| last.seq);
    match mark {
        Some(mark) => {
            if count < mark.checkpoints {
                return Err(rollback(format!(
                    "{path} holds {count} checkpoints but {} were written before (missing or cut checkpoint lines)",
                    mark.checkpoints
                )));
            }
            if last_seq < mark.seq {
                return Err(rollback(format!(
                    "the newest checkpoint in {path} signs seq {last_seq} but seq {} was signed before",
                    mark.seq
                )));
            }
            if journal_head_seq < mark.seq {
                return Err(rollback(format!(
                    "the journal ends at seq {journal_head_seq} but seq {} was durable and signed (records were cut \
                     at a record boundary)",
                    mark.seq
                )));
            }
        }
        None if count == 0 && journal_head_seq > UNSIGNED_RECORDS_MAX => {
            return Err(rollback(format!(
                "{path} is missing or empty but the journal holds {journal_head_seq} records, more than the \
                 {UNSIGNED_RECORDS_MAX} a desk can leave unsigned (the checkpoints were deleted)"
            )));
        }
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::ChainHead;
    use ed25519_dalek::SigningKey;

    fn file_with(seqs: &[u64]) -> CheckpointFile {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut file = CheckpointFile::default();
        for (position, &seq) in seqs.iter().enumerate() {
            let prev = file.last().map_or([0; 32], Checkpoint::hash);
            let head = ChainHead { seq, hash: [seq as u8; 32] };
            file.checkpoints.push(Checkpoint::sign(position as u64 + 1, head, 0, prev, &key));
        }
        file
    }

    #[test]
    fn a_file_or_journal_behind_the_mark_is_a_rollback() {
        let path = Path::new("/nonexistent/checkpoints.jsonl");
        let mark = Some(HighWater { seq: 30, checkpoints: 3 });
        assert!(check_rollback(path, mark, &file_with(&[10, 20, 30]), 31).is_ok());
        for (file, journal_seq) in [(file_with(&[10, 20]), 31), (file_with(&[]), 31), (file_with(&[10, 20, 30]), 29)] {
            let error = check_rollback(path, mark, &file, journal_seq).unwrap_err();
            assert!(matches!(error, CheckpointError::Rollback { .. }), "{error}");
        }
        // Three lines, but the newest signs an older seq than the mark: the lines were replaced.
        let mark = Some(HighWater { seq: 40, checkpoints: 3 });
        assert!(check_rollback(path, mark, &file_with(&[10, 20, 30]), 40).is_err());
    }

    #[test]
    fn without_a_mark_only_a_long_unsigned_journal_is_refused() {
        let path = Path::new("/nonexistent/checkpoints.jsonl");
        assert!(check_rollback(path, None, &file_with(&[]), 0).is_ok());
        assert!(check_rollback(path, None, &file_with(&[]), UNSIGNED_RECORDS_MAX).is_ok());
        assert!(check_rollback(path, None, &file_with(&[]), UNSIGNED_RECORDS_MAX + 1).is_err());
        assert!(check_rollback(path, None, &file_with(&[10]), UNSIGNED_RECORDS_MAX + 1).is_ok());
    }

    #[test]
    fn the_mark_round_trips_through_its_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("checkpoints.jsonl");
        assert_eq!(read_high_water(&path).unwrap(), None);
        let mark = HighWater { seq: 12, checkpoints: 2 };
        write_high_water(&path, mark).unwrap();
        assert_eq!(read_high_water(&path).unwrap(), Some(mark));
        std::fs::write(high_water_path(&path), "not json").unwrap();
        assert!(matches!(read_high_water(&path), Err(CheckpointError::Rollback { .. })));
    }
}
