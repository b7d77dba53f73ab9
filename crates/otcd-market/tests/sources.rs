//! The sources as tasks: the simulation and replay publishing into a hub until stopped or done.

use otcd_core::catalog::Catalog;
use otcd_core::time::TimestampMs;
use otcd_market::{
    now_ms, HubConfig, MarketDataSource, MarketHub, ReplayOptions, ReplaySource, SimulatedMarket, SIM_VENUES,
};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_simulation_publishes_until_stopped() {
    let catalog = Catalog::builtin();
    let hub = MarketHub::new(&catalog, HubConfig::default());
    let (stop, stopped) = watch::channel(false);
    let source: Box<dyn MarketDataSource> =
        Box::new(SimulatedMarket::new(&catalog, 11).with_interval(Duration::from_millis(10)));
    assert_eq!(source.name(), "sim");
    let mut updates = hub.subscribe("ETH-BTC").unwrap();
    let task = source.spawn(Arc::clone(&hub), stopped);

    for _ in 0..3 {
        tokio::time::timeout(PATIENCE, updates.changed()).await.expect("books keep coming").unwrap();
        updates.borrow_and_update();
    }
    for instrument in catalog.instruments() {
        let books = hub.fresh_books(&instrument.symbol, now_ms());
        assert!(books.len() >= 2, "{}", instrument.symbol);
        assert!(books.iter().all(|book| SIM_VENUES.contains(&book.venue.as_str())));
    }

    stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, task).await.expect("stops promptly").unwrap();
    let version = hub.version("BTC-USD").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(hub.version("BTC-USD"), Some(version), "nothing published after stop");
}

#[tokio::test]
async fn dropping_the_stop_sender_stops_a_source() {
    let catalog = Catalog::builtin();
    let hub = MarketHub::new(&catalog, HubConfig::default());
    let (stop, stopped) = watch::channel(false);
    let task = Box::new(SimulatedMarket::new(&catalog, 1)).spawn(hub, stopped);
    drop(stop);
    tokio::time::timeout(PATIENCE, task).await.expect("stops promptly").unwrap();
}

fn recording(lines: impl IntoIterator<Item = String>) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    file
}

fn line(venue: &str, as_of: i64, bid: u32) -> String {
    format!(
        r#"{{"venue":"{venue}","instrument":"BTC-USD","as_of":{as_of},"bids":[["{bid}.00","1"]],"asks":[["{}.00","1"]]}}"#,
        bid + 1
    )
}

#[tokio::test]
async fn a_paced_replay_keeps_its_timing_rebased_to_now() {
    let catalog = Catalog::builtin();
    let hub = MarketHub::new(&catalog, HubConfig::default());
    let file =
        recording([line("rec", 5_000, 100), "oops".to_owned(), line("rec", 5_150, 101), line("rec", 5_300, 102)]);
    let options = ReplayOptions { rebase_to_now: true, pace: true, ..ReplayOptions::default() };
    let source = ReplaySource::open(file.path(), &catalog, options).unwrap();
    assert_eq!(source.name(), "replay");
    let (_stop, stopped) = watch::channel(false);
    let started_ms = now_ms();
    let started = Instant::now();
    tokio::time::timeout(PATIENCE, Box::new(source).spawn(Arc::clone(&hub), stopped)).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(290), "{:?}", started.elapsed());
    assert_eq!(hub.version("BTC-USD"), Some(3));
    let book = &hub.all_books("BTC-USD")[0];
    assert_eq!(book.bids[0].price, 10_200);
    let offset = book.as_of.0 - started_ms.0;
    assert!((300..300 + 1_000).contains(&offset), "as_of {offset} ms after the start");
}

#[tokio::test]
async fn an_unpaced_replay_runs_as_fast_as_it_can_and_keeps_old_times() {
    let catalog = Catalog::builtin();
    let hub = MarketHub::new(&catalog, HubConfig::default());
    // An hour between books: pacing would take days.
    let file = recording((0..3_000).map(|index| line("rec", 1_000 + index * 3_600_000, 100 + index as u32)));
    let options = ReplayOptions { rebase_to_now: false, pace: false, ..ReplayOptions::default() };
    let source = ReplaySource::open(file.path(), &catalog, options).unwrap();
    let (_stop, stopped) = watch::channel(false);
    tokio::time::timeout(PATIENCE, Box::new(source).spawn(Arc::clone(&hub), stopped)).await.unwrap().unwrap();
    assert_eq!(hub.version("BTC-USD"), Some(3_000));
    let book = &hub.all_books("BTC-USD")[0];
    assert_eq!(book.as_of, TimestampMs(1_000 + 2_999 * 3_600_000));
    assert!(hub.fresh_books("BTC-USD", now_ms()).is_empty(), "old times are stale");
}

#[tokio::test]
async fn a_paced_replay_stops_on_request() {
    let catalog = Catalog::builtin();
    let hub = MarketHub::new(&catalog, HubConfig::default());
    let file = recording((0..10).map(|index| line("rec", index * 3_600_000, 100)));
    let source = ReplaySource::open(file.path(), &catalog, ReplayOptions::default()).unwrap();
    let (stop, stopped) = watch::channel(false);
    let mut updates = hub.subscribe("BTC-USD").unwrap();
    let task = Box::new(source).spawn(Arc::clone(&hub), stopped);
    tokio::time::timeout(PATIENCE, updates.changed()).await.unwrap().unwrap();
    stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, task).await.expect("stops while waiting for the next book").unwrap();
    assert_eq!(hub.version("BTC-USD"), Some(1));
}

#[test]
fn a_missing_recording_is_an_error_at_open() {
    let missing = std::path::Path::new("/nonexistent/otcd-market/recording.jsonl");
    assert!(ReplaySource::open(missing, &Catalog::builtin(), ReplayOptions::default()).is_err());
}
