//! The governed apply path and the preflight gate, as driver adapters over
//! `autopack-apply`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use autopack_apply::tripwire::Tripwire as HostTripwire;
use autopack_apply::workspace::{Slot, Workspaces};
use autopack_core::ids::RunId;

use autopack_apply::{
    AppliedCommit, CheckError, CommitInfo, CommitSignature, GateVerdict, IntegrationBranch, Oid,
    PatchPolicy, PreflightGate, Role,
};
use autopack_core::record::{AttemptRole, CiVerdict};
use autopack_core::vocabulary::BuilderMode;

use crate::driver::{Applier, ApplyOutcome, HostError, Tripwire, Verifier};
use crate::supervisor::{CiReport, CiRequest, PatchRequest, SnapshotRequest};

/// Applies patches to a run's integration branch through the patch policy, as candidate
/// commits that the branch takes only after green CI.
///
/// The branch, HEAD, the index and the work tree of the host repository are never
/// touched except for the `autonomous/{run_id}` ref at a snapshot (the crate's invariant).
pub struct GitApplier {
    branch: IntegrationBranch,
    signature: CommitSignature,
    candidates: HashMap<Oid, AppliedCommit>,
    max_patch_bytes: u64,
}

impl GitApplier {
    /// Applies to `branch`, signing commits and tags with `signature`. A fixed signature
    /// (one time per run) makes candidate commits reproducible, so a retry after a crash
    /// gives the same commit.
    pub fn new(branch: IntegrationBranch, signature: CommitSignature) -> GitApplier {
        GitApplier {
            branch,
            signature,
            candidates: HashMap::new(),
            max_patch_bytes: autopack_apply::MAX_PATCH_BYTES,
        }
    }

    /// Refuses patches longer than `bytes` (default
    /// [`MAX_PATCH_BYTES`](autopack_apply::MAX_PATCH_BYTES)) with the rule
    /// `patch_too_large`: a ceiling over each builder mode's own byte limit
    /// (`PatchLimits::max_patch_bytes`), which it may narrow but not widen.
    pub fn with_max_patch_bytes(mut self, bytes: u64) -> GitApplier {
        self.max_patch_bytes = bytes;
        self
    }

    /// The integration branch.
    pub fn branch(&self) -> &IntegrationBranch {
        &self.branch
    }
}

fn role(role: AttemptRole) -> Role {
    match role {
        AttemptRole::Builder => Role::Builder,
        AttemptRole::Auditor => Role::Auditor,
    }
}

impl Applier for GitApplier {
    fn apply(&mut self, request: &PatchRequest) -> Result<ApplyOutcome, HostError> {
        let mode = request
            .builder_mode
            .clone()
            .unwrap_or(BuilderMode::Other("unknown".into()));
        let policy = PatchPolicy::for_mode(&mode);
        // The host's limit is a ceiling: it narrows the builder mode's byte limit, never
        // widens it.
        let max_patch_bytes = policy.max_patch_bytes().min(self.max_patch_bytes);
        let policy = policy
            .with_max_patch_bytes(max_patch_bytes)
            .scope(&request.scope)
            .map_err(|e| HostError::new(format!("phase {} scope: {e}", request.phase_id)))?;
        let checked = match policy.check(&self.branch, request.patch.as_bytes()) {
            Ok(checked) => checked,
            Err(CheckError::Violation(violation)) => {
                return Ok(ApplyOutcome::Rejected {
                    rule: violation.rule().to_owned(),
                    message: violation.to_string(),
                });
            }
            Err(err) => return Err(HostError::new(err)),
        };
        let info = CommitInfo {
            tier_id: request.tier_id.clone(),
            phase_id: request.phase_id.clone(),
            role: role(request.role),
            message: format!(
                "{} patch for phase {} (attempt {})",
                match request.role {
                    AttemptRole::Builder => "Builder",
                    AttemptRole::Auditor => "Auditor",
                },
                request.phase_id,
                request.attempt
            ),
            signature: self.signature.clone(),
        };
        let candidate = self
            .branch
            .commit_candidate(&checked, &info)
            .map_err(HostError::new)?;
        let commit = candidate.commit.to_string();
        self.candidates.insert(candidate.commit, candidate);
        Ok(ApplyOutcome::Applied { commit })
    }

    fn snapshot(&mut self, request: &SnapshotRequest) -> Result<(), HostError> {
        let oid = Oid::from_str(&request.commit).map_err(|e| {
            HostError::new(format!(
                "snapshot of phase {}: bad commit id {:?}: {e}",
                request.phase_id, request.commit
            ))
        })?;
        let candidate = match self.candidates.get(&oid) {
            Some(c) => c.clone(),
            // After a resume only the id is known.
            None => self.branch.candidate(oid).map_err(HostError::new)?,
        };
        self.branch.advance(&candidate).map_err(HostError::new)?;
        self.branch
            .snapshot_tag(&request.tier_id, &request.phase_id, oid, &self.signature)
            .map_err(HostError::new)?;
        Ok(())
    }
}

/// Runs the preflight gate on a candidate in the run's CI workspace: an independent
/// clone outside the host work tree, reset to the candidate before every CI run (untracked
/// and ignored files removed, so each run starts from the candidate alone). Nothing the
/// test command does there can move a ref of the host repository.
pub struct GitVerifier {
    gate: PreflightGate,
    workspaces: Arc<Workspaces>,
}

impl GitVerifier {
    /// Verifies candidates with `gate`, in the CI slot of `workspaces`.
    pub fn new(gate: PreflightGate, workspaces: Arc<Workspaces>) -> GitVerifier {
        GitVerifier { gate, workspaces }
    }
}

impl Verifier for GitVerifier {
    fn verify(&mut self, request: &CiRequest) -> Result<CiReport, HostError> {
        let oid = Oid::from_str(&request.commit).map_err(|e| {
            HostError::new(format!(
                "CI of phase {}: bad commit id {:?}: {e}",
                request.phase_id, request.commit
            ))
        })?;
        let workspace = self
            .workspaces
            .checkout(Slot::Ci, oid, &[])
            .map_err(HostError::new)?;
        let report = self
            .gate
            .run(workspace.path(), request.profile, request.max_attempts)
            .map_err(HostError::new)?;
        let verdict = match report.verdict {
            GateVerdict::Green => CiVerdict::Green,
            GateVerdict::Flaky => CiVerdict::Flaky,
            GateVerdict::Red | GateVerdict::NotRun => CiVerdict::Red,
        };
        let output_tail = report
            .attempts
            .iter()
            .rev()
            .find(|a| !a.passed())
            .or(report.attempts.last())
            .map(|a| a.output_tail.clone())
            .unwrap_or_default();
        Ok(CiReport {
            verdict,
            attempts: report.ci_runs_used,
            failing_tests: failing_tests(&output_tail),
            output_tail,
        })
    }
}

/// The driver's [`Tripwire`] over the host repository: refs (but the run's own branch and
/// tags), HEAD, index, hooks and config compared with the baseline taken when the run
/// began or resumed ([`autopack_apply::tripwire`]).
pub struct GitTripwire(HostTripwire);

impl GitTripwire {
    /// Takes the baseline of the repository at `repo` for run `run_id`.
    ///
    /// # Errors
    /// A [`HostError`] when the repository cannot be read.
    pub fn arm(repo: &Path, run_id: &RunId) -> Result<GitTripwire, HostError> {
        HostTripwire::arm(repo, run_id)
            .map(GitTripwire)
            .map_err(HostError::new)
    }
}

impl Tripwire for GitTripwire {
    fn check(&mut self) -> Result<Vec<String>, HostError> {
        let changes = self.0.check().map_err(HostError::new)?;
        Ok(changes.iter().map(ToString::to_string).collect())
    }
}

/// Test names in an output tail, for failure-loop signatures: lines such as
/// `test foo::bar ... FAILED` (cargo test), `FAILED tests/x.py::test_y` (pytest) or
/// `FAIL: name` / `not ok N - name`.
fn failing_tests(output: &str) -> Vec<String> {
    let mut out: Vec<String> = output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("test ") {
                return rest.strip_suffix(" ... FAILED").map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("FAILED ") {
                // `FAILED (errors=1)` is unittest's summary, not a test.
                return rest
                    .split_whitespace()
                    .next()
                    .filter(|name| !name.starts_with('('))
                    .map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("FAIL: ") {
                return Some(rest.trim().to_owned());
            }
            if line.starts_with("not ok ") {
                return line
                    .split_once(" - ")
                    .map(|(_, name)| name.trim().to_owned());
            }
            None
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::failing_tests;

    #[test]
    fn failing_tests_are_read_from_common_runners() {
        let out = "running 2 tests\ntest a::b ... ok\ntest a::c ... FAILED\nFAILED tests/test_x.py::test_y - assert 1 == 2\nFAIL: unit_z\nnot ok 3 - sums\nnot ok 3 - sums\nFAILED (errors=1)\n";
        assert_eq!(
            failing_tests(out),
            ["a::c", "sums", "tests/test_x.py::test_y", "unit_z"]
        );
        assert!(failing_tests("all good\n").is_empty());
    }
}
