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
//!   path; the check also computes the resulting tree. A patch longer than
//!   [`MAX_PATCH_BYTES`] (8 MiB; [`PatchPolicy::with_max_patch_bytes`] raises it) is
//!   refused unparsed as `patch_too_large`.
//! - [`workspace`]: private workspaces, independent clones of the host at a commit (one
//!   per role of a run, outside the host work tree) where agents and CI work, and the
//!   change an agent leaves there read back as a git-format patch.
//! - [`tripwire`]: the host repository's refs, HEAD, index, hooks and config compared with
//!   a baseline after every agent and CI attempt.
//! - [`PreflightGate`]: runs the CI profile's command with retries, backoff and a timeout,
//!   classifies green / flaky / red, and never starts an attempt the tier cannot pay for.
//!   Its arithmetic never panics: a timeout too far away to be represented is no timeout,
//!   the doubled backoff saturates and is capped at [`MAX_BACKOFF`] (1 hour).
//! - The JUnit gate ([`junit`], SPEC §13): with report globs per profile
//!   ([`PreflightGate::normal_junit`], [`PreflightGate::strict_junit`]) each attempt reads
//!   the JUnit XML its command wrote (pytest, cargo-nextest, Jest, go-junit-report, Maven
//!   Surefire; earlier reports removed first; no symlink followed; 64 MiB a file) into
//!   stable test ids. [`PreflightGate::baseline`] runs the command on the base and keeps
//!   its failing tests; [`PreflightGate::run_with_baseline`] then passes an attempt whose
//!   only failures are in the baseline, and reports exact failing, new, known and
//!   per-test flaky tests. The classification is one pure function, [`classify`].
//!   Parsing a 10,000-test report (2 MB, 3% failing with output) takes 16–20 ms, 19–24 ms
//!   read from a file, against a goal of 50 ms (`benches/junit.rs`; fastest of 20 and
//!   criterion's mean on the 2 shared cores; with two other builds running, load ≈ 5,
//!   medians rise to 25–50 ms). About a quarter of it is junit-parser's allocation.
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
//! A check applies the patch (libgit2's apply) to a scratch tree holding only the declared
//! paths, in a repository whose object store is in memory, then rewrites the base's trees
//! along those paths from their raw bytes; the cost per patch follows the patch and the
//! depth of its paths, not the repository's file count. Only what the commit keeps reaches
//! `.git/objects`: the post-image blobs, one tree per directory level on the paths and the
//! commit, each written once as a loose object by this crate (`loose.rs`: zlib level 1 as
//! git's default, a temporary file hard-linked into place; libgit2's own write path rescans
//! the pack directory before every new object). A branch handle keeps the raw trees it read
//! or wrote, so the next check's base tree is not read back. A one-file patch two levels
//! deep creates five files (blob, two trees, commit, ref lock; previously seven: the scratch
//! tree went to disk too) and makes about 95 system calls (previously about 235).
//!
//! Creating a file is what costs on this machine's file system (ext4 without a journal).
//! Only without a journal does ext4 refuse to reuse an inode freed in the last one to six
//! minutes, and it finds that out by scanning, inode by inode, from the start of the
//! directory's block group on every creation: `perf` puts 60–70% of a slow run's time in
//! the kernel's `recently_deleted` and `find_inode_bit`. After a burst of deletions (a test
//! suite or an earlier bench run removing its temporary repositories) a creation can take
//! 0.3–0.8 ms instead of 15–40 µs, for whoever creates files next; autopack-apply, whose
//! cost is now mostly its five creations, slows down by up to 3×, while the subprocess loop
//! (mostly process start-up) barely moves. The bench therefore removes its repositories
//! only at the end. On tmpfs (`TMPDIR=/dev/shm`) the effect is gone.
//!
//! `benches/apply.rs` applies one-file patches in sequence (check + commit onto
//! `refs/heads/autonomous/{run}` with the compare-and-swap) and, in the same run, the first
//! implementation's loop (`git apply`, `git add -A`, `git commit` per patch on a checkout).
//! Criterion, 10 samples, 4 s, 2-core machine, nothing else running; per patch, criterion's
//! mean, each pair of rows one run:
//!
//! | run | files in repo | autopack-apply | git subprocess loop | ratio |
//! |---|---|---|---|---|
//! | 1 | 1,000 | 0.631 ms | 14.3 ms | 23× |
//! | 1 | 10,000 | 0.677 ms | 54.3 ms | 80× |
//! | 2 | 1,000 | 0.863 ms | 16.8 ms | 19.5× |
//! | 3 | 1,000 | 1.07 ms | 18.9 ms | 18× |
//! | 3 | 10,000 | 0.724 ms | 59.8 ms | 83× |
//! | 4 | 1,000 | 0.926 ms | 18.0 ms | 19.4× |
//! | 4 | 10,000 | 0.745 ms | 59.7 ms | 80× |
//! | 5 | 1,000 | 0.638 ms | 20.8 ms | 33× |
//! | 5 | 10,000 | 0.714 ms | 56.7 ms | 79× |
//! | 6 | 1,000 | 0.701 ms | 20.7 ms | 30× |
//! | 6 | 10,000 | 0.721 ms | 60.3 ms | 84× |
//! | 7 | 1,000 | 0.884 ms | 30.0 ms | 34× |
//! | 7 | 10,000 | 0.745 ms | 73.3 ms | 98× |
//! | tmpfs | 1,000 | 0.423 ms | 23.1 ms | 55× |
//! | tmpfs | 10,000 | 0.447 ms | 64.8 ms | 145× |
//!
//! (Run 2's 10,000-file row came right after the bench still removed the 1,000-file
//! repository in the middle: 2.7 ms, not comparable.) On the goal's workload, 10,000 files,
//! every run is 79–98× faster. At 1,000 files, where `git` is quick on a small checkout, the
//! ratio is 18–34× (under 20× in three runs of seven): what is left of our cost is the five
//! file creations, whose price depends on the file system's recent history. The cost per
//! patch does not grow with the file count (0.63–1.07 ms at 1,000 files, 0.68–0.75 ms at
//! 10,000, where the root tree has 100 entries instead of 10), while the loop's cost
//! triples. Runs started right after another run's repositories were removed gave
//! 1.3–2.6 ms at 1,000 files against 17–18 ms for the loop (7–14×); their 10,000-file
//! rows, measured a minute later, were as above (0.71–0.77 ms against 60–63 ms).
//!
//! Instructions per patch (callgrind, 200 patches in a row, harness outside the tree;
//! libc's `rep stos` memset is counted per iteration, so zlib's table clearing looks far
//! larger than its time): 2.46 M → 1.61 M at 1,000 files, 3.31 M → 2.10 M at 10,000.
//!
//! Earlier figures, before these changes (quiet machine, load ≈ 2): 1.96 ms against 28.9 ms
//! at 1,000 files (≈ 15×), 1.5–2.0 ms against 71.6 ms at 10,000 (35–48×).

mod branch;
mod gate;
pub mod junit;
mod loose;
mod policy;
mod promotion;
pub mod reclaim;
pub mod refs;
pub mod tripwire;
pub mod workspace;

pub use branch::{
    AppliedCommit, ApplyError, BranchOptions, BranchStatus, CommitInfo, CommitSignature,
    IntegrationBranch, Role, SnapshotTag,
};
pub use gate::{
    Attempt, Classification, GateError, GateReport, GateVerdict, MAX_BACKOFF, PreflightGate,
    SHELL_CANNOT_RUN, classify,
};
pub use junit::{Baseline, JunitError, Outcome, TestResult, TestResults};
pub use policy::{
    ChangeKind, ChangedPath, CheckError, CheckedPatch, MAX_PATCH_BYTES, PatchPolicy,
    PolicyViolation, SizeLimits,
};
pub use promotion::{
    PromoteError, PromoteMode, PromoteOptions, Promotion, PromotionRecord, PromotionRefusal,
    TierOutcome, eligibility, promote,
};
pub use refs::{PatternError, ProtectedRefs};

/// Re-exported so callers can name object ids without depending on git2.
pub use git2::Oid;
