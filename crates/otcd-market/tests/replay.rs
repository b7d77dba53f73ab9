//! JSON-lines replay: parsing, skipping malformed lines, rebasing, and the writer round trip.

use otcd_core::catalog::Catalog;
use otcd_core::decimal::DecimalError;
use otcd_core::market::book::UNLIMITED_QUANTITY;
use otcd_core::market::{BookError, Level, VenueBook};
use otcd_core::time::TimestampMs;
use otcd_market::{
    manual_book, parse_jsonl_line, write_jsonl_line, JsonlReader, LineError, ReplayStats, SimulatedMarket,
};
use std::io::Cursor;

fn level(price: i128, quantity: i128) -> Level {
    Level { price, quantity }
}

#[test]
fn parses_a_good_line_exactly() {
    let catalog = Catalog::builtin();
    let line = r#"{"venue": "kraken", "instrument": "BTC-USD", "as_of": "2024-05-01T12:00:00.250Z",
        "bids": [["50000.00", "1.5"], ["49999.5", "0.00010000"]], "asks": [["50001", "2"]], "sequence": 7}"#;
    let book = parse_jsonl_line(&line.replace('\n', ""), &catalog).unwrap();
    assert_eq!(book.venue, "kraken");
    assert_eq!(book.instrument, "BTC-USD");
    assert_eq!(book.as_of, TimestampMs(1_714_564_800_250));
    assert_eq!(book.bids, vec![level(5_000_000, 150_000_000), level(4_999_950, 10_000)]);
    assert_eq!(book.asks, vec![level(5_000_100, 200_000_000)]);

    // Integer milliseconds, ETH's 18 decimals, an empty side.
    let line = r#"{"venue":"v","instrument":"ETH-BTC","as_of":1714564800123,"bids":[["0.06001","0.000000000000000001"]],"asks":[]}"#;
    let book = parse_jsonl_line(line, &catalog).unwrap();
    assert_eq!(book.as_of, TimestampMs(1_714_564_800_123));
    assert_eq!(book.bids, vec![level(6_001, 1)]);
    assert!(book.asks.is_empty());
}

#[test]
fn refuses_what_is_not_an_exact_valid_book() {
    let catalog = Catalog::builtin();
    let parse = |line: &str| parse_jsonl_line(line, &catalog);
    let with = |instrument: &str, as_of: &str, bids: &str, asks: &str| {
        format!(r#"{{"venue":"v","instrument":"{instrument}","as_of":{as_of},"bids":{bids},"asks":{asks}}}"#)
    };
    let good_asks = r#"[["101","1"]]"#;
    assert!(parse(&with("BTC-USD", "1", r#"[["100","1"]]"#, good_asks)).is_ok());
    assert!(matches!(parse("not json"), Err(LineError::Json(_))));
    assert!(matches!(parse(r#"{"venue":"v"}"#), Err(LineError::Json(_))));
    assert_eq!(
        parse(&with("DOGE-USD", "1", r#"[["100","1"]]"#, good_asks)),
        Err(LineError::UnknownInstrument("DOGE-USD".to_owned()))
    );
    assert!(matches!(
        parse(&with("BTC-USD", r#""noon""#, r#"[["100","1"]]"#, good_asks)),
        Err(LineError::Timestamp(_))
    ));
    assert!(matches!(parse(&with("BTC-USD", "1.5", r#"[["100","1"]]"#, good_asks)), Err(LineError::Json(_))));
    // Numbers where decimal strings belong.
    assert!(matches!(parse(&with("BTC-USD", "1", "[[100, 1]]", good_asks)), Err(LineError::Json(_))));
    assert_eq!(
        parse(&with("BTC-USD", "1", r#"[["100","1"],["99.999","1"]]"#, good_asks)),
        Err(LineError::Price { side: "bid", level: 2, error: DecimalError::TooPrecise { scale: 2 } })
    );
    assert_eq!(
        parse(&with("BTC-USD", "1", r#"[["100","0.000000001"]]"#, good_asks)),
        Err(LineError::Quantity { side: "bid", level: 1, error: DecimalError::TooPrecise { scale: 8 } })
    );
    assert_eq!(
        parse(&with("BTC-USD", "1", r#"[["100","0"]]"#, good_asks)),
        Err(LineError::Quantity { side: "bid", level: 1, error: DecimalError::NotPositive })
    );
    assert_eq!(
        parse(&with("BTC-USD", "1", r#"[["101","1"]]"#, good_asks)),
        Err(LineError::Invalid(BookError::Crossed { bid: 10_100, ask: 10_100 }))
    );
    assert_eq!(
        parse(&with("BTC-USD", "1", r#"[["99","1"],["100","1"]]"#, good_asks)),
        Err(LineError::Invalid(BookError::Unordered))
    );
    let too_deep = format!("[{}]", (1..=101).map(|price| format!(r#"["{price}","1"]"#)).collect::<Vec<_>>().join(","));
    assert_eq!(parse(&with("BTC-USD", "1", r#"[]"#, &too_deep)), Err(LineError::TooManyLevels));
}

#[test]
fn the_reader_skips_and_counts_malformed_lines() {
    let catalog = Catalog::builtin();
    let good = |as_of: i64, bid: &str| {
        format!(
            r#"{{"venue":"rec","instrument":"EUR-USD","as_of":{as_of},"bids":[["{bid}","1000"]],"asks":[["1.09","1000"]]}}"#
        )
    };
    let mut input: Vec<u8> = Vec::new();
    let mut push = |line: &[u8]| {
        input.extend_from_slice(line);
        input.push(b'\n');
    };
    push(good(1_000, "1.08").as_bytes()); // line 1
    push(b"{broken"); // 2
    push(b""); // 3: blank, ignored
    push(good(1_100, "1.081").as_bytes()); // 4
    push(&[0xff, 0xfe, b'{']); // 5: not UTF-8
    push(format!(r#"{{"venue":"rec","pad":"{}"}}"#, "x".repeat(5_000)).as_bytes()); // 6: too long
    push(good(1_200, "1.080001").as_bytes()); // 7: too precise for EUR-USD
    input.extend_from_slice(format!("{}\r\n", good(1_300, "1.082")).as_bytes()); // 8: CRLF
    input.extend_from_slice(good(1_400, "1.083").as_bytes()); // 9: no final newline

    let mut reader = JsonlReader::new(Cursor::new(input), &catalog).with_max_line_bytes(4_096);
    let books: Vec<VenueBook> = reader.by_ref().collect();
    let bids: Vec<i128> = books.iter().map(|book| book.bids[0].price).collect();
    assert_eq!(bids, [108_000, 108_100, 108_200, 108_300]);
    assert_eq!(books.iter().map(|book| book.as_of.0).collect::<Vec<_>>(), [1_000, 1_100, 1_300, 1_400]);
    assert_eq!(reader.stats(), ReplayStats { lines: 9, books: 4, skipped: 4 });
    assert_eq!(reader.next(), None);
}

#[test]
fn rebasing_keeps_relative_timing() {
    let catalog = Catalog::builtin();
    let lines = [
        r#"{"venue":"a","instrument":"BTC-USD","as_of":"2024-05-01T12:00:00Z","bids":[],"asks":[["1","1"]]}"#,
        r#"garbage"#,
        r#"{"venue":"a","instrument":"BTC-USD","as_of":"2024-05-01T12:00:00.500Z","bids":[],"asks":[["1","1"]]}"#,
        r#"{"venue":"b","instrument":"BTC-USD","as_of":1714564801750,"bids":[],"asks":[["1","1"]]}"#,
    ]
    .join("\n");
    let now = TimestampMs(2_000_000_000_000);
    let times: Vec<i64> =
        JsonlReader::new(Cursor::new(lines), &catalog).rebase_to(now).map(|book| book.as_of.0 - now.0).collect();
    assert_eq!(times, [0, 500, 1_750]);
}

#[test]
fn writer_then_parser_is_the_identity() {
    let catalog = Catalog::builtin();
    let mut market = SimulatedMarket::new(&catalog, 5);
    let mut checked = 0;
    for step in 0..20 {
        for book in market.step(TimestampMs(1_714_564_800_000 + step * 137)) {
            let line = write_jsonl_line(&book, &catalog);
            assert!(!line.contains('\n'));
            assert_eq!(parse_jsonl_line(&line, &catalog), Ok(book));
            checked += 1;
        }
    }
    assert!(checked >= 20 * 11 * 2);

    // Unlimited quantities, escaping in venue names, and times outside RFC 3339's years.
    let btc_usd = catalog.instrument("BTC-USD").unwrap();
    let mut book = manual_book(btc_usd, 4_999_999, 5_000_001, TimestampMs(-300_000_000_000_000)).unwrap();
    book.venue = "a \"quoted\"\tvenue".to_owned();
    let line = write_jsonl_line(&book, &catalog);
    assert!(line.contains(r#""as_of":-300000000000000"#), "{line}");
    assert_eq!(parse_jsonl_line(&line, &catalog), Ok(book.clone()));
    assert_eq!(book.asks[0].quantity, UNLIMITED_QUANTITY);

    let line = write_jsonl_line(&VenueBook { as_of: TimestampMs(1_714_564_800_007), ..book.clone() }, &catalog);
    assert!(line.contains(r#""as_of":"2024-05-01T12:00:00.007Z""#), "{line}");
    assert!(line.contains(r#"["49999.99","#), "{line}");
}
