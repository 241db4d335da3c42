//! # autopack
//!
//! The facade most hosts depend on: the [`supervisor::Supervisor`] — a deterministic,
//! sans-IO, resumable run driver that carries a plan from `RUN_CREATED` to a terminal state
//! with no human in the loop — and re-exports of the other Autopack crates.
//!
//! - [`supervisor`]: feed it [`supervisor::Input`]s, drain [`supervisor::Action`]s;
//! - [`driver`]: the blocking loop over Builder, Auditor, Applier, Verifier and Artefacts
//!   traits, with a journal and resume; [`host`]: ready-made adapters for them (git,
//!   external-command agents, `.autonomous_runs/`);
//! - [`promotion`] and [`report`]: what a finished run's record says.
//!
//! # Speed
//!
//! `benches/supervisor.rs`, on the 2-core development machine with nothing else running
//! (load average < 2):
//!
//! - Supervisor overhead with instant agents (start, then builder → gate → CI → snapshot
//!   for every phase, 4 inputs each): 1,000 phases in 2.4 ms (**410,000 phases per
//!   second**), 10,000 phases in 42 ms (**238,000 per second**; the goal is 100,000).
//! - Replaying a journal (parse each JSON line, apply it): 800,001 entries (a run of
//!   200,000 phases) in **3.3 s**, about 245,000 entries per second; the goal of
//!   1,000,000 entries in under a second is **not met**. Profiled at 20,000 phases: the
//!   start entry alone (plan and strategy of every phase, 10 MB of JSON) takes about a third
//!   (parse ~95 ms, validation and freezing ~190 ms, under load), each later entry costs
//!   ~1 µs to parse and ~2 µs to apply, and allocation is ~40 % of instructions. Next
//!   steps: a start entry that refers to the saved strategy by version and hash instead of
//!   holding it, fewer allocations per input, and parsing on a second thread while the
//!   first applies.

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
