//! Artefacts on disk: the `.autonomous_runs/` layout of SPEC §10 through
//! `autopack-layout`.

use autopack_core::record::RunRecord;
use autopack_issues::{AgingThresholds, IssueObservation, Ledger};
use autopack_layout::{FsIssueLedger, FsyncPolicy, RunsRoot, write_run_artefacts};
use chrono::{DateTime, Utc};

use crate::driver::{Artefacts, HostError};
use crate::supervisor::Checkpoint;

/// Writes a run's artefacts into `.autonomous_runs/`: issues go to the project's durable
/// ledger as they are recorded (a journal, safe for several processes); at each checkpoint
/// the playbook views (phase issue files, run issue index, project backlog) are
/// materialised and the Markdown summaries rewritten; a failed run gets its incident pack.
pub struct FsArtefacts {
    root: RunsRoot,
    ledger: FsIssueLedger,
}

impl FsArtefacts {
    /// Opens the project ledger under `root` (a new one with `thresholds` if none exists).
    ///
    /// # Errors
    /// A [`HostError`] naming the file that could not be read.
    pub fn open(
        root: RunsRoot,
        thresholds: AgingThresholds,
        policy: FsyncPolicy,
    ) -> Result<FsArtefacts, HostError> {
        let ledger =
            FsIssueLedger::open(root.clone(), thresholds, policy).map_err(HostError::new)?;
        Ok(FsArtefacts { root, ledger })
    }

    /// The project ledger as of this process's last change.
    pub fn ledger(&self) -> &Ledger {
        self.ledger.ledger()
    }

    /// The layout root.
    pub fn root(&self) -> &RunsRoot {
        &self.root
    }
}

impl Artefacts for FsArtefacts {
    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        for observation in observations {
            self.ledger
                .record(observation, at)
                .map_err(HostError::new)?;
        }
        Ok(())
    }

    fn checkpoint(
        &mut self,
        _checkpoint: &Checkpoint,
        record: &RunRecord,
        _ledger: &Ledger,
    ) -> Result<(), HostError> {
        self.ledger.checkpoint().map_err(HostError::new)?;
        write_run_artefacts(&self.root, record).map_err(HostError::new)?;
        Ok(())
    }

    fn incident(&mut self, record: &RunRecord, _ledger: &Ledger) -> Result<(), HostError> {
        write_run_artefacts(&self.root, record).map_err(HostError::new)?;
        Ok(())
    }
}
