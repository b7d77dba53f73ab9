//! The OFAC `Remarks` column: semicolon-separated items such as
//! "DOB 01 Jan 1960", "nationality Iran", "a.k.a. 'BNC'" and
//! "alt. Digital Currency Address - XBT 1ABC...".

use crate::countries::country_code;
use crate::dates::DateOfBirth;
use crate::lists::DigitalCurrencyAddress;

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Remarks {
    pub dates_of_birth: Vec<DateOfBirth>,
    pub nationalities: Vec<String>,
    pub addresses: Vec<DigitalCurrencyAddress>,
    pub weak_aliases: Vec<String>,
    /// Items that announced a date of birth or an address but did not parse.
    pub unparsed: usize,
}

const ADDRESS_PREFIX: &str = "Digital Currency Address - ";

pub(crate) fn parse_remarks(text: &str) -> Remarks {
    let mut remarks = Remarks::default();
    for item in text.split(';') {
        parse_item(item.trim(), &mut remarks);
    }
    remarks
}

fn parse_item(item: &str, remarks: &mut Remarks) {
    let item = item.strip_prefix("alt. ").unwrap_or(item).trim();
    if let Some(date) = item.strip_prefix("DOB ") {
        match DateOfBirth::parse_ofac(date) {
            Some(date) => remarks.dates_of_birth.push(date),
            None => remarks.unparsed += 1,
        }
    } else if let Some(country) = item.strip_prefix("nationality ").or_else(|| item.strip_prefix("citizen ")) {
        if let Some(code) = country_code(country) {
            push_unique(&mut remarks.nationalities, code);
        }
    } else if let Some(address) = item.strip_prefix(ADDRESS_PREFIX) {
        match parse_address(address) {
            Some(address) => remarks.addresses.push(address),
            None => remarks.unparsed += 1,
        }
    } else if let Some(alias) = weak_alias(item) {
        remarks.weak_aliases.push(alias.to_string());
    }
}

fn parse_address(text: &str) -> Option<DigitalCurrencyAddress> {
    let mut words = text.split_whitespace();
    let currency = words.next()?;
    let address = words.next()?.trim_end_matches('.');
    let plausible = currency.len() <= 10
        && (16..=128).contains(&address.len())
        && address.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b':');
    plausible.then(|| DigitalCurrencyAddress { currency: currency.to_string(), address: address.to_string() })
}

fn weak_alias(item: &str) -> Option<&str> {
    let rest = ["a.k.a. ", "f.k.a. ", "n.k.a. "].iter().find_map(|prefix| item.strip_prefix(prefix))?;
    let inner = rest.trim().trim_end_matches('.').trim();
    let inner = inner.strip_prefix('\'')?.strip_suffix('\'')?.trim();
    (!inner.is_empty()).then_some(inner)
}

fn push_unique(values: &mut Vec<String>, value: String) {
    if !values.contains(&value) {
        values.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_item_kinds() {
        let remarks = parse_remarks(
            "DOB 10 Jan 1987; alt. DOB circa 1985; nationality China; citizen Korea, North; \
             Gender Male; Digital Currency Address - XBT 1EfMVkxQQuZfBdocpJu6RUsCJvenQWbQyE; \
             alt. Digital Currency Address - ETH 0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c; \
             a.k.a. 'blackjack1987'; DOB sometime; Linked To: LAZARUS GROUP.",
        );
        assert_eq!(remarks.dates_of_birth.len(), 2);
        assert_eq!(remarks.nationalities, vec!["CN", "KP"]);
        assert_eq!(remarks.addresses.len(), 2);
        assert_eq!(remarks.addresses[1].currency, "ETH");
        assert_eq!(remarks.weak_aliases, vec!["blackjack1987"]);
        assert_eq!(remarks.unparsed, 1);
    }

    #[test]
    fn trailing_period_is_not_part_of_an_address() {
        let remarks = parse_remarks("Digital Currency Address - XBT 12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h.");
        assert_eq!(remarks.addresses[0].address, "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h");
    }
}
