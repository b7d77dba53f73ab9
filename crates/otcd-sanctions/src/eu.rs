//! EU consolidated list of persons, groups and entities subject to financial sanctions, the Financial Sanctions
//! Files (FSF) XML export, version 1.1 (`xmlFullSanctionsList_1_1`, namespace
//! `http://eu.europa.ec/fpi/fsd/export`). Written from the format's published description: the data sits in
//! attributes. Per `sanctionEntity` (id: `euReferenceNumber`, else `logicalId`): `subjectType/@code` (`person`,
//! `enterprise`), `nameAlias/@wholeName` (or first/middle/last name; `@strong="false"` marks a weak alias; the first
//! name alias is the entry's name), `citizenship/@countryIso2Code`, `birthdate/@birthdate` or `@year`,
//! `address/@countryIso2Code`.

use crate::countries::{country_code, is_code, push_country};
use crate::dates::DateOfBirth;
use crate::error::LoadError;
use crate::limits::MAX_ATTRIBUTES_PER_ENTRY;
use crate::lists::{AliasQuality, Entry, EntryKind, ListId, LoadReport};
use crate::ofac::push_alias;
use crate::xml::{attribute, walk, Node};

pub(crate) const FILE: &str = "eu/consolidated.xml";

#[derive(Default)]
struct Record {
    id: String,
    kind: Option<EntryKind>,
    names: Vec<(String, AliasQuality)>,
    dates: Vec<DateOfBirth>,
    nationalities: Vec<String>,
    address_countries: Vec<String>,
}

pub(crate) fn parse(xml: &[u8], report: &mut LoadReport) -> Result<Vec<Entry>, LoadError> {
    let mut record: Option<Record> = None;
    let mut entries = Vec::new();
    walk(xml, FILE, |node| match node {
        Node::Open { name: b"sanctionEntity", attributes, .. } => {
            let reference = attribute(attributes, b"euReferenceNumber");
            let id = if reference.is_empty() { attribute(attributes, b"logicalId") } else { reference };
            if record.is_some() {
                report.eu_records_skipped += 1; // an entity inside an entity: the outer one is malformed
            }
            record = Some(Record { id: id.to_string(), ..Record::default() });
        }
        Node::Open { name, parent: b"sanctionEntity", attributes } => {
            if let Some(current) = record.as_mut() {
                current.read(name, attributes);
            }
        }
        Node::Close { name: b"sanctionEntity", .. } => {
            if let Some(finished) = record.take() {
                match finished.into_entry(report) {
                    Some(entry) => entries.push(entry),
                    None => report.eu_records_skipped += 1,
                }
            }
        }
        _ => {}
    })?;
    if record.is_some() {
        report.eu_records_skipped += 1;
    }
    Ok(entries)
}

impl Record {
    fn read(&mut self, name: &[u8], attributes: &[(Vec<u8>, String)]) {
        match name {
            b"subjectType" => {
                self.kind = Some(match attribute(attributes, b"code") {
                    "person" => EntryKind::Individual,
                    _ => EntryKind::Entity,
                });
            }
            b"nameAlias" => {
                let whole = attribute(attributes, b"wholeName");
                let name = if whole.is_empty() {
                    [&b"firstName"[..], &b"middleName"[..], &b"lastName"[..]]
                        .iter()
                        .map(|key| attribute(attributes, key))
                        .filter(|part| !part.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    whole.to_string()
                };
                let quality = match attribute(attributes, b"strong") {
                    "false" => AliasQuality::Weak,
                    _ => AliasQuality::Strong,
                };
                if !name.is_empty() {
                    self.names.push((name, quality));
                }
            }
            b"citizenship" => push_listed_country(&mut self.nationalities, attributes),
            b"address" => push_listed_country(&mut self.address_countries, attributes),
            b"birthdate" => {
                let full = attribute(attributes, b"birthdate");
                let year = attribute(attributes, b"year").parse::<u16>().ok();
                let approximate = attribute(attributes, b"circa") == "true";
                let date = DateOfBirth::parse_iso(full)
                    .or_else(|| year.and_then(|year| DateOfBirth::year_range(year, year, false)))
                    .map(|date| date.with_approximate(approximate));
                if let Some(date) = date {
                    if self.dates.len() < MAX_ATTRIBUTES_PER_ENTRY {
                        self.dates.push(date);
                    }
                }
            }
            _ => {}
        }
    }

    fn into_entry(self, report: &mut LoadReport) -> Option<Entry> {
        let mut names = self.names.into_iter();
        let (name, _) = names.next()?;
        if self.id.is_empty() {
            return None;
        }
        let mut entry = Entry::new(ListId::EuConsolidated, self.id, self.kind.unwrap_or(EntryKind::Entity), name);
        for (alias, quality) in names {
            push_alias(&mut entry, alias, quality, report);
        }
        entry.dates_of_birth = self.dates;
        entry.nationalities = self.nationalities;
        entry.address_countries = self.address_countries;
        Some(entry)
    }
}

/// `countryIso2Code` when it is a code (the export writes `00` for unknown), else the description's code.
fn push_listed_country(into: &mut Vec<String>, attributes: &[(Vec<u8>, String)]) {
    let code = attribute(attributes, b"countryIso2Code");
    let found = if is_code(code) && code != "00" {
        Some(code.to_string())
    } else {
        country_code(attribute(attributes, b"countryDescription"))
    };
    push_country(into, found);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small file in the published format (names, attributes and nesting as documented).
    const SAMPLE: &str = include_str!("../tests/fixtures/eu_consolidated.xml");

    #[test]
    fn parses_persons_and_enterprises_from_attributes() {
        let mut report = LoadReport::default();
        let entries = parse(SAMPLE.as_bytes(), &mut report).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(report.eu_records_skipped, 1, "the entity without a name");
        let person = &entries[0];
        assert_eq!(
            (person.list, person.id.as_str(), person.kind),
            (ListId::EuConsolidated, "EU.27.28", EntryKind::Individual)
        );
        assert_eq!(person.name, "Saddam Hussein Al-Tikriti");
        assert_eq!(person.aliases.len(), 2);
        assert_eq!((person.aliases[0].name.as_str(), person.aliases[0].quality), ("Abu Ali", AliasQuality::Weak));
        assert_eq!(person.aliases[1].name, "Saddam Al & Tikriti");
        assert_eq!(person.nationalities, vec!["IQ"]);
        assert_eq!(person.address_countries, vec!["IQ"], "00 falls back to the description");
        assert_eq!((person.dates_of_birth[0].year_from, person.dates_of_birth[0].day), (1937, Some(28)));
        let company = &entries[1];
        assert_eq!((company.id.as_str(), company.kind), ("9001", EntryKind::Entity));
        assert!(company.dates_of_birth[0].approximate);
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let mut report = LoadReport::default();
        assert!(matches!(parse(b"<export><sanctionEntity></export>", &mut report), Err(LoadError::Xml { .. })));
    }
}
