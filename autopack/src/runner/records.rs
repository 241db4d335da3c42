//! Reading runs back: a run's journal replayed ([`replay`], [`load_record`],
//! [`all_records`]), the project ledger's artefact writer ([`project_artefacts`]), and
//! the repair of a finished run's artefacts ([`repair_finished`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::journal::RunStore as _;
use autopack_core::record::RunRecord;
use autopack_layout::RunsRoot;

use super::error::{Doing as _, RunnerError};
use super::prepare::saved_strategy;
use super::runs_root;
use super::stores::{Journal, RunArtefacts, Stores};
use crate::driver::{DriverError, Replayed};

/// Replays the journal of `run_id` (to look at it before resuming).
///
/// # Errors
/// No journal, or one that does not replay.
pub fn replay(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<Replayed, RunnerError> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    let journal = stores.journal_name(&root, run_id);
    crate::driver::replay_run(&mut store, run_id)
        .map_err(|e| journal_error(run_id, &journal, "replaying the journal of", e))
}

/// A driver error reading `run_id`'s journal (`journal`, its name) as the runner reports
/// it: no journal is [`RunnerError::NoJournal`]; anything else failed while `doing` it.
pub(crate) fn journal_error(
    run_id: &RunId,
    journal: &str,
    doing: &str,
    err: DriverError,
) -> RunnerError {
    match err {
        DriverError::NothingToResume(_) => RunnerError::NoJournal {
            run_id: run_id.clone(),
            journal: journal.to_owned(),
        },
        other => RunnerError::failed(format!("{doing} run {run_id} ({journal})"), other),
    }
}

/// The artefact writer of a run being resumed: the project ledger with the thresholds of
/// the run's frozen strategy.
pub(crate) fn resume_artefacts(
    root: &RunsRoot,
    stores: &Stores,
    run_id: &RunId,
) -> Result<RunArtefacts, RunnerError> {
    let strategy = saved_strategy(root, stores, run_id)?;
    let thresholds = crate::aging_thresholds(&strategy.aging_thresholds);
    project_artefacts(root, stores, &strategy.project_id, Some(thresholds))
}

/// The artefact writer over `project`'s ledger (keyed by project; `None` thresholds keep
/// the ledger's own). Views found damaged and rebuilt from the journal are reported on
/// stderr.
///
/// # Errors
/// The ledger cannot be read, or a backlog naming no project could be several projects'.
pub fn project_artefacts(
    root: &RunsRoot,
    stores: &Stores,
    project: &ProjectId,
    thresholds: Option<autopack_issues::AgingThresholds>,
) -> Result<RunArtefacts, RunnerError> {
    let mut artefacts = stores.artefacts(root, project, thresholds)?;
    for note in artefacts.take_repairs() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {}: {}",
            note.path.display(),
            note.problem
        );
    }
    Ok(artefacts)
}

/// Brings the artefacts of a finished run up to its journal (what a crash after its last
/// input left undone: issues not yet in the ledger, summaries, views, the incident pack)
/// and returns its record. Needs no agents, sandbox or workspaces.
///
/// # Errors
/// The run is not finished, or the artefacts cannot be written.
pub fn repair_finished(
    repo: &Path,
    stores: &Stores,
    run_id: &RunId,
    replayed: &Replayed,
) -> Result<RunRecord, RunnerError> {
    let sup = &replayed.supervisor;
    let (Some(record), Some(ledger)) = (sup.record(), sup.ledger()) else {
        return Err(RunnerError::NoRecord {
            run_id: run_id.clone(),
        });
    };
    if !sup.is_finished() {
        return Err(RunnerError::NotFinished {
            run_id: run_id.clone(),
        });
    }
    let mut artefacts = resume_artefacts(&runs_root(repo), stores, run_id)?;
    crate::driver::Artefacts::recover(&mut artefacts, record, ledger, &replayed.recorded)
        .doing(|| format!("repairing the artefacts of run {run_id}"))?;
    Ok(record.clone())
}

/// A run's id and its record, or why it could not be read.
pub type RunRead = (RunId, Result<RunRecord, RunnerError>);

/// Every run's record, rebuilt by replaying its journal, in the store's order. A run
/// whose journal does not replay is returned as an error next to its id.
///
/// # Errors
/// When the layout cannot be listed.
pub fn all_records(repo: &Path, stores: &Stores) -> Result<Vec<RunRead>, RunnerError> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    let runs = store
        .runs()
        .doing(|| format!("listing runs in {}", root.dir().display()))?;
    let mut out = Vec::new();
    for run in runs {
        let record = record_of(&mut store, &stores.journal_name(&root, &run), &run);
        out.push((run, record));
    }
    Ok(out)
}

/// One run's record, rebuilt from its journal.
///
/// # Errors
/// No journal, or one that does not replay.
pub fn load_record(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RunRecord, RunnerError> {
    let root = runs_root(repo);
    let mut store = stores.journal(&root);
    record_of(&mut store, &stores.journal_name(&root, run_id), run_id)
}

fn record_of(
    store: &mut Journal,
    journal_name: &str,
    run_id: &RunId,
) -> Result<RunRecord, RunnerError> {
    let sup = crate::driver::replay_journal(store, run_id)
        .map_err(|e| journal_error(run_id, journal_name, "replaying", e))?;
    sup.record().cloned().ok_or_else(|| RunnerError::NoRecord {
        run_id: run_id.clone(),
    })
}

/// The files a finished run has written into its layout (SPEC §10: the ruleset of
/// `ruleset_project`, the backlog, the summaries, the strategy, the issue views; the
/// incident pack only for a `DONE_FAILED_*` run).
pub fn expected_artefacts(
    root: &RunsRoot,
    ruleset_project: &str,
    record: &RunRecord,
) -> Vec<PathBuf> {
    let run = &record.run_id;
    let mut out = vec![
        root.dir()
            .join(format!("project_ruleset_{ruleset_project}.json")),
        root.backlog(),
        root.run_summary(run),
        root.strategy(run, record.strategy_version),
        root.run_issue_index(run),
    ];
    for tier in &record.tiers {
        out.push(root.tier_summary(run, tier.tier_index, &tier.tier_id, &tier.name));
    }
    for phase in record.phases() {
        out.push(root.phase_summary(run, phase.phase_index, &phase.phase_id));
    }
    for phase in record.phases() {
        out.push(root.phase_issues(run, phase.phase_index, &phase.phase_id));
    }
    if record.state.failure().is_some() {
        out.push(root.incident_json(run));
        out.push(root.incident_markdown(run));
    }
    out
}
