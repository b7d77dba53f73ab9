//! `otcd sanctions fetch` and the desk's scheduled list update: download every list from its publication URL,
//! check that each file parses completely and that the whole set loads, then swap the set into the sanctions
//! directory in one rename. Any failure leaves the directory exactly as it was.
//!
//! Downloads go into a fresh directory beside the target (same file system, so the swap is a rename), each bounded
//! in size ([`otcd_sanctions::MAX_SOURCE_BYTES`]) and time. The swap is Linux's `renameat2(RENAME_EXCHANGE)`, which
//! exchanges the two directories atomically; where it is unavailable, two renames (a crash between them leaves the
//! new set beside an absent directory, never a mixed set).

use anyhow::{bail, ensure, Context};
use otcd_sanctions::update::{ListFile, Manifest, ManifestFile};
use otcd_sanctions::{SanctionsLists, MAX_SOURCE_BYTES};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The official publication URLs (December 2026): OFAC's Sanctions List Service exports of the legacy SDN CSV
/// files, the UN Security Council's consolidated XML, the EU's Financial Sanctions Files (XML 1.1; the token is the
/// public one the EU publishes in the link) and the FCDO's UK Sanctions List XML.
pub const DEFAULT_SOURCES: [(ListFile, &str); 7] = [
    (ListFile::OfacSdn, "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/SDN.CSV"),
    (ListFile::OfacAlt, "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/ALT.CSV"),
    (ListFile::OfacAdd, "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/ADD.CSV"),
    (
        ListFile::OfacComments,
        "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/SDN_COMMENTS.CSV",
    ),
    (ListFile::UnConsolidated, "https://scsanctions.un.org/resources/xml/en/consolidated.xml"),
    (
        ListFile::EuConsolidated,
        "https://webgate.ec.europa.eu/fsd/fsf/public/files/xmlFullSanctionsList_1_1/content?token=dG9rZW4tMjAxNw",
    ),
    (ListFile::UkSanctionsList, "https://sanctionslist.fcdo.gov.uk/docs/UK-Sanctions-List.xml"),
];

/// Longest a whole download of one file may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Redirects followed per download.
const REDIRECTS_MAX: usize = 5;

/// The `--sources` TOML file: any URL may be replaced; an empty string leaves an optional list (EU, UK) out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    ofac: Option<OfacUrls>,
    un: Option<ConsolidatedUrl>,
    eu: Option<ConsolidatedUrl>,
    uk: Option<UkUrl>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfacUrls {
    sdn: Option<String>,
    alt: Option<String>,
    add: Option<String>,
    comments: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsolidatedUrl {
    consolidated: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UkUrl {
    sanctions_list: Option<String>,
}

/// Where each file of the set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources(Vec<(ListFile, String)>);

impl Sources {
    /// The official URLs, replaced by those `path` (a `--sources` file) names.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Sources> {
        let file: SourcesFile = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => SourcesFile::default(),
        };
        let ofac = file.ofac.unwrap_or_default();
        let overrides = [
            (ListFile::OfacSdn, ofac.sdn),
            (ListFile::OfacAlt, ofac.alt),
            (ListFile::OfacAdd, ofac.add),
            (ListFile::OfacComments, ofac.comments),
            (ListFile::UnConsolidated, file.un.and_then(|un| un.consolidated)),
            (ListFile::EuConsolidated, file.eu.and_then(|eu| eu.consolidated)),
            (ListFile::UkSanctionsList, file.uk.and_then(|uk| uk.sanctions_list)),
        ];
        let mut sources = Vec::new();
        for ((list_file, given), (_, official)) in overrides.into_iter().zip(DEFAULT_SOURCES) {
            let url = given.unwrap_or_else(|| official.to_owned());
            if url.trim().is_empty() {
                ensure!(!list_file.required(), "{} is required: its URL may not be empty", list_file.path());
                continue;
            }
            let parsed = reqwest::Url::parse(url.trim()).with_context(|| format!("URL of {}", list_file.path()))?;
            ensure!(
                matches!(parsed.scheme(), "https" | "http"),
                "URL of {} must be http or https: {url}",
                list_file.path()
            );
            sources.push((list_file, url.trim().to_owned()));
        }
        Ok(Sources(sources))
    }

    pub fn files(&self) -> &[(ListFile, String)] {
        &self.0
    }
}

/// Downloads the set into a directory beside `out`, checks it, writes `manifest.json` and swaps it in.
pub async fn fetch(out: &Path, sources: &Sources) -> anyhow::Result<Manifest> {
    let staging = staging_dir(out)?;
    std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let result = download_and_install(out, &staging, sources).await;
    if result.is_err() {
        // Nothing was swapped: the staging directory holds only the new, unused files.
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

async fn download_and_install(out: &Path, staging: &Path, sources: &Sources) -> anyhow::Result<Manifest> {
    let client = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(REDIRECTS_MAX))
        .user_agent(concat!("otcd/", env!("CARGO_PKG_VERSION"), " (sanctions list update)"))
        .build()
        .context("building the HTTP client")?;
    let mut files = Vec::new();
    for (list_file, url) in sources.files() {
        let bytes = download(&client, url).await.with_context(|| format!("downloading {}", list_file.path()))?;
        let (file, bytes) = (*list_file, bytes);
        let (entries, bytes) = tokio::task::spawn_blocking(move || (file.verify(&bytes), bytes))
            .await
            .context("checking a downloaded file was interrupted")?;
        let entries = entries.with_context(|| format!("{} from {url} does not parse", list_file.path()))?;
        let path = staging.join(list_file.path());
        std::fs::create_dir_all(path.parent().expect("list paths have a directory"))?;
        write_synced(&path, &bytes)?;
        files.push(ManifestFile {
            path: list_file.path().to_owned(),
            source_url: url.clone(),
            fetched_at: now_rfc3339(),
            size_bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            entries,
            published: list_file.publication_date(&bytes),
        });
    }
    let loaded = staging.to_path_buf();
    let lists = tokio::task::spawn_blocking(move || SanctionsLists::load_dir(&loaded))
        .await
        .context("loading the new set was interrupted")?
        .context("the downloaded set does not load")?;
    let manifest = Manifest { fetched_at: now_rfc3339(), lists_version: lists.digest(), files };
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    write_synced(&staging.join("manifest.json"), &json)?;
    install(staging, out)?;
    Ok(manifest)
}

/// The body of a successful GET, at most [`MAX_SOURCE_BYTES`].
async fn download(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut response = client.get(url).send().await?;
    let status = response.status();
    ensure!(status.is_success(), "{url} answered HTTP {status}");
    if let Some(length) = response.content_length() {
        ensure!(length <= MAX_SOURCE_BYTES as u64, "{url} is {length} bytes, over the limit of {MAX_SOURCE_BYTES}");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_SOURCE_BYTES {
            bail!("{url} is over the limit of {MAX_SOURCE_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `.NAME.fetch-PID-NANOS` beside `out`.
fn staging_dir(out: &Path) -> anyhow::Result<PathBuf> {
    let name = out.file_name().context("--out must name a directory")?.to_string_lossy().into_owned();
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure!(parent.is_dir(), "the parent of {} is not a directory", out.display());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    Ok(parent.join(format!(".{name}.fetch-{}-{nanos}", std::process::id())))
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// Puts `staging` at `out`: an atomic exchange when `out` exists, then the old set is removed.
fn install(staging: &Path, out: &Path) -> anyhow::Result<()> {
    if !out.exists() {
        std::fs::rename(staging, out).with_context(|| format!("renaming into {}", out.display()))?;
        return sync_parent(out);
    }
    ensure!(out.is_dir(), "{} exists and is not a directory", out.display());
    if !exchange(staging, out)? {
        let old = staging.with_extension("old");
        std::fs::rename(out, &old).with_context(|| format!("moving {} aside", out.display()))?;
        std::fs::rename(staging, out).with_context(|| format!("renaming into {}", out.display()))?;
        std::fs::rename(&old, staging).ok();
    }
    sync_parent(out)?;
    // `staging` now holds the previous set.
    std::fs::remove_dir_all(staging).with_context(|| format!("removing the previous set {}", staging.display()))
}

/// `renameat2(RENAME_EXCHANGE)`; `Ok(false)` where the kernel or file system does not offer it.
#[cfg(target_os = "linux")]
fn exchange(first: &Path, second: &Path) -> anyhow::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let first_c = std::ffi::CString::new(first.as_os_str().as_bytes())?;
    let second_c = std::ffi::CString::new(second.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call; AT_FDCWD resolves them as given.
    let result = unsafe {
        libc::renameat2(libc::AT_FDCWD, first_c.as_ptr(), libc::AT_FDCWD, second_c.as_ptr(), libc::RENAME_EXCHANGE)
    };
    if result == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(error).with_context(|| format!("exchanging {} and {}", first.display(), second.display())),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_first: &Path, _second: &Path) -> anyhow::Result<bool> {
    Ok(false)
}

fn sync_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::File::open(parent).and_then(|directory| directory.sync_all()).ok();
    }
    Ok(())
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).expect("a UTC time formats as RFC 3339")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_file_replaces_urls_and_leaves_optional_lists_out() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("sources.toml");
        let text = "[ofac]\nsdn = \"http://127.0.0.1:1/sdn.csv\"\n[eu]\nconsolidated = \"\"\n";
        std::fs::write(&path, text).unwrap();
        let sources = Sources::load(Some(&path)).unwrap();
        assert_eq!(sources.files()[0], (ListFile::OfacSdn, "http://127.0.0.1:1/sdn.csv".to_owned()));
        assert_eq!(sources.files()[1].1, DEFAULT_SOURCES[1].1);
        assert!(sources.files().iter().all(|(file, _)| *file != ListFile::EuConsolidated));
        assert_eq!(sources.files().len(), 6);
        std::fs::write(&path, "[un]\nconsolidated = \"\"\n").unwrap();
        assert!(Sources::load(Some(&path)).is_err(), "a required list cannot be left out");
        std::fs::write(&path, "[un]\nconsolidated = \"ftp://example.org/x\"\n").unwrap();
        assert!(Sources::load(Some(&path)).is_err());
        std::fs::write(&path, "[ofac]\nsdnn = \"https://example.org/x\"\n").unwrap();
        assert!(Sources::load(Some(&path)).is_err(), "unknown keys are refused");
    }
}
