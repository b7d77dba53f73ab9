//! The files of a list set as `--sanctions-dir` reads them, and the check a freshly downloaded file passes before
//! it may replace the one in use (`otcd sanctions fetch`, the desk's scheduled refresh): every file parses on its
//! own, completely, and holds entries. The download itself is the binary's (an HTTP client is an adapter).

use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::limits::MAX_SOURCE_BYTES;
use crate::lists::{LoadReport, OfacSources};

/// Rows of an OFAC CSV file that may fail to parse (in 1,000ths): the published files have a stray row now
/// and then, an error page or a truncated file has nearly none that parse.
const BAD_ROWS_PER_MILLE_MAX: usize = 10;

/// One file of a list set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListFile {
    OfacSdn,
    OfacAlt,
    OfacAdd,
    OfacComments,
    UnConsolidated,
    EuConsolidated,
    UkSanctionsList,
}

impl ListFile {
    pub const ALL: [ListFile; 7] = [
        ListFile::OfacSdn,
        ListFile::OfacAlt,
        ListFile::OfacAdd,
        ListFile::OfacComments,
        ListFile::UnConsolidated,
        ListFile::EuConsolidated,
        ListFile::UkSanctionsList,
    ];

    /// Where the file lives inside a sanctions directory.
    pub fn path(self) -> &'static str {
        match self {
            ListFile::OfacSdn => "ofac/sdn.csv",
            ListFile::OfacAlt => "ofac/alt.csv",
            ListFile::OfacAdd => "ofac/add.csv",
            ListFile::OfacComments => "ofac/sdn_comments.csv",
            ListFile::UnConsolidated => "un/consolidated.xml",
            ListFile::EuConsolidated => crate::eu::FILE,
            ListFile::UkSanctionsList => crate::uk::FILE,
        }
    }

    /// Whether `--sanctions-dir` needs it (the EU and UK lists are optional).
    pub fn required(self) -> bool {
        !matches!(self, ListFile::EuConsolidated | ListFile::UkSanctionsList)
    }

    /// The publisher's own date of the file, as written in it (the UN's `dateGenerated`, the EU's
    /// `generationDate`, the UK's `DateGenerated`); the OFAC CSV files carry none.
    pub fn publication_date(self, bytes: &[u8]) -> Option<String> {
        let (element, attribute) = match self {
            ListFile::UnConsolidated => (&b"CONSOLIDATED_LIST"[..], Some(&b"dateGenerated"[..])),
            ListFile::EuConsolidated => (&b"export"[..], Some(&b"generationDate"[..])),
            ListFile::UkSanctionsList => (&b"DateGenerated"[..], None),
            _ => return None,
        };
        publication_date(bytes, element, attribute)
    }

    /// Checks that `bytes` parse completely as this file; answers the entries (list files) or rows (the OFAC
    /// alias, address and comment files) it holds.
    pub fn verify(self, bytes: &[u8]) -> Result<usize, LoadError> {
        let file = self.path();
        if bytes.len() > MAX_SOURCE_BYTES {
            return Err(LoadError::TooLarge { file, size: bytes.len() as u64, limit: MAX_SOURCE_BYTES });
        }
        let mut report = LoadReport::default();
        let entries = match self {
            ListFile::OfacSdn => {
                verify_rows(file, bytes, false)?;
                crate::ofac::parse(OfacSources { sdn: bytes, ..OfacSources::default() }, &mut report).len()
            }
            ListFile::OfacAlt | ListFile::OfacAdd => verify_rows(file, bytes, false)?,
            ListFile::OfacComments => return verify_rows(file, bytes, true),
            ListFile::UnConsolidated => crate::un::parse(bytes, &mut report)?.len(),
            ListFile::EuConsolidated => crate::eu::parse(bytes, &mut report)?.len(),
            ListFile::UkSanctionsList => crate::uk::parse(bytes, &mut report)?.len(),
        };
        if entries == 0 {
            return Err(LoadError::Empty { file });
        }
        Ok(entries)
    }
}

/// Elements read at most while looking for the date: it sits at the top of each file.
const DATE_SEARCH_EVENTS_MAX: usize = 64;

/// The attribute `attribute` of the first `element`, or its text when `attribute` is `None`.
fn publication_date(bytes: &[u8], element: &[u8], attribute: Option<&[u8]>) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut inside = false;
    for _ in 0..DATE_SEARCH_EVENTS_MAX {
        match reader.read_event().ok()? {
            Event::Start(start) | Event::Empty(start) if start.local_name().as_ref() == element => {
                let Some(wanted) = attribute else {
                    inside = true;
                    continue;
                };
                let found = start.attributes().flatten().find(|found| found.key.local_name().as_ref() == wanted)?;
                return Some(found.unescape_value().ok()?.trim().chars().take(64).collect());
            }
            Event::Text(text) if inside => return Some(text.unescape().ok()?.trim().chars().take(64).collect()),
            Event::Eof => return None,
            _ => {}
        }
    }
    None
}

fn verify_rows(file: &'static str, bytes: &[u8], may_be_empty: bool) -> Result<usize, LoadError> {
    let (rows, bad) = crate::ofac::row_quality(bytes);
    if rows == 0 && !may_be_empty {
        return Err(LoadError::Empty { file });
    }
    if bad * 1000 > rows * BAD_ROWS_PER_MILLE_MAX {
        return Err(LoadError::Unparsed { file, bad, rows });
    }
    Ok(rows - bad)
}

/// `manifest.json` of a fetched set: what each file is and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// RFC 3339 time the set was installed.
    pub fetched_at: String,
    /// The lists' digest ([`crate::SanctionsLists::digest`]) of this set: the version every screening on it names.
    pub lists_version: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the sanctions directory (`ofac/sdn.csv`).
    pub path: String,
    pub source_url: String,
    /// RFC 3339 time the download finished.
    pub fetched_at: String,
    pub size_bytes: u64,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Entries (list files) or rows (OFAC alias, address and comment files).
    pub entries: usize,
    /// The publisher's date written in the file ([`ListFile::publication_date`]); absent for the OFAC files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_page_is_not_a_list() {
        let page = b"<html><body>Service unavailable</body></html>";
        for file in ListFile::ALL {
            assert!(file.verify(page).is_err(), "{file:?}");
        }
    }

    #[test]
    fn publication_dates_come_from_each_format() {
        let un = br#"<?xml version="1.0"?><CONSOLIDATED_LIST dateGenerated="2026-02-27T08:00:00.000Z"><INDIVIDUALS/></CONSOLIDATED_LIST>"#;
        assert_eq!(ListFile::UnConsolidated.publication_date(un).as_deref(), Some("2026-02-27T08:00:00.000Z"));
        let eu = include_bytes!("../tests/fixtures/eu_consolidated.xml");
        assert_eq!(ListFile::EuConsolidated.publication_date(eu).as_deref(), Some("2026-11-30T18:02:11.000+01:00"));
        let uk = include_bytes!("../tests/fixtures/uk_sanctions_list.xml");
        assert_eq!(ListFile::UkSanctionsList.publication_date(uk).as_deref(), Some("2026-11-30T09:00:00"));
        assert_eq!(ListFile::OfacSdn.publication_date(b"36,\"X\""), None);
        assert_eq!(ListFile::UnConsolidated.publication_date(b"<A><B>"), None);
    }

    #[test]
    fn csv_files_need_entity_numbers() {
        let sdn = b"36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n\x1a";
        assert_eq!(ListFile::OfacSdn.verify(sdn).unwrap(), 1);
        assert_eq!(ListFile::OfacComments.verify(b"").unwrap(), 0);
        assert!(matches!(ListFile::OfacAlt.verify(b""), Err(LoadError::Empty { .. })));
        let half_bad = b"36,12,\"aka\",\"X\",-0-\r\nnot,a,row\r\n";
        assert!(matches!(ListFile::OfacAlt.verify(half_bad), Err(LoadError::Unparsed { bad: 1, rows: 2, .. })));
    }
}
