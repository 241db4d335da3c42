//! What can go wrong while hosting a run, typed so that a host can act on it.

use std::path::PathBuf;

use autopack_core::ids::{ProjectId, RunId};

use super::config::RunConfigInvalid;

/// A boxed error from one of the adapters a run is hosted with (git, a store, a file).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a run could not be prepared, started, resumed or read.
///
/// The conditions a host may act on have their own variants; failures of the machinery
/// underneath (git, the stores, files) are [`RunnerError::Failed`], saying what was being
/// done, with the adapter's error as the [source](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The repository path does not exist.
    #[error("{}: no such repository", path.display())]
    NoRepository {
        /// The path given.
        path: PathBuf,
        /// Why it could not be resolved.
        #[source]
        source: std::io::Error,
    },
    /// Another live process holds the run's lease (the error names it).
    #[error("run {run_id} is held by another writer")]
    Held {
        /// The run.
        run_id: RunId,
        /// The lease's refusal, naming the holder.
        #[source]
        source: Cause,
    },
    /// `prepare` found a journal: the run was started already.
    #[error(
        "run {run_id} already exists ({journal}); use `autopack resume {run_id}` or another run_id"
    )]
    RunExists {
        /// The run.
        run_id: RunId,
        /// Where its journal is.
        journal: String,
    },
    /// The run has no journal (never started, or another store).
    #[error("run {run_id}: {journal} has no journal")]
    NoJournal {
        /// The run.
        run_id: RunId,
        /// Where its journal would be.
        journal: String,
    },
    /// The run has a journal but no saved strategy.
    #[error("run {run_id} has no saved strategy")]
    NoStrategy {
        /// The run.
        run_id: RunId,
    },
    /// The run's journal holds no record (it never started).
    #[error("run {run_id} has no record")]
    NoRecord {
        /// The run.
        run_id: RunId,
    },
    /// Repairing a run's artefacts needs a finished run.
    #[error("run {run_id} has not finished: resume it instead")]
    NotFinished {
        /// The run.
        run_id: RunId,
    },
    /// The layout has rulesets of several projects and nothing says which one.
    #[error(
        "{} has rulesets of several projects ({}); say which with {choose_with}",
        dir.display(),
        projects.iter().map(ProjectId::as_str).collect::<Vec<_>>().join(", ")
    )]
    SeveralProjects {
        /// The layout.
        dir: PathBuf,
        /// Its projects.
        projects: Vec<ProjectId>,
        /// What picks one (a ruleset, an option such as `--project`).
        choose_with: String,
    },
    /// No confinement is available and the run was not told to go without.
    #[error(
        "{finding}; agents and CI would run with full access to the repository. Refusing to start: pass --no-sandbox to run them unconfined"
    )]
    NoSandbox {
        /// The sandbox's finding.
        finding: autopack_sandbox::SandboxError,
    },
    /// A run configuration value out of range.
    #[error("{}: {source}", path.display())]
    Config {
        /// The `run_config.json` (or where it would be written).
        path: PathBuf,
        /// The field at fault.
        #[source]
        source: RunConfigInvalid,
    },
    /// A run configuration that cannot be read.
    #[error(
        "{}: cannot read the run's host configuration (was run {run_id} started with `autopack run`?)",
        path.display()
    )]
    NoConfig {
        /// The run.
        run_id: RunId,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A run without a journal whose integration branch has commits already.
    #[error(
        "run {run_id} has no journal, but its integration branch {branch} exists and has moved away from {base}; delete the branch or use another run_id"
    )]
    BranchMoved {
        /// The run.
        run_id: RunId,
        /// The branch's ref.
        branch: String,
        /// The base branch.
        base: String,
    },
    /// The store URL names no kind of store this build knows.
    #[error("{url:?}: {reason}")]
    StoreUrl {
        /// The URL given.
        url: String,
        /// What was expected.
        reason: String,
    },
    /// An agent cannot be built from the run's configuration.
    #[error("run {run_id}: {reason}")]
    Agent {
        /// The run.
        run_id: RunId,
        /// What is wrong (an unknown preset, a command agent without its command).
        reason: String,
    },
    /// A step of hosting the run failed in the machinery underneath.
    #[error("{doing}")]
    Failed {
        /// What was being done (`opening the integration branch of run r1`, …).
        doing: String,
        /// The adapter's error.
        #[source]
        source: Cause,
    },
}

impl RunnerError {
    /// A [`RunnerError::Failed`] while `doing` something.
    pub fn failed(doing: impl Into<String>, source: impl Into<Cause>) -> RunnerError {
        RunnerError::Failed {
            doing: doing.into(),
            source: source.into(),
        }
    }
}

/// Adds what was being done to an adapter's error.
pub(crate) trait Doing<T> {
    /// Maps the error to [`RunnerError::Failed`] with `doing` computed lazily.
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, RunnerError>;
}

impl<T, E: Into<Cause>> Doing<T> for Result<T, E> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T, RunnerError> {
        self.map_err(|e| RunnerError::failed(doing(), e))
    }
}
