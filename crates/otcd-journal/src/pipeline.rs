//! Opening a journal with its scan on a second thread: reading the segments, every check of
//! [`FileJournal::open_anchored`] (checksums, seq continuity, the hash chain, the anchors, the torn tail) and
//! decoding each record to replay run on a scanner thread, while the caller's thread does its own work (loading
//! a snapshot) and then executes the decoded records in seq order.
//!
//! The outcome is the sequential open's exactly: the same records reach `execute` in the same order, and the
//! first failure in seq order is the one returned, with the sequential open's message. The scanner sends what
//! it decoded before it stopped, then its error: a record that `execute` refuses before that point is reported
//! instead, as the sequential open (which executes each record before reading the next) would have.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use crate::error::JournalError;
use crate::file_journal::{FileJournal, JournalOptions, OpenReport};
use crate::scan::{scan_journal_in_files, ScanOutcome};
use crate::Anchor;

/// Decoded records per message between the threads: large enough that a hand-off costs nothing next to the
/// records' execution, small enough that the consumer starts early.
const BATCH_RECORDS_MAX: usize = 1_024;

/// Messages the scanner may run ahead of the consumer: bounds the decoded records held in memory
/// (`BATCHES_IN_FLIGHT_MAX` × `BATCH_RECORDS_MAX`, a few MiB of JSON-decoded records).
const BATCHES_IN_FLIGHT_MAX: usize = 16;

/// Records of one segment file, in seq order.
struct Batch<D> {
    file: Arc<PathBuf>,
    records: Vec<(u64, D)>,
}

/// The decoded records of a pipelined open, handed to its consumer in seq order.
pub struct Replayed<'a, D> {
    receiver: &'a Receiver<Batch<D>>,
    drained: bool,
    records: u64,
}

impl<D> Replayed<'_, D> {
    /// Runs `execute` on every record after the replay point, in seq order, until the scan ends or `execute`
    /// refuses one. A refusal is returned as the sequential open returns it (naming the seq and the file); a
    /// scan's own failure is returned by [`FileJournal::open_anchored_pipelined`] once this has drained.
    pub fn execute(&mut self, mut execute: impl FnMut(u64, D) -> Result<(), String>) -> Result<(), JournalError> {
        assert!(!self.drained, "the replayed records are executed once");
        while let Ok(batch) = self.receiver.recv() {
            for (seq, record) in batch.records {
                self.records += 1;
                execute(seq, record).map_err(|message| {
                    JournalError::Visit(format!("replay of seq {seq} from {} failed: {message}", batch.file.display()))
                })?;
            }
        }
        self.drained = true;
        Ok(())
    }
}

/// The scanner's side: gathers decoded records into batches, one segment file per batch.
struct Sender<D, F> {
    sender: SyncSender<Batch<D>>,
    decode: F,
    pending: Option<Batch<D>>,
    sent: u64,
}

impl<D, F> Sender<D, F>
where
    F: FnMut(u64, &[u8]) -> Result<D, String>,
{
    fn visit(&mut self, file: &Path, seq: u64, payload: &[u8]) -> Result<(), String> {
        let record = (self.decode)(seq, payload)?;
        let same_file = self.pending.as_ref().is_some_and(|batch| batch.file.as_path() == file);
        if !same_file {
            self.flush()?;
            let batch = Batch { file: Arc::new(file.to_path_buf()), records: Vec::with_capacity(BATCH_RECORDS_MAX) };
            self.pending = Some(batch);
        }
        let batch = self.pending.as_mut().expect("a batch was just started");
        batch.records.push((seq, record));
        if batch.records.len() == BATCH_RECORDS_MAX {
            let file = Arc::clone(&batch.file);
            self.flush()?;
            self.pending = Some(Batch { file, records: Vec::with_capacity(BATCH_RECORDS_MAX) });
        }
        Ok(())
    }

    /// Sends the pending batch; fails once the consumer has stopped (it refused a record, or its own work
    /// failed), which ends the scan: its outcome no longer matters.
    fn flush(&mut self) -> Result<(), String> {
        let Some(batch) = self.pending.take() else { return Ok(()) };
        if batch.records.is_empty() {
            return Ok(());
        }
        self.sent += batch.records.len() as u64;
        self.sender.send(batch).map_err(|_| "the replay stopped before the end of the journal".to_owned())
    }
}

/// The scanner thread's work: lock, scan (decoding what is replayed), and send the last batch whatever the
/// scan's outcome, so that the consumer executes everything the sequential open would have before it stopped.
fn scan<D, F>(
    dir: &Path,
    replay_after_seq: u64,
    anchors: &[Anchor],
    mut sender: Sender<D, F>,
) -> Result<(File, ScanOutcome, u64), JournalError>
where
    F: FnMut(u64, &[u8]) -> Result<D, String>,
{
    let directory = FileJournal::lock_for_open(dir)?;
    let scanned = scan_journal_in_files(
        dir,
        replay_after_seq,
        anchors,
        |file, seq, payload| sender.visit(file, seq, payload),
        &|_| {},
    );
    let flushed = sender.flush();
    let outcome = scanned?;
    flushed.map_err(JournalError::Visit)?;
    Ok((directory, outcome, sender.sent))
}

impl FileJournal {
    /// [`FileJournal::open_anchored`] with the scan on a second thread (see the module's documentation).
    /// `decode` turns each record with seq > `replay_after_seq` into what `consume` executes, on the scanner
    /// thread; `consume` runs on the calling thread meanwhile, and must pass every record to
    /// [`Replayed::execute`] unless its own work fails. Its error comes first, then the scan's.
    pub fn open_anchored_pipelined<D, F, T, E>(
        dir: &Path,
        options: JournalOptions,
        replay_after_seq: u64,
        anchors: &[Anchor],
        decode: F,
        consume: impl FnOnce(&mut Replayed<'_, D>) -> Result<T, E>,
    ) -> Result<(FileJournal, OpenReport, T), E>
    where
        D: Send,
        F: FnMut(u64, &[u8]) -> Result<D, String> + Send,
        E: From<JournalError>,
    {
        let (sender, receiver) = sync_channel(BATCHES_IN_FLIGHT_MAX);
        let sender = Sender { sender, decode, pending: None, sent: 0 };
        let (consumed, executed, scanned) = std::thread::scope(|scope| {
            let scanner = std::thread::Builder::new()
                .name("journal-scan".to_owned())
                .spawn_scoped(scope, move || scan(dir, replay_after_seq, anchors, sender))
                .expect("a thread for the journal's scan can be started");
            let mut replayed = Replayed { receiver: &receiver, drained: false, records: 0 };
            let consumed = consume(&mut replayed);
            let executed = replayed.drained.then_some(replayed.records);
            // A consumer that stopped early lets the scanner's next send fail, so that it ends.
            drop(receiver);
            let scanned = scanner.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (consumed, executed, scanned)
        });
        let value = consumed?;
        let (directory, outcome, sent) = scanned?;
        let executed = executed.expect("the consumer executes every replayed record");
        assert_eq!(executed, sent, "every record decoded for replay was executed");
        let (journal, report) = FileJournal::finish_open(dir, directory, options, &outcome)?;
        Ok((journal, report, value))
    }
}
