//! OFAC legacy CSV files: headerless, quoted fields, "-0-" for empty.

use std::collections::HashMap;

use crate::countries::country_code;
use crate::limits::{MAX_ALIASES_PER_ENTRY, MAX_ATTRIBUTES_PER_ENTRY, MAX_FIELDS_PER_ROW, MAX_FIELD_BYTES};
use crate::lists::{Alias, AliasQuality, Entry, EntryKind, ListId, LoadReport, OfacSources};
use crate::remarks::parse_remarks;

const EMPTY_MARK: &str = "-0-";
/// DOS end-of-file byte that OFAC appends to its files.
const END_OF_FILE_BYTE: u8 = 0x1a;

struct Builder {
    entries: Vec<Entry>,
    positions: HashMap<String, usize>,
    remarks: Vec<String>,
}

pub(crate) fn parse(sources: OfacSources<'_>, report: &mut LoadReport) -> Vec<Entry> {
    let mut builder = Builder { entries: Vec::new(), positions: HashMap::new(), remarks: Vec::new() };
    for_each_row(sources.sdn, report, |row, report| builder.add_sdn(row, report));
    for_each_row(sources.comments, report, |row, report| builder.add_comment(row, report));
    builder.apply_remarks(report);
    for_each_row(sources.alt, report, |row, report| builder.add_alias(row, report));
    for_each_row(sources.add, report, |row, report| builder.add_address(row, report));
    builder.entries
}

/// (rows, rows whose first field is not an entity number): how well a CSV file of the set parses on its own.
pub(crate) fn row_quality(bytes: &[u8]) -> (usize, usize) {
    let mut report = LoadReport::default();
    let (mut rows, mut bad) = (0, 0);
    for_each_row(bytes, &mut report, |fields, _| {
        rows += 1;
        if entity_number(fields.first()).is_none() {
            bad += 1;
        }
    });
    (rows + report.ofac_rows_skipped, bad + report.ofac_rows_skipped)
}

/// Calls `handle` with the cleaned fields of each row; rows the CSV reader
/// rejects or that break the limits are skipped and counted.
fn for_each_row(bytes: &[u8], report: &mut LoadReport, mut handle: impl FnMut(&[String], &mut LoadReport)) {
    let end = bytes
        .iter()
        .rposition(|byte| *byte != END_OF_FILE_BYTE && !byte.is_ascii_whitespace())
        .map_or(0, |position| position + 1);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[..end]);
    for record in reader.byte_records() {
        let Ok(record) = record else {
            report.ofac_rows_skipped += 1;
            continue;
        };
        let too_big = record.len() > MAX_FIELDS_PER_ROW || record.iter().any(|field| field.len() > MAX_FIELD_BYTES);
        if too_big {
            report.ofac_rows_skipped += 1;
            continue;
        }
        let fields: Vec<String> = record.iter().map(clean_field).collect();
        if fields.iter().all(String::is_empty) {
            continue;
        }
        handle(&fields, report);
    }
}

fn clean_field(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let trimmed = text.trim();
    if trimmed == EMPTY_MARK {
        String::new()
    } else {
        trimmed.to_string()
    }
}

fn entity_number(field: Option<&String>) -> Option<String> {
    let number = field?.parse::<u64>().ok()?;
    Some(number.to_string())
}

fn kind_of(sdn_type: &str) -> EntryKind {
    match sdn_type.to_ascii_lowercase().as_str() {
        "individual" => EntryKind::Individual,
        "vessel" => EntryKind::Vessel,
        "aircraft" => EntryKind::Aircraft,
        _ => EntryKind::Entity,
    }
}

impl Builder {
    fn add_sdn(&mut self, row: &[String], report: &mut LoadReport) {
        let (Some(id), Some(name)) = (entity_number(row.first()), row.get(1)) else {
            report.ofac_rows_skipped += 1;
            return;
        };
        if name.is_empty() || self.positions.contains_key(&id) {
            report.ofac_rows_skipped += 1;
            return;
        }
        let kind = kind_of(row.get(2).map_or("", String::as_str));
        let mut entry = Entry::new(ListId::OfacSdn, id.clone(), kind, name.clone());
        entry.programs = row.get(3).map(|programs| split_programs(programs)).unwrap_or_default();
        self.positions.insert(id, self.entries.len());
        self.entries.push(entry);
        self.remarks.push(row.get(11).cloned().unwrap_or_default());
    }

    /// sdn_comments.csv continues the Remarks column mid-word, so the text is
    /// appended without a separator.
    fn add_comment(&mut self, row: &[String], report: &mut LoadReport) {
        let position = entity_number(row.first()).and_then(|id| self.positions.get(&id).copied());
        match (position, row.get(1)) {
            (Some(position), Some(text)) => {
                if let Some(remarks) = self.remarks.get_mut(position) {
                    if remarks.len() + text.len() <= MAX_FIELD_BYTES {
                        remarks.push_str(text);
                    }
                }
            }
            _ => report.ofac_rows_skipped += 1,
        }
    }

    fn apply_remarks(&mut self, report: &mut LoadReport) {
        for (entry, text) in self.entries.iter_mut().zip(&self.remarks) {
            let mut remarks = parse_remarks(text);
            report.remarks_items_unparsed += remarks.unparsed;
            remarks.dates_of_birth.truncate(MAX_ATTRIBUTES_PER_ENTRY);
            remarks.nationalities.truncate(MAX_ATTRIBUTES_PER_ENTRY);
            remarks.addresses.truncate(MAX_ATTRIBUTES_PER_ENTRY);
            entry.dates_of_birth = remarks.dates_of_birth;
            entry.nationalities = remarks.nationalities;
            entry.digital_currency_addresses = remarks.addresses;
            for alias in remarks.weak_aliases {
                push_alias(entry, alias, AliasQuality::Weak, report);
            }
        }
    }

    fn add_alias(&mut self, row: &[String], report: &mut LoadReport) {
        let position = entity_number(row.first()).and_then(|id| self.positions.get(&id).copied());
        let (Some(position), Some(name)) = (position, row.get(3)) else {
            report.ofac_rows_skipped += 1;
            return;
        };
        if let Some(entry) = self.entries.get_mut(position) {
            push_alias(entry, name.clone(), AliasQuality::Strong, report);
        }
    }

    fn add_address(&mut self, row: &[String], report: &mut LoadReport) {
        let position = entity_number(row.first()).and_then(|id| self.positions.get(&id).copied());
        let Some(position) = position else {
            report.ofac_rows_skipped += 1;
            return;
        };
        let country = row.get(4).and_then(|country| country_code(country));
        if let (Some(entry), Some(country)) = (self.entries.get_mut(position), country) {
            let countries = &mut entry.address_countries;
            if !countries.contains(&country) && countries.len() < MAX_ATTRIBUTES_PER_ENTRY {
                countries.push(country);
            }
        }
    }
}

fn split_programs(programs: &str) -> Vec<String> {
    programs
        .split("] [")
        .map(|program| program.trim_matches(|c| c == '[' || c == ']' || c == ' '))
        .filter(|program| !program.is_empty())
        .map(str::to_string)
        .take(MAX_ATTRIBUTES_PER_ENTRY)
        .collect()
}

pub(crate) fn push_alias(entry: &mut Entry, name: String, quality: AliasQuality, report: &mut LoadReport) {
    if name.trim().is_empty() || name == entry.name || entry.aliases.iter().any(|alias| alias.name == name) {
        return;
    }
    if entry.aliases.len() >= MAX_ALIASES_PER_ENTRY {
        report.aliases_dropped += 1;
        return;
    }
    entry.aliases.push(Alias { name, quality });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDN: &str = concat!(
        "36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n",
        "28264,\"LI, Jiadong\",\"individual\",\"DPRK3] [CYBER2\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,",
        "\"DOB 10 Jan 1987; nationality China; Digital Currency Address - XBT 1EfMVkxQQuZfBdocpJu6RUsCJvenQWbQyE; Digital Currency Addre\"\r\n",
        "garbage,\"NO NUMBER\"\r\n",
        "\u{1a}"
    );
    const COMMENTS: &str = "28264,\"ss - ETH 0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c; a.k.a. 'khaleesi'.\"\r\n";
    const ALT: &str = "36,12,\"aka\",\"AERO-CARIBBEAN\",-0- \r\n28264,99,\"aka\",\"LI, Jia Dong\",-0- \r\n";
    const ADD: &str = "36,25,-0- ,\"Havana\",\"Cuba\",-0- \r\n";

    fn parse_sample() -> (Vec<Entry>, LoadReport) {
        let mut report = LoadReport::default();
        let sources = OfacSources {
            sdn: SDN.as_bytes(),
            add: ADD.as_bytes(),
            alt: ALT.as_bytes(),
            comments: COMMENTS.as_bytes(),
        };
        (parse(sources, &mut report), report)
    }

    #[test]
    fn parses_the_four_files() {
        let (entries, report) = parse_sample();
        assert_eq!(entries.len(), 2);
        assert_eq!(report.ofac_rows_skipped, 1);
        let airline = &entries[0];
        assert_eq!(airline.kind, EntryKind::Entity);
        assert_eq!(airline.aliases[0].name, "AERO-CARIBBEAN");
        assert_eq!(airline.address_countries, vec!["CU"]);
        let person = &entries[1];
        assert_eq!(person.kind, EntryKind::Individual);
        assert_eq!(person.programs, vec!["DPRK3", "CYBER2"]);
        assert_eq!(person.nationalities, vec!["CN"]);
        assert_eq!(person.dates_of_birth.len(), 1);
        let addresses: Vec<&str> =
            person.digital_currency_addresses.iter().map(|address| address.address.as_str()).collect();
        assert_eq!(addresses, vec!["1EfMVkxQQuZfBdocpJu6RUsCJvenQWbQyE", "0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c"]);
        assert!(person.aliases.iter().any(|alias| alias.name == "khaleesi" && alias.quality == AliasQuality::Weak));
    }
}
