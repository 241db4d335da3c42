//! The governed apply path and the preflight gate, as driver adapters over
//! `autopack-apply`.

use std::collections::HashMap;

use autopack_apply::{
    AppliedCommit, CheckError, CiWorktree, CommitInfo, CommitSignature, GateVerdict,
    IntegrationBranch, Oid, PatchPolicy, PreflightGate, Role,
};
use autopack_core::record::{AttemptRole, CiVerdict};
use autopack_core::vocabulary::BuilderMode;

use crate::driver::{Applier, ApplyOutcome, HostError, Verifier};
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
        }
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
        let policy = PatchPolicy::for_mode(&mode)
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

/// Runs the preflight gate on a candidate in a linked worktree that is removed afterwards.
pub struct GitVerifier {
    branch: IntegrationBranch,
    gate: PreflightGate,
}

impl GitVerifier {
    /// Verifies candidates of `branch` with `gate`.
    pub fn new(branch: IntegrationBranch, gate: PreflightGate) -> GitVerifier {
        GitVerifier { branch, gate }
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
        let worktree = CiWorktree::create_at(&self.branch, oid).map_err(HostError::new)?;
        let result = self
            .gate
            .run(worktree.path(), request.profile, request.max_attempts);
        // The worktree goes whatever the gate said; a failure to remove it is not the
        // candidate's fault.
        if let Err(err) = worktree.remove() {
            tracing::warn!(target: "autopack::ci", error = %err, "could not remove the CI worktree");
        }
        let report = result.map_err(HostError::new)?;
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
                return rest.split_whitespace().next().map(str::to_owned);
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
        let out = "running 2 tests\ntest a::b ... ok\ntest a::c ... FAILED\nFAILED tests/test_x.py::test_y - assert 1 == 2\nFAIL: unit_z\nnot ok 3 - sums\nnot ok 3 - sums\n";
        assert_eq!(
            failing_tests(out),
            ["a::c", "sums", "tests/test_x.py::test_y", "unit_z"]
        );
        assert!(failing_tests("all good\n").is_empty());
    }
}
