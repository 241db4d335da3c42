//! What the service needs from the host that owns the repository: starting and resuming
//! runs, reading stored ones, the backlog, the integration branch, promotion.
//!
//! The service never touches git, the stores or a sandbox itself. A [`RunHost`] wires a
//! run exactly as `autopack run` does (ruleset, strategy, integration branch, lease, gate,
//! CI) and, instead of calling local agents, hands the driver to the [`Session`] the
//! service gives it (`session.drive(&mut driver)`), which offers each agent attempt to
//! HTTP clients and workers. `autopack serve` implements it over the CLI's host;
//! `testing::MemoryHost` (feature `testing`) over memory.

use autopack::core::ids::RunId;
use autopack::core::journal::RunStore;
use autopack::core::lifecycle::RunState;
use autopack::core::plan::Plan;
use autopack::core::record::RunRecord;
use autopack::driver::DriverError;
use autopack::issues::{ProjectBacklog, RunIssueIndex};

pub use crate::session::{Session, SessionObserver};

/// Why the host could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostFailure {
    /// The run exists already (a journal, a branch).
    #[error("{0}")]
    Exists(String),
    /// The request cannot be run as it is (an invalid plan for this project, a ruleset
    /// it conflicts with).
    #[error("{0}")]
    Invalid(String),
    /// Another instance drives the run (it holds the run's lease).
    #[error("{0}")]
    Elsewhere(String),
    /// The host's own machinery failed (the repository, a store).
    #[error("{0}")]
    Machinery(String),
}

/// A run read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// Its record, rebuilt from its journal.
    pub record: RunRecord,
    /// Its issue index.
    pub issue_index: RunIssueIndex,
}

impl StoredRun {
    /// A run rebuilt by replaying its journal in `store`; `None` when it has none.
    ///
    /// # Errors
    /// The journal cannot be read or does not replay.
    pub fn replay<S: RunStore>(
        store: &mut S,
        run_id: &RunId,
    ) -> Result<Option<StoredRun>, HostFailure> {
        match autopack::driver::replay_journal(store, run_id) {
            Ok(sup) => Ok(match (sup.record(), sup.ledger()) {
                (Some(record), Some(ledger)) => Some(StoredRun {
                    record: record.clone(),
                    issue_index: ledger.run_issue_index(run_id),
                }),
                _ => None,
            }),
            Err(DriverError::NothingToResume(_)) => Ok(None),
            Err(e) => Err(HostFailure::Machinery(format!("run {run_id}: {e}"))),
        }
    }
}

/// The integration branch of a run, as the first implementation reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationStatus {
    /// `autonomous/{run_id}`.
    pub branch: String,
    /// Commits on it that the base branch lacks.
    pub commits_ahead: u32,
    /// Its tip.
    pub current_commit: String,
}

/// What promotion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promoted {
    /// The branch promoted to.
    pub target: String,
    /// Its commit now.
    pub commit: String,
    /// In a sentence.
    pub message: String,
}

/// The host of a service: everything that touches the repository and the stores.
/// Methods are called from blocking threads.
pub trait RunHost: Send + Sync + 'static {
    /// Prepares the run of `plan` and drives it with `session` (whose observer the host
    /// puts into its driver's host): `session.drive(&mut Driver::begin(…)?)`. Returns
    /// when the run ends or the session is closed (the server shutting down).
    ///
    /// # Errors
    /// Anything that kept the run from starting, or stopped its driver.
    fn start(&self, plan: Plan, session: Session) -> Result<RunState, HostFailure>;

    /// Continues an unfinished run from its journal with `session`
    /// (`session.drive(&mut Driver::reopen(…)?)`).
    ///
    /// # Errors
    /// As [`RunHost::start`]; [`HostFailure::Elsewhere`] when another instance holds it.
    fn resume(&self, run_id: &RunId, session: Session) -> Result<RunState, HostFailure>;

    /// Every run the store holds.
    ///
    /// # Errors
    /// The store cannot be listed.
    fn run_ids(&self) -> Result<Vec<RunId>, HostFailure>;

    /// A run rebuilt from its journal; `None` when the store has no such run.
    ///
    /// # Errors
    /// The journal cannot be read or replayed.
    fn load(&self, run_id: &RunId) -> Result<Option<StoredRun>, HostFailure>;

    /// The project backlog (the durable ledger's).
    ///
    /// # Errors
    /// The ledger cannot be read.
    fn backlog(&self) -> Result<ProjectBacklog, HostFailure>;

    /// The run's integration branch.
    ///
    /// # Errors
    /// The repository cannot be read.
    fn integration_status(&self, run_id: &RunId) -> Result<IntegrationStatus, HostFailure>;

    /// Promotes a finished, eligible run's integration branch to the base branch.
    ///
    /// # Errors
    /// [`HostFailure::Invalid`] naming why the run is not eligible; the repository fails.
    fn promote(&self, run_id: &RunId, record: &RunRecord) -> Result<Promoted, HostFailure>;
}
