//! Exact decimal strings <-> scaled integers.
//!
//! Every amount, price and quantity crosses the API edge as a decimal string and lives inside the desk as an
//! integer count of `10^-scale` units (an asset's minor units, a price increment's units). This module is the
//! only place that converts between the two. It is written by hand rather than taken from a decimal crate
//! because the grammar must be stricter than general-purpose parsers allow: no exponent, no `+`, no `_`
//! separators, no whitespace, no `.5` or `5.`, and never a silent rounding.

/// Longest decimal string accepted. Bounds parsing work and rejects absurd inputs early.
pub const DECIMAL_TEXT_LENGTH_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("must be a decimal string such as \"12.34\" (digits, an optional '.', no exponent or sign other than a leading '-')")]
    Syntax,
    #[error("has more than {scale} decimal places")]
    TooPrecise { scale: u8 },
    #[error("is out of range")]
    OutOfRange,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
}

/// Parses `text` into an integer count of `10^-scale` units. Digits beyond `scale` are accepted only when they
/// are zeros (the value is still exact); anything else is `TooPrecise`, never rounded.
pub fn parse_scaled(text: &str, scale: u8) -> Result<i128, DecimalError> {
    if text.is_empty() || text.len() > DECIMAL_TEXT_LENGTH_MAX {
        return Err(DecimalError::Syntax);
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    let fraction_present = unsigned.contains('.');
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || (fraction_present && fraction.is_empty()) {
        return Err(DecimalError::Syntax);
    }
    let scale_digits = usize::from(scale);
    if fraction.len() > scale_digits && fraction[scale_digits..].bytes().any(|byte| byte != b'0') {
        return Err(DecimalError::TooPrecise { scale });
    }
    let mut units: i128 = 0;
    let fraction_kept = &fraction[..fraction.len().min(scale_digits)];
    for byte in whole.bytes().chain(fraction_kept.bytes()) {
        units = push_digit(units, byte)?;
    }
    for _ in fraction_kept.len()..scale_digits {
        units = units.checked_mul(10).ok_or(DecimalError::OutOfRange)?;
    }
    Ok(if negative { -units } else { units })
}

fn push_digit(units: i128, digit: u8) -> Result<i128, DecimalError> {
    units
        .checked_mul(10)
        .and_then(|shifted| shifted.checked_add(i128::from(digit - b'0')))
        .ok_or(DecimalError::OutOfRange)
}

/// Parses a value that must be strictly greater than zero (quantities, deposit amounts, prices).
pub fn parse_positive(text: &str, scale: u8) -> Result<i128, DecimalError> {
    match parse_scaled(text, scale)? {
        units if units > 0 => Ok(units),
        _ => Err(DecimalError::NotPositive),
    }
}

/// Parses a value that may be zero but not negative (limits, spreads).
pub fn parse_non_negative(text: &str, scale: u8) -> Result<i128, DecimalError> {
    match parse_scaled(text, scale)? {
        units if units >= 0 => Ok(units),
        _ => Err(DecimalError::Negative),
    }
}

/// Formats `units` of `10^-scale` with exactly `scale` decimal places: `format_scaled(5005000, 2)` is `"50050.00"`.
/// `parse_scaled(&format_scaled(x, s), s) == Ok(x)` for every `x` and `s`.
pub fn format_scaled(units: i128, scale: u8) -> String {
    let mut text = String::with_capacity(usize::from(scale) + 24);
    push_scaled(&mut text, units, scale);
    text
}

/// Appends [`format_scaled`]`(units, scale)` to `out` without allocating: exports write millions of amounts
/// into one buffer.
pub fn push_scaled(out: &mut String, units: i128, scale: u8) {
    // u128::MAX has 39 digits.
    let mut buffer = [0u8; 39];
    let digits = unsigned_digits(units.unsigned_abs(), &mut buffer);
    let scale_digits = usize::from(scale);
    if units < 0 {
        out.push('-');
    }
    if scale_digits == 0 {
        out.push_str(digits);
    } else if digits.len() <= scale_digits {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale_digits - digits.len()));
        out.push_str(digits);
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - scale_digits);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    }
}

/// The decimal digits of `value`, written at the end of `buffer`.
fn unsigned_digits(value: u128, buffer: &mut [u8; 39]) -> &str {
    let mut start = buffer.len();
    // Most amounts fit in 64 bits, where division is several times cheaper than on 128.
    if let Ok(mut small) = u64::try_from(value) {
        loop {
            start -= 1;
            buffer[start] = b'0' + (small % 10) as u8;
            small /= 10;
            if small == 0 {
                break;
            }
        }
    } else {
        let mut large = value;
        loop {
            start -= 1;
            buffer[start] = b'0' + (large % 10) as u8;
            large /= 10;
            if large == 0 {
                break;
            }
        }
    }
    std::str::from_utf8(&buffer[start..]).expect("ASCII digits")
}

/// `10^exponent` as i128, for exponents up to 38.
pub fn power_of_ten(exponent: u8) -> i128 {
    assert!(exponent <= 38, "10^{exponent} does not fit in i128");
    10_i128.pow(u32::from(exponent))
}

/// Converts `units` at scale `from` to scale `to`. Scaling down must be exact; `None` when it is not or on overflow.
pub fn rescale_exact(units: i128, from: u8, to: u8) -> Option<i128> {
    if to >= from {
        units.checked_mul(power_of_ten(to - from))
    } else {
        let divisor = power_of_ten(from - to);
        (units % divisor == 0).then_some(units / divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_values() {
        assert_eq!(parse_scaled("50050.00", 2), Ok(5_005_000));
        assert_eq!(parse_scaled("0.5", 8), Ok(50_000_000));
        assert_eq!(parse_scaled("1", 18), Ok(1_000_000_000_000_000_000));
        assert_eq!(parse_scaled("-0.01", 2), Ok(-1));
        assert_eq!(parse_scaled("0.50000000000", 8), Ok(50_000_000));
        assert_eq!(parse_scaled("007", 0), Ok(7));
    }

    #[test]
    fn rejects_what_a_strict_grammar_rejects() {
        for text in ["", "1e5", "+1", ".5", "5.", "1_000", " 1", "1 ", "1.2.3", "--1", "0x10", "١", "NaN", "-"] {
            assert_eq!(parse_scaled(text, 8), Err(DecimalError::Syntax), "{text:?}");
        }
        assert_eq!(parse_scaled(&"9".repeat(65), 0), Err(DecimalError::Syntax));
    }

    #[test]
    fn rejects_precision_beyond_the_scale() {
        assert_eq!(parse_scaled("0.001", 2), Err(DecimalError::TooPrecise { scale: 2 }));
        assert_eq!(parse_scaled("0.000000001", 8), Err(DecimalError::TooPrecise { scale: 8 }));
        assert_eq!(parse_scaled("1.5", 0), Err(DecimalError::TooPrecise { scale: 0 }));
    }

    #[test]
    fn rejects_overflow_instead_of_wrapping() {
        assert_eq!(parse_scaled(&"9".repeat(39), 0), Err(DecimalError::OutOfRange));
        assert_eq!(parse_scaled(&"9".repeat(30), 18), Err(DecimalError::OutOfRange));
    }

    #[test]
    fn sign_rules() {
        assert_eq!(parse_positive("0", 2), Err(DecimalError::NotPositive));
        assert_eq!(parse_positive("-1", 2), Err(DecimalError::NotPositive));
        assert_eq!(parse_non_negative("0", 2), Ok(0));
        assert_eq!(parse_non_negative("-0.01", 2), Err(DecimalError::Negative));
    }

    #[test]
    fn formats_with_the_full_scale() {
        assert_eq!(format_scaled(5_005_000, 2), "50050.00");
        assert_eq!(format_scaled(1, 8), "0.00000001");
        assert_eq!(format_scaled(-1, 2), "-0.01");
        assert_eq!(format_scaled(0, 2), "0.00");
        assert_eq!(format_scaled(42, 0), "42");
        assert_eq!(format_scaled(i128::MIN, 18).len(), 41);
    }

    #[test]
    fn rescales_only_exactly() {
        assert_eq!(rescale_exact(150, 2, 4), Some(15_000));
        assert_eq!(rescale_exact(15_000, 4, 2), Some(150));
        assert_eq!(rescale_exact(15_001, 4, 2), None);
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(units in proptest::num::i128::ANY, scale in 0u8..=18) {
            proptest::prop_assert_eq!(parse_scaled(&format_scaled(units, scale), scale), Ok(units));
        }

        #[test]
        fn parse_then_format_keeps_the_value(whole in 0u64.., fraction in 0u32..100_000_000, scale in 8u8..=18) {
            let text = format!("{whole}.{fraction:08}");
            let units = parse_scaled(&text, scale).unwrap();
            let reparsed = parse_scaled(&format_scaled(units, scale), scale).unwrap();
            proptest::prop_assert_eq!(units, reparsed);
            proptest::prop_assert_eq!(units, rescale_exact(parse_scaled(&text, 8).unwrap(), 8, scale).unwrap());
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}", scale in 0u8..=38) {
            let _ = parse_scaled(&text, scale);
        }
    }
}
