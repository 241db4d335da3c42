//! What the Supervisor sends to Builders and Auditors, and what they send back (SPEC §1, §7).
//!
//! Every message is plain serde data with a JSON Schema (see [`crate::schema`]). Every
//! type denies unknown fields: a misspelt field from an agent (`suggested_issue` for
//! `suggested_issues`) is an error rather than silently dropped evidence. Results are read
//! with [`parse_builder_result`] and [`parse_auditor_result`], whose errors name the source
//! and the JSON path.
//!
//! ```
//! use autopack_core::message::{BuilderStatus, parse_builder_result};
//!
//! let result = parse_builder_result(
//!     r#"{"phase_id": "p1", "status": "needs_review", "tokens_used": 1200}"#,
//!     "builder stdout",
//! ).unwrap();
//! assert_eq!(result.status, BuilderStatus::NeedsReview);
//! assert!(result.patch.is_none());
//!
//! let err = parse_builder_result(r#"{"phase_id": "p1", "status": "ok", "tokens_used": 1}"#, "builder stdout")
//!     .unwrap_err();
//! assert_eq!(err.path, "status");
//! ```

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{CommitId, IssueKey, PhaseId, RunId, TierId};

mod constructors;
use crate::json::JsonError;
use crate::vocabulary::{
    BuilderMode, Complexity, IssueCategory, IssueSource, Severity, TaskCategory,
};
pub use constructors::ConfidenceOutOfRange;

/// An issue an agent reports (a Builder's suggestion or an Auditor's finding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestedIssue {
    /// Stable key of the logical problem; the same problem always gets the same key.
    pub issue_key: IssueKey,
    /// `minor` or `major`.
    pub severity: Severity,
    /// Who found it: `test`, `probe`, `ci`, `static_check`, `cursor_self_doubt`, `auditor`.
    pub source: IssueSource,
    /// The issue category (`test_failure`, `schema_contract_change`, …).
    pub category: IssueCategory,
    /// Whether the failure is expected at this point of the plan (e.g. a test written
    /// before the code it tests).
    #[serde(default)]
    pub expected_fail: bool,
    /// Where the evidence is (`tests/test_users.py::test_indexes`, a log path, …).
    #[serde(default)]
    pub evidence_refs: Vec<String>,
    /// A human-readable description.
    #[serde(default)]
    pub description: String,
}

/// The outcome of one probe (a quick check) a Builder ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeResult {
    /// The probe's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its output (possibly truncated by the Builder).
    #[serde(default)]
    pub output: String,
}

/// How a Builder judges its own attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuilderStatus {
    /// The Builder believes the phase is done; the patch goes to the gate and CI.
    Success,
    /// The Builder could not do the phase.
    Failed,
    /// The Builder produced something but doubts it; an Auditor should look.
    NeedsReview,
}

impl BuilderStatus {
    /// The serde spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            BuilderStatus::Success => "success",
            BuilderStatus::Failed => "failed",
            BuilderStatus::NeedsReview => "needs_review",
        }
    }
}

impl fmt::Display for BuilderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is sent to a Builder for one attempt at one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuilderRequest {
    /// The run.
    pub run_id: RunId,
    /// The phase's tier.
    pub tier_id: TierId,
    /// The phase.
    pub phase_id: PhaseId,
    /// The phase's position in the run.
    pub phase_index: u32,
    /// The phase's human name.
    pub name: String,
    /// What to do.
    #[serde(default)]
    pub description: String,
    /// The kind of work.
    pub task_category: TaskCategory,
    /// The effective complexity (from the strategy).
    pub complexity: Complexity,
    /// How to approach the work, when the plan or strategy says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_mode: Option<BuilderMode>,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The most attempts the Builder gets for this phase.
    pub max_attempts: u32,
    /// Tokens this phase may spend.
    pub incident_token_cap: u64,
    /// Path globs the patch must stay inside; empty means unrestricted.
    #[serde(default)]
    pub scope: Vec<String>,
    /// Review notes and failure reasons of earlier attempts, oldest first.
    #[serde(default)]
    pub feedback: Vec<String>,
    /// The patch of this phase's previous Builder attempt, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_patch: Option<String>,
    /// The last red CI run of this phase: its output tail and failing tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ci: Option<CiFailure>,
    /// Where the attempt runs, filled in by the host that dispatches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<Checkout>,
}

/// The checkout an agent works in, filled in by the host when it dispatches the attempt
/// (the Supervisor knows no paths and no commits but those the host told it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkout {
    /// The commit the run's integration branch started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    /// The integration branch's tip: what a Builder builds on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_commit: Option<String>,
    /// The commit checked out in the workspace (the tip for a Builder, the candidate
    /// under review for an Auditor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_commit: Option<String>,
    /// The agent's private workspace: an independent git checkout of `head_commit`, also
    /// its working directory. Editing files there is a complete answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
}

/// What a red CI run reported, for the agent that tries again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CiFailure {
    /// The tail of the test command's output (stdout and stderr interleaved), bounded by
    /// the gate (64 KiB by default).
    pub output_tail: String,
    /// The failing tests the gate could name.
    #[serde(default)]
    pub failing_tests: Vec<String>,
}

/// What a Builder sends back for one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuilderResult {
    /// The phase this result is for.
    pub phase_id: PhaseId,
    /// The Builder's verdict on its attempt.
    pub status: BuilderStatus,
    /// The change, as a git-format diff (`diff --git` headers); none when nothing changed.
    #[serde(default)]
    pub patch: Option<String>,
    /// Probes the Builder ran.
    #[serde(default)]
    pub probe_results: Vec<ProbeResult>,
    /// Issues the Builder noticed.
    #[serde(default)]
    pub suggested_issues: Vec<SuggestedIssue>,
    /// Tokens the attempt spent.
    pub tokens_used: u64,
    /// Tests the Builder saw failing.
    #[serde(default)]
    pub failing_tests: Vec<String>,
    /// Free-form notes.
    #[serde(default)]
    pub notes: String,
}

/// Why an Auditor is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditReason {
    /// The Builder used up its attempts.
    AttemptsExhausted,
    /// A high-risk phase without auto-apply needs an `approve` before its patch applies.
    HighRiskApproval,
    /// Repeated identical failures.
    FailureLoop,
    /// A major issue was reported.
    MajorIssue,
}

impl AuditReason {
    /// The serde spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditReason::AttemptsExhausted => "attempts_exhausted",
            AuditReason::HighRiskApproval => "high_risk_approval",
            AuditReason::FailureLoop => "failure_loop",
            AuditReason::MajorIssue => "major_issue",
        }
    }
}

impl fmt::Display for AuditReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is sent to an Auditor for one review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditorRequest {
    /// The run.
    pub run_id: RunId,
    /// The phase's tier.
    pub tier_id: TierId,
    /// The phase under review.
    pub phase_id: PhaseId,
    /// The review profile (`schema_review`, `security_review`, …), if the strategy names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor_profile: Option<String>,
    /// Why the Auditor is called.
    pub reason: AuditReason,
    /// This Auditor attempt's number, from 1.
    pub attempt: u32,
    /// The latest patch under review, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Failure reasons so far (gate rejections, red CI, failing tests), oldest first.
    #[serde(default)]
    pub failures: Vec<String>,
    /// The phase's human name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// What the phase is to do.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The phase's kind of work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_category: Option<TaskCategory>,
    /// The candidate commit under review (the patch committed, not yet on the branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_commit: Option<CommitId>,
    /// The last red CI run of this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ci: Option<CiFailure>,
    /// Where the review runs, filled in by the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<Checkout>,
}

/// The Auditor's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditorRecommendation {
    /// Let the phase's patch (or the Auditor's) proceed.
    Approve,
    /// Send the phase back to the Builder, within the Auditor's budget.
    Revise,
    /// Fail the phase.
    Escalate,
}

impl AuditorRecommendation {
    /// The serde spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditorRecommendation::Approve => "approve",
            AuditorRecommendation::Revise => "revise",
            AuditorRecommendation::Escalate => "escalate",
        }
    }
}

impl fmt::Display for AuditorRecommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an Auditor sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditorResult {
    /// The phase reviewed.
    pub phase_id: PhaseId,
    /// The verdict.
    pub recommendation: AuditorRecommendation,
    /// Notes for the Builder (on `revise`) and the summaries.
    #[serde(default)]
    pub review_notes: String,
    /// Issues the Auditor found.
    #[serde(default)]
    pub issues_found: Vec<SuggestedIssue>,
    /// A patch of the Auditor's own (git-format diff); it takes the same governed path.
    #[serde(default)]
    pub patch: Option<String>,
    /// How sure the Auditor is, from 0.0 to 1.0; anything else is rejected when read.
    #[serde(deserialize_with = "deserialize_confidence")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// Tokens the review spent.
    #[serde(default)]
    pub tokens_used: u64,
}

fn deserialize_confidence<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(ConfidenceOutOfRange(value)))
    }
}

/// Reads a Builder's result.
///
/// # Errors
/// A [`JsonError`] naming `source` and the JSON path of the first bad value.
pub fn parse_builder_result(text: &str, source: &str) -> Result<BuilderResult, JsonError> {
    crate::json::from_str(text, source)
}

/// Reads an Auditor's result; `confidence` outside 0.0..=1.0 is an error at path
/// `confidence`.
///
/// # Errors
/// A [`JsonError`] naming `source` and the JSON path of the first bad value.
pub fn parse_auditor_result(text: &str, source: &str) -> Result<AuditorResult, JsonError> {
    crate::json::from_str(text, source)
}
