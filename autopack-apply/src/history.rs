//! What a run left in git, read back for verification: the integration branch's commits
//! with their trailers, the run's snapshot tags, and the tree a patch makes on a commit.
//!
//! Nothing here writes: `autopack verify` and a resume's reconciliation read the branch
//! and compare it with the journal (in the `autopack` crate).

use std::collections::BTreeMap;
use std::path::Path;

use autopack_core::ids::RunId;
use git2::{Oid, Repository};

use crate::policy::{CheckError, PatchPolicy};
use crate::{ApplyError, PatchLimits};

/// One commit of the integration branch, newest first in [`BranchHistory::commits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCommit {
    /// The commit.
    pub id: Oid,
    /// Its first parent.
    pub parent: Option<Oid>,
    /// Its tree.
    pub tree: Oid,
    /// Its `Autopack-*` trailers (`Autopack-Run` → run id, ...), the last value of each.
    pub trailers: BTreeMap<String, String>,
}

/// The run's commits on its integration branch and the run's snapshot tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchHistory {
    /// The branch (`refs/heads/autonomous/{run}`).
    pub ref_name: String,
    /// Its tip, if the branch exists.
    pub tip: Option<Oid>,
    /// The first-parent chain from the tip back to the first commit that is not the
    /// run's (no `Autopack-Run: {run}` trailer), newest first, that commit excluded.
    pub commits: Vec<HistoryCommit>,
    /// Where the chain stopped: the commit the run's first commit grew from (or the tip
    /// itself when it is not the run's).
    pub below: Option<Oid>,
    /// The run's tags (`refs/tags/autonomous/{run}/...`) and the commits they peel to.
    pub tags: BTreeMap<String, Oid>,
}

/// Reads `run_id`'s integration branch and tags in the repository at `repo`.
///
/// # Errors
/// [`ApplyError::Git`] when the repository cannot be read.
pub fn branch_history(repo: &Path, run_id: &RunId) -> Result<BranchHistory, ApplyError> {
    let git = |op: &'static str| {
        move |source| ApplyError::Git {
            op,
            repo: repo.to_owned(),
            source,
        }
    };
    let repository = Repository::open(repo).map_err(git("open repository"))?;
    let ref_name = format!("refs/heads/autonomous/{run_id}");
    let tip = match repository.refname_to_id(&ref_name) {
        Ok(id) => Some(id),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(git("read integration branch")(e)),
    };
    let mut commits = Vec::new();
    let mut below = None;
    let mut next = tip;
    while let Some(id) = next {
        let commit = repository.find_commit(id).map_err(git("read commit"))?;
        let trailers = autopack_trailers(commit.message().unwrap_or(""));
        if trailers.get("Autopack-Run").map(String::as_str) != Some(run_id.as_str()) {
            below = Some(id);
            break;
        }
        let parent = commit.parent_id(0).ok();
        commits.push(HistoryCommit {
            id,
            parent,
            tree: commit.tree_id(),
            trailers,
        });
        next = parent;
    }
    let mut tags = BTreeMap::new();
    let prefix = format!("refs/tags/autonomous/{run_id}/");
    let glob = format!("{prefix}*");
    for reference in repository
        .references_glob(&glob)
        .map_err(git("list tags"))?
    {
        let reference = reference.map_err(git("read tag"))?;
        let Ok(name) = reference.name() else {
            continue;
        };
        let name = name.to_owned();
        let target = reference.peel_to_commit().map_err(git("peel tag"))?.id();
        tags.insert(name, target);
    }
    Ok(BranchHistory {
        ref_name,
        tip,
        commits,
        below,
        tags,
    })
}

/// The `Autopack-*` trailers of a commit message (`Key: value` lines of its last
/// paragraph).
pub fn autopack_trailers(message: &str) -> BTreeMap<String, String> {
    let last = message.trim_end().rsplit("\n\n").next().unwrap_or("");
    last.lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(key, _)| key.starts_with("Autopack-"))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect()
}

/// The tree `patch` makes on `base` in the repository at `repo`, writing nothing: the
/// policy gate's own application of a patch, with no limit, scope or protected path (the
/// patch was judged when the run applied it; this only recomputes what it made).
///
/// # Errors
/// [`CheckError`] when the patch does not apply to `base`, or the repository fails.
pub fn tree_after(repo: &Repository, base: Oid, patch: &[u8]) -> Result<Oid, CheckError> {
    let unlimited = PatchLimits {
        max_files: usize::MAX,
        max_changed_lines: usize::MAX,
        max_patch_bytes: u64::MAX,
        max_line_bytes: u64::MAX,
        max_file_bytes: u64::MAX,
    };
    // An empty rule list compiles no glob, so `protect` cannot fail on it.
    let policy = match PatchPolicy::with_limits(unlimited).protect(&[]) {
        Ok(policy) => policy,
        Err(_) => PatchPolicy::with_limits(unlimited),
    }
    .allow_symlinks(true);
    Ok(policy.check_at(repo, base, patch)?.tree())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_read_from_the_last_paragraph() {
        let message = "autopack(r/p): Builder patch\n\nbody\n\nAutopack-Run: r\nAutopack-Phase: p\nSigned-off-by: x\n";
        let trailers = autopack_trailers(message);
        assert_eq!(trailers.get("Autopack-Run").unwrap(), "r");
        assert_eq!(trailers.get("Autopack-Phase").unwrap(), "p");
        assert_eq!(trailers.len(), 2);
        assert!(autopack_trailers("subject only").is_empty());
    }
}
