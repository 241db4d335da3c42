//! # autopack-apply
//!
//! The only way agent code reaches a repository (SPEC §8) and the CI gate that judges it
//! (SPEC §9). The only Autopack crate that links git2.
//!
//! - [`IntegrationBranch`]: a run's branch `refs/heads/autonomous/{run_id}`, created from a
//!   base branch; [`IntegrationBranch::commit`] commits a checked patch onto it without a
//!   checkout (compare-and-swap on the tip: a stale tip is [`ApplyError::StaleTip`]);
//!   [`IntegrationBranch::snapshot_tag`] creates idempotent annotated tags
//!   `autonomous/{run}/tier-{tier}/phase-{phase}`; [`IntegrationBranch::status`] reports.
//! - [`PatchPolicy`]: every SPEC §8 rule, each [`PolicyViolation`] naming the rule and the
//!   path; the check also computes the resulting tree.
//! - [`CiWorktree`]: a linked worktree of the integration tip in a temporary directory.
//! - [`PreflightGate`]: runs the CI profile's command with retries, backoff and a timeout,
//!   classifies green / flaky / red, and never starts an attempt the tier cannot pay for.
//! - [`eligibility`] and [`promote`]: the explicit host call that moves a protected branch.
//!
//! Invariant: HEAD, the index file, every work-tree file and every protected ref
//! (`main`, `master`, configured patterns) are byte-for-byte unchanged by every call of
//! this crate, except [`promote`], which moves only the target branch it is given.
//! (`tests/invariant.rs`.)
//!
//! Invariant: only [`promote`] writes a protected ref; every other writer refuses one with
//! a `ProtectedRef` error before writing.
//!
//! Objects written to the object database by a check (post-image blobs and the trees along
//! the changed paths; the scratch tree stays in memory) stay unreferenced until a commit
//! uses them; `git gc` prunes them.
//!
//! ```
//! use autopack_apply::{BranchOptions, CommitInfo, CommitSignature, IntegrationBranch, PatchPolicy, Role};
//! use autopack_core::ids::{PhaseId, RunId, TierId};
//! use autopack_core::vocabulary::BuilderMode;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let repo = git2::Repository::init(dir.path())?;
//! # let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(1_700_000_000, 0))?;
//! # let mut tb = repo.treebuilder(None)?;
//! # tb.insert("README", repo.blob(b"hello\n")?, 0o100644)?;
//! # let tree = repo.find_tree(tb.write()?)?;
//! # repo.commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])?;
//! let run = RunId::new("run-1")?;
//! let branch = IntegrationBranch::create(dir.path(), &run, "main", BranchOptions::default())?;
//! let patch = "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-hello\n+hello, world\n";
//! let checked = PatchPolicy::for_mode(&BuilderMode::TweakLight).check(&branch, patch.as_bytes())?;
//! let info = CommitInfo {
//!     tier_id: TierId::new("t1")?,
//!     phase_id: PhaseId::new("p1")?,
//!     role: Role::Builder,
//!     message: "Greet the world".into(),
//!     signature: CommitSignature { name: "autopack".into(), email: "a@example.invalid".into(), seconds: 1_700_000_000, offset_minutes: 0 },
//! };
//! let commit = branch.commit(&checked, &info)?;
//! assert_eq!(branch.tip()?, commit.commit);
//! assert_eq!(branch.status()?.commits_ahead, 1);
//! # Ok(()) }
//! ```
//!
//! # Speed
//!
//! A check computes the new tree by applying the patch to a scratch tree that holds only
//! the declared paths, then splicing the results into the base tree along those paths, so
//! the cost per patch follows the patch and the depth of its paths, not the repository's
//! file count. `benches/apply.rs` applies one-file patches in sequence (check + commit) and,
//! in the same run, the first implementation's loop (`git apply`, `git add -A`,
//! `git commit` per patch on a checkout). One run with short measurement times (criterion,
//! 10 samples, 4 s) on a 2-core machine that was also compiling other crates (load ≈ 8),
//! so the absolute figures are noisy; per patch:
//!
//! | files in repo | autopack-apply | git subprocess loop | ratio |
//! |---|---|---|---|
//! | 1,000 | 7.0 ms (5.9–8.5) | 86 ms (77–98) | ≈ 12× |
//! | 10,000 | 4.5 ms (3.7–5.1) | 267 ms (219–323) | ≈ 60× |
//!
//! The git2 path does not grow with the file count (the difference is load noise); the
//! subprocess loop triples from 1,000 to 10,000 files.
//!
//! Again on a quiet machine (load average ≈ 2, nothing else building):
//!
//! | files in repo | autopack-apply | git subprocess loop | ratio |
//! |---|---|---|---|
//! | 1,000 | 1.96 ms (1.87–2.15) | 28.9 ms (26.8–30.0) | ≈ 15× |
//! | 10,000 | 1.49–2.05 ms | 71.6 ms (69.4–75.4) | ≈ 35–48× |
//!
//! The 20× goal holds at 10,000 files but **not at 1,000**, where `git` itself is fast.
//! Most of our ~2 ms is writing loose objects (blob, trees, commit: a file each, zlib
//! compressed) and the ref lock; an in-memory object backend for the scratch trees
//! (libgit2's mempack) is the next step.

mod branch;
mod gate;
mod loose;
mod policy;
mod promotion;
pub mod refs;
mod worktree;

pub use branch::{
    AppliedCommit, ApplyError, BranchOptions, BranchStatus, CommitInfo, CommitSignature,
    IntegrationBranch, Role, SnapshotTag,
};
pub use gate::{Attempt, GateError, GateReport, GateVerdict, PreflightGate, SHELL_CANNOT_RUN};
pub use policy::{
    ChangeKind, ChangedPath, CheckError, CheckedPatch, PatchPolicy, PolicyViolation, SizeLimits,
};
pub use promotion::{
    PromoteError, PromoteMode, PromoteOptions, Promotion, PromotionRecord, PromotionRefusal,
    TierOutcome, eligibility, promote,
};
pub use refs::{PatternError, ProtectedRefs};
pub use worktree::{CiWorktree, WorktreeError};

/// Re-exported so callers can name object ids without depending on git2.
pub use git2::Oid;
