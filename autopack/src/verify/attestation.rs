//! The promotion attestation: an in-toto Statement (v1) about the integration branch's
//! tip, whose predicate is what a reviewer needs to trust it — the digests the run was
//! bound to, the journal's head hash, each phase's gate, CI and Auditor results, budgets
//! used against caps, and promotion eligibility. Built from a [`RecordedJournal`] only,
//! so `autopack verify` rebuilds it and compares.

use autopack_attest::{ResourceDescriptor, Statement};
use autopack_core::budget::{RunCaps, RunUsage, TierCaps, TierUsage};
use autopack_core::ids::{CommitId, PhaseId, RunId, TierId};
use autopack_core::journal::chain::{Binding, Digest};
use autopack_core::lifecycle::{PhaseState, RunState, TierState};
use serde::{Deserialize, Serialize};

use super::RecordedJournal;

/// The predicate type of Autopack's run attestations.
pub const RUN_PREDICATE_TYPE: &str = "https://autopack.dev/attestation/run/v1";

/// File name of the attestation statement in the run's folder.
pub const STATEMENT_FILE: &str = "attestation.intoto.json";
/// File name of its signed DSSE envelope.
pub const ENVELOPE_FILE: &str = "attestation.dsse.json";

/// What an Autopack run attests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPredicate {
    /// The run.
    pub run_id: RunId,
    /// Its terminal state (or the state its journal ends in).
    pub final_state: RunState,
    /// What the journal's first entry binds the run to.
    pub binding: Option<Binding>,
    /// The journal: entries and the head hash.
    pub journal: JournalSummary,
    /// The integration branch.
    pub integration_branch: String,
    /// Each phase, in plan order.
    pub phases: Vec<PhaseEvidence>,
    /// Each tier's budgets.
    pub tiers: Vec<TierEvidence>,
    /// The run's budgets.
    pub budgets: RunBudgets,
    /// Whether the run may be promoted, and why not.
    pub promotion: PromotionEvidence,
}

/// The journal's size and head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSummary {
    /// Entries.
    pub entries: u64,
    /// The SHA-256 of the last.
    pub head_sha256: Option<Digest>,
}

/// One phase's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseEvidence {
    /// The phase.
    pub phase_id: PhaseId,
    /// Its tier.
    pub tier_id: TierId,
    /// Where it ended.
    pub state: PhaseState,
    /// Builder attempts made.
    pub builder_attempts: u32,
    /// Auditor attempts made.
    pub auditor_attempts: u32,
    /// Patches applied as candidates, with the patch digest and commit.
    pub patches: Vec<PatchEvidence>,
    /// CI runs: verdict, attempts, flaky tests, the base's failing tests.
    pub ci: Vec<CiEvidence>,
    /// Auditor verdicts, by attempt.
    pub auditor_verdicts: Vec<String>,
    /// The commit snapshotted for the phase.
    pub commit: Option<CommitId>,
}

/// A patch the phase applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchEvidence {
    /// The attempt that wrote it.
    pub attempt: u32,
    /// The SHA-256 of the patch.
    pub patch_sha256: Digest,
    /// The candidate commit.
    pub commit: CommitId,
}

/// One CI run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CiEvidence {
    /// Green or red.
    pub verdict: String,
    /// Runs of the test command.
    pub attempts: u32,
    /// Tests that failed then passed.
    pub flaky_tests: Vec<String>,
    /// Tests that failed (new failures).
    pub failing_tests: Vec<String>,
    /// Failures the base commit had too (not counted against the Builder).
    pub known_failures: Vec<String>,
    /// The base commit's failing tests, when a baseline was taken.
    pub baseline: Option<Vec<String>>,
}

/// A tier's budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierEvidence {
    /// The tier.
    pub tier_id: TierId,
    /// Where it ended.
    pub state: TierState,
    /// Its caps.
    pub caps: TierCaps,
    /// What it used.
    pub used: TierUsage,
}

/// The run's budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBudgets {
    /// The caps.
    pub caps: RunCaps,
    /// What was used.
    pub used: RunUsage,
}

/// Promotion eligibility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionEvidence {
    /// `promotion_eligible_to_main`.
    pub eligible: bool,
    /// Every reason it is not.
    pub refusals: Vec<String>,
}

/// The attestation of `recorded`, about the commit `tip` (the integration branch's tip,
/// `None` when the branch is gone: then the journal's last snapshot is the subject).
///
/// # Errors
/// [`AttestationError::NoRecord`] when the journal holds no run.
pub fn statement(
    recorded: &RecordedJournal,
    tip: Option<&CommitId>,
) -> Result<Statement, AttestationError> {
    let predicate = predicate(recorded)?;
    let subject_commit = tip
        .cloned()
        .or_else(|| recorded.snapshots.last().map(|s| s.commit.clone()));
    let branch = predicate.integration_branch.clone();
    let subject = match subject_commit {
        Some(commit) => ResourceDescriptor::git_commit(branch, commit.as_str()),
        // No commit at all: the journal itself is the subject.
        None => ResourceDescriptor::new(
            format!("{}/journal.jsonl", recorded.run_id),
            [(
                "sha256".to_owned(),
                predicate
                    .journal
                    .head_sha256
                    .map(|d| d.to_hex())
                    .unwrap_or_default(),
            )]
            .into_iter()
            .collect(),
        ),
    };
    let value =
        serde_json::to_value(&predicate).map_err(|e| AttestationError::Serialize(e.to_string()))?;
    Ok(Statement::new(vec![subject], RUN_PREDICATE_TYPE, value))
}

/// The predicate of `recorded`.
///
/// # Errors
/// [`AttestationError::NoRecord`] when the journal holds no run.
pub fn predicate(recorded: &RecordedJournal) -> Result<RunPredicate, AttestationError> {
    let record = recorded
        .supervisor
        .record()
        .ok_or_else(|| AttestationError::NoRecord(recorded.run_id.clone()))?;
    let mut phases = Vec::new();
    for tier in &record.tiers {
        for phase in &tier.phases {
            let count = |role| {
                phase
                    .attempts
                    .iter()
                    .filter(|a| a.role == role)
                    .map(|a| a.number)
                    .max()
                    .unwrap_or(0)
            };
            phases.push(PhaseEvidence {
                phase_id: phase.phase_id.clone(),
                tier_id: phase.tier_id.clone(),
                state: phase.state,
                builder_attempts: count(autopack_core::record::AttemptRole::Builder),
                auditor_attempts: count(autopack_core::record::AttemptRole::Auditor),
                patches: recorded
                    .applied
                    .iter()
                    .filter(|a| a.phase_id == phase.phase_id)
                    .map(|a| PatchEvidence {
                        attempt: a.attempt,
                        patch_sha256: Digest::of(a.patch.as_bytes()),
                        commit: a.commit.clone(),
                    })
                    .collect(),
                ci: recorded
                    .ci_reports
                    .iter()
                    .filter(|(p, _)| *p == phase.phase_id)
                    .map(|(_, r)| CiEvidence {
                        verdict: serde_json::to_value(r.verdict)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        attempts: r.attempts,
                        flaky_tests: r.flaky_tests.clone(),
                        failing_tests: r.failing_tests.clone(),
                        known_failures: r.known_failures.clone(),
                        baseline: r.baseline.as_ref().map(|b| b.failing_tests.clone()),
                    })
                    .collect(),
                auditor_verdicts: recorded
                    .verdicts
                    .iter()
                    .filter(|(p, _, _)| *p == phase.phase_id)
                    .map(|(_, _, v)| v.clone())
                    .collect(),
                commit: phase.commit.clone(),
            });
        }
    }
    let refusals = match crate::promotion::eligibility(record) {
        Ok(()) => Vec::new(),
        Err(refusals) => refusals.iter().map(ToString::to_string).collect(),
    };
    Ok(RunPredicate {
        run_id: record.run_id.clone(),
        final_state: record.state,
        binding: recorded.chain.binding().cloned(),
        journal: JournalSummary {
            entries: recorded.entries() as u64,
            head_sha256: recorded.chain.head(),
        },
        integration_branch: format!("refs/heads/autonomous/{}", record.run_id),
        phases,
        tiers: record
            .tiers
            .iter()
            .map(|t| TierEvidence {
                tier_id: t.tier_id.clone(),
                state: t.state,
                caps: t.caps,
                used: t.usage,
            })
            .collect(),
        budgets: RunBudgets {
            caps: record.caps,
            used: record.usage,
        },
        promotion: PromotionEvidence {
            eligible: refusals.is_empty() && record.state == RunState::DoneSuccess,
            refusals,
        },
    })
}

/// Why an attestation could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// The journal holds no run (it ends before the start).
    #[error("run {0}'s journal holds no run to attest")]
    NoRecord(RunId),
    /// The predicate did not serialise.
    #[error("the attestation does not serialise: {0}")]
    Serialize(String),
}
