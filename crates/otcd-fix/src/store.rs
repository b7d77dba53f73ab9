//! One session's persisted state: the next sequence number of each direction, the last event-feed seq turned
//! into ExecutionReports, and the application messages sent (for resends), in one append-only file per session
//! (`DATA/fix/<SenderCompID>.log`).
//!
//! Lines: `in N` (the next incoming seq expected), `out N E LEN` followed by LEN bytes and a newline (an
//! application message sent with seq N, reflecting events up to feed seq E), `admin N` (an admin message took
//! seq N), `event E`, `reset` (both directions back to 1). Every write goes to the file before the message
//! leaves; [`SessionStore::sync`] fsyncs it before an answer to a state-changing message (heartbeats are
//! written but not synced: the page cache survives a killed process). Recovery reads the lines back and stops at a
//! torn tail. The file is rewritten (temporary file, fsync, rename) when it grows past
//! [`STORE_BYTES_MAX`], keeping the newest [`KEPT_MESSAGES_MAX`] messages; older ones are gap-filled.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Application messages kept for resends.
pub const KEPT_MESSAGES_MAX: usize = 10_000;
/// A store file larger than this is compacted.
pub const STORE_BYTES_MAX: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    pub next_in: u64,
    pub next_out: u64,
    /// Feed seq of the newest event already turned into messages (0: none yet).
    pub event_seq: u64,
    /// Application messages sent, by seq (the newest [`KEPT_MESSAGES_MAX`]).
    pub sent: BTreeMap<u64, Vec<u8>>,
}

impl Default for SessionState {
    fn default() -> Self {
        Self { next_in: 1, next_out: 1, event_seq: 0, sent: BTreeMap::new() }
    }
}

pub struct SessionStore {
    path: PathBuf,
    file: File,
    written: u64,
    pub state: SessionState,
}

impl SessionStore {
    /// Opens (or creates) the store of `sender` in `directory`. `sender` was authenticated (a key id), so it is a
    /// safe file name.
    pub fn open(directory: &Path, sender: &str) -> io::Result<Self> {
        std::fs::create_dir_all(directory)?;
        let path = directory.join(format!("{sender}.log"));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error),
        };
        let (state, valid) = replay(&bytes);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if (valid as u64) < bytes.len() as u64 {
            file.set_len(valid as u64)?;
            file.sync_all()?;
        }
        let mut store = Self { path, file, written: valid as u64, state };
        if store.written > STORE_BYTES_MAX {
            store.compact()?;
        }
        Ok(store)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    pub fn set_next_in(&mut self, next_in: u64) -> io::Result<()> {
        self.state.next_in = next_in;
        self.append(format!("in {next_in}\n").as_bytes())
    }

    pub fn set_event_seq(&mut self, event_seq: u64) -> io::Result<()> {
        if event_seq <= self.state.event_seq {
            return Ok(());
        }
        self.state.event_seq = event_seq;
        self.append(format!("event {event_seq}\n").as_bytes())
    }

    /// Takes the next outgoing seq for an admin message.
    pub fn take_admin_seq(&mut self) -> io::Result<u64> {
        let seq = self.state.next_out;
        self.state.next_out += 1;
        self.append(format!("admin {seq}\n").as_bytes())?;
        Ok(seq)
    }

    /// Takes the next outgoing seq for an application message; `encode` builds it with that seq.
    pub fn record_app(&mut self, encode: impl FnOnce(u64) -> Vec<u8>) -> io::Result<Vec<u8>> {
        let seq = self.state.next_out;
        let bytes = encode(seq);
        let mut line = format!("out {seq} {} {}\n", self.state.event_seq, bytes.len()).into_bytes();
        line.extend_from_slice(&bytes);
        line.push(b'\n');
        self.append(&line)?;
        self.state.next_out += 1;
        self.state.sent.insert(seq, bytes.clone());
        while self.state.sent.len() > KEPT_MESSAGES_MAX {
            self.state.sent.pop_first();
        }
        Ok(bytes)
    }

    /// Both directions back to 1 (ResetSeqNumFlag on an authenticated Logon); sent messages are forgotten.
    pub fn reset(&mut self) -> io::Result<()> {
        self.state = SessionState { event_seq: self.state.event_seq, ..SessionState::default() };
        self.compact()
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.compact_if_large()
    }

    /// A handle of the file for an fsync off the caller's thread (the gateway runs it on tokio's blocking pool,
    /// so a session's fsync never holds an async worker); call [`SessionStore::compact_if_large`] after it.
    pub fn sync_handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    pub fn compact_if_large(&mut self) -> io::Result<()> {
        if self.written > STORE_BYTES_MAX {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with the state only: a temporary file, fsynced, renamed over the old one.
    fn compact(&mut self) -> io::Result<()> {
        let temporary = self.path.with_extension("log.tmp");
        let mut contents = format!("in {}\nevent {}\n", self.state.next_in, self.state.event_seq).into_bytes();
        for (seq, bytes) in &self.state.sent {
            contents.extend_from_slice(format!("out {seq} {} {}\n", self.state.event_seq, bytes.len()).as_bytes());
            contents.extend_from_slice(bytes);
            contents.push(b'\n');
        }
        if self.state.next_out > 1 {
            contents.extend_from_slice(format!("admin {}\n", self.state.next_out - 1).as_bytes());
        }
        let mut file = File::create(&temporary)?;
        file.write_all(&contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        if let Some(parent) = self.path.parent() {
            File::open(parent)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.written = contents.len() as u64;
        Ok(())
    }
}

/// The state the lines in `bytes` describe, and how many bytes of whole lines there are (a torn tail after).
fn replay(bytes: &[u8]) -> (SessionState, usize) {
    let mut state = SessionState::default();
    let mut at = 0;
    while at < bytes.len() {
        let Some(end) = bytes[at..].iter().position(|byte| *byte == b'\n') else { break };
        let line = String::from_utf8_lossy(&bytes[at..at + end]).into_owned();
        let mut words = line.split(' ');
        let number = |word: Option<&str>| word.and_then(|text| text.parse::<u64>().ok());
        let mut next = at + end + 1;
        match words.next() {
            Some("in") => state.next_in = number(words.next()).unwrap_or(state.next_in),
            Some("event") => state.event_seq = state.event_seq.max(number(words.next()).unwrap_or(0)),
            Some("admin") => state.next_out = state.next_out.max(number(words.next()).unwrap_or(0) + 1),
            Some("reset") => state = SessionState { event_seq: state.event_seq, ..SessionState::default() },
            Some("out") => {
                let (Some(seq), Some(event_seq), Some(len)) =
                    (number(words.next()), number(words.next()), number(words.next()))
                else {
                    break;
                };
                let Some(message_end) = next.checked_add(len as usize).filter(|end| *end < bytes.len()) else { break };
                if bytes[message_end] != b'\n' {
                    break;
                }
                state.sent.insert(seq, bytes[next..message_end].to_vec());
                while state.sent.len() > KEPT_MESSAGES_MAX {
                    state.sent.pop_first();
                }
                state.next_out = state.next_out.max(seq + 1);
                state.event_seq = state.event_seq.max(event_seq);
                next = message_end + 1;
            }
            _ => break,
        }
        at = next;
    }
    (state, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_reopening_and_a_torn_tail_is_cut() {
        let directory = tempfile::tempdir().unwrap();
        let mut store = SessionStore::open(directory.path(), "k_1").unwrap();
        store.set_next_in(2).unwrap();
        assert_eq!(store.take_admin_seq().unwrap(), 1);
        store.set_event_seq(40).unwrap();
        store.record_app(|seq| format!("message {seq}\nwith a newline").into_bytes()).unwrap();
        store.sync().unwrap();
        drop(store);
        let path = directory.path().join("k_1.log");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"out 3 40 100\npartial").unwrap();
        let store = SessionStore::open(directory.path(), "k_1").unwrap();
        assert_eq!((store.state.next_in, store.state.next_out, store.state.event_seq), (2, 3, 40));
        assert_eq!(store.state.sent.get(&2).unwrap(), b"message 2\nwith a newline");
        assert!(!std::fs::read_to_string(&path).unwrap().contains("partial"));
    }

    #[test]
    fn reset_and_compaction_keep_what_matters() {
        let directory = tempfile::tempdir().unwrap();
        let mut store = SessionStore::open(directory.path(), "k_2").unwrap();
        for _ in 0..5 {
            store.record_app(|seq| vec![b'x'; seq as usize]).unwrap();
        }
        store.set_next_in(9).unwrap();
        store.compact().unwrap();
        let reopened = SessionStore::open(directory.path(), "k_2").unwrap();
        assert_eq!((reopened.state.next_in, reopened.state.next_out, reopened.state.sent.len()), (9, 6, 5));
        let mut store = reopened;
        store.reset().unwrap();
        let reopened = SessionStore::open(directory.path(), "k_2").unwrap();
        assert_eq!((reopened.state.next_in, reopened.state.next_out, reopened.state.sent.len()), (1, 1, 0));
    }

    proptest::proptest! {
        #[test]
        fn any_file_contents_open_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = replay(&bytes);
        }
    }
}
