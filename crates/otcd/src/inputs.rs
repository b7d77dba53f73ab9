//! What a user types on the command line, checked and turned into what the commands need: which data directory
//! an offline command reads, friendly times, and what `otcd sign` may sign. Each error says what to type instead.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

/// Where `serve` keeps a desk by default.
pub const DATA_DIR_DEFAULT: &str = "./otcd-data";
/// Where `demo` keeps its desk by default.
pub const DEMO_DIR_DEFAULT: &str = "./otcd-demo";

/// The data directory of an offline command (`verify`, `report`, `audit-export`): the one given; else
/// `./otcd-data` when it holds a desk; else the demo's `./otcd-demo` (said on stderr); else an error naming the
/// flag.
pub fn data_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(directory) = given {
        return Ok(directory);
    }
    let holds_desk = |directory: &Path| directory.join("journal").is_dir();
    let (serve, demo) = (PathBuf::from(DATA_DIR_DEFAULT), PathBuf::from(DEMO_DIR_DEFAULT));
    if holds_desk(&serve) {
        return Ok(serve);
    }
    if holds_desk(&demo) {
        eprintln!("using the demo desk in {DEMO_DIR_DEFAULT} (no desk in {DATA_DIR_DEFAULT}; --data-dir DIR chooses)");
        return Ok(demo);
    }
    bail!("no desk in {DATA_DIR_DEFAULT} or {DEMO_DIR_DEFAULT}: pass --data-dir DIR (the directory `otcd serve` uses)")
}

/// A time given as RFC 3339 (`2026-01-31T09:30:00Z`), a UTC date (`2026-01-31`, its midnight), `now`, `today`,
/// `yesterday` (UTC midnights), or `now-` followed by a number and `s`, `m`, `h` or `d` (`now-24h`). Answers
/// RFC 3339 text, what the report and export functions take.
pub fn time(flag: &str, text: &str, now: OffsetDateTime) -> anyhow::Result<String> {
    let parsed = parse_time(text.trim(), now).with_context(|| {
        format!(
            "--{flag} {text:?}: give RFC 3339 (2026-01-31T09:30:00Z), a date (2026-01-31), now, today, yesterday, \
             or now- with an amount of s, m, h or d (now-24h)"
        )
    })?;
    Ok(parsed.format(&Rfc3339).expect("a UTC time formats as RFC 3339"))
}

fn parse_time(text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    let midnight = |date: Date| date.with_time(Time::MIDNIGHT).assume_utc();
    match text {
        "now" => return Ok(now),
        "today" => return Ok(midnight(now.date())),
        "yesterday" => return Ok(midnight(now.date()) - Duration::days(1)),
        _ => {}
    }
    if let Some(ago) = text.strip_prefix("now-") {
        return Ok(now - duration(ago)?);
    }
    if let Ok(moment) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(moment);
    }
    let date = Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))?;
    Ok(midnight(date))
}

/// `30s`, `15m`, `24h`, `7d`: at most 100 years back.
fn duration(text: &str) -> anyhow::Result<Duration> {
    let split = text.len().checked_sub(1).filter(|_| text.is_ascii()).context("an amount and a unit")?;
    let (amount, unit) = text.split_at(split);
    let amount: i64 = amount.parse().context("a whole number")?;
    anyhow::ensure!((0..=36_500 * 86_400).contains(&amount), "at most 100 years");
    Ok(match unit {
        "s" => Duration::seconds(amount),
        "m" => Duration::minutes(amount),
        "h" => Duration::hours(amount),
        "d" => Duration::days(amount),
        _ => bail!("a unit of s, m, h or d"),
    })
}

/// The HTTP method `otcd sign` signs, upper-case: one the API takes.
pub fn method(text: &str) -> anyhow::Result<String> {
    let method = text.to_ascii_uppercase();
    match method.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => Ok(method),
        _ => bail!("--method {text:?}: the API takes GET, POST, PUT, PATCH or DELETE"),
    }
}

/// The path `otcd sign` signs: exactly what the request sends, so `/v1/...` with its query, never a URL.
pub fn path(text: &str) -> anyhow::Result<&str> {
    if text.contains("://") {
        bail!("{text:?} is a URL: sign the path with its query only, e.g. /v1/balances (curl takes the URL)");
    }
    if !text.starts_with('/') || text.chars().any(char::is_whitespace) {
        bail!("{text:?}: a path starts with / and has no spaces, e.g. /v1/balances or '/v1/trades?limit=10'");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn friendly_times_become_rfc_3339() {
        let now = at("2026-12-06T08:30:15Z");
        let time = |text| super::time("from", text, now).unwrap();
        assert_eq!(time("2026-01-31"), "2026-01-31T00:00:00Z");
        assert_eq!(time("2026-01-31T09:30:00+01:00"), "2026-01-31T09:30:00+01:00");
        assert_eq!(time("now"), "2026-12-06T08:30:15Z");
        assert_eq!(time("today"), "2026-12-06T00:00:00Z");
        assert_eq!(time("yesterday"), "2026-12-05T00:00:00Z");
        assert_eq!(time("now-24h"), "2026-12-05T08:30:15Z");
        assert_eq!(time("now-7d"), "2026-11-29T08:30:15Z");
        assert_eq!(time("now-90s"), "2026-12-06T08:28:45Z");
        for wrong in ["tomorrow", "now-", "now-5y", "now-h", "2026-13-01", "now-99999999999d", "now-5µ"] {
            let error = super::time("from", wrong, now).unwrap_err().to_string();
            assert!(error.starts_with("--from"), "{wrong}: {error}");
        }
    }

    #[test]
    fn sign_takes_only_paths_and_api_methods() {
        assert_eq!(method("post").unwrap(), "POST");
        assert!(method("FOO").is_err());
        assert_eq!(path("/v1/balances").unwrap(), "/v1/balances");
        assert!(path("v1/balances").is_err());
        assert!(path("http://127.0.0.1:8080/v1/balances").is_err());
        assert!(path("/v1/trades?limit=1 0").is_err());
    }
}
