//! The patch policy: every rule of SPEC §8 checked before anything is committed.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use autopack_core::vocabulary::BuilderMode;
use git2::{Config, Delta, Diff, Index, IndexEntry, IndexTime, ObjectType, Odb, Oid, Repository};
use globset::GlobSet;

use crate::branch::IntegrationBranch;
use crate::refs::{PatternError, compile_globs};

const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_COMMIT: i32 = 0o160000;
const MODE_BLOB: i32 = 0o100644;
const MODE_EXEC: i32 = 0o100755;

/// Default largest patch, in bytes (8 MiB): a longer patch is refused
/// ([`PolicyViolation::PatchTooLarge`]) before it is parsed. Raise it with
/// [`PatchPolicy::with_max_patch_bytes`] (the `autopack` CLI: `--max-patch-bytes`).
pub const MAX_PATCH_BYTES: u64 = 8 * autopack_core::limits::MIB;

/// Size limits of one patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Most files a patch may touch (a rename counts once).
    pub max_files: usize,
    /// Most changed lines (insertions + deletions).
    pub max_changed_lines: usize,
}

impl SizeLimits {
    /// Defaults per builder mode:
    ///
    /// | mode | files | changed lines |
    /// |---|---|---|
    /// | `tweak_light` | 2 | 200 |
    /// | `schema_heavy` | 15 | 1,500 |
    /// | `scaffolding_heavy` | 40 | 4,000 |
    /// | `refactor_heavy` | 60 | 3,000 |
    /// | any other label | 10 | 800 |
    pub fn for_mode(mode: &BuilderMode) -> SizeLimits {
        let (max_files, max_changed_lines) = match mode {
            BuilderMode::TweakLight => (2, 200),
            BuilderMode::SchemaHeavy => (15, 1_500),
            BuilderMode::ScaffoldingHeavy => (40, 4_000),
            BuilderMode::RefactorHeavy => (60, 3_000),
            BuilderMode::Other(_) => (10, 800),
        };
        SizeLimits {
            max_files,
            max_changed_lines,
        }
    }
}

/// What a patch may do: size limits, the phase's scope, and paths never writable.
#[derive(Debug, Clone)]
pub struct PatchPolicy {
    limits: SizeLimits,
    scope: Vec<String>,
    scope_set: Option<GlobSet>,
    protected_paths: Vec<String>,
    protected_set: GlobSet,
    max_patch_bytes: u64,
}

impl PatchPolicy {
    /// The policy for a builder mode: its [`SizeLimits`], no scope, no protected paths.
    pub fn for_mode(mode: &BuilderMode) -> PatchPolicy {
        PatchPolicy::with_limits(SizeLimits::for_mode(mode))
    }

    /// A policy with explicit limits, no scope, no protected paths.
    pub fn with_limits(limits: SizeLimits) -> PatchPolicy {
        PatchPolicy {
            limits,
            scope: Vec::new(),
            scope_set: None,
            protected_paths: Vec::new(),
            protected_set: GlobSet::empty(),
            max_patch_bytes: MAX_PATCH_BYTES,
        }
    }

    /// Refuses patches longer than `bytes` (default [`MAX_PATCH_BYTES`]) with
    /// [`PolicyViolation::PatchTooLarge`], before they are parsed.
    pub fn with_max_patch_bytes(mut self, bytes: u64) -> PatchPolicy {
        self.max_patch_bytes = bytes;
        self
    }

    /// The largest patch accepted, in bytes.
    pub fn max_patch_bytes(&self) -> u64 {
        self.max_patch_bytes
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

    /// Paths no patch may touch, whatever the scope (for example `.github/workflows/**`).
    ///
    /// # Errors
    /// A [`PatternError`] for a glob that does not compile.
    pub fn protected_paths<S: AsRef<str>>(
        mut self,
        globs: &[S],
    ) -> Result<PatchPolicy, PatternError> {
        self.protected_paths = globs.iter().map(|g| g.as_ref().to_owned()).collect();
        self.protected_set = compile_globs(&self.protected_paths)?;
        Ok(self)
    }

    /// The size limits.
    pub fn limits(&self) -> SizeLimits {
        self.limits
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
        let git = |op: &'static str| move |source| CheckError::Git { op, source };
        // 0. Size, before anything reads the text.
        let bytes = autopack_core::limits::len_u64(patch);
        if bytes > self.max_patch_bytes {
            return Err(PolicyViolation::PatchTooLarge {
                bytes,
                max: self.max_patch_bytes,
            }
            .into());
        }
        // 1. Raw text rules (before libgit2, whose parser strips absolute paths).
        scan_raw(patch)?;
        // 2. Parse.
        let diff = Diff::from_buffer(patch).map_err(|e| PolicyViolation::NotGitDiff {
            reason: e.message().to_owned(),
        })?;
        if diff.deltas().len() == 0 {
            return Err(PolicyViolation::NotGitDiff {
                reason: "no file changes found".into(),
            }
            .into());
        }
        let repo = branch.repo();
        let base_tip = branch.tip().map_err(|e| CheckError::Branch(Box::new(e)))?;
        let cache = branch.tree_cache();
        let base_tree = match cache.tree_of(base_tip) {
            Some(tree) => tree,
            None => repo
                .find_commit(base_tip)
                .map(|c| c.tree_id())
                .map_err(git("read base tree"))?,
        };
        let mut trees = Trees::new(repo.odb().map_err(git("object store"))?, cache);
        // 3. Per-file rules.
        let mut changes = Vec::new();
        let mut declared = BTreeSet::new();
        for delta in diff.deltas() {
            let change = self.check_delta(&delta, base_tree, &mut trees)?;
            declared.insert(change.path.clone());
            if let Some(old) = &change.old_path {
                declared.insert(old.clone());
            }
            changes.push(change);
        }
        // 4. Size.
        let stats = diff.stats().map_err(git("diff stats"))?;
        let lines = stats.insertions() + stats.deletions();
        if changes.len() > self.limits.max_files {
            return Err(PolicyViolation::TooManyFiles {
                files: changes.len(),
                max: self.limits.max_files,
                path: changes.last().map(|c| c.path.clone()).unwrap_or_default(),
            }
            .into());
        }
        if lines > self.limits.max_changed_lines {
            return Err(PolicyViolation::TooManyLines {
                lines,
                max: self.limits.max_changed_lines,
                path: changes.first().map(|c| c.path.clone()).unwrap_or_default(),
            }
            .into());
        }
        // 5. Apply to a scratch tree holding only the declared paths, then splice.
        let tree = apply_spliced(branch, &mut trees, base_tree, &diff, &declared)?;
        Ok(CheckedPatch {
            branch_ref: branch.ref_name().to_owned(),
            base_tip,
            tree,
            changes,
            insertions: stats.insertions(),
            deletions: stats.deletions(),
        })
    }

    fn check_delta(
        &self,
        delta: &git2::DiffDelta<'_>,
        base: Oid,
        trees: &mut Trees<'_>,
    ) -> Result<ChangedPath, PolicyViolation> {
        let new_path = delta.new_file().path().map(path_string);
        let old_path = delta.old_file().path().map(path_string);
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
            check_components(p)?;
        }
        let old_mode = i32::from(delta.old_file().mode());
        let new_mode = i32::from(delta.new_file().mode());
        for p in &paths {
            if old_mode == MODE_COMMIT || new_mode == MODE_COMMIT || is_gitmodules(p) {
                return Err(PolicyViolation::Submodule { path: p.clone() });
            }
        }
        if delta.status() != Delta::Deleted && new_mode == MODE_LINK {
            return Err(PolicyViolation::Symlink { path });
        }
        if delta.flags().is_binary() {
            return Err(PolicyViolation::Binary { path });
        }
        for p in &paths {
            if let Some(symlink) = symlinked_parent(trees, base, p) {
                return Err(PolicyViolation::ThroughSymlink {
                    path: p.clone(),
                    symlink,
                });
            }
        }
        for p in &paths {
            if let Some(i) = self.protected_set.matches(p).into_iter().min() {
                let pattern = self.protected_paths.get(i).cloned().unwrap_or_default();
                return Err(PolicyViolation::ProtectedPath {
                    path: p.clone(),
                    pattern,
                });
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
        ) && trees.entry(base, &path).is_some()
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
/// against. Only [`IntegrationBranch::commit`] consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPatch {
    branch_ref: String,
    base_tip: Oid,
    tree: Oid,
    changes: Vec<ChangedPath>,
    insertions: usize,
    deletions: usize,
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
}

/// A rule a patch broke. Each names the rule (see [`PolicyViolation::rule`]) and the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// The patch is longer than the policy's byte limit ([`MAX_PATCH_BYTES`] by default).
    #[error(
        "patch_too_large: the patch has {bytes} bytes, at most {max} allowed (raise the limit with --max-patch-bytes / PatchPolicy::with_max_patch_bytes)"
    )]
    PatchTooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The text is not a git-format diff (no `diff --git` header, or libgit2 cannot parse it).
    #[error("not_git_diff: the patch is not a git-format diff: {reason}")]
    NotGitDiff {
        /// Why.
        reason: String,
    },
    /// A header names an absolute path.
    #[error("absolute_path: {path:?} is absolute")]
    AbsolutePath {
        /// The header's path, as written.
        path: String,
    },
    /// A path has a `..` component.
    #[error("parent_component: {path:?} has a '..' component")]
    ParentComponent {
        /// The path.
        path: String,
    },
    /// A path has a `.git` component (any case).
    #[error("git_dir_component: {path:?} has a '.git' component")]
    GitDirComponent {
        /// The path.
        path: String,
    },
    /// A path is empty, has an empty component, a `.` component, a backslash or a NUL.
    #[error("malformed_path: {path:?} is not a plain relative path")]
    MalformedPath {
        /// The path.
        path: String,
    },
    /// A new symlink, or a file turned into (or kept as) a symlink (mode 120000).
    #[error("symlink: {path:?} would be a symlink (mode 120000)")]
    Symlink {
        /// The path.
        path: String,
    },
    /// A submodule entry (mode 160000) or `.gitmodules`.
    #[error("submodule: {path:?} is a submodule entry or .gitmodules")]
    Submodule {
        /// The path.
        path: String,
    },
    /// The path goes through a directory that is a symlink in the base tree.
    #[error("through_symlink: {path:?} goes through the symlink {symlink:?}")]
    ThroughSymlink {
        /// The path.
        path: String,
        /// The symlinked ancestor.
        symlink: String,
    },
    /// Binary content (a binary patch, a `Binary files` marker or a NUL byte).
    #[error("binary: {path:?} has binary content")]
    Binary {
        /// The path (empty when the NUL byte precedes every header).
        path: String,
    },
    /// The path matches a protected path pattern.
    #[error("protected_path: {path:?} matches the protected pattern {pattern:?}")]
    ProtectedPath {
        /// The path.
        path: String,
        /// The pattern.
        pattern: String,
    },
    /// The path is outside the phase's scope.
    #[error("outside_scope: {path:?} matches none of the scope globs {scope:?}")]
    OutsideScope {
        /// The path.
        path: String,
        /// The scope.
        scope: Vec<String>,
    },
    /// More files than the builder mode allows.
    #[error("too_many_files: {files} files, at most {max} allowed (last: {path:?})")]
    TooManyFiles {
        /// Files touched.
        files: usize,
        /// The limit.
        max: usize,
        /// The last file.
        path: String,
    },
    /// More changed lines than the builder mode allows.
    #[error("too_many_lines: {lines} changed lines, at most {max} allowed (first file: {path:?})")]
    TooManyLines {
        /// Insertions + deletions.
        lines: usize,
        /// The limit.
        max: usize,
        /// The first file.
        path: String,
    },
    /// The patch does not apply to the branch tip.
    #[error("does_not_apply: patch does not apply at {path:?}: {reason}")]
    DoesNotApply {
        /// The file (or the first declared file when libgit2 does not say).
        path: String,
        /// libgit2's reason.
        reason: String,
    },
    /// The applied tree differs from the declared paths.
    #[error("tree_mismatch: {path:?} {reason}")]
    TreeMismatch {
        /// The path.
        path: String,
        /// `changed but not declared`, `declared but unchanged`, or a bad mode.
        reason: String,
    },
}

impl PolicyViolation {
    /// The rule's stable name (`absolute_path`, `outside_scope`, …), as used in messages.
    pub const fn rule(&self) -> &'static str {
        match self {
            PolicyViolation::PatchTooLarge { .. } => "patch_too_large",
            PolicyViolation::NotGitDiff { .. } => "not_git_diff",
            PolicyViolation::AbsolutePath { .. } => "absolute_path",
            PolicyViolation::ParentComponent { .. } => "parent_component",
            PolicyViolation::GitDirComponent { .. } => "git_dir_component",
            PolicyViolation::MalformedPath { .. } => "malformed_path",
            PolicyViolation::Symlink { .. } => "symlink",
            PolicyViolation::Submodule { .. } => "submodule",
            PolicyViolation::ThroughSymlink { .. } => "through_symlink",
            PolicyViolation::Binary { .. } => "binary",
            PolicyViolation::ProtectedPath { .. } => "protected_path",
            PolicyViolation::OutsideScope { .. } => "outside_scope",
            PolicyViolation::TooManyFiles { .. } => "too_many_files",
            PolicyViolation::TooManyLines { .. } => "too_many_lines",
            PolicyViolation::DoesNotApply { .. } => "does_not_apply",
            PolicyViolation::TreeMismatch { .. } => "tree_mismatch",
        }
    }
}

/// Errors of [`PatchPolicy::check`].
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The patch broke a rule.
    #[error(transparent)]
    Violation(#[from] PolicyViolation),
    /// The branch could not be read.
    #[error(transparent)]
    Branch(Box<crate::branch::ApplyError>),
    /// The repository failed.
    #[error("git: {op} failed: {source}")]
    Git {
        /// What was being done.
        op: &'static str,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// Writing an object file failed.
    #[error("io: {op} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl CheckError {
    /// The violation, when the patch broke a rule.
    pub fn violation(&self) -> Option<&PolicyViolation> {
        match self {
            CheckError::Violation(v) => Some(v),
            _ => None,
        }
    }
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn is_gitmodules(path: &str) -> bool {
    path.split('/')
        .any(|c| c.eq_ignore_ascii_case(".gitmodules"))
}

/// Component rules on one (relative, `/`-separated) path.
fn check_components(path: &str) -> Result<(), PolicyViolation> {
    let owned = || path.to_owned();
    if path.starts_with('/') {
        return Err(PolicyViolation::AbsolutePath { path: owned() });
    }
    let comps: Vec<&str> = path.split('/').collect();
    if comps.contains(&"..") {
        return Err(PolicyViolation::ParentComponent { path: owned() });
    }
    if comps.iter().any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(PolicyViolation::GitDirComponent { path: owned() });
    }
    if path.is_empty()
        || comps.iter().any(|c| c.is_empty() || *c == ".")
        || path.contains(['\\', '\0'])
    {
        return Err(PolicyViolation::MalformedPath { path: owned() });
    }
    Ok(())
}

/// The first proper ancestor of `path` that is a symlink in `base`.
fn symlinked_parent(trees: &mut Trees<'_>, base: Oid, path: &str) -> Option<String> {
    let mut prefix = String::new();
    let comps: Vec<&str> = path.split('/').collect();
    for comp in comps.iter().take(comps.len().saturating_sub(1)) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
        match trees.entry(base, &prefix) {
            Some((_, MODE_LINK)) => return Some(prefix),
            Some((_, MODE_TREE)) => {}
            _ => return None,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Raw header scan.

struct RawScan {
    section: String,
    /// Remaining (old, new) lines of the current hunk; `None` outside hunks.
    hunk: Option<(u64, u64)>,
    saw_diff_git: bool,
}

fn scan_raw(patch: &[u8]) -> Result<(), PolicyViolation> {
    let mut st = RawScan {
        section: String::new(),
        hunk: None,
        saw_diff_git: false,
    };
    for raw in patch.split(|b| *b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.contains(&0) {
            return Err(PolicyViolation::Binary {
                path: st.section.clone(),
            });
        }
        if let Some((old, new)) = st.hunk {
            match line.first() {
                Some(b' ') => st.hunk = Some((old.saturating_sub(1), new.saturating_sub(1))),
                Some(b'-') => st.hunk = Some((old.saturating_sub(1), new)),
                Some(b'+') => st.hunk = Some((old, new.saturating_sub(1))),
                Some(b'\\') => {}
                // An empty line inside a hunk is an empty context line for some tools.
                None => st.hunk = Some((old.saturating_sub(1), new.saturating_sub(1))),
                _ => st.hunk = None,
            }
            if st.hunk.is_some() {
                if st.hunk == Some((0, 0)) {
                    st.hunk = None;
                }
                continue;
            }
        }
        scan_header_line(&mut st, &String::from_utf8_lossy(line))?;
    }
    if !st.saw_diff_git {
        return Err(PolicyViolation::NotGitDiff {
            reason: "no 'diff --git' header".into(),
        });
    }
    Ok(())
}

fn scan_header_line(st: &mut RawScan, line: &str) -> Result<(), PolicyViolation> {
    if let Some(rest) = line.strip_prefix("diff --git ") {
        st.saw_diff_git = true;
        st.section = rest.to_owned();
        let (a, b) = split_diff_git(rest);
        for (p, prefix) in [(a, "a/"), (b, "b/")] {
            let p = unquote(&p);
            let stripped = p.strip_prefix(prefix).unwrap_or(&p);
            if p.starts_with('/') || stripped.starts_with('/') {
                return Err(PolicyViolation::AbsolutePath { path: p.clone() });
            }
        }
        if rest.contains(" /") || rest.contains(" b//") || rest.contains(" \"/") {
            return Err(PolicyViolation::AbsolutePath {
                path: rest.to_owned(),
            });
        }
        let (a, b) = split_diff_git(rest);
        for (p, prefix) in [(a, "a/"), (b, "b/")] {
            let p = unquote(&p);
            check_components(p.strip_prefix(prefix).unwrap_or(&p))?;
        }
        if let Some(first) = split_diff_git(rest).0.strip_prefix("a/") {
            st.section = first.to_owned();
        }
    } else if let Some(rest) = line
        .strip_prefix("--- ")
        .or_else(|| line.strip_prefix("+++ "))
    {
        let prefix = if line.starts_with("---") { "a/" } else { "b/" };
        let p = unquote(rest.split('\t').next().unwrap_or(rest).trim_end());
        if p == "/dev/null" {
            return Ok(());
        }
        let stripped = p.strip_prefix(prefix).unwrap_or(&p);
        if p.starts_with('/') || stripped.starts_with('/') {
            return Err(PolicyViolation::AbsolutePath { path: p.clone() });
        }
        check_components(stripped)?;
    } else if let Some(rest) = ["rename from ", "rename to ", "copy from ", "copy to "]
        .iter()
        .find_map(|k| line.strip_prefix(k))
    {
        let p = unquote(rest);
        check_components(&p)?;
    } else if line.starts_with("GIT binary patch") || line.starts_with("Binary files ") {
        return Err(PolicyViolation::Binary {
            path: st.section.clone(),
        });
    } else if let Some(rest) = line.strip_prefix("@@ -") {
        st.hunk = parse_hunk_counts(rest);
    }
    Ok(())
}

/// `a,b +c,d @@` → remaining (old, new) line counts.
fn parse_hunk_counts(rest: &str) -> Option<(u64, u64)> {
    let (old, rest) = rest.split_once(" +")?;
    let new = rest.split_once(" @@")?.0;
    let count = |s: &str| -> Option<u64> {
        match s.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => s.parse::<u64>().ok().map(|_| 1),
        }
    };
    let counts = (count(old)?, count(new)?);
    if counts == (0, 0) { None } else { Some(counts) }
}

/// Splits the paths of a `diff --git` line (best effort for unquoted names with spaces).
fn split_diff_git(rest: &str) -> (String, String) {
    if let Some(stripped) = rest.strip_prefix('"')
        && let Some(end) = find_closing_quote(stripped)
    {
        let a = format!("\"{}", &stripped[..=end]);
        let b = stripped[end + 1..].trim_start().to_owned();
        return (a, b);
    }
    if let Some(i) = rest
        .find(" b/")
        .or_else(|| rest.find(" \"b/"))
        .or_else(|| rest.rfind(' '))
    {
        return (rest[..i].to_owned(), rest[i + 1..].to_owned());
    }
    (rest.to_owned(), String::new())
}

fn find_closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Undoes git's C-style quoting of a path (`"a/\303\251"`); unquoted input is returned as is.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return s.to_owned();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------
// Applying: a scratch tree with only the declared paths, libgit2's apply, then a splice of
// the results into the base tree. The cost grows with the patch and the depth of its
// paths, not with the size of the repository.

/// Raw tree objects a branch handle has read or written, and the tree of the last commit it
/// wrote: the base of a check is usually the tree the previous commit wrote, and its
/// directories are often the ones the previous patches touched. Reading one back costs a
/// file read, an inflate and a hash check (a directory of a hundred files is larger than
/// libgit2's object cache takes). Objects are immutable, so entries never go stale; the
/// cache is emptied when it would exceed [`TREE_CACHE_BYTES`].
#[derive(Default)]
pub(crate) struct TreeCache {
    trees: RefCell<HashMap<Oid, Arc<Vec<u8>>>>,
    bytes: Cell<usize>,
    last_commit: Cell<Option<(Oid, Oid)>>,
}

/// Upper bound of [`TreeCache`]'s tree bytes.
const TREE_CACHE_BYTES: usize = 16 << 20;

impl TreeCache {
    fn get(&self, id: Oid) -> Option<Arc<Vec<u8>>> {
        self.trees.borrow().get(&id).cloned()
    }

    fn put(&self, id: Oid, bytes: Arc<Vec<u8>>) {
        let mut trees = self.trees.borrow_mut();
        if self.bytes.get() + bytes.len() > TREE_CACHE_BYTES {
            trees.clear();
            self.bytes.set(0);
        }
        let len = bytes.len();
        if trees.insert(id, bytes).is_none() {
            self.bytes.set(self.bytes.get() + len);
        }
    }

    /// Remembers that `commit` (just written) has the tree `tree`.
    pub(crate) fn note_commit(&self, commit: Oid, tree: Oid) {
        self.last_commit.set(Some((commit, tree)));
    }

    fn tree_of(&self, commit: Oid) -> Option<Oid> {
        self.last_commit
            .get()
            .and_then(|(c, tree)| (c == commit).then_some(tree))
    }
}

/// The trees a check reads, through the branch's [`TreeCache`].
pub(crate) struct Trees<'r> {
    odb: Odb<'r>,
    cache: &'r TreeCache,
}

impl<'r> Trees<'r> {
    pub(crate) fn new(odb: Odb<'r>, cache: &'r TreeCache) -> Trees<'r> {
        Trees { odb, cache }
    }

    fn raw(&mut self, id: Oid) -> Result<Arc<Vec<u8>>, git2::Error> {
        if let Some(bytes) = self.cache.get(id) {
            return Ok(bytes);
        }
        let object = self.odb.read(id)?;
        if object.kind() != ObjectType::Tree {
            return Err(git2::Error::from_str(&format!("{id} is not a tree")));
        }
        let bytes = Arc::new(object.data().to_vec());
        self.cache.put(id, Arc::clone(&bytes));
        Ok(bytes)
    }

    /// The id and mode at `path` (`/`-separated) under the tree `root`; `None` when there
    /// is none (or a tree on the way cannot be read).
    fn entry(&mut self, root: Oid, path: &str) -> Option<(Oid, i32)> {
        let mut tree = root;
        let mut comps = path.split('/').peekable();
        while let Some(comp) = comps.next() {
            let bytes = self.raw(tree).ok()?;
            let found = parse_tree(&bytes)
                .ok()?
                .into_iter()
                .find(|e| e.name == comp.as_bytes())?;
            if comps.peek().is_none() {
                return Some((found.id, found.mode));
            }
            if found.mode != MODE_TREE {
                return None;
            }
            tree = found.id;
        }
        None
    }
}

/// One entry of a tree object: `{mode} {name}\0{id}` at `span` in the object's bytes.
struct RawEntry<'a> {
    mode: i32,
    name: &'a [u8],
    id: Oid,
    span: std::ops::Range<usize>,
}

fn parse_tree(bytes: &[u8]) -> Result<Vec<RawEntry<'_>>, git2::Error> {
    let bad = || git2::Error::from_str("malformed tree object");
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let nul = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
        if nul < space || rest.len() < nul + 21 {
            return Err(bad());
        }
        let mode = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|m| i32::from_str_radix(m, 8).ok())
            .ok_or_else(bad)?;
        let id = Oid::from_bytes(&rest[nul + 1..nul + 21])?;
        out.push(RawEntry {
            mode,
            name: &rest[space + 1..nul],
            id,
            span: at..at + nul + 21,
        });
        at += nul + 21;
    }
    Ok(out)
}

/// Git's order of tree entries: by name, a tree's name read as if it ended in `/`.
fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let end = |name: &[u8], tree: bool| match name.get(n) {
            Some(c) => *c,
            None if tree => b'/',
            None => 0,
        };
        end(a, a_tree).cmp(&end(b, b_tree))
    })
}

/// An entry of a tree being rebuilt: kept from the base (its bytes are copied) or new.
enum Slot<'a> {
    Kept(&'a RawEntry<'a>),
    New { name: &'a [u8], mode: i32, id: Oid },
}

impl Slot<'_> {
    fn name(&self) -> &[u8] {
        match self {
            Slot::Kept(e) => e.name,
            Slot::New { name, .. } => name,
        }
    }

    fn mode(&self) -> i32 {
        match self {
            Slot::Kept(e) => e.mode,
            Slot::New { mode, .. } => *mode,
        }
    }
}

/// The tree object holding `slots`, in git's order.
fn serialize_tree(base: &[u8], mut slots: Vec<Slot<'_>>) -> Vec<u8> {
    slots.sort_by(|a, b| {
        git_order(
            a.name(),
            a.mode() == MODE_TREE,
            b.name(),
            b.mode() == MODE_TREE,
        )
    });
    let mut out = Vec::with_capacity(base.len() + 64);
    for slot in &slots {
        match slot {
            Slot::Kept(e) => out.extend_from_slice(&base[e.span.clone()]),
            Slot::New { name, mode, id } => {
                out.extend_from_slice(format!("{mode:o} ").as_bytes());
                out.extend_from_slice(name);
                out.push(0);
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
    out
}

fn apply_spliced(
    branch: &IntegrationBranch,
    trees: &mut Trees<'_>,
    base: Oid,
    diff: &Diff<'_>,
    declared: &BTreeSet<String>,
) -> Result<Oid, CheckError> {
    let git = |op: &'static str| move |source| CheckError::Git { op, source };
    let repo = branch.repo();
    let first = declared.iter().next().cloned().unwrap_or_default();
    // The scratch tree, libgit2's apply and the post-image blobs live in a repository whose
    // only object store is in memory; only the blobs and trees the new tree keeps are then
    // written to the repository, each once (creating a file in `.git/objects` costs more
    // than all the rest of a small patch's work).
    let scratch = Repository::from_odb(Odb::new().map_err(git("scratch object store"))?)
        .map_err(git("scratch repository"))?;
    // An empty configuration: nothing read from disk, and the user's settings (case
    // folding, file modes) cannot change how a patch applies to trees.
    scratch
        .set_config(&Config::new().map_err(git("scratch configuration"))?)
        .map_err(git("scratch configuration"))?;
    let scratch_odb = scratch.odb().map_err(git("scratch object store"))?;
    scratch_odb
        .add_new_mempack_backend(1)
        .map_err(git("scratch object store"))?;
    let odb = repo.odb().map_err(git("object store"))?;
    // Preimage of every declared path present in the base.
    let mut before: BTreeMap<String, (Oid, i32)> = BTreeMap::new();
    let mut scratch_index = Index::new().map_err(git("new index"))?;
    for path in declared {
        if let Some((id, mode)) = trees.entry(base, path) {
            if mode == MODE_TREE {
                // A file where the base has a directory: let libgit2 see a conflict.
                return Err(PolicyViolation::DoesNotApply {
                    path: path.clone(),
                    reason: "a directory exists at this path".into(),
                }
                .into());
            }
            // A gitlink's commit is usually absent; apply then fails as it would on disk.
            if let Ok(object) = odb.read(id) {
                scratch_odb
                    .write(object.kind(), object.data())
                    .map_err(git("copy preimage"))?;
            }
            before.insert(path.clone(), (id, mode));
            scratch_index
                .add(&index_entry(path, id, mode))
                .map_err(git("scratch index"))?;
        }
    }
    let scratch_tree_id = scratch_index
        .write_tree_to(&scratch)
        .map_err(git("write scratch tree"))?;
    let scratch_tree = scratch
        .find_tree(scratch_tree_id)
        .map_err(git("read scratch tree"))?;
    let post = scratch
        .apply_to_tree(&scratch_tree, diff, None)
        .map_err(|e| PolicyViolation::DoesNotApply {
            path: declared
                .iter()
                .find(|p| e.message().contains(p.as_str()))
                .cloned()
                .unwrap_or_else(|| first.clone()),
            reason: e.message().to_owned(),
        })?;
    // Post-image of the declared paths; anything else in the result is undeclared.
    let mut after: BTreeMap<String, (Oid, i32)> = BTreeMap::new();
    for entry in post.iter() {
        let path = String::from_utf8_lossy(&entry.path).into_owned();
        let mode = entry.mode as i32;
        if !declared.contains(&path) {
            return Err(PolicyViolation::TreeMismatch {
                path,
                reason: "changed but not declared".into(),
            }
            .into());
        }
        if mode != MODE_BLOB && mode != MODE_EXEC {
            return Err(PolicyViolation::TreeMismatch {
                path,
                reason: format!("has mode {mode:o}"),
            }
            .into());
        }
        after.insert(path, (entry.id, mode));
    }
    let mut edits: BTreeMap<String, Option<(Oid, i32)>> = BTreeMap::new();
    for path in declared {
        let old = before.get(path);
        let new = after.get(path);
        if old == new {
            return Err(PolicyViolation::TreeMismatch {
                path: path.clone(),
                reason: "declared but unchanged".into(),
            }
            .into());
        }
        edits.insert(path.clone(), new.copied());
    }
    let blobs: BTreeSet<Oid> = edits.values().flatten().map(|(id, _)| *id).collect();
    let edits: Vec<(Vec<&str>, Blob)> = edits
        .iter()
        .map(|(p, v)| (p.split('/').collect(), *v))
        .collect();
    let refs: Vec<Edit<'_>> = edits.iter().map(|(c, v)| (c.as_slice(), *v)).collect();
    let mut new_trees = Vec::new();
    let root = match splice(trees, Some(base), &refs, "", &mut new_trees)? {
        Some(id) => id,
        None => {
            let empty = Oid::hash_object(ObjectType::Tree, &[]).map_err(git("empty tree"))?;
            new_trees.push((empty, Vec::new()));
            empty
        }
    };
    // Blobs first, then trees children first: every object on disk is complete.
    let loose = branch.loose();
    let io = |source| CheckError::Io {
        op: "write object",
        source,
    };
    for id in blobs {
        let object = scratch_odb.read(id).map_err(git("read post-image"))?;
        loose
            .write_hashed(&odb, id, ObjectType::Blob, object.data())
            .map_err(io)?;
    }
    for (id, bytes) in new_trees {
        loose
            .write_hashed(&odb, id, ObjectType::Tree, &bytes)
            .map_err(io)?;
        trees.cache.put(id, Arc::new(bytes));
    }
    Ok(root)
}

fn index_entry(path: &str, id: Oid, mode: i32) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: mode as u32,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// A blob id and mode, or `None` for a removal.
type Blob = Option<(Oid, i32)>;

type Edit<'a> = (&'a [&'a str], Blob);

/// Puts `name` → `value` into `slots` (`None` removes it).
fn set_slot<'a>(slots: &mut Vec<Slot<'a>>, name: &'a [u8], value: Option<(Oid, i32)>) {
    let at = slots.iter().position(|s| s.name() == name);
    match (at, value) {
        (Some(k), Some((id, mode))) => slots[k] = Slot::New { name, mode, id },
        (None, Some((id, mode))) => slots.push(Slot::New { name, mode, id }),
        (Some(k), None) => {
            slots.remove(k);
        }
        (None, None) => {}
    }
}

/// Applies `edits` (component paths → new blob or removal) to the tree `tree`, building the
/// new trees' bytes and recording them with their ids in `written` (children before
/// parents); `None` when the result is empty.
fn splice(
    trees: &mut Trees<'_>,
    tree: Option<Oid>,
    edits: &[Edit<'_>],
    prefix: &str,
    written: &mut Vec<(Oid, Vec<u8>)>,
) -> Result<Option<Oid>, CheckError> {
    let git = |op: &'static str| move |source| CheckError::Git { op, source };
    let base = match tree {
        Some(id) => trees.raw(id).map_err(git("read tree"))?,
        None => Arc::new(Vec::new()),
    };
    let entries = parse_tree(&base).map_err(git("read tree"))?;
    let mut slots: Vec<Slot<'_>> = entries.iter().map(Slot::Kept).collect();
    let mut i = 0;
    while i < edits.len() {
        let Some(name) = edits[i].0.first().copied() else {
            i += 1;
            continue;
        };
        let mut j = i;
        while j < edits.len() && edits[j].0.first() == Some(&name) {
            j += 1;
        }
        let group = &edits[i..j];
        i = j;
        let full = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let conflict = |reason: &str| -> CheckError {
            PolicyViolation::DoesNotApply {
                path: full.clone(),
                reason: reason.to_owned(),
            }
            .into()
        };
        let direct: Vec<_> = group.iter().filter(|(c, _)| c.len() == 1).collect();
        let nested: Vec<Edit<'_>> = group
            .iter()
            .filter(|(c, _)| c.len() > 1)
            .map(|(c, v)| (&c[1..], *v))
            .collect();
        let at = slots.iter().position(|s| s.name() == name.as_bytes());
        let existing = at.map(|k| match &slots[k] {
            Slot::Kept(e) => (e.id, e.mode),
            Slot::New { id, mode, .. } => (*id, *mode),
        });
        if let Some((_, value)) = direct.first() {
            match value {
                Some((id, mode)) => {
                    if !nested.is_empty() {
                        return Err(conflict("path is both a file and a directory"));
                    }
                    if matches!(existing, Some((_, MODE_TREE))) {
                        return Err(conflict("a directory exists at this path"));
                    }
                    set_slot(&mut slots, name.as_bytes(), Some((*id, *mode)));
                    continue;
                }
                None => {
                    set_slot(&mut slots, name.as_bytes(), None);
                    if nested.is_empty() {
                        continue;
                    }
                }
            }
        }
        let removed_here = matches!(direct.first(), Some((_, None)));
        let subtree = match existing {
            _ if removed_here => None,
            Some((id, MODE_TREE)) => Some(id),
            Some(_) => return Err(conflict("a file exists where a directory is needed")),
            None => None,
        };
        let new = splice(trees, subtree, &nested, &full, written)?;
        set_slot(&mut slots, name.as_bytes(), new.map(|id| (id, MODE_TREE)));
    }
    if slots.is_empty() {
        return Ok(None);
    }
    let bytes = serialize_tree(&base, slots);
    let id = Oid::hash_object(ObjectType::Tree, &bytes).map_err(git("hash tree"))?;
    written.push((id, bytes));
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_builds_the_trees_libgit2_builds() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = |s: &str| repo.blob(s.as_bytes()).unwrap();
        // Names whose byte order differs from git's tree order ("a" sorts as "a/").
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("x", blob("x"), MODE_BLOB).unwrap();
        sub.insert("w", blob("w"), MODE_BLOB).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        for name in ["a-b", "a.c", "a0", "ab", "b"] {
            root.insert(name, blob(name), MODE_BLOB).unwrap();
        }
        root.insert("a", sub, MODE_TREE).unwrap();
        root.insert("c", sub, MODE_TREE).unwrap();
        let base = root.write().unwrap();
        let file = |s: &str| Some((blob(s), MODE_BLOB));
        let cases: Vec<Vec<(&str, Blob)>> = vec![
            vec![("a/y", file("y"))],
            vec![("a-", file("new"))],
            vec![("a.b/new", file("new")), ("a/x", None)],
            vec![("ab", None), ("b", Some((blob("b"), MODE_EXEC)))],
            vec![("c/deep/er", file("deep")), ("c/x", None)],
            vec![("a", None), ("zz", file("zz"))],
        ];
        for edits in cases {
            let mut sorted = edits.clone();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let comps: Vec<(Vec<&str>, Blob)> = sorted
                .iter()
                .map(|(p, v)| (p.split('/').collect(), *v))
                .collect();
            let refs: Vec<Edit<'_>> = comps.iter().map(|(c, v)| (c.as_slice(), *v)).collect();
            let cache = TreeCache::default();
            let mut trees = Trees::new(repo.odb().unwrap(), &cache);
            let mut written = Vec::new();
            let ours = splice(&mut trees, Some(base), &refs, "", &mut written)
                .unwrap()
                .unwrap();
            let mut update = git2::build::TreeUpdateBuilder::new();
            for (path, value) in &edits {
                match value {
                    Some((id, MODE_EXEC)) => {
                        update.upsert(*path, *id, git2::FileMode::BlobExecutable)
                    }
                    Some((id, _)) => update.upsert(*path, *id, git2::FileMode::Blob),
                    None => update.remove(*path),
                };
            }
            let theirs = update
                .create_updated(&repo, &repo.find_tree(base).unwrap())
                .unwrap();
            assert_eq!(ours, theirs, "{edits:?}");
            for (id, bytes) in &written {
                assert_eq!(Oid::hash_object(ObjectType::Tree, bytes).unwrap(), *id);
            }
        }
    }

    #[test]
    fn unquotes_git_paths() {
        assert_eq!(unquote("\"a/\\303\\251 x\""), "a/é x");
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn hunk_counts() {
        assert_eq!(parse_hunk_counts("1,2 +1,3 @@"), Some((2, 3)));
        assert_eq!(parse_hunk_counts("1 +1 @@ fn x"), Some((1, 1)));
        assert_eq!(parse_hunk_counts("0,0 +0,0 @@"), None);
    }

    #[test]
    fn components() {
        assert!(check_components("src/a.rs").is_ok());
        assert!(matches!(
            check_components("a/../b"),
            Err(PolicyViolation::ParentComponent { .. })
        ));
        assert!(matches!(
            check_components("x/.GIT/config"),
            Err(PolicyViolation::GitDirComponent { .. })
        ));
        assert!(matches!(
            check_components("a//b"),
            Err(PolicyViolation::MalformedPath { .. })
        ));
    }
}
