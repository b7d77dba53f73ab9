//! Snapshot files: the serialized state after applying the record at a given chain head.
//!
//! File `snapshot-{seq:020}.snap`, little-endian:
//!
//! | bytes | field                                               |
//! |-------|-----------------------------------------------------|
//! | 8     | magic `b"OTCDSNP1"`                                  |
//! | 4     | format version (1)                                  |
//! | 8     | seq of the last applied record                      |
//! | 32    | chain hash of that record                           |
//! | 8     | state length                                        |
//! | 32    | SHA-256 of the state                                |
//! | 4     | crc32c of all preceding header bytes                |
//! | n     | state                                               |

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{io_error, JournalError};
use crate::fs_util::sync_directory;
use crate::ChainHead;

const SNAPSHOT_MAGIC: [u8; 8] = *b"OTCDSNP1";
const SNAPSHOT_VERSION: u32 = 1;
const SNAPSHOT_HEADER_LEN: usize = 96;
const SNAPSHOT_HEADER_CRC_OFFSET: usize = SNAPSHOT_HEADER_LEN - 4;
/// The newest snapshot plus one fallback in case the newest turns out damaged.
const SNAPSHOTS_KEPT: usize = 2;
const TEMP_SUFFIX: &str = ".tmp";

/// A loaded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Chain head of the last record applied to `state`.
    pub at: ChainHead,
    pub state: Vec<u8>,
}

/// A directory of snapshot files.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Opens the store in `dir`, creating the directory if needed and removing temporary files
    /// left by a crash during an earlier `write`.
    pub fn new(dir: &Path) -> Result<Self, JournalError> {
        fs::create_dir_all(dir).map_err(io_error("create snapshot directory", dir))?;
        let store = Self { dir: dir.to_path_buf() };
        for path in store.temporary_files()? {
            fs::remove_file(&path).map_err(io_error("remove stale snapshot temp file", &path))?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Atomically writes a snapshot of `state` taken at `at`: temp file, fsync, rename, fsync
    /// of the directory. Then keeps only the newest two snapshots (by seq).
    pub fn write(&self, at: ChainHead, state: &[u8]) -> Result<(), JournalError> {
        let final_path = self.dir.join(snapshot_file_name(at.seq));
        let temp_path = self.dir.join(format!("{}{TEMP_SUFFIX}", snapshot_file_name(at.seq)));
        write_durably(&temp_path, &encode_header(at, state), state)?;
        fs::rename(&temp_path, &final_path).map_err(io_error("rename snapshot", &final_path))?;
        sync_directory(&self.dir)?;
        self.prune()
    }

    /// The newest snapshot whose checksums are valid. Damaged ones are logged and skipped; with
    /// no valid snapshot the caller replays the journal from genesis, which is always complete.
    pub fn load_newest(&self) -> Result<Option<Snapshot>, JournalError> {
        for (seq, path) in self.snapshots_newest_first()? {
            let bytes = match read_snapshot_file(&path) {
                Ok(bytes) => bytes,
                // Pruned by a concurrent write between listing and reading.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io_error("read snapshot", &path)(error)),
            };
            match decode_snapshot_owned(bytes, seq) {
                Ok(snapshot) => return Ok(Some(snapshot)),
                Err(reason) => tracing::warn!(
                    file = %path.display(),
                    seq,
                    %reason,
                    "skipping damaged snapshot, falling back to an older one"
                ),
            }
        }
        Ok(None)
    }

    fn prune(&self) -> Result<(), JournalError> {
        // Deletions are not fsynced: an old snapshot reappearing after a crash is harmless.
        for (_, path) in self.snapshots_newest_first()?.into_iter().skip(SNAPSHOTS_KEPT) {
            fs::remove_file(&path).map_err(io_error("remove old snapshot", &path))?;
        }
        Ok(())
    }

    fn snapshots_newest_first(&self) -> Result<Vec<(u64, PathBuf)>, JournalError> {
        let mut snapshots: Vec<(u64, PathBuf)> = self
            .file_names()?
            .into_iter()
            .filter_map(|(name, path)| Some((parse_snapshot_file_name(&name)?, path)))
            .collect();
        snapshots.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(snapshots)
    }

    fn temporary_files(&self) -> Result<Vec<PathBuf>, JournalError> {
        Ok(self
            .file_names()?
            .into_iter()
            .filter(|(name, _)| {
                name.strip_suffix(TEMP_SUFFIX).is_some_and(|base| parse_snapshot_file_name(base).is_some())
            })
            .map(|(_, path)| path)
            .collect())
    }

    fn file_names(&self) -> Result<Vec<(String, PathBuf)>, JournalError> {
        let entries = fs::read_dir(&self.dir).map_err(io_error("list snapshot directory", &self.dir))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("list snapshot directory", &self.dir))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push((name.to_string(), entry.path()));
            }
        }
        Ok(names)
    }
}

/// File name of the snapshot taken at `seq`.
pub fn snapshot_file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.snap")
}

fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn write_durably(path: &Path, header: &[u8], state: &[u8]) -> Result<(), JournalError> {
    let mut file = File::create(path).map_err(io_error("create snapshot temp file", path))?;
    file.write_all(header).and_then(|()| file.write_all(state)).map_err(io_error("write snapshot temp file", path))?;
    file.sync_all().map_err(io_error("fsync snapshot temp file", path))
}

fn encode_header(at: ChainHead, state: &[u8]) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut bytes = [0u8; SNAPSHOT_HEADER_LEN];
    bytes[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    bytes[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    bytes[12..20].copy_from_slice(&at.seq.to_le_bytes());
    bytes[20..52].copy_from_slice(&at.hash);
    bytes[52..60].copy_from_slice(&(state.len() as u64).to_le_bytes());
    bytes[60..92].copy_from_slice(&Sha256::digest(state));
    let crc = crc32c::crc32c(&bytes[..SNAPSHOT_HEADER_CRC_OFFSET]);
    bytes[SNAPSHOT_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// A snapshot file's bytes, the header and the state each in its own buffer: the state (the whole desk, gigabytes
/// on a long history) is read once into memory of its exact size and never copied.
fn read_snapshot_file(path: &Path) -> io::Result<SnapshotBytes> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut header = Vec::with_capacity(SNAPSHOT_HEADER_LEN);
    (&mut file).take(SNAPSHOT_HEADER_LEN as u64).read_to_end(&mut header)?;
    let mut state = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_sub(header.len()));
    file.read_to_end(&mut state)?;
    Ok(SnapshotBytes { header, state })
}

/// A snapshot file as read: its first [`SNAPSHOT_HEADER_LEN`] bytes (fewer in a short file) and the rest.
struct SnapshotBytes {
    header: Vec<u8>,
    state: Vec<u8>,
}

/// [`decode_snapshot`] of a file read by [`read_snapshot_file`], keeping its state buffer.
fn decode_snapshot_owned(bytes: SnapshotBytes, seq_in_name: u64) -> Result<Snapshot, String> {
    if bytes.header.len() < SNAPSHOT_HEADER_LEN {
        return Err(format!("file has {} bytes, shorter than a header", bytes.header.len()));
    }
    let at = check_snapshot(&bytes.header, &bytes.state, seq_in_name)?;
    Ok(Snapshot { at, state: bytes.state })
}

/// Validates a whole snapshot file as [`SnapshotStore::load_newest`] reads it; the error says why it cannot be used.
#[cfg(test)]
fn decode_snapshot(bytes: &[u8], seq_in_name: u64) -> Result<Snapshot, String> {
    let (header, state) = bytes.split_at(bytes.len().min(SNAPSHOT_HEADER_LEN));
    decode_snapshot_owned(SnapshotBytes { header: header.to_vec(), state: state.to_vec() }, seq_in_name)
}

/// Checks a snapshot's header (exactly [`SNAPSHOT_HEADER_LEN`] bytes) and its state against it; returns the chain
/// head it was taken at.
fn check_snapshot(header: &[u8], state: &[u8], seq_in_name: u64) -> Result<ChainHead, String> {
    assert_eq!(header.len(), SNAPSHOT_HEADER_LEN);
    let stored_crc = u32::from_le_bytes(header[SNAPSHOT_HEADER_CRC_OFFSET..].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..SNAPSHOT_HEADER_CRC_OFFSET]) != stored_crc {
        return Err("header checksum mismatch".to_string());
    }
    if header[0..8] != SNAPSHOT_MAGIC {
        return Err("bad snapshot magic".to_string());
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version != SNAPSHOT_VERSION {
        return Err(format!("unsupported snapshot format version {version}"));
    }
    let seq = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    if seq != seq_in_name {
        return Err(format!("header says seq {seq} but the file name says {seq_in_name}"));
    }
    let state_len = u64::from_le_bytes(header[52..60].try_into().expect("8 bytes"));
    if state_len != state.len() as u64 {
        return Err(format!("header says {state_len} state bytes but the file holds {}", state.len()));
    }
    if Sha256::digest(state).as_slice() != &header[60..92] {
        return Err("state checksum mismatch".to_string());
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&header[20..52]);
    Ok(ChainHead { seq, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_round_trip() {
        assert_eq!(snapshot_file_name(5), "snapshot-00000000000000000005.snap");
        assert_eq!(parse_snapshot_file_name("snapshot-00000000000000000005.snap"), Some(5));
        assert_eq!(parse_snapshot_file_name("snapshot-5.snap"), None);
        assert_eq!(parse_snapshot_file_name("snapshot-00000000000000000005.snap.tmp"), None);
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let at = ChainHead { seq: 3, hash: [9u8; 32] };
        let state = b"state bytes".to_vec();
        let mut bytes = encode_header(at, &state).to_vec();
        bytes.extend_from_slice(&state);
        assert_eq!(decode_snapshot(&bytes, 3), Ok(Snapshot { at, state }));
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x10;
            assert!(decode_snapshot(&damaged, 3).is_err(), "flip at {index}");
        }
        assert!(decode_snapshot(&bytes[..bytes.len() - 1], 3).is_err());
        assert!(decode_snapshot(&bytes, 4).is_err());
    }
}
