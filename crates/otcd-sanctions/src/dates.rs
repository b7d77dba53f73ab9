//! Dates of birth as lists give them: exact days, months, years, ranges and
//! "circa" years.

use serde::{Deserialize, Serialize};

/// A listed date of birth. A single year has `year_from == year_to`; `month`
/// and `day` are set only for single dates that give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateOfBirth {
    pub year_from: u16,
    pub year_to: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
    /// "circa" / "approximately": compared with a tolerance of two years.
    pub approximate: bool,
}

/// How a queried date of birth relates to an entry's dates of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DateAgreement {
    /// Every listed date rules the queried one out.
    Contradicts,
    /// Same year as a listed exact date, different month or day.
    DayDiffers,
    /// No date on one side.
    Unknown,
    SameYear,
    SameDate,
}

const APPROXIMATE_YEARS: u16 = 2;
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

impl DateOfBirth {
    fn year(year: u16) -> DateOfBirth {
        DateOfBirth { year_from: year, year_to: year, month: None, day: None, approximate: false }
    }

    /// Parses the text after "DOB " in OFAC remarks: "01 Jan 1960",
    /// "Jan 1960", "1960", "circa 1960", "1960 to 1962", "circa 1960-1962",
    /// "01 Jan 1960 to 31 Dec 1962".
    pub(crate) fn parse_ofac(text: &str) -> Option<DateOfBirth> {
        let text = text.trim().trim_end_matches('.').trim();
        let (approximate, text) = match text.strip_prefix("circa") {
            Some(rest) => (true, rest.trim()),
            None => (false, text),
        };
        let mut date = match split_range(text) {
            Some((from, to)) => {
                let from = parse_single(from)?;
                let to = parse_single(to)?;
                let (year_from, year_to) = (from.year_from.min(to.year_from), from.year_to.max(to.year_to));
                DateOfBirth { year_from, year_to, ..DateOfBirth::year(year_from) }
            }
            None => parse_single(text)?,
        };
        date.approximate = approximate;
        Some(date)
    }

    /// Parses "YYYY-MM-DD", "YYYY-MM" or "YYYY" (queries and UN `DATE`).
    pub fn parse_iso(text: &str) -> Option<DateOfBirth> {
        let mut parts = text.trim().get(..10.min(text.trim().len()))?.split('-');
        let year = parse_year(parts.next()?)?;
        let mut date = DateOfBirth::year(year);
        if let Some(month) = parts.next() {
            date.month = month.parse::<u8>().ok().filter(|month| (1..=12).contains(month));
            date.month?;
        }
        if let Some(day) = parts.next() {
            date.day = day.parse::<u8>().ok().filter(|day| (1..=31).contains(day));
            date.day?;
        }
        Some(date)
    }

    pub(crate) fn year_range(from: u16, to: u16, approximate: bool) -> Option<DateOfBirth> {
        if !(1000..=2999).contains(&from) || !(1000..=2999).contains(&to) {
            return None;
        }
        Some(DateOfBirth { year_from: from.min(to), year_to: from.max(to), month: None, day: None, approximate })
    }

    pub(crate) fn with_approximate(mut self, approximate: bool) -> DateOfBirth {
        self.approximate = approximate;
        self
    }

    fn agreement(&self, query: &DateOfBirth) -> DateAgreement {
        let tolerance = if self.approximate { APPROXIMATE_YEARS } else { 0 };
        let lowest = self.year_from.saturating_sub(tolerance);
        let highest = self.year_to.saturating_add(tolerance);
        if query.year_from < lowest || query.year_from > highest {
            return DateAgreement::Contradicts;
        }
        let single = self.year_from == self.year_to && !self.approximate;
        if !single {
            return DateAgreement::SameYear;
        }
        match (self.month, self.day, query.month, query.day) {
            (Some(month), Some(day), Some(query_month), Some(query_day)) => {
                if month == query_month && day == query_day {
                    DateAgreement::SameDate
                } else {
                    DateAgreement::DayDiffers
                }
            }
            (Some(month), _, Some(query_month), _) if month != query_month => DateAgreement::DayDiffers,
            _ => DateAgreement::SameYear,
        }
    }
}

/// The best agreement between the query and any listed date.
pub(crate) fn best_agreement(listed: &[DateOfBirth], query: Option<&DateOfBirth>) -> DateAgreement {
    let Some(query) = query else {
        return DateAgreement::Unknown;
    };
    listed.iter().map(|date| date.agreement(query)).max().unwrap_or(DateAgreement::Unknown)
}

fn split_range(text: &str) -> Option<(&str, &str)> {
    if let Some((from, to)) = text.split_once(" to ") {
        return Some((from, to));
    }
    // "1960-1962": only between two bare years, since dates have no dashes here.
    let (from, to) = text.split_once('-')?;
    (from.trim().len() == 4 && to.trim().len() == 4).then_some((from, to))
}

fn parse_single(text: &str) -> Option<DateOfBirth> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    match parts.as_slice() {
        [year] => Some(DateOfBirth::year(parse_year(year)?)),
        [month, year] => Some(DateOfBirth { month: Some(parse_month(month)?), ..DateOfBirth::year(parse_year(year)?) }),
        [day, month, year] => Some(DateOfBirth {
            day: Some(day.parse::<u8>().ok().filter(|day| (1..=31).contains(day))?),
            month: Some(parse_month(month)?),
            ..DateOfBirth::year(parse_year(year)?)
        }),
        _ => None,
    }
}

fn parse_year(text: &str) -> Option<u16> {
    let text = text.trim();
    if text.len() != 4 {
        return None;
    }
    text.parse::<u16>().ok().filter(|year| (1000..=2999).contains(year))
}

fn parse_month(text: &str) -> Option<u8> {
    let prefix = text.get(..3)?.to_ascii_lowercase();
    let position = MONTHS.iter().position(|month| *month == prefix)?;
    u8::try_from(position + 1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ofac_forms() {
        let exact = DateOfBirth::parse_ofac("01 Jan 1960").unwrap();
        assert_eq!((exact.year_from, exact.month, exact.day), (1960, Some(1), Some(1)));
        let circa = DateOfBirth::parse_ofac("circa 1960").unwrap();
        assert!(circa.approximate);
        let range = DateOfBirth::parse_ofac("1960 to 1962").unwrap();
        assert_eq!((range.year_from, range.year_to), (1960, 1962));
        let dashed = DateOfBirth::parse_ofac("circa 1958-1960.").unwrap();
        assert_eq!((dashed.year_from, dashed.year_to, dashed.approximate), (1958, 1960, true));
        let dates = DateOfBirth::parse_ofac("01 Jan 1960 to 31 Dec 1962").unwrap();
        assert_eq!((dates.year_from, dates.year_to, dates.day), (1960, 1962, None));
        assert_eq!(DateOfBirth::parse_ofac("Aug 1971").unwrap().month, Some(8));
        assert!(DateOfBirth::parse_ofac("unknown").is_none());
        assert!(DateOfBirth::parse_ofac("99 Foo 1960").is_none());
    }

    #[test]
    fn parses_iso_forms() {
        assert_eq!(DateOfBirth::parse_iso("1965-05-13").unwrap().day, Some(13));
        assert_eq!(DateOfBirth::parse_iso("1965").unwrap().month, None);
        assert!(DateOfBirth::parse_iso("1965-13-01").is_none());
        assert!(DateOfBirth::parse_iso("é").is_none());
    }

    #[test]
    fn agreement_rules() {
        let listed = [DateOfBirth::parse_ofac("13 May 1965").unwrap()];
        let check = |query: &str| best_agreement(&listed, DateOfBirth::parse_iso(query).as_ref());
        assert_eq!(check("1965-05-13"), DateAgreement::SameDate);
        assert_eq!(check("1965"), DateAgreement::SameYear);
        assert_eq!(check("1965-06-13"), DateAgreement::DayDiffers);
        assert_eq!(check("1970-05-13"), DateAgreement::Contradicts);
        let circa = [DateOfBirth::parse_ofac("circa 1960").unwrap()];
        let query = DateOfBirth::parse_iso("1962-01-01");
        assert_eq!(best_agreement(&circa, query.as_ref()), DateAgreement::SameYear);
        assert_eq!(best_agreement(&[], query.as_ref()), DateAgreement::Unknown);
    }
}
