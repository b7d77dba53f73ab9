//! Hard limits on untrusted input, so that a corrupt or hostile list file
//! cannot exhaust memory or time during a reload.

/// Largest accepted source file (each file separately).
pub const MAX_SOURCE_BYTES: usize = 256 * 1024 * 1024;
/// Rows with more fields than this are skipped (OFAC rows have 5 to 12).
pub const MAX_FIELDS_PER_ROW: usize = 64;
/// Longer fields are skipped with their row.
pub const MAX_FIELD_BYTES: usize = 1024 * 1024;
/// Aliases past this count are dropped (the largest real entry has ~100).
pub const MAX_ALIASES_PER_ENTRY: usize = 512;
/// Entries past this count make the load fail rather than grow without bound.
pub const MAX_ENTRIES: usize = 2_000_000;
/// XML nesting past this depth makes the UN load fail (real depth is 5).
pub const MAX_XML_DEPTH: usize = 64;
/// Names are cut to this many characters before tokenizing.
pub(crate) const MAX_NAME_CHARS: usize = 512;
/// Tokens past this count in one name are ignored.
pub(crate) const MAX_TOKENS_PER_NAME: usize = 24;
/// Dates of birth, countries and addresses kept per entry.
pub(crate) const MAX_ATTRIBUTES_PER_ENTRY: usize = 256;
