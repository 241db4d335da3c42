//! The patch policy: every rule of SPEC §8 and §13 checked before anything is committed.
//!
//! One check, in this order (the first rule broken is the refusal):
//!
//! 1. the patch's bytes ([`PatchLimits::max_patch_bytes`]), before anything reads it;
//! 2. the raw header scan (`raw.rs`): absolute paths, path rules, binary markers, NUL;
//! 3. libgit2 parses it;
//! 4. per file: path rules (`paths.rs`: ours, git's own with NTFS/HFS+ protections,
//!    lengths), submodules, symlinks (`symlinks.rs`), binary, paths through a symlinked
//!    directory, protected paths (`protected.rs`), the scope;
//! 5. files, changed lines, the longest added line (`limits.rs`), and the test-integrity
//!    findings (`test_integrity.rs`), which hold the patch but do not refuse it;
//! 6. apply and splice (`splice.rs`, over the raw trees of `tree.rs`), where the
//!    post-image's file sizes and modes are checked.
//!
//! [`PatchPolicy::check`] and [`PatchPolicy::check_at`] run this one path; they differ
//! only in where the base comes from and whether the new objects are written.

mod direct;
mod limits;
mod lines;
mod paths;
mod protected;
mod raw;
mod splice;
mod symlinks;
mod test_integrity;
mod tree;
mod violation;

use std::collections::BTreeSet;
use std::path::Path;

use autopack_core::patch_rules::{PatchHold, PatchLimits, PathLimits, ProtectedPath};
use autopack_core::vocabulary::BuilderMode;
use git2::{Delta, Diff, Oid, Repository};
use globset::GlobSet;

use crate::branch::IntegrationBranch;
use crate::loose::LooseWriter;
use crate::refs::{PatternError, compile_globs};

pub use test_integrity::is_test_path;
pub(crate) use tree::TreeCache;
use tree::{MODE_COMMIT, MODE_LINK, Trees};
pub use violation::{CheckError, PolicyViolation, SymlinkChange};

/// The largest patch any host reads at all, in bytes (8 MiB): the default of the host's
/// ceiling (`GitApplier`, the `autopack` CLI's `--max-patch-bytes`), which narrows each
/// builder mode's [`PatchLimits::max_patch_bytes`] but never widens it.
pub const MAX_PATCH_BYTES: u64 = 8 * autopack_core::limits::MIB;

/// What a patch may do: size limits, path limits, the phase's scope, protected paths, and
/// whether symlinks may be touched.
#[derive(Debug, Clone)]
pub struct PatchPolicy {
    limits: PatchLimits,
    path_limits: PathLimits,
    mode: Option<String>,
    scope: Vec<String>,
    scope_set: Option<GlobSet>,
    protected: protected::Protected,
    allow_symlinks: bool,
}

impl PatchPolicy {
    /// The policy for a builder mode: its [`PatchLimits`] (`PatchLimits::for_mode`), the
    /// default [`PathLimits`], no scope, the default protected paths
    /// (`autopack_core::patch_rules::DEFAULT_PROTECTED_PATTERNS`, refused; a host replaces
    /// them with the ruleset's through [`PatchPolicy::protect`]), no symlinks. Refusals of
    /// a size limit name the mode.
    pub fn for_mode(mode: &BuilderMode) -> PatchPolicy {
        let mut policy = PatchPolicy::with_limits(PatchLimits::for_mode(mode));
        policy.mode = Some(mode.as_str().to_owned());
        policy
    }

    /// A policy with explicit limits, default path limits, no scope, the default
    /// protected paths, no symlinks. Protection is on unless a caller replaces it: a policy
    /// built without thinking about it still refuses CI configuration and the run's files.
    pub fn with_limits(limits: PatchLimits) -> PatchPolicy {
        PatchPolicy {
            limits,
            path_limits: PathLimits::default(),
            mode: None,
            scope: Vec::new(),
            scope_set: None,
            protected: protected::Protected::defaults(),
            allow_symlinks: false,
        }
    }

    /// Replaces the size limits, keeping the builder mode named in refusals (a mode's
    /// limits with a ruleset's overrides).
    pub fn limited_to(mut self, limits: PatchLimits) -> PatchPolicy {
        self.limits = limits;
        self
    }

    /// Replaces the path length limits.
    pub fn with_path_limits(mut self, limits: PathLimits) -> PatchPolicy {
        self.path_limits = limits;
        self
    }

    /// Sets [`PatchLimits::max_patch_bytes`]: longer patches are refused with
    /// [`PolicyViolation::PatchTooLarge`] before they are parsed.
    pub fn with_max_patch_bytes(mut self, bytes: u64) -> PatchPolicy {
        self.limits.max_patch_bytes = bytes;
        self
    }

    /// The largest patch accepted, in bytes ([`PatchLimits::max_patch_bytes`]).
    pub fn max_patch_bytes(&self) -> u64 {
        self.limits.max_patch_bytes
    }

    /// Restricts every touched path to these globs (`*` stays within a directory, `**`
    /// crosses). An empty list means no scope.
    ///
    /// # Errors
    /// A [`PatternError`] for a glob that does not compile.
    pub fn scope<S: AsRef<str>>(mut self, globs: &[S]) -> Result<PatchPolicy, PatternError> {
        self.scope = globs.iter().map(|g| g.as_ref().to_owned()).collect();
        self.scope_set = if self.scope.is_empty() {
            None
        } else {
            Some(compile_globs(&self.scope)?)
        };
        Ok(self)
    }

    /// Protected paths, whatever the scope (for example
    /// `autopack_core::patch_rules::default_protected_paths(&ci_commands)`): a patch whose
    /// old or new path matches a `Refuse` rule is refused
    /// ([`PolicyViolation::ProtectedPath`]); one matching only `AuditorApprove` rules is
    /// accepted with a [`PatchHold::ProtectedPath`]. Replaces earlier rules.
    ///
    /// # Errors
    /// A [`PatternError`] for a glob that does not compile.
    pub fn protect(mut self, rules: &[ProtectedPath]) -> Result<PatchPolicy, PatternError> {
        self.protected = protected::Protected::new(rules)?;
        Ok(self)
    }

    /// The protected-path rules.
    pub fn protected(&self) -> &[ProtectedPath] {
        self.protected.rules()
    }

    /// Whether a patch may create symlinks and edit or retype tracked ones (default
    /// `false`: [`PolicyViolation::Symlink`]). Paths through a symlinked directory are
    /// refused either way.
    pub fn allow_symlinks(mut self, allow: bool) -> PatchPolicy {
        self.allow_symlinks = allow;
        self
    }

    /// The size limits.
    pub fn limits(&self) -> PatchLimits {
        self.limits
    }

    /// The path length limits.
    pub fn path_limits(&self) -> PathLimits {
        self.path_limits
    }

    /// Checks `patch` against every rule and computes the resulting tree on `branch`'s
    /// current tip. Nothing but unreferenced objects (the post-image blobs and the trees
    /// along the changed paths) is written to the object database; no ref, no index, no
    /// work-tree file. The scratch tree the patch is applied to stays in memory.
    ///
    /// # Errors
    /// [`CheckError::Violation`] naming the first rule broken and its path, or
    /// [`CheckError::Git`] when the repository itself fails, [`CheckError::Io`] when an
    /// object file cannot be written.
    pub fn check(
        &self,
        branch: &IntegrationBranch,
        patch: &[u8],
    ) -> Result<CheckedPatch, CheckError> {
        // The size first: reading the tip costs more than refusing a huge patch.
        limits::check_patch_bytes(patch, &self.limits, self.mode.as_deref())?;
        let base_tip = branch.tip().map_err(|e| CheckError::Branch(Box::new(e)))?;
        self.check_on(
            Target {
                repo: branch.repo(),
                base_tip,
                cache: branch.tree_cache(),
                writer: Some(branch.loose()),
                branch_ref: branch.ref_name(),
            },
            patch,
        )
    }

    /// The same check as [`PatchPolicy::check`] (the same code, rule for rule) on the
    /// commit `base_commit` of `repo`, writing nothing at all: no object, no ref, no file
    /// (`autopack patch check`). The result's tree id is the one a real check would give,
    /// but its objects do not exist; the result names no branch, so no branch commits it.
    ///
    /// # Errors
    /// As [`PatchPolicy::check`]; [`CheckError::Git`] when `base_commit` is not a commit.
    pub fn check_at(
        &self,
        repo: &Repository,
        base_commit: Oid,
        patch: &[u8],
    ) -> Result<CheckedPatch, CheckError> {
        let cache = TreeCache::default();
        self.check_on(
            Target {
                repo,
                base_tip: base_commit,
                cache: &cache,
                writer: None,
                branch_ref: "",
            },
            patch,
        )
    }

    /// The one check behind [`PatchPolicy::check`] and [`PatchPolicy::check_at`].
    fn check_on(&self, target: Target<'_>, patch: &[u8]) -> Result<CheckedPatch, CheckError> {
        let git = |op: &'static str| move |source| CheckError::Git { op, source };
        let mode = self.mode.as_deref();
        limits::check_patch_bytes(patch, &self.limits, mode)?;
        // Raw text rules (before libgit2, whose parser strips absolute paths).
        raw::scan_raw(patch, &self.path_limits)?;
        let diff = Diff::from_buffer(patch).map_err(|e| PolicyViolation::NotGitDiff {
            reason: e.message().to_owned(),
        })?;
        if diff.deltas().len() == 0 {
            return Err(PolicyViolation::NotGitDiff {
                reason: "no file changes found".into(),
            }
            .into());
        }
        let repo = target.repo;
        let base_tip = target.base_tip;
        let base_tree = match target.cache.tree_of(base_tip) {
            Some(tree) => tree,
            None => repo
                .find_commit(base_tip)
                .map(|c| c.tree_id())
                .map_err(git("read base tree"))?,
        };
        let mut trees = Trees::new(repo.odb().map_err(git("object store"))?, target.cache);
        // Per-file rules.
        let mut changes = Vec::new();
        let mut holds = Vec::new();
        let mut declared = BTreeSet::new();
        // Paths an earlier delta deletes: git writes a type change (a link becoming a
        // file) as a deletion and an addition of the same path.
        let mut deleted = BTreeSet::new();
        for delta in diff.deltas() {
            let change = self.check_delta(&delta, base_tree, &mut trees, &deleted, &mut holds)?;
            if change.kind == ChangeKind::Deleted {
                deleted.insert(change.path.clone());
            }
            declared.insert(change.path.clone());
            if let Some(old) = &change.old_path {
                declared.insert(old.clone());
            }
            changes.push(change);
        }
        // Sizes, then what the changed lines say about tests.
        let lines = lines::file_lines(&diff).map_err(git("read hunks"))?;
        limits::check_counts(&changes, &lines, &self.limits, mode)?;
        let pairs: Vec<_> = changes.iter().zip(lines.iter()).collect();
        for hold in test_integrity::findings(&pairs) {
            if !holds.contains(&hold) {
                holds.push(hold);
            }
        }
        let (insertions, deletions) = lines
            .iter()
            .fold((0, 0), |(i, d), l| (i + l.added.len(), d + l.removed.len()));
        // Apply to a scratch tree holding only the declared paths, then splice.
        let rules = splice::PostImageRules {
            max_file_bytes: self.limits.max_file_bytes,
            allow_symlinks: self.allow_symlinks,
            mode,
        };
        let tree = splice::apply_spliced(
            repo,
            target.writer,
            &mut trees,
            base_tree,
            &splice::Parsed {
                diff: &diff,
                files: &lines,
                declared: &declared,
            },
            &rules,
        )?;
        Ok(CheckedPatch {
            branch_ref: target.branch_ref.to_owned(),
            base_tip,
            tree,
            changes,
            insertions,
            deletions,
            holds,
        })
    }

    fn check_delta(
        &self,
        delta: &git2::DiffDelta<'_>,
        base: Oid,
        trees: &mut Trees<'_>,
        deleted: &BTreeSet<String>,
        holds: &mut Vec<PatchHold>,
    ) -> Result<ChangedPath, PolicyViolation> {
        let new_path = delta.new_file().path().map(path_string).transpose()?;
        let old_path = delta.old_file().path().map(path_string).transpose()?;
        let path = match (&new_path, &old_path) {
            (Some(p), _) | (None, Some(p)) => p.clone(),
            (None, None) => {
                return Err(PolicyViolation::NotGitDiff {
                    reason: "a file change without a path".into(),
                });
            }
        };
        let mut paths = vec![path.clone()];
        if let Some(old) = &old_path
            && *old != path
        {
            paths.push(old.clone());
        }
        for p in &paths {
            paths::check_path(p, &self.path_limits)?;
        }
        let old_mode = i32::from(delta.old_file().mode());
        let new_mode = i32::from(delta.new_file().mode());
        for p in &paths {
            if old_mode == MODE_COMMIT || new_mode == MODE_COMMIT || paths::is_gitmodules(p) {
                return Err(PolicyViolation::Submodule { path: p.clone() });
            }
        }
        for p in &paths {
            if let Some(symlink) = symlinks::symlinked_parent(trees, base, p) {
                return Err(PolicyViolation::ThroughSymlink {
                    path: p.clone(),
                    symlink,
                });
            }
        }
        // The tracked modes come from the base tree: a plain hunk on a symlink declares none.
        let source = old_path.as_deref().unwrap_or(&path);
        let base_old = trees.entry(base, source);
        let base_new = trees.entry(base, &path);
        if base_old.is_some_and(|(_, m)| m == MODE_COMMIT) {
            return Err(PolicyViolation::Submodule {
                path: source.to_owned(),
            });
        }
        if !self.allow_symlinks
            && let Some(change) = symlinks::symlink_change(
                delta.status(),
                new_mode,
                base_old.map(|(_, m)| m),
                base_new.map(|(_, m)| m),
            )
        {
            let at = if change != SymlinkChange::Created
                && base_old.is_some_and(|(_, m)| m == MODE_LINK)
            {
                source
            } else {
                &path
            };
            return Err(symlinks::refuse(at, change));
        }
        if delta.flags().is_binary() {
            return Err(PolicyViolation::Binary { path });
        }
        for p in &paths {
            if let Some(hold) = self.protected.check(p)?
                && !holds.contains(&hold)
            {
                holds.push(hold);
            }
            if let Some(scope) = &self.scope_set
                && !scope.is_match(p)
            {
                return Err(PolicyViolation::OutsideScope {
                    path: p.clone(),
                    scope: self.scope.clone(),
                });
            }
        }
        if matches!(
            delta.status(),
            Delta::Added | Delta::Renamed | Delta::Copied
        ) && base_new.is_some()
            && !deleted.contains(&path)
        {
            return Err(PolicyViolation::DoesNotApply {
                path,
                reason: "the file to create already exists".into(),
            });
        }
        let kind = match delta.status() {
            Delta::Added => ChangeKind::Added,
            Delta::Deleted => ChangeKind::Deleted,
            Delta::Renamed => ChangeKind::Renamed,
            Delta::Copied => ChangeKind::Copied,
            _ => ChangeKind::Modified,
        };
        let old_path = match kind {
            ChangeKind::Renamed | ChangeKind::Copied => old_path,
            _ => None,
        };
        Ok(ChangedPath {
            path,
            old_path,
            kind,
        })
    }
}

/// Where a check reads its base and whether it writes.
struct Target<'a> {
    repo: &'a Repository,
    base_tip: Oid,
    cache: &'a TreeCache,
    /// `None`: a dry check, nothing is written.
    writer: Option<&'a LooseWriter>,
    branch_ref: &'a str,
}

/// A header path as text; a path that is not UTF-8 is refused (git stores bytes, but every
/// rule here, the scope and the protected globs read text).
fn path_string(p: &Path) -> Result<String, PolicyViolation> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| PolicyViolation::MalformedPath {
            path: p.to_string_lossy().into_owned(),
        })
}

/// How a file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new file.
    Added,
    /// An edited file (content or executable bit).
    Modified,
    /// A removed file.
    Deleted,
    /// A moved file (possibly edited).
    Renamed,
    /// A copied file (possibly edited).
    Copied,
}

/// One file a checked patch touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedPath {
    /// The path after the change (the removed path for a deletion).
    pub path: String,
    /// The source of a rename or copy.
    pub old_path: Option<String>,
    /// What happens to it.
    pub kind: ChangeKind,
}

/// A patch that passed every rule, with the tree it produces on the tip it was checked
/// against, and the holds it carries. Only [`IntegrationBranch::commit`] (and
/// `commit_candidate`) consume it; one from [`PatchPolicy::check_at`] names no branch and
/// is refused by both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPatch {
    branch_ref: String,
    base_tip: Oid,
    tree: Oid,
    changes: Vec<ChangedPath>,
    insertions: usize,
    deletions: usize,
    holds: Vec<PatchHold>,
}

impl CheckedPatch {
    /// The branch it was checked on.
    pub fn branch_ref(&self) -> &str {
        &self.branch_ref
    }
    /// The tip it was checked against (the parent of its commit).
    pub fn base_tip(&self) -> Oid {
        self.base_tip
    }
    /// The resulting tree.
    pub fn tree(&self) -> Oid {
        self.tree
    }
    /// The files it touches, in patch order.
    pub fn changes(&self) -> &[ChangedPath] {
        &self.changes
    }
    /// Inserted lines.
    pub fn insertions(&self) -> usize {
        self.insertions
    }
    /// Deleted lines.
    pub fn deletions(&self) -> usize {
        self.deletions
    }
    /// Why the patch may go on only after an Auditor `approve`: protected paths whose rule
    /// says so, and test-integrity findings (the phase becomes `test_integrity` risk).
    /// Empty for an ordinary patch.
    pub fn holds(&self) -> &[PatchHold] {
        &self.holds
    }
}
