//! Parsing raw request input into domain values at the edge: JSON bodies (unknown fields rejected, decimals
//! only as strings), decimal amounts at an asset's scale, RFC 3339 timestamps. Every failure names the field.

use crate::problem::{ApiError, ApiResult};
use otcd_core::decimal::{self, DecimalError};
use otcd_core::time::TimestampMs;
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Deserializes a JSON body. Errors carry the path of the offending field.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "a JSON object is required"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        ApiError::invalid(field_name(&path, &message), strip_position(&message))
    })?;
    deserializer.end().map_err(|_| ApiError::invalid("body", "trailing characters after the JSON object"))?;
    Ok(value)
}

/// Deserializes one item of a JSON body already read as a value (an item of a batch). Errors carry the path of
/// the offending field within the item.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        ApiError::invalid(field_name(&path, &message), strip_position(&message))
    })
}

/// A JSON array of at most `N` items, refused while it is read once it holds more (the body's size limit alone
/// would let a megabyte of `{}` become a few hundred thousand values).
#[derive(Debug, Clone, PartialEq)]
pub struct BoundedList<T, const N: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedList<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T, const N: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for ListVisitor<T, N> {
            type Value = BoundedList<T, N>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "an array of at most {N} items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(items.size_hint().unwrap_or(0).min(N));
                while let Some(item) = items.next_element()? {
                    if list.len() == N {
                        return Err(serde::de::Error::custom(format_args!("at most {N} items are allowed")));
                    }
                    list.push(item);
                }
                Ok(BoundedList(list))
            }
        }
        deserializer.deserialize_seq(ListVisitor(std::marker::PhantomData))
    }
}

/// serde reports an unknown field at its parent's path; name the field itself.
fn field_name(path: &str, message: &str) -> String {
    let unknown = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (unknown, path) {
        (Some(name), "." | "") => name.to_owned(),
        (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "." | "") => "body".to_owned(),
        (None, path) => path.to_owned(),
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(position) => message[..position].to_owned(),
        None => message.to_owned(),
    }
}

/// A decimal that must arrive as a JSON string: `"0.5"`, never `0.5`.
#[derive(Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
#[schema(value_type = String, example = "50050.00")]
pub struct DecimalText(pub String);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DecimalVisitor;
        impl Visitor<'_> for DecimalVisitor {
            type Value = DecimalText;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a decimal string such as \"12.34\" (JSON numbers are not accepted for money)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DecimalText, E> {
                Ok(DecimalText(text.to_owned()))
            }
        }
        deserializer.deserialize_str(DecimalVisitor)
    }
}

impl DecimalText {
    pub fn positive(&self, field: &str, scale: u8) -> ApiResult<i128> {
        decimal::parse_positive(&self.0, scale).map_err(|error| decimal_error(field, error))
    }

    pub fn non_negative(&self, field: &str, scale: u8) -> ApiResult<i128> {
        decimal::parse_non_negative(&self.0, scale).map_err(|error| decimal_error(field, error))
    }

    /// Any sign (a movement in or out).
    pub fn signed(&self, field: &str, scale: u8) -> ApiResult<i128> {
        decimal::parse_scaled(&self.0, scale).map_err(|error| decimal_error(field, error))
    }
}

fn decimal_error(field: &str, error: DecimalError) -> ApiError {
    ApiError::invalid(field, error)
}

/// A base quantity of `instrument`: a decimal at the base asset's scale, on the instrument's increment and within
/// its limits. Errors name `field` (the request's own name for it, e.g. `levels[2]`).
pub fn parse_quantity(
    desk: &otcd_services::DeskServices,
    instrument: &otcd_core::catalog::Instrument,
    field: &str,
    text: &DecimalText,
) -> ApiResult<i128> {
    let quantity = text.positive(field, desk.base_scale(instrument))?;
    desk.check_quantity(instrument, quantity).map_err(|error| match error {
        otcd_services::ServiceError::Rejected(otcd_core::engine::CommandError::Invalid { detail, .. }) => {
            ApiError::invalid(field, detail)
        }
        other => other.into(),
    })?;
    Ok(quantity)
}

/// The text serde writes for a unit enum variant (`pending`, `desk_pays`, `custody`): how the API spells the
/// engine's statuses and kinds. Empty for a value that is not written as a string.
pub fn enum_text(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

/// For PATCH: distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

pub fn parse_timestamp(field: &str, text: &str) -> ApiResult<TimestampMs> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 timestamp such as \"2027-01-31T00:00:00Z\""))?;
    let milliseconds = parsed.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(milliseconds).map(TimestampMs).map_err(|_| ApiError::invalid(field, "is out of range"))
}

/// RFC 3339 UTC with milliseconds: `2026-11-23T23:52:00.123Z`.
pub fn format_timestamp(at: TimestampMs) -> String {
    let nanoseconds = i128::from(at.0) * 1_000_000;
    let Ok(moment) = OffsetDateTime::from_unix_timestamp_nanos(nanoseconds) else { return String::from("invalid") };
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    moment.format(&format).unwrap_or_else(|_| String::from("invalid"))
}

/// Decimal with trailing fractional zeros removed (`2000` centi-bps at scale 2 is `"20"`, 1250 is `"12.5"`).
pub fn format_trimmed(units: i128, scale: u8) -> String {
    let text = decimal::format_scaled(units, scale);
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        amount: DecimalText,
        nested: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        value: DecimalText,
    }

    #[test]
    fn errors_name_the_field() {
        let error = parse_body::<Sample>(br#"{"amount": 5}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amount"));
        assert!(error.detail.contains("decimal string"), "{}", error.detail);
        let error = parse_body::<Sample>(br#"{"amount": "5", "amuont": "5"}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amuont"));
        let error = parse_body::<Sample>(br#"{"amount": "5", "nested": {"valeu": "1"}}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("nested.valeu"));
        let error = parse_body::<Sample>(br#"{}"#).unwrap_err();
        assert!(error.detail.contains("missing field `amount`"), "{}", error.detail);
        assert_eq!(parse_body::<Sample>(b"").unwrap_err().field.as_deref(), Some("body"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        items: BoundedList<serde_json::Value, 3>,
    }

    #[test]
    fn a_bounded_list_refuses_more_items_while_reading() {
        let three = parse_body::<Batch>(br#"{"items": [1, {}, "x"]}"#).unwrap();
        assert_eq!(three.items.0.len(), 3);
        assert!(parse_body::<Batch>(br#"{"items": []}"#).unwrap().items.0.is_empty());
        let error = parse_body::<Batch>(br#"{"items": [1, 2, 3, 4]}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("items"), "{error:?}");
        assert!(error.detail.contains("at most 3 items"), "{}", error.detail);
        // Refused at the fourth item: what follows it is never parsed (this tail is not even JSON).
        let error = parse_body::<Batch>(br#"{"items": [1, 2, 3, 4, nonsense"#).unwrap_err();
        assert!(error.detail.contains("at most 3 items"), "{}", error.detail);
        assert_eq!(parse_body::<Batch>(br#"{"items": {}}"#).unwrap_err().field.as_deref(), Some("items"));
    }

    #[test]
    fn an_item_value_is_parsed_with_its_own_field_names() {
        let error = parse_value::<Sample>(serde_json::json!({"amount": 5})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amount"));
        let error = parse_value::<Sample>(serde_json::json!({"amount": "5", "memo": 1})).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("memo"));
        assert_eq!(parse_value::<Sample>(serde_json::json!("x")).unwrap_err().field.as_deref(), Some("body"));
        assert_eq!(parse_value::<Sample>(serde_json::json!({"amount": "5"})).unwrap().amount, DecimalText("5".into()));
    }

    #[test]
    fn timestamps_round_trip() {
        let at = parse_timestamp("t", "2026-11-23T23:52:00.123Z").unwrap();
        assert_eq!(format_timestamp(at), "2026-11-23T23:52:00.123Z");
        assert!(parse_timestamp("t", "yesterday").is_err());
    }

    #[test]
    fn trims() {
        assert_eq!(format_trimmed(2_000, 2), "20");
        assert_eq!(format_trimmed(1_250, 2), "12.5");
        assert_eq!(format_trimmed(0, 2), "0");
    }
}
