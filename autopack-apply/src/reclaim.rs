//! What a writer killed mid-update leaves in the host repository: lock files of the run's
//! own refs, and the CI worktrees earlier versions linked to the host.
//!
//! git (and libgit2) update a ref by writing `{ref}.lock` and renaming it over the ref; a
//! process killed between the two leaves the lock, and every later update of that ref
//! fails ("failed to lock file"). Only the run's lease holder may remove them: the lease
//! proves that no live writer of the run is between the two steps.

use std::path::{Path, PathBuf};

use autopack_core::ids::RunId;

use crate::branch::ApplyError;

/// Removes the lock files of `refs/heads/autonomous/{run_id}` and of every
/// `refs/tags/autonomous/{run_id}/…` in the repository at `repo`, and returns them. Other
/// refs' locks (`packed-refs.lock`, another run's) are left alone: they may belong to a
/// live process.
///
/// Call only while holding the run's lease.
///
/// # Errors
/// [`ApplyError::Git`] when the repository cannot be opened, [`ApplyError::Io`] when a
/// lock cannot be removed.
pub fn remove_stale_ref_locks(repo: &Path, run_id: &RunId) -> Result<Vec<PathBuf>, ApplyError> {
    let git = git2::Repository::open(repo).map_err(|source| ApplyError::Git {
        op: "open repository",
        repo: repo.to_owned(),
        source,
    })?;
    // Refs live in the common directory (a linked worktree's own directory has none).
    let common = git.commondir().to_owned();
    let mut removed = Vec::new();
    let io = |op: &'static str| {
        let repo = repo.to_owned();
        move |source| ApplyError::Io { op, repo, source }
    };
    let branch_lock = common.join(format!("refs/heads/autonomous/{run_id}.lock"));
    if remove_if_present(&branch_lock).map_err(io("remove a stale ref lock"))? {
        removed.push(branch_lock);
    }
    let tags = common.join(format!("refs/tags/autonomous/{run_id}"));
    collect_locks(&tags, &mut removed).map_err(io("remove a stale tag lock"))?;
    Ok(removed)
}

/// Removes the CI worktrees that versions before private workspaces linked to the host
/// for `run_id` (`.git/worktrees/autopack-ci-{run_id}-…`): their folders and their
/// registrations, which would otherwise keep the integration branch "already checked
/// out". Returns their names.
///
/// Call only while holding the run's lease.
///
/// # Errors
/// [`ApplyError::Git`] when a registration cannot be read or pruned.
pub fn remove_stale_ci_worktrees(repo: &Path, run_id: &RunId) -> Result<Vec<String>, ApplyError> {
    let git_error = |op: &'static str| {
        let repo = repo.to_owned();
        move |source| ApplyError::Git { op, repo, source }
    };
    let git = git2::Repository::open(repo).map_err(git_error("open repository"))?;
    let prefix = format!("autopack-ci-{run_id}-");
    let mut removed = Vec::new();
    let names = git.worktrees().map_err(git_error("list worktrees"))?;
    let ours = (0..names.len())
        .filter_map(|i| names.get(i).ok().flatten())
        .filter(|n| n.starts_with(&prefix));
    for name in ours {
        let worktree = git
            .find_worktree(name)
            .map_err(git_error("open a worktree"))?;
        // A folder already gone is what a crash mid-removal leaves; pruning handles both.
        let _ = std::fs::remove_dir_all(worktree.path());
        let mut options = git2::WorktreePruneOptions::new();
        options.valid(true).locked(true).working_tree(true);
        worktree
            .prune(Some(&mut options))
            .map_err(git_error("prune a worktree"))?;
        removed.push(name.to_owned());
    }
    Ok(removed)
}

fn remove_if_present(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn collect_locks(dir: &Path, removed: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_locks(&path, removed)?;
        } else if kind.is_file()
            && path.extension().is_some_and(|e| e == "lock")
            && remove_if_present(&path)?
        {
            removed.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_own_ref_locks_go() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let git = dir.path().join(".git");
        let mine = git.join("refs/heads/autonomous/r1.lock");
        let my_tag = git.join("refs/tags/autonomous/r1/tier-t1/phase-p1.lock");
        let other = git.join("refs/heads/autonomous/r2.lock");
        let packed = git.join("packed-refs.lock");
        let main = git.join("refs/heads/main.lock");
        for f in [&mine, &my_tag, &other, &packed, &main] {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, "0000").unwrap();
        }
        let run = RunId::new("r1").unwrap();
        let mut removed = remove_stale_ref_locks(dir.path(), &run).unwrap();
        removed.sort();
        let mut want = vec![mine.clone(), my_tag.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(other.exists() && packed.exists() && main.exists());
        assert!(remove_stale_ref_locks(dir.path(), &run).unwrap().is_empty());
    }

    #[test]
    fn the_runs_old_ci_worktrees_are_removed_and_unregistered() {
        let dir = tempfile::tempdir().unwrap();
        let repo_path = dir.path().join("repo");
        let repo = git2::Repository::init(&repo_path).unwrap();
        let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        let commit = repo
            .commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        let commit = repo.find_commit(commit).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let branch = repo
            .branch("autonomous/r1", &commit, false)
            .unwrap()
            .into_reference();
        let mut opts = git2::WorktreeAddOptions::new();
        opts.reference(Some(&branch));
        let mine = dir.path().join("ci-r1");
        repo.worktree("autopack-ci-r1-4242-0", &mine, Some(&opts))
            .unwrap();
        let other = dir.path().join("ci-r2");
        repo.worktree("autopack-ci-r2-4242-0", &other, None)
            .unwrap();
        let run = RunId::new("r1").unwrap();
        let removed = remove_stale_ci_worktrees(&repo_path, &run).unwrap();
        assert_eq!(removed, vec!["autopack-ci-r1-4242-0".to_owned()]);
        assert!(!mine.exists());
        assert!(other.exists());
        let names = repo.worktrees().unwrap();
        let names: Vec<_> = (0..names.len())
            .filter_map(|i| names.get(i).ok().flatten())
            .collect();
        assert_eq!(names, vec!["autopack-ci-r2-4242-0"]);
        // The branch is free again.
        repo.set_head("refs/heads/autonomous/r1").unwrap();
    }
}
