//! The rules a patch can break ([`PolicyViolation`], each with a stable rule name and
//! the path) and the errors of a check.

/// A rule a patch broke. Each names the rule (see [`PolicyViolation::rule`]) and the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The patch is longer than the policy's byte limit ([`PatchLimits::max_patch_bytes`](autopack_core::patch_rules::PatchLimits::max_patch_bytes)),
    /// refused before it is parsed.
    #[error(
        "patch_too_large: the patch has {bytes} bytes, at most {max} allowed{} (raise the limit with --max-patch-bytes / the ruleset's patch limits / PatchPolicy::with_max_patch_bytes)",
        under(mode)
    )]
    PatchTooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
        /// The builder mode whose limit it is, when the policy knows it.
        mode: Option<String>,
    },
    /// An added line is longer than [`PatchLimits::max_line_bytes`](autopack_core::patch_rules::PatchLimits::max_line_bytes).
    #[error(
        "line_too_long: {path:?} gets a line of {bytes} bytes, at most {max} allowed{}",
        under(mode)
    )]
    LineTooLong {
        /// The file.
        path: String,
        /// The longest added line, in bytes (without its newline).
        bytes: u64,
        /// The limit.
        max: u64,
        /// The builder mode whose limit it is, when the policy knows it.
        mode: Option<String>,
    },
    /// A file the patch leaves behind is larger than [`PatchLimits::max_file_bytes`](autopack_core::patch_rules::PatchLimits::max_file_bytes).
    #[error(
        "file_too_large: {path:?} would have {bytes} bytes, at most {max} allowed{}",
        under(mode)
    )]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size after the patch.
        bytes: u64,
        /// The limit.
        max: u64,
        /// The builder mode whose limit it is, when the policy knows it.
        mode: Option<String>,
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
    /// A path has a `.git` component, or one git (with its NTFS and HFS+ protections)
    /// takes for `.git`: any case, `git~1`, trailing dots or spaces, NTFS streams, HFS+
    /// ignorable characters.
    #[error("git_dir_component: {path:?} has a '.git' component (or a name git reads as '.git')")]
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
    /// A name git refuses on some file system (Windows device names, characters NTFS
    /// forbids, trailing dots or spaces, drive prefixes).
    #[error(
        "unportable_path: {path:?} has the component {component:?}, which git refuses: {reason}"
    )]
    UnportablePath {
        /// The path.
        path: String,
        /// The refused component.
        component: String,
        /// Git's rule (gix-validate's message).
        reason: String,
    },
    /// The whole path is longer than [`PathLimits::max_path_bytes`](autopack_core::patch_rules::PathLimits::max_path_bytes).
    #[error("path_too_long: {path:?} has {bytes} bytes, at most {max} allowed")]
    PathTooLong {
        /// The path.
        path: String,
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A component is longer than [`PathLimits::max_component_bytes`](autopack_core::patch_rules::PathLimits::max_component_bytes).
    #[error("component_too_long: {path:?} has a component of {bytes} bytes, at most {max} allowed")]
    ComponentTooLong {
        /// The path.
        path: String,
        /// The longest component's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A symlink (mode 120000) is created, edited or retyped, and the policy does not
    /// allow symlinks ([`PatchPolicy::allow_symlinks`](crate::PatchPolicy::allow_symlinks)).
    #[error("symlink: {path:?} {change} (symlinks are not allowed by this policy)")]
    Symlink {
        /// The path.
        path: String,
        /// What the patch does to it.
        change: SymlinkChange,
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
            PolicyViolation::LineTooLong { .. } => "line_too_long",
            PolicyViolation::FileTooLarge { .. } => "file_too_large",
            PolicyViolation::UnportablePath { .. } => "unportable_path",
            PolicyViolation::PathTooLong { .. } => "path_too_long",
            PolicyViolation::ComponentTooLong { .. } => "component_too_long",
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

impl PolicyViolation {
    /// The path the rule was broken at; `None` for the rules about the whole text
    /// (`patch_too_large`, `not_git_diff`).
    pub fn path(&self) -> Option<&str> {
        match self {
            PolicyViolation::PatchTooLarge { .. } | PolicyViolation::NotGitDiff { .. } => None,
            PolicyViolation::LineTooLong { path, .. }
            | PolicyViolation::FileTooLarge { path, .. }
            | PolicyViolation::AbsolutePath { path }
            | PolicyViolation::ParentComponent { path }
            | PolicyViolation::GitDirComponent { path }
            | PolicyViolation::MalformedPath { path }
            | PolicyViolation::UnportablePath { path, .. }
            | PolicyViolation::PathTooLong { path, .. }
            | PolicyViolation::ComponentTooLong { path, .. }
            | PolicyViolation::Symlink { path, .. }
            | PolicyViolation::Submodule { path }
            | PolicyViolation::ThroughSymlink { path, .. }
            | PolicyViolation::Binary { path }
            | PolicyViolation::ProtectedPath { path, .. }
            | PolicyViolation::OutsideScope { path, .. }
            | PolicyViolation::TooManyFiles { path, .. }
            | PolicyViolation::TooManyLines { path, .. }
            | PolicyViolation::DoesNotApply { path, .. }
            | PolicyViolation::TreeMismatch { path, .. } => Some(path),
        }
    }
}

/// What a patch does to a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymlinkChange {
    /// A new symlink (a new file of mode 120000, or a rename or copy of one).
    Created,
    /// A tracked symlink's target changed (including a plain hunk on it, which would
    /// leave a regular file with the hunk's text).
    Edited,
    /// A tracked symlink becomes a regular file, or a file becomes a symlink.
    Retyped,
}

impl std::fmt::Display for SymlinkChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SymlinkChange::Created => "would be created as a symlink",
            SymlinkChange::Edited => "is a tracked symlink the patch edits",
            SymlinkChange::Retyped => "changes between symlink and regular file",
        })
    }
}

/// ` under builder mode {mode}` when the mode is known.
fn under(mode: &Option<String>) -> String {
    match mode {
        Some(m) => format!(" under builder mode {m}"),
        None => String::new(),
    }
}

/// Errors of [`PatchPolicy::check`](crate::PatchPolicy::check) and [`PatchPolicy::check_at`](crate::PatchPolicy::check_at).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
