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
    /// A checkpoint older than the stored one was refused.
    #[error("checkpoint through {through} is older than the stored one (through {stored})")]
    StaleCheckpoint {
        /// The refused checkpoint's `through`.
        through: u64,
        /// The stored checkpoint's `through`.
        stored: u64,
    },
    /// A checkpoint covering entries never appended was refused.
    #[error("checkpoint through {through} is ahead of the journal (last seq {last})")]
    CheckpointAhead {
        /// The refused checkpoint's `through`.
        through: u64,
        /// The last sequence number in the journal.
        last: u64,
    },
    /// A checkpoint would cover an entry another process appended and this store never
    /// saw; it was refused so that the entry is not lost. Reopen the ledger and retry.
    #[error("{}: checkpoint refused: entry {seq} was appended by another process and is not in this ledger; reopen and retry", path.display())]
    CheckpointConflict {
        /// The journal.
        path: PathBuf,
        /// The first such entry.
        seq: u64,
    },
    /// A different strategy is already stored under this run and version.
    #[error("{}: already stored with different content; a strategy version is frozen", path.display())]
    StrategyConflict {
        /// The strategy file.
        path: PathBuf,
    },
    /// A project has no ruleset version number left.
    #[error("{}: no ruleset version number left", path.display())]
    VersionOverflow {
        /// The latest ruleset file.
        path: PathBuf,
    },
    /// A document parsed but holds a value out of range (a ruleset rule, say).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its JSON path.
        message: String,
    },
    /// A backlog that names no project, in a layout of several projects: whose keys they
    /// are cannot be told.
    #[error(
        "{}: this backlog names no project, and the layout has several ({}); add \"project_id\": \"<one of them>\" to it",
        path.display(),
        candidates.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousProject {
        /// The backlog.
        path: PathBuf,
        /// The projects it could belong to.
        candidates: Vec<autopack_core::ids::ProjectId>,
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
        LayoutError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LayoutError> = std::result::Result<T, E>;
