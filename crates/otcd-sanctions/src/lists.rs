use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::address_key;
use crate::dates::DateOfBirth;
use crate::error::LoadError;
use crate::index::NameIndex;
use crate::limits::{MAX_ENTRIES, MAX_SOURCE_BYTES};

/// Which published list an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListId {
    /// US Treasury OFAC Specially Designated Nationals list.
    OfacSdn,
    /// UN Security Council consolidated list.
    Un,
    /// EU consolidated list of persons, groups and entities subject to financial sanctions (FSF).
    EuConsolidated,
    /// UK Sanctions List (FCDO).
    UkSanctions,
    /// The desk's own admin blocklist of addresses.
    Blocklist,
}

impl ListId {
    pub fn as_str(self) -> &'static str {
        match self {
            ListId::OfacSdn => "ofac_sdn",
            ListId::Un => "un",
            ListId::EuConsolidated => "eu_consolidated",
            ListId::UkSanctions => "uk_sanctions",
            ListId::Blocklist => "blocklist",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Individual,
    Entity,
    Vessel,
    Aircraft,
}

/// Strong aliases are names the entry is known by; weak ones (OFAC remarks
/// "a.k.a. '...'", UN quality "Low") are nicknames or poor spellings that
/// lists themselves say yield many false matches, so they score a bit lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasQuality {
    Strong,
    Weak,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    pub quality: AliasQuality,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitalCurrencyAddress {
    /// Currency code as listed (XBT, ETH, ...).
    pub currency: String,
    pub address: String,
}

/// One listed person, organisation, vessel or aircraft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub list: ListId,
    pub id: String,
    pub kind: EntryKind,
    pub name: String,
    pub aliases: Vec<Alias>,
    pub dates_of_birth: Vec<DateOfBirth>,
    /// Nationality / citizenship: ISO 3166-1 alpha-2 when known, else the name as listed.
    pub nationalities: Vec<String>,
    /// Countries of the listed addresses, same coding as `nationalities`.
    pub address_countries: Vec<String>,
    pub digital_currency_addresses: Vec<DigitalCurrencyAddress>,
    pub programs: Vec<String>,
}

impl Entry {
    pub(crate) fn new(list: ListId, id: String, kind: EntryKind, name: String) -> Entry {
        Entry {
            list,
            id,
            kind,
            name,
            aliases: Vec::new(),
            dates_of_birth: Vec::new(),
            nationalities: Vec::new(),
            address_countries: Vec::new(),
            digital_currency_addresses: Vec::new(),
            programs: Vec::new(),
        }
    }
}

/// Raw bytes of the four OFAC legacy CSV files; an empty slice means absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfacSources<'a> {
    pub sdn: &'a [u8],
    pub add: &'a [u8],
    pub alt: &'a [u8],
    pub comments: &'a [u8],
}

/// What the parsers skipped or cut, so a reload can be journaled with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    pub ofac_rows_skipped: usize,
    pub un_records_skipped: usize,
    pub aliases_dropped: usize,
    pub remarks_items_unparsed: usize,
    #[serde(default)]
    pub eu_records_skipped: usize,
    #[serde(default)]
    pub uk_records_skipped: usize,
}

/// Raw bytes of every list; `None` for a list that is not in the set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    pub ofac: OfacSources<'a>,
    pub un: Option<&'a [u8]>,
    pub eu: Option<&'a [u8]>,
    pub uk: Option<&'a [u8]>,
}

/// One immutable, indexed publication of the lists (Send + Sync).
#[derive(Debug)]
pub struct SanctionsLists {
    entries: Vec<Entry>,
    by_id: HashMap<(ListId, String), usize>,
    /// Address key (see [`address_key`]) to entry positions.
    addresses: HashMap<String, Vec<usize>>,
    pub(crate) index: NameIndex,
    digest: String,
    report: LoadReport,
}

const SOURCE_FILES: [&str; 5] =
    ["ofac/sdn.csv", "ofac/add.csv", "ofac/alt.csv", "ofac/sdn_comments.csv", "un/consolidated.xml"];

impl SanctionsLists {
    /// Loads `DIR/ofac/{sdn,add,alt,sdn_comments}.csv` and `DIR/un/consolidated.xml` (all five must exist), and
    /// `DIR/eu/consolidated.xml` and `DIR/uk/sanctions_list.xml` when they exist.
    pub fn load_dir(dir: &Path) -> Result<SanctionsLists, LoadError> {
        let mut contents = Vec::with_capacity(SOURCE_FILES.len());
        for (file, relative) in SOURCE_FILES.iter().enumerate() {
            contents.push(read_limited(&dir.join(relative), SOURCE_FILES[file])?);
        }
        let eu = read_optional(dir, crate::eu::FILE)?;
        let uk = read_optional(dir, crate::uk::FILE)?;
        let ofac = OfacSources { sdn: &contents[0], add: &contents[1], alt: &contents[2], comments: &contents[3] };
        SanctionsLists::from_all(Sources { ofac, un: Some(&contents[4]), eu: eu.as_deref(), uk: uk.as_deref() })
    }

    /// Parses and indexes the given sources. The OFAC `sdn` bytes are required
    /// to hold at least one entry; the UN list is optional.
    pub fn from_sources(ofac: OfacSources<'_>, un_xml: Option<&[u8]>) -> Result<SanctionsLists, LoadError> {
        SanctionsLists::from_all(Sources { ofac, un: un_xml, eu: None, uk: None })
    }

    /// Parses and indexes every given list. The OFAC `sdn` bytes must hold at least one entry; the others are
    /// optional.
    pub fn from_all(sources: Sources<'_>) -> Result<SanctionsLists, LoadError> {
        let ofac = sources.ofac;
        check_size("ofac/sdn.csv", ofac.sdn)?;
        check_size("ofac/add.csv", ofac.add)?;
        check_size("ofac/alt.csv", ofac.alt)?;
        check_size("ofac/sdn_comments.csv", ofac.comments)?;
        let mut report = LoadReport::default();
        let mut entries = crate::ofac::parse(ofac, &mut report);
        if entries.is_empty() {
            return Err(LoadError::Empty { file: "ofac/sdn.csv" });
        }
        if let Some(xml) = sources.un {
            check_size("un/consolidated.xml", xml)?;
            entries.extend(crate::un::parse(xml, &mut report)?);
        }
        if let Some(xml) = sources.eu {
            check_size(crate::eu::FILE, xml)?;
            entries.extend(crate::eu::parse(xml, &mut report)?);
        }
        if let Some(xml) = sources.uk {
            check_size(crate::uk::FILE, xml)?;
            entries.extend(crate::uk::parse(xml, &mut report)?);
        }
        if entries.len() > MAX_ENTRIES {
            return Err(LoadError::TooManyEntries { limit: MAX_ENTRIES });
        }
        let digest = source_digest(sources);
        Ok(SanctionsLists::build(entries, digest, report))
    }

    fn build(entries: Vec<Entry>, digest: String, report: LoadReport) -> SanctionsLists {
        let mut by_id = HashMap::with_capacity(entries.len());
        let mut addresses: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, entry) in entries.iter().enumerate() {
            by_id.entry((entry.list, entry.id.clone())).or_insert(position);
            for listed in &entry.digital_currency_addresses {
                let holders = addresses.entry(address_key(&listed.address)).or_default();
                if !holders.contains(&position) {
                    holders.push(position);
                }
            }
        }
        let index = NameIndex::build(&entries);
        SanctionsLists { entries, by_id, addresses, index, digest, report }
    }

    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Number of distinct listed digital currency addresses.
    pub fn address_count(&self) -> usize {
        self.addresses.len()
    }

    /// Number of indexed names (primary names and aliases).
    pub fn name_count(&self) -> usize {
        self.index.name_count()
    }

    /// Hex SHA-256 over the source bytes, a version id to journal with each
    /// screening. Each source is framed as its file name, its length as a
    /// little-endian u64 and its bytes, so that moving bytes between files
    /// changes the digest; an absent UN list hashes as an empty file, absent EU
    /// and UK lists not at all (so a set without them keeps its old digest).
    pub fn digest(&self) -> String {
        self.digest.clone()
    }

    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    pub fn entry(&self, list: ListId, entry_id: &str) -> Option<&Entry> {
        let position = self.by_id.get(&(list, entry_id.to_string()))?;
        self.entries.get(*position)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub(crate) fn entry_at(&self, position: usize) -> Option<&Entry> {
        self.entries.get(position)
    }

    pub(crate) fn entries_with_address(&self, key: &str) -> &[usize] {
        self.addresses.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn check_size(file: &'static str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(LoadError::TooLarge { file, size: bytes.len() as u64, limit: MAX_SOURCE_BYTES });
    }
    Ok(())
}

fn read_limited(path: &Path, file: &'static str) -> Result<Vec<u8>, LoadError> {
    let io_error = |source| LoadError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io_error)?.len();
    if size > MAX_SOURCE_BYTES as u64 {
        return Err(LoadError::TooLarge { file, size, limit: MAX_SOURCE_BYTES });
    }
    std::fs::read(path).map_err(io_error)
}

fn read_optional(dir: &Path, file: &'static str) -> Result<Option<Vec<u8>>, LoadError> {
    let path = dir.join(file);
    if !path.exists() {
        return Ok(None);
    }
    read_limited(&path, file).map(Some)
}

fn source_digest(sources: Sources<'_>) -> String {
    let ofac = sources.ofac;
    let framed: [&[u8]; 5] = [ofac.sdn, ofac.add, ofac.alt, ofac.comments, sources.un.unwrap_or(&[])];
    let optional = [(crate::eu::FILE, sources.eu), (crate::uk::FILE, sources.uk)];
    let mut hasher = Sha256::new();
    let present = optional.iter().filter_map(|(name, bytes)| bytes.map(|bytes| (*name, bytes)));
    for (name, bytes) in SOURCE_FILES.iter().copied().zip(framed).chain(present) {
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
}
