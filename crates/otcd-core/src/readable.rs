//! Figures for people: exact amounts without the ledger's trailing zeros and with thousands separators, and
//! durations in the largest whole unit. Used where the engine writes text a person reads (alert evidence); the
//! API keeps full-scale decimal strings and integer fields beside that text.

use crate::decimal;

/// `units` of `10^-scale` as an exact decimal with grouped thousands and no trailing fractional zeros:
/// `amount(25_000_000, 8)` is `"0.25"`, `amount(123_456_789_00, 2)` is `"123,456,789"`. Never rounds.
pub fn amount(units: i128, scale: u8) -> String {
    let full = decimal::format_scaled(units, scale);
    let (sign, unsigned) = full.strip_prefix('-').map_or(("", full.as_str()), |rest| ("-", rest));
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let fraction = fraction.trim_end_matches('0');
    let mut out = String::with_capacity(full.len() + whole.len() / 3 + 1);
    out.push_str(sign);
    out.push_str(&group_thousands(whole));
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// USD cents as `"USD 8,000.00"` (cents always shown, the way people read money).
pub fn usd_cents(cents: i128) -> String {
    let full = decimal::format_scaled(cents, 2);
    let (sign, unsigned) = full.strip_prefix('-').map_or(("", full.as_str()), |rest| ("-", rest));
    let (whole, fraction) = unsigned.split_once('.').expect("scale 2 has a fraction");
    format!("{sign}USD {}.{fraction}", group_thousands(whole))
}

/// Inserts `,` every three digits from the right of a string of ASCII digits.
fn group_thousands(digits: &str) -> String {
    debug_assert!(digits.bytes().all(|byte| byte.is_ascii_digit()));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A duration in the largest unit that states it exactly: `86_400_000` is `"24 h"`, `172_800_000` is `"2 days"`,
/// `90_000` is `"90 s"`, `1_500` is `"1500 ms"`. Days only from two days up: "24 h" is how a day-long AML window
/// is usually said.
pub fn duration_ms(ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    const HOUR_MS: i64 = 3_600_000;
    const MINUTE_MS: i64 = 60_000;
    const SECOND_MS: i64 = 1_000;
    match ms {
        _ if ms >= 2 * DAY_MS && ms % DAY_MS == 0 => format!("{} days", ms / DAY_MS),
        _ if ms >= HOUR_MS && ms % HOUR_MS == 0 => format!("{} h", ms / HOUR_MS),
        _ if ms >= MINUTE_MS && ms % MINUTE_MS == 0 => format!("{} min", ms / MINUTE_MS),
        _ if ms >= SECOND_MS && ms % SECOND_MS == 0 => format!("{} s", ms / SECOND_MS),
        _ => format!("{ms} ms"),
    }
}

/// A duration between two events for people, rounded down to a whole unit (`"3 min"`, `"5 h"`, `"12 s"`): for
/// "how long before", where exactness to the millisecond would only be noise.
pub fn elapsed_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        _ if ms >= 2 * 86_400_000 => format!("{} days", ms / 86_400_000),
        _ if ms >= 3_600_000 => format!("{} h", ms / 3_600_000),
        _ if ms >= 60_000 => format!("{} min", ms / 60_000),
        _ if ms >= 1_000 => format!("{} s", ms / 1_000),
        _ => format!("{ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_grouped_and_trimmed() {
        assert_eq!(amount(25_000_000, 8), "0.25");
        assert_eq!(amount(100_000_000, 8), "1");
        assert_eq!(amount(12_345_678_912_345, 8), "123,456.78912345");
        assert_eq!(amount(-100_050, 2), "-1,000.5");
        assert_eq!(amount(1, 18), "0.000000000000000001");
        assert_eq!(amount(0, 2), "0");
        assert_eq!(amount(999, 0), "999");
        assert_eq!(amount(1_000, 0), "1,000");
        assert_eq!(usd_cents(800_000), "USD 8,000.00");
        assert_eq!(usd_cents(-5), "-USD 0.05");
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration_ms(86_400_000), "24 h");
        assert_eq!(duration_ms(2 * 86_400_000), "2 days");
        assert_eq!(duration_ms(36 * 3_600_000), "36 h");
        assert_eq!(duration_ms(600_000), "10 min");
        assert_eq!(duration_ms(90_000), "90 s");
        assert_eq!(duration_ms(1_500), "1500 ms");
        assert_eq!(elapsed_ms(185_000), "3 min");
        assert_eq!(elapsed_ms(-4), "0 ms");
    }

    proptest::proptest! {
        #[test]
        fn amount_is_the_full_scale_value_without_separators(units in proptest::num::i128::ANY, scale in 0u8..=18) {
            let readable = amount(units, scale).replace(',', "");
            let full = decimal::format_scaled(units, scale);
            proptest::prop_assert_eq!(decimal::parse_scaled(&readable, scale), decimal::parse_scaled(&full, scale));
        }
    }
}
