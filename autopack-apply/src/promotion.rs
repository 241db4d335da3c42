//! Promotion of a finished run's integration branch to a protected branch (SPEC §8).
//!
//! Invariant: [`promote`] is the only function of this crate that writes a protected ref,
//! and it writes only the target branch, only when [`eligibility`] finds no refusal.

use std::path::{Path, PathBuf};

use autopack_core::ids::RunId;
use git2::{ErrorCode, Oid};

use crate::branch::{CommitSignature, branch_ref, open_repo};
use crate::refs::integration_ref;

/// Re-exported: the eligibility rule lives in `autopack_core::promotion`, pure.
pub use autopack_core::promotion::{PromotionRecord, PromotionRefusal, TierOutcome, eligibility};

/// How the target branch is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromoteMode {
    /// Move the target to the integration tip; refused unless the target is an ancestor.
    FastForward,
    /// Create a merge commit (target tip, integration tip) on the target, even when a
    /// fast-forward would do.
    MergeCommit,
}

/// Options of [`promote`].
#[derive(Debug, Clone, Default)]
pub struct PromoteOptions {
    /// Allow moving a branch that HEAD points to (the host's work tree and index then lag
    /// behind it, like after `git push` to a checked-out branch). Off by default.
    pub allow_checked_out: bool,
}

/// The result of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The target branch's full name.
    pub target_ref: String,
    /// Its tip before.
    pub old_tip: Oid,
    /// Its tip after (the integration tip, or the merge commit).
    pub new_tip: Oid,
    /// Whether a merge commit was created.
    pub merge_commit: bool,
    /// Whether HEAD points to the target (allowed by
    /// [`PromoteOptions::allow_checked_out`]): its index and work tree still hold
    /// `old_tip` and show the promotion reversed until brought up to `new_tip`.
    pub checked_out: bool,
}

impl Promotion {
    /// Whether nothing changed: the target already held the run's work (promoted before).
    pub fn unchanged(&self) -> bool {
        self.old_tip == self.new_tip
    }
}

/// Errors of [`promote`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromoteError {
    /// The run is not eligible; every reason is listed.
    #[error("not_eligible: run {run_id} cannot be promoted: {}", join(.refusals))]
    NotEligible {
        /// The run.
        run_id: RunId,
        /// Every reason.
        refusals: Vec<PromotionRefusal>,
    },
    /// The record is about another run.
    #[error("run_mismatch: record is for run {record}, promotion asked for {requested}")]
    RunMismatch {
        /// The record's run.
        record: RunId,
        /// The run asked for.
        requested: RunId,
    },
    /// The target is not a plain branch, or is an integration branch.
    #[error("bad_target: {target:?} is not a branch that can be promoted to")]
    BadTarget {
        /// The target as given.
        target: String,
    },
    /// A ref is missing.
    #[error("missing_ref: {ref_name} does not exist")]
    MissingRef {
        /// The ref.
        ref_name: String,
    },
    /// Fast-forward asked, but the target has commits the integration branch lacks.
    #[error("not_fast_forward: {target_ref} at {target_tip} is not an ancestor of {source_ref}")]
    NotFastForward {
        /// The target.
        target_ref: String,
        /// Its tip.
        target_tip: Oid,
        /// The integration branch.
        source_ref: String,
    },
    /// The merge has conflicts.
    #[error("merge_conflict: merging {source_ref} into {target_ref} conflicts at {paths:?}")]
    MergeConflict {
        /// The target.
        target_ref: String,
        /// The integration branch.
        source_ref: String,
        /// Conflicting paths.
        paths: Vec<String>,
    },
    /// HEAD points to the target and [`PromoteOptions::allow_checked_out`] is off.
    #[error(
        "checked_out: {target_ref} is checked out as HEAD; switch the work tree to another branch first (e.g. `git switch --detach`), or allow it and then bring the work tree up to the new tip"
    )]
    CheckedOut {
        /// The target.
        target_ref: String,
    },
    /// The target moved during the promotion.
    #[error("stale_target: {target_ref} moved during promotion")]
    StaleTarget {
        /// The target.
        target_ref: String,
    },
    /// The repository failed.
    #[error("git: {op} failed in {repo}: {source}")]
    Git {
        /// What was being done.
        op: &'static str,
        /// The repository.
        repo: PathBuf,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
}

fn join(refusals: &[PromotionRefusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Moves `target` (e.g. `main`) to the run's integration tip, by fast-forward or merge
/// commit, when `record` is eligible. The explicit host call of SPEC §8; the one place in
/// this crate where a protected ref is written. The target ref is updated with a
/// compare-and-swap on its old tip; nothing else is written (no HEAD, index or work tree).
///
/// # Errors
/// [`PromoteError`]; on any error the target is unchanged.
pub fn promote(
    repo: impl AsRef<Path>,
    run_id: &RunId,
    target: &str,
    mode: PromoteMode,
    record: &PromotionRecord,
    signature: &CommitSignature,
    opts: &PromoteOptions,
) -> Result<Promotion, PromoteError> {
    let path = repo.as_ref();
    let git = |op: &'static str| {
        move |source| PromoteError::Git {
            op,
            repo: path.to_owned(),
            source,
        }
    };
    if &record.run_id != run_id {
        return Err(PromoteError::RunMismatch {
            record: record.run_id.clone(),
            requested: run_id.clone(),
        });
    }
    eligibility(record).map_err(|refusals| PromoteError::NotEligible {
        run_id: run_id.clone(),
        refusals,
    })?;
    let target_ref = branch_ref(target);
    if !target_ref.starts_with("refs/heads/") || target_ref.starts_with("refs/heads/autonomous/") {
        return Err(PromoteError::BadTarget {
            target: target.to_owned(),
        });
    }
    let repo = open_repo(path).map_err(git("open repository"))?;
    let checked_out = repo
        .find_reference("HEAD")
        .ok()
        .is_some_and(|head| head.symbolic_target().ok().flatten() == Some(target_ref.as_str()));
    if checked_out && !opts.allow_checked_out {
        return Err(PromoteError::CheckedOut { target_ref });
    }
    let source_ref = integration_ref(run_id);
    let resolve = |name: &str| match repo.refname_to_id(name) {
        Ok(id) => Ok(id),
        Err(e) if e.code() == ErrorCode::NotFound => Err(PromoteError::MissingRef {
            ref_name: name.to_owned(),
        }),
        Err(e) => Err(git("resolve ref")(e)),
    };
    let old_tip = resolve(&target_ref)?;
    let source_tip = resolve(&source_ref)?;
    let log = format!("autopack: promote run {run_id}");
    // Promoted before (or the target has moved on from the run's tip): nothing to do, in
    // either mode — a second merge commit would only repeat the first.
    if old_tip == source_tip
        || repo
            .graph_descendant_of(old_tip, source_tip)
            .map_err(git("ancestry"))?
    {
        return Ok(Promotion {
            target_ref,
            old_tip,
            new_tip: old_tip,
            merge_commit: false,
            checked_out,
        });
    }
    let new_tip = match mode {
        PromoteMode::FastForward => {
            let ff = repo
                .graph_descendant_of(source_tip, old_tip)
                .map_err(git("ancestry"))?;
            if !ff {
                return Err(PromoteError::NotFastForward {
                    target_ref,
                    target_tip: old_tip,
                    source_ref,
                });
            }
            source_tip
        }
        PromoteMode::MergeCommit => {
            let ours = repo
                .find_commit(old_tip)
                .map_err(git("find target commit"))?;
            let theirs = repo
                .find_commit(source_tip)
                .map_err(git("find source commit"))?;
            let mut index = repo
                .merge_commits(&ours, &theirs, None)
                .map_err(git("merge"))?;
            if index.has_conflicts() {
                let mut paths: Vec<String> = index
                    .conflicts()
                    .map_err(git("list conflicts"))?
                    .filter_map(Result::ok)
                    .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                    .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                    .collect();
                paths.dedup();
                return Err(PromoteError::MergeConflict {
                    target_ref,
                    source_ref,
                    paths,
                });
            }
            let tree_id = index
                .write_tree_to(&repo)
                .map_err(git("write merge tree"))?;
            let tree = repo.find_tree(tree_id).map_err(git("find merge tree"))?;
            let sig = signature.to_git().map_err(git("signature"))?;
            let message = format!(
                "Merge {source_ref} (autopack run {run_id}) into {target_ref}\n\nAutopack-Run: {run_id}\n"
            );
            // No ref update here: the target moves below, with a compare-and-swap.
            repo.commit(None, &sig, &sig, &message, &tree, &[&ours, &theirs])
                .map_err(git("merge commit"))?
        }
    };
    match repo.reference_matching(&target_ref, new_tip, true, old_tip, &log) {
        Ok(_) => {}
        Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => {
            return Err(PromoteError::StaleTarget { target_ref });
        }
        Err(e) => return Err(git("update target")(e)),
    }
    Ok(Promotion {
        target_ref,
        old_tip,
        new_tip,
        merge_commit: mode == PromoteMode::MergeCommit,
        checked_out,
    })
}
