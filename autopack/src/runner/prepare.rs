//! Before a run: its ruleset, its strategy compiled against the project ledger
//! ([`prepare`]); after it: its views written from the store ([`export`]).

use std::path::{Path, PathBuf};

use autopack_core::ids::{ProjectId, RunId};
use autopack_core::plan::Plan;
use autopack_core::record::RunRecord;
use autopack_layout::RunsRoot;
use autopack_strategy::{CompileOptions, Ruleset, RulesetStore as _, Strategy, StrategyStore as _};

use super::error::{Doing as _, RunnerError};
use super::records::{load_record, project_artefacts};
use super::stores::{RunArtefacts, Stores};
use super::{DEFAULT_PROJECT, runs_root};

/// A run ready to start: the strategy compiled and saved, the backlog loaded.
pub struct Prepared {
    /// The layout.
    pub root: RunsRoot,
    /// The ruleset used.
    pub ruleset: Ruleset,
    /// The compiled strategy (saved as `project_implementation_strategy_v{N}.json`).
    pub strategy: Strategy,
    /// Where it was saved.
    pub strategy_path: PathBuf,
    /// Where the ruleset is.
    pub ruleset_path: PathBuf,
    /// The artefact writer, holding the durable project ledger.
    pub artefacts: RunArtefacts,
}

/// Finds the ruleset for a run: `given` (saved as a new version when it differs from the
/// latest), else the only `project_ruleset_*.json` of the layout, else — in a layout with
/// none — the built-in one for project `default` (saved). Several projects and no `given`
/// is an error naming them: a run never picks a project by guess.
///
/// # Errors
/// Storage failures, named.
pub fn resolve_ruleset(
    root: &RunsRoot,
    stores: &Stores,
    given: Option<Ruleset>,
) -> Result<(Ruleset, PathBuf), RunnerError> {
    let store = stores.rulesets(root);
    let ruleset = match given {
        Some(ruleset) => {
            let reading = || format!("reading the ruleset of project {}", ruleset.project_id);
            let latest = store.load_latest(&ruleset.project_id).doing(reading)?;
            let same = latest.as_ref().is_some_and(|l| {
                let mut a = l.clone();
                a.version = ruleset.version.clone();
                a == ruleset
            });
            if same {
                latest.unwrap_or(ruleset)
            } else {
                store
                    .save_new_version(&ruleset)
                    .doing(|| format!("saving the ruleset of project {}", ruleset.project_id))?;
                store
                    .load_latest(&ruleset.project_id)
                    .doing(reading)?
                    .unwrap_or(ruleset)
            }
        }
        None => {
            let project = only_project(root, stores, "--ruleset")?;
            let reading = || format!("reading the ruleset of project {project}");
            match store.load_latest(&project).doing(reading)? {
                Some(r) => r,
                None => {
                    let builtin = Ruleset::builtin(project.clone());
                    store
                        .save_new_version(&builtin)
                        .doing(|| format!("saving the built-in ruleset of project {project}"))?;
                    store
                        .load_latest(&project)
                        .doing(reading)?
                        .unwrap_or(builtin)
                }
            }
        }
    };
    let path = root.ruleset(&ruleset.project_id);
    Ok((ruleset, path))
}

/// The layout's only project (`default` in a layout without rulesets). Several are an
/// error naming them and `flag`, the option that picks one: never a guess.
///
/// # Errors
/// Several projects, or a layout that cannot be listed.
pub fn only_project(
    root: &RunsRoot,
    stores: &Stores,
    flag: &str,
) -> Result<ProjectId, RunnerError> {
    let found = stores.projects(root)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Ok(ProjectId::new(DEFAULT_PROJECT).expect("`default` is a valid project id")),
        several => Err(RunnerError::SeveralProjects {
            dir: root.dir().to_owned(),
            projects: several.to_vec(),
            choose_with: flag.to_owned(),
        }),
    }
}

/// Compiles and saves the strategy of `plan` against the project ledger of `repo`.
///
/// # Errors
/// A run with this id already exists, or the ruleset, ledger or strategy fails.
pub fn prepare(
    repo: &Path,
    stores: &Stores,
    plan: &Plan,
    ruleset: Option<Ruleset>,
) -> Result<Prepared, RunnerError> {
    let root = runs_root(repo);
    let run_id = &plan.run.run_id;
    let mut journal = stores.journal(&root);
    let begun = crate::driver::journal_begun(&mut journal, run_id)
        .doing(|| format!("reading {}", stores.journal_name(&root, run_id)))?;
    if begun == crate::driver::Begun::Started {
        return Err(RunnerError::RunExists {
            run_id: run_id.clone(),
            journal: stores.journal_name(&root, run_id),
        });
    }
    let (ruleset, ruleset_path) = resolve_ruleset(&root, stores, ruleset)?;
    let profile = plan
        .run
        .safety_profile
        .unwrap_or(ruleset.default_safety_profile);
    let thresholds = crate::aging_thresholds(&ruleset.aging_thresholds(profile));
    let artefacts = project_artefacts(&root, stores, &ruleset.project_id, Some(thresholds))?;
    let backlog = artefacts.ledger().backlog();
    let view = crate::backlog_view(&backlog);
    let strategy = autopack_strategy::compile(&ruleset, &view, plan, &CompileOptions::default())
        .doing(|| format!("compiling the strategy of run {run_id}"))?;
    stores
        .strategies(&root)
        .save(&strategy)
        .doing(|| format!("saving the strategy of run {run_id}"))?;
    materialise_inputs(&root, stores, &ruleset, &strategy)?;
    let strategy_path = root.strategy(run_id, strategy.version);
    Ok(Prepared {
        root,
        ruleset,
        strategy,
        strategy_path,
        ruleset_path,
        artefacts,
    })
}

/// With a database store, writes the run's ruleset and strategy into the layout too, so
/// that `.autonomous_runs/` on the host running (or exporting) a run is complete.
fn materialise_inputs(
    root: &RunsRoot,
    stores: &Stores,
    ruleset: &Ruleset,
    strategy: &Strategy,
) -> Result<(), RunnerError> {
    #[cfg(feature = "postgres")]
    if let Stores::Postgres(_) = stores {
        autopack_layout::FsStrategyStore::new(root.clone())
            .save(strategy)
            .doing(|| {
                format!(
                    "writing the strategy of run {} into {}",
                    strategy.run_id,
                    root.dir().display()
                )
            })?;
        let path = root.ruleset(&ruleset.project_id);
        autopack_layout::fsio::write_atomic(&path, ruleset.to_json().as_bytes())
            .doing(|| format!("writing {}", path.display()))?;
    }
    let _ = (root, stores, ruleset, strategy);
    Ok(())
}

/// Writes the Markdown and JSON views of `run_id` into `repo`'s `.autonomous_runs/` from
/// its store: the summaries (and the incident pack of a failed run), the issue views of
/// its project ledger and, from a database, its ruleset and strategy. Nothing is recorded.
///
/// # Errors
/// No journal, one that does not replay, or a store or file failure.
pub fn export(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RunRecord, RunnerError> {
    let root = runs_root(repo);
    let record = load_record(repo, stores, run_id)?;
    let strategy = saved_strategy(&root, stores, run_id)?;
    if let Some(ruleset) = stores
        .rulesets(&root)
        .load_latest(&strategy.project_id)
        .doing(|| format!("reading the ruleset of project {}", strategy.project_id))?
    {
        materialise_inputs(&root, stores, &ruleset, &strategy)?;
    }
    let writing = || format!("writing the artefacts of run {run_id}");
    autopack_layout::write_run_artefacts(&root, &record).doing(writing)?;
    if record.state.failure().is_some() {
        autopack_layout::write_incident_pack(&root, &record).doing(writing)?;
    }
    match stores.artefacts(&root, &strategy.project_id, None)? {
        #[cfg(feature = "postgres")]
        RunArtefacts::Postgres(mut artefacts) => {
            artefacts
                .project_ledger_mut()
                .materialise_run(run_id)
                .doing(|| format!("writing the issue views of run {run_id}"))?;
        }
        // The layout's ledger keeps its views itself (`autopack repair` rebuilds them).
        RunArtefacts::Files(_) => {}
    }
    Ok(record)
}

/// The latest strategy saved for `run_id`.
///
/// # Errors
/// None saved, or the store fails.
pub fn saved_strategy(
    root: &RunsRoot,
    stores: &Stores,
    run_id: &RunId,
) -> Result<Strategy, RunnerError> {
    stores
        .strategies(root)
        .load_latest(run_id)
        .doing(|| format!("reading the strategy of run {run_id}"))?
        .ok_or_else(|| RunnerError::NoStrategy {
            run_id: run_id.clone(),
        })
}
