//! Linked worktrees of the integration tip, for CI.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{Oid, Repository, WorktreeAddOptions, WorktreePruneOptions};

use crate::branch::IntegrationBranch;

/// Errors of [`CiWorktree`].
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    /// The temporary directory could not be created or removed.
    #[error("io: {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The integration branch could not be read.
    #[error(transparent)]
    Branch(Box<crate::branch::ApplyError>),
    /// The repository failed.
    #[error("git: {op} failed for worktree {name}: {source}")]
    Git {
        /// What was being done.
        op: &'static str,
        /// The worktree's name.
        name: String,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
}

/// A linked worktree with the integration tip checked out (detached) in a temporary
/// directory. Removed (files and `.git/worktrees/{name}`) by [`CiWorktree::remove`] or on
/// drop. Creating it writes no ref: the branch is checked out, then HEAD of the worktree is
/// detached at the tip, so the branch stays free for commits.
#[derive(Debug)]
pub struct CiWorktree {
    repo_path: PathBuf,
    name: String,
    path: PathBuf,
    tip: Oid,
    dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl CiWorktree {
    /// Checks out `branch`'s current tip in a new linked worktree under the system's
    /// temporary directory.
    ///
    /// # Errors
    /// [`WorktreeError`] when the directory, the branch or libgit2 fail.
    pub fn create(branch: &IntegrationBranch) -> Result<CiWorktree, WorktreeError> {
        let tip = branch
            .tip()
            .map_err(|e| WorktreeError::Branch(Box::new(e)))?;
        CiWorktree::create_at(branch, tip)
    }

    /// Checks out `commit` — typically a candidate from
    /// [`IntegrationBranch::commit_candidate`] that is not on the branch yet — in a new
    /// linked worktree under the system's temporary directory. Only the worktree's own
    /// HEAD, index and files are written.
    ///
    /// # Errors
    /// [`WorktreeError`] when the directory, the branch, the commit or libgit2 fail.
    pub fn create_at(branch: &IntegrationBranch, commit: Oid) -> Result<CiWorktree, WorktreeError> {
        let tip = commit;
        let dir = tempfile::Builder::new()
            .prefix("autopack-ci-")
            .tempdir()
            .map_err(|source| WorktreeError::Io {
                op: "create temporary directory",
                path: std::env::temp_dir(),
                source,
            })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("autopack-ci-{}-{}-{n}", branch.run_id(), std::process::id());
        let path = dir.path().join("wt");
        let git = |op: &'static str| {
            let name = name.clone();
            move |source| WorktreeError::Git { op, name, source }
        };
        let repo = branch_repo(branch).map_err(git("open repository"))?;
        let reference = repo
            .find_reference(branch.ref_name())
            .map_err(git("find branch"))?;
        let mut opts = WorktreeAddOptions::new();
        opts.reference(Some(&reference));
        let worktree = repo
            .worktree(&name, &path, Some(&opts))
            .map_err(git("add worktree"))?;
        let mut wt = CiWorktree {
            repo_path: branch.repo_path().to_owned(),
            name: name.clone(),
            path,
            tip,
            dir: Some(dir),
        };
        // Detach the worktree's HEAD so the branch is not "checked out" anywhere.
        let detach = Repository::open_from_worktree(&worktree).and_then(|r| {
            r.set_head_detached(tip)?;
            // The worktree was populated from the branch tip; bring it to `tip`.
            r.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        });
        if let Err(source) = detach {
            let _ = wt.prune();
            return Err(WorktreeError::Git {
                op: "detach worktree HEAD",
                name,
                source,
            });
        }
        Ok(wt)
    }

    /// The worktree's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The commit checked out.
    pub fn tip(&self) -> Oid {
        self.tip
    }

    /// The worktree's name under `.git/worktrees/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the worktree's files and its administrative directory.
    ///
    /// # Errors
    /// [`WorktreeError`] when libgit2 or the filesystem fail.
    pub fn remove(mut self) -> Result<(), WorktreeError> {
        self.prune()
    }

    fn prune(&mut self) -> Result<(), WorktreeError> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let git = |op: &'static str| {
            let name = self.name.clone();
            move |source| WorktreeError::Git { op, name, source }
        };
        let repo = Repository::open(&self.repo_path).map_err(git("open repository"))?;
        let pruned = match repo.find_worktree(&self.name) {
            Ok(worktree) => {
                let mut opts = WorktreePruneOptions::new();
                opts.valid(true).locked(true).working_tree(true);
                worktree
                    .prune(Some(&mut opts))
                    .map_err(git("prune worktree"))
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
            Err(e) => Err(git("find worktree")(e)),
        };
        let dir_path = dir.path().to_owned();
        let closed = dir.close().map_err(|source| WorktreeError::Io {
            op: "remove",
            path: dir_path,
            source,
        });
        pruned.and(closed)
    }
}

fn branch_repo(branch: &IntegrationBranch) -> Result<Repository, git2::Error> {
    Repository::open(branch.repo_path())
}

impl Drop for CiWorktree {
    fn drop(&mut self) {
        let _ = self.prune();
    }
}
