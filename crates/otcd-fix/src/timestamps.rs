//! FIX UTCTimestamp text (`YYYYMMDD-HH:MM:SS.sss`) ⇄ [`TimestampMs`].

use otcd_core::time::TimestampMs;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// `YYYYMMDD-HH:MM:SS.sss`; `None` for a time the calendar cannot show (never produced by the desk's clock).
pub fn format(at: TimestampMs) -> String {
    let Ok(moment) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000) else {
        return String::from("19700101-00:00:00.000");
    };
    format!(
        "{:04}{:02}{:02}-{:02}:{:02}:{:02}.{:03}",
        moment.year(),
        moment.month() as u8,
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second(),
        moment.millisecond()
    )
}

/// Parses `YYYYMMDD-HH:MM:SS` with an optional fraction of 1 to 9 digits (truncated to ms).
pub fn parse(text: &str) -> Option<TimestampMs> {
    let bytes = text.as_bytes();
    if bytes.len() < 17 || bytes[8] != b'-' || bytes[11] != b':' || bytes[14] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        digits.bytes().all(|byte| byte.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let fraction_ms = match text.get(17..) {
        Some("") => 0,
        Some(rest) => {
            let digits = rest.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{digits:0<3}");
            padded[..3].parse::<u32>().ok()?
        }
        None => return None,
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(number(6..8)?).ok()?).ok()?;
    let clock = Time::from_hms_milli(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(12..14)?).ok()?,
        u8::try_from(number(15..17)?).ok()?,
        u16::try_from(fraction_ms).ok()?,
    )
    .ok()?;
    let moment = PrimitiveDateTime::new(date, clock).assume_utc();
    Some(TimestampMs(i64::try_from(moment.unix_timestamp_nanos() / 1_000_000).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_garbage_is_refused() {
        let at = TimestampMs(1_767_225_600_123);
        assert_eq!(format(at), "20260101-00:00:00.123");
        assert_eq!(parse(&format(at)), Some(at));
        assert_eq!(parse("20260101-00:00:00"), Some(TimestampMs(1_767_225_600_000)));
        assert_eq!(parse("20260101-00:00:00.123456"), Some(at));
        for bad in ["", "2026", "20261301-00:00:00", "20260101-24:00:00", "20260101-00:00:00.", "20260101 00:00:00"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panic(text in "\\PC{0,40}") {
            let _ = parse(&text);
        }
    }
}
