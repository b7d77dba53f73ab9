//! UN Security Council consolidated list (XML): INDIVIDUALS/INDIVIDUAL and
//! ENTITIES/ENTITY records. Entry id is REFERENCE_NUMBER, else DATAID.

use crate::countries::country_code;
use crate::dates::DateOfBirth;
use crate::error::LoadError;
use crate::limits::MAX_ATTRIBUTES_PER_ENTRY;
use crate::lists::{AliasQuality, Entry, EntryKind, ListId, LoadReport};
use crate::ofac::push_alias;
use crate::xml::{walk, Node};

const FILE: &str = "un/consolidated.xml";

#[derive(Default)]
struct DateParts {
    kind: String,
    date: String,
    year: String,
    from_year: String,
    to_year: String,
}

#[derive(Default)]
struct Record {
    individual: bool,
    data_id: String,
    reference: String,
    names: Vec<String>,
    aliases: Vec<(String, AliasQuality)>,
    alias_name: String,
    alias_quality: String,
    dates: Vec<DateOfBirth>,
    date: DateParts,
    nationalities: Vec<String>,
}

/// Over the shared bounded walk (`xml.rs`). An empty element (`<ALIAS_NAME/>`)
/// is reported as opened and closed with empty text, the same as
/// `<ALIAS_NAME></ALIAS_NAME>`: every field it can set is empty by default
/// and empty names are never kept, so only an empty record element
/// (`<INDIVIDUAL/>`) reads differently from the parser's own loop of before:
/// it is a record without id or name, counted in `un_records_skipped`.
pub(crate) fn parse(xml: &[u8], report: &mut LoadReport) -> Result<Vec<Entry>, LoadError> {
    let mut record: Option<Record> = None;
    let mut entries = Vec::new();
    walk(xml, FILE, |node| match node {
        Node::Open { name: name @ (b"INDIVIDUAL" | b"ENTITY"), .. } => {
            record = Some(Record { individual: name == b"INDIVIDUAL", ..Record::default() });
        }
        Node::Open { .. } => {}
        Node::Close { name, parent, text } => {
            if let Some(current) = record.as_mut() {
                current.assign(name, parent, text);
            }
            if name == b"INDIVIDUAL" || name == b"ENTITY" {
                if let Some(finished) = record.take() {
                    match finished.into_entry(report) {
                        Some(entry) => entries.push(entry),
                        None => report.un_records_skipped += 1,
                    }
                }
            }
        }
    })?;
    if record.is_some() {
        report.un_records_skipped += 1;
    }
    Ok(entries)
}

impl Record {
    fn assign(&mut self, name: &[u8], parent: &[u8], text: String) {
        match (parent, name) {
            (_, b"DATAID") => self.data_id = text,
            (_, b"REFERENCE_NUMBER") => self.reference = text,
            (b"INDIVIDUAL" | b"ENTITY", b"FIRST_NAME" | b"SECOND_NAME" | b"THIRD_NAME" | b"FOURTH_NAME") => {
                self.names.push(text);
            }
            (b"INDIVIDUAL" | b"ENTITY", b"NAME_ORIGINAL_SCRIPT") => {
                self.aliases.push((text, AliasQuality::Strong));
            }
            (_, b"ALIAS_NAME") => self.alias_name = text,
            (_, b"QUALITY") => self.alias_quality = text,
            (_, b"INDIVIDUAL_ALIAS" | b"ENTITY_ALIAS") => self.finish_alias(),
            (b"INDIVIDUAL_DATE_OF_BIRTH", _) => self.date_part(name, text),
            (_, b"INDIVIDUAL_DATE_OF_BIRTH") => self.finish_date(),
            (b"NATIONALITY", b"VALUE") => {
                if let Some(code) = country_code(&text) {
                    if !self.nationalities.contains(&code) {
                        self.nationalities.push(code);
                    }
                }
            }
            _ => {}
        }
    }

    fn finish_alias(&mut self) {
        let name = std::mem::take(&mut self.alias_name);
        let quality = match std::mem::take(&mut self.alias_quality).to_ascii_lowercase().as_str() {
            "low" => AliasQuality::Weak,
            _ => AliasQuality::Strong,
        };
        self.aliases.push((name, quality));
    }

    fn date_part(&mut self, name: &[u8], text: String) {
        let slot = match name {
            b"TYPE_OF_DATE" => &mut self.date.kind,
            b"DATE" => &mut self.date.date,
            b"YEAR" => &mut self.date.year,
            b"FROM_YEAR" => &mut self.date.from_year,
            b"TO_YEAR" => &mut self.date.to_year,
            _ => return,
        };
        *slot = text;
    }

    fn finish_date(&mut self) {
        let parts = std::mem::take(&mut self.date);
        let approximate = parts.kind.eq_ignore_ascii_case("APPROXIMATELY");
        let year = |text: &str| text.trim().parse::<u16>().ok();
        let date = if !parts.date.is_empty() {
            DateOfBirth::parse_iso(&parts.date).map(|date| date.with_approximate(approximate))
        } else if let (Some(from), Some(to)) = (year(&parts.from_year), year(&parts.to_year)) {
            DateOfBirth::year_range(from, to, approximate)
        } else {
            year(&parts.year).and_then(|single| DateOfBirth::year_range(single, single, approximate))
        };
        if let Some(date) = date {
            self.dates.push(date);
        }
    }

    fn into_entry(self, report: &mut LoadReport) -> Option<Entry> {
        let id = if self.reference.trim().is_empty() { self.data_id } else { self.reference };
        let name =
            self.names.iter().map(|part| part.trim()).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ");
        if id.trim().is_empty() || name.is_empty() {
            return None;
        }
        let kind = if self.individual { EntryKind::Individual } else { EntryKind::Entity };
        let mut entry = Entry::new(ListId::Un, id.trim().to_string(), kind, name);
        for (alias, quality) in self.aliases {
            push_alias(&mut entry, alias.trim().to_string(), quality, report);
        }
        entry.dates_of_birth = self.dates;
        entry.dates_of_birth.truncate(MAX_ATTRIBUTES_PER_ENTRY);
        entry.nationalities = self.nationalities;
        entry.nationalities.truncate(MAX_ATTRIBUTES_PER_ENTRY);
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL>
  <DATAID>6908555</DATAID><FIRST_NAME>AYMAN</FIRST_NAME><SECOND_NAME>MUHAMMED</SECOND_NAME>
  <THIRD_NAME>RABI</THIRD_NAME><FOURTH_NAME>AL-ZAWAHARI</FOURTH_NAME>
  <REFERENCE_NUMBER>QDi.006</REFERENCE_NUMBER>
  <NATIONALITY><VALUE>Egypt</VALUE></NATIONALITY>
  <LIST_TYPE><VALUE>UN List</VALUE></LIST_TYPE>
  <INDIVIDUAL_ALIAS><QUALITY>Good</QUALITY><ALIAS_NAME>Ayman al-Zawahiri</ALIAS_NAME></INDIVIDUAL_ALIAS>
  <INDIVIDUAL_ALIAS><QUALITY>Low</QUALITY><ALIAS_NAME>Abu Mohammed</ALIAS_NAME></INDIVIDUAL_ALIAS>
  <INDIVIDUAL_ALIAS><QUALITY/><ALIAS_NAME/></INDIVIDUAL_ALIAS>
  <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><DATE>1951-06-19</DATE></INDIVIDUAL_DATE_OF_BIRTH>
  <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>BETWEEN</TYPE_OF_DATE><FROM_YEAR>1950</FROM_YEAR><TO_YEAR>1952</TO_YEAR></INDIVIDUAL_DATE_OF_BIRTH>
  <INDIVIDUAL_DOCUMENT><DATE_OF_ISSUE>2000-01-01</DATE_OF_ISSUE></INDIVIDUAL_DOCUMENT>
</INDIVIDUAL></INDIVIDUALS><ENTITIES><ENTITY>
  <DATAID>110401</DATAID><FIRST_NAME>AL-QAIDA &amp; CO</FIRST_NAME><REFERENCE_NUMBER>QDe.004</REFERENCE_NUMBER>
  <ENTITY_ALIAS><QUALITY>a.k.a.</QUALITY><ALIAS_NAME>The Base</ALIAS_NAME></ENTITY_ALIAS>
</ENTITY><ENTITY><FIRST_NAME>NO ID</FIRST_NAME></ENTITY></ENTITIES></CONSOLIDATED_LIST>"#;

    #[test]
    fn parses_individuals_and_entities() {
        let mut report = LoadReport::default();
        let entries = parse(SAMPLE.as_bytes(), &mut report).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(report.un_records_skipped, 1);
        let person = &entries[0];
        assert_eq!(person.id, "QDi.006");
        assert_eq!(person.name, "AYMAN MUHAMMED RABI AL-ZAWAHARI");
        assert_eq!(person.aliases.len(), 2);
        assert_eq!(person.aliases[1].quality, AliasQuality::Weak);
        assert_eq!(person.nationalities, vec!["EG"]);
        assert_eq!(person.dates_of_birth.len(), 2);
        assert_eq!(person.dates_of_birth[0].day, Some(19));
        let entity = &entries[1];
        assert_eq!(entity.kind, EntryKind::Entity);
        assert_eq!(entity.name, "AL-QAIDA & CO");
        assert_eq!(entity.aliases[0].name, "The Base");
    }

    #[test]
    fn empty_elements_read_as_empty_fields() {
        let xml = r#"<CONSOLIDATED_LIST><INDIVIDUALS>
  <INDIVIDUAL><DATAID>1</DATAID><FIRST_NAME>OMAR</FIRST_NAME><SECOND_NAME/><THIRD_NAME>KHAN</THIRD_NAME>
    <REFERENCE_NUMBER>TAi.001</REFERENCE_NUMBER><NAME_ORIGINAL_SCRIPT/>
    <INDIVIDUAL_ALIAS/><INDIVIDUAL_ALIAS><QUALITY>Low</QUALITY><ALIAS_NAME>Abu Omar</ALIAS_NAME></INDIVIDUAL_ALIAS>
    <NATIONALITY><VALUE/></NATIONALITY><INDIVIDUAL_DATE_OF_BIRTH/>
    <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE/><YEAR>1970</YEAR></INDIVIDUAL_DATE_OF_BIRTH>
  </INDIVIDUAL>
  <INDIVIDUAL/>
</INDIVIDUALS></CONSOLIDATED_LIST>"#;
        let mut report = LoadReport::default();
        let entries = parse(xml.as_bytes(), &mut report).unwrap();
        assert_eq!(entries.len(), 1);
        let person = &entries[0];
        assert_eq!(person.name, "OMAR KHAN");
        // The empty original-script name and the empty alias add nothing; the empty quality is no quality.
        assert_eq!(person.aliases.len(), 1);
        assert_eq!(person.aliases[0].name, "Abu Omar");
        assert_eq!(person.aliases[0].quality, AliasQuality::Weak);
        assert!(person.nationalities.is_empty());
        assert_eq!(person.dates_of_birth.len(), 1);
        assert_eq!(person.dates_of_birth[0].year_from, 1970);
        // An empty record element is a record without id or name: skipped, and counted.
        assert_eq!(report.un_records_skipped, 1);
    }

    #[test]
    fn an_unclosed_record_is_counted_as_skipped() {
        let mut report = LoadReport::default();
        let result = parse(b"<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><DATAID>1</DATAID>", &mut report);
        assert!(result.unwrap().is_empty());
        assert_eq!(report.un_records_skipped, 1);
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let mut report = LoadReport::default();
        let result = parse(b"<A><B></A>", &mut report);
        assert!(matches!(result, Err(LoadError::Xml { .. })));
    }
}
