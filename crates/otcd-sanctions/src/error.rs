use std::path::PathBuf;

/// Why a list publication could not be loaded. Bad rows inside a file are not
/// errors: they are skipped and counted in [`crate::LoadReport`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{file} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { file: &'static str, size: u64, limit: usize },
    #[error("{file}: malformed XML near byte {position}: {message}")]
    Xml { file: &'static str, position: u64, message: String },
    #[error("{file}: XML nesting deeper than {limit}")]
    TooDeep { file: &'static str, limit: usize },
    #[error("more than {limit} entries in the lists")]
    TooManyEntries { limit: usize },
    #[error("{file}: {bad} of {rows} rows do not parse")]
    Unparsed { file: &'static str, bad: usize, rows: usize },
    #[error("{file} holds no usable entry")]
    Empty { file: &'static str },
}
