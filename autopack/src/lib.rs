//! # autopack
//!
//! The facade most hosts depend on: the [`supervisor::Supervisor`] — a deterministic,
//! sans-IO, resumable run driver that carries a plan from `RUN_CREATED` to a terminal state
//! with no human in the loop — and re-exports of the other Autopack crates.

pub mod driver;
pub mod host;
pub mod promotion;
pub mod report;
pub mod supervisor;

pub use autopack_apply as apply;
pub use autopack_core as core;
pub use autopack_issues as issues;
pub use autopack_layout as layout;
pub use autopack_strategy as strategy;

use autopack_issues::ProjectBacklog;
use autopack_strategy::{BacklogEntry, BacklogView};

/// The StrategyEngine's view of a project backlog (what `autopack_strategy::compile`
/// takes), from the ledger's backlog.
pub fn backlog_view(backlog: &ProjectBacklog) -> BacklogView {
    BacklogView::new(
        backlog
            .issues_by_key
            .iter()
            .map(|(key, entry)| BacklogEntry {
                issue_key: key.clone(),
                category: entry.category.clone(),
                base_severity: entry.base_severity,
                status: entry.status,
                age_in_runs: entry.age_in_runs,
                age_in_tiers: entry.age_in_tiers,
            }),
    )
}

/// The ledger's aging thresholds, from a ruleset's or a strategy's.
pub fn aging_thresholds(
    thresholds: &autopack_strategy::AgingThresholds,
) -> autopack_issues::AgingThresholds {
    autopack_issues::AgingThresholds {
        runs: thresholds.minor_issue_aging_runs_threshold,
        tiers: thresholds.minor_issue_aging_tiers_threshold,
    }
}
