//! The governed apply path and the preflight gate, as driver adapters over
//! `autopack-apply`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use autopack_apply::tripwire::Tripwire as HostTripwire;
use autopack_apply::workspace::{Slot, Workspaces};
use autopack_core::ids::{CommitId, RunId};

use autopack_apply::{
    AppliedCommit, Baseline, CheckError, CommitInfo, CommitSignature, GateError, GateVerdict,
    IntegrationBranch, Oid, PreflightGate, Provenance, Role,
};
use autopack_core::journal::chain::Digest;
use autopack_core::record::{AttemptRole, CiVerdict};
use autopack_core::vocabulary::BuilderMode;

use super::patch_gate::{PatchGate, check_on_branch};
use crate::driver::{Applier, ApplyOutcome, HostError, HostErrorKind, Tripwire, Verifier};
use crate::supervisor::{CiBaseline, CiReport, CiRequest, PatchRequest, SnapshotRequest};

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
    ci_commands: Vec<String>,
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
            ci_commands: Vec::new(),
        }
    }

    /// Protects the test runner scripts these CI commands name (the run's test commands),
    /// as [`PatchGate::protected_paths`] says.
    pub fn with_ci_commands(mut self, commands: Vec<String>) -> GitApplier {
        self.ci_commands = commands;
        self
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
        let gate = PatchGate {
            builder_mode: &mode,
            limits: request.limits,
            settings: &request.policy,
            scope: request.scope.clone(),
            ci_commands: self.ci_commands.clone(),
            max_patch_bytes: self.max_patch_bytes,
        };
        let checked =
            check_on_branch(&self.branch, request.patch.as_bytes(), &gate).map_err(|e| {
                HostError::context(
                    HostErrorKind::Repository,
                    format_args!("phase {} patch policy", request.phase_id),
                    e,
                )
            })?;
        let checked = match checked {
            Ok(checked) => checked,
            Err(CheckError::Violation(violation)) => {
                return Ok(ApplyOutcome::Rejected {
                    rule: violation.rule().to_owned(),
                    message: violation.to_string(),
                });
            }
            Err(err) => return Err(HostError::from_source(HostErrorKind::Repository, err)),
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
            provenance: Some(Provenance {
                attempt: request.attempt,
                patch_sha256: Digest::of(request.patch.as_bytes()).to_hex(),
                journal: request.journal.map(|j| j.to_string()),
            }),
        };
        let candidate = self
            .branch
            .commit_candidate(&checked, &info)
            .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))?;
        let commit = commit_id(candidate.commit)?;
        self.candidates.insert(candidate.commit, candidate);
        Ok(ApplyOutcome::Applied {
            commit,
            holds: checked.holds().to_vec(),
        })
    }

    fn snapshot(&mut self, request: &SnapshotRequest) -> Result<(), HostError> {
        let oid = Oid::from_str(request.commit.as_str()).map_err(|e| {
            HostError::with_kind(
                HostErrorKind::Repository,
                format!(
                    "snapshot of phase {}: bad commit id {:?}: {e}",
                    request.phase_id, request.commit
                ),
            )
        })?;
        let candidate = match self.candidates.get(&oid) {
            Some(c) => c.clone(),
            // After a resume only the id is known.
            None => self
                .branch
                .candidate(oid)
                .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))?,
        };
        self.branch
            .advance(&candidate)
            .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))?;
        self.branch
            .snapshot_tag(&request.tier_id, &request.phase_id, oid, &self.signature)
            .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))?;
        Ok(())
    }

    fn reconcile(&mut self, known: &[CommitId]) -> Result<Vec<String>, HostError> {
        let history =
            autopack_apply::history::branch_history(self.branch.repo_path(), self.branch.run_id())
                .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))?;
        let known: std::collections::HashSet<&str> = known.iter().map(CommitId::as_str).collect();
        let mut unknown: Vec<String> = history
            .commits
            .iter()
            .filter(|c| !known.contains(c.id.to_string().as_str()))
            .map(|c| {
                format!(
                    "commit {} on {} (its trailers name phase {})",
                    c.id,
                    history.ref_name,
                    c.trailers
                        .get("Autopack-Phase")
                        .map_or("none", String::as_str)
                )
            })
            .collect();
        // A commit without this run's trailers as the tip: fine when it is the base the
        // run's candidates grew from, not when it was put on top.
        let grew_from = |tip: Oid| {
            known.iter().any(|k| {
                Oid::from_str(k)
                    .ok()
                    .and_then(|id| self.branch.candidate(id).ok())
                    .is_some_and(|c| c.parent == tip)
            })
        };
        if let (Some(tip), Some(below)) = (history.tip, history.below)
            && tip == below
            && !known.is_empty()
            && !grew_from(tip)
        {
            unknown.push(format!(
                "commit {tip}, the tip of {}, is not one of the run's (no Autopack-Run: {} trailer)",
                history.ref_name,
                self.branch.run_id()
            ));
        }
        Ok(unknown)
    }
}

/// Runs the preflight gate on a candidate in the run's CI workspace: an independent
/// clone outside the host work tree, reset to the candidate before every CI run (untracked
/// and ignored files removed, so each run starts from the candidate alone). Nothing the
/// test command does there can move a ref of the host repository.
///
/// When the gate reads JUnit reports for a profile and the run has a base commit
/// ([`GitVerifier::with_base`]), the first CI run of that profile first runs the command
/// on the base commit: the tests failing there are the run's *baseline*, returned in
/// [`CiReport::baseline`] (the Supervisor journals it and sends it with every later
/// request), and they fail no attempt.
pub struct GitVerifier {
    gate: PreflightGate,
    workspaces: Arc<Workspaces>,
    base: Option<Oid>,
}

impl GitVerifier {
    /// Verifies candidates with `gate`, in the CI slot of `workspaces`.
    pub fn new(gate: PreflightGate, workspaces: Arc<Workspaces>) -> GitVerifier {
        GitVerifier {
            gate,
            workspaces,
            base: None,
        }
    }

    /// Computes the baseline on `base`, the commit the run's integration branch started
    /// from.
    pub fn with_base(mut self, base: Oid) -> GitVerifier {
        self.base = Some(base);
        self
    }

    /// The baseline of `request`'s profile: the journaled one it carries, else computed
    /// now on the base commit (returned as the second value so the Supervisor keeps it).
    fn baseline(
        &mut self,
        request: &CiRequest,
    ) -> Result<(Option<Baseline>, Option<CiBaseline>), HostError> {
        if let Some(kept) = &request.baseline {
            let failing = kept.failing_tests.iter().cloned().collect();
            return Ok((Some(Baseline { failing }), None));
        }
        let Some(base) = self.base else {
            return Ok((None, None));
        };
        if self.gate.junit(request.profile).is_empty() {
            return Ok((None, None));
        }
        let workspace = self
            .workspaces
            .checkout(Slot::Ci, base, &[])
            .map_err(|e| HostError::from_source(HostErrorKind::Ci, e))?;
        let baseline = match self.gate.baseline(workspace.path(), request.profile) {
            Ok(found) => found.unwrap_or_default(),
            // Unreadable base reports: no baseline, every failure counts (and the run
            // does not try again: the empty baseline is journaled).
            Err(GateError::Report { error, .. }) => {
                tracing::warn!(target: "autopack::ci", run_id = %request.run_id, %error, "the base commit's JUnit reports cannot be read; every failing test counts");
                Baseline::default()
            }
            Err(err) => return Err(HostError::from_source(HostErrorKind::Ci, err)),
        };
        let journaled = CiBaseline {
            profile: request.profile,
            commit: commit_id(base)?,
            failing_tests: baseline.failing.iter().cloned().collect(),
        };
        Ok((Some(baseline), Some(journaled)))
    }
}

impl Verifier for GitVerifier {
    fn verify(&mut self, request: &CiRequest) -> Result<CiReport, HostError> {
        let oid = Oid::from_str(request.commit.as_str()).map_err(|e| {
            HostError::with_kind(
                HostErrorKind::Ci,
                format!(
                    "CI of phase {}: bad commit id {:?}: {e}",
                    request.phase_id, request.commit
                ),
            )
        })?;
        let (baseline, computed) = self.baseline(request)?;
        let workspace = self
            .workspaces
            .checkout(Slot::Ci, oid, &[])
            .map_err(|e| HostError::from_source(HostErrorKind::Ci, e))?;
        let report = self
            .gate
            .run_with_baseline(
                workspace.path(),
                request.profile,
                request.max_attempts,
                baseline.as_ref(),
            )
            .map_err(|e| HostError::from_source(HostErrorKind::Ci, e))?;
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
        let read_reports = report.attempts.iter().any(|a| a.tests.is_some());
        // Exact ids from the reports (only the failures the baseline does not hold);
        // without reports, names read from the output.
        let failing_tests = if read_reports {
            report.new_failures.iter().cloned().collect()
        } else {
            failing_tests(&output_tail)
        };
        Ok(CiReport {
            verdict,
            attempts: report.ci_runs_used,
            failing_tests,
            output_tail,
            known_failures: report.known_failures.iter().cloned().collect(),
            flaky_tests: report.flaky_tests.iter().cloned().collect(),
            baseline: computed,
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
            .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))
    }
}

impl Tripwire for GitTripwire {
    fn check(&mut self) -> Result<Vec<String>, HostError> {
        let changes = self
            .0
            .check()
            .map_err(|e| HostError::from_source(HostErrorKind::Repository, e))?;
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

/// A git object id as the [`CommitId`] the Supervisor takes.
fn commit_id(oid: Oid) -> Result<CommitId, HostError> {
    CommitId::new(oid.to_string()).map_err(HostError::repository)
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
