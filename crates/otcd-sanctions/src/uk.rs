//! UK Sanctions List (FCDO), XML (`UK-Sanctions-List.xml`), the format published since February 2022; since
//! 28 January 2026 the only official UK list (OFSI's consolidated list was retired). Written from the FCDO's
//! format guidance: `Designations/Designation` records with `UniqueID`, `Names/Name` (`Name1`..`Name5` given and
//! other names, `Name6` the family or organisation name, `NameType` `Primary Name`, `Primary Name Variation` or
//! `Alias`, `AliasStrength`), `NonLatinNames/NonLatinName/NameNonLatinScript`, `IndividualEntityShip`
//! (`Individual`, `Entity`, `Ship`), `IndividualDetails/Individual/DOBs/DOB` (`dd/mm/yyyy`, unknown parts as
//! `00` or `dd`/`mm`), `.../Nationalities/Nationality` and `Addresses/Address/AddressCountry` (country names).

use crate::countries::{country_code, push_country};
use crate::dates::DateOfBirth;
use crate::error::LoadError;
use crate::limits::MAX_ATTRIBUTES_PER_ENTRY;
use crate::lists::{AliasQuality, Entry, EntryKind, ListId, LoadReport};
use crate::ofac::push_alias;
use crate::xml::{walk, Node};

pub(crate) const FILE: &str = "uk/sanctions_list.xml";

#[derive(Default)]
struct Name {
    parts: [String; 6],
    primary: bool,
    weak: bool,
}

#[derive(Default)]
struct Record {
    id: String,
    kind: Option<EntryKind>,
    primary: Option<String>,
    aliases: Vec<(String, AliasQuality)>,
    name: Name,
    dates: Vec<DateOfBirth>,
    nationalities: Vec<String>,
    address_countries: Vec<String>,
}

pub(crate) fn parse(xml: &[u8], report: &mut LoadReport) -> Result<Vec<Entry>, LoadError> {
    let mut record: Option<Record> = None;
    let mut entries = Vec::new();
    walk(xml, FILE, |node| match node {
        Node::Open { name: b"Designation", .. } => {
            if record.replace(Record::default()).is_some() {
                report.uk_records_skipped += 1;
            }
        }
        Node::Close { name: b"Designation", .. } => {
            if let Some(finished) = record.take() {
                match finished.into_entry(report) {
                    Some(entry) => entries.push(entry),
                    None => report.uk_records_skipped += 1,
                }
            }
        }
        Node::Close { name, parent, text } => {
            if let Some(current) = record.as_mut() {
                current.assign(name, parent, text);
            }
        }
        Node::Open { .. } => {}
    })?;
    if record.is_some() {
        report.uk_records_skipped += 1;
    }
    Ok(entries)
}

impl Record {
    fn assign(&mut self, name: &[u8], parent: &[u8], text: String) {
        match (parent, name) {
            (b"Designation", b"UniqueID") => self.id = text,
            (b"Designation", b"IndividualEntityShip") => {
                self.kind = Some(match text.to_ascii_lowercase().as_str() {
                    "individual" => EntryKind::Individual,
                    "ship" => EntryKind::Vessel,
                    _ => EntryKind::Entity,
                });
            }
            (b"Name", b"Name1" | b"Name2" | b"Name3" | b"Name4" | b"Name5" | b"Name6") => {
                let slot = usize::from(name[4] - b'1');
                self.name.parts[slot] = text;
            }
            (b"Name", b"NameType") => self.name.primary = text.eq_ignore_ascii_case("Primary Name"),
            (b"Name", b"AliasStrength") => {
                self.name.weak = matches!(text.to_ascii_lowercase().as_str(), "weak" | "low");
            }
            (b"Names", b"Name") => self.finish_name(),
            (b"NonLatinName", b"NameNonLatinScript") => self.aliases.push((text, AliasQuality::Strong)),
            (b"DOBs", b"DOB") => {
                if let Some(date) = parse_uk_date(&text) {
                    if self.dates.len() < MAX_ATTRIBUTES_PER_ENTRY {
                        self.dates.push(date);
                    }
                }
            }
            (b"Nationalities", b"Nationality") => push_country(&mut self.nationalities, country_code(&text)),
            (b"Address", b"AddressCountry") => push_country(&mut self.address_countries, country_code(&text)),
            _ => {}
        }
    }

    fn finish_name(&mut self) {
        let name = std::mem::take(&mut self.name);
        let full = name.parts.iter().map(|part| part.trim()).filter(|part| !part.is_empty()).collect::<Vec<_>>();
        if full.is_empty() {
            return;
        }
        let full = full.join(" ");
        if name.primary && self.primary.is_none() {
            self.primary = Some(full);
        } else {
            let quality = if name.weak { AliasQuality::Weak } else { AliasQuality::Strong };
            self.aliases.push((full, quality));
        }
    }

    fn into_entry(mut self, report: &mut LoadReport) -> Option<Entry> {
        if self.id.trim().is_empty() {
            return None;
        }
        // A record without a `Primary Name` is named by its first strong name.
        let name = match self.primary.take() {
            Some(name) => name,
            None => {
                let position = self.aliases.iter().position(|(_, quality)| *quality == AliasQuality::Strong)?;
                self.aliases.remove(position).0
            }
        };
        let kind = self.kind.unwrap_or(EntryKind::Entity);
        let mut entry = Entry::new(ListId::UkSanctions, self.id.trim().to_string(), kind, name);
        for (alias, quality) in self.aliases {
            push_alias(&mut entry, alias.trim().to_string(), quality, report);
        }
        entry.dates_of_birth = self.dates;
        entry.nationalities = self.nationalities;
        entry.address_countries = self.address_countries;
        Some(entry)
    }
}

/// `dd/mm/yyyy`; an unknown day or month (`00`, `dd`, `mm`) keeps the year only.
fn parse_uk_date(text: &str) -> Option<DateOfBirth> {
    let mut parts = text.trim().split('/');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let year: u16 = year.trim().parse().ok()?;
    let exact = |part: &str, max: u8| part.trim().parse::<u8>().ok().filter(|value| (1..=max).contains(value));
    match (exact(month, 12), exact(day, 31)) {
        (Some(month), Some(day)) => DateOfBirth::parse_iso(&format!("{year:04}-{month:02}-{day:02}")),
        (Some(month), None) => DateOfBirth::parse_iso(&format!("{year:04}-{month:02}")),
        _ => DateOfBirth::year_range(year, year, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small file in the published format (names, attributes and nesting as documented).
    const SAMPLE: &str = include_str!("../tests/fixtures/uk_sanctions_list.xml");

    #[test]
    fn parses_designations() {
        let mut report = LoadReport::default();
        let entries = parse(SAMPLE.as_bytes(), &mut report).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(report.uk_records_skipped, 1, "the designation without an id");
        let person = &entries[0];
        assert_eq!((person.list, person.id.as_str()), (ListId::UkSanctions, "RUS0999"));
        assert_eq!((person.name.as_str(), person.kind), ("Ivan Petrovich SIDOROV", EntryKind::Individual));
        let aliases: Vec<_> = person.aliases.iter().map(|alias| (alias.name.as_str(), alias.quality)).collect();
        assert_eq!(
            aliases,
            vec![
                ("Ivan SIDOROFF", AliasQuality::Strong),
                ("Vanya", AliasQuality::Weak),
                ("Иван Петрович СИДОРОВ", AliasQuality::Strong)
            ]
        );
        assert_eq!(person.dates_of_birth.len(), 2);
        assert_eq!((person.dates_of_birth[0].year_from, person.dates_of_birth[0].month), (1968, Some(1)));
        assert_eq!((person.dates_of_birth[1].year_from, person.dates_of_birth[1].month), (1969, None));
        assert_eq!(person.nationalities, vec!["RU"]);
        assert_eq!(person.address_countries, vec!["RU"]);
        let company = &entries[1];
        assert_eq!((company.name.as_str(), company.kind), ("EXAMPLE SHIPPING LLC", EntryKind::Entity));
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let mut report = LoadReport::default();
        assert!(matches!(parse(b"<Designations><Designation>", &mut report), Ok(_) | Err(LoadError::Xml { .. })));
        assert!(matches!(parse(b"<Designations></Designation>", &mut report), Err(LoadError::Xml { .. })));
    }
}
