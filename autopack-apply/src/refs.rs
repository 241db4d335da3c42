//! Ref names and the protected-ref rule.
//!
//! Invariant: every function of this crate that writes a ref first asks
//! [`ProtectedRefs::check`]; only [`crate::promote`] writes a protected ref.

use autopack_core::ids::{PhaseId, RunId, TierId};
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// Branches that are always protected, whatever the configuration says.
pub const ALWAYS_PROTECTED: [&str; 2] = ["main", "master"];

/// The full name of a run's integration branch: `refs/heads/autonomous/{run_id}`.
pub fn integration_ref(run_id: &RunId) -> String {
    format!("refs/heads/autonomous/{run_id}")
}

/// The short name of a snapshot tag: `autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}`.
pub fn snapshot_tag_name(run_id: &RunId, tier_id: &TierId, phase_id: &PhaseId) -> String {
    format!("autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}")
}

/// The full name of a snapshot tag: `refs/tags/autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}`.
pub fn snapshot_tag_ref(run_id: &RunId, tier_id: &TierId, phase_id: &PhaseId) -> String {
    format!("refs/tags/{}", snapshot_tag_name(run_id, tier_id, phase_id))
}

/// A glob pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Compiles `patterns` into one set; `*` does not cross `/`, `**` does.
pub(crate) fn compile_globs(patterns: &[String]) -> Result<GlobSet, PatternError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(compile_glob(pattern)?);
    }
    builder.build().map_err(|e| PatternError {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

fn compile_glob(pattern: &str) -> Result<Glob, PatternError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| PatternError {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })
}

/// The refs no run may write: `main`, `master` and configured glob patterns.
///
/// A pattern is matched against the full ref name (`refs/heads/release/1`) and against the
/// name without its `refs/heads/` or `refs/tags/` prefix (`release/1`), so `release/*`
/// protects every release branch.
#[derive(Debug, Clone)]
pub struct ProtectedRefs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Default for ProtectedRefs {
    fn default() -> Self {
        // The two literal patterns always compile; fall back to an empty set defensively,
        // `check` tests the literals by name as well.
        let patterns: Vec<String> = ALWAYS_PROTECTED.iter().map(|s| (*s).to_owned()).collect();
        let set = compile_globs(&patterns).unwrap_or_else(|_| GlobSet::empty());
        ProtectedRefs { patterns, set }
    }
}

impl ProtectedRefs {
    /// `main`, `master` and `extra` glob patterns.
    ///
    /// # Errors
    /// A [`PatternError`] for the first pattern that does not compile.
    pub fn new<S: AsRef<str>>(extra: &[S]) -> Result<ProtectedRefs, PatternError> {
        let mut patterns: Vec<String> = ALWAYS_PROTECTED.iter().map(|s| (*s).to_owned()).collect();
        patterns.extend(extra.iter().map(|s| s.as_ref().to_owned()));
        let set = compile_globs(&patterns)?;
        Ok(ProtectedRefs { patterns, set })
    }

    /// The patterns, `main` and `master` first.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The pattern protecting `full_ref`, if any.
    pub fn matching(&self, full_ref: &str) -> Option<&str> {
        let short = full_ref
            .strip_prefix("refs/heads/")
            .or_else(|| full_ref.strip_prefix("refs/tags/"))
            .unwrap_or(full_ref);
        if let Some(literal) = ALWAYS_PROTECTED.iter().find(|p| **p == short) {
            return Some(literal);
        }
        let mut hits = self.set.matches(full_ref);
        hits.extend(self.set.matches(short));
        hits.into_iter()
            .min()
            .and_then(|i| self.patterns.get(i))
            .map(String::as_str)
    }

    /// `Ok` when `full_ref` may be written by a run.
    ///
    /// # Errors
    /// The pattern that protects it.
    pub fn check(&self, full_ref: &str) -> Result<(), String> {
        match self.matching(full_ref) {
            Some(pattern) => Err(pattern.to_owned()),
            None => Ok(()),
        }
    }
}
