//! The patch gate as hosts call it: one function builds the [`PatchPolicy`] a patch goes
//! through from a phase's settings and the run's frozen policy ([`PatchGate::policy`]); a run's
//! [`GitApplier`](super::GitApplier) and `autopack patch check` ([`check_patch`]) both
//! call it, then the same `autopack_apply` check (the run on its integration branch, the
//! check on a commit, writing nothing).
//!
//! ```
//! use autopack::host::{PatchGate, check_patch};
//! use autopack::strategy::PatchPolicySettings;
//! use autopack::core::vocabulary::BuilderMode;
//! # let dir = tempfile::tempdir().unwrap();
//! # let repo = git2::Repository::init(dir.path()).unwrap();
//! # let sig = git2::Signature::now("t", "t@example.com").unwrap();
//! # let tree = repo.treebuilder(None).unwrap().write().unwrap();
//! # let tree = repo.find_tree(tree).unwrap();
//! # repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[]).unwrap();
//! let settings = PatchPolicySettings::default();
//! let gate = PatchGate::new(&BuilderMode::TweakLight, &settings)
//!     .with_ci_commands(vec!["sh run_tests.sh".to_owned()]);
//! let patch = "diff --git a/run_tests.sh b/run_tests.sh\nnew file mode 100644\n--- /dev/null\n+++ b/run_tests.sh\n@@ -0,0 +1 @@\n+exit 0\n";
//! let verdict = check_patch(dir.path(), "HEAD", patch.as_bytes(), &gate).unwrap();
//! assert_eq!(verdict.refusal().map(|r| r.rule.as_str()), Some("protected_path"));
//! ```

use std::path::Path;

use autopack_apply::{CheckError, CheckedPatch, PatchPolicy, PatternError, Repository};
use autopack_core::patch_rules::{
    PatchHold, PatchLimits, ProtectedPath, path_glob, runner_scripts,
};
use autopack_core::vocabulary::BuilderMode;
use autopack_strategy::PatchPolicySettings;
use serde::Serialize;

/// What decides a patch's fate besides the repository: the phase's builder mode, limits
/// and scope, the run's frozen patch policy, the CI commands (the test runner scripts
/// they name are protected) and the host's ceiling on patch bytes.
#[derive(Debug, Clone)]
pub struct PatchGate<'a> {
    /// The phase's builder mode (named in size refusals).
    pub builder_mode: &'a BuilderMode,
    /// Its limits (the mode's, with the ruleset's overrides).
    pub limits: PatchLimits,
    /// The run's policy.
    pub settings: &'a PatchPolicySettings,
    /// Path globs every touched path must match (empty: anywhere).
    pub scope: Vec<String>,
    /// The CI commands of the run (both profiles).
    pub ci_commands: Vec<String>,
    /// The host's ceiling on patch bytes: narrows `limits.max_patch_bytes`, never widens
    /// it ([`autopack_apply::MAX_PATCH_BYTES`] by default).
    pub max_patch_bytes: u64,
}

impl<'a> PatchGate<'a> {
    /// The gate of a phase in `mode` under `settings`: the mode's limits with the
    /// settings' overrides, no scope, no CI commands, the default ceiling.
    pub fn new(mode: &'a BuilderMode, settings: &'a PatchPolicySettings) -> PatchGate<'a> {
        PatchGate {
            builder_mode: mode,
            limits: settings.limits_for(mode),
            settings,
            scope: Vec::new(),
            ci_commands: Vec::new(),
            max_patch_bytes: autopack_apply::MAX_PATCH_BYTES,
        }
    }

    /// With a scope.
    pub fn with_scope(mut self, scope: Vec<String>) -> PatchGate<'a> {
        self.scope = scope;
        self
    }

    /// With the run's CI commands.
    pub fn with_ci_commands(mut self, commands: Vec<String>) -> PatchGate<'a> {
        self.ci_commands = commands;
        self
    }

    /// The protected paths this gate enforces: the settings' rules, then a `refuse` rule
    /// for every test runner script the CI commands name that no rule already covers (so a
    /// ruleset can hold `run_tests.sh` for an approve instead).
    pub fn protected_paths(&self) -> Vec<ProtectedPath> {
        let mut rules = self.settings.protected_paths.clone();
        let globs: Vec<_> = rules
            .iter()
            .filter_map(|r| path_glob(&r.pattern).ok().map(|g| g.compile_matcher()))
            .collect();
        for command in &self.ci_commands {
            for script in runner_scripts(command) {
                let covered = globs.iter().any(|g| g.is_match(&script))
                    || rules.iter().any(|r| r.pattern == script);
                if !covered {
                    rules.push(ProtectedPath::refuse(script));
                }
            }
        }
        rules
    }

    /// The policy: every rule of SPEC §8 and §13 for this phase.
    ///
    /// # Errors
    /// A [`PatternError`] for a scope or protected glob that does not compile.
    pub fn policy(&self) -> Result<PatchPolicy, PatternError> {
        let mut limits = self.limits;
        limits.max_patch_bytes = limits.max_patch_bytes.min(self.max_patch_bytes);
        PatchPolicy::for_mode(self.builder_mode)
            .limited_to(limits)
            .with_path_limits(self.settings.path_limits)
            .allow_symlinks(self.settings.allow_symlinks)
            .protect(&self.protected_paths())?
            .scope(&self.scope)
    }
}

/// What the gate made of a patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum PatchVerdict {
    /// Every rule passed.
    Accepted {
        /// The files it touches, in patch order.
        files: Vec<String>,
        /// Inserted lines.
        insertions: usize,
        /// Deleted lines.
        deletions: usize,
        /// Why it would need an Auditor `approve` in a run (empty: it would not).
        holds: Vec<PatchHold>,
    },
    /// A rule refused it.
    Refused(Refusal),
}

/// A refusal: the rule, the path at fault and the full message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The rule's stable name (`protected_path`, `line_too_long`, …).
    pub rule: String,
    /// The path at fault, when the rule is about one.
    pub path: Option<String>,
    /// The message, naming the rule, the path and the limit.
    pub message: String,
}

impl PatchVerdict {
    /// The refusal, when the patch was refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            PatchVerdict::Refused(r) => Some(r),
            PatchVerdict::Accepted { .. } => None,
        }
    }

    fn of(checked: Result<CheckedPatch, CheckError>) -> Result<PatchVerdict, CheckError> {
        match checked {
            Ok(checked) => Ok(PatchVerdict::Accepted {
                files: checked.changes().iter().map(|c| c.path.clone()).collect(),
                insertions: checked.insertions(),
                deletions: checked.deletions(),
                holds: checked.holds().to_vec(),
            }),
            Err(CheckError::Violation(v)) => Ok(PatchVerdict::Refused(Refusal {
                rule: v.rule().to_owned(),
                path: v.path().map(str::to_owned),
                message: v.to_string(),
            })),
            Err(other) => Err(other),
        }
    }
}

/// Errors of [`check_patch`] other than a refusal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchCheckError {
    /// The repository cannot be opened.
    #[error("{repo}: not a git repository: {reason}")]
    Repository {
        /// The path given.
        repo: String,
        /// libgit2's message.
        reason: String,
    },
    /// The base revision does not name a commit.
    #[error("{repo}: --base {base:?} is not a commit: {reason}")]
    Base {
        /// The repository.
        repo: String,
        /// The revision given.
        base: String,
        /// libgit2's message.
        reason: String,
    },
    /// A scope or protected glob does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// The repository failed while checking.
    #[error(transparent)]
    Check(CheckError),
}

/// Runs `patch` through the gate a run would use, on the commit `base` (any revision:
/// `HEAD`, a branch, an id) of the repository at `repo`, writing nothing to it.
///
/// # Errors
/// A [`PatchCheckError`] when the repository, the revision or a glob is bad; a refusal
/// is not an error but [`PatchVerdict::Refused`].
pub fn check_patch(
    repo: &Path,
    base: &str,
    patch: &[u8],
    gate: &PatchGate<'_>,
) -> Result<PatchVerdict, PatchCheckError> {
    let git = Repository::open(repo).map_err(|e| PatchCheckError::Repository {
        repo: repo.display().to_string(),
        reason: e.message().to_owned(),
    })?;
    let commit = git
        .revparse_single(base)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| PatchCheckError::Base {
            repo: repo.display().to_string(),
            base: base.to_owned(),
            reason: e.message().to_owned(),
        })?;
    let policy = gate.policy()?;
    PatchVerdict::of(policy.check_at(&git, commit.id(), patch)).map_err(PatchCheckError::Check)
}

/// Checks a run's patch on its integration branch (the candidate's objects are written,
/// nothing else).
pub(crate) fn check_on_branch(
    branch: &autopack_apply::IntegrationBranch,
    patch: &[u8],
    gate: &PatchGate<'_>,
) -> Result<Result<CheckedPatch, CheckError>, PatternError> {
    Ok(gate.policy()?.check(branch, patch))
}
