//! Artefacts on disk: the `.autonomous_runs/` layout of SPEC §10 through
//! `autopack-layout`, over a project ledger kept on disk ([`FsArtefacts`]) or elsewhere
//! ([`ProjectLedger`]; a database with feature `postgres`).

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::record::{PhaseRecord, RunRecord};
use autopack_core::vocabulary::IssueState;
use autopack_issues::{AgingThresholds, IssueObservation, Ledger, PhaseIssueFile, RunIssueIndex};
use autopack_layout::fsio::write_atomic;
use autopack_layout::project::ledger_files;
use autopack_layout::{
    FsIssueLedger, FsyncPolicy, RunsRoot, Selection, write_incident_pack, write_run_artefacts,
    write_selected_artefacts,
};
use chrono::{DateTime, Utc};

use crate::driver::{Artefacts, HostError, HostErrorKind, RecordedIssue};
use crate::supervisor::{Checkpoint, PhasePosition};

/// Writes a run's artefacts into `.autonomous_runs/`: issues go to the project's durable
/// ledger as they are recorded (a journal, safe for several processes); at each checkpoint
/// the playbook views (phase issue files, run issue index, project backlog) are
/// materialised and the Markdown summaries of what changed since the previous checkpoint
/// rewritten (the run summary always; everything at the first checkpoint and at the end of
/// the run); a failed run gets its incident pack.
pub struct LayoutArtefacts<L> {
    root: RunsRoot,
    ledger: L,
}

/// [`LayoutArtefacts`] over the layout's own project ledger, a journal in
/// `.autonomous_runs/` that keeps its views up to date itself.
pub type FsArtefacts = LayoutArtefacts<FsIssueLedger>;

/// A project's durable issue ledger as [`LayoutArtefacts`] writes into it: the layout's
/// own ([`FsIssueLedger`]) or one kept elsewhere whose views are materialised on the host
/// running the run.
pub trait ProjectLedger {
    /// The ledger as of this process's last change.
    fn ledger(&self) -> &Ledger;

    /// Persists `observations`, recorded at `at`, in order.
    ///
    /// # Errors
    /// A host failure, naming what could not be stored.
    fn record_all(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError>;

    /// A checkpoint of run `run_id`: makes what was recorded durable and writes the views
    /// of the run and the backlog that are due; with `everything`, every one of them,
    /// current (the end of a run, and a recovery).
    ///
    /// # Errors
    /// A host failure, naming the file or store.
    fn checkpoint(&mut self, run_id: &RunId, everything: bool) -> Result<(), HostError>;
}

impl ProjectLedger for FsIssueLedger {
    fn ledger(&self) -> &Ledger {
        FsIssueLedger::ledger(self)
    }

    fn record_all(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        for observation in observations {
            self.record(observation, at).map_err(HostError::artefacts)?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, _run_id: &RunId, everything: bool) -> Result<(), HostError> {
        // The layout's ledger knows every view it wrote (its own runs' and other
        // processes'): at the end it brings them all up to date; before, a large view may
        // lag by up to half its entries (its rewrite policy), the journal being the truth.
        if everything {
            self.checkpoint_all()
        } else {
            FsIssueLedger::checkpoint(self)
        }
        .map_err(HostError::artefacts)
    }
}

impl<L: ProjectLedger> LayoutArtefacts<L> {
    /// Artefacts under `root` over `ledger`.
    pub fn new(root: RunsRoot, ledger: L) -> LayoutArtefacts<L> {
        LayoutArtefacts { root, ledger }
    }

    /// The project ledger as of this process's last change.
    pub fn ledger(&self) -> &Ledger {
        self.ledger.ledger()
    }

    /// The project ledger's store.
    pub fn project_ledger(&self) -> &L {
        &self.ledger
    }

    /// The project ledger's store, mutably.
    pub fn project_ledger_mut(&mut self) -> &mut L {
        &mut self.ledger
    }

    /// The layout root.
    pub fn root(&self) -> &RunsRoot {
        &self.root
    }
}

impl FsArtefacts {
    /// Opens the layout's unsuffixed project ledger under `root`, using the run's
    /// `thresholds`.
    ///
    /// # Errors
    /// A [`HostError`] naming the file that could not be read.
    pub fn open(
        root: RunsRoot,
        thresholds: AgingThresholds,
        policy: FsyncPolicy,
    ) -> Result<FsArtefacts, HostError> {
        let ledger =
            FsIssueLedger::open(root.clone(), thresholds, policy).map_err(HostError::artefacts)?;
        Ok(FsArtefacts { root, ledger })
    }

    /// Opens the ledger of `project` under `root` (the ledger is keyed by project:
    /// `autopack_layout::project`), using the run's `thresholds` (`None`: the ledger's
    /// own, for readers); `projects` are the layout's projects, which decide whose a
    /// backlog naming no project is.
    ///
    /// # Errors
    /// A [`HostError`] naming the file that could not be read, or the projects a backlog
    /// naming none could belong to.
    pub fn open_project(
        root: RunsRoot,
        project: &ProjectId,
        projects: &[ProjectId],
        thresholds: Option<AgingThresholds>,
        policy: FsyncPolicy,
    ) -> Result<FsArtefacts, HostError> {
        let files = ledger_files(&root, project, projects).map_err(HostError::artefacts)?;
        let ledger = FsIssueLedger::open_project(root.clone(), files, thresholds, policy)
            .map_err(HostError::artefacts)?;
        Ok(FsArtefacts { root, ledger })
    }

    /// What was found damaged and rebuilt from the journal when the ledger was opened.
    pub fn take_repairs(&mut self) -> Vec<autopack_layout::issues::RepairNote> {
        self.ledger.take_repairs()
    }
}

impl<L: ProjectLedger> LayoutArtefacts<L> {
    fn ensure_phase_file(&self, record: &RunRecord, phase: &PhaseRecord) -> Result<(), HostError> {
        let path = self
            .root
            .phase_issues(&record.run_id, phase.phase_index, &phase.phase_id);
        if path.exists() {
            return Ok(());
        }
        let file = PhaseIssueFile {
            run_id: record.run_id.clone(),
            phase_id: phase.phase_id.clone(),
            phase_index: phase.phase_index,
            tier_id: phase.tier_id.clone(),
            issues: Vec::new(),
            minor_issue_count: 0,
            major_issue_count: 0,
            issue_state: IssueState::NoIssues,
        };
        write_atomic(&path, file.to_json().as_bytes()).map_err(HostError::artefacts)
    }

    fn ensure_run_index(&self, record: &RunRecord) -> Result<(), HostError> {
        let path = self.root.run_issue_index(&record.run_id);
        if path.exists() {
            return Ok(());
        }
        let index = RunIssueIndex {
            run_id: record.run_id.clone(),
            issues_by_key: Default::default(),
            minor_issue_count: 0,
            major_issue_count: 0,
        };
        write_atomic(&path, index.to_json().as_bytes()).map_err(HostError::artefacts)
    }
}

impl<L: ProjectLedger> Artefacts for LayoutArtefacts<L> {
    fn record_issues(
        &mut self,
        at: DateTime<Utc>,
        observations: &[IssueObservation],
    ) -> Result<(), HostError> {
        self.ledger.record_all(at, observations)
    }

    fn checkpoint(
        &mut self,
        checkpoint: &Checkpoint,
        record: &RunRecord,
        _ledger: &Ledger,
    ) -> Result<(), HostError> {
        let end = matches!(checkpoint, Checkpoint::Run);
        self.ledger.checkpoint(&record.run_id, end)?;
        // The ledger materialises views of what was recorded; SPEC §10 wants a phase issue
        // file per phase and a run issue index per run, so ended phases and runs without
        // issues get empty ones.
        match checkpoint {
            Checkpoint::Phase { phase_id, changed } => {
                // The phase that ended changed since the last checkpoint: look there first.
                let phase = changed
                    .phases
                    .iter()
                    .filter_map(|at| position(record, *at))
                    .find(|p| &p.phase_id == phase_id)
                    .or_else(|| record.phases().find(|p| &p.phase_id == phase_id));
                if let Some(phase) = phase {
                    self.ensure_phase_file(record, phase)?;
                }
            }
            Checkpoint::Tier { .. } => {}
            Checkpoint::Run => {
                for phase in record.phases() {
                    self.ensure_phase_file(record, phase)?;
                }
                self.ensure_run_index(record)?;
            }
        }
        // Only what changed since the previous checkpoint is written again (and the run
        // summary); the first checkpoint of a Supervisor and the end of the run write all.
        match checkpoint.changed() {
            Some(changed) if !changed.everything => {
                let mut selection = Selection {
                    tiers: changed.tiers.iter().map(|&t| t as usize).collect(),
                    phases: changed
                        .phases
                        .iter()
                        .map(|at| (at.tier as usize, at.phase as usize))
                        .collect(),
                };
                if let Checkpoint::Tier { tier_id, .. } = checkpoint
                    && let Some(t) = record.tiers.iter().position(|t| &t.tier_id == tier_id)
                {
                    selection.tiers.push(t);
                }
                write_selected_artefacts(&self.root, record, &selection)
                    .map_err(HostError::artefacts)?;
            }
            _ => {
                write_run_artefacts(&self.root, record).map_err(HostError::artefacts)?;
            }
        }
        Ok(())
    }

    fn incident(&mut self, record: &RunRecord, _ledger: &Ledger) -> Result<(), HostError> {
        // The summaries are written at the checkpoints (the run's own comes right after).
        write_incident_pack(&self.root, record).map_err(HostError::artefacts)?;
        Ok(())
    }

    fn recover(
        &mut self,
        record: &RunRecord,
        _ledger: &Ledger,
        recorded: &[RecordedIssue],
    ) -> Result<(), HostError> {
        // Every record of an observation raises exactly one occurrence count of the run,
        // and this process holds the run's lease: what the durable ledger has of the run
        // is the first `held` of `recorded`.
        let held: u64 = self
            .ledger
            .ledger()
            .run_issue_index(&record.run_id)
            .issues_by_key
            .values()
            .map(|entry| entry.occurrence_count)
            .sum();
        let held = usize::try_from(held).unwrap_or(usize::MAX);
        if held > recorded.len() {
            return Err(HostError::with_kind(
                HostErrorKind::Artefacts,
                format!(
                    "the project ledger holds {held} issue occurrences of run {}, but its journal recorded {}: was the run's ledger written by another host?",
                    record.run_id,
                    recorded.len()
                ),
            ));
        }
        for issue in &recorded[held..] {
            self.ledger
                .record_all(issue.at, std::slice::from_ref(&issue.observation))?;
        }
        self.ledger.checkpoint(&record.run_id, true)?;
        for phase in record.phases() {
            if record.state.is_terminal() || phase.state.is_terminal() {
                self.ensure_phase_file(record, phase)?;
            }
        }
        if record.state.is_terminal() {
            self.ensure_run_index(record)?;
        }
        write_run_artefacts(&self.root, record).map_err(HostError::artefacts)?;
        Ok(())
    }
}

/// The phase at `at` in `record`.
fn position(record: &RunRecord, at: PhasePosition) -> Option<&PhaseRecord> {
    record
        .tiers
        .get(at.tier as usize)?
        .phases
        .get(at.phase as usize)
}
