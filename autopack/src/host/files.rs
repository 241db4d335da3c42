//! Artefacts on disk: the `.autonomous_runs/` layout of SPEC §10 through
//! `autopack-layout`.

use autopack_core::ids::ProjectId;
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

use crate::driver::{Artefacts, HostError, RecordedIssue};
use crate::supervisor::{Checkpoint, PhasePosition};

/// Writes a run's artefacts into `.autonomous_runs/`: issues go to the project's durable
/// ledger as they are recorded (a journal, safe for several processes); at each checkpoint
/// the playbook views (phase issue files, run issue index, project backlog) are
/// materialised and the Markdown summaries of what changed since the previous checkpoint
/// rewritten (the run summary always; everything at the first checkpoint and at the end of
/// the run); a failed run gets its incident pack.
pub struct FsArtefacts {
    root: RunsRoot,
    ledger: FsIssueLedger,
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
            FsIssueLedger::open(root.clone(), thresholds, policy).map_err(HostError::new)?;
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
        let files = ledger_files(&root, project, projects).map_err(HostError::new)?;
        let ledger = FsIssueLedger::open_project(root.clone(), files, thresholds, policy)
            .map_err(HostError::new)?;
        Ok(FsArtefacts { root, ledger })
    }

    /// What was found damaged and rebuilt from the journal when the ledger was opened.
    pub fn take_repairs(&mut self) -> Vec<autopack_layout::issues::RepairNote> {
        self.ledger.take_repairs()
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

impl FsArtefacts {
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
        write_atomic(&path, file.to_json().as_bytes()).map_err(HostError::new)
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
        write_atomic(&path, index.to_json().as_bytes()).map_err(HostError::new)
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
        checkpoint: &Checkpoint,
        record: &RunRecord,
        _ledger: &Ledger,
    ) -> Result<(), HostError> {
        // At the run's end every view is brought up to date; before, a large view may lag
        // by up to half its entries (the ledger's rewrite policy), the journal being the
        // truth.
        match checkpoint {
            Checkpoint::Run => self.ledger.checkpoint_all(),
            _ => self.ledger.checkpoint(),
        }
        .map_err(HostError::new)?;
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
                write_selected_artefacts(&self.root, record, &selection).map_err(HostError::new)?;
            }
            _ => {
                write_run_artefacts(&self.root, record).map_err(HostError::new)?;
            }
        }
        Ok(())
    }

    fn incident(&mut self, record: &RunRecord, _ledger: &Ledger) -> Result<(), HostError> {
        // The summaries are written at the checkpoints (the run's own comes right after).
        write_incident_pack(&self.root, record).map_err(HostError::new)?;
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
            return Err(HostError::new(format!(
                "the project ledger holds {held} issue occurrences of run {}, but its journal recorded {}: was the run's ledger written by another host?",
                record.run_id,
                recorded.len()
            )));
        }
        for issue in &recorded[held..] {
            self.ledger
                .record(&issue.observation, issue.at)
                .map_err(HostError::new)?;
        }
        self.ledger.checkpoint_all().map_err(HostError::new)?;
        for phase in record.phases() {
            if record.state.is_terminal() || phase.state.is_terminal() {
                self.ensure_phase_file(record, phase)?;
            }
        }
        if record.state.is_terminal() {
            self.ensure_run_index(record)?;
        }
        write_run_artefacts(&self.root, record).map_err(HostError::new)?;
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
