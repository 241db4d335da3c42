//! Why a host step or the driver failed.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use autopack_core::ids::RunId;
use autopack_core::journal::JournalError;

#[cfg(doc)]
use super::Driver;
use crate::supervisor::SupervisorError;

/// Which part of the host's machinery failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostErrorKind {
    /// The repository (git: the integration branch, a candidate, a snapshot tag, the
    /// tripwire's view of the host checkout).
    Repository,
    /// The CI gate's machinery (a test command that cannot start, a worktree that cannot
    /// be made) — not red tests, which are a report.
    Ci,
    /// Views, summaries, incident packs or the durable issue ledger.
    Artefacts,
    /// An agent's machinery outside the attempt (its workspace cannot be prepared).
    Agent,
    /// Anything else; what [`HostError::new`] makes.
    Other,
}

impl fmt::Display for HostErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostErrorKind::Repository => "repository",
            HostErrorKind::Ci => "ci",
            HostErrorKind::Artefacts => "artefacts",
            HostErrorKind::Agent => "agent",
            HostErrorKind::Other => "other",
        })
    }
}

/// A failure of the host's machinery (not of an agent and not a red test): a
/// [`HostErrorKind`], the sentence a run's record will carry, and the typed error it came
/// from (its [`Error::source`], for hosts that look into it).
///
/// ```
/// use autopack::driver::{HostError, HostErrorKind};
///
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "cargo: not found");
/// let err = HostError::from_source(HostErrorKind::Ci, io);
/// assert_eq!(err.kind(), HostErrorKind::Ci);
/// assert_eq!(err.to_string(), "cargo: not found");
/// assert!(err.source_ref().unwrap().downcast_ref::<std::io::Error>().is_some());
///
/// // A host with a message only.
/// assert_eq!(HostError::new("disk full").kind(), HostErrorKind::Other);
/// ```
#[derive(Debug, Clone)]
pub struct HostError {
    kind: HostErrorKind,
    message: String,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl HostError {
    /// A host error of kind [`HostErrorKind::Other`] from anything displayable, for hosts
    /// that have a message only.
    pub fn new(message: impl fmt::Display) -> HostError {
        HostError::with_kind(HostErrorKind::Other, message)
    }

    /// A host error of `kind` with a message and no underlying error.
    pub fn with_kind(kind: HostErrorKind, message: impl fmt::Display) -> HostError {
        HostError {
            kind,
            message: message.to_string(),
            source: None,
        }
    }

    /// A host error of `kind` from the typed error that caused it: its message is the
    /// error's, and the error is kept as the [`Error::source`].
    pub fn from_source(
        kind: HostErrorKind,
        source: impl Error + Send + Sync + 'static,
    ) -> HostError {
        HostError {
            kind,
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// A host error of `kind` saying `context`, caused by `source` (kept as the
    /// [`Error::source`]; the message reads `{context}: {source}`).
    pub fn context(
        kind: HostErrorKind,
        context: impl fmt::Display,
        source: impl Error + Send + Sync + 'static,
    ) -> HostError {
        HostError {
            kind,
            message: format!("{context}: {source}"),
            source: Some(Arc::new(source)),
        }
    }

    /// [`HostError::from_source`] of kind [`HostErrorKind::Repository`].
    pub fn repository(source: impl Error + Send + Sync + 'static) -> HostError {
        HostError::from_source(HostErrorKind::Repository, source)
    }

    /// [`HostError::from_source`] of kind [`HostErrorKind::Artefacts`].
    pub fn artefacts(source: impl Error + Send + Sync + 'static) -> HostError {
        HostError::from_source(HostErrorKind::Artefacts, source)
    }

    /// Which part of the host failed.
    pub fn kind(&self) -> HostErrorKind {
        self.kind
    }

    /// The sentence a run's record carries (the `Display` text).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The typed error this one came from, to downcast.
    pub fn source_ref(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for HostError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// A run store's error, with its type erased (a [`Driver`] serves any store): it reads as
/// the store's error, and [`StoreError::get_ref`] gives that error back to downcast.
#[derive(Debug)]
pub struct StoreError(Box<dyn Error + Send + Sync + 'static>);

impl StoreError {
    /// Erases `err`'s type.
    pub fn new(err: impl Error + Send + Sync + 'static) -> StoreError {
        StoreError(Box::new(err))
    }

    /// The store's own error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// Transparent, as `JournalError::Store` is: the store's error is this one's message, so
// the chain goes on with what caused it.
impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// Why the driver stopped without finishing the run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The Supervisor refused an input (a bug in a host adapter, or a corrupt journal).
    #[error("supervisor refused an input: {0}")]
    Supervisor(#[from] SupervisorError),
    /// The journal could not be written or read: the store failed, or an entry does not
    /// serialise or parse (a [`JsonError`](autopack_core::json::JsonError) naming it).
    #[error("run journal: {0}")]
    Journal(#[source] JournalError<StoreError>),
    /// There is no journal for the run to resume (or it ends before the run's start).
    #[error("run {0} has no journal to resume")]
    NothingToResume(RunId),
    /// [`Driver::run`] of a run whose journal holds only a configuration (a start that
    /// crashed before its start line) bound to another plan, ruleset or strategy than the
    /// start given now.
    #[error(
        "run {0} was begun with another plan, ruleset or strategy (its journal holds only its configuration): start it with those, or use another run_id"
    )]
    Rebound(RunId),
    /// [`Driver::run`] of a run whose journal holds its start already.
    #[error("run {0} has started already: resume it, or use another run_id")]
    RunExists(RunId),
    /// Writing artefacts failed after the run ended.
    #[error("artefacts: {0}")]
    Artefacts(#[source] HostError),
    /// A stepping host answered what the driver does not await.
    #[error("the driver waits for {expected}; got {got}")]
    NotAwaiting {
        /// What is awaited.
        expected: String,
        /// What came.
        got: &'static str,
    },
}

impl DriverError {
    /// A failure of the run store itself.
    pub fn store(err: impl Error + Send + Sync + 'static) -> DriverError {
        DriverError::Journal(JournalError::Store(StoreError::new(err)))
    }
}

impl<E: Error + Send + Sync + 'static> From<JournalError<E>> for DriverError {
    fn from(err: JournalError<E>) -> Self {
        DriverError::Journal(match err {
            JournalError::Store(e) => JournalError::Store(StoreError::new(e)),
            JournalError::Serialize(e) => JournalError::Serialize(e),
            JournalError::Parse(e) => JournalError::Parse(e),
            JournalError::Broken { run_id, source } => JournalError::Broken { run_id, source },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_error_keeps_its_kind_message_and_source() {
        let io = std::io::Error::other("no space left on device");
        let err = HostError::context(HostErrorKind::Artefacts, "writing run_summary.md", io);
        assert_eq!(err.kind(), HostErrorKind::Artefacts);
        assert_eq!(
            err.to_string(),
            "writing run_summary.md: no space left on device"
        );
        let source = Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), "no space left on device");
        assert!(err.clone().source_ref().is_some());
    }

    #[test]
    fn a_store_failure_is_a_journal_error_with_the_store_error_as_source() {
        let err = DriverError::store(std::io::Error::other("read-only file system"));
        assert_eq!(err.to_string(), "run journal: read-only file system");
        let DriverError::Journal(JournalError::Store(inner)) = &err else {
            panic!("{err:?}")
        };
        assert!(inner.get_ref().downcast_ref::<std::io::Error>().is_some());
    }
}
