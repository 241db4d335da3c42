//! # autopack-apply
//!
//! The only way agent code reaches a repository, and the CI gate that judges it: a
//! patch is checked against the patch policy and committed onto the run's integration
//! branch `autonomous/{run_id}` without a checkout, and `main` is written only by an
//! explicit promotion. The only Autopack crate that links git2.
//!
//! A run's branch, a patch checked and committed onto it:
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
//!     provenance: None,
//! };
//! let commit = branch.commit(&checked, &info)?;
//! assert_eq!(branch.tip()?, commit.commit);
//! assert_eq!(branch.status()?.commits_ahead, 1);
//! # Ok(()) }
//! ```
//!
//! What it holds:
//!
//! - [`IntegrationBranch`]: a run's branch `refs/heads/autonomous/{run_id}`, created from a
//!   base branch; [`IntegrationBranch::commit`] commits a checked patch onto it without a
//!   checkout (compare-and-swap on the tip: a stale tip is [`ApplyError::StaleTip`]);
//!   [`IntegrationBranch::snapshot_tag`] creates idempotent annotated tags
//!   `autonomous/{run}/tier-{tier}/phase-{phase}`; [`IntegrationBranch::status`] reports.
//! - [`PatchPolicy`]: every patch rule, each [`PolicyViolation`] naming the rule
//!   ([`PolicyViolation::rule`]) and the path ([`PolicyViolation::path`]); the check also
//!   computes the resulting tree. [`PatchPolicy::check_at`] runs the same check on any
//!   commit and writes nothing (no object either), for `autopack patch check`. The rules:
//!   - *paths*: relative, no `..`, no `.git`, no NUL or backslash (our own rules, named
//!     precisely), then git's own rules for a tree entry's name through `gix-validate`
//!     with its NTFS, HFS+ and Windows protections on: `.g\u{200c}it`, `git~1`,
//!     `.git::$INDEX_ALLOCATION`, `.git.` and `.git /x` are `git_dir_component`, device
//!     names and forbidden characters `unportable_path`; lengths from [`PathLimits`]
//!     (`path_too_long`, `component_too_long`); nothing through a symlinked directory;
//!   - *symlinks*: no symlink created, edited or retyped (the tracked mode is read from
//!     the base tree, so a plain hunk on a link is caught) unless
//!     [`PatchPolicy::allow_symlinks`]; no submodule entry or `.gitmodules` (by any name
//!     NTFS or HFS+ resolves to it);
//!   - *sizes* ([`PatchLimits`], per builder mode): files, changed lines, the patch's bytes
//!     (`patch_too_large`, before it is parsed), the longest added line (`line_too_long`)
//!     and each post-image file (`file_too_large`), refusals naming limit, size, path and
//!     mode; [`MAX_PATCH_BYTES`] (8 MiB) is the host's ceiling above every mode's limit;
//!   - *protected paths* ([`PatchPolicy::protect`] with [`ProtectedPath`]s, e.g.
//!     `default_protected_paths`): refused (`protected_path`), or accepted with a
//!     [`PatchHold::ProtectedPath`] when the rule says `auditor_approve`; the old path of a
//!     rename counts; [`PatchPolicy::for_mode`] starts from the default protected paths;
//!   - *test integrity*: deleting or renaming a test file ([`is_test_path`]), adding a
//!     skip marker, removing assertions — never refused, always a
//!     [`PatchHold::TestIntegrity`] in [`CheckedPatch::holds`], for the host to make the
//!     phase strict CI + Auditor `approve` + an issue;
//!   - binary content, the phase's scope, a clean apply, and a result that changes exactly
//!     the declared paths.
//! - [`workspace`]: private workspaces, independent clones of the host at a commit (one
//!   per role of a run, outside the host work tree) where agents and CI work, and the
//!   change an agent leaves there read back as a git-format patch. A checkout never writes
//!   through a link: links on the way to every path that changes are removed first.
//! - [`tripwire`]: the host repository's refs, HEAD, index, hooks and config compared with
//!   a baseline after every agent and CI attempt.
//! - [`PreflightGate`]: runs the CI profile's command with retries, backoff and a timeout,
//!   classifies green / flaky / red, and never starts an attempt the tier cannot pay for.
//!   Its arithmetic never panics: a timeout too far away to be represented is no timeout,
//!   the doubled backoff saturates and is capped at [`MAX_BACKOFF`] (1 hour).
//! - The JUnit gate ([`junit`]): with report globs per profile
//!   ([`PreflightGate::normal_junit`], [`PreflightGate::strict_junit`]) each attempt reads
//!   the JUnit XML its command wrote (pytest, cargo-nextest, Jest, go-junit-report, Maven
//!   Surefire; earlier reports removed first; no symlink followed; 64 MiB a file) into
//!   stable test ids. [`PreflightGate::baseline`] runs the command on the base and keeps
//!   its failing tests; [`PreflightGate::run_with_baseline`] then passes an attempt whose
//!   only failures are in the baseline, and reports exact failing, new, known and
//!   per-test flaky tests. The classification is one pure function, [`classify`].
//! - [`eligibility`] and [`promote`]: the explicit host call that moves a protected branch.
//!
//! Invariant: HEAD, the index file, every work-tree file and every protected ref
//! (`main`, `master`, configured patterns) are byte-for-byte unchanged by every call of
//! this crate, except [`promote`], which moves only the target branch it is given.
//! (`tests/branch.rs`.)
//!
//! Invariant: only [`promote`] writes a protected ref; every other writer refuses one with
//! a `ProtectedRef` error before writing.
//!
//! Objects written to the object database by a check (post-image blobs and the trees along
//! the changed paths; the scratch tree stays in memory) stay unreferenced until a commit
//! uses them; `git gc` prunes them. A dry check ([`PatchPolicy::check_at`]) writes none.
//!
//! Benchmarks, their goals and every figure: `PERFORMANCE.md` in the repository.

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod branch;
mod gate;
pub mod history;
pub mod junit;
mod loose;
mod policy;
mod promotion;
pub mod reclaim;
pub mod refs;
pub mod tripwire;
pub mod workspace;

/// Re-exported: the limits, protected paths and holds a [`PatchPolicy`] takes and gives.
pub use autopack_core::patch_rules::{
    PatchHold, PatchLimits, PathLimits, ProtectedAction, ProtectedPath, TestIntegrityFinding,
};
pub use branch::{
    AppliedCommit, ApplyError, BranchOptions, BranchStatus, CommitInfo, CommitSignature,
    IntegrationBranch, Provenance, Role, SnapshotTag,
};
pub use gate::{
    Attempt, Classification, GateError, GateReport, GateVerdict, MAX_BACKOFF, PreflightGate,
    SHELL_CANNOT_RUN, classify,
};
pub use junit::{Baseline, JunitError, Outcome, TestResult, TestResults};
pub use policy::{
    ChangeKind, ChangedPath, CheckError, CheckedPatch, MAX_PATCH_BYTES, PatchPolicy,
    PolicyViolation, SymlinkChange, is_test_path,
};
pub use promotion::{
    PromoteError, PromoteMode, PromoteOptions, Promotion, PromotionRecord, PromotionRefusal,
    TierOutcome, eligibility, promote,
};
pub use refs::{PatternError, ProtectedRefs};

/// Re-exported so callers can name object ids without depending on git2.
pub use git2::Oid;
/// Re-exported for [`PatchPolicy::check_at`], which checks against any repository opened
/// with it (`Repository::open`), without depending on git2.
pub use git2::Repository;
