//! The checkpoint witness: a copy of every signed checkpoint, appended to a file outside the data directory
//! (config key `checkpoint_witness_file`, ideally on another disk or a mount another machine owns).
//!
//! The high-water mark sees a checkpoints file or journal cut behind it, but not a consistent rollback of the
//! whole data directory (journal, checkpoints and mark restored together from an older copy). The witness does:
//! it holds checkpoints the data directory no longer has, or has with another hash. At start the desk refuses a
//! data directory whose checkpoints file lacks the witness's newest checkpoint or holds another one at its index,
//! and `otcd verify --witness FILE` checks every witnessed checkpoint against the data directory.
//!
//! # File format
//!
//! The lines of `checkpoints.jsonl`, byte for byte, each ending in `\n`. Indexes strictly increase; a line may
//! be missing (a failed write to the witness is skipped, the next checkpoint is witnessed again), so the
//! checkpoint chain is checked only between consecutive indexes. Every line is signed by the desk key, so the
//! witness cannot be forged by whoever holds it; it can only be deleted, which loses the protection, not the
//! desk's data.
//!
//! # Crash rules
//!
//! A witness line is written after the checkpoint line and the mark are durable, so the witness lags the data
//! directory, never leads it. A final line without `\n` is an interrupted write: the writer cuts it off at open,
//! the reader ignores it. A write that fails half-way is cut off before the next one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointFile};

/// Longest witness line read (a checkpoint line is about 400 bytes).
const WITNESS_LINE_BYTES_MAX: usize = 4_096;
/// How often a witness that keeps failing is logged again.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// What a full read of a witness file found.
#[derive(Clone, Debug, Default)]
pub struct WitnessContents {
    /// Witnessed checkpoints, in file order.
    pub checkpoints: Vec<Checkpoint>,
    /// Indexes between the first and last witnessed checkpoint that the witness does not hold.
    pub missing: u64,
    /// Bytes of an interrupted final line.
    pub torn_bytes: u64,
}

/// What [`check_witness`] found when the data directory agrees with its witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WitnessAgreement {
    /// Checkpoints of the witness compared with the data directory's.
    pub witnessed: u64,
    /// The newest witnessed checkpoint's index (0: the witness is empty).
    pub last_index: u64,
    /// Checkpoints of the data directory the witness does not hold yet (it lags; not an error).
    pub lagging: u64,
}

fn io_error<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io { operation, path: path.to_path_buf(), source }
}

fn malformed(path: &Path, line: u64, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Witness {
        reason: format!("line {line} is not a desk checkpoint: {}", reason.into()),
        witness: path.into(),
    }
}

/// Parses one witness line and checks its signature.
fn parse_line(line: &[u8], number: u64, key: &VerifyingKey, path: &Path) -> Result<Checkpoint, CheckpointError> {
    let checkpoint: Checkpoint =
        serde_json::from_slice(line).map_err(|error| malformed(path, number, error.to_string()))?;
    if !checkpoint.signature_is_valid(key) {
        return Err(malformed(
            path,
            number,
            format!("checkpoint #{} is not signed by this desk's key", checkpoint.index),
        ));
    }
    Ok(checkpoint)
}

/// Checks `next`'s place after `previous` in a witness: a later index and seq, and the chain where consecutive.
fn check_witness_order(
    previous: &Checkpoint,
    next: &Checkpoint,
    path: &Path,
    line: u64,
) -> Result<(), CheckpointError> {
    if next.index <= previous.index || next.seq <= previous.seq {
        return Err(malformed(
            path,
            line,
            format!(
                "checkpoint #{} (seq {}) does not follow #{} (seq {})",
                next.index, next.seq, previous.index, previous.seq
            ),
        ));
    }
    if next.index == previous.index + 1 {
        next.check_follows(Some(previous)).map_err(|reason| malformed(path, line, reason))?;
    }
    Ok(())
}

/// Reads and checks every line of the witness at `path`: each a checkpoint signed by `key`, in increasing order,
/// chained where consecutive. A missing file is an error here (the operator named it).
pub fn read_witness(path: &Path, key: &VerifyingKey) -> Result<WitnessContents, CheckpointError> {
    let file = File::open(path).map_err(io_error("open checkpoint witness", path))?;
    let mut reader = BufReader::new(file);
    let mut contents = WitnessContents::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(WITNESS_LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_error("read checkpoint witness", path))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.last() != Some(&b'\n') {
            if line.len() > WITNESS_LINE_BYTES_MAX {
                return Err(malformed(path, number, format!("longer than {WITNESS_LINE_BYTES_MAX} bytes")));
            }
            contents.torn_bytes = line.len() as u64;
            break;
        }
        let checkpoint = parse_line(&line[..line.len() - 1], number, key, path)?;
        if let Some(previous) = contents.checkpoints.last() {
            check_witness_order(previous, &checkpoint, path, number)?;
            contents.missing += checkpoint.index - previous.index - 1;
        }
        contents.checkpoints.push(checkpoint);
    }
    Ok(contents)
}

/// The witness's newest complete line, read from the end of the file (a start never reads the whole witness),
/// and the length of the file up to and including it.
fn read_last(file: &mut File, key: &VerifyingKey, path: &Path) -> Result<(Option<Checkpoint>, u64), CheckpointError> {
    let len = file.metadata().map_err(io_error("stat checkpoint witness", path))?.len();
    let window = len.min(2 * WITNESS_LINE_BYTES_MAX as u64);
    file.seek(SeekFrom::Start(len - window)).map_err(io_error("seek checkpoint witness", path))?;
    let mut tail = Vec::with_capacity(window as usize);
    file.take(window).read_to_end(&mut tail).map_err(io_error("read checkpoint witness", path))?;
    let Some(end) = tail.iter().rposition(|&byte| byte == b'\n') else {
        if len > window {
            return Err(malformed(path, 0, "its last line is too long"));
        }
        return Ok((None, 0));
    };
    let start = tail[..end].iter().rposition(|&byte| byte == b'\n').map_or(0, |position| position + 1);
    if start == 0 && len > window {
        return Err(malformed(path, 0, "its last line is too long"));
    }
    let checkpoint = parse_line(&tail[start..end], 0, key, path)?;
    Ok((Some(checkpoint), len - window + end as u64 + 1))
}

/// Compares the data directory's checkpoints with `witnessed` (witness lines, oldest first): each must be in the
/// checkpoints file, identical at its index. Fails naming the first that is not.
pub fn check_witness(
    local: &CheckpointFile,
    witnessed: &[Checkpoint],
    witness_path: &Path,
    checkpoints_path: &Path,
) -> Result<WitnessAgreement, CheckpointError> {
    let local_count = local.checkpoints.len() as u64;
    for checkpoint in witnessed {
        let rollback = |reason: String| CheckpointError::Witness { reason, witness: witness_path.to_path_buf() };
        let position = checkpoint.index.checked_sub(1).and_then(|at| usize::try_from(at).ok());
        let Some(ours) = position.and_then(|at| local.checkpoints.get(at)) else {
            return Err(rollback(format!(
                "the witness holds checkpoint #{} (seq {}) but {} ends at checkpoint #{local_count} (the data \
                 directory was rolled back, checkpoints and journal together)",
                checkpoint.index,
                checkpoint.seq,
                checkpoints_path.display()
            )));
        };
        if ours != checkpoint {
            return Err(rollback(format!(
                "checkpoint #{} in {} signs seq {} with head {} but the witness holds seq {} with head {} (the data \
                 directory's history was replaced)",
                checkpoint.index,
                checkpoints_path.display(),
                ours.seq,
                hex::encode(ours.head_hash),
                checkpoint.seq,
                hex::encode(checkpoint.head_hash)
            )));
        }
    }
    let last_index = witnessed.last().map_or(0, |last| last.index);
    Ok(WitnessAgreement {
        witnessed: witnessed.len() as u64,
        last_index,
        lagging: local_count.saturating_sub(last_index),
    })
}

/// The desk's writer of the witness. Owned by the checkpoint log; every append is fdatasynced.
pub struct WitnessLog {
    path: PathBuf,
    file: File,
    /// Length of the file up to its last complete line: a failed write is cut back to it.
    valid_len: u64,
    last_index: u64,
    failing_since: Option<Instant>,
    failure_logged_at: Option<Instant>,
    failures: u64,
}

impl WitnessLog {
    /// Opens (creating if missing) the witness at `path`, cuts off an interrupted final line, checks the data
    /// directory's checkpoints `local` against the witness's newest checkpoint, and appends the checkpoints the
    /// witness lacks. A disagreement is [`CheckpointError::Witness`] and changes nothing.
    pub fn open(
        path: &Path,
        key: &VerifyingKey,
        local: &CheckpointFile,
        checkpoints_path: &Path,
    ) -> Result<(WitnessLog, WitnessAgreement), CheckpointError> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io_error("open checkpoint witness", path))?;
        let (last, valid_len) = read_last(&mut file, key, path)?;
        let agreement = check_witness(local, last.as_slice(), path, checkpoints_path)?;
        let len = file.metadata().map_err(io_error("stat checkpoint witness", path))?.len();
        if len > valid_len {
            tracing::warn!(path = %path.display(), bytes = len - valid_len, "cut off an interrupted witness line");
            file.set_len(valid_len).map_err(io_error("truncate checkpoint witness", path))?;
        }
        let mut log = WitnessLog {
            path: path.to_path_buf(),
            file,
            valid_len,
            last_index: agreement.last_index,
            failing_since: None,
            failure_logged_at: None,
            failures: 0,
        };
        let missing: Vec<&Checkpoint> = local.checkpoints.iter().filter(|c| c.index > log.last_index).collect();
        log.write(&missing)?;
        if !existed {
            if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_error("fsync directory", parent))?;
            }
        }
        Ok((log, agreement))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes witness lines failed since the desk started.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Appends `checkpoints` durably, first cutting off what a failed earlier write left behind.
    fn write(&mut self, checkpoints: &[&Checkpoint]) -> Result<(), CheckpointError> {
        if checkpoints.is_empty() {
            return Ok(());
        }
        let len = self.file.metadata().map_err(io_error("stat checkpoint witness", &self.path))?.len();
        if len != self.valid_len {
            self.file.set_len(self.valid_len).map_err(io_error("truncate checkpoint witness", &self.path))?;
        }
        let mut lines = String::new();
        checkpoints.iter().for_each(|checkpoint| lines.push_str(&checkpoint.to_line()));
        self.file.write_all(lines.as_bytes()).map_err(io_error("write checkpoint witness", &self.path))?;
        self.file.sync_data().map_err(io_error("fdatasync checkpoint witness", &self.path))?;
        self.valid_len += lines.len() as u64;
        self.last_index = checkpoints.last().map_or(self.last_index, |last| last.index);
        Ok(())
    }

    /// Witnesses `checkpoint` (already durable in the checkpoints file). A failure is logged (at most once a
    /// minute while it lasts) and counted, never fatal: the desk's own files hold the checkpoint, and the next
    /// one is witnessed again.
    pub fn append(&mut self, checkpoint: &Checkpoint) {
        debug_assert!(checkpoint.index > self.last_index, "the checkpoint log only moves forward");
        match self.write(&[checkpoint]) {
            Ok(()) => {
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(path = %self.path.display(), failing_s = since.elapsed().as_secs(), "checkpoint witness writable again");
                }
            }
            Err(error) => {
                self.failures += 1;
                self.failing_since.get_or_insert_with(Instant::now);
                if self.failure_logged_at.is_none_or(|logged| logged.elapsed() >= FAILURE_LOG_EVERY) {
                    self.failure_logged_at = Some(Instant::now());
                    tracing::error!(%error, failures = self.failures, "cannot write the checkpoint witness");
                }
            }
        }
    }
}

/// Moves a witness that no longer matches a knowingly restored data directory (`--accept-rollback`) aside as
/// `<name>.rolled-back-<unix ms>`, kept as evidence; the desk then starts a new witness.
pub fn set_witness_aside(path: &Path, now_ms: i64) -> Result<PathBuf, CheckpointError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".rolled-back-{now_ms}"));
    let aside = path.with_file_name(name);
    fs::rename(path, &aside).map_err(io_error("set aside checkpoint witness", path))?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChainHead;
    use ed25519_dalek::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A checkpoints file of checkpoints at `seqs`, signed by `key` (head hashes derived from `fork`).
    fn file_with(seqs: &[u64], fork: u8, key: &SigningKey) -> CheckpointFile {
        let mut file = CheckpointFile::default();
        for (position, &seq) in seqs.iter().enumerate() {
            let prev = file.last().map_or([0; 32], Checkpoint::hash);
            let head = ChainHead { seq, hash: [seq as u8 ^ fork; 32] };
            file.checkpoints.push(Checkpoint::sign(position as u64 + 1, head, 0, prev, key));
        }
        file
    }

    fn open(path: &Path, local: &CheckpointFile) -> Result<(WitnessLog, WitnessAgreement), CheckpointError> {
        WitnessLog::open(path, &key().verifying_key(), local, Path::new("checkpoints.jsonl"))
    }

    #[test]
    fn a_new_witness_catches_up_and_then_follows_every_checkpoint() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("witness.jsonl");
        let local = file_with(&[10, 20, 30], 0, &key());
        let (mut witness, agreement) = open(&path, &file_with(&[10, 20], 0, &key())).unwrap();
        assert_eq!(agreement, WitnessAgreement { witnessed: 0, last_index: 0, lagging: 2 });
        witness.append(&local.checkpoints[2]);
        let read = read_witness(&path, &key().verifying_key()).unwrap();
        assert_eq!(read.checkpoints, local.checkpoints);
        assert_eq!((read.missing, read.torn_bytes, witness.failures()), (0, 0, 0));
        // Reopened beside the same data directory: it agrees and has nothing to catch up.
        let (_, agreement) = open(&path, &local).unwrap();
        assert_eq!(agreement, WitnessAgreement { witnessed: 1, last_index: 3, lagging: 0 });
    }

    #[test]
    fn a_data_directory_behind_or_beside_its_witness_is_refused_and_nothing_changes() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("witness.jsonl");
        open(&path, &file_with(&[10, 20, 30], 0, &key())).unwrap();
        let before = fs::read(&path).unwrap();
        // Journal, checkpoints and mark restored together from an older copy: two checkpoints, not three.
        let error = open(&path, &file_with(&[10, 20], 0, &key())).err().unwrap();
        assert!(matches!(error, CheckpointError::Witness { .. }), "{error}");
        assert!(error.to_string().contains("ends at checkpoint #2"), "{error}");
        // A history replaced by another of the same length.
        let error = open(&path, &file_with(&[10, 20, 30], 0x55, &key())).err().unwrap();
        assert!(error.to_string().contains("history was replaced"), "{error}");
        assert_eq!(fs::read(&path).unwrap(), before);
        // The offline check reads every line and says the same.
        let all = read_witness(&path, &key().verifying_key()).unwrap();
        let local = file_with(&[10, 20], 0, &key());
        assert!(check_witness(&local, &all.checkpoints, &path, Path::new("c")).is_err());
    }

    #[test]
    fn an_interrupted_line_is_cut_off_at_open_and_ignored_by_the_reader() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("witness.jsonl");
        let local = file_with(&[10, 20], 0, &key());
        open(&path, &local).unwrap();
        let complete = fs::read(&path).unwrap();
        let mut torn = complete.clone();
        torn.extend_from_slice(&local.checkpoints[1].to_line().as_bytes()[..50]);
        fs::write(&path, &torn).unwrap();
        assert_eq!(read_witness(&path, &key().verifying_key()).unwrap().torn_bytes, 50);
        open(&path, &local).unwrap();
        assert_eq!(fs::read(&path).unwrap(), complete);
    }

    #[test]
    fn gaps_are_allowed_but_forged_reordered_or_foreign_lines_are_not() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("witness.jsonl");
        let local = file_with(&[10, 20, 30, 40], 0, &key());
        let lines =
            |indexes: &[usize]| -> String { indexes.iter().map(|&index| local.checkpoints[index].to_line()).collect() };
        fs::write(&path, lines(&[0, 1, 3])).unwrap();
        let read = read_witness(&path, &key().verifying_key()).unwrap();
        assert_eq!((read.checkpoints.len(), read.missing), (3, 1));
        assert!(check_witness(&local, &read.checkpoints, &path, Path::new("c")).is_ok());
        fs::write(&path, lines(&[1, 0])).unwrap();
        assert!(read_witness(&path, &key().verifying_key()).is_err());
        let other = file_with(&[10], 0, &SigningKey::from_bytes(&[9; 32]));
        fs::write(&path, other.checkpoints[0].to_line()).unwrap();
        let error = read_witness(&path, &key().verifying_key()).unwrap_err();
        assert!(error.to_string().contains("not signed by this desk's key"), "{error}");
        fs::write(&path, "garbage\n").unwrap();
        assert!(read_witness(&path, &key().verifying_key()).is_err());
        assert!(open(&path, &local).is_err());
    }

    #[test]
    fn a_failed_write_is_counted_and_the_next_checkpoint_is_witnessed_again() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("witness.jsonl");
        let local = file_with(&[10, 20, 30], 0, &key());
        let (mut witness, _) = open(&path, &file_with(&[10], 0, &key())).unwrap();
        // A read-only descriptor in place of the file: every write fails.
        let writable = std::mem::replace(&mut witness.file, File::open(&path).unwrap());
        witness.append(&local.checkpoints[1]);
        assert_eq!(witness.failures(), 1);
        witness.file = writable;
        witness.append(&local.checkpoints[2]);
        let read = read_witness(&path, &key().verifying_key()).unwrap();
        assert_eq!(read.checkpoints.iter().map(|c| c.index).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(read.missing, 1);
    }

    #[test]
    fn a_witness_set_aside_keeps_its_lines() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("witness.jsonl");
        open(&path, &file_with(&[10], 0, &key())).unwrap();
        let aside = set_witness_aside(&path, 42).unwrap();
        assert!(aside.ends_with("witness.jsonl.rolled-back-42"));
        assert!(!path.exists());
        assert_eq!(read_witness(&aside, &key().verifying_key()).unwrap().checkpoints.len(), 1);
    }
}
