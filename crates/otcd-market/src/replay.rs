//! Replay of recorded books from a JSON-lines file, and the writer of that format.
//!
//! One book per line:
//!
//! ```json
//! {"venue": "kraken", "instrument": "BTC-USD", "as_of": "2024-05-01T12:00:00.250Z",
//!  "bids": [["50000.00", "1.5"], ["49999.50", "0.25"]], "asks": [["50001.00", "2"]]}
//! ```
//!
//! `as_of` is an RFC 3339 string or an integer count of Unix milliseconds. Prices are decimal strings at the
//! instrument's price scale and quantities at the base asset's scale, parsed exactly (a digit beyond the scale is
//! an error, never rounded). Unknown fields are ignored, so a recorder may add its own. A line that is not such a
//! book — bad JSON, an unknown instrument, a bad decimal, an invalid book, longer than the line limit — is skipped
//! with a warning naming its line number, and counted; replay never panics on its input. Blank lines are ignored.
//!
//! The file is streamed: one line buffer (bounded by the line limit) and a bounded channel of parsed books
//! between the reading thread and the publishing task are all that is ever held in memory.

use crate::hub::MarketHub;
use crate::{now_ms, stop_requested, MarketDataSource};
use otcd_core::catalog::Catalog;
use otcd_core::decimal::{format_scaled, parse_positive, DecimalError};
use otcd_core::market::{BookError, Level, VenueBook, BOOK_LEVELS_MAX};
use otcd_core::time::TimestampMs;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Longest line accepted by default (1 MiB); longer lines are skipped without being buffered.
pub const REPLAY_LINE_BYTES_MAX: usize = 1 << 20;
/// Parsed books queued between the reading thread and the publishing task.
const REPLAY_CHANNEL_CAPACITY: usize = 1_024;
/// Malformed lines logged one by one; beyond this they are only counted.
const WARNINGS_MAX: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Shift every timestamp by the same amount so that the first book is as of the moment replay starts.
    pub rebase_to_now: bool,
    /// Wait between books as long as their `as_of` differences say; `false` publishes as fast as possible.
    pub pace: bool,
    /// Longest line accepted, in bytes.
    pub max_line_bytes: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self { rebase_to_now: true, pace: true, max_line_bytes: REPLAY_LINE_BYTES_MAX }
    }
}

/// Counters of a replay: lines read (blank ones included), books produced, malformed lines skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub lines: u64,
    pub books: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("longer than {max} bytes ({bytes})")]
    TooLong { bytes: usize, max: usize },
    #[error("not UTF-8")]
    NotUtf8,
    #[error("not a book: {0}")]
    Json(String),
    #[error("instrument {0:?} is not in the catalog")]
    UnknownInstrument(String),
    #[error("bad as_of: {0}")]
    Timestamp(String),
    #[error("a side has more than {BOOK_LEVELS_MAX} levels")]
    TooManyLevels,
    #[error("{side} level {level}: price {error}")]
    Price { side: &'static str, level: usize, error: DecimalError },
    #[error("{side} level {level}: quantity {error}")]
    Quantity { side: &'static str, level: usize, error: DecimalError },
    #[error("invalid book: {0}")]
    Invalid(#[from] BookError),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TimeField {
    Millis(i64),
    Text(String),
}

#[derive(Deserialize)]
struct LineIn {
    venue: String,
    instrument: String,
    as_of: TimeField,
    bids: Vec<(String, String)>,
    asks: Vec<(String, String)>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    venue: &'a str,
    instrument: &'a str,
    as_of: TimeField,
    bids: Vec<(String, String)>,
    asks: Vec<(String, String)>,
}

/// Parses one line of the replay format (without its newline) into a valid book.
pub fn parse_jsonl_line(line: &str, catalog: &Catalog) -> Result<VenueBook, LineError> {
    let raw: LineIn = serde_json::from_str(line).map_err(|error| LineError::Json(error.to_string()))?;
    let instrument =
        catalog.instrument(&raw.instrument).ok_or_else(|| LineError::UnknownInstrument(raw.instrument.clone()))?;
    let base_scale = catalog
        .asset(&instrument.base)
        .map(|asset| asset.scale)
        .ok_or_else(|| LineError::UnknownInstrument(raw.instrument.clone()))?;
    let as_of = match raw.as_of {
        TimeField::Millis(millis) => TimestampMs(millis),
        TimeField::Text(text) => parse_rfc3339_ms(&text)?,
    };
    if raw.bids.len() > BOOK_LEVELS_MAX || raw.asks.len() > BOOK_LEVELS_MAX {
        return Err(LineError::TooManyLevels);
    }
    let side = |name: &'static str, levels: &[(String, String)]| -> Result<Vec<Level>, LineError> {
        let level = |(index, (price, quantity)): (usize, &(String, String))| {
            Ok(Level {
                price: parse_positive(price, instrument.price_scale).map_err(|error| LineError::Price {
                    side: name,
                    level: index + 1,
                    error,
                })?,
                quantity: parse_positive(quantity, base_scale).map_err(|error| LineError::Quantity {
                    side: name,
                    level: index + 1,
                    error,
                })?,
            })
        };
        levels.iter().enumerate().map(level).collect()
    };
    let book = VenueBook {
        bids: side("bid", &raw.bids)?,
        asks: side("ask", &raw.asks)?,
        venue: raw.venue,
        instrument: raw.instrument,
        as_of,
    };
    book.validate()?;
    Ok(book)
}

fn parse_rfc3339_ms(text: &str) -> Result<TimestampMs, LineError> {
    let moment = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| LineError::Timestamp(error.to_string()))?;
    let millis = moment.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).map(TimestampMs).map_err(|_| LineError::Timestamp("out of range".to_owned()))
}

fn format_rfc3339_ms(as_of: TimestampMs) -> Option<String> {
    let moment = OffsetDateTime::from_unix_timestamp_nanos(i128::from(as_of.0) * 1_000_000).ok()?;
    moment.format(&Rfc3339).ok()
}

/// One line of the replay format for `book` (without a trailing newline): decimal strings at the instrument's
/// price scale and the base asset's scale, `as_of` in RFC 3339 UTC with milliseconds (integer milliseconds
/// outside the years RFC 3339 can express). `parse_jsonl_line` of the result gives `book` back. A book of an
/// instrument missing from `catalog` is written with integer prices and quantities (scale 0); no reader using
/// that catalog would accept it anyway.
pub fn write_jsonl_line(book: &VenueBook, catalog: &Catalog) -> String {
    let instrument = catalog.instrument(&book.instrument);
    let price_scale = instrument.map_or(0, |instrument| instrument.price_scale);
    let quantity_scale =
        instrument.and_then(|instrument| catalog.asset(&instrument.base)).map_or(0, |asset| asset.scale);
    let side = |levels: &[Level]| -> Vec<(String, String)> {
        levels
            .iter()
            .map(|level| (format_scaled(level.price, price_scale), format_scaled(level.quantity, quantity_scale)))
            .collect()
    };
    let line = LineOut {
        venue: &book.venue,
        instrument: &book.instrument,
        as_of: format_rfc3339_ms(book.as_of).map_or(TimeField::Millis(book.as_of.0), TimeField::Text),
        bids: side(&book.bids),
        asks: side(&book.asks),
    };
    serde_json::to_string(&line).expect("strings and arrays always serialize")
}

enum LineRead {
    /// The line is in the buffer.
    Line,
    /// The line had this many bytes, more than the limit; it was consumed, not buffered.
    TooLong(usize),
}

/// An iterator of the valid books of a JSON-lines stream, skipping (and counting, and logging) malformed lines.
/// Stops at the end of the stream or at the first I/O error (logged).
pub struct JsonlReader<R> {
    reader: R,
    catalog: Catalog,
    max_line_bytes: usize,
    buffer: Vec<u8>,
    stats: ReplayStats,
    rebase_to: Option<TimestampMs>,
    shift_ms: Option<i64>,
    finished: bool,
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(reader: R, catalog: &Catalog) -> Self {
        Self {
            reader,
            catalog: catalog.clone(),
            max_line_bytes: REPLAY_LINE_BYTES_MAX,
            buffer: Vec::new(),
            stats: ReplayStats::default(),
            rebase_to: None,
            shift_ms: None,
            finished: false,
        }
    }

    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// Shifts every book's `as_of` by the same amount so that the first valid book is as of `first`.
    pub fn rebase_to(mut self, first: TimestampMs) -> Self {
        self.rebase_to = Some(first);
        self
    }

    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// Reads the next line into `buffer` (without its `\n`), never holding more than the limit; `None` at the end.
    fn read_line(&mut self) -> io::Result<Option<LineRead>> {
        self.buffer.clear();
        let mut bytes = 0_usize;
        let mut too_long = false;
        let mut started = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if available.is_empty() {
                if !started {
                    return Ok(None);
                }
                break;
            }
            started = true;
            let newline = available.iter().position(|&byte| byte == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            bytes = bytes.saturating_add(chunk.len());
            if !too_long {
                if bytes > self.max_line_bytes {
                    too_long = true;
                    self.buffer = Vec::new();
                } else {
                    self.buffer.extend_from_slice(chunk);
                }
            }
            let consumed = chunk.len() + usize::from(newline.is_some());
            self.reader.consume(consumed);
            if newline.is_some() {
                break;
            }
        }
        Ok(Some(if too_long { LineRead::TooLong(bytes) } else { LineRead::Line }))
    }

    fn skip(&mut self, error: LineError) {
        self.stats.skipped += 1;
        if self.stats.skipped <= WARNINGS_MAX {
            tracing::warn!(line = self.stats.lines, %error, "skipping a malformed replay line");
        } else if self.stats.skipped == WARNINGS_MAX + 1 {
            tracing::warn!(line = self.stats.lines, "more malformed replay lines: counting them without logging each");
        }
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = VenueBook;

    fn next(&mut self) -> Option<VenueBook> {
        while !self.finished {
            let read = match self.read_line() {
                Ok(Some(read)) => read,
                Ok(None) => {
                    self.finished = true;
                    break;
                }
                Err(error) => {
                    tracing::warn!(line = self.stats.lines + 1, %error, "replay stopped by a read error");
                    self.finished = true;
                    break;
                }
            };
            self.stats.lines += 1;
            if let LineRead::TooLong(bytes) = read {
                self.skip(LineError::TooLong { bytes, max: self.max_line_bytes });
                continue;
            }
            let parsed = match std::str::from_utf8(&self.buffer) {
                Ok(text) => {
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    if text.trim().is_empty() {
                        continue;
                    }
                    parse_jsonl_line(text, &self.catalog)
                }
                Err(_) => Err(LineError::NotUtf8),
            };
            match parsed {
                Ok(mut book) => {
                    if let Some(first) = self.rebase_to {
                        let shift = *self.shift_ms.get_or_insert(first.0.saturating_sub(book.as_of.0));
                        book.as_of = book.as_of.plus_ms(shift);
                    }
                    self.stats.books += 1;
                    return Some(book);
                }
                Err(error) => self.skip(error),
            }
        }
        None
    }
}

/// Publishes the books of a JSON-lines file (see the module documentation), then ends.
pub struct ReplaySource {
    path: PathBuf,
    file: File,
    catalog: Catalog,
    options: ReplayOptions,
}

impl std::fmt::Debug for ReplaySource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ReplaySource").field("path", &self.path).field("options", &self.options).finish()
    }
}

impl ReplaySource {
    /// Opens `path` now, so that a missing file is a startup error rather than a silent empty market.
    pub fn open(path: &Path, catalog: &Catalog, options: ReplayOptions) -> io::Result<Self> {
        let file = File::open(path)?;
        Ok(Self { path: path.to_owned(), file, catalog: catalog.clone(), options })
    }
}

impl MarketDataSource for ReplaySource {
    fn name(&self) -> &str {
        "replay"
    }

    /// Reads the file on a blocking thread and publishes from an async task; the task ends at the end of the
    /// file or on stop (which also ends the reading thread at its next book).
    fn spawn(self: Box<Self>, hub: Arc<MarketHub>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let ReplaySource { path, file, catalog, options } = *self;
        let (sender, mut receiver) = mpsc::channel::<VenueBook>(REPLAY_CHANNEL_CAPACITY);
        let rebase_to = options.rebase_to_now.then(now_ms);
        tokio::task::spawn_blocking(move || {
            let mut reader =
                JsonlReader::new(BufReader::new(file), &catalog).with_max_line_bytes(options.max_line_bytes);
            if let Some(first) = rebase_to {
                reader = reader.rebase_to(first);
            }
            for book in &mut reader {
                if sender.blocking_send(book).is_err() {
                    break;
                }
            }
            let stats = reader.stats();
            tracing::info!(path = %path.display(), stats.lines, stats.books, stats.skipped, "replay read finished");
        });
        tokio::spawn(async move {
            let mut first: Option<(TimestampMs, tokio::time::Instant)> = None;
            let mut refused: u64 = 0;
            loop {
                let book = tokio::select! {
                    biased;
                    _ = stop_requested(&mut stop) => break,
                    received = receiver.recv() => match received {
                        Some(book) => book,
                        None => break,
                    },
                };
                if options.pace {
                    let (first_as_of, started) = *first.get_or_insert((book.as_of, tokio::time::Instant::now()));
                    let delay_ms = u64::try_from(book.as_of.0.saturating_sub(first_as_of.0)).unwrap_or(0);
                    let due = started + Duration::from_millis(delay_ms);
                    tokio::select! {
                        biased;
                        _ = stop_requested(&mut stop) => break,
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                if let Err(error) = hub.publish(book) {
                    refused += 1;
                    if refused <= WARNINGS_MAX {
                        tracing::warn!(%error, "the hub refused a replayed book");
                    }
                }
            }
            if refused > 0 {
                tracing::warn!(refused, "replayed books refused by the hub");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Ok(TimestampMs(1_500)));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Ok(TimestampMs(0)));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.9999Z"), Ok(TimestampMs(-1)));
        assert_eq!(format_rfc3339_ms(TimestampMs(1_714_564_800_250)).as_deref(), Some("2024-05-01T12:00:00.25Z"));
        assert!(parse_rfc3339_ms("yesterday").is_err());
        assert!(format_rfc3339_ms(TimestampMs(i64::MAX)).is_none());
    }
}
