//! `autopack replay`: what-if replay of a repository's recorded runs under another
//! ruleset ([`crate::whatif`] over the runs' journals).

use std::path::Path;

use autopack_core::ids::RunId;
use autopack_core::journal::{self, RunStore as _};
use autopack_strategy::Ruleset;

use super::error::{Doing as _, RunnerError};
use super::runs_root;
use super::stores::Stores;
use crate::driver::JournalEntry;
use crate::whatif::{Recorded, WhatIf, WhatIfSummary, strategy_under, summarise, what_if};

/// Re-runs `run_id`'s recorded agent and CI outcomes under `ruleset`'s strategy (compiled
/// for the recorded plan and backlog) and says where it would have gone differently.
///
/// # Errors
/// No journal, one that does not replay (a broken chain names its entry), or a ruleset
/// that does not compile for the run's plan.
pub fn what_if_run(
    repo: &Path,
    stores: &Stores,
    run_id: &RunId,
    ruleset: &Ruleset,
) -> Result<WhatIf, RunnerError> {
    let root = runs_root(repo);
    let name = stores.journal_name(&root, run_id);
    let mut store = stores.journal(&root);
    let entries: Vec<JournalEntry> =
        journal::replay(&mut store, run_id).doing(|| format!("reading {name}"))?;
    if entries.is_empty() {
        return Err(RunnerError::NoJournal {
            run_id: run_id.clone(),
            journal: name,
        });
    }
    let recorded = Recorded::from_entries(entries).doing(|| format!("reading {name}"))?;
    let strategy = strategy_under(&recorded, ruleset)
        .doing(|| format!("compiling the ruleset for run {run_id}'s plan"))?;
    Ok(what_if(&recorded, strategy))
}

/// [`what_if_run`] of every run in `stores`, in run order, and the summary over them.
///
/// # Errors
/// As [`what_if_run`], naming the first run that fails.
pub fn what_if_all(
    repo: &Path,
    stores: &Stores,
    ruleset: &Ruleset,
) -> Result<(Vec<(RunId, WhatIf)>, WhatIfSummary), RunnerError> {
    let root = runs_root(repo);
    let runs = stores
        .journal(&root)
        .runs()
        .doing(|| format!("listing the runs of {}", root.dir().display()))?;
    let results = runs
        .into_iter()
        .map(|run| what_if_run(repo, stores, &run, ruleset).map(|w| (run, w)))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = summarise(&results);
    Ok((results, summary))
}
