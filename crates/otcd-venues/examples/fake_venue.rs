//! Four fake venues on loopback (Binance, Coinbase, Kraken, Bitstamp), each serving a fixed BTC book in its real
//! protocol and keeping it alive, and the venues file that points `otcd serve --market venues` at them.
//!
//! ```sh
//! cargo run -p otcd-venues --features fake --example fake_venue > fake-venues.toml
//! otcd serve --market venues --venues-config fake-venues.toml
//! ```
//!
//! Runs until Ctrl-C.

use otcd_venues::config::VenueKind;
use otcd_venues::fake::{FakeBook, FakeVenue};
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let interval = Duration::from_millis(250);
    let venues = [
        (
            VenueKind::Binance,
            "BTC-USDT",
            FakeBook::new(
                "BTCUSDT",
                &[("50000.10", "0.5"), ("49999.00", "2")],
                &[("50001.20", "0.4"), ("50003.00", "3")],
            ),
        ),
        (
            VenueKind::Coinbase,
            "BTC-USD",
            FakeBook::new(
                "BTC-USD",
                &[("49995.00", "0.3"), ("49970.00", "2")],
                &[("50005.00", "0.3"), ("50030.00", "2")],
            ),
        ),
        (
            VenueKind::Kraken,
            "BTC-USD",
            FakeBook::new(
                "BTC/USD",
                &[("49990.0", "0.50000000"), ("49980.0", "1.00000000")],
                &[("50010.0", "0.50000000"), ("50020.0", "1.00000000")],
            ),
        ),
        (
            VenueKind::Bitstamp,
            "BTC-USD",
            FakeBook::new(
                "btcusd",
                &[("49992.00", "0.25"), ("49985.00", "1.5")],
                &[("50008.00", "0.25"), ("50015.00", "1.5")],
            ),
        ),
    ];
    let mut running = Vec::new();
    println!("# Fake venues on loopback (cargo run -p otcd-venues --features fake --example fake_venue)");
    for (kind, instrument, book) in venues {
        let venue = FakeVenue::start(kind).await?;
        let symbol = book.symbol.clone();
        venue.serve_book(vec![book], interval);
        let name = format!("fake-{}", kind.as_str());
        println!("\n[[venues]]\nname = \"{name}\"\nkind = \"{}\"\nws_url = \"{}\"", kind.as_str(), venue.ws_url());
        if matches!(kind, VenueKind::Binance | VenueKind::Bitstamp) {
            println!("rest_url = \"{}\"", venue.rest_url());
        }
        println!("depth = 10\nmax_book_age_ms = 2000\n[venues.symbols]\n\"{instrument}\" = \"{symbol}\"");
        running.push(venue);
    }
    eprintln!("fake venues running; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
