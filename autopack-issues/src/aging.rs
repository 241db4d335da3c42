//! Aging thresholds, the aging report and the read-only backlog view the StrategyEngine
//! takes.

use autopack_core::ids::{IssueKey, RunId};
use autopack_core::vocabulary::{IssueCategory, IssueStatus, SafetyProfile, Severity};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::ProjectBacklog;

/// When a minor key has been seen long enough to need cleanup (SPEC §4.3).
///
/// A minor key whose `age_in_runs` reaches `runs`, or whose `age_in_tiers` reaches
/// `tiers`, becomes `needs_cleanup`. A threshold of 0 is treated as 1 (a key that has been
/// seen is at least one run and one tier old).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgingThresholds {
    /// Distinct runs.
    pub runs: u32,
    /// Distinct tier ids (the same tier id in several runs counts once).
    pub tiers: u32,
}

impl AgingThresholds {
    /// The defaults: `normal` 3 runs / 2 tiers, `safety_critical` 2 runs / 1 tier.
    pub const fn for_profile(profile: SafetyProfile) -> AgingThresholds {
        match profile {
            SafetyProfile::Normal => AgingThresholds { runs: 3, tiers: 2 },
            SafetyProfile::SafetyCritical => AgingThresholds { runs: 2, tiers: 1 },
        }
    }

    /// Whether a key of these ages has reached either threshold.
    pub const fn reached(&self, age_in_runs: u32, age_in_tiers: u32) -> bool {
        age_in_runs >= self.runs || age_in_tiers >= self.tiers
    }
}

impl Default for AgingThresholds {
    fn default() -> Self {
        AgingThresholds::for_profile(SafetyProfile::Normal)
    }
}

/// A backlog key as the StrategyEngine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BacklogItem {
    /// The key.
    pub issue_key: IssueKey,
    /// Its category.
    pub category: IssueCategory,
    /// The highest severity ever reported.
    pub base_severity: Severity,
    /// Its status as recorded.
    pub status: IssueStatus,
    /// Distinct runs that saw it.
    pub age_in_runs: u32,
    /// Distinct tiers that saw it.
    pub age_in_tiers: u32,
    /// The last run that saw it.
    pub last_seen_run_id: RunId,
}

impl BacklogItem {
    /// Whether this key needs cleanup under `thresholds`: its status says so, or it is an
    /// unresolved minor key that has reached a threshold.
    pub fn needs_cleanup(&self, thresholds: AgingThresholds) -> bool {
        match self.status {
            IssueStatus::NeedsCleanup => true,
            IssueStatus::Resolved => false,
            IssueStatus::Open => {
                self.base_severity == Severity::Minor
                    && thresholds.reached(self.age_in_runs, self.age_in_tiers)
            }
        }
    }

    /// The severity the next run's strategy should count: `major` for a key that needs
    /// cleanup, else the base severity.
    pub fn effective_severity(&self, thresholds: AgingThresholds) -> Severity {
        if self.needs_cleanup(thresholds) {
            Severity::Major
        } else {
            self.base_severity
        }
    }
}

/// What the next run inherits from the backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgingReport {
    /// Minor keys that count as `major` for the next run, sorted by key.
    pub upgrades: Vec<(IssueKey, Severity)>,
    /// Keys that need a cleanup phase, oldest first (most runs, then most tiers, then by
    /// key).
    pub needs_cleanup: Vec<BacklogItem>,
}

/// Read-only access to a backlog, for the StrategyEngine.
///
/// Implemented by [`crate::Ledger`] and by a loaded [`ProjectBacklog`], so a strategy can
/// be compiled from either.
pub trait BacklogView {
    /// Every unresolved and resolved key, sorted by key.
    fn items(&self) -> Vec<BacklogItem>;

    /// The effective-severity upgrades and cleanup candidates for the next run.
    fn aging_report(&self, thresholds: AgingThresholds) -> AgingReport {
        let items = self.items();
        let upgrades = items
            .iter()
            .filter(|i| i.base_severity == Severity::Minor && i.needs_cleanup(thresholds))
            .map(|i| (i.issue_key.clone(), Severity::Major))
            .collect();
        let mut needs_cleanup: Vec<BacklogItem> = items
            .into_iter()
            .filter(|i| i.needs_cleanup(thresholds))
            .collect();
        needs_cleanup.sort_by(|a, b| {
            b.age_in_runs
                .cmp(&a.age_in_runs)
                .then(b.age_in_tiers.cmp(&a.age_in_tiers))
                .then_with(|| a.issue_key.cmp(&b.issue_key))
        });
        AgingReport {
            upgrades,
            needs_cleanup,
        }
    }
}

impl BacklogView for ProjectBacklog {
    fn items(&self) -> Vec<BacklogItem> {
        self.issues_by_key
            .iter()
            .map(|(key, e)| BacklogItem {
                issue_key: key.clone(),
                category: e.category.clone(),
                base_severity: e.base_severity,
                status: e.status,
                age_in_runs: e.age_in_runs,
                age_in_tiers: e.age_in_tiers,
                last_seen_run_id: e.last_seen_run_id.clone(),
            })
            .collect()
    }
}
