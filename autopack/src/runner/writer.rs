//! One writer per run ([`RunWriter`]), what a dead writer left ([`take_run`]), and the
//! run's sandbox ([`sandbox`]).

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use autopack_core::ids::RunId;
use autopack_core::lease::RunLeases as _;
use autopack_layout::lease::remove_stale_temp_files;
use autopack_layout::{FsRunLease, FsRunLeases, RunsRoot};
use autopack_sandbox::{FileProcessLog, Sandbox};

use super::config::RunConfig;
use super::error::{Doing as _, RunnerError};
use super::runs_root;
use super::stores::{RunWriterLease, Stores};

/// This process's hold on a run: the run's lease (`{run_id}/run.lease`), held until
/// dropped. Taken before anything of the run is read or written, by `run` and `resume`
/// alike, so two processes never write one run.
#[derive(Debug)]
pub struct RunWriter {
    _lease: FsRunLease,
    /// The database's lease, with a PostgreSQL store.
    store_lease: RunWriterLease,
    /// What a dead writer left that was cleaned up, one line each.
    pub reclaimed: Vec<String>,
}

impl RunWriter {
    /// The store's lease (a PostgreSQL store's; nothing for files).
    pub fn store_lease(&self) -> &RunWriterLease {
        &self.store_lease
    }
}

/// Takes the lease of `run_id` in `repo` — refused at once, naming the holder, while
/// another live process holds it — then removes what a dead writer of the run left: its
/// half-written temporary files and the lock files of the run's own refs (only the lease
/// proves that nobody is between writing such a lock and renaming it).
///
/// With a PostgreSQL store the database's lease is taken too (after the file's), so
/// writers on other hosts are kept out as well; a dead holder's is taken over once it
/// expired.
///
/// # Errors
/// The run is held by a live process, or the lease or the clean-up fails.
pub fn take_run(repo: &Path, stores: &Stores, run_id: &RunId) -> Result<RunWriter, RunnerError> {
    let root = runs_root(repo);
    let acquired = FsRunLeases::new(root.clone())
        .acquire(run_id, FsRunLeases::this_process())
        .map_err(|e| RunnerError::Held {
            run_id: run_id.clone(),
            source: e.into(),
        })?;
    let (store_lease, store_taken_over) = stores.take_lease(run_id)?;
    let mut reclaimed = Vec::new();
    for dead in acquired.taken_over.into_iter().chain(store_taken_over) {
        reclaimed.push(format!(
            "took run {run_id} over from {dead}, which ended without releasing it"
        ));
    }
    let removing = || format!("removing half-written files of run {run_id}");
    let mut temp = remove_stale_temp_files(&root.run_dir(run_id), true, true).doing(removing)?;
    temp.extend(remove_stale_temp_files(root.dir(), false, false).doing(removing)?);
    reclaimed.extend(
        temp.iter()
            .map(|p| format!("removed the half-written {}", p.display())),
    );
    if git2_repo_exists(repo) {
        let locks = autopack_apply::reclaim::remove_stale_ref_locks(repo, run_id)
            .doing(|| format!("removing stale ref locks of run {run_id}"))?;
        reclaimed.extend(
            locks
                .iter()
                .map(|p| format!("removed the stale ref lock {}", p.display())),
        );
        let worktrees = autopack_apply::reclaim::remove_stale_ci_worktrees(repo, run_id)
            .doing(|| format!("removing stale CI worktrees of run {run_id}"))?;
        reclaimed.extend(
            worktrees
                .iter()
                .map(|name| format!("removed the stale CI worktree {name}")),
        );
    }
    Ok(RunWriter {
        _lease: acquired.lease,
        store_lease,
        reclaimed,
    })
}

fn git2_repo_exists(repo: &Path) -> bool {
    repo.join(".git").exists() || repo.join("HEAD").is_file()
}

/// The file in a run's folder that lists the processes a run has alive, so that a resume
/// after a crash can kill what the crashed process left running.
pub const PROCESSES_FILE: &str = "processes.json";

/// The sandbox of a run: Landlock unless `config.sandbox.disabled`, recording the
/// processes it starts in `{run_id}/processes.json`.
///
/// # Errors
/// No confinement available (and `--no-sandbox` not given), or the process log cannot be
/// read.
pub fn sandbox(
    root: &RunsRoot,
    run_id: &RunId,
    config: &RunConfig,
) -> Result<Sandbox, RunnerError> {
    let sandbox = if config.sandbox.disabled {
        Sandbox::off()
    } else {
        Sandbox::detect().map_err(|finding| RunnerError::NoSandbox { finding })?
    };
    let dir = root.run_dir(run_id);
    std::fs::create_dir_all(&dir).doing(|| format!("creating {}", dir.display()))?;
    let log = FileProcessLog::open(dir.join(PROCESSES_FILE))
        .doing(|| format!("opening the process log of run {run_id}"))?;
    // What a crashed process left running dies before anything new starts.
    let reaped = log.reap();
    if reaped > 0 {
        // Ignored when stderr is closed: a message must never abort a run.
        let _ = writeln!(
            std::io::stderr(),
            "killed {reaped} process(es) left running by an earlier process of run {run_id}"
        );
    }
    Ok(sandbox.with_log(Arc::new(log)))
}
