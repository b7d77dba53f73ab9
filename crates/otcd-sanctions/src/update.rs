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
    fn csv_files_need_entity_numbers() {
        let sdn = b"36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n\x1a";
        assert_eq!(ListFile::OfacSdn.verify(sdn).unwrap(), 1);
        assert_eq!(ListFile::OfacComments.verify(b"").unwrap(), 0);
        assert!(matches!(ListFile::OfacAlt.verify(b""), Err(LoadError::Empty { .. })));
        let half_bad = b"36,12,\"aka\",\"X\",-0-\r\nnot,a,row\r\n";
        assert!(matches!(ListFile::OfacAlt.verify(half_bad), Err(LoadError::Unparsed { bad: 1, rows: 2, .. })));
    }
}
