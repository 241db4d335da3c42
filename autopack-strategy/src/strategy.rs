//! The compiled, frozen strategy of a run (`project_implementation_strategy_v{N}.json`).
//!
//! Every collection is a `BTreeMap` or a sorted `Vec`, so equal strategies serialise to
//! identical bytes.

use std::collections::BTreeMap;
use std::fmt;

use autopack_core::budget::{PhaseCaps, RunCaps, TierCaps};
use autopack_core::ids::{IssueKey, PhaseId, ProjectId, RunId, TierId};
use autopack_core::json::{self, JsonError};
use autopack_core::plan::{PhaseSpec, Plan};
use autopack_core::vocabulary::{
    BuilderMode, CiProfile, Complexity, IssueCategory, RunScope, SafetyProfile, Severity,
    TaskCategory,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ruleset::AgingThresholds;

/// A compiled strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// The strategy version `N` of `project_implementation_strategy_v{N}.json`.
    pub version: u32,
    /// The run it was compiled for.
    pub run_id: RunId,
    /// The project whose ruleset was used.
    pub project_id: ProjectId,
    /// The ruleset's `version`.
    pub ruleset_version: String,
    /// The run's safety profile.
    pub safety_profile: SafetyProfile,
    /// The run's scope.
    pub run_scope: RunScope,
    /// Run token cap.
    pub run_token_cap: u64,
    /// Most phases the run may hold (planned plus inserted).
    pub run_max_phases: u32,
    /// Longest the run may take, in minutes.
    pub run_max_duration_minutes: u32,
    /// Distinct minor issues the run tolerates (phases × 3, inserted phases included).
    pub run_max_minor_issues_total: u32,
    /// The aging thresholds of the run's safety profile.
    pub aging_thresholds: AgingThresholds,
    /// Per-tier budgets, by tier id.
    pub tier_strategies: BTreeMap<TierId, TierStrategy>,
    /// Per-phase slices (planned and inserted), by phase id.
    pub phase_strategies: BTreeMap<PhaseId, PhaseStrategy>,
    /// The `debt_cleanup` phases the engine inserted, as plan phases, in phase order.
    pub inserted_phases: Vec<PhaseSpec>,
    /// Backlog keys that count as `major` in this run, sorted by key.
    pub effective_severity_upgrades: Vec<SeverityUpgrade>,
    /// What the engine noticed, sorted.
    pub diagnostics: Vec<Diagnostic>,
}

/// The budgets of one tier (SPEC §6 formulas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierStrategy {
    /// The tier.
    pub tier_id: TierId,
    /// Its position.
    pub tier_index: u32,
    /// Its human name.
    pub name: String,
    /// Its phases, in execution order (inserted cleanup phases last).
    pub phase_ids: Vec<PhaseId>,
    /// Whether it holds a high-risk phase.
    pub high_risk: bool,
    /// Tokens the tier's phases may spend together.
    pub token_cap: u64,
    /// CI attempts the tier may run.
    pub ci_run_cap: u32,
    /// Distinct minor issues tolerated.
    pub max_minor_issues_tolerated: u32,
    /// Distinct major issues tolerated.
    pub max_major_issues_tolerated: u32,
}

impl TierStrategy {
    /// The tier's caps as the budget type.
    pub fn caps(&self) -> TierCaps {
        TierCaps {
            token_cap: self.token_cap,
            ci_run_cap: self.ci_run_cap,
            max_minor_issues_tolerated: self.max_minor_issues_tolerated,
            max_major_issues_tolerated: self.max_major_issues_tolerated,
        }
    }
}

/// Where a phase slice came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOrigin {
    /// A phase of the plan.
    Plan,
    /// A `debt_cleanup` phase inserted for aged backlog keys.
    DebtCleanup,
}

/// Which layer of defaults a slice's values came from (the highest that applied).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DefaultsSource {
    /// The ruleset overrides the category.
    Ruleset,
    /// The built-in high-risk defaults.
    BuiltinHighRisk,
    /// The built-in normal defaults.
    Builtin,
    /// The fallback for unknown categories.
    Fallback,
}

/// The frozen settings of one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseStrategy {
    /// The phase.
    pub phase_id: PhaseId,
    /// Its tier.
    pub tier_id: TierId,
    /// Its position in the run.
    pub phase_index: u32,
    /// Its category (canonical spelling).
    pub task_category: TaskCategory,
    /// Effective complexity (never below `high` for a high-risk phase).
    pub complexity: Complexity,
    /// Builder mode (the plan's, else the category's).
    pub builder_mode: BuilderMode,
    /// Builder attempts.
    pub max_builder_attempts: u32,
    /// Auditor attempts.
    pub max_auditor_attempts: u32,
    /// Tokens the phase may spend.
    pub incident_token_cap: u64,
    /// CI profile.
    pub ci_profile: CiProfile,
    /// CI retries.
    pub ci_max_retries: u32,
    /// Whether its patches apply without an Auditor `approve`.
    pub auto_apply: bool,
    /// The Auditor profile to request.
    pub auditor_profile: Option<String>,
    /// Whether the phase is high-risk.
    pub high_risk: bool,
    /// Severity of issues filed in this phase by default.
    pub default_severity: Severity,
    /// Path globs its patches must stay inside (copied from the plan).
    pub scope: Vec<String>,
    /// Planned or inserted.
    pub origin: PhaseOrigin,
    /// Which defaults layer applied.
    pub defaults_source: DefaultsSource,
    /// For inserted cleanup phases: the backlog keys to resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_issue_keys: Vec<IssueKey>,
}

impl PhaseStrategy {
    /// The phase's caps as the budget type.
    pub fn caps(&self) -> PhaseCaps {
        PhaseCaps {
            max_builder_attempts: self.max_builder_attempts,
            max_auditor_attempts: self.max_auditor_attempts,
            incident_token_cap: self.incident_token_cap,
        }
    }
}

/// Why a backlog key counts as `major` in this run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeReason {
    /// The backlog marked it `needs_cleanup`.
    NeedsCleanup,
    /// Its `age_in_runs` reached the runs threshold.
    AgedRuns,
    /// Its `age_in_tiers` reached the tiers threshold.
    AgedTiers,
}

/// A minor backlog key that counts as `major` in this run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityUpgrade {
    /// The key.
    pub issue_key: IssueKey,
    /// Its category.
    pub category: IssueCategory,
    /// Its recorded severity.
    pub base_severity: Severity,
    /// Its severity in this run.
    pub effective_severity: Severity,
    /// Why.
    pub reason: UpgradeReason,
    /// Distinct runs that saw it.
    pub age_in_runs: u32,
    /// Distinct tiers that saw it.
    pub age_in_tiers: u32,
}

/// Why some cleanup could not be scheduled.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CleanupLimit {
    /// `max_cleanup_phases_per_run` was reached.
    MaxCleanupPhasesPerRun,
    /// The run's `max_phases` left no room.
    MaxPhases,
    /// The plan has no tier to hold them.
    NoTier,
}

/// Something the engine noticed while compiling; never an error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Diagnostic {
    /// A phase's category has no built-in or ruleset defaults; the fallback applied.
    CategoryFellBack {
        /// The phase.
        phase_id: PhaseId,
        /// Its category.
        task_category: TaskCategory,
    },
    /// A phase's builder mode is not one of the known labels.
    UnknownBuilderMode {
        /// The phase.
        phase_id: PhaseId,
        /// The label.
        builder_mode: BuilderMode,
    },
    /// A high-risk phase was planned below `high`; it was raised.
    HighRiskComplexityRaised {
        /// The phase.
        phase_id: PhaseId,
        /// The plan's complexity.
        planned: Complexity,
    },
    /// Keys needing cleanup were left for a later run.
    CleanupDidNotFit {
        /// Cleanup phases the keys would have needed.
        needed_phases: u32,
        /// Cleanup phases inserted.
        inserted_phases: u32,
        /// Keys left unscheduled.
        deferred_keys: u32,
        /// The limit that stopped insertion.
        limit: CleanupLimit,
    },
    /// The plan alone holds more phases than `max_phases`; it should be split.
    PlanExceedsMaxPhases {
        /// Planned phases.
        phases: u32,
        /// The cap.
        max_phases: u32,
    },
    /// A `single_tier` run was given a plan with several tiers.
    SingleTierRunWithManyTiers {
        /// Tiers in the plan.
        tiers: u32,
    },
}

impl Strategy {
    /// The run caps as the budget type.
    pub fn run_caps(&self) -> RunCaps {
        RunCaps {
            token_cap: self.run_token_cap,
            max_phases: self.run_max_phases,
            max_duration_minutes: self.run_max_duration_minutes,
            max_minor_issues_total: self.run_max_minor_issues_total,
        }
    }

    /// The slice of a phase.
    pub fn phase(&self, phase_id: &PhaseId) -> Option<&PhaseStrategy> {
        self.phase_strategies.get(phase_id)
    }

    /// The budgets of a tier.
    pub fn tier(&self, tier_id: &TierId) -> Option<&TierStrategy> {
        self.tier_strategies.get(tier_id)
    }

    /// Tiers in execution order (`tier_index`, then id).
    pub fn tiers_in_order(&self) -> Vec<&TierStrategy> {
        let mut tiers: Vec<_> = self.tier_strategies.values().collect();
        tiers.sort_by(|a, b| (a.tier_index, &a.tier_id).cmp(&(b.tier_index, &b.tier_id)));
        tiers
    }

    /// Phases in execution order: tier by tier, each tier's `phase_ids` in order.
    pub fn phases_in_order(&self) -> Vec<&PhaseStrategy> {
        self.tiers_in_order()
            .into_iter()
            .flat_map(|t| t.phase_ids.iter())
            .filter_map(|id| self.phase_strategies.get(id))
            .collect()
    }

    /// The plan the run executes: `plan` with the inserted cleanup phases appended.
    pub fn effective_plan(&self, plan: &Plan) -> Plan {
        let mut out = plan.clone();
        out.phases.extend(self.inserted_phases.iter().cloned());
        out
    }

    /// Pretty JSON with a trailing newline; identical strategies give identical bytes.
    pub fn to_json(&self) -> String {
        let mut out = serde_json::to_string_pretty(self).unwrap_or_default();
        out.push('\n');
        out
    }

    /// Reads a strategy strictly; `source` is named in errors.
    ///
    /// # Errors
    /// A [`JsonError`] with the JSON path.
    pub fn from_json(text: &str, source: &str) -> Result<Strategy, JsonError> {
        json::from_str(text, source)
    }

    /// A readable multi-line rendering (also available through `Display`).
    pub fn render_text(&self) -> String {
        self.to_string()
    }
}

/// `project_implementation_strategy_v{N}.json`.
pub fn strategy_file_name(version: u32) -> String {
    format!("project_implementation_strategy_v{version}.json")
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Strategy v{} for run {} (project {}, ruleset {})",
            self.version, self.run_id, self.project_id, self.ruleset_version
        )?;
        writeln!(
            f,
            "safety profile {}, run scope {}",
            self.safety_profile, self.run_scope
        )?;
        writeln!(
            f,
            "run caps: {} tokens, {} phases, {} minutes, {} minor issues",
            self.run_token_cap,
            self.run_max_phases,
            self.run_max_duration_minutes,
            self.run_max_minor_issues_total
        )?;
        writeln!(f, "aging: {}", self.aging_thresholds)?;
        for tier in self.tiers_in_order() {
            writeln!(f)?;
            writeln!(
                f,
                "tier {} {:?} (index {}{}): {} tokens, {} CI runs, {} minor / {} major tolerated",
                tier.tier_id,
                tier.name,
                tier.tier_index,
                if tier.high_risk { ", high-risk" } else { "" },
                tier.token_cap,
                tier.ci_run_cap,
                tier.max_minor_issues_tolerated,
                tier.max_major_issues_tolerated
            )?;
            for id in &tier.phase_ids {
                let Some(p) = self.phase_strategies.get(id) else {
                    continue;
                };
                write!(
                    f,
                    "  [{}] {} {} {}{} mode={} builder={} auditor={} tokens={} ci={}x{} {}",
                    p.phase_index,
                    p.phase_id,
                    p.task_category,
                    p.complexity,
                    if p.high_risk { " HIGH-RISK" } else { "" },
                    p.builder_mode,
                    p.max_builder_attempts,
                    p.max_auditor_attempts,
                    p.incident_token_cap,
                    p.ci_profile,
                    p.ci_max_retries,
                    if p.auto_apply {
                        "auto-apply"
                    } else {
                        "needs-approve"
                    },
                )?;
                if let Some(profile) = &p.auditor_profile {
                    write!(f, " audit={profile}")?;
                }
                if p.origin == PhaseOrigin::DebtCleanup {
                    write!(f, " cleanup of {} keys", p.cleanup_issue_keys.len())?;
                }
                writeln!(f)?;
            }
        }
        if !self.effective_severity_upgrades.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "effective severity upgrades ({}):",
                self.effective_severity_upgrades.len()
            )?;
            for u in &self.effective_severity_upgrades {
                writeln!(
                    f,
                    "  {} ({}) {} -> {}: {} ({} runs, {} tiers)",
                    u.issue_key,
                    u.category,
                    u.base_severity,
                    u.effective_severity,
                    u.reason,
                    u.age_in_runs,
                    u.age_in_tiers
                )?;
            }
        }
        if !self.diagnostics.is_empty() {
            writeln!(f)?;
            writeln!(f, "diagnostics ({}):", self.diagnostics.len())?;
            for d in &self.diagnostics {
                writeln!(f, "  {d}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for UpgradeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpgradeReason::NeedsCleanup => "needs_cleanup",
            UpgradeReason::AgedRuns => "aged past the runs threshold",
            UpgradeReason::AgedTiers => "aged past the tiers threshold",
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::CategoryFellBack {
                phase_id,
                task_category,
            } => write!(
                f,
                "phase {phase_id}: category '{task_category}' is unknown; fallback defaults applied"
            ),
            Diagnostic::UnknownBuilderMode {
                phase_id,
                builder_mode,
            } => {
                write!(
                    f,
                    "phase {phase_id}: builder mode {builder_mode:?} is not a known label"
                )
            }
            Diagnostic::HighRiskComplexityRaised { phase_id, planned } => write!(
                f,
                "phase {phase_id}: high-risk phase planned as {planned}; raised to high"
            ),
            Diagnostic::CleanupDidNotFit {
                needed_phases,
                inserted_phases,
                deferred_keys,
                limit,
            } => {
                let why = match limit {
                    CleanupLimit::MaxCleanupPhasesPerRun => "max_cleanup_phases_per_run reached",
                    CleanupLimit::MaxPhases => "max_phases reached",
                    CleanupLimit::NoTier => "the plan has no tier",
                };
                write!(
                    f,
                    "debt cleanup needed {needed_phases} phases, {inserted_phases} inserted \
                     ({why}); {deferred_keys} keys deferred"
                )
            }
            Diagnostic::PlanExceedsMaxPhases { phases, max_phases } => write!(
                f,
                "the plan holds {phases} phases, more than max_phases {max_phases}; split it"
            ),
            Diagnostic::SingleTierRunWithManyTiers { tiers } => {
                write!(f, "single_tier run given a plan with {tiers} tiers")
            }
        }
    }
}
