//! Artefacts of runs whose project ledger is kept in PostgreSQL: the ledger is shared by
//! every host, and its views are materialised into `.autonomous_runs/` on the host that
//! runs a run ([`PgArtefacts`]).

use autopack_core::ids::{ProjectId, RunId};
use autopack_issues::{AgingThresholds, IssueObservation, Ledger, ViewKey};
use autopack_layout::RunsRoot;
use autopack_layout::issues::write_views;
use autopack_layout::project::LedgerFiles;
use autopack_postgres::{Db, PgIssueLedger};
use chrono::{DateTime, Utc};

use super::files::{LayoutArtefacts, ProjectLedger};
use crate::driver::HostError;

/// [`LayoutArtefacts`] over a project ledger in PostgreSQL.
pub type PgArtefacts = LayoutArtefacts<PgProjectLedger>;

/// A project ledger in PostgreSQL ([`PgIssueLedger`]) with its views written into a
/// layout: at each checkpoint of a run, the backlog and those of the run's views its
/// changes touched; at the end of a run (and a recovery) every view of the run. Other
/// runs' views are left to the hosts that run them (or `autopack export`).
#[derive(Debug)]
pub struct PgProjectLedger {
    ledger: PgIssueLedger,
    root: RunsRoot,
    files: LedgerFiles,
}

impl PgProjectLedger {
    /// Opens `project`'s ledger on `db`, using the run's `thresholds` (`None`: the
    /// ledger's own, for readers), with its views under `root` at `files`.
    ///
    /// # Errors
    /// A [`HostError`] naming the database failure.
    pub fn open(
        db: Db,
        root: RunsRoot,
        files: LedgerFiles,
        project: &ProjectId,
        thresholds: Option<AgingThresholds>,
    ) -> Result<PgProjectLedger, HostError> {
        let mut ledger =
            PgIssueLedger::open(db, project.clone(), thresholds).map_err(HostError::artefacts)?;
        ledger.ledger_mut().track_changes(true);
        Ok(PgProjectLedger {
            ledger,
            root,
            files,
        })
    }

    /// The ledger in the database.
    pub fn pg(&self) -> &PgIssueLedger {
        &self.ledger
    }

    /// Writes the backlog and every view of `run_id` (the views of any run, on any host:
    /// `autopack export`).
    ///
    /// # Errors
    /// A [`HostError`] naming the file that could not be written.
    pub fn materialise_run(&mut self, run_id: &RunId) -> Result<usize, HostError> {
        self.ledger.refresh().map_err(HostError::artefacts)?;
        let views = run_views(self.ledger.ledger(), run_id);
        write_views(&self.root, &self.files, self.ledger.ledger(), &views)
            .map_err(HostError::artefacts)
    }
}

/// The backlog, `run_id`'s issue index and each of its phase files.
fn run_views(ledger: &Ledger, run_id: &RunId) -> Vec<ViewKey> {
    let mut views = vec![
        ViewKey::Backlog,
        ViewKey::RunIndex {
            run_id: run_id.clone(),
        },
    ];
    views.extend(
        ledger
            .phases_of(run_id)
            .into_iter()
            .map(|(phase_index, phase_id)| ViewKey::PhaseFile {
                run_id: run_id.clone(),
                phase_index,
                phase_id,
            }),
    );
    views
}

impl ProjectLedger for PgProjectLedger {
    fn ledger(&self) -> &Ledger {
        self.ledger.ledger()
    }

    fn record_all(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        if observations.is_empty() {
            return Ok(());
        }
        self.ledger
            .record_all(observations, at)
            .map(drop)
            .map_err(HostError::artefacts)
    }

    fn checkpoint(&mut self, run_id: &RunId, everything: bool) -> Result<(), HostError> {
        // What was recorded is durable from here on (appends commit asynchronously), and
        // other hosts' entries since the last change belong in the backlog too.
        self.ledger.sync().map_err(HostError::artefacts)?;
        self.ledger.refresh().map_err(HostError::artefacts)?;
        let mut views: Vec<ViewKey> = self
            .ledger
            .ledger_mut()
            .take_changes()
            .into_iter()
            .map(|(view, _)| view)
            .filter(|view| match view {
                ViewKey::Backlog => true,
                ViewKey::RunIndex { run_id: of } | ViewKey::PhaseFile { run_id: of, .. } => {
                    of == run_id
                }
            })
            .collect();
        if everything {
            views.extend(run_views(self.ledger.ledger(), run_id));
        }
        views.sort();
        views.dedup();
        write_views(&self.root, &self.files, self.ledger.ledger(), &views)
            .map(drop)
            .map_err(HostError::artefacts)
    }
}
