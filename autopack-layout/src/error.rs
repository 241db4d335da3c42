//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

use autopack_core::json::JsonError;

/// Something the filesystem layout could not do. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// An I/O operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `lock`, `create directory`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A JSON file is corrupt, truncated or of the wrong shape; the error names the file,
    /// the JSON path, the line and the column.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A journal line other than the last one is not valid JSON (the last one would be
    /// treated as a torn tail and cut).
    #[error("{}: line {line}, column {column}: corrupt journal entry: {message}", path.display())]
    CorruptJournal {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column within the line (0 when unknown).
        column: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A journal entry held a newline, which would split it in two.
    #[error("{}: journal entry holds a newline", path.display())]
    Newline {
        /// The journal file.
        path: PathBuf,
    },
    /// A value could not be serialised.
    #[error("{}: cannot serialise: {message}", path.display())]
    Serialize {
        /// The file it was meant for.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl LayoutError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LayoutError {
        LayoutError::Io { op, path: path.into(), source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LayoutError> = std::result::Result<T, E>;
