//! The first implementation's request and response shapes (`SEED_API.md`), and how they
//! are read off a run record, a ledger and the backlog. Pure: data in, data out.
//!
//! Field names, nesting and value kinds follow the seed's code. Where its reply lacked a
//! field its own clients read, it is added (`run_id` beside `id` in a Run). States are
//! written in their canonical spelling (SPEC §2). Requests are strict: unknown fields are
//! refused (a misspelt field is an error, not dropped evidence).

use std::collections::BTreeMap;

use autopack::core::ids::{IssueKey, PhaseId, RunId};
use autopack::core::lifecycle::RunState;
use autopack::core::message::{
    AuditorRecommendation, AuditorResult, BuilderResult, BuilderStatus, ProbeResult, SuggestedIssue,
};
use autopack::core::record::{AttemptRole, PhaseRecord, RunRecord, TierRecord};
use autopack::core::vocabulary::IssueStatus;
use autopack::core::vocabulary::{IssueCategory, IssueSource, Severity};
use autopack::issues::ProjectBacklog;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A value's serde spelling (`"normal"`, `"EXECUTING"`).
pub(crate) fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `GET /`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceInfo {
    /// `Autopack Supervisor`.
    pub service: String,
    /// This server's version.
    pub version: String,
    /// What it is.
    pub description: String,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`.
    pub status: String,
}

/// A run, as `POST /runs/start` and `GET /runs/{run_id}` return it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Run {
    /// The run id (the seed's key).
    pub id: String,
    /// The run id again: the seed's own client reads this key.
    pub run_id: String,
    /// The run state.
    pub state: String,
    /// `normal` or `safety_critical`.
    pub safety_profile: String,
    /// `multi_tier` or `single_tier`.
    pub run_scope: String,
    /// When the run was created.
    pub created_at: DateTime<Utc>,
    /// When it started executing.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Tokens spent.
    pub tokens_used: u64,
    /// CI runs spent.
    pub ci_runs_used: u32,
    /// Distinct minor issue keys.
    pub minor_issues_count: u32,
    /// Distinct major issue keys.
    pub major_issues_count: u32,
    /// `"true"` or `"false"` (a string, as in the seed).
    pub promotion_eligible_to_main: String,
    /// `clean`, `has_minor_issues`, …
    pub debt_status: Option<String>,
    /// Why the run failed.
    pub failure_reason: Option<String>,
    /// Its tiers.
    pub tiers: Vec<Tier>,
}

/// A tier of a [`Run`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tier {
    /// Its row number in the run (1-based).
    pub id: u32,
    /// The tier id.
    pub tier_id: String,
    /// Its name.
    pub name: String,
    /// The tier state.
    pub state: String,
    /// Its index.
    pub tier_index: u32,
    /// `clean`, `not_clean`, or null until it ends.
    pub cleanliness: Option<String>,
    /// Distinct minor keys.
    pub minor_issues_count: u32,
    /// Distinct major keys.
    pub major_issues_count: u32,
    /// Its phases.
    pub phases: Vec<Phase>,
}

/// A phase of a [`Tier`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Phase {
    /// Its row number in the run (1-based).
    pub id: u32,
    /// The phase id.
    pub phase_id: String,
    /// Its name.
    pub name: String,
    /// The phase state.
    pub state: String,
    /// Its task category.
    pub task_category: Option<String>,
    /// `low`, `medium`, `high`.
    pub complexity: Option<String>,
    /// Its builder mode.
    pub builder_mode: Option<String>,
    /// Its index.
    pub phase_index: u32,
}

/// The run view of a record.
pub fn run_of(record: &RunRecord) -> Run {
    let mut phase_row = 0;
    Run {
        id: record.run_id.to_string(),
        run_id: record.run_id.to_string(),
        state: word(&record.state),
        safety_profile: word(&record.safety_profile),
        run_scope: word(&record.run_scope),
        created_at: record
            .history
            .first()
            .map(|c| c.at)
            .unwrap_or(DateTime::UNIX_EPOCH),
        started_at: record.started_at(),
        completed_at: record.finished_at(),
        tokens_used: record.usage.tokens,
        ci_runs_used: record.usage.ci_runs,
        minor_issues_count: record.usage.minor_issues,
        major_issues_count: record.unresolved_major_issues,
        promotion_eligible_to_main: autopack::promotion::eligibility(record).is_ok().to_string(),
        debt_status: Some(word(&record.debt_status)),
        failure_reason: record.failure.as_ref().map(|f| f.reason.clone()),
        tiers: record
            .tiers
            .iter()
            .enumerate()
            .map(|(i, t)| Tier {
                id: u32::try_from(i + 1).unwrap_or(u32::MAX),
                tier_id: t.tier_id.to_string(),
                name: t.name.clone(),
                state: word(&t.state),
                tier_index: t.tier_index,
                cleanliness: t.cleanliness().map(|c| word(&c)),
                minor_issues_count: t.usage.minor_issues,
                major_issues_count: t.usage.major_issues,
                phases: t
                    .phases
                    .iter()
                    .map(|p| {
                        phase_row += 1;
                        Phase {
                            id: phase_row,
                            phase_id: p.phase_id.to_string(),
                            name: p.name.clone(),
                            state: word(&p.state),
                            task_category: Some(p.task_category.to_string()),
                            complexity: Some(word(&p.complexity)),
                            builder_mode: p.builder_mode.as_ref().map(ToString::to_string),
                            phase_index: p.phase_index,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Finds a phase and its tier.
pub fn find_phase<'r>(
    record: &'r RunRecord,
    phase_id: &str,
) -> Option<(&'r TierRecord, &'r PhaseRecord)> {
    record.tiers.iter().find_map(|t| {
        t.phases
            .iter()
            .find(|p| p.phase_id.as_str() == phase_id)
            .map(|p| (t, p))
    })
}

/// `POST …/update_status`: the seed let a client set any state; here the request is
/// checked against the lifecycle and the Supervisor, which alone moves phases.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatus {
    /// The state asked for.
    pub state: String,
    /// Ignored unless equal to the record's (the Supervisor counts attempts).
    pub builder_attempts: Option<i64>,
    /// As `builder_attempts`.
    pub tokens_used: Option<i64>,
    /// As `builder_attempts`.
    pub minor_issues_count: Option<i64>,
    /// As `builder_attempts`.
    pub major_issues_count: Option<i64>,
}

/// The stored columns of a phase, as `update_status` returns them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhaseRow {
    /// The phase id.
    pub phase_id: String,
    /// Its index.
    pub phase_index: u32,
    /// Its tier (the seed's row id there; the tier id here).
    pub tier_id: String,
    /// Its name.
    pub name: String,
    /// The phase state.
    pub state: String,
    /// Builder attempts made.
    pub builder_attempts: u32,
    /// Auditor attempts made.
    pub auditor_attempts: u32,
    /// Tokens spent.
    pub tokens_used: u64,
    /// Distinct minor keys.
    pub minor_issues_count: u32,
    /// Distinct major keys.
    pub major_issues_count: u32,
    /// Its task category.
    pub task_category: String,
    /// Its complexity.
    pub complexity: String,
    /// Its builder mode.
    pub builder_mode: Option<String>,
}

/// The row of a phase.
pub fn phase_row(phase: &PhaseRecord) -> PhaseRow {
    PhaseRow {
        phase_id: phase.phase_id.to_string(),
        phase_index: phase.phase_index,
        tier_id: phase.tier_id.to_string(),
        name: phase.name.clone(),
        state: word(&phase.state),
        builder_attempts: phase.usage.builder_attempts,
        auditor_attempts: phase.usage.auditor_attempts,
        tokens_used: phase.usage.tokens,
        minor_issues_count: phase.minor_issues,
        major_issues_count: phase.major_issues,
        task_category: phase.task_category.to_string(),
        complexity: word(&phase.complexity),
        builder_mode: phase.builder_mode.as_ref().map(ToString::to_string),
    }
}

/// `update_status`'s reply.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpdateStatusReply {
    /// What happened.
    pub message: String,
    /// The phase.
    pub phase: PhaseRow,
}

/// `record_issue`'s query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordIssueQuery {
    /// The issue key.
    pub issue_key: String,
    /// `minor` or `major`.
    pub severity: String,
    /// `test`, `probe`, `ci`, `static_check`, `cursor_self_doubt`, `auditor`.
    pub source: String,
    /// The issue category.
    pub category: String,
    /// Accepted for the seed's clients; the phase's own is recorded.
    pub task_category: Option<String>,
    /// Accepted for the seed's clients; the phase's own is recorded.
    pub complexity: Option<String>,
}

/// `record_issue`'s reply: the three levels after recording.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordIssueReply {
    /// What happened.
    pub message: String,
    /// The phase issue file.
    #[schema(value_type = Object)]
    pub phase_file: serde_json::Value,
    /// The key's run index entry.
    #[schema(value_type = Object)]
    pub run_index_entry: serde_json::Value,
    /// The key's backlog entry.
    #[schema(value_type = Object)]
    pub project_backlog_entry: serde_json::Value,
}

/// An issue as the seed's clients send it (`suggested_issues`, `issues_found`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedIssue {
    /// The issue key.
    #[schema(value_type = String)]
    pub issue_key: IssueKey,
    /// `minor` or `major`.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// The issue category.
    #[schema(value_type = String)]
    pub category: IssueCategory,
    /// Who found it (`cursor_self_doubt` from a Builder, `auditor` from an Auditor, when
    /// absent).
    #[schema(value_type = Option<String>)]
    pub source: Option<IssueSource>,
    /// Evidence.
    #[serde(default)]
    pub evidence_refs: Vec<String>,
    /// In words.
    #[serde(default)]
    pub description: String,
    /// Expected at this point of the plan.
    #[serde(default)]
    pub expected_fail: bool,
}

impl SeedIssue {
    fn into_suggested(self, default_source: IssueSource) -> SuggestedIssue {
        SuggestedIssue {
            issue_key: self.issue_key,
            severity: self.severity,
            source: self.source.unwrap_or(default_source),
            category: self.category,
            expected_fail: self.expected_fail,
            evidence_refs: self.evidence_refs,
            description: self.description,
        }
    }
}

/// A probe a Builder ran, as the seed's clients send it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedProbe {
    /// What kind of probe.
    pub probe_type: String,
    /// Its exit code: 0 passed.
    pub exit_code: i64,
    /// Its stdout.
    #[serde(default)]
    pub stdout: String,
    /// Its stderr.
    #[serde(default)]
    pub stderr: String,
    /// How long it took.
    #[serde(default)]
    pub duration_seconds: f64,
}

/// `POST …/builder_result`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedBuilderResult {
    /// The phase (must be the path's).
    pub phase_id: String,
    /// The run (must be the path's).
    pub run_id: String,
    /// A git-format diff.
    pub patch_content: Option<String>,
    /// Informational.
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// Informational.
    #[serde(default)]
    pub lines_added: u64,
    /// Informational.
    #[serde(default)]
    pub lines_removed: u64,
    /// Informational (the Supervisor counts attempts).
    #[serde(default)]
    pub builder_attempts: Option<u32>,
    /// Tokens the attempt spent.
    #[serde(default)]
    pub tokens_used: u64,
    /// Informational.
    #[serde(default)]
    pub duration_minutes: f64,
    /// Probes run.
    #[serde(default)]
    pub probe_results: Vec<SeedProbe>,
    /// Issues the Builder suspects.
    #[serde(default)]
    pub suggested_issues: Vec<SeedIssue>,
    /// `success`, `needs_review` or `failed`.
    #[schema(value_type = String)]
    pub status: BuilderStatus,
    /// Notes.
    #[serde(default)]
    pub notes: String,
}

impl SeedBuilderResult {
    /// The Builder result it carries.
    pub fn into_result(self, phase_id: PhaseId) -> BuilderResult {
        BuilderResult {
            phase_id,
            status: self.status,
            patch: self.patch_content.filter(|p| !p.trim().is_empty()),
            probe_results: self
                .probe_results
                .into_iter()
                .map(|p| ProbeResult {
                    name: p.probe_type,
                    passed: p.exit_code == 0,
                    output: tail(&format!("{}{}", p.stdout, p.stderr), 4096),
                })
                .collect(),
            suggested_issues: self
                .suggested_issues
                .into_iter()
                .map(|i| i.into_suggested(IssueSource::CursorSelfDoubt))
                .collect(),
            tokens_used: self.tokens_used,
            failing_tests: Vec::new(),
            notes: self.notes,
        }
    }
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// `builder_result`'s reply, once the Supervisor processed it (gate, CI, snapshot).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuilderResultReply {
    /// What happened.
    pub message: String,
    /// The phase's commit (candidate or snapshot), when the patch got that far.
    pub commit_sha: Option<String>,
    /// The phase state now.
    pub phase_state: String,
    /// The run state now (added).
    pub run_state: String,
}

/// `POST …/auditor_request`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedAuditorRequest {
    /// The phase.
    pub phase_id: String,
    /// The run.
    pub run_id: String,
    /// The tier.
    pub tier_id: String,
    /// The Builder's result, informational.
    #[schema(value_type = Option<Object>)]
    pub builder_result: Option<serde_json::Value>,
    /// Informational.
    #[serde(default)]
    pub failure_context: Option<serde_json::Value>,
    /// What to look at (`general` when absent).
    pub review_focus: Option<String>,
    /// The profile asked for.
    pub auditor_profile: Option<String>,
}

/// `auditor_request`'s reply.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditorRequestReply {
    /// What happened.
    pub message: String,
    /// What to look at.
    pub review_focus: String,
    /// The Auditor profile of the phase.
    pub auditor_profile: Option<String>,
    /// Why the Supervisor wants the review (added).
    pub reason: String,
    /// The Auditor attempt awaited (added).
    pub attempt: u32,
}

/// A patch an Auditor suggests.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedPatch {
    /// In words.
    pub description: String,
    /// A git-format diff.
    pub patch_content: String,
    /// Informational.
    #[serde(default)]
    pub files_affected: Vec<String>,
}

/// An Auditor's confidence: the seed's words or a number from 0 to 1.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Confidence {
    /// `low`, `medium`, `high`.
    Word(String),
    /// 0.0 to 1.0.
    Number(f64),
}

impl Confidence {
    fn value(&self) -> Option<f64> {
        match self {
            Confidence::Word(w) => match w.as_str() {
                "low" => Some(0.3),
                "medium" => Some(0.6),
                "high" => Some(0.9),
                _ => None,
            },
            Confidence::Number(n) if (0.0..=1.0).contains(n) => Some(*n),
            Confidence::Number(_) => None,
        }
    }
}

/// `POST …/auditor_result`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedAuditorResult {
    /// The phase (must be the path's).
    pub phase_id: String,
    /// The run (must be the path's).
    pub run_id: String,
    /// Notes.
    pub review_notes: String,
    /// Issues found.
    #[serde(default)]
    pub issues_found: Vec<SeedIssue>,
    /// Patches of the Auditor's own; several are applied as one.
    #[serde(default)]
    pub suggested_patches: Vec<SeedPatch>,
    /// Informational.
    #[serde(default)]
    pub auditor_attempts: Option<u32>,
    /// Tokens the review spent.
    #[serde(default)]
    pub tokens_used: u64,
    /// `approve`, `revise`, `escalate`.
    #[schema(value_type = String)]
    pub recommendation: AuditorRecommendation,
    /// `low`, `medium` (default), `high`, or a number from 0 to 1.
    pub confidence: Option<Confidence>,
}

impl SeedAuditorResult {
    /// The Auditor result it carries.
    ///
    /// # Errors
    /// A confidence that is neither a known word nor within 0..=1 (names the field).
    pub fn into_result(self, phase_id: PhaseId) -> Result<AuditorResult, crate::error::ApiError> {
        let confidence = match &self.confidence {
            None => 0.6,
            Some(c) => c.value().ok_or_else(|| {
                crate::error::ApiError::field(
                    &["body", "confidence"],
                    "value_error",
                    "confidence is low, medium, high or a number from 0 to 1",
                )
            })?,
        };
        let patch: String = self
            .suggested_patches
            .iter()
            .map(|p| p.patch_content.as_str())
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join("");
        Ok(AuditorResult {
            phase_id,
            recommendation: self.recommendation,
            review_notes: self.review_notes,
            issues_found: self
                .issues_found
                .into_iter()
                .map(|i| i.into_suggested(IssueSource::Auditor))
                .collect(),
            patch: (!patch.is_empty()).then_some(patch),
            confidence,
            tokens_used: self.tokens_used,
        })
    }
}

/// `auditor_result`'s reply.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditorResultReply {
    /// What happened.
    pub message: String,
    /// The recommendation received.
    pub recommendation: String,
    /// Auditor patches that reached a commit (0 or 1: several are applied as one).
    pub patches_applied: u32,
    /// Their commits.
    pub commit_shas: Vec<String>,
    /// The phase state now.
    pub phase_state: String,
    /// The run state now (added).
    pub run_state: String,
}

/// `GET /runs/{run_id}/integration_status`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationStatusReply {
    /// `autonomous/{run_id}`.
    pub branch: String,
    /// Commits ahead of the base branch.
    pub commits_ahead_of_main: u32,
    /// The branch's tip.
    pub current_commit: String,
}

/// One run of `GET /metrics/runs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunMetric {
    /// The run.
    pub run_id: String,
    /// Its state.
    pub state: String,
    /// Its safety profile.
    pub safety_profile: String,
    /// Tokens spent.
    pub tokens_used: u64,
    /// Its token cap.
    pub token_cap: u64,
    /// tokens_used / token_cap.
    pub token_utilization: f64,
    /// Distinct minor keys.
    pub minor_issues_count: u32,
    /// Distinct major keys.
    pub major_issues_count: u32,
    /// The run's cap on minor issues.
    pub max_minor_issues_total: Option<u32>,
    /// Phases in the plan.
    pub phase_count: u32,
    /// Tiers in the plan.
    pub tier_count: u32,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// `GET /metrics/runs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunMetrics {
    /// How many runs are listed.
    pub total_runs: u32,
    /// The runs.
    pub runs: Vec<RunMetric>,
}

fn count<T>(items: &[T]) -> u32 {
    u32::try_from(items.len()).unwrap_or(u32::MAX)
}

fn phase_count(record: &RunRecord) -> u32 {
    record.tiers.iter().map(|t| count(&t.phases)).sum()
}

fn utilization(used: u64, cap: u64) -> f64 {
    if cap == 0 {
        0.0
    } else {
        // Figures for people: f64's precision is plenty.
        #[allow(clippy::cast_precision_loss)]
        let u = used as f64 / cap as f64;
        (u * 10_000.0).round() / 10_000.0
    }
}

/// The metrics row of a run.
pub fn run_metric(record: &RunRecord) -> RunMetric {
    RunMetric {
        run_id: record.run_id.to_string(),
        state: word(&record.state),
        safety_profile: word(&record.safety_profile),
        tokens_used: record.usage.tokens,
        token_cap: record.caps.token_cap,
        token_utilization: utilization(record.usage.tokens, record.caps.token_cap),
        minor_issues_count: record.usage.minor_issues,
        major_issues_count: record.unresolved_major_issues,
        max_minor_issues_total: Some(record.caps.max_minor_issues_total),
        phase_count: phase_count(record),
        tier_count: count(&record.tiers),
        started_at: record.started_at(),
        completed_at: record.finished_at(),
    }
}

/// One tier of `GET /metrics/tiers/{run_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierMetric {
    /// The tier.
    pub tier_id: String,
    /// Its index.
    pub tier_index: u32,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Distinct minor keys.
    pub minor_issues_count: u32,
    /// Distinct major keys.
    pub major_issues_count: u32,
    /// Its phases.
    pub phase_count: u32,
    /// How many phases are in each state.
    pub phase_states: BTreeMap<String, u32>,
    /// Tokens spent.
    pub tokens_used: u64,
}

/// `GET /metrics/tiers/{run_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierMetrics {
    /// The run.
    pub run_id: String,
    /// Its tiers.
    pub tier_count: u32,
    /// The tiers.
    pub tiers: Vec<TierMetric>,
}

/// The tier metrics of a run.
pub fn tier_metrics(record: &RunRecord) -> TierMetrics {
    TierMetrics {
        run_id: record.run_id.to_string(),
        tier_count: count(&record.tiers),
        tiers: record
            .tiers
            .iter()
            .map(|t| {
                let mut phase_states = BTreeMap::new();
                for p in &t.phases {
                    *phase_states.entry(word(&p.state)).or_insert(0) += 1;
                }
                TierMetric {
                    tier_id: t.tier_id.to_string(),
                    tier_index: t.tier_index,
                    name: t.name.clone(),
                    state: word(&t.state),
                    minor_issues_count: t.usage.minor_issues,
                    major_issues_count: t.usage.major_issues,
                    phase_count: count(&t.phases),
                    phase_states,
                    tokens_used: t.usage.tokens,
                }
            })
            .collect(),
    }
}

/// One needs-cleanup key of the backlog summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CleanupEntry {
    /// The key.
    pub issue_key: String,
    /// Its highest severity.
    pub base_severity: String,
    /// Distinct runs that saw it.
    pub age_in_runs: u32,
    /// Distinct tiers that saw it.
    pub age_in_tiers: u32,
    /// `needs_cleanup`.
    pub status: String,
    /// The tiers that saw it.
    pub seen_in_tiers: Vec<String>,
    /// The first run that saw it.
    pub first_seen_run_id: Option<String>,
    /// The last run that saw it.
    pub last_seen_run_id: String,
}

/// `GET /reports/issue_backlog_summary`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BacklogSummary {
    /// Keys in the backlog.
    pub total_issues: u32,
    /// Open keys.
    pub open_count: u32,
    /// Keys that need cleanup.
    pub needs_cleanup_count: u32,
    /// Up to 10 `[issue_key, entry]` pairs, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub top_aging_issues: Vec<(String, serde_json::Value)>,
    /// Every key that needs cleanup.
    pub needs_cleanup: Vec<CleanupEntry>,
}

/// The backlog summary.
pub fn backlog_summary(backlog: &ProjectBacklog) -> BacklogSummary {
    let entries: Vec<_> = backlog.issues_by_key.iter().collect();
    let status_of = |e: &autopack::issues::BacklogEntry| e.status;
    let mut aging: Vec<_> = entries
        .iter()
        .filter(|(_, e)| status_of(e) != IssueStatus::Resolved)
        .collect();
    // Oldest first: most runs, then most tiers, then the earliest last sighting.
    aging.sort_by(|(ka, a), (kb, b)| {
        b.age_in_runs
            .cmp(&a.age_in_runs)
            .then(b.age_in_tiers.cmp(&a.age_in_tiers))
            .then(a.last_seen_at.cmp(&b.last_seen_at))
            .then(ka.cmp(kb))
    });
    BacklogSummary {
        total_issues: count(&entries),
        open_count: count(
            &entries
                .iter()
                .filter(|(_, e)| status_of(e) == IssueStatus::Open)
                .collect::<Vec<_>>(),
        ),
        needs_cleanup_count: count(
            &entries
                .iter()
                .filter(|(_, e)| status_of(e) == IssueStatus::NeedsCleanup)
                .collect::<Vec<_>>(),
        ),
        top_aging_issues: aging
            .iter()
            .take(10)
            .map(|(k, e)| (k.to_string(), serde_json::to_value(e).unwrap_or_default()))
            .collect(),
        needs_cleanup: entries
            .iter()
            .filter(|(_, e)| status_of(e) == IssueStatus::NeedsCleanup)
            .map(|(k, e)| CleanupEntry {
                issue_key: k.to_string(),
                base_severity: word(&e.base_severity),
                age_in_runs: e.age_in_runs,
                age_in_tiers: e.age_in_tiers,
                status: word(&e.status),
                seen_in_tiers: e.seen_in_tiers.iter().map(word).collect(),
                first_seen_run_id: e.first_seen_run_id.as_ref().map(ToString::to_string),
                last_seen_run_id: e.last_seen_run_id.to_string(),
            })
            .collect(),
    }
}

/// One failed run of the budget analysis.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetFailure {
    /// The run.
    pub run_id: String,
    /// Its state.
    pub state: String,
    /// Tokens spent.
    pub tokens_used: u64,
    /// Its token cap.
    pub token_cap: u64,
    /// tokens_used / token_cap.
    pub token_utilization: f64,
    /// Phases in the plan.
    pub phase_count: u32,
    /// Its phase cap.
    pub max_phases: u32,
    /// Distinct minor keys.
    pub minor_issues_count: u32,
    /// Its minor-issue cap.
    pub max_minor_issues_total: Option<u32>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
}

/// `GET /reports/budget_analysis` (what the seed intended; it answered 500).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetAnalysis {
    /// Runs that ended on a budget.
    pub total_budget_failures: u32,
    /// Mean token utilisation over every run.
    pub average_token_utilization: f64,
    /// The runs that ended on a budget.
    pub failures: Vec<BudgetFailure>,
}

/// The budget analysis over `records`.
pub fn budget_analysis<'a>(records: impl IntoIterator<Item = &'a RunRecord>) -> BudgetAnalysis {
    let records: Vec<&RunRecord> = records.into_iter().collect();
    let failures: Vec<BudgetFailure> = records
        .iter()
        .filter(|r| autopack::promotion::promotion_record(r).budget_failure)
        .map(|r| BudgetFailure {
            run_id: r.run_id.to_string(),
            state: word(&r.state),
            tokens_used: r.usage.tokens,
            token_cap: r.caps.token_cap,
            token_utilization: utilization(r.usage.tokens, r.caps.token_cap),
            phase_count: phase_count(r),
            max_phases: r.caps.max_phases,
            minor_issues_count: r.usage.minor_issues,
            max_minor_issues_total: Some(r.caps.max_minor_issues_total),
            started_at: r.started_at(),
            completed_at: r.finished_at(),
        })
        .collect();
    let average = if records.is_empty() {
        0.0
    } else {
        let sum: f64 = records
            .iter()
            .map(|r| utilization(r.usage.tokens, r.caps.token_cap))
            .sum();
        #[allow(clippy::cast_precision_loss)]
        let n = records.len() as f64;
        (sum / n * 10_000.0).round() / 10_000.0
    };
    BudgetAnalysis {
        total_budget_failures: count(&failures),
        average_token_utilization: average,
        failures,
    }
}

/// Budgets of the run summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryBudgets {
    /// Tokens spent.
    pub tokens_used: u64,
    /// The cap.
    pub token_cap: u64,
    /// tokens_used / token_cap.
    pub token_utilization: f64,
    /// Phases in the plan.
    pub phase_count: u32,
    /// The phase cap.
    pub max_phases: u32,
}

/// Issues of the run summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryIssues {
    /// Distinct minor keys.
    pub minor_count: u32,
    /// Distinct major keys.
    pub major_count: u32,
    /// The minor-issue cap.
    pub max_minor_total: Option<u32>,
    /// Distinct keys.
    pub distinct_issues: u32,
}

/// A tier of the run summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryTier {
    /// The tier.
    pub tier_id: String,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Its phases.
    pub phase_count: u32,
    /// Distinct minor keys.
    pub minor_issues: u32,
    /// Distinct major keys.
    pub major_issues: u32,
    /// Tokens spent.
    pub tokens_used: u64,
}

/// A phase of the run summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryPhase {
    /// The phase.
    pub phase_id: String,
    /// Its index.
    pub phase_index: u32,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// Its task category.
    pub task_category: Option<String>,
    /// Its complexity.
    pub complexity: Option<String>,
    /// Builder attempts made.
    pub builder_attempts: u32,
    /// Auditor attempts made.
    pub auditor_attempts: u32,
    /// Tokens spent.
    pub tokens_used: u64,
    /// Distinct minor keys.
    pub minor_issues: u32,
    /// Distinct major keys.
    pub major_issues: u32,
}

/// `GET /reports/run_summary/{run_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Its state.
    pub state: String,
    /// Its safety profile.
    pub safety_profile: String,
    /// Its scope.
    pub run_scope: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Budgets.
    pub budgets: SummaryBudgets,
    /// Issues.
    pub issues: SummaryIssues,
    /// Tiers.
    pub tiers: Vec<SummaryTier>,
    /// Phases.
    pub phases: Vec<SummaryPhase>,
}

/// The run summary of a record; `distinct_issues` from its issue index.
pub fn run_summary(record: &RunRecord, distinct_issues: u32) -> RunSummary {
    RunSummary {
        run_id: record.run_id.to_string(),
        state: word(&record.state),
        safety_profile: word(&record.safety_profile),
        run_scope: word(&record.run_scope),
        started_at: record.started_at(),
        completed_at: record.finished_at(),
        budgets: SummaryBudgets {
            tokens_used: record.usage.tokens,
            token_cap: record.caps.token_cap,
            token_utilization: utilization(record.usage.tokens, record.caps.token_cap),
            phase_count: phase_count(record),
            max_phases: record.caps.max_phases,
        },
        issues: SummaryIssues {
            minor_count: record.usage.minor_issues,
            major_count: record.unresolved_major_issues,
            max_minor_total: Some(record.caps.max_minor_issues_total),
            distinct_issues,
        },
        tiers: record
            .tiers
            .iter()
            .map(|t| SummaryTier {
                tier_id: t.tier_id.to_string(),
                name: t.name.clone(),
                state: word(&t.state),
                phase_count: count(&t.phases),
                minor_issues: t.usage.minor_issues,
                major_issues: t.usage.major_issues,
                tokens_used: t.usage.tokens,
            })
            .collect(),
        phases: record
            .phases()
            .map(|p| SummaryPhase {
                phase_id: p.phase_id.to_string(),
                phase_index: p.phase_index,
                name: p.name.clone(),
                state: word(&p.state),
                task_category: Some(p.task_category.to_string()),
                complexity: Some(word(&p.complexity)),
                builder_attempts: p.usage.builder_attempts,
                auditor_attempts: p.usage.auditor_attempts,
                tokens_used: p.usage.tokens,
                minor_issues: p.minor_issues,
                major_issues: p.major_issues,
            })
            .collect(),
    }
}

/// The commit a phase reached: its snapshot's, else the candidate the gate made.
pub fn phase_commit(phase: &PhaseRecord) -> Option<String> {
    phase.commit.as_ref().map(|c| c.to_string())
}

/// Whether `state` names a run state (for `/metrics/runs?status=`).
pub fn parse_run_state(state: &str) -> Option<RunState> {
    serde_json::from_value(serde_json::Value::String(state.to_owned())).ok()
}

/// The id types of a path, read strictly (422 naming the path parameter).
///
/// # Errors
/// An invalid id.
pub fn run_id(raw: &str) -> Result<RunId, crate::error::ApiError> {
    RunId::new(raw).map_err(|e| {
        crate::error::ApiError::field(&["path", "run_id"], "value_error", e.to_string())
    })
}

/// As [`run_id`], for phases.
///
/// # Errors
/// An invalid id.
pub fn phase_id(raw: &str) -> Result<PhaseId, crate::error::ApiError> {
    PhaseId::new(raw).map_err(|e| {
        crate::error::ApiError::field(&["path", "phase_id"], "value_error", e.to_string())
    })
}

/// The role of an attempt, as a word.
pub fn role_word(role: AttemptRole) -> &'static str {
    match role {
        AttemptRole::Builder => "builder",
        AttemptRole::Auditor => "auditor",
    }
}
