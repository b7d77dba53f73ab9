//! CSV (RFC 4180, CRLF line ends) written straight into one buffer: an export of 100,000 rows is millions of
//! fields, and building a JSON value and a `String` for each of them first cost more than the query itself.

use otcd_core::decimal::push_scaled;
use serde_json::Value;

pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
const MILLISECONDS_PER_DAY: i64 = 86_400_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

pub struct CsvWriter {
    out: String,
    line_started: bool,
    /// `YYYY-MM-DD` of the last day written: the rows of an export mostly share a few days.
    cached_day: Option<(i64, String)>,
}

impl CsvWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        Self { out: String::with_capacity(bytes), line_started: false, cached_day: None }
    }

    pub fn header(&mut self, columns: &[&str]) {
        for column in columns {
            self.text(column);
        }
        self.end_line();
    }

    fn separator(&mut self) {
        if self.line_started {
            self.out.push(',');
        }
        self.line_started = true;
    }

    /// A text field, quoted when it holds a comma, a quote or a line break, and defused when a spreadsheet would
    /// read it as a formula (see [`formula_risk`]): OWASP's rule, a single quote in front.
    pub fn text(&mut self, text: &str) {
        self.separator();
        let defuse = formula_risk(text);
        if text.contains([',', '"', '\n', '\r']) {
            self.out.push('"');
            if defuse {
                self.out.push('\'');
            }
            for character in text.chars() {
                if character == '"' {
                    self.out.push('"');
                }
                self.out.push(character);
            }
            self.out.push('"');
        } else {
            if defuse {
                self.out.push('\'');
            }
            self.out.push_str(text);
        }
    }

    /// An unknown value: an empty field.
    pub fn empty(&mut self) {
        self.separator();
    }

    pub fn scaled(&mut self, units: i128, scale: u8) {
        self.separator();
        push_scaled(&mut self.out, units, scale);
    }

    pub fn optional_scaled(&mut self, units: Option<i128>, scale: u8) {
        match units {
            Some(units) => self.scaled(units, scale),
            None => self.empty(),
        }
    }

    pub fn number(&mut self, number: u64) {
        self.scaled(i128::from(number), 0);
    }

    /// `prefix` then `number` zero-padded to `width` digits (`t_000000000042`).
    pub fn padded_id(&mut self, prefix: &str, number: u64, width: usize) {
        self.separator();
        self.out.push_str(prefix);
        push_padded(&mut self.out, number, width);
    }

    /// RFC 3339 UTC with milliseconds, exactly as [`crate::render::format_time`] writes it.
    pub fn time(&mut self, at_ms: i64) {
        self.separator();
        let day = at_ms.div_euclid(MILLISECONDS_PER_DAY);
        if !self.cache_day(day) {
            self.out.push_str(&crate::render::format_time(at_ms));
            return;
        }
        if let Some((_, date)) = &self.cached_day {
            self.out.push_str(date);
        }
        let within_day = at_ms.rem_euclid(MILLISECONDS_PER_DAY).unsigned_abs();
        self.out.push('T');
        push_padded(&mut self.out, within_day / 3_600_000, 2);
        self.out.push(':');
        push_padded(&mut self.out, within_day / 60_000 % 60, 2);
        self.out.push(':');
        push_padded(&mut self.out, within_day / 1_000 % 60, 2);
        self.out.push('.');
        push_padded(&mut self.out, within_day % 1_000, 3);
        self.out.push('Z');
    }

    /// Makes `cached_day` the `YYYY-MM-DD` of `day` (days since the epoch); false outside the years 0000 to 9999,
    /// where the caller falls back to the general formatter.
    fn cache_day(&mut self, day: i64) -> bool {
        if self.cached_day.as_ref().is_some_and(|(cached, _)| *cached == day) {
            return true;
        }
        let Some(date) = i32::try_from(day + UNIX_EPOCH_JULIAN_DAY)
            .ok()
            .and_then(|julian| time::Date::from_julian_day(julian).ok())
            .filter(|date| (0..=9_999).contains(&date.year()))
        else {
            return false;
        };
        let mut text = String::with_capacity(10);
        push_padded(&mut text, u64::from(date.year().unsigned_abs()), 4);
        text.push('-');
        push_padded(&mut text, u64::from(u8::from(date.month())), 2);
        text.push('-');
        push_padded(&mut text, u64::from(date.day()), 2);
        self.cached_day = Some((day, text));
        true
    }

    /// A field of a generic report table (numbers as JSON writes them, `null` empty).
    pub fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.empty(),
            Value::String(text) => self.text(text),
            other => self.text(&other.to_string()),
        }
    }

    pub fn end_line(&mut self) {
        self.out.push_str("\r\n");
        self.line_started = false;
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Would a spreadsheet read `text` as a formula? OWASP's CSV-injection rule: a cell beginning with `=`, `+`, `-`,
/// `@`, a tab or a carriage return. A plain decimal (`-12.50`, the exports' negative amounts) is no formula and
/// stays a number; anything else starting so (`-1+2`, `=HYPERLINK(...)`) gets a leading single quote.
pub fn formula_risk(text: &str) -> bool {
    let Some(first) = text.bytes().next() else { return false };
    matches!(first, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') && !is_plain_decimal(text)
}

/// `-?DIGITS(.DIGITS)?`
fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// `value` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = 1;
    let mut rest = value / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    out.extend(std::iter::repeat_n('0', width.saturating_sub(digits)));
    push_scaled(out, i128::from(value), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_cell(text: &str) -> String {
        let mut csv = CsvWriter::with_capacity(64);
        csv.text(text);
        csv.finish()
    }

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_get_a_leading_quote() {
        assert_eq!(
            one_cell("=HYPERLINK(\"http://evil.example\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""
        );
        assert_eq!(one_cell("=1+2"), "'=1+2");
        assert_eq!(one_cell("+41 22"), "'+41 22");
        assert_eq!(one_cell("-1+2"), "'-1+2");
        assert_eq!(one_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(one_cell("\tcmd"), "'\tcmd");
        assert_eq!(one_cell("\rcmd"), "\"'\rcmd\"");
        assert_eq!(one_cell("=a,b"), "\"'=a,b\"");
    }

    #[test]
    fn numbers_and_ordinary_text_are_left_alone() {
        for text in ["-12.50", "-3", "0.1", "Acme Capital", "a=b", "", "cl_00000001", "2026-01-01T00:00:00.000Z"] {
            assert_eq!(one_cell(text), text, "{text:?}");
        }
        assert!(!formula_risk("-12.50") && formula_risk("-12.") && formula_risk("-.5") && formula_risk("-"));
    }
}
