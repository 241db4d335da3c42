//! The record of a run: what happened, phase by phase, as plain data.
//!
//! The Supervisor fills a [`RunRecord`] as it drives a run; the layout crate renders it as
//! `run_summary.md`, tier and phase summaries and incident packs; reports and promotion
//! read it. It is everything SPEC §11 asks to record per phase, tier and run: tokens, CI
//! runs, issue counts, budgets hit, failure reasons and state history with timestamps.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::budget::{
    PhaseCaps, PhaseUsage, RunBreach, RunCaps, RunUsage, TierBreach, TierCaps, TierUsage,
};
use crate::ids::{CommitId, PhaseId, RunId, TierId};
use crate::lifecycle::{Cleanliness, PhaseState, RunFailure, RunState, TierState};
use crate::vocabulary::{
    BuilderMode, CiProfile, Complexity, DebtStatus, RunScope, SafetyProfile, TaskCategory,
};

/// One entry of a state history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateChange<S> {
    /// The state entered.
    pub state: S,
    /// When it was entered (the time the host passed in).
    pub at: DateTime<Utc>,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailureRecord {
    /// The terminal failure.
    pub failure: RunFailure,
    /// A sentence a person can act on.
    pub reason: String,
    /// The tier being worked on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_id: Option<TierId>,
    /// The phase being worked on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_id: Option<PhaseId>,
    /// The run budget that was breached, if that was the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach: Option<RunBreach>,
}

/// Everything recorded about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunRecord {
    /// The run.
    pub run_id: RunId,
    /// Its safety profile.
    pub safety_profile: SafetyProfile,
    /// Its scope.
    pub run_scope: RunScope,
    /// The version of the strategy it ran under.
    pub strategy_version: u32,
    /// Its current (or final) state.
    pub state: RunState,
    /// Every state it entered, in order.
    pub history: Vec<StateChange<RunState>>,
    /// Its caps.
    pub caps: RunCaps,
    /// What it used.
    pub usage: RunUsage,
    /// Its debt status.
    pub debt_status: DebtStatus,
    /// Distinct major issues (by effective severity) seen in the run and not resolved.
    pub unresolved_major_issues: u32,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureRecord>,
    /// Its tiers, in order.
    pub tiers: Vec<TierRecord>,
    /// The integration branch (`autonomous/{run_id}`) tip at the end, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_tip: Option<CommitId>,
}

impl RunRecord {
    /// When the run was created (its first state change), if recorded.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.history.first().map(|c| c.at)
    }

    /// When the run entered a terminal state, if it has.
    pub fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.history
            .last()
            .filter(|c| c.state.is_terminal())
            .map(|c| c.at)
    }

    /// The tier with this id.
    pub fn tier(&self, tier_id: &TierId) -> Option<&TierRecord> {
        self.tiers.iter().find(|t| &t.tier_id == tier_id)
    }

    /// Every phase of every tier, in run order.
    pub fn phases(&self) -> impl Iterator<Item = &PhaseRecord> {
        self.tiers.iter().flat_map(|t| t.phases.iter())
    }
}

/// Everything recorded about one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TierRecord {
    /// The tier.
    pub tier_id: TierId,
    /// Its position.
    pub tier_index: u32,
    /// Its human name.
    pub name: String,
    /// Its current (or final) state.
    pub state: TierState,
    /// Every state it entered.
    pub history: Vec<StateChange<TierState>>,
    /// Its caps.
    pub caps: TierCaps,
    /// What it used.
    pub usage: TierUsage,
    /// Caps it breached.
    pub breaches: Vec<TierBreach>,
    /// Why it was blocked, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// Its phases, in order.
    pub phases: Vec<PhaseRecord>,
}

impl TierRecord {
    /// `clean` or `not_clean` once the tier has ended.
    pub fn cleanliness(&self) -> Option<Cleanliness> {
        self.state.cleanliness()
    }
}

/// Who made an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptRole {
    /// The Builder.
    Builder,
    /// The Auditor.
    Auditor,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The attempt's patch passed the gate and CI (or the Auditor approved).
    Succeeded,
    /// The attempt failed; see the reason.
    Failed,
    /// The Auditor asked for a revision.
    Revise,
    /// The Auditor escalated.
    Escalated,
}

/// One Builder or Auditor attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptRecord {
    /// Who.
    pub role: AttemptRole,
    /// 1-based attempt number for that role.
    pub number: u32,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed or what the Auditor said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Tokens it spent.
    pub tokens: u64,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// How a CI run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CiVerdict {
    /// Passed first time.
    Green,
    /// Failed, then passed with no change.
    Flaky,
    /// Failed.
    Red,
}

/// One CI run of the preflight gate (which may hold several attempts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CiRecord {
    /// The profile it ran.
    pub profile: CiProfile,
    /// The verdict.
    pub verdict: CiVerdict,
    /// Attempts it took.
    pub attempts: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// Everything recorded about one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseRecord {
    /// The phase.
    pub phase_id: PhaseId,
    /// Its position in the run.
    pub phase_index: u32,
    /// Its tier.
    pub tier_id: TierId,
    /// Its human name.
    pub name: String,
    /// Its kind of work.
    pub task_category: TaskCategory,
    /// Its complexity (after the strategy).
    pub complexity: Complexity,
    /// Its builder mode, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_mode: Option<BuilderMode>,
    /// Its current (or final) state.
    pub state: PhaseState,
    /// Every state it entered.
    pub history: Vec<StateChange<PhaseState>>,
    /// Its caps.
    pub caps: PhaseCaps,
    /// What it used.
    pub usage: PhaseUsage,
    /// Its attempts.
    pub attempts: Vec<AttemptRecord>,
    /// Its CI runs.
    pub ci_runs: Vec<CiRecord>,
    /// Distinct minor issues (by effective severity) recorded in the phase.
    pub minor_issues: u32,
    /// Distinct major issues (by effective severity) recorded in the phase.
    pub major_issues: u32,
    /// The commit its patch became on the integration branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitId>,
    /// The snapshot tag created after green CI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_tag: Option<String>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
}
