//! The simulated custodian's and bank's own books: what they would report to reconciliation.
//!
//! A real custodian or bank keeps its own ledger of the desk's accounts, independent of the desk; reconciliation
//! is worth something only because the two are kept apart. The simulation does the same: every movement the
//! simulated rails perform or see (a payout broadcast, a returned payment, an on-chain deposit, an incoming wire,
//! a settlement instruction) is written here, by the adapter that performs it, under a reference naming the desk
//! record it belongs to. The file (`simulated-rails.jsonl` in the data directory) is the rails' state and
//! survives restarts like the desk's journal does; a movement is recorded at most once per reference, so a
//! payout retried after a crash is not counted twice.
//!
//! `POST /v1/admin/custody/simulate-rail-movement` adds a movement the desk knows nothing about (a network fee,
//! an unannounced wire; the [`RailSimulation`] port): the way to see a break in the demo and in tests.

use otcd_core::catalog::AssetCode;
use otcd_services::ports::{BookingError, RailAccount, RailMovement, RailSimulation, RailStatements};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const RAIL_BOOKS_FILE: &str = "simulated-rails.jsonl";
/// References remembered for idempotency; beyond this the books refuse new movements (a bound, not a business rule).
pub const REFERENCES_MAX: usize = 10_000_000;
/// Movements kept in memory for investigating breaks (balances keep counting beyond it).
pub const MOVEMENTS_KEPT_MAX: usize = 100_000;
pub const REFERENCE_BYTES_MAX: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum RailBooksError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: {detail}")]
    Corrupt { path: PathBuf, line: usize, detail: String },
    #[error("the simulated rails hold the maximum number of movements")]
    Full,
    #[error("a reference is 1 to 200 bytes")]
    Reference,
}

#[derive(Default)]
struct Books {
    balances: BTreeMap<(AssetCode, RailAccount), i128>,
    references: HashSet<String>,
    movements: VecDeque<RailMovement>,
}

impl Books {
    fn apply(&mut self, movement: RailMovement) {
        *self.balances.entry((movement.asset, movement.account)).or_default() += movement.amount;
        self.references.insert(movement.reference.clone());
        if self.movements.len() == MOVEMENTS_KEPT_MAX {
            self.movements.pop_front();
        }
        self.movements.push_back(movement);
    }
}

pub struct SimulatedRailBooks {
    path: PathBuf,
    books: Mutex<(Books, Option<std::fs::File>)>,
}

impl SimulatedRailBooks {
    /// Opens (or starts) the books in `data_dir`. A torn last line (a crash mid-write) is ignored; any other
    /// unreadable line is an error: corrupt books are worse than none.
    pub fn open(data_dir: &Path) -> Result<Self, RailBooksError> {
        let path = data_dir.join(RAIL_BOOKS_FILE);
        let io = |source| RailBooksError::Io { path: path.clone(), source };
        let mut books = Books::default();
        if path.exists() {
            let file = std::fs::File::open(&path).map_err(io)?;
            let lines: Vec<String> = std::io::BufReader::new(file).lines().collect::<Result<_, _>>().map_err(io)?;
            for (number, line) in lines.iter().enumerate() {
                match serde_json::from_str::<RailMovement>(line) {
                    Ok(movement) => books.apply(movement),
                    Err(_) if number + 1 == lines.len() => {
                        tracing::warn!("ignoring a torn last line in {RAIL_BOOKS_FILE}")
                    }
                    Err(error) => {
                        return Err(RailBooksError::Corrupt { path, line: number + 1, detail: error.to_string() });
                    }
                }
            }
        }
        Ok(Self { path, books: Mutex::new((books, None)) })
    }

    /// Records a movement once per reference; `Ok(false)` when the reference is already on the books.
    pub fn record(&self, movement: RailMovement) -> Result<bool, RailBooksError> {
        if movement.reference.is_empty() || movement.reference.len() > REFERENCE_BYTES_MAX {
            return Err(RailBooksError::Reference);
        }
        let mut guard = self.books.lock().expect("rail books lock");
        let (books, file) = &mut *guard;
        if books.references.contains(&movement.reference) {
            return Ok(false);
        }
        if books.references.len() >= REFERENCES_MAX {
            return Err(RailBooksError::Full);
        }
        let io = |source| RailBooksError::Io { path: self.path.clone(), source };
        if file.is_none() {
            *file = Some(std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?);
        }
        let mut line = serde_json::to_vec(&movement).expect("a movement serializes");
        line.push(b'\n');
        // One write per line: the rails' books survive a kill of the desk's process (the page cache keeps it).
        file.as_mut().expect("opened above").write_all(&line).map_err(io)?;
        books.apply(movement);
        Ok(true)
    }

    /// Records and logs a failure instead of returning it: for adapters whose own step must go on (the rail
    /// already acted; a missing line shows up as a break, which is what reconciliation is for).
    pub fn record_or_log(&self, movement: RailMovement) {
        let reference = movement.reference.clone();
        if let Err(error) = self.record(movement) {
            tracing::error!(%error, %reference, "simulated rail movement not recorded");
        }
    }
}

impl RailSimulation for SimulatedRailBooks {
    fn book_external(&self, movement: RailMovement) -> Result<bool, BookingError> {
        self.record(movement).map_err(|error| match error {
            RailBooksError::Reference => BookingError::Reference,
            RailBooksError::Full => BookingError::Full,
            other => BookingError::Storage(other.to_string()),
        })
    }
}

impl RailStatements for SimulatedRailBooks {
    fn balances(&self) -> BTreeMap<(AssetCode, RailAccount), i128> {
        self.books.lock().expect("rail books lock").0.balances.clone()
    }

    fn movements(&self, asset: AssetCode, limit: usize) -> Vec<RailMovement> {
        let guard = self.books.lock().expect("rail books lock");
        guard.0.movements.iter().rev().filter(|movement| movement.asset == asset).take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movement(reference: &str, amount: i128) -> RailMovement {
        RailMovement {
            reference: reference.into(),
            asset: AssetCode::parse("BTC").unwrap(),
            account: RailAccount::Custody,
            amount,
            at_ms: 1,
        }
    }

    #[test]
    fn movements_count_once_per_reference_and_survive_a_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let books = SimulatedRailBooks::open(directory.path()).unwrap();
        assert!(books.record(movement("chain:tx-1", 500)).unwrap());
        assert!(books.record(movement("payout:w_1", -200)).unwrap());
        assert!(!books.record(movement("payout:w_1", -200)).unwrap(), "a retried payout is not counted twice");
        let key = (AssetCode::parse("BTC").unwrap(), RailAccount::Custody);
        assert_eq!(books.balances()[&key], 300);
        drop(books);
        let reopened = SimulatedRailBooks::open(directory.path()).unwrap();
        assert_eq!(reopened.balances()[&key], 300);
        assert!(!reopened.record(movement("chain:tx-1", 500)).unwrap());
        let newest = reopened.movements(key.0, 10);
        assert_eq!(
            newest.iter().map(|movement| movement.reference.as_str()).collect::<Vec<_>>(),
            ["payout:w_1", "chain:tx-1"]
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_damaged_middle_line_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(RAIL_BOOKS_FILE);
        let good = serde_json::to_string(&movement("chain:tx-1", 500)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"reference\":\"cha")).unwrap();
        assert!(SimulatedRailBooks::open(directory.path()).is_ok());
        std::fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        assert!(matches!(SimulatedRailBooks::open(directory.path()), Err(RailBooksError::Corrupt { line: 1, .. })));
    }
}
