use std::path::PathBuf;

/// Errors of the enrichment layer. Each names the file and, for text files, the line, so a
/// user can fix the input.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// A database or networks file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A `.mmdb` file is not a valid MaxMind DB (corrupt, truncated, not an mmdb).
    #[error("{}: not a valid MaxMind DB file ({msg}); fetch it again (scripts/fetch-geo-data) or remove it from [enrich]", path.display())]
    Mmdb {
        /// The file.
        path: PathBuf,
        /// The reader's explanation.
        msg: String,
    },
    /// A line of a text input (ASN range CSV, networks file) is wrong.
    #[error("{}:{line}: {msg}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        msg: String,
    },
    /// A file has an extension that says nothing of its format.
    #[error("{}: unknown database format; expected a .mmdb (MaxMind DB) or a .csv (start,end,asn,name ranges)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A configuration value is wrong.
    #[error("enrich: {0}")]
    Config(String),
}
